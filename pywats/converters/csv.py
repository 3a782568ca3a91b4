"""The ``csv`` converter: delimited text whose columns are mapped to a report in the config.

The first row (after ``skipLines``) names the columns. Header fields come from a column
(``columns``), from a ``Key;Value`` line (``keys``) or a constant (``constants``); each
entry of ``steps`` makes a numeric limit step from a value column, with limits, operator
and unit from columns or constants. ``mode = "row"`` (default) makes one report per data
row, ``mode = "file"`` one report per file (header fields from the first data row, every
row adding its steps). The result is the ``result`` column or key when mapped (written as
``resultMap`` says), else computed from the steps.

Real tester exports put a block of ``Key;Value`` (or ``Key = Value``) lines before the
table, and sometimes more after it. With ``keys`` (or ``keySeparator``) set, every line
before the table's header row is such a line, and the header row is the first line that
holds every column the arguments name; after the table, lines like ``Key = Value`` (when
the separator is not the delimiter) are keys too, ``endLine`` ends the data, and with
``sectionRows`` a row with text in its first cell only opens a section (a sequence) that
holds the steps after it.

Example (TOML)::

    [[converters]]
    name = "csv"
    [converters.arguments]
    delimiter = ";"
    decimal = ","
    startFormat = "%d.%m.%Y %H:%M:%S"
    timezone = "Europe/Oslo"
    columns = { sn = "Serial", start = "Date", operator = "User" }
    constants = { pn = "PCBA-100", rev = "A", processCode = 20 }
    [[converters.arguments.steps]]
    valueColumn = "VCC"
    low = 4.9
    high = 5.1
    unit = "V"

Every error at convert time names the line and the column (or the key).
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

import attrs

from pywats.converters.arguments import TEXT_LIMITS, check_length
from pywats.converters.base import ArgumentError, ConversionContext, Source, key_path
from pywats.converters.helpers import (
    ReportIds,
    check_encoding_argument,
    decode_auto,
    encode_limits,
    now,
    parse_float,
    parse_int,
    parse_result,
    parse_status,
    result_of,
    start_fields,
    station_time,
    worst_status,
)
from pywats.errors import ConversionError, ReportValidationError
from pywats.report.codes import CompOp, ReportType, Result, Status, StepGroup
from pywats.report.model import (
    MiscInfo,
    NumericMeasurement,
    Report,
    SequenceCallInfo,
    Step,
    UUTInfo,
)
from pywats.report.validate import validate


@attrs.frozen
class HeaderColumns:
    """Header fields taken from the file: field -> column name (``columns``) or key (``keys``)."""

    pn: str | None = None
    sn: str | None = None
    rev: str | None = None
    processCode: str | None = None
    result: str | None = None
    start: str | None = None
    operator: str | None = None
    machineName: str | None = None
    location: str | None = None
    purpose: str | None = None
    comment: str | None = None
    fixtureId: str | None = None
    batchSN: str | None = None
    execTime: str | None = None
    errorCode: str | None = None
    errorMessage: str | None = None
    #: misc info description -> column (or key)
    miscInfos: dict[str, str] = attrs.field(factory=dict)

    def mapped(self) -> Iterator[tuple[str, str]]:
        """``(field, name)`` of every field mapped (misc infos as ``miscInfos."X"``)."""
        for field in attrs.fields(HeaderColumns):
            value = getattr(self, field.name)
            if field.name == "miscInfos":
                for description, name in value.items():
                    yield key_path("miscInfos", description), name
            elif value is not None:
                yield field.name, value


@attrs.frozen
class HeaderConstants:
    """Header fields with a fixed value."""

    pn: str | None = None
    sn: str | None = None
    rev: str | None = None
    processCode: int | None = None
    operator: str | None = None
    machineName: str | None = None
    location: str | None = None
    purpose: str | None = None
    comment: str | None = None
    fixtureId: str | None = None
    batchSN: str | None = None
    #: misc info description -> text
    miscInfos: dict[str, str] = attrs.field(factory=dict)


def _one_of(constant: object, column: object, key: str) -> None:
    if constant is not None and column is not None:
        raise ArgumentError(
            f"{key}Column", f"give {key} or {key}Column, not both (one value, one source)"
        )


@attrs.frozen
class NumericStep:
    """One numeric limit step made from each row (``valueColumn`` is required)."""

    #: The column holding the measured value.
    valueColumn: str
    #: Step name (default: the value column's name), or ``nameColumn`` to take it per row.
    name: str | None = None
    nameColumn: str | None = None
    #: Low limit, a constant or a column.
    low: float | None = None
    lowColumn: str | None = None
    #: High limit, a constant or a column.
    high: float | None = None
    highColumn: str | None = None
    #: Comparison operator; default GELE with two limits, GE with low, LE with high, else LOG.
    compOp: CompOp | None = None
    #: Unit, a constant or a column.
    unit: str | None = None
    unitColumn: str | None = None
    #: A column with the step's status (Passed/Failed/...); default: computed from limits.
    statusColumn: str | None = None

    def __attrs_post_init__(self) -> None:
        if not self.valueColumn:
            raise ArgumentError("valueColumn", "must name a column")
        _one_of(self.name, self.nameColumn, "name")
        _one_of(self.low, self.lowColumn, "low")
        _one_of(self.high, self.highColumn, "high")
        _one_of(self.unit, self.unitColumn, "unit")
        if self.compOp is not None and not self.compOp.is_numeric:
            raise ArgumentError("compOp", f"{self.compOp.value} compares strings, not numbers")
        if self.lowColumn is None and self.highColumn is None:
            # All limits are constants: check them against the operator now, not per row.
            try:
                encode_limits(self.compOp, self.low, self.high)
            except ValueError as exc:
                raise ArgumentError("compOp", str(exc)) from None

    @property
    def step_name(self) -> str:
        """The constant step name (when there is no ``nameColumn``)."""
        return self.name if self.name is not None else self.valueColumn


_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})")

#: Header fields a report cannot do without: neither the station nor pywats can invent them.
_REQUIRED = ("pn", "sn", "rev")

#: ``encoding`` value that guesses: a byte-order mark, else UTF-8, else cp1252/Latin-1.
AUTO_ENCODING = "auto"


def parse_timezone(name: str) -> tzinfo | None:
    """``local`` (None: the station's zone), ``UTC``, ``+01:00`` or an IANA zone name."""
    if name == "local":
        return None
    if name.upper() in ("UTC", "Z"):
        return UTC
    match = _OFFSET.fullmatch(name)
    if match:
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes))
        if delta >= timedelta(hours=24):
            raise ValueError(f"{name!r} is not a UTC offset")
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError, caught below
        raise ValueError(f"unknown time zone {name!r}") from None
    except KeyError:
        raise ValueError(
            f"unknown time zone {name!r} (use local, UTC, +01:00 or a name like Europe/Oslo)"
        ) from None


