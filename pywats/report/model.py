"""The WATS report model: immutable attrs classes for the whole WSJF document.

Python names are snake_case; each field's WSJF name (camelCase, exactly as the server
spells it) is derived from it, or given in the field's metadata where WATS spells it
irregularly (``startUTC``, ``batchSN``, ``refUUT`` ...). The wire format itself lives in
:mod:`pywats.report.wsjf`.

Three bookkeeping fields on every object make the round trip lossless:

* ``extra`` keeps keys this model does not know, verbatim (newer server fields, vendor
  additions, output-only fields we do not model).
* ``nulls`` names the WSJF keys that were present with ``null``. A field that is ``None``
  is written as ``null`` only if it is listed there, and left out otherwise, so a parsed
  document serialises back to what it was.
* ``spellings`` keeps a code (status, result, group, compOp, type) written in another case
  than its WSJF spelling, as it was written (``"compOp": "IgnoreCase"``), keyed by WSJF key.
  Codes are read case-insensitively, as the server reads them, and the field holds the
  code itself (:attr:`CompOp.IGNORECASE`); a code whose value is still the one spelled is
  written back with the document's spelling, byte for byte.

Strings are never trimmed or reformatted, and numbers keep their JSON type (``0`` stays
``0``, ``0.0`` stays ``0.0``). Date-times stay the strings they were (``start`` keeps its
seven fractional digits); :meth:`Report.start_datetime` parses on demand.

The classes are frozen for the type checker, which refuses any assignment to a field
(``mypy --strict`` runs in CI; change an object with :func:`attrs.evolve`), and plain
slotted classes at run time: a frozen attrs class sets each field through
``object.__setattr__``, and a step has 29 of them. Building the objects was a third to a
half of every converter's time (``bench/convert.py --breakdown``); the plain classes
convert 15-70 % more MB/s, with the same memory (``docs/performance.md``). They compare
by value, as frozen ones do (none was ever hashable: ``extra`` is a mapping).

Steps are one class: what makes a step numeric, pass/fail or a sequence call is the
measurement array or object it carries, not its free-form ``stepType`` string
(wats-format.md 2.2); :attr:`Step.kind` names it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from pywats.report.codes import CompOp, ReportType, Result, Status, StepGroup

if TYPE_CHECKING:
    from attrs import frozen as _value
else:
    # See the module's doc: what the type checker sees as frozen is built at the speed of
    # a plain slotted class.
    _value = attrs.define


#: Metadata key holding a field's WSJF name when it is not the camelCase of its name.
WIRE = "pywats.wire"
#: Metadata key marking the bookkeeping fields (``extra``, ``nulls``, ``spellings``).
BOOKKEEPING = "pywats.bookkeeping"

JSON = Any  # a decoded JSON value: kept verbatim where the model does not look inside

#: The ``extra`` of an object without unknown keys (read-only).
NO_EXTRA: Mapping[str, JSON] = MappingProxyType({})
#: The ``spellings`` of an object whose codes are all spelled the WSJF way (read-only).
NO_SPELLINGS: Mapping[str, str] = MappingProxyType({})


def camel(name: str) -> str:
    """``machine_name`` -> ``machineName``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def wire_name(field: attrs.Attribute[Any]) -> str:
    """The WSJF key of a model field."""
    return str(field.metadata.get(WIRE) or camel(field.name))


def _opt(wire: str | None = None) -> Any:
    """An optional field: ``None`` means absent (or null, see ``nulls``)."""
    return attrs.field(default=None, metadata={WIRE: wire} if wire else {})


def _req(wire: str | None = None) -> Any:
    """A field the document must carry."""
    return attrs.field(metadata={WIRE: wire} if wire else {})


@_value(kw_only=True)
class WireObject:
    """Base of every WSJF object: carries unknown keys and explicit nulls (see module doc)."""

    # Shared empty mappings by default, not a new dict per object: nearly every object
    # has no unknown keys and no respelled codes, and a converter builds hundreds of
    # thousands of steps and measurements.
    extra: Mapping[str, JSON] = attrs.field(
        default=NO_EXTRA, repr=False, metadata={BOOKKEEPING: True}
    )
    nulls: frozenset[str] = attrs.field(
        default=frozenset(), repr=False, metadata={BOOKKEEPING: True}
    )
    spellings: Mapping[str, str] = attrs.field(
        default=NO_SPELLINGS, repr=False, metadata={BOOKKEEPING: True}
    )


