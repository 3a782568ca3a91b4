"""The ``teststand-xml`` converter: NI TestStand's XML report and the WATS add-on dump.

Two layouts of one thing, TestStand's result tree written as ``Prop`` elements
(equipment-formats.md 2):

* the **classic XML report** (``TsWithoutWats.xml``): ``<Reports>`` holding one
  ``<Report Type='UUT' UUTResult='Passed'>`` per unit, each with ``Prop`` children
  ``UUT``, ``StationInfo``, ``StartDate``, ``StartTime`` and the unnamed ``TEResult`` of
  the MainSequence call;
* the **WATS TestStand add-on dump** (``TSWithWats.xml``): ``<TSReport>`` with
  ``<ReportInfo key=… value=…>`` header lines (report id, start with its UTC offset,
  SN/PN/Rev/PCode) and then the same ``Prop`` tree (``MainSequenceResults``).

Each ``Prop`` has a ``Name``, a ``Type`` (Obj, String, Number, Boolean, Array, TEResult)
and its value in a ``Value`` child; an array holds one ``<Value ID='[n]'>`` per element.
A step is a ``TEResult``: ``Status``, ``Error``, ``ReportText``, ``TS.StepName`` … and
its measurement properties (``Numeric``/``Limits``/``Comp``, ``PassFail``, ``String``,
``Measurement[]``). The start time is taken from the numeric date and time fields, never
from their text (``"15:47:48 PM"``: a 24-hour clock with a PM suffix).

Errors name the ``Prop`` path they were found at
(``Report[1]/TEResult/ResultList[4]/ResultList[2] 'Cache Test': Numeric ...``).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime, timedelta

import attrs

from pywats.converters.arguments import check_arguments
from pywats.converters.atml import (
    drop_missing,
    inherit_status,
    int_value,
    is_pass_fail,
    judge_string,
    no_value_note,
    outcome_status,
    parse_number,
    threshold_limits,
    unique_names,
    unit_result,
    with_notes,
)
from pywats.converters.base import ConversionContext, Source
from pywats.converters.helpers import encode_limits, start_fields, station_time, unit_reports
from pywats.converters.sniffing import head_text, never_raises, xml_root
from pywats.converters.xmlread import XmlReadError, describe_tag, parse_xml
from pywats.errors import ConversionError
from pywats.report.codes import CompOp, ReportType, Status, StepGroup
from pywats.report.model import (
    BooleanMeasurement,
    CallExeInfo,
    LoopInfo,
    MessagePopupInfo,
    MiscInfo,
    NumericMeasurement,
    Report,
    SequenceCallInfo,
    Step,
    StringMeasurement,
    SubUnit,
    UUTInfo,
)
from pywats.report.validate import is_guid

#: Deeper step nesting than this is refused (see atml.MAX_DEPTH).
MAX_DEPTH = 100

_GROUPS = {"setup": StepGroup.SETUP, "main": StepGroup.MAIN, "cleanup": StepGroup.CLEANUP}


@attrs.frozen
class TestStandXmlArguments:
    """Arguments of the ``teststand-xml`` converter: defaults for what a file leaves out.

    The WATS add-on writes the part number, revision and process code; the classic
    report (TestStand without WATS) writes none of them.
    """

    __test__ = False  # not a pytest test class, whatever its name

    #: Process code when the file has no ``UUTOperationType`` (or ``PCode``).
    operationTypeCode: int = 10
    #: Part number when the file has none (``UUTPartNumber``, ``PartNumber``, ``PN``).
    partNumber: str = "NA"
    #: Part revision when the file has none (``UUTPartRevisionNumber``, ``Rev``).
    revision: str = "1.0"
    #: Sequence version for sequence calls whose file gives none.
    sequenceVersion: str = "0.0.0"

    def __attrs_post_init__(self) -> None:
        check_arguments(self)


class _Bad(Exception):
    """A problem at a ``Prop`` of the file; becomes one ConversionError line."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")