def _word_map(
    table: Mapping[str, str], key: str, parse: type[Result] | type[Status]
) -> dict[str, Result | Status]:
    """``resultMap``/``statusMap`` checked: file text (any case) -> result or status."""
    out: dict[str, Result | Status] = {}
    for text, word in table.items():
        where = key_path(key, text)
        if not text.strip():
            raise ArgumentError(where, "the text to match must not be empty")
        try:
            out[text.strip().lower()] = (
                parse_result(word) if parse is Result else parse_status(word)
            )
        except ValueError as exc:
            raise ArgumentError(where, str(exc)) from None
    return out


@attrs.frozen
class CsvArguments:
    """Arguments of the ``csv`` converter."""

    #: ``row``: one report per data row; ``file``: one report per file.
    mode: Literal["row", "file"] = "row"
    #: The field delimiter, one character (``,`` ``;`` ``\\t`` ...).
    delimiter: str = ","
    #: Text encoding (``cp1252``, ``latin-1`` ...) or ``auto``; a byte-order mark wins.
    encoding: str = "utf-8"
    #: Decimal separator in numbers: ``.`` or ``,``.
    decimal: Literal[".", ","] = "."
    #: Lines to skip before the header row (a preamble the tester writes).
    skipLines: int = 0
    #: ``iso`` (ISO 8601) or a strptime format for the start column (``%d.%m.%Y %H:%M``).
    startFormat: str = "iso"
    #: Zone of start times without an offset: ``local``, ``UTC``, ``+01:00``, ``Europe/Oslo``.
    timezone: str = "local"
    #: Name of the root sequence.
    sequenceName: str = "MainSequence Callback"
    columns: HeaderColumns = HeaderColumns()
    #: Header fields from ``Key;Value`` lines: field -> key.
    keys: HeaderColumns = HeaderColumns()
    #: What separates a key from its value in those lines (default: the delimiter).
    keySeparator: str | None = None
    constants: HeaderConstants = HeaderConstants()
    #: Text of the result (column or key) -> Passed, Failed, Error or Terminated.
    resultMap: dict[str, str] = attrs.field(factory=dict)
    #: Text of a status column -> Passed, Failed, Skipped, Done, Error or Terminated.
    statusMap: dict[str, str] = attrs.field(factory=dict)
    #: A row with text in its first cell only opens a section (``mode = "file"``).
    sectionRows: bool = False
    #: A line whose only text is this ends the data; a file without it is truncated.
    endLine: str | None = None
    steps: tuple[NumericStep, ...] = ()

    def __attrs_post_init__(self) -> None:
        if len(self.delimiter) != 1 or self.delimiter in '"\r\n':
            raise ArgumentError("delimiter", "must be one character, not a quote or newline")
        if self.decimal == self.delimiter:
            raise ArgumentError("decimal", "must differ from the delimiter")
        if self.encoding != AUTO_ENCODING:
            check_encoding_argument(self.encoding)
        if self.skipLines < 0:
            raise ArgumentError("skipLines", "must be 0 or more")
        if self.startFormat != "iso":
            sample = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
            try:
                datetime.strptime(sample.strftime(self.startFormat), self.startFormat)
            except ValueError as exc:
                raise ArgumentError("startFormat", f"not a usable strptime format: {exc}") from None
            if "%" not in self.startFormat:
                raise ArgumentError("startFormat", "use 'iso' or a strptime format with % codes")
        try:
            parse_timezone(self.timezone)
        except ValueError as exc:
            raise ArgumentError("timezone", str(exc)) from None
        check_length("sequenceName", self.sequenceName, TEXT_LIMITS["sequenceName"])
        if self.keySeparator is not None and (
            not self.keySeparator.strip() or any(c in self.keySeparator for c in '"\r\n')
        ):
            raise ArgumentError("keySeparator", "must be visible text, not a quote or newline")
        if self.endLine is not None and not self.endLine.strip():
            raise ArgumentError("endLine", "must not be empty")
        if self.sectionRows and self.mode != "file":
            raise ArgumentError("sectionRows", 'sections group the steps of a file: mode = "file"')
        # Parsed (and so checked) now, at start-up; kept for every file.
        _ = self.result_words, self.status_words
        self._check_header()

    @functools.cached_property
    def result_words(self) -> dict[str, Result | Status]:
        """``resultMap`` with its texts in lower case and its words parsed."""
        return _word_map(self.resultMap, "resultMap", Result)

    @functools.cached_property
    def status_words(self) -> dict[str, Result | Status]:
        """``statusMap`` with its texts in lower case and its words parsed."""
        return _word_map(self.statusMap, "statusMap", Status)

    @functools.cached_property
    def sources(self) -> dict[str, tuple[bool, str]]:
        """Header field -> (from a column?, the column or key), for each field mapped."""
        out = {field: (False, key) for field, key in self.keys.mapped() if "." not in field}
        out.update(
            (field, (True, column)) for field, column in self.columns.mapped() if "." not in field
        )
        return out

    @property
    def key_block(self) -> bool:
        """Whether ``Key;Value`` lines come before the table (``keys`` or ``keySeparator``)."""
        return self.keySeparator is not None or any(True for _ in self.keys.mapped())

    @property
    def separator(self) -> str:
        """What separates a key from its value."""
        return self.keySeparator if self.keySeparator is not None else self.delimiter

    def _check_header(self) -> None:
        columns, keys, constants = self.columns, self.keys, self.constants
        for field in attrs.fields(HeaderColumns):
            if field.name == "miscInfos":
                continue
            sources = [
                f"{table}.{field.name}"
                for table, value in (
                    ("columns", getattr(columns, field.name)),
                    ("keys", getattr(keys, field.name)),
                    ("constants", getattr(constants, field.name, None)),
                )
                if value is not None
            ]
            if len(sources) > 1:
                raise ArgumentError(sources[-1], f"also mapped as {sources[0]}; give one of them")
        pairs = (("constants", constants.miscInfos), ("keys", keys.miscInfos))
        for table, infos in pairs:
            for description in sorted(infos.keys() & columns.miscInfos.keys()):
                raise ArgumentError(
                    key_path(table, "miscInfos", description),
                    "also mapped to a column (columns.miscInfos); give one of them",
                )
        for description in sorted(constants.miscInfos.keys() & keys.miscInfos.keys()):
            raise ArgumentError(
                key_path("constants", "miscInfos", description),
                "also mapped to a key (keys.miscInfos); give one of them",
            )
        for name in _REQUIRED:
            if all(getattr(t, name) is None for t in (columns, keys, constants)):
                raise ArgumentError(
                    f"columns.{name}",
                    f"required: map a column (columns.{name}), a key (keys.{name}) "
                    f"or set constants.{name}",
                )


