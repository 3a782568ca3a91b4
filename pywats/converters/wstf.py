"""The ``wstf`` converter: WATS Standard Text Format (wats-format.md 5.2).

A WSTF file is tab-delimited text holding one or more UUTs, each framed by markers::

    --Header-Start--
    SerialNumber<TAB>SN-1            header: Key<TAB>Value; unknown keys become misc infos
    ...
    --Step-Data-Start--
    StepType<TAB>StepName<TAB>...    optional column-header row
    NumericLimitTest<TAB>VCC<TAB><TAB>5.02<TAB>4.9<TAB>5.1<TAB>GELE<TAB>V<TAB>Passed
    ...
    --Step-Data-End--
    UUTStatus<TAB>Passed             footer: UUTStatus, ErrorCode, ErrorMessage, ExecutionTime
    --UUT-End--

Step rows have the columns StepType, StepName, MeasureName, Value, LowLimit, HighLimit,
CompOperator, Unit, Status, ExecutionTime, ReportText, ErrorCode, ErrorMessage.
``SequenceCall``/``EndSequenceCall`` rows open and close nested sequences. A status given
in the Status column (or UUTStatus) is used as is; otherwise it is computed: numeric and
string steps from their limits, sequences and the report from their children.

Every error names the line (and the column) it was found on.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs

from pywats.converters.arguments import check_arguments
from pywats.converters.base import ConversionContext, Source
from pywats.converters.helpers import (
    decode_text,
    encode_limits,
    now,
    parse_float,
    parse_int,
    parse_result,
    parse_status,
    result_of,
    show,
    start_fields,
    unit_reports,
    worst_status,
)
from pywats.converters.sniffing import head_text
from pywats.errors import ConversionError
from pywats.report.codes import CompOp, ReportType, Result, Status, StepGroup
from pywats.report.model import (
    BooleanMeasurement,
    MiscInfo,
    NumericMeasurement,
    Report,
    SequenceCallInfo,
    Step,
    StringMeasurement,
    SubUnit,
    UUTInfo,
)

HEADER_START = "--Header-Start--"
STEP_DATA_START = "--Step-Data-Start--"
STEP_DATA_END = "--Step-Data-End--"
UUT_END = "--UUT-End--"
#: A constant, not a tuple of the names built for every line.
_SECTION_MARKERS = (STEP_DATA_START, STEP_DATA_END, UUT_END)

#: Step-row columns, in file order.
COLUMNS = (
    "StepType",
    "StepName",
    "MeasureName",
    "Value",
    "LowLimit",
    "HighLimit",
    "CompOperator",
    "Unit",
    "Status",
    "ExecutionTime",
    "ReportText",
    "ErrorCode",
    "ErrorMessage",
)

#: Deeper nesting than this is refused: no tester nests that deep, and the report tree is
#: walked recursively when it is written out.
MAX_DEPTH = 100

_TRUE = frozenset({"true", "1", "pass", "passed", "p", "yes", "ok"})
_FALSE = frozenset({"false", "0", "fail", "failed", "f", "no", "ng"})


@attrs.frozen
class WstfArguments:
    """Arguments of the ``wstf`` converter (names as in Virinco's WSTF converter)."""

    #: Process code when the header has no OperationTypeCode.
    operationTypeCode: int = 10
    #: Root sequence name when the header has no SoftwareName.
    sequenceName: str = "MainSequence Callback"
    #: Root sequence version when the header has no SoftwareVersion.
    sequenceVersion: str = "0.0.0"
    #: Operator (``uut.user``) when the header has no OperatorName; None leaves it out.
    operator: str | None = None
    #: Text encoding of the files: ``utf-8`` (a byte-order mark is skipped) or e.g. ``cp1252``.
    encoding: str = "utf-8"

    def __attrs_post_init__(self) -> None:
        check_arguments(self)


class _ParseError(Exception):
    """A problem at a line (and column) of the file; turned into a ConversionError."""

    def __init__(self, line: int, reason: str, column: str | None = None) -> None:
        self.line = line
        self.column = column
        self.reason = reason
        where = f"line {line}" + (f", column {column}" if column else "")
        super().__init__(f"{where}: {reason}")


class _State(enum.Enum):
    OUTSIDE = "outside a UUT"
    HEADER = "in the header"
    STEPS = "in the step data"
    FOOTER = "in the footer"


# Enum members read for every row, looked up once: reading a member off its Enum class
# costs about 100 ns in Python 3.11 (a descriptor call), as much as the test it is for.
_IN_STEPS = _State.STEPS
_MAIN = StepGroup.MAIN
_PASSED = Status.PASSED
_FAILED = Status.FAILED
_GELE = CompOp.GELE


@attrs.define
class _Node:
    """A step being built; frozen into a Step when its UUT ends."""

    line: int
    id: int
    step_type: str
    name: str
    status: Status | None = None
    tot_time: float | None = None
    report_text: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    numeric: list[NumericMeasurement] | None = None
    boolean: list[BooleanMeasurement] | None = None
    string: list[StringMeasurement] | None = None
    #: Leaf steps are made Steps as soon as their row is read; sequences and multiple
    #: numeric tests stay _Nodes until the UUT ends, as later rows add to them.
    children: list[_Node | Step] | None = None
    seq_call: SequenceCallInfo | None = None

    def freeze(self, version: str) -> Step:
        """The finished Step; nested sequence calls get the UUT's sequence ``version``."""
        children = self.children
        steps = (
            [child.freeze(version) if isinstance(child, _Node) else child for child in children]
            if children is not None
            else None
        )
        seq_call = self.seq_call
        if seq_call is not None and seq_call.version is None:
            seq_call = attrs.evolve(seq_call, version=version)
        status = self.status
        if status is None:
            if steps is not None:
                # The set of statuses, not each of a few hundred: worst_status keeps the
                # first of the most severe, and the only statuses alike in severity
                # (Passed, Done) both come out as Passed, so the order does not matter.
                status = worst_status({s.status for s in steps})
            else:
                status = worst_status(m.status for m in self.numeric or [] if m.status)
        return Step(
            id=self.id,
            group=StepGroup.MAIN,
            step_type=self.step_type,
            name=self.name,
            status=status,
            tot_time=self.tot_time,
            report_text=self.report_text,
            error_code=self.error_code,
            error_message=self.error_message,
            seq_call=seq_call,
            numeric_meas=self.numeric,
            boolean_meas=self.boolean,
            string_meas=self.string,
            steps=steps,
        )


#: A row's LowLimit, HighLimit and CompOperator cells, and what they were read as.
_LimitCells = tuple[str, str, str]
_Limits = tuple[CompOp | None, float | None, float | None]


@attrs.define
class _Uut:
    """One UUT being read: its header values, its step tree and where it started."""

    start_line: int
    root: _Node
    header: dict[str, str] = attrs.field(factory=dict)
    header_lines: dict[str, int] = attrs.field(factory=dict)
    misc: list[MiscInfo] = attrs.field(factory=list)
    sub_units: list[SubUnit] = attrs.field(factory=list)
    stack: list[_Node] = attrs.field(factory=list)
    next_id: int = 2
    #: The file's limit cells read so far (one dict for all its UUTs), see _limit_cells.
    limits: dict[_LimitCells, _Limits] = attrs.field(factory=dict)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


# Header keys and what they become; anything else with a value is a misc info.
_HEADER_KEYS = {
    key.lower(): key
    for key in (
        "SerialNumber",
        "PartNumber",
        "Revision",
        "OperationTypeCode",
        "OperationTypeName",
        "StationName",
        "Location",
        "Purpose",
        "OperatorName",
        "SoftwareName",
        "SoftwareVersion",
        "BatchSerialNumber",
        "Comment",
        "FixtureId",
        "UUTStatus",
        "ErrorCode",
        "ErrorMessage",
        "StartDateTime",
        "UTCStartDateTime",
        "ExecutionTime",
        "TestSocketIndex",
    )
}
_FOOTER_KEYS = frozenset({"UUTStatus", "ErrorCode", "ErrorMessage", "ExecutionTime"})


class WstfConverter:
    """Reads WATS Standard Text Format files; several UUTs in one file give several reports."""

    name = "wstf"
    version = "1.0"
    patterns = ("*.txt",)
    Arguments = WstfArguments

    @staticmethod
    def sniff(head: bytes, name: str) -> str | None:
        """The first line that is not blank is the ``--Header-Start--`` marker."""
        # The marker is the first line: 4 KiB hold it after any blank lines a writer leaves.
        text = head_text(head[:4096]).lstrip()
        end = text.find("\n")
        first = (text if end < 0 else text[:end]).strip()
        return f"first line is the WSTF marker {HEADER_START}" if first == HEADER_START else None

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """One report per UUT (``--Header-Start--`` ... ``--UUT-End--``) in the file."""
        args = context.arguments_as(WstfArguments)
        try:
            text = decode_text(source.data, args.encoding)
        except ValueError as exc:
            raise ConversionError(self.name, str(exc)) from None
        try:
            uuts = _parse(text)
        except _ParseError as exc:
            raise ConversionError(self.name, str(exc)) from None
        many = len(uuts) > 1
        return unit_reports(
            self.name,
            source,
            ((f"UUT {n} (line {u.start_line})" if many else "", u) for n, u in enumerate(uuts, 1)),
            lambda uut, report_id: _build_report(uut, args, context, report_id()),
            _ParseError,
            lambda where, exc: f"{where}, {exc}" if where else str(exc),
        )


def _parse(text: str) -> list[_Uut]:
    uuts: list[_Uut] = []
    limits: dict[_LimitCells, _Limits] = {}
    state = _State.OUTSIDE
    uut: _Uut | None = None
    for number, raw in enumerate(text.split("\n"), 1):
        marker = raw.strip()
        if not marker:
            continue
        if marker == HEADER_START:
            if state is _State.FOOTER:
                # A new header right after a footer ends the UUT: files that leave out
                # --UUT-End-- between UUTs are still unambiguous.
                state = _State.OUTSIDE
            if state is not _State.OUTSIDE:
                assert uut is not None
                raise _ParseError(
                    number,
                    f"{HEADER_START} {state.value} of the UUT that starts at line "
                    f"{uut.start_line} (missing {STEP_DATA_END} or {UUT_END}?)",
                )
            root = _Node(number, 1, "SequenceCall", "", children=[])
            uut = _Uut(start_line=number, root=root, stack=[root], limits=limits)
            uuts.append(uut)
            state = _State.HEADER
            continue
        if marker in _SECTION_MARKERS:
            state = _marker(number, marker, state, uut)
            continue
        if state is _IN_STEPS:  # first: nearly every line is a step row
            assert uut is not None
            _step_row(number, raw, uut)  # its cells are stripped, of a "\r" too
            continue
        line = raw.rstrip("\r")
        if uut is None or state is _State.OUTSIDE:
            raise _ParseError(number, f"expected {HEADER_START}, got {show(line)}")
        _header_line(number, line.split("\t"), uut, footer=state is _State.FOOTER)
    if not uuts:
        raise _ParseError(1, f"no {HEADER_START} marker: this is not a WSTF file")
    if state in (_State.HEADER, _State.STEPS):
        assert uut is not None
        missing = STEP_DATA_START if state is _State.HEADER else STEP_DATA_END
        raise _ParseError(
            number,
            f"the file ends {state.value} of the UUT that starts at line {uut.start_line} "
            f"(no {missing}): is it complete?",
        )
    return uuts


def _marker(number: int, marker: str, state: _State, uut: _Uut | None) -> _State:
    expected = {
        STEP_DATA_START: _State.HEADER,
        STEP_DATA_END: _State.STEPS,
        UUT_END: _State.FOOTER,
    }[marker]
    if state is not expected:
        raise _ParseError(number, f"{marker} {state.value} (expected it {expected.value})")
    if marker == STEP_DATA_START:
        return _State.STEPS
    if marker == STEP_DATA_END:
        assert uut is not None
        if len(uut.stack) > 1:
            open_seq = uut.stack[-1]
            raise _ParseError(
                number,
                f"{STEP_DATA_END} while SequenceCall {open_seq.name!r} (line {open_seq.line}) "
                "is still open (missing EndSequenceCall)",
            )
        return _State.FOOTER
    return _State.OUTSIDE


def _header_line(number: int, cells: list[str], uut: _Uut, *, footer: bool) -> None:
    if len(cells) < 2:
        raise _ParseError(number, f"expected Key<TAB>Value, got {show(cells[0])}")
    raw_key = cells[0].strip()
    value = cells[1].strip()
    key = _HEADER_KEYS.get(raw_key.lower())
    if footer and key not in _FOOTER_KEYS:
        raise _ParseError(
            number,
            f"{raw_key!r} is not a footer key (UUTStatus, ErrorCode, ErrorMessage, ExecutionTime)",
        )
    if raw_key.lower() == "subunit":
        _sub_unit(number, cells, uut)
        return
    if not raw_key:
        raise _ParseError(number, "header line with an empty key")
    if not value:
        return  # an empty value means "not given": the default applies
    if key is None:
        uut.misc.append(MiscInfo(description=raw_key, text=value))
        return
    uut.header[key] = value
    uut.header_lines[key] = number


def _sub_unit(number: int, cells: list[str], uut: _Uut) -> None:
    values = [c.strip() for c in cells[1:5]]
    if len(values) < 3:
        raise _ParseError(
            number,
            "a Subunit line is Subunit<TAB>PartType<TAB>PartNumber<TAB>SerialNumber[<TAB>Revision]",
        )
    part_type, pn, sn = values[:3]
    rev = values[3] if len(values) > 3 and values[3] else None
    uut.sub_units.append(SubUnit(part_type=part_type, pn=pn, sn=sn, rev=rev))


#: Where each column's cell is in a step row (the order of COLUMNS): rows are read by index.
(
    _STEP_TYPE,
    _STEP_NAME,
    _MEASURE_NAME,
    _VALUE,
    _LOW_LIMIT,
    _HIGH_LIMIT,
    _COMP_OPERATOR,
    _UNIT,
    _STATUS,
    _EXECUTION_TIME,
    _REPORT_TEXT,
    _ERROR_CODE,
    _ERROR_MESSAGE,
) = range(len(COLUMNS))
_PADDING = [""] * len(COLUMNS)


# The cell readers below take a cell that is not empty (an empty cell means "not given",
# which each caller checks inline: most cells of most rows are empty, and a call is dear).


def _float(number: int, text: str, column: str) -> float:
    """``parse_float(text)`` of a stripped cell; an error names ``column``."""
    # The usual number is taken here as parse_float takes it (ASCII without "_", float(),
    # finite), saving its second strip and a call per number; anything else, "nan", "inf"
    # and every error included, is left to parse_float, so results and messages are its.
    if text.isascii() and "_" not in text:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return value
    try:
        return parse_float(text)
    except ValueError as exc:
        raise _ParseError(number, str(exc), column) from None


def _int(number: int, text: str, column: str) -> int:
    try:
        return parse_int(text)
    except ValueError as exc:
        raise _ParseError(number, str(exc), column) from None


def _status(number: int, text: str) -> Status:
    try:
        return parse_status(text)
    except ValueError as exc:
        raise _ParseError(number, str(exc), "Status") from None


#: The operators by their (upper-case) spelling: a dict look-up, not CompOp() per row.
_COMP_OPS = {op.value: op for op in CompOp}


def _comp_op(number: int, text: str) -> CompOp:
    comp_op = _COMP_OPS.get(text.upper())
    if comp_op is None:
        ops = ", ".join(op.value for op in CompOp)
        raise _ParseError(number, f"{text!r} is not a comparison operator ({ops})", "CompOperator")
    return comp_op


#: Numeric operators with two limits: given both, encode_limits returns them as they are.
_TWO_LIMITS = frozenset(op for op in CompOp if op.is_numeric and op.limit_count == 2)

#: CompOp.evaluate for a numeric operator once encode_limits has checked that its limits
#: are there, on a finite value (a cell never gives NaN): one comparison per row instead
#: of evaluate()'s checks and matches. test_wstf checks it agrees with CompOp.evaluate.
_PASSES: dict[CompOp, Callable[[float, Any, Any], bool]] = {
    CompOp.LOG: lambda value, low, high: True,
    CompOp.EQ: lambda value, low, high: value == low,
    CompOp.NE: lambda value, low, high: value != low,
    CompOp.GT: lambda value, low, high: value > low,
    CompOp.GE: lambda value, low, high: value >= low,
    CompOp.LT: lambda value, low, high: value < low,
    CompOp.LE: lambda value, low, high: value <= low,
    CompOp.GTLT: lambda value, low, high: low < value < high,
    CompOp.GELE: lambda value, low, high: low <= value <= high,
    CompOp.GELT: lambda value, low, high: low <= value < high,
    CompOp.GTLE: lambda value, low, high: low < value <= high,
    CompOp.LTGT: lambda value, low, high: value < low or value > high,
    CompOp.LEGE: lambda value, low, high: value <= low or value >= high,
    CompOp.LEGT: lambda value, low, high: value <= low or value > high,
    CompOp.LTGE: lambda value, low, high: value < low or value >= high,
}


_STEP_TYPES = {
    t.lower(): t
    for t in (
        "SequenceCall",
        "EndSequenceCall",
        "NumericLimitTest",
        "MultipleNumericLimitTest",
        "PassFailTest",
        "StringValueTest",
        "ActionStep",
        "Action",
        "Chart",
        "Series",
    )
}

_STEP_TYPE_NAMES = {t: t for t in _STEP_TYPES.values()}


#: The step types whose one row is the whole step, and the step type of their Step.
_ONE_ROW_TYPES = {
    "NumericLimitTest": "ET_NLT",
    "PassFailTest": "ET_PFT",
    "StringValueTest": "ET_SVT",
    "ActionStep": "Action",
    "Action": "Action",
}


def _step_row(number: int, line: str, uut: _Uut) -> None:
    """A line of the step data (not a marker, not blank)."""
    # The cells stripped (map() runs no bytecode per cell, as a comprehension would), then
    # one "" per column: a row may leave out trailing columns, and this way every column
    # is read by its index.
    given = line.split("\t")
    cells = [*map(str.strip, given), *_PADDING]
    raw_type = cells[_STEP_TYPE]
    if raw_type == "StepType":
        return  # the optional column-header row
    # Spelt as documented (nearly always), a step type needs no lower() to be looked up.
    step_type = _STEP_TYPE_NAMES.get(raw_type) or _STEP_TYPES.get(raw_type.lower())
    if step_type is None:
        known = ", ".join(t for t in _STEP_TYPES.values() if t != "Action")
        raise _ParseError(number, f"unknown StepType {raw_type!r} ({known})", "StepType")
    wats_type = _ONE_ROW_TYPES.get(step_type)
    if wats_type is None:
        _structure_row(number, cells, uut, step_type)
        return
    # A step complete with its one row becomes its Step now, not a _Node frozen when the
    # UUT ends: no later row changes it.
    name = cells[_STEP_NAME]
    if not name:
        raise _ParseError(number, f"a {step_type} row needs a StepName", "StepName")
    step_id = uut.new_id()
    # A row that ends before the Status column has none of the common columns (most rows:
    # the last five columns are seldom used), so _common is skipped for it.
    common = _common(number, cells) if len(given) > _STATUS else _NO_COMMON
    status = common[0]
    # The Step gets keywords only for the fields the row gives: each keyword costs in a
    # call to a class of 30 fields, and a field left out is None just as a None given.
    fields: dict[str, Any]
    if wats_type == "ET_NLT":
        measurement = _numeric_measurement(number, cells, None, uut.limits)
        status = status or measurement.status
        fields = {"numeric_meas": [measurement]}
    elif wats_type == "ET_PFT":
        status = status or _pass_fail(number, cells)
        fields = {"boolean_meas": [BooleanMeasurement(status=status)]}
    elif wats_type == "ET_SVT":
        string = _string_measurement(number, cells, status)
        status = string.status
        fields = {"string_meas": [string]}
    else:
        status = status or _PASSED
        fields = {}
    assert status is not None  # every measurement above has a status
    if common is not _NO_COMMON:
        for field, cell in zip(_COMMON_FIELDS, common[1:], strict=True):
            if cell is not None:
                fields[field] = cell
    children = uut.stack[-1].children
    assert children is not None
    children.append(
        Step(id=step_id, group=_MAIN, step_type=wats_type, name=name, status=status, **fields)
    )


def _structure_row(number: int, cells: list[str], uut: _Uut, step_type: str) -> None:
    """A row that opens or closes a sequence, adds to a multiple numeric test or is a chart."""
    if step_type in ("Chart", "Series"):
        return  # charts are not converted (yet); their rows carry no verdict
    parent = uut.stack[-1]
    assert parent.children is not None
    if step_type == "EndSequenceCall":
        if len(uut.stack) == 1:
            raise _ParseError(number, "EndSequenceCall without an open SequenceCall", "StepType")
        _set_common(parent, _common(number, cells), overwrite=False)
        uut.stack.pop()
        return
    name = cells[_STEP_NAME]
    if step_type == "MultipleNumericLimitTest":
        _multi_numeric_row(number, cells, uut, parent, name)
        return
    assert step_type == "SequenceCall"
    if not name:
        raise _ParseError(number, f"a {step_type} row needs a StepName", "StepName")
    # _Node takes the common columns in the order _common gives them.
    node = _Node(number, uut.new_id(), step_type, name, *_common(number, cells))
    if len(uut.stack) > MAX_DEPTH:
        raise _ParseError(number, f"sequences are nested deeper than {MAX_DEPTH}")
    node.children = []
    node.seq_call = SequenceCallInfo(path=name, name=name, version=None)
    parent.children.append(node)
    uut.stack.append(node)


#: Status, ExecutionTime, ReportText, ErrorCode, ErrorMessage of a row (None when empty).
_Common = tuple[Status | None, float | None, str | None, int | None, str | None]


_NO_COMMON: _Common = (None, None, None, None, None)
#: The Step fields of the common columns after Status, in _common's order.
_COMMON_FIELDS = ("tot_time", "report_text", "error_code", "error_message")


def _common(number: int, cells: list[str]) -> _Common:
    """The columns every step row may carry, read in this order (so is an error's column)."""
    status, tot_time, report_text, error_code, error_message = cells[_STATUS : _ERROR_MESSAGE + 1]
    return (
        _status(number, status) if status else None,
        _float(number, tot_time, "ExecutionTime") if tot_time else None,
        report_text or None,
        _int(number, error_code, "ErrorCode") if error_code else None,
        error_message or None,
    )


def _set_common(node: _Node, common: _Common, *, overwrite: bool) -> None:
    """``common`` onto ``node``; without ``overwrite`` only the columns given."""
    status, tot_time, report_text, error_code, error_message = common
    if status is not None or overwrite:
        node.status = status
    if tot_time is not None or overwrite:
        node.tot_time = tot_time
    if report_text is not None or overwrite:
        node.report_text = report_text
    if error_code is not None or overwrite:
        node.error_code = error_code
    if error_message is not None or overwrite:
        node.error_message = error_message


def _limit_cells(number: int, cells: _LimitCells) -> _Limits:
    """The LowLimit, HighLimit and CompOperator cells read, in this order (so are errors)."""
    low_text, high_text, op_text = cells
    low = _float(number, low_text, "LowLimit") if low_text else None
    high = _float(number, high_text, "HighLimit") if high_text else None
    # The operator as spelt in _COMP_OPS (nearly always) is looked up without a call.
    given = (_COMP_OPS.get(op_text) or _comp_op(number, op_text)) if op_text else None
    return given, low, high


def _numeric_measurement(
    number: int, cells: list[str], name: str | None, seen: dict[_LimitCells, _Limits]
) -> NumericMeasurement:
    """The measurement of a numeric row; ``seen`` holds the limit cells read before."""
    # Cells are read, and errors told, in the order Value, LowLimit, HighLimit,
    # CompOperator, Status (then the limits against the operator).
    text = cells[_VALUE]
    value = _float(number, text, "Value") if text else None
    # The limits of a test are the same in every UUT of a file, and often from test to
    # test: the same three cells are read once (a cell that does not read raises, so
    # only cells that read well are kept).
    key = (cells[_LOW_LIMIT], cells[_HIGH_LIMIT], cells[_COMP_OPERATOR])
    limits = seen.get(key)
    if limits is None:
        limits = seen[key] = _limit_cells(number, key)
    given, low, high = limits
    text = cells[_STATUS]
    status = _status(number, text) if text else None
    if low is not None and high is not None and (given is None or given in _TWO_LIMITS):
        # The usual row: what encode_limits returns for it, without its checks.
        comp_op = _GELE if given is None else given
    else:
        try:
            comp_op, low, high = encode_limits(given, low, high)
        except ValueError as exc:
            raise _ParseError(number, str(exc), "CompOperator") from None
    if value is None and status is None:
        raise _ParseError(number, "a numeric test needs a Value (or a Status)", "Value")
    if status is None:
        assert value is not None
        status = _PASSED if _PASSES[comp_op](value, low, high) else _FAILED
    return NumericMeasurement(
        name=name,
        comp_op=comp_op,
        value=value,
        low_limit=low,
        high_limit=high,
        unit=cells[_UNIT] or None,
        status=status,
    )


def _multi_numeric_row(number: int, cells: list[str], uut: _Uut, parent: _Node, name: str) -> None:
    measure = cells[_MEASURE_NAME]
    if not measure:
        raise _ParseError(
            number, "a MultipleNumericLimitTest row needs a MeasureName", "MeasureName"
        )
    assert parent.children is not None
    last = parent.children[-1] if parent.children else None
    continues = (
        isinstance(last, _Node)
        and last.step_type == "ET_MNLT"
        and (not name or name == last.name)
        and last.numeric is not None
        and all(m.name != measure for m in last.numeric)
    )
    if not continues:
        if not name:
            raise _ParseError(
                number,
                "a MultipleNumericLimitTest row needs a StepName (or must follow a row of "
                "the same step)",
                "StepName",
            )
        last = _Node(number, uut.new_id(), "ET_MNLT", name, numeric=[])
        parent.children.append(last)
        _set_common(last, _common(number, cells), overwrite=True)
        last.status = None  # the Status column is the measurement's; the step's is rolled up
    else:
        assert isinstance(last, _Node)
        text = cells[_EXECUTION_TIME]
        if text:
            last.tot_time = (last.tot_time or 0.0) + _float(number, text, "ExecutionTime")
    assert last.numeric is not None
    last.numeric.append(_numeric_measurement(number, cells, measure, uut.limits))


def _pass_fail(number: int, cells: list[str]) -> Status:
    text = cells[_VALUE]
    if text.lower() in _TRUE:
        return Status.PASSED
    if text.lower() in _FALSE:
        return Status.FAILED
    if not text:
        raise _ParseError(number, "a PassFailTest needs a Value (True/False) or a Status", "Value")
    raise _ParseError(number, f"{text!r} is not True/False (or Pass/Fail, 1/0)", "Value")


def _string_measurement(number: int, cells: list[str], status: Status | None) -> StringMeasurement:
    value = cells[_VALUE]
    limit = cells[_LOW_LIMIT] or None
    text = cells[_COMP_OPERATOR]
    comp_op = _comp_op(number, text) if text else None
    if comp_op is None:
        comp_op = CompOp.CASESENSIT if limit is not None else CompOp.LOG
    if not comp_op.is_string:
        raise _ParseError(
            number,
            f"{comp_op.value} does not compare strings (LOG, EQ, NE, CASESENSIT, IGNORECASE)",
            "CompOperator",
        )
    if status is None:
        if limit is None and comp_op is not CompOp.LOG:
            raise _ParseError(
                number, f"{comp_op.value} needs the expected string in LowLimit", "LowLimit"
            )
        status = Status.PASSED if comp_op.evaluate_string(value, limit) else Status.FAILED
    return StringMeasurement(comp_op=comp_op, value=value, limit=limit, status=status)


def _parsed(uut: _Uut, key: str, parse: type[int] | type[float]) -> int | float | None:
    text = uut.header.get(key)
    if text is None:
        return None
    try:
        return parse_int(text) if parse is int else parse_float(text)
    except ValueError as exc:
        raise _ParseError(uut.header_lines[key], f"{key}: {exc}") from None


def _start(uut: _Uut) -> tuple[str, str]:
    """``start`` and ``startUTC`` from the header (now when it has neither key)."""
    for key, naive_zone in (("StartDateTime", None), ("UTCStartDateTime", UTC)):
        text = uut.header.get(key)
        if text is None:
            continue
        line = uut.header_lines[key]
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise _ParseError(line, f"{key}: {text!r} is not an ISO 8601 date-time") from None
        try:
            if parsed.tzinfo is None:
                # StartDateTime is the station's local time, UTCStartDateTime is UTC.
                parsed = parsed.replace(tzinfo=naive_zone) if naive_zone else parsed.astimezone()
            return start_fields(parsed)
        except (OverflowError, ValueError, OSError):
            raise _ParseError(line, f"{key}: {text!r} is out of range") from None
    return start_fields(now())


def _build_report(
    uut: _Uut, args: WstfArguments, context: ConversionContext, report_id: str
) -> Report:
    h = uut.header
    missing = [k for k in ("SerialNumber", "PartNumber", "Revision") if k not in h]
    if missing:
        raise _ParseError(
            uut.start_line, f"the header has no {', '.join(missing)} (each is required)"
        )
    code = _parsed(uut, "OperationTypeCode", int)
    exec_time = _parsed(uut, "ExecutionTime", float)
    socket = _parsed(uut, "TestSocketIndex", int)
    error_code = _parsed(uut, "ErrorCode", int)
    uut_status = h.get("UUTStatus")
    result: Result | None = None
    if uut_status is not None:
        try:
            result = parse_result(uut_status)
        except ValueError as exc:
            raise _ParseError(uut.header_lines["UUTStatus"], f"UUTStatus: {exc}") from None
    sequence = h.get("SoftwareName", args.sequenceName)
    version = h.get("SoftwareVersion", args.sequenceVersion)
    uut.root.name = sequence
    uut.root.seq_call = SequenceCallInfo(path=sequence, name=sequence, version=version)
    root = uut.root.freeze(version)
    if result is None:
        result = result_of(root.status)
    start, start_utc = _start(uut)
    station = context.station
    return Report(
        type=ReportType.UUT,
        id=report_id,
        pn=h["PartNumber"],
        sn=h["SerialNumber"],
        rev=h["Revision"],
        process_code=int(code) if code is not None else args.operationTypeCode,
        process_name=h.get("OperationTypeName"),
        result=result,
        machine_name=h.get("StationName", station.machine_name),
        location=h.get("Location", station.location),
        purpose=h.get("Purpose", station.purpose),
        start=start,
        start_utc=start_utc,
        uut=UUTInfo(
            user=h.get("OperatorName", args.operator),
            comment=h.get("Comment"),
            exec_time=exec_time,
            fixture_id=h.get("FixtureId"),
            test_socket_index=int(socket) if socket is not None else None,
            error_code=int(error_code) if error_code is not None else None,
            error_message=h.get("ErrorMessage"),
            batch_sn=h.get("BatchSerialNumber"),
        ),
        misc_infos=uut.misc or None,
        sub_units=uut.sub_units or None,
        root=root,
    )