# --- Header parts ----------------------------------------------------------------------------


@_value(kw_only=True)
class UUTInfo(WireObject):
    """``uut``: the test-specific header of a T report."""

    user: str | None = _opt()
    comment: str | None = _opt()
    exec_time: float | None = _opt()
    exec_time_format: str | None = _opt()
    fixture_id: str | None = _opt()
    test_socket_index: int | None = _opt()
    test_socket_index_format: str | None = _opt()
    error_code: int | None = _opt()
    error_code_format: str | None = _opt()
    error_message: str | None = _opt()
    batch_sn: str | None = _opt("batchSN")
    batch_fail_count: int | None = _opt()
    batch_fail_count_format: str | None = _opt()
    batch_loop_index: int | None = _opt()
    batch_loop_index_format: str | None = _opt()
    step_id_caused_uut_failure: int | None = _opt("stepIdCausedUUTFailure")
    referenced_by_uurs: list[JSON] | None = _opt("referencedByUURs")


@_value(kw_only=True)
class UURInfo(WireObject):
    """``uur``: the repair-specific header of an R report.

    ``process_code`` here is the *test* operation in which the failure was found; the
    report's own ``processCode`` is the repair operation.
    """

    user: str | None = _opt()
    comment: str | None = _opt()
    exec_time: float | None = _opt()
    process_code: int | None = _opt()
    process_name: str | None = _opt()
    process_code_format: str | None = _opt()
    ref_uut: str | None = _opt("refUUT")
    confirm_date: str | None = _opt()
    finalize_date: str | None = _opt()
    active: bool | None = _opt()
    parent: str | None = _opt()
    children: list[str] | None = _opt()
    test_operation_guid: str | None = _opt()


@_value(kw_only=True)
class MiscInfo(WireObject):
    """``miscInfos[]``: a key (``description``) with a text or (deprecated) numeric value."""

    description: str = _req()
    text: str | None = _opt()
    numeric: float | None = _opt()
    numeric_format: str | None = _opt()
    typedef: str | None = _opt()
    id: str | None = _opt()


@_value(kw_only=True)
class BinaryData(WireObject):
    """``binaryData[]`` (and UUR failure attachments): a base64 file."""

    content_type: str | None = _opt()
    data: str | None = _opt()
    name: str | None = _opt()
    id: str | None = _opt()


@_value(kw_only=True)
class Failure(WireObject):
    """A failure found on a UUR sub-unit: category and code from the repair configuration."""

    category: str | None = _opt()
    code: str | None = _opt()
    comment: str | None = _opt()
    com_ref: str | None = _opt()
    func_block: str | None = _opt()
    ref_step_id: int | None = _opt()
    ref_step_name: str | None = _opt()
    art_number: str | None = _opt()
    art_rev: str | None = _opt()
    art_vendor: str | None = _opt()
    art_description: str | None = _opt()
    attachments: list[BinaryData] | None = _opt()


@_value(kw_only=True)
class SubUnit(WireObject):
    """``subUnits[]``: a component of the unit. ``idx`` and ``failures`` are the UUR form."""

    part_type: str | None = _opt()
    pn: str | None = _opt()
    rev: str | None = _opt()
    sn: str | None = _opt()
    position: int | None = _opt()
    idx: int | None = _opt()
    parent_idx: int | None = _opt()
    replaced_idx: int | None = _opt()
    failures: list[Failure] | None = _opt()


@_value(kw_only=True)
class Asset(WireObject):
    """``assets[]``: test equipment used (the C# TDM shape; other shapes stay in ``extra``)."""

    asset_sn: str | None = _opt("assetSN")
    usage_count: int | None = _opt()
    usage_count_format: str | None = _opt()


@_value(kw_only=True)
class AdditionalProperty(WireObject):
    """One property of an ``additionalData`` / ``additionalResults`` entry (may nest)."""

    name: str | None = _opt()
    type: str | None = _opt()
    flags: int | None = _opt()
    value: str | None = _opt()
    comment: str | None = _opt()
    num_format: str | None = _opt()
    props: list[AdditionalProperty] | None = _opt()
    array: JSON | None = _opt()


@_value(kw_only=True)
class AdditionalData(WireObject):
    """``additionalData[]`` (report) and ``additionalResults[]`` (step): structured data."""

    name: str | None = _opt()
    props: list[AdditionalProperty] | None = _opt()


# --- Steps -----------------------------------------------------------------------------------


