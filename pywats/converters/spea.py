"""The ``spea`` converter: SPEA ICT semicolon logs (equipment-formats.md 5).

A SPEA log holds one or more test runs, each a block of semicolon records::

    FORMAT;mmdd                                   date order of this run's dates
    START;<folder>;<testplan>;<version>;<product>;<operator>;10/12/2024;16:15:03
    LOT;<batch>
    ANL;<site>;<task>;<task no>;<test no>;<description>;<component PN>;<result>;
        <measure>;<min>;<max>;<unit>;<extra>;<line id>         (one line in the file)
    FUNC;...                                       the same columns (no line id)
    SN;<serial>                                    the serial comes AFTER the data
    BOARDRESULT;FAIL
    END;FAIL;10/12/2024;16:15:22

Every run becomes its own report: a new unit starts at every ``FORMAT`` or ``START``
line (the same serial repeats across retests). The verdict is the run's ``BOARDRESULT``
(else ``END``), never recomputed from the steps. Consecutive rows of one task (task
name and number) form a sequence; a row is

* an action when it has no limits (``min`` = ``max`` = 0), no unit and reads 0;
* a pass/fail step when its measure is ``Automatic`` (shorts/opens judged by the tester);
* otherwise a numeric step: ``GELE`` min..max, ``GE``/``LE`` when SPEA's "no limit"
  sentinel (``-1e10`` / ``+1e10``) opens one side, ``LOG`` without limits, and ``GE`` when
  ``max`` < ``min`` (function tests write ``min`` 1, ``max`` 0 for "at least 1").

Statuses come from the result column (``PASS``; ``FAIL``, ``FAIL(+)``, ``FAIL(-)``,
``FAIL(+/-)``); units are kept as written. Every error names the line it was found on.
"""

from __future__ import annotations

import re
from datetime import datetime
from math import isfinite
from typing import Literal

import attrs

from pywats.converters.arguments import check_arguments
from pywats.converters.base import ConversionContext, Source
from pywats.converters.helpers import (
    decoded_text,
    parse_status,
    show,
    start_fields,
    station_time,
    unit_reports,
    worst_status,
)
from pywats.converters.sniffing import never_raises
from pywats.errors import ConversionError
from pywats.report.codes import CompOp, ReportType, Result, Status, StepGroup
from pywats.report.model import (
    BooleanMeasurement,
    NumericMeasurement,
    Report,
    SequenceCallInfo,
    Step,
    UUTInfo,
)

#: SPEA writes this magnitude for "no limit" on one side (``-1e10`` low, ``+1e10`` high).
NO_LIMIT = 1e10

#: The fields of a measurement record (ANL, FUNC), in file order; the last two may be
#: missing (FUNC records end after ``extra``).
MEASUREMENT_FIELDS = (
    "record",
    "site",
    "task",
    "task no",
    "test no",
    "description",
    "component PN",
    "result",
    "measure",
    "min",
    "max",
    "unit",
    "extra",
    "line id",
)
#: A measurement record needs at least the fields up to ``unit``.
_MIN_FIELDS = MEASUREMENT_FIELDS.index("unit") + 1

#: The unit verdicts BOARDRESULT / END carry, and the report results they mean.
BOARD_RESULTS = {
    "PASS": Result.PASSED,
    "PASSED": Result.PASSED,
    "FAIL": Result.FAILED,
    "FAILED": Result.FAILED,
    "ERROR": Result.ERROR,
    # NONE: the board got no verdict (listed in pyWATS' SPEA converter; no real file shows
    # it). Error, because the run did not end with a judgement; unverified.
    "NONE": Result.ERROR,
    "INTERRUPTED": Result.TERMINATED,
    "ABORTED": Result.TERMINATED,
    "STOPPED": Result.TERMINATED,
}

_MEASUREMENT_RECORDS = ("ANL;", "FUNC;")
_RECORDS = ("FORMAT", "START", "LOT", "ANL", "FUNC", "SN", "BOARDRESULT", "END")
_NO_READING = re.compile(r"[+-]?(?:NAN|INF|INFINITY|1\.#(?:QNAN|IND|INF))", re.IGNORECASE)
_DATE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_SNIFF_START = re.compile(rb"(?m)^(?:FORMAT;[A-Za-z]{4}\r?$|START;[^\r\n]*;)")
_SNIFF_DATA = re.compile(rb"(?m)^(?:ANL|FUNC|BOARDRESULT);")
_BOM = b"\xef\xbb\xbf"