_UUT_REPORT = re.compile(r"""<Report\s[^>]*\bType\s*=\s*['"]UUT['"]""")


#: One unit of a file: where it is, its element, the dump's ReportInfo, the UUTResult.
_UnitSource = tuple[str, ET.Element, dict[str, str], str | None]


class TestStandXmlConverter:
    """Reads TestStand XML reports and WATS add-on dumps: one report per UUT."""

    __test__ = False

    name = "teststand-xml"
    version = "1.0"
    patterns = ("*.xml",)
    Arguments = TestStandXmlArguments

    @staticmethod
    @never_raises
    def sniff(head: bytes, name: str) -> str | None:
        """Root ``TSReport``, or root ``Reports`` (no namespace) with a ``Report Type='UUT'``.

        WSXF also has a ``Reports`` root, in its own namespace (or, bare, with a
        lower-case ``type`` on its ``Report``): TestStand writes ``Type='UUT'``.
        """
        root = xml_root(head)
        if root is None or root.namespace:
            return None
        if root.local == "TSReport":
            return "root element TSReport (no namespace): the WATS TestStand add-on dump"
        if root.local == "Reports" and _UUT_REPORT.search(head_text(head)):
            return "root element Reports (no namespace) holding <Report Type='UUT'>"
        if root.local == "Report" and _UUT_REPORT.search(head_text(head)):
            return "root element Report Type='UUT' (a TestStand XML report)"
        return None

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """One report per ``Report Type='UUT'`` (a dump is one report)."""
        args = context.arguments_as(TestStandXmlArguments)
        try:
            root = parse_xml(source.data)
        except XmlReadError as exc:
            raise ConversionError(self.name, str(exc)) from None
        units: list[_UnitSource] = []
        if root.tag == "TSReport":
            info = _report_info(root)
            if _root_result(root) is not None:
                units.append(("TSReport", root, info, None))
            else:
                for index, report in enumerate(_uut_reports(root), 1):
                    units.append((f"TSReport/Report[{index}]", report, info, None))
        elif root.tag == "Reports":
            for index, report in enumerate(_uut_reports(root), 1):
                units.append((f"Report[{index}]", report, {}, report.get("UUTResult")))
            if not units:
                raise ConversionError(self.name, "Reports: it holds no <Report Type='UUT'>")
        elif root.tag == "Report":
            units.append(("Report", root, {}, root.get("UUTResult")))
        else:
            raise ConversionError(
                self.name,
                f"the root element is {describe_tag(root.tag)}, not a TestStand Reports, "
                "Report or TSReport",
            )
        if not units:
            raise ConversionError(self.name, "TSReport: no MainSequenceResults and no Report")

        def read(unit: _UnitSource, report_id: Callable[[], str]) -> Report:
            where, container, info, verdict = unit
            return _Unit(args, context, where).read(container, info, verdict, report_id)

        return unit_reports(self.name, source, ((unit[0], unit) for unit in units), read, _Bad)


def _uut_reports(element: ET.Element) -> list[ET.Element]:
    # Batch reports (Type='Batch') summarise the UUT reports beside them: not units.
    return [r for r in element.findall("Report") if (r.get("Type") or "").upper() == "UUT"]


def _report_info(root: ET.Element) -> dict[str, str]:
    info: dict[str, str] = {}
    for item in root.findall("ReportInfo"):
        key = item.get("key")
        if key:
            info.setdefault(key, item.get("value") or "")
    return info


# --- The Prop tree ----------------------------------------------------------------------


def _props(element: ET.Element | None) -> dict[str, ET.Element]:
    """The named ``Prop`` children of ``element`` (the first of each name)."""
    found: dict[str, ET.Element] = {}
    if element is None:
        return found
    for child in element:
        if child.tag == "Prop":
            name = child.get("Name")
            if name is not None and name not in found:
                found[name] = child
    return found


def _find(element: ET.Element | None, path: str) -> ET.Element | None:
    """The ``Prop`` at a dotted name path below ``element`` (``TS.SequenceCall``)."""
    for part in path.split("."):
        if element is None:
            return None
        element = _props(element).get(part)
    return element


