"""The ``klippel`` converter: Klippel QC result logs (equipment-formats.md section 7).

Klippel QC writes one unit as two things side by side::

    DUT xyz115 2020-05-14 10-01-37-5 UTC+0200.txt     the header (the file that is taken)
    DUT xyz115 2020-05-14 10-01-37-5 UTC+0200/        its result folder (a companion)
        Impedance-imp.txt                             a curve:  frq  imp  max  min
        Impedance-values.txt                          values:   name value max min
        Sound Pressure-resp.txt ...

The header is ``//comment`` lines alternating with ``Key=Value`` lines (``Cfg_SerialNumber``,
``Cfg_DutStartTime``, ``Ctrl_OverallVerdict``, ``Results_Pass`` ...). The pipeline reads the
folder for the converter (:meth:`KlippelConverter.companions`) and hands its files over in
``source.companions``; this module reads no file itself.

The mapping (documented in docs/converters.md):

* ``result`` comes from ``Ctrl_OverallVerdict`` alone (never from the steps): 1 pass -> P,
  2 warning -> P, 0 fail -> F, -1 void -> T, 3 noise -> E, 4 invalid -> E.
* ``start`` is ``Cfg_DutStartTime`` with the UTC offset written inside it.
* One sequence per operation (the result file's name before its last ``-``); a values
  row is a numeric step (``max`` is the high limit, ``min`` the low one, either may be
  empty); a curve is a numeric step with a chart and the counts of points outside its
  limits. Step status is the task's verdict from the ``Results_*`` lists, computed from
  the value and the limits only for tasks those lists do not name.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs

from pywats.converters.arguments import check_arguments
from pywats.converters.base import ConversionContext, Source
from pywats.converters.helpers import (
    ReportIds,
    decode_auto,
    encode_limits,
    now,
    parse_float,
    start_fields,
    validated,
    worst_status,
)
from pywats.converters.sniffing import head_text
from pywats.errors import ConversionError
from pywats.report.codes import CompOp, ReportType, Result, Status, StepGroup
from pywats.report.model import (
    BooleanMeasurement,
    Chart,
    ChartSeries,
    MiscInfo,
    NumericMeasurement,
    Report,
    SequenceCallInfo,
    Step,
    UUTInfo,
)

__all__ = ["KlippelArguments", "KlippelConverter"]

#: ``Ctrl_OverallVerdict`` code -> (report result, Klippel's word for it).
VERDICTS: dict[int, tuple[Result, str]] = {
    -1: (Result.TERMINATED, "Void"),
    0: (Result.FAILED, "Fail"),
    1: (Result.PASSED, "Pass"),
    2: (Result.PASSED, "Warning"),
    3: (Result.ERROR, "Noise"),
    4: (Result.ERROR, "Invalid"),
}

#: ``Results_<word>`` list -> the status of the tasks it names, worst list first (a task
#: named by two lists takes the first of them here).
TASK_LISTS: tuple[tuple[str, Status], ...] = (
    ("Fail", Status.FAILED),
    ("Invalid", Status.ERROR),
    ("Noise", Status.ERROR),
    ("Void", Status.SKIPPED),
    ("Warning", Status.PASSED),
    ("Pass", Status.PASSED),
)

#: Points kept per chart series; a longer curve is thinned to every k-th point for the
#: chart (its counts, lowest and highest value still use every point).
MAX_CHART_POINTS = 2000

_RESULT_STATUS = {
    Result.PASSED: Status.PASSED,
    Result.FAILED: Status.FAILED,
    Result.ERROR: Status.ERROR,
    Result.TERMINATED: Status.TERMINATED,
}

# Year-Month-WeekNo-JulianDay-WeekDay-Day-Hour-Min-Sec-ms-UTCoffsetMinutes[-epoch]
# (Scilab getdate() plus the offset and the epoch); a negative offset gives "--60", and
# Virinco's reader allows a negative week number and day of the year too.
_START = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{1,2})--?\d{1,2}--?\d{1,3}-\d{1,2}-(?P<day>\d{1,2})"
    r"-(?P<hour>\d{1,2})-(?P<minute>\d{1,2})-(?P<second>\d{1,2})-(?P<ms>\d{1,3})"
    r"-(?P<offset>[+-]?\d{1,4})(?:-.*)?"
)
# The date in the header's file name: "DUT <sn> 2020-05-14 10-01-37-5 UTC+0200.txt".
_NAME_START = re.compile(
    r"(\d{4})-(\d{2})-(\d{2}) (\d{2})-(\d{2})-(\d{2})(?:-(\d))? UTC([+-])(\d{2})(\d{2})"
)
# Klippel QC's header keys: Cfg_ (configuration), Ctrl_ (control) and Results_ lists.
_SNIFF_KEY = re.compile(r"^((?:Cfg|Ctrl|Results)_[A-Za-z]\w*)=", re.MULTILINE)
# Cells that mean "no value": Klippel writes "-"; non-finite numbers cannot go to WATS.
_NO_VALUE = frozenset({"", "-", "nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity"})


@attrs.frozen
class KlippelArguments:
    """Arguments of the ``klippel`` converter (names as in Virinco's Klippel converter).

    Klippel QC does not write the part number, revision or process: they come from here.
    """

    #: ``pn`` of every report.
    partNumber: str = "PartNumber1"
    #: ``rev`` of every report.
    partRevision: str = "1.0"
    #: Name of the root sequence.
    sequenceName: str = "SequenceName1"
    #: Version of the root sequence.
    sequenceVersion: str = "1.0.0"
    #: ``processCode`` of every report.
    operationTypeCode: int = 10
    #: Text encoding of the header and result files; None: by byte-order mark, else
    #: UTF-8, else cp1252 (what Klippel QC on Windows writes).
    encoding: str | None = None

    def __attrs_post_init__(self) -> None:
        check_arguments(self)


class _Error(Exception):
    """A problem in one file at one line; becomes the ConversionError's one-line reason."""

    def __init__(self, where: str, line: int | None, reason: str) -> None:
        # A file name may hold any character; the message stays one printable line.
        shown = where if where.isprintable() else repr(where)
        place = ", ".join(p for p in (shown, f"line {line}" if line else "") if p)
        super().__init__(f"{place}: {reason}" if place else reason)


@attrs.frozen
class _Header:
    values: dict[str, str]
    lines: dict[str, int]
    tasks: dict[str, Status]
    """Task name -> its status from the ``Results_*`` lists."""
    order: list[str]
    """Every task the lists name, in file order (for tasks without a result file)."""
    words: dict[str, str]
    """Task name -> the list that named it (``Warning``), for the step's report text."""


class _Ids:
    """Step ids in tree order: 1 is the root, then each sequence before its steps."""

    def __init__(self) -> None:
        self.last = 1

    def next(self) -> int:
        self.last += 1
        return self.last


class KlippelConverter:
    """Reads a Klippel QC header with its result folder: one unit, one report."""

    name = "klippel"
    version = "1.0"
    # The header's name ends in its UTC offset ("... UTC+0200.txt"); the folder's result
    # files ("Impedance-imp.txt") do not, so they are never taken as headers.
    patterns = ("*UTC[+-]*.txt",)
    Arguments = KlippelArguments

    @staticmethod
    def sniff(head: bytes, name: str) -> str | None:
        """Three lines or more that start with a Klippel key (``Cfg_SerialNumber=``)."""
        keys = dict.fromkeys(m.group(1) for m in _SNIFF_KEY.finditer(head_text(head)))
        if len(keys) < 3:
            return None
        shown = ", ".join(f"{k}=" for k in list(keys)[:3])
        return f"Klippel QC header (Cfg_/Ctrl_ key lines: {shown} ...)"

    def companions(self, path: Path) -> Sequence[Path]:
        """The result folder beside the header: its name without ``.txt``."""
        return (path.with_name(path.stem),)

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """The report of the header and the result files of its folder."""
        args = context.arguments_as(KlippelArguments)
        folder = source.path.stem
        try:
            text = _decode(source.data, args.encoding, "")
            header = _parse_header(text)
            files = _result_files(source.companions, folder)
            report_id = ReportIds(source.data, source.companions)(0)
            report = _build(source.path, header, files, args, context, report_id)
        except _Error as exc:
            raise ConversionError(self.name, str(exc)) from None
        return [validated(self.name, "", report)]


def _decode(data: bytes, encoding: str | None, where: str) -> str:
    try:
        return decode_auto(data, encoding)
    except ValueError as exc:
        raise _Error(where, None, str(exc)) from None


def _lines(text: str) -> list[str]:
    # Windows line ends and a missing last newline change nothing.
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


# --- The header --------------------------------------------------------------------------


_USED = frozenset(
    {
        "Cfg_SerialNumber",
        "Cfg_DutStartTime",
        "Cfg_UserName",
        "Cfg_PCName",
        "Ctrl_OverallVerdict",
        "Ctrl_ErrorGeneral",
        *(f"Results_{word}" for word, _ in TASK_LISTS),
    }
)


def _parse_header(text: str) -> _Header:
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, raw in enumerate(_lines(text), 1):
        line = raw.strip()
        if not line or line.startswith("//"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            continue  # like Klippel's own reader: only Key=Value lines count
        if key in values:
            if key in _USED and values[key] != value.strip():
                raise _Error(
                    "", number, f"{key} is given again, differently (first on line {lines[key]})"
                )
            continue
        values[key] = value.strip()
        lines[key] = number
    for key in ("Ctrl_OverallVerdict", "Cfg_SerialNumber"):
        if key not in values:
            raise _Error("", None, f"no {key}= line: this is not a Klippel QC header")
    rank = {f"Results_{word}": i for i, (word, _) in enumerate(TASK_LISTS)}
    tasks: dict[str, Status] = {}
    words: dict[str, str] = {}
    order: list[str] = []
    for key, value in values.items():  # in file order
        if key not in rank:
            continue
        word, status = TASK_LISTS[rank[key]]
        for task in value.split("\t"):
            task = task.strip()
            if not task:
                continue
            if task not in tasks:
                order.append(task)
            elif rank[f"Results_{words[task]}"] <= rank[key]:
                continue  # named by a worse list already
            tasks[task] = status
            words[task] = word
    return _Header(values, lines, tasks, order, words)


def _verdict(header: _Header) -> tuple[Result, str]:
    text = header.values["Ctrl_OverallVerdict"]
    line = header.lines["Ctrl_OverallVerdict"]
    code = int(text) if re.fullmatch(r"[+-]?\d{1,3}", text) else None
    if code is None or code not in VERDICTS:
        raise _Error(
            "",
            line,
            f"Ctrl_OverallVerdict {text!r} is not a Klippel verdict "
            "(-1 void, 0 fail, 1 pass, 2 warning, 3 noise, 4 invalid)",
        )
    result, word = VERDICTS[code]
    return result, f"{code} ({word})"


def _start(header: _Header, path: Path) -> datetime:
    """``Cfg_DutStartTime`` with its own offset; else the file name's date; else now."""
    text = header.values.get("Cfg_DutStartTime", "")
    if not text:
        named = _NAME_START.search(path.name)
        if named is None:
            return now()
        year, month, day, hour, minute, second, tenth, sign, oh, om = named.groups()
        offset = (int(oh) * 60 + int(om)) * (-1 if sign == "-" else 1)
        fields: tuple[int, ...] = (
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
        )
        micro = int(tenth or 0) * 100_000
        where = f"the file name's date {named.group(0)!r}"
        return _moment(fields, micro, offset, where, None)
    match = _START.fullmatch(text)
    line = header.lines["Cfg_DutStartTime"]
    if match is None:
        raise _Error(
            "",
            line,
            f"Cfg_DutStartTime {text!r} is not Year-Month-WeekNo-JulianDay-WeekDay-Day-Hour-"
            "Min-Sec-ms-UTCoffset",
        )
    g = match.groupdict()
    fields = tuple(int(g[k]) for k in ("year", "month", "day", "hour", "minute", "second"))
    return _moment(
        fields, int(g["ms"]) * 1000, int(g["offset"]), f"Cfg_DutStartTime {text!r}", line
    )


def _moment(
    fields: tuple[int, ...], micro: int, offset: int, what: str, line: int | None
) -> datetime:
    year, month, day, hour, minute, second = fields
    if not -1440 < offset < 1440:
        raise _Error("", line, f"{what}: the UTC offset {offset} minutes is out of range")
    try:
        return datetime(
            year,
            month,
            day,
            hour,
            minute,
            second,
            micro,
            tzinfo=timezone(timedelta(minutes=offset)),
        )
    except ValueError as exc:
        raise _Error("", line, f"{what} is not a date: {exc}") from None


# --- The result files --------------------------------------------------------------------


def _result_files(companions: Mapping[str, bytes], folder: str) -> list[tuple[str, bytes]]:
    """The ``*.txt`` files directly in the header's folder, by name."""
    out: list[tuple[str, bytes]] = []
    for key, data in companions.items():
        parts = key.split("/")
        if len(parts) == 2 and parts[0] == folder and parts[1].lower().endswith(".txt"):
            out.append((key, data))
    if not out:
        raise _Error(
            "",
            None,
            f"no result files: the folder {folder!r} beside the header is missing or holds "
            "no .txt file",
        )
    out.sort()
    return out


def _number(text: str, where: str, line: int, column: str) -> float | None:
    """A cell's number, or None for Klippel's ``-`` (and empty or non-finite cells)."""
    cell = text.strip()
    if cell.lower() in _NO_VALUE:
        return None
    try:
        return parse_float(cell)
    except ValueError as exc:
        raise _Error(where, line, f"column {column}: {exc}") from None


_Row = tuple[int, str, list[str]]
"""A data row: its line number, the line, and its cells (as many as the header row)."""

# A row of plain numbers, "-" and empty cells (what Klippel writes): one match per row, so
# its cells need no check of their own (the speed of a 160-point curve is in this).
# Unambiguous on purpose (one way to match each digit): a failing match must not backtrack.
_PLAIN_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_PLAIN_ROW = re.compile(rf"(?:{_PLAIN_NUMBER}|-?)(?:\t(?:{_PLAIN_NUMBER}|-?))*")


def _row_values(
    row: _Row, start: int, where: str, head: Sequence[str]
) -> tuple[list[float | None], list[str]]:
    """The numbers of a row's cells from ``start`` on (None: no value), and their text."""
    number, line, cells = row
    rest = line.split("\t", start)[-1] if start else line
    if len(cells) > start and _PLAIN_ROW.fullmatch(rest):
        values: list[float | None] = [None] * start
        values += [None if c in ("", "-") else float(c) for c in cells[start:]]
        # A plain number may still overflow to infinity ("1e999"): x - x is not 0 then.
        if all(v is None or v - v == 0 for v in values):
            return values, cells
    texts = [c.strip() for c in cells]
    return [
        None if i < start else _number(text, where, number, head[i]) for i, text in enumerate(texts)
    ], texts


def _rows(text: str, where: str) -> tuple[list[str], list[_Row]]:
    """The header cells and the data rows of a tab-separated file."""
    header: list[str] | None = None
    rows: list[_Row] = []
    width = 0
    for number, line in enumerate(_lines(text), 1):
        if not line.strip():
            continue
        cells = line.split("\t")
        if header is None:
            header = [c.strip() for c in cells]
            width = len(header)
            continue
        if len(cells) > width:
            if any(c.strip() for c in cells[width:]):
                raise _Error(where, number, f"{len(cells)} cells, but the header row names {width}")
            cells = cells[:width]
        elif len(cells) < width:
            cells = cells + [""] * (width - len(cells))
        rows.append((number, line, cells))
    if header is None:
        raise _Error(where, None, "the file is empty (no header row)")
    return header, rows


def _columns(header: list[str], where: str, known: Sequence[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        key = name.lower()
        if not key:
            raise _Error(where, 1, f"column {index + 1} of the header row has no name")
        if key in columns:
            raise _Error(where, 1, f"the header row names {name!r} twice")
        if index > 0 and key not in known:
            raise _Error(
                where, 1, f"unknown column {name!r} (a {header[0]} file has {', '.join(known)})"
            )
        columns[key] = index
    return columns


def _status_of(name: str, header: _Header) -> Status | None:
    return header.tasks.get(name)


def _verdict_text(name: str, header: _Header) -> str | None:
    word = header.words.get(name)
    if word is None or word in ("Pass", "Fail"):
        return None
    return f"Klippel verdict: {word.lower()}"


def _limits_text(low: float | None, high: float | None) -> str:
    parts = [f"min {low:g}" if low is not None else "", f"max {high:g}" if high is not None else ""]
    shown = ", ".join(p for p in parts if p)
    return f" (limits {shown})" if shown else ""


def _values_steps(
    where: str, text: str, header: _Header, covered: set[str], ids: _Ids
) -> list[Step]:
    """One step per ``name value max min`` row."""
    head, rows = _rows(text, where)
    columns = _columns(head, where, ("value", "max", "min", "unit"))
    if "value" not in columns:
        raise _Error(where, 1, "the header row has no 'value' column")
    unit_at = columns.get("unit")
    value_at, max_at, min_at = columns["value"], columns.get("max"), columns.get("min")
    steps: list[Step] = []
    for row in rows:
        number, _, cells = row
        name = cells[0].strip()
        if not name:
            raise _Error(where, number, "the row has no name")
        if unit_at is None:
            got, _ = _row_values(row, 1, where, head)
        else:  # a text column: the numbers are read cell by cell
            got = [
                None if i in (0, unit_at) else _number(c, where, number, head[i])
                for i, c in enumerate(cells)
            ]
        value = got[value_at]
        high = got[max_at] if max_at is not None else None
        low = got[min_at] if min_at is not None else None
        unit = (cells[unit_at].strip() or None) if unit_at is not None else None
        covered.add(name)
        status = _status_of(name, header)
        # MAX comes before MIN in the file: max is the high limit, min the low one.
        comp_op, low_limit, high_limit = encode_limits(None, low, high)
        note = _verdict_text(name, header)
        if value is None:
            # Nothing measured: a numeric step without a value may not be stored by every
            # server, so it is a pass/fail step carrying the task's verdict.
            status = status or Status.SKIPPED
            text_note = f"no value{_limits_text(low, high)}"
            steps.append(
                Step(
                    id=ids.next(),
                    group=StepGroup.MAIN,
                    step_type="ET_PFT",
                    name=name,
                    status=status,
                    report_text=f"{note}; {text_note}" if note else text_note,
                    boolean_meas=[BooleanMeasurement(status=status)],
                )
            )
            continue
        passed = comp_op.evaluate(value, low_limit, high_limit)
        measured = Status.PASSED if passed else Status.FAILED
        status = status or measured
        steps.append(
            Step(
                id=ids.next(),
                group=StepGroup.MAIN,
                step_type="ET_NLT",
                name=name,
                status=status,
                report_text=note,
                numeric_meas=[
                    NumericMeasurement(
                        comp_op=comp_op,
                        value=value,
                        low_limit=low_limit,
                        high_limit=high_limit,
                        unit=unit,
                        status=status,
                    )
                ],
            )
        )
    return steps


@attrs.define
class _Series:
    name: str
    x: list[str] = attrs.field(factory=list)
    y: list[str] = attrs.field(factory=list)

    def chart(self) -> ChartSeries:
        step = max(1, math.ceil(len(self.x) / MAX_CHART_POINTS))
        xs, ys = self.x[::step], self.y[::step]
        if (len(self.x) - 1) % step:
            xs.append(self.x[-1])  # keep the end of the frequency range
            ys.append(self.y[-1])
        return ChartSeries(data_type="XYG", name=self.name, xdata=";".join(xs), ydata=";".join(ys))


_Columns = tuple[list[list[str]], list[list[float | None]]]
"""A table by columns: each column's cell texts, and their numbers (None: no value)."""

# What may appear in a plain body; anything else ("nan", spaces, letters) is read row by row.
_NOT_PLAIN = re.compile(r"[^0-9.eE+\-\t\n]")


def _plain_columns(text: str, width: int) -> _Columns | None:
    """The columns of ``text`` after its header line, if every row is plain (what
    Klippel writes: numbers, ``-`` or empty, exactly ``width`` cells): whole-file string
    operations, no work per row in Python. None means: read it row by row."""
    if not text or text[0] in "\n \t":
        return None
    _, _, body = text.partition("\n")
    body = body.rstrip("\n")
    if not body:
        return [[] for _ in range(width)], [[] for _ in range(width)]
    if _NOT_PLAIN.search(body):
        return None
    lines = body.split("\n")
    if set(map(str.count, lines, ["\t"] * len(lines))) != {width - 1}:
        return None  # a row of another width, or a blank line
    flat = body.replace("\n", "\t").split("\t")
    texts = [flat[i::width] for i in range(width)]
    try:
        # float() takes exactly parse_float's numbers over these characters.
        values = [[None if c in ("", "-") else float(c) for c in column] for column in texts]
    except ValueError:
        return None
    for column in values:
        # A number may still overflow to infinity ("1e999").
        if not all(map(math.isfinite, [v for v in column if v is not None])):
            return None
    return texts, values


def _row_columns(rows: list[_Row], where: str, head: Sequence[str]) -> _Columns:
    """The columns of ``rows``, cell by cell (the error names the line and column)."""
    texts: list[list[str]] = [[] for _ in head]
    values: list[list[float | None]] = [[] for _ in head]
    for row in rows:
        got, cells = _row_values(row, 0, where, head)
        for i, (text, value) in enumerate(zip(cells, got, strict=True)):
            texts[i].append(text)
            values[i].append(value)
    return texts, values


def _beyond(
    xs: list[float | None],
    ys: list[float | None],
    limits: list[float | None],
    outside: Callable[[float, float], bool],
) -> int:
    """How many points (with a frequency, a value and this limit) are ``outside`` it."""
    if None not in xs and None not in ys and None not in limits:
        return sum(map(outside, ys, limits))  # type: ignore[arg-type]
    return sum(
        1
        for x, y, limit in zip(xs, ys, limits, strict=True)
        if x is not None and y is not None and limit is not None and outside(y, limit)
    )


def _curve_step(where: str, text: str, header: _Header, covered: set[str], ids: _Ids) -> Step:
    """A curve (``frq <name> [max [min]]``): counts outside the limits, and its chart."""
    first_line = text.partition("\n")[0]
    plain = None
    if first_line.strip():
        head = [c.strip() for c in first_line.split("\t")]
        plain = _plain_columns(text, len(head))
    if plain is None:
        head, rows = _rows(text, where)
    if len(head) < 2 or not head[1]:
        raise _Error(where, 1, "a curve file has frq and a value column (frq imp max min)")
    quantity = head[1]
    if quantity.lower() in ("frq", "max", "min", "unit"):
        raise _Error(where, 1, f"the second column is {quantity!r}, not the curve's value")
    extra = [h.lower() for h in head[2:] if h.lower() not in ("max", "min")]
    columns = _columns(head, where, (quantity.lower(), "max", "min", *extra))
    texts, values = plain if plain is not None else _row_columns(rows, where, head)
    value_at, max_at, min_at = 1, columns.get("max"), columns.get("min")
    others = [(i, h) for i, h in enumerate(head) if i > 1 and i not in (max_at, min_at)]
    series = {i: _Series(head[i]) for i in (value_at, max_at, min_at) if i is not None}
    series.update({i: _Series(h) for i, h in others})
    # A point without a frequency has nothing to draw or judge.
    xs, x_texts = values[0], texts[0]
    complete = None not in xs
    for index, line in series.items():
        column, column_texts = values[index], texts[index]
        if complete and None not in column:
            line.x, line.y = x_texts, column_texts  # every point (the usual case)
            continue
        keep = [x is not None and v is not None for x, v in zip(xs, column, strict=True)]
        line.x = list(itertools.compress(x_texts, keep))
        line.y = list(itertools.compress(column_texts, keep))
    ys = values[value_at]
    measured = [y for x, y in zip(xs, ys, strict=True) if x is not None and y is not None]
    lowest = min(measured) if measured else None
    highest = max(measured) if measured else None
    above = _beyond(xs, ys, values[max_at], operator.gt) if max_at is not None else 0
    below = _beyond(xs, ys, values[min_at], operator.lt) if min_at is not None else 0
    covered.add(quantity)
    measurements: list[NumericMeasurement] = []
    for label, extreme in (("Lowest", lowest), ("Highest", highest)):
        if extreme is not None:
            measurements.append(
                NumericMeasurement(
                    name=label, comp_op=CompOp.LOG, value=extreme, status=Status.PASSED
                )
            )
    for label, at, count in (("Above max", max_at, above), ("Below min", min_at, below)):
        if at is not None:
            measurements.append(
                NumericMeasurement(
                    name=label,
                    comp_op=CompOp.EQ,
                    value=float(count),
                    low_limit=0.0,
                    unit="#",
                    status=Status.PASSED if count == 0 else Status.FAILED,
                )
            )
    points = len(series[value_at].x)
    computed = (
        Status.SKIPPED if not points else worst_status(m.status for m in measurements if m.status)
    )
    status = _status_of(quantity, header) or computed
    drawn = [s.chart() for s in series.values() if s.x]
    chart = (
        Chart(
            chart_type="LineLogX",
            label=quantity,
            x_label="Frequency",
            x_unit="Hz",
            y_label=quantity,
            series=drawn,
        )
        if drawn
        else None
    )
    note = _verdict_text(quantity, header)
    if not measurements:
        # No value and no limit anywhere: a step that only carries the task's verdict.
        text_note = "no values in the curve"
        return Step(
            id=ids.next(),
            group=StepGroup.MAIN,
            step_type="ET_PFT",
            name=quantity,
            status=status,
            report_text=f"{note}; {text_note}" if note else text_note,
            boolean_meas=[BooleanMeasurement(status=status)],
            chart=chart,
        )
    return Step(
        id=ids.next(),
        group=StepGroup.MAIN,
        step_type="WATS_XYGMNLT",
        name=quantity,
        status=status,
        report_text=note,
        numeric_meas=measurements,
        chart=chart,
    )


def _sequences(
    files: list[tuple[str, bytes]], header: _Header, args: KlippelArguments, ids: _Ids
) -> tuple[list[Step], set[str]]:
    """One sequence per operation (``Sound Pressure`` of ``Sound Pressure-resp.txt``)."""
    groups: dict[str, list[tuple[str, bytes]]] = {}
    for key, data in files:
        stem = key.rpartition("/")[2][: -len(".txt")]
        operation, dash, _ = stem.rpartition("-")
        groups.setdefault(operation if dash and operation else stem, []).append((key, data))
    covered: set[str] = set()
    sequences = []
    for operation, members in groups.items():
        own = ids.next()
        steps: list[Step] = []
        for key, data in members:
            text = _decode(data, args.encoding, key)
            head = next((line for line in _lines(text) if line.strip()), "")
            first = head.split("\t", 1)[0].strip()
            if first.lower() == "name":
                steps.extend(_values_steps(key, text, header, covered, ids))
            elif first.lower() == "frq":
                steps.append(_curve_step(key, text, header, covered, ids))
            elif not head:
                raise _Error(key, None, "the file is empty (no header row)")
            else:
                raise _Error(
                    key,
                    1,
                    f"the first column is {first!r}: a result file starts with name (values) "
                    "or frq (a curve)",
                )
        sequences.append(
            Step(
                id=own,
                group=StepGroup.MAIN,
                step_type="SequenceCall",
                name=operation,
                status=worst_status(s.status for s in steps),
                seq_call=SequenceCallInfo(
                    path=operation, name=operation, version=args.sequenceVersion
                ),
                steps=steps,
            )
        )
    return sequences, covered


def _misc(description: str, text: str) -> MiscInfo:
    # WATS keeps at most 100 characters; the end of a path is the part that tells.
    return MiscInfo(description=description, text=text if len(text) <= 100 else "…" + text[-99:])


def _build(
    path: Path,
    header: _Header,
    files: list[tuple[str, bytes]],
    args: KlippelArguments,
    context: ConversionContext,
    report_id: str,
) -> Report:
    result, verdict = _verdict(header)
    serial = header.values["Cfg_SerialNumber"]
    if not serial:
        raise _Error("", header.lines["Cfg_SerialNumber"], "Cfg_SerialNumber is empty")
    start, start_utc = start_fields(_start(header, path))
    ids = _Ids()
    sequences, covered = _sequences(files, header, args, ids)
    steps: list[Step] = list(sequences)
    for task in header.order:
        if task in covered:
            continue
        # A task with a verdict and no result file (pol, fs in the real file).
        status = header.tasks[task]
        steps.append(
            Step(
                id=ids.next(),
                group=StepGroup.MAIN,
                step_type="ET_PFT",
                name=task,
                status=status,
                report_text=_verdict_text(task, header) or "no result file",
                boolean_meas=[BooleanMeasurement(status=status)],
            )
        )
    root = Step(
        id=1,
        group=StepGroup.MAIN,
        step_type="SequenceCall",
        name=args.sequenceName,
        status=_RESULT_STATUS[result],
        seq_call=SequenceCallInfo(
            path=path.name, name=args.sequenceName, version=args.sequenceVersion
        ),
        steps=steps,
    )
    values = header.values
    misc = [_misc("Ctrl_OverallVerdict", verdict)]
    for key in ("Cfg_Speaker", "Cfg_LoginMode", "Cfg_MonitorID", "Ctrl_SaveData"):
        if values.get(key):
            misc.append(_misc(key, values[key]))
    station = context.station
    return Report(
        type=ReportType.UUT,
        id=report_id,
        pn=args.partNumber,
        sn=serial,
        rev=args.partRevision,
        process_code=args.operationTypeCode,
        result=result,
        machine_name=values.get("Cfg_PCName") or station.machine_name,
        location=station.location,
        purpose=station.purpose,
        start=start,
        start_utc=start_utc,
        uut=UUTInfo(
            user=values.get("Cfg_UserName") or None,
            error_message=values.get("Ctrl_ErrorGeneral") or None,
        ),
        misc_infos=misc,
        root=root,
    )