@_value(kw_only=True)
class NumericMeasurement(WireObject):
    """``numericMeas[]``. ``name`` is null for a single-measurement step."""

    comp_op: CompOp | None = _opt()
    name: str | None = _opt()
    status: Status | None = _opt()
    unit: str | None = _opt()
    value: float | None = _opt()
    value_format: str | None = _opt()
    high_limit: float | None = _opt()
    high_limit_format: str | None = _opt()
    low_limit: float | None = _opt()
    low_limit_format: str | None = _opt()

    def evaluate(self) -> bool:
        """Whether ``value`` passes ``comp_op`` with these limits (the server never checks)."""
        if self.comp_op is None or self.value is None:
            raise ValueError("a measurement needs compOp and value to be evaluated")
        return self.comp_op.evaluate(self.value, self.low_limit, self.high_limit)


@_value(kw_only=True)
class BooleanMeasurement(WireObject):
    """``booleanMeas[]`` of a pass/fail step: only a name (null when single) and a status."""

    name: str | None = _opt()
    status: Status | None = _opt()


@_value(kw_only=True)
class StringMeasurement(WireObject):
    """``stringMeas[]``: a measured string compared to an expected ``limit``."""

    comp_op: CompOp | None = _opt()
    name: str | None = _opt()
    status: Status | None = _opt()
    value: str | None = _opt()
    limit: str | None = _opt()


@_value(kw_only=True)
class LoopInfo(WireObject):
    """``loop``: a summary entry has ``num`` (and counts); an iteration has ``idx``."""

    idx: int | None = _opt()
    num: int | None = _opt()
    ending_index: int | None = _opt()
    passed: int | None = _opt()
    failed: int | None = _opt()


@_value(kw_only=True)
class SequenceCallInfo(WireObject):
    """``seqCall``: the sequence file path, sequence name and version."""

    path: str | None = _opt()
    name: str | None = _opt()
    version: str | None = _opt()


@_value(kw_only=True)
class ChartSeries(WireObject):
    """One chart series: semicolon-separated ``xdata``/``ydata`` number lists."""

    data_type: str | None = _opt()
    name: str | None = _opt()
    xdata: str | None = _opt()
    ydata: str | None = _opt()


@_value(kw_only=True)
class Chart(WireObject):
    """``chart``: an XY graph that any step may carry."""

    chart_type: str | None = _opt()
    label: str | None = _opt()
    x_label: str | None = _opt()
    x_unit: str | None = _opt()
    y_label: str | None = _opt()
    y_unit: str | None = _opt()
    series: list[ChartSeries] | None = _opt()


@_value(kw_only=True)
class Attachment(WireObject):
    """``attachment``: one base64 file on a step."""

    name: str | None = _opt()
    content_type: str | None = _opt()
    data: str | None = _opt()
    description: str | None = _opt()


@_value(kw_only=True)
class CallExeInfo(WireObject):
    """``callExe`` of a CallExecutable step."""

    exit_code: float | None = _opt()


@_value(kw_only=True)
class MessagePopupInfo(WireObject):
    """``messagePopup`` of a MessagePopup step: the response text and the button pressed."""

    response: str | None = _opt()
    button: int | None = _opt()


class StepKind(enum.Enum):
    """What a step is, judged by what it carries (``stepType`` only picks an icon)."""

    SEQUENCE_CALL = "sequence call"
    NUMERIC_LIMIT = "numeric limit"
    MULTI_NUMERIC_LIMIT = "multiple numeric limit"
    PASS_FAIL = "pass/fail"
    MULTI_PASS_FAIL = "multiple pass/fail"
    STRING_VALUE = "string value"
    MULTI_STRING_VALUE = "multiple string value"
    CALL_EXE = "call executable"
    MESSAGE_POPUP = "message popup"
    CHART = "chart"
    ATTACHMENT = "attachment"
    ACTION = "action"


