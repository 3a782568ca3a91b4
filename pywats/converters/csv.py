"""The ``csv`` converter: delimited text whose columns are mapped to a report in the config.

The first row (after ``skipLines``) names the columns. Header fields come from a column
(``columns``) or a constant (``constants``); each entry of ``steps`` makes a numeric limit
step from a value column, with limits, operator and unit from columns or constants.
``mode = "row"`` (default) makes one report per data row, ``mode = "file"`` one report per
file (header fields from the first data row, every row adding its steps). The result is
the ``result`` column when mapped, else computed from the steps.

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

Every error at convert time names the line and the column.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

import attrs

from pywats.converters.base import ArgumentError, ConversionContext, Source, key_path
from pywats.converters.helpers import (
    check_encoding,
    decode_text,
    encode_limits,
    new_report_id,
    now,
    parse_float,
    parse_int,
    parse_result,
    parse_status,
    result_of,
    start_fields,
    worst_status,
)
from pywats.errors import ConversionError, ReportValidationError
from pywats.report.codes import CompOp, ReportType, Status, StepGroup
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
    """Header fields taken from a column: field -> column name (as in the header row)."""

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
    #: misc info description -> column
    miscInfos: dict[str, str] = attrs.field(factory=dict)


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


@attrs.frozen
class CsvArguments:
    """Arguments of the ``csv`` converter."""

    #: ``row``: one report per data row; ``file``: one report per file.
    mode: Literal["row", "file"] = "row"
    #: The field delimiter, one character (``,`` ``;`` ``\\t`` ...).
    delimiter: str = ","
    #: Text encoding (``utf-8`` skips a byte-order mark; ``cp1252`` for old Windows tools).
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
    constants: HeaderConstants = HeaderConstants()
    steps: tuple[NumericStep, ...] = ()

    def __attrs_post_init__(self) -> None:
        if len(self.delimiter) != 1 or self.delimiter in '"\r\n':
            raise ArgumentError("delimiter", "must be one character, not a quote or newline")
        if self.decimal == self.delimiter:
            raise ArgumentError("decimal", "must differ from the delimiter")
        try:
            check_encoding(self.encoding)
        except ValueError as exc:
            raise ArgumentError("encoding", str(exc)) from None
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
        if not 1 <= len(self.sequenceName) <= 200:
            raise ArgumentError("sequenceName", "must be 1 to 200 characters")
        self._check_header()

    def _check_header(self) -> None:
        columns, constants = self.columns, self.constants
        for field in attrs.fields(HeaderConstants):
            if field.name == "miscInfos":
                continue
            if getattr(constants, field.name) is not None and getattr(columns, field.name):
                raise ArgumentError(
                    f"constants.{field.name}",
                    f"also mapped to a column (columns.{field.name}); give one of them",
                )
        for description in constants.miscInfos.keys() & columns.miscInfos.keys():
            raise ArgumentError(
                key_path("constants", "miscInfos", description),
                "also mapped to a column (columns.miscInfos); give one of them",
            )
        for name in _REQUIRED:
            if getattr(columns, name) is None and getattr(constants, name) is None:
                raise ArgumentError(
                    f"columns.{name}",
                    f"required: map a column (columns.{name}) or set constants.{name}",
                )


class _RowError(Exception):
    """A problem at a line (and column) of the file; turned into a ConversionError."""

    def __init__(self, line: int, reason: str, column: str | None = None) -> None:
        where = f"line {line}" + (f", column {column!r}" if column is not None else "")
        super().__init__(f"{where}: {reason}")


@attrs.frozen
class _Row:
    """A data row: its line number and its cells by column name."""

    line: int
    cells: Mapping[str, str]

    def get(self, column: str) -> str:
        return self.cells.get(column, "").strip()

    def required(self, column: str, what: str) -> str:
        value = self.get(column)
        if not value:
            raise _RowError(self.line, f"empty, but {what} comes from this column", column)
        return value

    def number(self, column: str, decimal: str) -> float | None:
        text = self.get(column)
        if not text:
            return None
        if decimal == ",":
            text = text.replace(",", ".")
        try:
            return parse_float(text)
        except ValueError as exc:
            raise _RowError(self.line, str(exc), column) from None


class CsvConverter:
    """Maps the columns of a delimited text file to reports, as the config says."""

    name = "csv"
    version = "1.0"
    patterns = ("*.csv",)
    Arguments = CsvArguments

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """One report per data row (``mode = "row"``) or per file (``mode = "file"``)."""
        args = context.arguments_as(CsvArguments)
        try:
            text = decode_text(source.data, args.encoding)
        except ValueError as exc:
            raise ConversionError(self.name, str(exc)) from None
        try:
            rows = _read_rows(text, args)
            groups = [[row] for row in rows] if args.mode == "row" else [rows]
            reports = []
            for group in groups:
                report = _build_report(group, args, context)
                try:
                    reports.append(validate(report))
                except ReportValidationError as exc:
                    raise ConversionError(
                        self.name, f"line {group[0].line}: {exc}", path=exc.path
                    ) from exc
        except _RowError as exc:
            raise ConversionError(self.name, str(exc)) from None
        return reports


def _lines(text: str, skip: int) -> Iterator[str]:
    stream = io.StringIO(text, newline="")
    for _ in range(skip):
        if not stream.readline():
            break
    yield from stream


def _read_rows(text: str, args: CsvArguments) -> list[_Row]:
    reader = csv.reader(_lines(text, args.skipLines), delimiter=args.delimiter, strict=True)
    header: list[str] | None = None
    header_line = 0
    rows: list[_Row] = []
    try:
        for cells in reader:
            line = reader.line_num + args.skipLines
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip() for c in cells]
                header_line = line
                _check_header(header, header_line, args)
                continue
            if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
                raise _RowError(
                    line,
                    f"{len(cells)} fields, but the header row (line {header_line}) "
                    f"has {len(header)}",
                )
            rows.append(_Row(line, dict(zip(header, cells, strict=False))))
    except csv.Error as exc:
        raise _RowError(reader.line_num + args.skipLines, f"not valid CSV: {exc}") from None
    if header is None:
        raise _RowError(args.skipLines + 1, "the file has no header row (it is empty)")
    if not rows:
        raise _RowError(header_line, "the file has a header row but no data rows")
    return rows


def _mapped_columns(args: CsvArguments) -> Iterator[tuple[str, str]]:
    """(config key, column) for every column the arguments refer to."""
    for field in attrs.fields(HeaderColumns):
        value = getattr(args.columns, field.name)
        if field.name == "miscInfos":
            for description, column in value.items():
                yield key_path("columns", "miscInfos", description), column
        elif value is not None:
            yield f"columns.{field.name}", value
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


def _start(row: _Row, args: CsvArguments) -> tuple[str, str]:
    """``start`` and ``startUTC`` from the start column (now when none is mapped)."""
    column = args.columns.start
    if column is None:
        return start_fields(now())
    text = row.required(column, "start")
    try:
        if args.startFormat == "iso":
            parsed = datetime.fromisoformat(text)
        else:
            parsed = datetime.strptime(text, args.startFormat)
    except ValueError:
        expected = "an ISO 8601 date-time" if args.startFormat == "iso" else args.startFormat
        raise _RowError(row.line, f"{text!r} does not match {expected}", column) from None
    try:
        if parsed.tzinfo is None:
            zone = parse_timezone(args.timezone)
            parsed = parsed.astimezone() if zone is None else parsed.replace(tzinfo=zone)
        return start_fields(parsed)
    except (OverflowError, ValueError, OSError):
        raise _RowError(row.line, f"{text!r} is out of range", column) from None


def _text(row: _Row, field: str, args: CsvArguments, *, required: bool = False) -> str | None:
    column = getattr(args.columns, field)
    if column is not None:
        return row.required(column, field) if required else (row.get(column) or None)
    constant: str | None = getattr(args.constants, field)
    return constant


def _step(row: _Row, spec: NumericStep, step_id: int, decimal: str) -> Step:
    name = row.required(spec.nameColumn, "the step name") if spec.nameColumn else spec.step_name
    status: Status | None = None
    if spec.statusColumn is not None and row.get(spec.statusColumn):
        try:
            status = parse_status(row.get(spec.statusColumn))
        except ValueError as exc:
            raise _RowError(row.line, str(exc), spec.statusColumn) from None
    value = row.number(spec.valueColumn, decimal)
    if value is None:
        # Nothing measured (the tester stopped early): the step is there, skipped.
        return Step(
            id=step_id,
            group=StepGroup.MAIN,
            step_type="ET_NLT",
            name=name,
            status=status or Status.SKIPPED,
        )
    low = row.number(spec.lowColumn, decimal) if spec.lowColumn else spec.low
    high = row.number(spec.highColumn, decimal) if spec.highColumn else spec.high
    try:
        comp_op, low, high = encode_limits(spec.compOp, low, high)
    except ValueError as exc:
        column = spec.lowColumn or spec.highColumn or spec.valueColumn
        raise _RowError(row.line, f"step {name!r}: {exc}", column) from None
    if status is None:
        status = Status.PASSED if comp_op.evaluate(value, low, high) else Status.FAILED
    unit = (row.get(spec.unitColumn) or None) if spec.unitColumn else spec.unit
    measurement = NumericMeasurement(
        comp_op=comp_op, value=value, low_limit=low, high_limit=high, unit=unit, status=status
    )
    return Step(
        id=step_id,
        group=StepGroup.MAIN,
        step_type="ET_NLT",
        name=name,
        status=status,
        numeric_meas=[measurement],
    )


def _build_report(rows: list[_Row], args: CsvArguments, context: ConversionContext) -> Report:
    first = rows[0]
    columns, constants = args.columns, args.constants
    steps: list[Step] = []
    for row in rows:
        for spec in args.steps:
            steps.append(_step(row, spec, len(steps) + 2, args.decimal))
    root_status = worst_status(s.status for s in steps)
    result = result_of(root_status)
    if columns.result is not None and first.get(columns.result):
        # An empty result cell means the tester left the verdict to us: computed above.
        try:
            result = parse_result(first.get(columns.result))
        except ValueError as exc:
            raise _RowError(first.line, str(exc), columns.result) from None
    process_code = constants.processCode if constants.processCode is not None else 10
    if columns.processCode is not None:
        try:
            process_code = parse_int(first.required(columns.processCode, "processCode"))
        except ValueError as exc:
            raise _RowError(first.line, str(exc), columns.processCode) from None
    exec_time = first.number(columns.execTime, args.decimal) if columns.execTime else None
    misc = [MiscInfo(description=d, text=t) for d, t in constants.miscInfos.items()]
    for description, column in columns.miscInfos.items():
        if first.get(column):
            misc.append(MiscInfo(description=description, text=first.get(column)))
    start, start_utc = _start(first, args)
    station = context.station
    return Report(
        type=ReportType.UUT,
        id=new_report_id(),
        pn=_text(first, "pn", args, required=True) or "",
        sn=_text(first, "sn", args, required=True) or "",
        rev=_text(first, "rev", args, required=True) or "",
        process_code=process_code,
        result=result,
        machine_name=_text(first, "machineName", args) or station.machine_name,
        location=_text(first, "location", args) or station.location,
        purpose=_text(first, "purpose", args) or station.purpose,
        start=start,
        start_utc=start_utc,
        uut=UUTInfo(
            user=_text(first, "operator", args),
            comment=_text(first, "comment", args),
            fixture_id=_text(first, "fixtureId", args),
            batch_sn=_text(first, "batchSN", args),
            exec_time=exec_time,
        ),
        misc_infos=misc or None,
        root=Step(
            id=1,
            group=StepGroup.MAIN,
            step_type="SequenceCall",
            name=args.sequenceName,
            status=root_status,
            seq_call=SequenceCallInfo(path=args.sequenceName, name=args.sequenceName),
            steps=steps,
        ),
    )