class _RowError(Exception):
    """A problem at a line (and column or key) of the file; turned into a ConversionError."""

    def __init__(
        self, line: int | None, reason: str, column: str | None = None, *, key: str | None = None
    ) -> None:
        parts = [] if line is None else [f"line {line}"]
        if column is not None:
            parts.append(f"column {column!r}")
        if key is not None:
            parts.append(f"key {key!r}")
        super().__init__(f"{', '.join(parts)}: {reason}" if parts else reason)


class _Value:
    """A header value as the file gave it: its text, and where (for messages).

    A plain slotted class, not attrs: ``mode = "row"`` makes some for every row.
    """

    __slots__ = ("column", "key", "line", "text")

    def __init__(
        self, text: str, line: int | None, column: str | None = None, key: str | None = None
    ) -> None:
        self.text = text
        self.line = line
        self.column = column
        self.key = key

    def error(self, reason: str) -> _RowError:
        return _RowError(self.line, reason, self.column, key=self.key)


class _Row:
    """A data row: its line number and its cells.

    A plain slotted class, not attrs: one is kept per data row in ``mode = "row"``.
    """

    __slots__ = ("cells", "index", "line")

    def __init__(self, line: int, cells: list[str], index: Mapping[str, int]) -> None:
        self.line = line
        self.cells = cells
        self.index = index
        """Column name -> its position in the header row (shared by every row)."""

    def get(self, column: str) -> str:
        at = self.index.get(column)
        cells = self.cells
        return cells[at].strip() if at is not None and at < len(cells) else ""