@_value(kw_only=True)
class Step(WireObject):
    """A step of the test tree; sequence calls hold child ``steps``."""

    id: int | None = _opt()
    group: StepGroup | None = _opt()
    step_type: str = _req()
    loop: LoopInfo | None = _opt()
    name: str = _req()
    status: Status = _req()
    error_code: int | None = _opt()
    error_code_format: str | None = _opt()
    error_message: str | None = _opt()
    report_text: str | None = _opt()
    start: str | None = _opt()
    tot_time: float | None = _opt()
    tot_time_format: str | None = _opt()
    ts_guid: str | None = _opt()
    caused_seq_failure: bool | None = _opt()
    caused_uut_failure: bool | None = _opt("causedUUTFailure")
    seq_call: SequenceCallInfo | None = _opt()
    numeric_meas: list[NumericMeasurement] | None = _opt()
    boolean_meas: list[BooleanMeasurement] | None = _opt()
    string_meas: list[StringMeasurement] | None = _opt()
    chart: Chart | None = _opt()
    attachment: Attachment | None = _opt()
    call_exe: CallExeInfo | None = _opt()
    message_popup: MessagePopupInfo | None = _opt()
    additional_results: list[AdditionalData] | None = _opt()
    steps: list[Step] | None = _opt()

    @property
    def kind(self) -> StepKind:
        """What the step is, from the data it carries."""
        if self.seq_call is not None or self.steps is not None:
            return StepKind.SEQUENCE_CALL
        for meas, single, multi in (
            (self.numeric_meas, StepKind.NUMERIC_LIMIT, StepKind.MULTI_NUMERIC_LIMIT),
            (self.boolean_meas, StepKind.PASS_FAIL, StepKind.MULTI_PASS_FAIL),
            (self.string_meas, StepKind.STRING_VALUE, StepKind.MULTI_STRING_VALUE),
        ):
            if meas:
                named = len(meas) > 1 or meas[0].name is not None
                return multi if named else single
        if self.call_exe is not None:
            return StepKind.CALL_EXE
        if self.message_popup is not None:
            return StepKind.MESSAGE_POPUP
        if self.chart is not None:
            return StepKind.CHART
        if self.attachment is not None:
            return StepKind.ATTACHMENT
        return StepKind.ACTION

    def walk(self) -> list[Step]:
        """This step and all its descendants in tree order."""
        out: list[Step] = []
        stack = [self]
        while stack:
            step = stack.pop()
            out.append(step)
            stack.extend(reversed(step.steps or []))
        return out


# --- The report ------------------------------------------------------------------------------


@_value(kw_only=True)
class Report(WireObject):
    """A WATS report: a test (``type`` T, with ``root``/``uut``) or a repair (R, ``uur``)."""

    type: ReportType = _req()
    id: str = _req()
    pn: str = _req()
    sn: str = _req()
    rev: str = _req()
    product_name: str | None = _opt()
    process_code: int = _req()
    process_code_format: str | None = _opt()
    process_name: str | None = _opt()
    result: Result = _req()
    machine_name: str = _req()
    location: str = _req()
    purpose: str = _req()
    origin: str | None = _opt()
    start: str = _req()
    start_utc: str | None = _opt("startUTC")
    root: Step | None = _opt()
    uut: UUTInfo | None = _opt()
    uur: UURInfo | None = _opt()
    misc_infos: list[MiscInfo] | None = _opt()
    sub_units: list[SubUnit] | None = _opt()
    assets: list[Asset] | None = _opt()
    asset_stats: list[JSON] | None = _opt()
    binary_data: list[BinaryData] | None = _opt()
    additional_data: list[AdditionalData] | None = _opt()

    def start_datetime(self) -> datetime:
        """``start`` as an aware datetime (fractions beyond microseconds are dropped)."""
        from pywats.report.validate import parse_datetime

        parsed = parse_datetime(self.start)
        if parsed is None:
            raise ValueError(f"start {self.start!r} is not an ISO 8601 date-time with offset")
        return parsed

    def steps(self) -> list[Step]:
        """Every step of the test tree in order (empty for a repair report)."""
        return self.root.walk() if self.root is not None else []


#: Every model class, for the wire converter and the documentation.
MODEL_CLASSES: tuple[type[WireObject], ...] = (
    UUTInfo,
    UURInfo,
    MiscInfo,
    BinaryData,
    Failure,
    SubUnit,
    Asset,
    AdditionalProperty,
    AdditionalData,
    NumericMeasurement,
    BooleanMeasurement,
    StringMeasurement,
    LoopInfo,
    SequenceCallInfo,
    ChartSeries,
    Chart,
    Attachment,
    CallExeInfo,
    MessagePopupInfo,
    Step,
    Report,
)


if TYPE_CHECKING:

    def _stays_frozen_for_the_type_checker(step: Step) -> None:
        # Never runs. mypy --strict fails on an unused "ignore": should the model stop
        # being frozen for the type checker (see the module's doc), this line says so.
        step.name = ""  # type: ignore[misc]