_PASSED_BOOLEAN = (BooleanMeasurement(status=Status.PASSED),)


@attrs.frozen
class SpeaArguments:
    """Arguments of the ``spea`` converter."""

    #: Process code of the reports (the ICT operation on your WATS server).
    operationTypeCode: int = 10
    #: Part number; None takes the product field of each START line.
    partNumber: str | None = None
    #: Part revision (SPEA logs carry none).
    revision: str = "1.0"
    #: Date order for a file with no FORMAT line (never guessed): ``mmdd`` or ``ddmm``.
    dateOrder: Literal["mmdd", "ddmm"] | None = None
    #: Text encoding the files are written in; None reads a byte-order mark, else UTF-8,
    #: else cp1252.
    encoding: str | None = None

    def __attrs_post_init__(self) -> None:
        check_arguments(self)


class _ParseError(Exception):
    """A problem at a line of the file; turned into a ConversionError."""

    def __init__(self, line: int, reason: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {reason}")


@attrs.define
class _Run:
    """One test run being read, from its FORMAT/START line to its END."""

    line: int
    date_order: str | None
    start_line: int | None = None
    start: datetime | None = None
    folder: str = ""
    testplan: str = ""
    version: str = ""
    product: str = ""
    operator: str = ""
    lot: str = ""
    serial: str | None = None
    serial_line: int = 0
    board_result: Result | None = None
    end_result: Result | None = None
    end: datetime | None = None
    ended: bool = False
    sequences: list[Step] = attrs.field(factory=list)
    # The task being read: its key (name, number), name and steps.
    task_key: tuple[str, str] | None = None
    task_name: str = ""
    task_id: int = 0
    task_all_passed: bool = True
    task_steps: list[Step] = attrs.field(factory=list)
    next_id: int = 2

    def close_task(self) -> None:
        if self.task_key is None:
            return
        steps = self.task_steps
        self.sequences.append(
            Step(
                id=self.task_id,
                group=StepGroup.MAIN,
                step_type="SequenceCall",
                name=self.task_name,
                status=(
                    Status.PASSED if self.task_all_passed else worst_status(s.status for s in steps)
                ),
                seq_call=SequenceCallInfo(
                    path=self.task_name, name=self.task_name, version=self.version or None
                ),
                steps=steps,
            )
        )
        self.task_key = None
        self.task_steps = []

    def open_task(self, key: tuple[str, str], name: str) -> None:
        self.close_task()
        # Ids in tree order, as the server numbers them: the sequence before its steps.
        self.task_key, self.task_name, self.task_id = key, name, self.next_id
        self.task_all_passed = True
        self.next_id += 1


class SpeaConverter:
    """Reads SPEA ICT semicolon logs; every run in a file gives its own report."""

    name = "spea"
    version = "1.0"
    patterns = ("*.csv",)
    Arguments = SpeaArguments

    @staticmethod
    @never_raises
    def sniff(head: bytes, name: str) -> str | None:
        """A reason when ``head`` looks like a SPEA log (FORMAT/START and ANL/FUNC lines)."""
        if head.startswith(_BOM):
            head = head[len(_BOM) :]
        if _SNIFF_START.search(head) and _SNIFF_DATA.search(head):
            return "SPEA START;/ANL; records"
        return None

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """One report per run (``FORMAT``/``START`` ... ``END``) in the file."""
        args = context.arguments_as(SpeaArguments)
        text = decoded_text(self.name, source.data, args.encoding)
        try:
            runs = _parse(text, args)
        except _ParseError as exc:
            raise ConversionError(self.name, str(exc)) from None
        return unit_reports(
            self.name,
            source,
            ((f"run {n} (line {run.line})", run) for n, run in enumerate(runs, 1)),
            lambda run, report_id: _build_report(run, args, context, report_id()),
            _ParseError,
            lambda where, exc: f"{where}, {exc}",
        )


def _parse(text: str, args: SpeaArguments) -> list[_Run]:
    runs: list[_Run] = []
    run: _Run | None = None
    date_order: str | None = args.dateOrder
    number = 0
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if line.startswith(_MEASUREMENT_RECORDS):
            # The hot path: all but a handful of lines of a SPEA log are measurements.
            cells = line.split(";")
            if run is None or run.start is None or run.ended:
                raise _ParseError(number, _outside(cells[0], run))
            _measurement(number, cells, run)
            continue
        if not line.strip():
            continue
        tag, sep, _ = line.partition(";")
        tag = tag.strip().upper()
        if not sep or tag not in _RECORDS:
            raise _ParseError(
                number,
                f"{show(line)} is not a SPEA record (known: {', '.join(_RECORDS)})",
            )
        cells = line.split(";")
        if tag == "FORMAT":
            if run is not None:
                _finish(run, number)
            date_order = _date_order(number, cells)
            run = _Run(line=number, date_order=date_order)
            runs.append(run)
            continue
        if tag == "START":
            if run is None or run.start is not None:
                if run is not None:
                    _finish(run, number)
                run = _Run(line=number, date_order=date_order)
                runs.append(run)
            _start(number, cells, run)
            continue
        if run is None or run.start is None or run.ended:
            raise _ParseError(number, _outside(tag, run))
        if tag in ("ANL", "FUNC"):
            # Not the file's own spelling (" anl;", "Func;"), but unambiguous.
            cells[0] = tag
            _measurement(number, cells, run)
        else:
            _header_record(number, tag, cells, run)
    if run is None:
        raise _ParseError(1, "no START line: this is not a SPEA log")
    _finish(run, number, at_end=True)
    return runs


def _outside(tag: str, run: _Run | None) -> str:
    if run is not None and run.ended:
        return f"{tag} record after the END of the run (expected FORMAT or START)"
    return f"{tag} record before the run's START line"


def _date_order(number: int, cells: list[str]) -> str:
    order = cells[1].strip().lower() if len(cells) > 1 else ""
    if order not in ("mmdd", "ddmm"):
        raise _ParseError(
            number, f"FORMAT {show(order)} is not a date order this converter knows (mmdd, ddmm)"
        )
    return order


def _start(number: int, cells: list[str], run: _Run) -> None:
    if len(cells) < 8:
        raise _ParseError(
            number,
            "a START line is START;folder;testplan;version;product;operator;date;time "
            f"(got {len(cells)} fields)",
        )
    run.start_line = number
    run.folder, run.testplan, run.version, run.product, run.operator = (
        c.strip() for c in cells[1:6]
    )
    run.start = _datetime(number, cells[6], cells[7], run.date_order, "START")


def _header_record(number: int, tag: str, cells: list[str], run: _Run) -> None:
    value = cells[1].strip() if len(cells) > 1 else ""
    if tag == "LOT":
        run.lot = value
    elif tag == "SN":
        if not value:
            raise _ParseError(number, "SN line with an empty serial number")
        if run.serial is not None and run.serial != value:
            raise _ParseError(
                number,
                f"a second serial {value!r} in one run (line {run.serial_line} gave "
                f"{run.serial!r})",
            )
        run.serial, run.serial_line = value, number
    elif tag == "BOARDRESULT":
        run.board_result = _board_result(number, value, tag)
    elif tag == "END":
        run.end_result = _board_result(number, value, tag)
        if len(cells) >= 4 and (cells[2].strip() or cells[3].strip()):
            run.end = _datetime(number, cells[2], cells[3], run.date_order, "END")
        run.close_task()
        run.ended = True


def _board_result(number: int, text: str, tag: str) -> Result:
    try:
        return BOARD_RESULTS[text.upper()]
    except KeyError:
        known = ", ".join(BOARD_RESULTS)
        raise _ParseError(number, f"{tag} {show(text)} is not a board result ({known})") from None


def _datetime(number: int, date: str, time: str, order: str | None, tag: str) -> datetime:
    if order is None:
        raise _ParseError(
            number,
            f"{tag} has a date but no FORMAT line gave its order (mmdd or ddmm); "
            "set the converter's `dateOrder` argument",
        )
    d = _DATE.fullmatch(date.strip())
    t = _TIME.fullmatch(time.strip())
    if d is None:
        raise _ParseError(number, f"{tag} date {show(date)} is not mm/dd/yyyy or dd/mm/yyyy")
    if t is None:
        raise _ParseError(number, f"{tag} time {show(time)} is not hh:mm:ss")
    first, second, year = (int(g) for g in d.groups())
    month, day = (first, second) if order == "mmdd" else (second, first)
    try:
        return datetime(year, month, day, int(t.group(1)), int(t.group(2)), int(t.group(3) or 0))
    except ValueError as exc:
        raise _ParseError(
            number, f"{tag} date/time {date.strip()} {time.strip()} ({order}): {exc}"
        ) from None


def _finish(run: _Run, number: int, *, at_end: bool = False) -> None:
    """Check that ``run`` is complete before the next one starts (or the file ends)."""
    run.close_task()
    if run.start is None:
        raise _ParseError(run.line, "FORMAT line without a START line after it")
    what = "the file ends" if at_end else f"line {number} starts a new run"
    if run.serial is None:
        raise _ParseError(
            run.line,
            f"the run has no SN line (the serial comes after the data) and {what}: "
            "is the file complete?",
        )
    if run.board_result is None and run.end_result is None:
        raise _ParseError(
            run.line, f"the run has no BOARDRESULT or END line and {what}: is the file complete?"
        )


# Status words of the result column; FAIL(+) above max, FAIL(-) below min, FAIL(+/-) both
# or no reading. Anything else goes through parse_status (SKIP, ERROR ...).
_STATUSES = {
    "PASS": Status.PASSED,
    "FAIL": Status.FAILED,
    "FAIL(+)": Status.FAILED,
    "FAIL(-)": Status.FAILED,
    "FAIL(+/-)": Status.FAILED,
}


def _status(number: int, text: str) -> Status:
    status = _STATUSES.get(text)
    if status is not None:
        return status
    word = text.strip().upper()
    if word.startswith("FAIL"):
        return Status.FAILED
    if word == "INTERRUPTED":
        return Status.TERMINATED
    try:
        return parse_status(word)
    except ValueError:
        raise _ParseError(
            number,
            f"result {show(text)} is not PASS, FAIL, FAIL(+), FAIL(-) or FAIL(+/-)",
        ) from None


def _number(text: str) -> float:
    """A finite number from stripped text; ValueError says why not.

    ``float()`` first: this runs three times per line, and helpers.parse_float's pattern
    costs more than the parse. What float() takes beyond parse_float (``1_0``, non-ASCII
    digits, ``nan``, ``inf``) is refused after it, so both accept the same numbers.
    """
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    if "_" in text or not text.isascii():
        raise ValueError(f"{text!r} is not a number")
    return value


def _limit(number: int, text: str, field: str) -> float | None:
    stripped = text.strip()
    if not stripped:
        return None
    try:
        return _number(stripped)
    except ValueError as exc:
        raise _ParseError(number, f"{field}: {exc}") from None


def _limits(low: float | None, high: float | None) -> tuple[CompOp, float | None, float | None]:
    """The operator and limits (WATS encoding: a single limit in ``lowLimit``)."""
    if low is not None and low <= -NO_LIMIT:
        low = None
    if high is not None and high >= NO_LIMIT:
        high = None
    if low == 0 and high == 0:
        return CompOp.LOG, None, None  # 0/0 is SPEA's "no limits"
    if low is not None and high is not None:
        if high < low:
            # Function tests write min 1, max 0: a lower limit only.
            return CompOp.GE, low, None
        return CompOp.GELE, low, high
    if low is not None:
        return CompOp.GE, low, None
    if high is not None:
        return CompOp.LE, high, None
    return CompOp.LOG, None, None


def _careful_numbers(
    number: int, measure: str, low_text: str, high_text: str
) -> tuple[float | None, float | None, float | None, str | None]:
    """Value, limits and a report text, with a message naming the field that is wrong."""
    low = _limit(number, low_text, "min")
    high = _limit(number, high_text, "max")
    try:
        return _number(measure), low, high, None
    except ValueError as exc:
        if not _NO_READING.fullmatch(measure):
            raise _ParseError(number, f"measure: {exc}") from None
    # WSJF cannot carry NaN or infinity: the value is left out, the limits and the tester's
    # verdict stay, and the step says why.
    return None, low, high, f"measure: {measure} (no reading)"


def _measurement(number: int, cells: list[str], run: _Run) -> None:
    if len(cells) < _MIN_FIELDS:
        raise _ParseError(
            number,
            f"a {cells[0]} record has {len(cells)} fields, expected at least {_MIN_FIELDS} "
            f"({';'.join(MEASUREMENT_FIELDS[:_MIN_FIELDS])})",
        )
    task = cells[2]
    key = (task, cells[3])
    if key != run.task_key:
        run.open_task(key, task.strip() or f"Task {cells[3].strip()}")
    status = _STATUSES.get(cells[7]) or _status(number, cells[7])
    status_passed = status is Status.PASSED
    name = cells[5].strip() or run.task_name
    measure = cells[8].strip()
    step_id = run.next_id
    run.next_id += 1
    if not status_passed:
        run.task_all_passed = False
    if measure[:1] in "Aa" and measure.lower() == "automatic":
        # Shorts/opens and similar tests the tester judges itself: no reading, no limits.
        step = Step(
            id=step_id,
            group=StepGroup.MAIN,
            step_type="ET_PFT",
            name=name,
            status=status,
            boolean_meas=(
                list(_PASSED_BOOLEAN) if status_passed else [BooleanMeasurement(status=status)]
            ),
        )
        run.task_steps.append(step)
        return
    unit = cells[11].strip() or None
    low_text = cells[9].strip()
    high_text = cells[10].strip()
    value: float | None
    low: float | None
    high: float | None
    report_text: str | None = None
    # The fast path: plain float() on the three numbers. Anything it lets through that a
    # tester does not mean (NaN, infinities, 1_0, non-ASCII digits) takes the careful path.
    try:
        value = float(measure)
        low = float(low_text) if low_text else None
        high = float(high_text) if high_text else None
        plain = (
            isfinite(value)
            and (low is None or isfinite(low))
            and (high is None or isfinite(high))
            and (measure + low_text + high_text).isascii()
            and "_" not in measure + low_text + high_text
        )
    except ValueError:
        plain = False
    if not plain:
        value, low, high, report_text = _careful_numbers(number, measure, low_text, high_text)
    if value == 0 and unit is None and (low or 0) == 0 and (high or 0) == 0:
        # No reading, no limits, no unit: an action (connect, wait, move ...).
        run.task_steps.append(
            Step(id=step_id, group=StepGroup.MAIN, step_type="Action", name=name, status=status)
        )
        return
    comp_op, low, high = _limits(low, high)
    run.task_steps.append(
        Step(
            id=step_id,
            group=StepGroup.MAIN,
            step_type="ET_NLT",
            name=name,
            status=status,
            report_text=report_text,
            numeric_meas=[
                NumericMeasurement(
                    comp_op=comp_op,
                    value=value,
                    low_limit=low,
                    high_limit=high,
                    unit=unit,
                    status=status,
                )
            ],
        )
    )


def _build_report(
    run: _Run, args: SpeaArguments, context: ConversionContext, report_id: str
) -> Report:
    assert run.start is not None
    assert run.serial is not None
    result = run.board_result if run.board_result is not None else run.end_result
    assert result is not None
    pn = args.partNumber if args.partNumber is not None else run.product
    if not pn:
        raise _ParseError(
            run.start_line or run.line,
            "the START line has an empty product field; set the `partNumber` argument",
        )
    try:
        start, start_utc = start_fields(station_time(run.start))
    except (OverflowError, ValueError, OSError) as exc:
        raise _ParseError(run.start_line or run.line, f"start time: {exc}") from None
    exec_time: float | None = None
    if run.end is not None and run.end >= run.start:
        exec_time = (run.end - run.start).total_seconds()
    name = run.testplan or "MainSequence Callback"
    station = context.station
    root = Step(
        id=1,
        group=StepGroup.MAIN,
        step_type="SequenceCall",
        name=name,
        # The root carries the unit's verdict (BOARDRESULT), as the report's result does.
        status=Status(result.value),
        seq_call=SequenceCallInfo(path=run.folder or name, name=name, version=run.version or None),
        steps=run.sequences,
    )
    return Report(
        type=ReportType.UUT,
        id=report_id,
        pn=pn,
        sn=run.serial,
        rev=args.revision,
        process_code=args.operationTypeCode,
        result=result,
        machine_name=station.machine_name,
        location=station.location,
        purpose=station.purpose,
        start=start,
        start_utc=start_utc,
        uut=UUTInfo(
            user=run.operator or None,
            exec_time=exec_time,
            batch_sn=run.lot or None,
        ),
        root=root,
    )