def _number(value: _Value, decimal: str) -> float:
    text = value.text.strip()
    if decimal == ",":
        text = text.replace(",", ".")
    try:
        return parse_float(text)
    except ValueError as exc:
        raise value.error(str(exc)) from None


@attrs.define
class _Table:
    """What a file holds: its data (rows, or the steps already made), and its keys."""

    keys: dict[str, _Value]
    header_line: int | None
    last_line: int
    first: _Row | None
    """The first data row (header fields from columns come from it)."""
    rows: list[_Row]
    """Every data row, for ``mode = "row"``; empty for ``file``, whose rows become
    ``steps`` while the file is read (so a large file is not held twice)."""
    steps: list[Step]
    plans: list[_StepPlan]
    """How each ``steps`` entry reads this file's rows (for ``mode = "row"``)."""


class CsvConverter:
    """Maps the columns of a delimited text file to reports, as the config says."""

    name = "csv"
    version = "1.1"
    patterns = ("*.csv",)
    Arguments = CsvArguments
    # Generic delimited text has no markers to sniff: csv takes these names only when no
    # other converter's sniff claims the file (pywats.converters.sniffing, stage 4).
    fallback_patterns = ("*.csv", "*.txt")

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """One report per data row (``mode = "row"``) or per file (``mode = "file"``)."""
        args = context.arguments_as(CsvArguments)
        try:
            # A byte-order mark wins over the configured encoding: it is what was written.
            declared = None if args.encoding == AUTO_ENCODING else args.encoding
            text = decode_auto(source.data, declared)
        except ValueError as exc:
            raise ConversionError(self.name, str(exc)) from None
        try:
            table = _read_table(text, args)
            groups: list[tuple[_Row | None, list[Step]]]
            if args.mode == "row":
                # The row's steps: ids from 2 (the root is 1), as _StepBuilder numbers them.
                plans = list(enumerate(table.plans, start=2))
                groups = [
                    (row, [plan.step(row.cells, row.line, at) for at, plan in plans])
                    for row in table.rows
                ]
            else:
                groups = [(table.first, table.steps)]
            reports = []
            ids = ReportIds(source.data, source.companions)
            for index, (first, steps) in enumerate(groups):
                report = _build_report(first, steps, table, args, context, ids(index))
                try:
                    reports.append(validate(report))
                except ReportValidationError as exc:
                    line = first.line if first is not None else table.header_line or 1
                    raise ConversionError(self.name, f"line {line}: {exc}", path=exc.path) from exc
        except _RowError as exc:
            raise ConversionError(self.name, str(exc)) from None
        return reports


def _only_text(cells: list[str]) -> str | None:
    """The text of a row with text in its first cell only, else None."""
    first = cells[0].strip() if cells else ""
    if not first or (len(cells) > 1 and "".join(cells[1:]).strip()):
        return None
    return first


def _split_key(text: str, separator: str) -> tuple[str, str] | None:
    """``Key = Value`` split at the separator; None when the line holds none.

    When the separator occurs more than once, the first one with a blank beside it wins:
    ``Overall Status (Pass=0,Fail=1) = 0`` is the key ``Overall Status (Pass=0,Fail=1)``.
    """
    first = text.find(separator)
    if first < 0:
        return None
    at = first
    position = first
    while position >= 0:
        before = text[position - 1 : position]
        after = text[position + len(separator) : position + len(separator) + 1]
        if before.isspace() or after.isspace():
            at = position
            break
        position = text.find(separator, position + len(separator))
    key, value = text[:at].strip(), text[at + len(separator) :].strip()
    return (key, value) if key else None