def _value(prop: ET.Element | None) -> str | None:
    """The text of a ``Prop``'s ``Value`` (``""`` when empty); None when there is none."""
    if prop is None:
        return None
    value = prop.find("Value")
    if value is None:
        return None
    return value.text or ""


def _text(prop: ET.Element | None) -> str | None:
    """A ``Prop``'s value stripped, None when absent or empty."""
    value = _value(prop)
    if value is None:
        return None
    return value.strip() or None


def _elements(prop: ET.Element | None) -> list[ET.Element]:
    """The elements of an array ``Prop``: each ``Value``'s first ``Prop`` (prototypes skipped)."""
    if prop is None:
        return []
    out: list[ET.Element] = []
    for value in prop.findall("Value"):
        inner = value.find("Prop")
        if inner is not None:
            out.append(inner)
    return out


def _bool(prop: ET.Element | None) -> bool | None:
    text = _text(prop)
    if text is None:
        return None
    lowered = text.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    return None


def _root_result(container: ET.Element) -> ET.Element | None:
    """The MainSequence call's ``TEResult``: ``MainSequenceResults`` or the unnamed one."""
    named = _props(container).get("MainSequenceResults")
    if named is not None:
        return named
    for child in container:
        if child.tag == "Prop" and child.get("Type") == "TEResult":
            return child
    return None


@attrs.define
class _Meas:
    name: str
    own: bool
    numeric: NumericMeasurement | None = None
    string: StringMeasurement | None = None
    boolean: BooleanMeasurement | None = None