def _key_line(cells: list[str], args: CsvArguments) -> tuple[str, str] | None:
    """The ``(key, value)`` a line of the key block holds, or None (a title, a blank)."""
    delimiter = args.delimiter
    if args.separator == delimiter:
        if len(cells) < 2 or not cells[0].strip():
            return None
        rest = cells[1:]
        while rest and not rest[-1].strip():
            rest.pop()
        return cells[0].strip(), delimiter.join(rest).strip()
    return _split_key(delimiter.join(cells).strip(), args.separator)


def _read_table(text: str, args: CsvArguments) -> _Table:
    stream = io.StringIO(text, newline="")
    for _ in range(args.skipLines):
        if not stream.readline():
            break
    reader = csv.reader(stream, delimiter=args.delimiter, strict=True)
    skipped = args.skipLines
    block = args.key_block
    wanted = {column for _, column in _mapped_columns(args)}
    # Footer keys only where a key line cannot be mistaken for a table row.
    footer_keys = block and args.separator != args.delimiter
    end_line = args.endLine.strip() if args.endLine is not None else None
    sections = args.sectionRows
    special = footer_keys or sections or end_line is not None
    header: list[str] | None = None
    header_line: int | None = None
    index: dict[str, int] = {}
    width = 0
    rows: list[_Row] = []
    by_row = args.mode == "row"
    first: _Row | None = None
    builder = _StepBuilder([])
    keys: dict[str, _Value] = {}
    ended = False
    line = skipped
    try:
        for cells in reader:
            line = reader.line_num + skipped
            if not cells or (not cells[0].strip() and not "".join(cells).strip()):
                continue  # a blank line (or only delimiters)
            if header is None:
                if block and (not wanted or not wanted <= {c.strip() for c in cells}):
                    # Still in the Key;Value block: the table starts at the first row that
                    # holds every column the arguments name.
                    pair = _key_line(cells, args)
                    if pair is not None:
                        keys[pair[0]] = _Value(pair[1], line, key=pair[0])
                    continue
                header = [c.strip() for c in cells]
                header_line = line
                _check_header(header, header_line, args)
                width = len(header)
                for at, name in enumerate(header):
                    index.setdefault(name, at)
                builder = _StepBuilder([_StepPlan(spec, index, args) for spec in args.steps])
                continue
            if special:
                only = _only_text(cells)
                if only is not None:
                    if only == end_line:
                        ended = True
                        break
                    if footer_keys and args.separator in only:
                        pair = _split_key(only, args.separator)
                        if pair is not None:
                            keys[pair[0]] = _Value(pair[1], line, key=pair[0])  # footer wins
                            continue
                    if sections:
                        builder.section(only)
                        continue
            if len(cells) > width and "".join(cells[width:]).strip():
                raise _RowError(
                    line,
                    f"{len(cells)} fields, but the header row (line {header_line}) has {width}",
                )
            if first is None:
                first = _Row(line, cells, index)
            if by_row:
                rows.append(_Row(line, cells, index))
            else:
                builder.add(cells, line)
    except csv.Error as exc:
        raise _RowError(reader.line_num + skipped, f"not valid CSV: {exc}") from None
    if header is None and not (block and not wanted):
        if block:
            shown = ", ".join(repr(c) for c in sorted(wanted))
            raise _RowError(
                None,
                f"no table header row: none of its {line} lines holds every mapped "
                f"column ({shown})",
            )
        raise _RowError(args.skipLines + 1, "the file has no header row (it is empty)")
    if args.endLine is not None and not ended:
        raise _RowError(
            line,
            f"the file ends without its {args.endLine.strip()!r} line (endLine): it is cut short",
        )
    if first is None and (by_row or not block or wanted - _step_columns(args)):
        # One report per row needs rows; so do header fields taken from a column.
        raise _RowError(header_line or line, "the file has a header row but no data rows")
    steps = [] if by_row else builder.finish()
    return _Table(keys, header_line, line, first, rows, steps, builder.plans)


def _step_columns(args: CsvArguments) -> set[str]:
    return {column for key, column in _mapped_columns(args) if key.startswith("steps[")}


def _mapped_columns(args: CsvArguments) -> Iterator[tuple[str, str]]:
    """(config key, column) for every column the arguments refer to."""
    for name, column in args.columns.mapped():
        yield f"columns.{name}", column
    for index, step in enumerate(args.steps):
        for field in attrs.fields(NumericStep):
            value = getattr(step, field.name)
            if field.name.endswith("Column") and value is not None:
                yield f"steps[{index}].{field.name}", value