class _Unit:
    """Reads one unit (a ``Report`` or a ``TSReport``) into a report."""

    def __init__(self, args: TestStandXmlArguments, context: ConversionContext, where: str) -> None:
        self.args = args
        self.context = context
        self.where = where
        self.next_id = 1
        self.engine_started: datetime | None = None
        self.zone: datetime | None = None

    def read(
        self,
        container: ET.Element,
        info: dict[str, str],
        verdict: str | None,
        derived_id: Callable[[], str],
    ) -> Report:
        where = self.where
        parts = _props(container)
        uut = parts.get("UUT")
        station = _props(parts.get("StationInfo"))
        root_result = _root_result(container)
        if root_result is None:
            raise _Bad(where, "no TEResult (the MainSequence results)")

        start = self.start_time(info, parts)
        try:
            start_text, start_utc = start_fields(start)
        except ValueError as exc:
            raise _Bad(where, f"start time: {exc}") from None
        self.zone = start
        engine = info.get("EngineStarted")
        if engine:
            try:
                parsed = datetime.fromisoformat(engine.strip())
                self.engine_started = station_time(parsed)
            except ValueError:
                raise _Bad(
                    f"{where}/ReportInfo[EngineStarted]", f"{engine!r} is not a date-time"
                ) from None

        uut_props = _props(uut)
        serial = (info.get("SN") or "").strip() or _text(uut_props.get("SerialNumber"))
        if not serial:
            raise _Bad(f"{where}/UUT", "SerialNumber is missing or empty")
        part = (
            (info.get("PN") or "").strip()
            or _text(uut_props.get("UUTPartNumber"))
            or _text(uut_props.get("PartNumber"))
            or self.args.partNumber
        )
        revision = (
            (info.get("Rev") or "").strip()
            or _text(uut_props.get("UUTPartRevisionNumber"))
            or self.args.revision
        )
        process = self.args.operationTypeCode
        code_text = (info.get("PCode") or "").strip() or _text(uut_props.get("UUTOperationType"))
        if code_text:
            code = int_value(code_text)
            if code is None or code < 0:
                raise _Bad(f"{where}/UUT", f"process code {code_text!r} is not a process code")
            process = code

        root_props = _props(root_result)
        status_word = verdict if verdict is not None else _text(root_props.get("Status"))
        if status_word is None:
            raise _Bad(where, "no UUTResult and no Status: the unit's verdict is missing")
        result = unit_result(*outcome_status(status_word, None))

        root = self.step(root_result, f"{where}/TEResult", 0)
        error_code, error_message = _error(root_props.get("Error"))
        ts = _props(root_props.get("TS"))
        defaults = self.context.station
        report_id = (info.get("ID") or "").strip().lower()
        if not is_guid(report_id) or report_id.strip("0-") == "":
            report_id = derived_id()
        return Report(
            type=ReportType.UUT,
            id=report_id,
            pn=part,
            sn=serial,
            rev=revision,
            process_code=process,
            result=result,
            machine_name=_text(station.get("StationID")) or defaults.machine_name,
            location=_text(station.get("Location")) or defaults.location,
            purpose=_text(station.get("Purpose")) or defaults.purpose,
            start=start_text,
            start_utc=start_utc,
            root=root,
            uut=UUTInfo(
                user=_text(station.get("LoginName")),
                comment=_text(uut_props.get("Comment")),
                exec_time=self.number(ts.get("TotalTime"), f"{where}/TEResult TS.TotalTime"),
                fixture_id=_text(uut_props.get("UUT_Fixture_ID")),
                test_socket_index=int_value(_text(uut_props.get("TestSocketIndex"))),
                error_code=error_code,
                error_message=error_message,
                batch_sn=_text(uut_props.get("BatchSerialNumber")),
                batch_fail_count=int_value(_text(uut_props.get("BatchFailCount"))),
                batch_loop_index=int_value(_text(uut_props.get("BatchLoopIndex"))),
            ),
            misc_infos=self.misc_infos(uut_props) or None,
            sub_units=self.sub_units(uut_props) or None,
        )

    def start_time(self, info: dict[str, str], parts: dict[str, ET.Element]) -> datetime:
        """The dump's ``Start`` (it has its offset), else the numeric date and time fields."""
        where = self.where
        stated = (info.get("Start") or "").strip()
        if stated:
            try:
                return station_time(datetime.fromisoformat(stated))
            except ValueError:
                raise _Bad(f"{where}/ReportInfo[Start]", f"{stated!r} is not a date-time") from None
        date = _props(parts.get("StartDate"))
        time = _props(parts.get("StartTime"))
        if not date or not time:
            raise _Bad(where, "no start time (neither ReportInfo Start nor StartDate/StartTime)")
        fields = {}
        for name, props in (
            ("Year", date),
            ("Month", date),
            ("MonthDay", date),
            ("Hours", time),
            ("Minutes", time),
            ("Seconds", time),
            ("Milliseconds", time),
        ):
            value = int_value(_text(props.get(name)))
            if value is None:
                owner = "StartDate" if props is date else "StartTime"
                raise _Bad(f"{where}/{owner}", f"{name} is missing or not a whole number")
            fields[name] = value
        try:
            naive = datetime(
                fields["Year"],
                fields["Month"],
                fields["MonthDay"],
                fields["Hours"],
                fields["Minutes"],
                fields["Seconds"],
            ) + timedelta(milliseconds=fields["Milliseconds"])
        except (ValueError, OverflowError) as exc:
            raise _Bad(f"{where}/StartDate", f"not a date and time: {exc}") from None
        return station_time(naive)

    def misc_infos(self, uut: dict[str, ET.Element]) -> list[MiscInfo]:
        out: list[MiscInfo] = []
        array = _find(uut.get("MiscUUTResult"), "Misc_UUT_Info")
        for element in _elements(array):
            props = _props(element)
            description = _text(props.get("Description"))
            if description is None:
                continue
            text = _value(props.get("Data_String")) or None
            if text is None:
                number = self.number(props.get("Data_Numeric"), "Misc_UUT_Info Data_Numeric")
                text = _format_number(number) if number is not None else ""
            out.append(MiscInfo(description=description, text=text))
        return out

    def sub_units(self, uut: dict[str, ET.Element]) -> list[SubUnit]:
        out: list[SubUnit] = []
        array = _find(uut.get("MiscUUTResult"), "UUT_Part_Info")
        for element in _elements(array):
            props = _props(element)
            fields = [
                _text(props.get(name)) or ""
                for name in (
                    "Part_Type",
                    "Part_Number",
                    "Part_Serial_Number",
                    "Part_Revision_Number",
                )
            ]
            if not any(fields):
                continue
            part_type, pn, sn, rev = fields
            out.append(SubUnit(part_type=part_type, pn=pn, sn=sn, rev=rev or None))
        return out

    def number(self, prop: ET.Element | None, where: str) -> float | None:
        text = _text(prop)
        if text is None:
            return None
        try:
            value = parse_number(text)
        except ValueError:
            raise _Bad(where, f"{text!r} is not a number") from None
        return value if math.isfinite(value) else None

    # --- steps --------------------------------------------------------------------------

    def step(self, result: ET.Element, where: str, depth: int) -> Step:
        """A ``TEResult`` and, for a sequence call, its results below it."""
        if depth > MAX_DEPTH:
            raise _Bad(where, f"steps are nested deeper than {MAX_DEPTH} levels")
        step_id = self.next_id
        self.next_id += 1
        props = _props(result)
        ts = _props(props.get("TS"))
        name = _value(ts.get("StepName")) or ""
        where = f"{where} {name!r}"
        status, _ = outcome_status(_text(props.get("Status")), None)
        sequence = ts.get("SequenceCall")
        post_action = _find(props.get("TS"), "PostAction.ResultList")
        children: list[Step] | None = None
        seq_call = None
        if sequence is not None or post_action is not None:
            seq = _props(sequence)
            children = []
            for index, child in enumerate(_elements(seq.get("ResultList"))):
                children.append(self.step(child, f"{where}/ResultList[{index}]", depth + 1))
            for index, child in enumerate(_elements(post_action)):
                children.append(self.step(child, f"{where}/PostAction[{index}]", depth + 1))
            seq_call = SequenceCallInfo(
                path=_value(seq.get("SequenceFile")) or "",
                name=_value(seq.get("Sequence")) or "",
                version=_text(seq.get("SequenceFileVersion")) or self.args.sequenceVersion,
            )
        step_type = _text(ts.get("StepType")) or ("SequenceCall" if seq_call else "Action")
        error_code, error_message = _error(props.get("Error"))
        start = None
        offset = self.number(ts.get("StartTime"), f"{where} TS.StartTime")
        if self.engine_started is not None and offset is not None and self.zone is not None:
            # TS.StartTime is seconds since the engine started (ReportInfo EngineStarted).
            try:
                moment = (self.engine_started + timedelta(seconds=offset)).astimezone(
                    self.zone.tzinfo
                )
                start = moment.isoformat(timespec="milliseconds")
            except (OverflowError, ValueError):
                start = None
        step = Step(
            id=step_id,
            group=_GROUPS.get((_text(ts.get("StepGroup")) or "").lower(), StepGroup.MAIN),
            step_type=step_type,
            loop=self.loop(ts),
            name=name,
            status=status,
            error_code=error_code,
            error_message=error_message,
            report_text=_value(props.get("ReportText")) or None,
            start=start,
            tot_time=self.number(ts.get("TotalTime"), f"{where} TS.TotalTime"),
            ts_guid=_text(ts.get("StepId")),
            caused_seq_failure=_bool(ts.get("StepCausedSequenceFailure")),
            seq_call=seq_call,
            steps=children,
        )
        if status is Status.SKIPPED:
            return step  # a skipped step measured nothing
        step = self.measure(step, props, where)
        if "ButtonHit" in props or "Response" in props:
            popup = MessagePopupInfo(
                response=_value(props.get("Response")) or None,
                button=int_value(_text(props.get("ButtonHit"))),
            )
            step = attrs.evolve(step, message_popup=popup)
        if "ExitCode" in props:
            exit_code = self.number(props["ExitCode"], f"{where} ExitCode")
            step = attrs.evolve(step, call_exe=CallExeInfo(exit_code=exit_code))
        return step

    def loop(self, ts: dict[str, ET.Element]) -> LoopInfo | None:
        keys = ("LoopIndex", "NumLoops", "EndingLoopIndex", "NumPassed", "NumFailed")
        if not any(key in ts for key in keys):
            return None
        return LoopInfo(
            idx=int_value(_text(ts.get("LoopIndex"))),
            num=int_value(_text(ts.get("NumLoops"))),
            ending_index=int_value(_text(ts.get("EndingLoopIndex"))),
            passed=int_value(_text(ts.get("NumPassed"))),
            failed=int_value(_text(ts.get("NumFailed"))),
        )

    def measure(self, step: Step, props: dict[str, ET.Element], where: str) -> Step:
        """The step with its measurements: ``Numeric``, ``PassFail``, ``String``, arrays."""
        status = step.status
        measured: list[_Meas] = []
        notes: list[str] = []
        if "Numeric" in props:
            meas = self.numeric(props, status, True, f"{where} Numeric", "Numeric", notes)
            measured.append(_Meas("Numeric", False, numeric=meas))
        if "PassFail" in props:
            flag = _bool(props["PassFail"])
            if flag is None:
                flag = status is Status.PASSED
            measured.append(
                _Meas(
                    "PassFail",
                    False,
                    boolean=BooleanMeasurement(status=Status.PASSED if flag else Status.FAILED),
                )
            )
        if "String" in props:
            string = self.string(props, status, True, f"{where} String", "String", "Limits.String")
            measured.append(_Meas("String", False, string=string))
        for index, element in enumerate(_elements(props.get("Measurement"))):
            meas_where = f"{where} Measurement[{index}]"
            measured.append(self.array_measurement(element, status, meas_where, index, notes))
        if notes:
            step = attrs.evolve(step, report_text=with_notes(step.report_text, notes))
        if not measured:
            if is_pass_fail(step.step_type) and status in (Status.PASSED, Status.FAILED):
                return attrs.evolve(step, boolean_meas=[BooleanMeasurement(status=status)])
            return step
        numeric = [m for m in measured if m.numeric is not None]
        strings = [m for m in measured if m.string is not None]
        booleans = [m for m in measured if m.boolean is not None]
        return attrs.evolve(
            step,
            numeric_meas=[
                attrs.evolve(m.numeric, name=n)
                for m, n in zip(numeric, _names_of(numeric), strict=True)
                if m.numeric is not None
            ]
            or None,
            string_meas=[
                attrs.evolve(m.string, name=n)
                for m, n in zip(strings, _names_of(strings), strict=True)
                if m.string is not None
            ]
            or None,
            boolean_meas=[
                attrs.evolve(m.boolean, name=n)
                for m, n in zip(booleans, _names_of(booleans), strict=True)
                if m.boolean is not None
            ]
            or None,
        )

    def array_measurement(
        self, element: ET.Element, step_status: Status, where: str, index: int, notes: list[str]
    ) -> _Meas:
        """One element of a ``Measurement`` array (multiple numeric, string, pass/fail)."""
        props = _props(element)
        name = (
            _text(props.get("MeasName"))
            or (element.get("Name") or "").strip()
            or f"Measurement {index}"
        )
        own_text = _text(props.get("Status"))
        own = outcome_status(own_text, None)[0] if own_text is not None else None
        meas = _Meas(name, True)
        if "Data" in props:
            meas.numeric = self.numeric(
                props, own or step_status, own is not None, where, "Data", notes, name
            )
        elif "StringData" in props:
            meas.string = self.string(
                props, own or step_status, own is not None, where, "StringData", "StringLimit"
            )
        elif "PassFail" in props:
            flag = _bool(props["PassFail"])
            status = own or (Status.PASSED if flag else Status.FAILED)
            meas.boolean = BooleanMeasurement(status=status)
        else:
            raise _Bad(where, "holds no Data, StringData or PassFail: not a measurement")
        return meas

    def numeric(
        self,
        props: dict[str, ET.Element],
        status: Status,
        single: bool,
        where: str,
        value_key: str,
        notes: list[str],
        name: str | None = None,
    ) -> NumericMeasurement:
        value = self.number(props.get(value_key), where)
        reading = _text(props.get(value_key))
        if reading is not None and value is None:
            notes.append(no_value_note(name or value_key, reading))
        limits = _props(props.get("Limits"))
        low = self.number(limits.get("Low"), f"{where} Limits.Low")
        high = self.number(limits.get("High"), f"{where} Limits.High")
        comparator = (_text(props.get("Comp")) or "").upper()
        if comparator == "EQT":
            raw = _props(props.get("RawLimits"))
            kind = _text(limits.get("ThresholdType")) or _text(raw.get("ThresholdType"))
            if kind is None:
                op, low, high = drop_missing(CompOp.GELE, low, high)
            else:
                try:
                    op, low, high = threshold_limits(
                        kind,
                        self.number(raw.get("Nominal"), f"{where} RawLimits.Nominal"),
                        self.number(raw.get("Low"), f"{where} RawLimits.Low"),
                        self.number(raw.get("High"), f"{where} RawLimits.High"),
                    )
                except ValueError as exc:
                    raise _Bad(where, str(exc)) from None
        elif not comparator:
            op, low, high = encode_limits(None, low, high)
        else:
            try:
                op = CompOp(comparator)
            except ValueError:
                raise _Bad(where, f"Comp {comparator!r} is not a comparison operator") from None
            if not op.is_numeric:
                raise _Bad(where, f"Comp {comparator!r} compares strings, not numbers")
            op, low, high = drop_missing(op, low, high)
        judged = inherit_status(status, single)
        if judged is None:
            if value is not None:
                judged = Status.PASSED if op.evaluate(value, low, high) else Status.FAILED
            else:
                judged = status
        return NumericMeasurement(
            comp_op=op,
            status=judged,
            unit=_value(props.get("Units")) or None,
            value=value,
            low_limit=low,
            high_limit=high,
        )

    def string(
        self,
        props: dict[str, ET.Element],
        status: Status,
        single: bool,
        where: str,
        value_key: str,
        limit_path: str,
    ) -> StringMeasurement:
        value = _value(props.get(value_key)) or ""
        limit_prop = _find_path(props, limit_path)
        limit = _value(limit_prop)
        comparator = (_text(props.get("Comp")) or "").lower().replace(" ", "")
        op = _STRING_COMPS.get(comparator)
        if op is None:
            if comparator:
                raise _Bad(where, f"Comp {comparator!r} is not a string comparison")
            op = CompOp.CASESENSIT if limit is not None else CompOp.LOG
        judged = inherit_status(status, single) or judge_string(op, value, limit)
        return StringMeasurement(comp_op=op, status=judged, value=value, limit=limit)


_STRING_COMPS = {
    "casesensitive": CompOp.CASESENSIT,
    "casesensit": CompOp.CASESENSIT,
    "eq": CompOp.CASESENSIT,
    "ignorecase": CompOp.IGNORECASE,
    "caseinsensitive": CompOp.IGNORECASE,
    "cieq": CompOp.IGNORECASE,
    "ne": CompOp.NE,
    "log": CompOp.LOG,
}


def _find_path(props: dict[str, ET.Element], path: str) -> ET.Element | None:
    head, _, rest = path.partition(".")
    element = props.get(head)
    return _find(element, rest) if rest else element


def _names_of(measured: list[_Meas]) -> list[str | None]:
    return unique_names([m.name for m in measured], any(m.own for m in measured))


def _error(prop: ET.Element | None) -> tuple[int | None, str | None]:
    """A TestStand ``Error`` (Code, Msg, Occurred) when one occurred, else (None, None)."""
    props = _props(prop)
    code = int_value(_text(props.get("Code")))
    message = _value(props.get("Msg")) or None
    occurred = _bool(props.get("Occurred"))
    if not occurred and not code and message is None:
        return None, None
    return code, message


def _format_number(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)