def _check_header(header: list[str], line: int, args: CsvArguments) -> None:
    seen: set[str] = set()
    duplicates: set[str] = set()
    for name in header:
        (duplicates if name in seen else seen).add(name)
    for key, column in _mapped_columns(args):
        if column not in seen:
            shown = ", ".join(repr(h) for h in header[:20]) + (", ..." if len(header) > 20 else "")
            raise _RowError(
                line, f"column {column!r} ({key}) is not in the header row; it has: {shown}"
            )
        if column in duplicates:
            raise _RowError(line, f"column {column!r} ({key}) appears twice in the header row")


class _Header:
    """Where the header fields of one report come from: its first row and the file's keys.

    A plain slotted class, not attrs: ``mode = "row"`` makes one per row.
    """

    __slots__ = ("args", "row", "table")

    def __init__(self, row: _Row | None, table: _Table, args: CsvArguments) -> None:
        self.row = row
        self.table = table
        self.args = args

    def value(self, field: str) -> _Value | None:
        """The field's text from its column or key; None when not mapped or not there."""
        source = self.args.sources.get(field)
        if source is None:
            return None
        from_column, name = source
        if from_column:
            if self.row is None:
                return None
            return _Value(self.row.get(name), self.row.line, name)
        return self.table.keys.get(name)

    def required(self, field: str) -> _Value:
        """The field's non-empty text; the error names the column or key that lacks it."""
        found = self.value(field)
        if found is None:
            key = getattr(self.args.keys, field)
            raise _RowError(None, f"the file has no line with the key {key!r} (keys.{field})")
        if not found.text:
            what = "column" if found.column is not None else "key"
            raise found.error(f"empty, but {field} comes from this {what}")
        return found

    def text(self, field: str, *, required: bool = False) -> str | None:
        """A text field from its column, key or constant."""
        source = self.args.sources.get(field)
        if source is None:
            constant: str | None = getattr(self.args.constants, field, None)
            return constant
        from_column, name = source
        if from_column:
            text = self.row.get(name) if self.row is not None else ""
        else:
            found = self.table.keys.get(name)
            text = found.text if found is not None else ""
        if required and not text:
            self.required(field)  # raises: says whether the column is empty or the key missing
        return text or None

    def present(self, field: str) -> _Value | None:
        """The field's value when it is mapped and not empty."""
        found = self.value(field)
        return found if found is not None and found.text else None


def _start(header: _Header, args: CsvArguments) -> tuple[str, str]:
    """``start`` and ``startUTC`` from the start column or key (now when none is mapped)."""
    if args.columns.start is None and args.keys.start is None:
        return start_fields(now())
    value = header.required("start")
    text = value.text
    try:
        if args.startFormat == "iso":
            parsed = datetime.fromisoformat(text)
        else:
            parsed = datetime.strptime(text, args.startFormat)
    except ValueError:
        expected = "an ISO 8601 date-time" if args.startFormat == "iso" else args.startFormat
        raise value.error(f"{text!r} does not match {expected}") from None
    try:
        if parsed.tzinfo is None:
            zone = parse_timezone(args.timezone)
            # No zone written: the station's local time at that date, or the configured zone.
            parsed = station_time(parsed) if zone is None else parsed.replace(tzinfo=zone)
        return start_fields(parsed)
    except (OverflowError, ValueError, OSError):
        raise value.error(f"{text!r} is out of range") from None


def _mapped_word(
    value: _Value, table: Mapping[str, str], words: Mapping[str, Result | Status], what: str
) -> Result | Status:
    """The result or status a cell or key means: its ``what`` map first, then the words."""
    text = value.text.strip()
    found = words.get(text.lower())
    if found is not None:
        return found
    try:
        return parse_result(text) if what == "resultMap" else parse_status(text)
    except ValueError as exc:
        if not words:
            raise value.error(str(exc)) from None
        known = ", ".join(repr(t) for t in table)
        raise value.error(f"{text!r} is neither in {what} ({known}) nor a status word") from None


# Enum members as module constants for the code that runs per row: a member looked up on
# its class (``Status.PASSED``) goes through the enum metaclass, ~90 ns each time.
_MAIN, _UUT = StepGroup.MAIN, ReportType.UUT
_PASSED, _FAILED, _SKIPPED = Status.PASSED, Status.FAILED, Status.SKIPPED
_GELE, _GE, _LE, _LOG = CompOp.GELE, CompOp.GE, CompOp.LE, CompOp.LOG


class _StepPlan:
    """How one ``steps`` entry makes its step from a row: where its cells are in this file's
    rows (header positions), and what it needs, looked up once per file, not per row."""

    __slots__ = (
        "args",
        "comma",
        "constant_name",
        "high",
        "low",
        "name",
        "spec",
        "status",
        "status_of",
        "unit",
        "value",
        "width",
    )

    def __init__(self, spec: NumericStep, index: Mapping[str, int], args: CsvArguments) -> None:
        def at(column: str | None) -> int:
            # -1: not mapped (a constant, or nothing); every mapped column is in the header.
            return index.get(column, -1) if column is not None else -1

        self.spec = spec
        self.value = at(spec.valueColumn)
        self.name = at(spec.nameColumn)
        self.low = at(spec.lowColumn)
        self.high = at(spec.highColumn)
        self.unit = at(spec.unitColumn)
        self.status = at(spec.statusColumn)
        #: The cells a row needs for every position above to be there.
        self.width = 1 + max(self.value, self.name, self.low, self.high, self.unit, self.status)
        self.constant_name = spec.step_name  # when there is no name column
        self.args = args
        self.comma = args.decimal == ","
        #: Status cell text -> its status, for the texts met so far in this file: a status
        #: column holds a handful of words, each looked up (map, then words) once.
        self.status_of: dict[str, Status] = {}

    def step(self, cells: list[str], line: int, step_id: int) -> Step:
        """The step of one data row (``cells``, at ``line``)."""
        if len(cells) < self.width:
            # A short row: the cells it does not have are empty.
            cells = cells + [""] * (self.width - len(cells))
        spec = self.spec
        if self.name >= 0:
            name = cells[self.name].strip()
            if not name:
                raise _RowError(
                    line, "empty, but the step name comes from this column", spec.nameColumn
                )
        else:
            name = self.constant_name
        status: Status | None = None
        if self.status >= 0:
            text = cells[self.status].strip()
            if text:
                status = self.status_of.get(text)
                if status is None:
                    status = self.status_of[text] = self._status(text, line)
        text = cells[self.value].strip()
        if not text:
            # Nothing measured (the tester stopped early): the step is there, skipped.
            return Step(
                id=step_id, group=_MAIN, step_type="ET_NLT", name=name, status=status or _SKIPPED
            )
        value = self.number(text, line, spec.valueColumn)
        low = spec.low
        if self.low >= 0:
            text = cells[self.low].strip()
            low = self.number(text, line, spec.lowColumn) if text else None
        high = spec.high
        if self.high >= 0:
            text = cells[self.high].strip()
            high = self.number(text, line, spec.highColumn) if text else None
        comp_op = spec.compOp
        if comp_op is None:
            # encode_limits' inference inline, as it runs per row: both limits GELE, only
            # low GE, only high LE (its limit in lowLimit), none LOG; and the verdict (the
            # value is finite), used when no status column gave one.
            if low is not None:
                if high is not None:
                    comp_op, passed = _GELE, low <= value <= high
                else:
                    comp_op, passed = _GE, value >= low
            elif high is not None:
                comp_op, passed = _LE, value <= high
                low, high = high, None
            else:
                comp_op, passed = _LOG, True
            if status is None:
                status = _PASSED if passed else _FAILED
        else:
            try:
                comp_op, low, high = encode_limits(comp_op, low, high)
            except ValueError as exc:
                column = spec.lowColumn or spec.highColumn or spec.valueColumn
                raise _RowError(line, f"step {name!r}: {exc}", column) from None
            if status is None:
                status = _PASSED if comp_op.evaluate(value, low, high) else _FAILED
        unit = (cells[self.unit].strip() or None) if self.unit >= 0 else spec.unit
        measurement = NumericMeasurement(
            comp_op=comp_op, value=value, low_limit=low, high_limit=high, unit=unit, status=status
        )
        return Step(
            id=step_id,
            group=_MAIN,
            step_type="ET_NLT",
            name=name,
            status=status,
            numeric_meas=[measurement],
        )

    def number(self, text: str, line: int, column: str | None) -> float:
        """The number in a cell (``text``: stripped, not empty); the error names the cell."""
        number = text.replace(",", ".") if self.comma else text
        try:
            value = float(number)
        except ValueError:
            value = math.nan  # not a number: told below
        # float() also takes "1_000", non-ASCII digits, "nan" and "inf": none is a measured
        # value. Those, and what float() refuses, get parse_float's reason.
        if not math.isfinite(value) or "_" in number or not number.isascii():
            return _number(_Value(text, line, column), "," if self.comma else ".")  # raises
        return value

    def _status(self, text: str, line: int) -> Status:
        """The status a status cell's text (stripped, not empty) means: ``statusMap`` first,
        then the status words; the error names the cell."""
        words = self.args.status_words
        found = words.get(text.lower()) if words else None
        if found is None:
            try:
                found = parse_status(text)
            except ValueError:
                cell = _Value(text, line, self.spec.statusColumn)
                found = _mapped_word(cell, self.args.statusMap, words, "statusMap")  # raises
        assert isinstance(found, Status)
        return found


class _StepBuilder:
    """The steps of a report, made row by row; a section row opens a sequence that holds
    the steps after it (until the next section)."""

    def __init__(self, plans: list[_StepPlan]) -> None:
        self.plans = plans
        self.top: list[Step | tuple[int, str, list[Step]]] = []
        self.current: list[Step] | None = None
        self.sections = False
        self.next_id = 2  # the root is 1; ids follow the order of the file (depth first)

    def section(self, name: str) -> None:
        self.sections = True
        self.current = []
        self.top.append((self.next_id, name, self.current))
        self.next_id += 1

    def add(self, cells: list[str], line: int) -> None:
        into = self.top if self.current is None else self.current
        for plan in self.plans:
            into.append(plan.step(cells, line, self.next_id))
            self.next_id += 1

    def finish(self) -> list[Step]:
        if not self.sections:
            return self.top  # type: ignore[return-value]  # only steps: no section was opened
        out: list[Step] = []
        for item in self.top:
            if isinstance(item, Step):
                out.append(item)
                continue
            step_id, name, children = item
            out.append(
                Step(
                    id=step_id,
                    group=StepGroup.MAIN,
                    step_type="SequenceCall",
                    name=name,
                    status=worst_status(s.status for s in children),
                    seq_call=SequenceCallInfo(path=name, name=name),
                    steps=children,
                )
            )
        return out


def _build_report(
    first: _Row | None,
    steps: list[Step],
    table: _Table,
    args: CsvArguments,
    context: ConversionContext,
    report_id: str,
) -> Report:
    header = _Header(first, table, args)
    constants = args.constants
    root_status = worst_status(s.status for s in steps)
    result = result_of(root_status)
    given = header.present("result")
    if given is not None:
        # An empty (or missing) result means the tester left the verdict to us: computed.
        found = _mapped_word(given, args.resultMap, args.result_words, "resultMap")
        assert isinstance(found, Result)
        result = found
    process_code = constants.processCode if constants.processCode is not None else 10
    if args.columns.processCode is not None or args.keys.processCode is not None:
        value = header.required("processCode")
        try:
            process_code = parse_int(value.text)
        except ValueError as exc:
            raise value.error(str(exc)) from None
    found_time = header.present("execTime")
    exec_time = _number(found_time, args.decimal) if found_time is not None else None
    error_code: int | None = None
    found_code = header.present("errorCode")
    if found_code is not None:
        try:
            error_code = parse_int(found_code.text)
        except ValueError as exc:
            raise found_code.error(str(exc)) from None
    misc = [MiscInfo(description=d, text=t) for d, t in constants.miscInfos.items()]
    for mapping, of_row in ((args.columns.miscInfos, True), (args.keys.miscInfos, False)):
        for description, name in mapping.items():
            if of_row:
                text = header.row.get(name) if header.row is not None else ""
            else:
                key = table.keys.get(name)
                text = key.text if key is not None else ""
            if text:
                misc.append(MiscInfo(description=description, text=text))
    start, start_utc = _start(header, args)
    station = context.station
    return Report(
        type=_UUT,
        id=report_id,
        pn=header.text("pn", required=True) or "",
        sn=header.text("sn", required=True) or "",
        rev=header.text("rev", required=True) or "",
        process_code=process_code,
        result=result,
        machine_name=header.text("machineName") or station.machine_name,
        location=header.text("location") or station.location,
        purpose=header.text("purpose") or station.purpose,
        start=start,
        start_utc=start_utc,
        uut=UUTInfo(
            user=header.text("operator"),
            comment=header.text("comment"),
            fixture_id=header.text("fixtureId"),
            batch_sn=header.text("batchSN"),
            exec_time=exec_time,
            error_code=error_code,
            error_message=_text_only(header, "errorMessage"),
        ),
        misc_infos=misc or None,
        root=Step(
            id=1,
            group=_MAIN,
            step_type="SequenceCall",
            name=args.sequenceName,
            status=root_status,
            seq_call=SequenceCallInfo(path=args.sequenceName, name=args.sequenceName),
            steps=steps,
        ),
    )


def _text_only(header: _Header, field: str) -> str | None:
    """A text field that has no constant (``errorMessage``)."""
    found = header.present(field)
    return found.text if found is not None else None
