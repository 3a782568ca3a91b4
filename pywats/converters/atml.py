"""The ``atml`` converter: IEEE 1636.1 TestResults as NI TestStand writes them.

TestStand's ATML report generator writes three dialects (equipment-formats.md 1); they are
told apart by the namespace URI of the root element, never by its prefix:

========  ==============================  ===============================================
TestStand root                            tr namespace
========  ==============================  ===============================================
2.02      ``tr:TestResults``              ``http://www.ieee.org/ATML/2007/TestResults``
5.00      ``trc:TestResultsCollection``   ``urn:IEEE-1636.1:2011:01:TestResults``
6.01      ``trc:TestResultsCollection``   ``urn:IEEE-1636.1:2013:TestResults``
========  ==============================  ===============================================

Every ``TestResults`` is one unit and becomes one report (a batch file holds one per test
socket). Its verdict is the ``tr:ResultSet``'s ``tr:Outcome``, never recomputed from the
steps. The step tree is ``tr:TestGroup`` (a sequence call), ``tr:Test`` and
``tr:SessionAction``; measurements are the ``tr:TestResult`` elements that carry limits
(or are marked as logged). Other ``tr:TestResult`` elements are TestStand's "additional
results" and are left out, as Virinco's own converter and TestStand's stylesheets do.
The full mapping is in ``docs/converters.md``.

Errors name the element they were found at (``TestResults[2]/ResultSet/Test[@ID='69']``).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs

from pywats.converters.arguments import check_arguments
from pywats.converters.base import ConversionContext, Source
from pywats.converters.helpers import (
    parse_float,
    start_fields,
    station_time,
    unit_reports,
)
from pywats.converters.sniffing import xml_root
from pywats.converters.xmlread import XmlReadError, describe_tag, parse_xml
from pywats.errors import ConversionError
from pywats.report.codes import CompOp, ReportType, Result, Status, StepGroup
from pywats.report.model import (
    BooleanMeasurement,
    CallExeInfo,
    LoopInfo,
    MessagePopupInfo,
    NumericMeasurement,
    Report,
    SequenceCallInfo,
    Step,
    StringMeasurement,
    UUTInfo,
)

_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

#: Deeper step nesting than this is refused: TestStand nests sequences tens of levels at
#: most, and the report is written out recursively.
MAX_DEPTH = 100


@attrs.frozen
class Dialect:
    """One TestStand ATML dialect: its version and the namespaces its elements are in."""

    version: str
    collection: str | None
    """The ``trc`` namespace (TestResultsCollection); None for 2.02, which has none."""
    results: str
    """The ``tr`` namespace (TestResults)."""
    common: str
    """The ``c`` namespace (IEEE 1671 Common)."""
    teststand: str
    """The ``ts`` namespace (NI's TestStand extension)."""


#: The dialects, exactly as the real files spell their namespaces.
DIALECTS = (
    Dialect(
        "2.02",
        None,
        "http://www.ieee.org/ATML/2007/TestResults",
        "http://www.ieee.org/ATML/2006/Common",
        "www.ni.com/TestStand/ATMLTestResults/1.0",
    ),
    Dialect(
        "5.00",
        "urn:IEEE-1636.1:2011:01:TestResultsCollection",
        "urn:IEEE-1636.1:2011:01:TestResults",
        "urn:IEEE-1671:2010:Common",
        "www.ni.com/TestStand/ATMLTestResults/2.0",
    ),
    Dialect(
        "6.01",
        "urn:IEEE-1636.1:2013:TestResultsCollection",
        "urn:IEEE-1636.1:2013:TestResults",
        "urn:IEEE-1671:2010:Common",
        "www.ni.com/TestStand/ATMLTestResults/3.0",
    ),
)

# Root namespace -> dialect: a collection root, or a bare TestResults root.
_BY_NAMESPACE = {ns: d for d in DIALECTS for ns in (d.collection, d.results) if ns is not None}


@attrs.frozen
class AtmlArguments:
    """Arguments of the ``atml`` converter (ATML carries no process code or revision)."""

    #: Process code of the reports (the test operation on your WATS server).
    operationTypeCode: int = 10
    #: Part number when the UUT has no ``IdentificationNumber type="Part"`` (production
    #: stations often write none).
    partNumber: str = "NA"
    #: Part revision (ATML files carry none).
    revision: str = "1.0"
    #: Sequence version for sequence calls whose file gives none (2.02 writes the
    #: sequence file version as a ``SeqFileVersion`` result; 5.00 and 6.01 do not).
    sequenceVersion: str = "0.0.0"

    def __attrs_post_init__(self) -> None:
        check_arguments(self)


class _Bad(Exception):
    """A problem at an element of the file; becomes one ConversionError line."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


class AtmlConverter:
    """Reads TestStand ATML (IEEE 1636.1) files: one report per ``TestResults``."""

    name = "atml"
    version = "1.0"
    patterns = ("*.xml",)
    Arguments = AtmlArguments

    @staticmethod
    def sniff(head: bytes, name: str) -> str | None:
        """``root element TestResultsCollection in urn:...`` for the three dialects."""
        try:
            root = xml_root(head)
        except Exception:  # a sniffer never raises: it only says "not mine"
            return None
        if root is None or _BY_NAMESPACE.get(root.namespace) is None:
            return None
        if root.local not in ("TestResultsCollection", "TestResults"):
            return None
        dialect = _BY_NAMESPACE[root.namespace]
        return f"{root.describe()} (TestStand ATML {dialect.version})"

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """One report per ``TestResults`` element, in file order."""
        args = context.arguments_as(AtmlArguments)
        try:
            root = parse_xml(source.data)
        except XmlReadError as exc:
            raise ConversionError(self.name, str(exc)) from None
        namespace, _, local = root.tag.rpartition("}")
        dialect = _BY_NAMESPACE.get(namespace.lstrip("{"))
        if dialect is None or local not in ("TestResultsCollection", "TestResults"):
            known = ", ".join(f"{d.results} ({d.version})" for d in DIALECTS)
            raise ConversionError(
                self.name,
                f"the root element is {describe_tag(root.tag)}, not an ATML TestResults or "
                f"TestResultsCollection (known: {known})",
            )
        if local == "TestResults":
            units = [("TestResults", root)]
        else:
            tag = f"{{{dialect.collection}}}TestResults"
            found = root.findall(tag)
            units = [(f"TestResults[{i}]", el) for i, el in enumerate(found, 1)]
            if not units:
                raise ConversionError(
                    self.name, "TestResultsCollection: it holds no TestResults (no unit)"
                )

        def read(unit: tuple[str, ET.Element], report_id: Callable[[], str]) -> Report:
            where, element = unit
            return _Unit(dialect, args, context, where).read(element, report_id())

        return unit_reports(self.name, source, ((unit[0], unit) for unit in units), read, _Bad)


# --- Outcomes ---------------------------------------------------------------------------

_WORDS = {
    "passed": Status.PASSED,
    "failed": Status.FAILED,
    # TestStand's Done (actions, statements): WATS shows and exports these as Passed.
    "done": Status.PASSED,
    "error": Status.ERROR,
    "terminated": Status.TERMINATED,
    "skipped": Status.SKIPPED,
    "notstarted": Status.SKIPPED,
}


def outcome_status(value: str | None, qualifier: str | None) -> tuple[Status, bool]:
    """The WATS status of an ATML outcome, and whether the outcome was a known one.

    ``Passed``/``Failed`` map as they are, ``Done`` to Passed, ``NotStarted`` to Skipped.
    ``Aborted`` and ``UserDefined`` carry the real status in ``qualifier``: Skipped,
    Terminated, Error (and the plain words). ``Aborted`` without a qualifier did not
    complete: Terminated. A custom status (a sequence may set any string, such as
    ``Aborted``/``Tommy``) is Done: the step ran, its verdict is unknown.
    """
    word = (value or "").strip().lower()
    if word in ("aborted", "userdefined"):
        detail = (qualifier or "").strip().lower()
        if detail in _WORDS:
            return _WORDS[detail], True
        if not detail:
            return (Status.TERMINATED, True) if word == "aborted" else (Status.DONE, False)
        return Status.DONE, False
    if word in _WORDS:
        return _WORDS[word], True
    return Status.DONE, False


def unit_result(status: Status, known: bool) -> Result:
    """The report result of the unit's outcome.

    Skipped (the unit never ran) is Terminated and a custom status is Error: neither may
    ever become a pass.
    """
    if not known:
        return Result.ERROR
    return {
        Status.PASSED: Result.PASSED,
        Status.DONE: Result.PASSED,
        Status.FAILED: Result.FAILED,
        Status.ERROR: Result.ERROR,
        Status.TERMINATED: Result.TERMINATED,
        Status.SKIPPED: Result.TERMINATED,
    }[status]


# --- Values -----------------------------------------------------------------------------

_SPECIAL_NUMBERS = {
    "nan": math.nan,
    "ind": math.nan,
    "-nan": math.nan,
    "inf": math.inf,
    "+inf": math.inf,
    "infinity": math.inf,
    "+infinity": math.inf,
    "positiveinfinity": math.inf,
    "-inf": -math.inf,
    "-infinity": -math.inf,
    "negativeinfinity": -math.inf,
    # The Microsoft C runtime's spellings, which older TestStand versions pass through.
    "1.#inf": math.inf,
    "-1.#inf": -math.inf,
    "1.#ind": math.nan,
    "-1.#ind": math.nan,
    "1.#qnan": math.nan,
    "-1.#qnan": math.nan,
}
_HEX = re.compile(r"[+-]?0[xX][0-9A-Fa-f]{1,16}")


def parse_number(text: str) -> float:
    """A number as TestStand writes it: ``5``, ``-2.5e-3``, ``0x1F``, ``NaN``, ``INF``.

    NaN and the infinities come back as such (the caller decides what to do with them);
    anything else that is not a number is a ValueError.
    """
    stripped = text.strip()
    special = _SPECIAL_NUMBERS.get(stripped.lower())
    if special is not None:
        return special
    if _HEX.fullmatch(stripped):
        return float(int(stripped, 16))
    try:
        return parse_float(stripped)
    except ValueError:
        if re.fullmatch(r"[+-]?[0-9.]+[eE][+-]?[0-9]+", stripped):
            return math.inf if not stripped.startswith("-") else -math.inf  # 1e999
        raise


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def int_value(text: str | None) -> int | None:
    """An integer written as a TestStand number (``'3'``, ``'0'`` as a double ``3.0``)."""
    if text is None:
        return None
    try:
        number = parse_number(text)
    except ValueError:
        return None
    if not math.isfinite(number) or number != int(number) or not -(2**31) <= number < 2**31:
        return None
    return int(number)


_GROUPS = {"setup": StepGroup.SETUP, "main": StepGroup.MAIN, "cleanup": StepGroup.CLEANUP}

_CALLER = re.compile(r"SequenceCallStepName\s*=\s*'(.*)'\s*$", re.DOTALL)


def _child(element: ET.Element | None, *tags: str) -> ET.Element | None:
    """The first child by child down ``tags`` (a plain tag per level: C speed, no XPath)."""
    for tag in tags:
        if element is None:
            return None
        element = element.find(tag)
    return element


def _text(element: ET.Element | None) -> str | None:
    if element is None:
        return None
    return (element.text or "").strip()


def _time(text: str | None, where: str, attribute: str) -> datetime:
    if text is None:
        raise _Bad(where, f"{attribute} is missing")
    try:
        return station_time(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise _Bad(where, f"{attribute} {text!r} is not an ISO 8601 date-time") from None


@attrs.define
class _Meas:
    """A measurement read from a ``tr:TestResult``, before single/multiple is decided."""

    name: str
    own_outcome: bool
    kind: str
    """``numeric``, ``string`` or ``boolean``: which measurement class ``fields`` make."""
    fields: dict[str, Any]
    note: str | None = None


@attrs.define
class Measured:
    """A step's measurements by kind, named the WSJF way (see :func:`unique_names`)."""

    numeric: list[NumericMeasurement] | None = None
    string: list[StringMeasurement] | None = None
    boolean: list[BooleanMeasurement] | None = None
    notes: list[str] = attrs.field(factory=list)
    """Readings WSJF cannot carry (NaN, infinities), for the step's report text."""

    def __bool__(self) -> bool:
        return bool(self.numeric or self.string or self.boolean)

    def add_to(self, fields: dict[str, Any]) -> None:
        """Put these measurements (and the notes, in the report text) into Step fields."""
        fields["numeric_meas"] = self.numeric
        fields["string_meas"] = self.string
        fields["boolean_meas"] = self.boolean
        fields["report_text"] = with_notes(fields.get("report_text"), self.notes)


def no_value_note(name: str, raw: str) -> str:
    """The report-text line for a reading that is not a finite number (NaN, INF)."""
    return f"{name}: {raw.strip()} (no reading WSJF can carry: the value is left out)"


def with_notes(text: str | None, notes: Sequence[str]) -> str | None:
    """``text`` with ``notes`` appended as lines (``text`` itself when there are none)."""
    if not notes:
        return text
    return "\n".join([text, *notes] if text else notes)


_STRING_OPS = {
    "EQ": CompOp.CASESENSIT,
    "CIEQ": CompOp.IGNORECASE,
    "NE": CompOp.NE,
    # WATS has no regular-expression operator: the value is logged with the pattern as its
    # limit, and the status is TestStand's.
    "REGULAREXPRESSIONCASESENSITIVE": CompOp.LOG,
    "REGULAREXPRESSIONIGNORECASE": CompOp.LOG,
}
_SINGLE_OPS = {"EQ", "NE", "GT", "GE", "LT", "LE"}


class _Unit:
    """Reads one ``TestResults`` element into a report."""

    def __init__(
        self, dialect: Dialect, args: AtmlArguments, context: ConversionContext, where: str
    ) -> None:
        self.dialect = dialect
        self.args = args
        self.context = context
        self.where = where
        self.next_id = 1
        # The CriticalFailureStack's result ids, outermost first, and the step ids given
        # to the steps they name.
        self.caused: dict[str, None] = {}
        self.caused_ids: dict[str, int] = {}
        tr, c, ts = f"{{{dialect.results}}}", f"{{{dialect.common}}}", f"{{{dialect.teststand}}}"
        self.tr, self.c, self.ts = tr, c, ts
        self.step_tags = {tr + "TestGroup", tr + "Test", tr + "SessionAction"}

    # --- header -------------------------------------------------------------------------

    def read(self, unit: ET.Element, report_id: str) -> Report:
        tr, c, ts = self.tr, self.c, self.ts
        where = self.where
        result_set = unit.find(tr + "ResultSet")
        if result_set is None:
            raise _Bad(where, "no tr:ResultSet (the unit's results)")
        rs_where = f"{where}/ResultSet"
        start = _time(result_set.get("startDateTime"), rs_where, "startDateTime")
        try:
            start_text, start_utc = start_fields(start)
        except ValueError as exc:
            raise _Bad(rs_where, f"startDateTime: {exc}") from None
        exec_time = None
        end_text = result_set.get("endDateTime")
        if end_text is not None:
            end = _time(end_text, rs_where, "endDateTime")
            exec_time = max((end - start).total_seconds(), 0.0)

        properties = _child(unit, tr + "Extension", ts + "TSResultSetProperties")
        socket = batch = None
        if properties is not None:
            socket = int_value(_value_of(properties.find(ts + "TestSocketIndex")))
            batch = _value_of(properties.find(ts + "BatchSerialNumber")) or None
            for entry in properties.iter(ts + "CriticalFailureStackEntry"):
                result_id = entry.get("resultID")
                if result_id:
                    self.caused[result_id] = None

        operator = None
        person = _child(unit, tr + "Personnel", tr + "SystemOperator")
        if person is not None:
            operator = (person.get("ID") or person.get("name") or "").strip() or None

        station = _text(_child(unit, tr + "TestStation", c + "SerialNumber"))
        uut = unit.find(tr + "UUT")
        if uut is None:
            raise _Bad(where, "no tr:UUT (the unit tested)")
        serial = _text(uut.find(c + "SerialNumber"))
        if not serial:
            raise _Bad(f"{where}/UUT", "c:SerialNumber is missing or empty")
        part = None
        path = f"{c}Definition/{c}Identification/{c}IdentificationNumbers/{c}IdentificationNumber"
        for number in uut.iterfind(path):
            if (number.get("type") or "").strip().lower() == "part":
                part = (number.get("number") or "").strip() or None
                break

        outcome = result_set.find(tr + "Outcome")
        root_element = result_set
        if self.dialect.collection is None:
            # 2.02: the ResultSet wraps one TestGroup, the MainSequence call.
            group = result_set.find(tr + "TestGroup")
            if group is not None:
                root_element = group
                if outcome is None:
                    outcome = group.find(tr + "Outcome")
        if outcome is None:
            raise _Bad(rs_where, "no tr:Outcome: the unit's verdict is missing")
        status, known = outcome_status(outcome.get("value"), outcome.get("qualifier"))
        result = unit_result(status, known)

        root_where = rs_where if root_element is result_set else f"{rs_where}/TestGroup"
        root = self.group_step(root_element, root_where, 0)
        error_code, error_message = self.events(result_set)
        caused_id = None
        for result_id in self.caused:
            caused_id = self.caused_ids.get(result_id, caused_id)
        station_defaults = self.context.station
        return Report(
            type=ReportType.UUT,
            id=report_id,
            pn=part or self.args.partNumber,
            sn=serial,
            rev=self.args.revision,
            process_code=self.args.operationTypeCode,
            result=result,
            machine_name=station or station_defaults.machine_name,
            location=station_defaults.location,
            purpose=station_defaults.purpose,
            start=start_text,
            start_utc=start_utc,
            root=root,
            uut=UUTInfo(
                user=operator,
                exec_time=exec_time,
                test_socket_index=socket,
                batch_sn=batch,
                error_code=error_code,
                error_message=error_message,
                step_id_caused_uut_failure=caused_id,
            ),
        )

    # --- steps --------------------------------------------------------------------------

    def new_id(self, element: ET.Element) -> int:
        step_id = self.next_id
        self.next_id += 1
        result_id = element.get("ID")
        if result_id is not None and result_id in self.caused:
            self.caused_ids[result_id] = step_id
        return step_id

    def children(self, element: ET.Element, where: str, depth: int) -> list[Step]:
        if depth >= MAX_DEPTH:
            raise _Bad(where, f"steps are nested deeper than {MAX_DEPTH} levels")
        steps: list[Step] = []
        for child in element:
            if child.tag not in self.step_tags:
                continue
            local = child.tag[len(self.tr) :]
            child_where = f"{where}/{local}[@ID={child.get('ID', '')!r}]"
            if local == "TestGroup":
                steps.append(self.group_step(child, child_where, depth + 1))
            else:
                steps.append(self.leaf_step(child, child_where, local))
        return steps

    def group_step(self, element: ET.Element, where: str, depth: int) -> Step:
        """A ``tr:TestGroup`` (or the ResultSet): a sequence call with its steps."""
        step_id = self.new_id(element)
        full = element.get("name") or ""
        path, hash_sign, sequence = full.partition("#")
        if not hash_sign:
            sequence = path
        name = element.get("callerName")
        if name is None:
            caller = _CALLER.match((element.get("userDefinedType") or "").strip())
            name = caller.group(1) if caller else sequence
        status = self.status(element, "Outcome", where)
        results = self.test_results(element)
        version = None
        for result in results:
            if (result.get("name") or result.get("ID")) == "SeqFileVersion":
                version = _text(self.datum_value(result))
        steps = self.children(element, where, depth)
        fields = self.common(element, where, name, status, "SequenceCall", results)
        del fields["data"]
        self.measurements(results, status, where).add_to(fields)
        return Step(
            id=step_id,
            seq_call=SequenceCallInfo(
                path=path, name=sequence, version=version or self.args.sequenceVersion
            ),
            steps=steps,
            **fields,
        )

    def leaf_step(self, element: ET.Element, where: str, local: str) -> Step:
        """A ``tr:Test`` or ``tr:SessionAction``."""
        step_id = self.new_id(element)
        name = element.get("name") or element.get("ID") or ""
        is_action = local == "SessionAction"
        status = self.status(element, "ActionOutcome" if is_action else "Outcome", where)
        results = self.test_results(element)
        fields = self.common(element, where, name, status, "Action" if is_action else "", results)
        measured = Measured()
        if status is not Status.SKIPPED:
            # A skipped step measured nothing, whatever its type.
            measured = self.measurements(results, status, where)
            judged = status in (Status.PASSED, Status.FAILED)
            if not measured and not is_action and judged and is_pass_fail(fields["step_type"]):
                # A pass/fail step's verdict is its outcome: TestStand writes no result.
                measured.boolean = [BooleanMeasurement(status=status)]
        measured.add_to(fields)
        data = fields.pop("data")
        if "ButtonHit" in data or "Response" in data:
            button = int_value(_value_of(data.get("ButtonHit")))
            response = _value_of(data.get("Response")) or None
            fields["message_popup"] = MessagePopupInfo(response=response, button=button)
        if "ExitCode" in data:
            code = _value_of(data["ExitCode"])
            exit_code = None
            if code:
                try:
                    exit_code = _finite(parse_number(code))
                except ValueError:
                    raise _Bad(where, f"ExitCode {code!r} is not a number") from None
            fields["call_exe"] = CallExeInfo(exit_code=exit_code)
        if not fields["step_type"]:
            fields["step_type"] = _default_type(measured)
        return Step(id=step_id, **fields)

    def status(self, element: ET.Element, tag: str, where: str) -> Status:
        outcome = element.find(self.tr + tag)
        if outcome is None:
            raise _Bad(where, f"no tr:{tag}: the step's status is missing")
        return outcome_status(outcome.get("value"), outcome.get("qualifier"))[0]

    def common(
        self,
        element: ET.Element,
        where: str,
        name: str,
        status: Status,
        default_type: str,
        results: list[ET.Element],
    ) -> dict[str, Any]:
        """The fields every step has (type, group, times, flags, loop, texts, errors) as
        keyword arguments of :class:`Step`, and the step's ``data`` items."""
        ts = self.ts
        props = _child(element, self.tr + "Extension", ts + "TSStepProperties")
        step_type = default_type
        group = StepGroup.MAIN
        tot_time = ts_guid = caused_seq = loop = None
        if props is not None:
            step_type = _text(props.find(ts + "StepType")) or default_type
            group = _GROUPS.get((_text(props.find(ts + "StepGroup")) or "").lower(), group)
            total = props.find(ts + "TotalTime")
            if total is not None:
                tot_time = self.number(total.get("value"), f"{where} TotalTime")
            ts_guid = _text(props.find(ts + "StepId")) or None
            caused = props.find(ts + "StepCausedSequenceFailure")
            if caused is not None:
                caused_seq = (caused.get("value") or "").strip().lower() == "true"
            looping = props.find(ts + "LoopingProperties")
            if looping is not None:
                loop = LoopInfo(
                    idx=int_value(_value_of(looping.find(ts + "LoopIndex"))),
                    num=int_value(_value_of(looping.find(ts + "NumLoops"))),
                    ending_index=int_value(_value_of(looping.find(ts + "EndingLoopIndex"))),
                    passed=int_value(_value_of(looping.find(ts + "NumPassed"))),
                    failed=int_value(_value_of(looping.find(ts + "NumFailed"))),
                )
        ts_guid = ts_guid or element.get("testReferenceID") or None
        start = None
        start_attribute = element.get("startDateTime")
        if start_attribute is not None:
            moment = _time(start_attribute, where, "startDateTime")
            start = moment.isoformat(timespec="milliseconds")
            end_attribute = element.get("endDateTime")
            if tot_time is None and end_attribute is not None:
                # 2.02 writes no TotalTime: the step's own start and end give it (to 1 ms).
                ended = _time(end_attribute, where, "endDateTime")
                tot_time = max(round((ended - moment).total_seconds(), 6), 0.0)
        data = self.data_items(element)
        report_text = _value_of(data.get("ReportText"))
        if report_text is None:
            for result in results:
                if (result.get("name") or result.get("ID")) == "ReportText":
                    report_text = _text(self.datum_value(result))
        error_code, error_message = self.events(element)
        return {
            "group": group,
            "step_type": step_type,
            "loop": loop,
            "name": name,
            "status": status,
            "error_code": error_code,
            "error_message": error_message,
            "report_text": report_text or None,
            "start": start,
            "tot_time": tot_time,
            "ts_guid": ts_guid,
            "caused_seq_failure": caused_seq,
            "caused_uut_failure": True if element.get("ID") in self.caused else None,
            "data": data,
        }

    def datum_value(self, result: ET.Element) -> ET.Element | None:
        """``tr:TestData/c:Datum/c:Value`` of a result (a string result's text)."""
        c = self.c
        return _child(result, self.tr + "TestData", c + "Datum", c + "Value")

    def number(self, text: str | None, where: str) -> float | None:
        if text is None:
            return None
        try:
            return _finite(parse_number(text))
        except ValueError:
            raise _Bad(where, f"{text!r} is not a number") from None

    def data_items(self, element: ET.Element) -> dict[str, ET.Element]:
        """``tr:Data/c:Collection/c:Item`` by name: each item's ``c:Datum``."""
        items: dict[str, ET.Element] = {}
        collection = _child(element, self.tr + "Data", self.c + "Collection")
        if collection is None:
            return items
        for item in collection.findall(self.c + "Item"):
            datum = item.find(self.c + "Datum")
            name = item.get("name")
            if datum is not None and name is not None:
                items.setdefault(name.strip(), datum)
        return items

    def test_results(self, element: ET.Element) -> list[ET.Element]:
        return element.findall(self.tr + "TestResult")

    def events(self, element: ET.Element) -> tuple[int | None, str | None]:
        """The error code and message of a step's (or the run's) ``tr:Events``.

        TestStand writes a runtime error as an event: its ``Message`` (CDATA) holds the
        text; the code is a ``Data`` item whose name mentions the code (``Error Code``),
        or else the ``[Error Code: -17502]`` TestStand puts in the text.
        """
        events = element.find(self.tr + "Events")
        if events is None:
            return None, None
        messages: list[str] = []
        code: int | None = None
        for node in events.iter():
            local = node.tag.rpartition("}")[2] if isinstance(node.tag, str) else ""
            if local == "Message" and node.text and node.text.strip():
                messages.append(node.text.strip())
            elif code is None and "code" in (node.get("name") or "").lower():
                for datum in node.iter(self.c + "Datum"):
                    code = int_value(datum.get("value") or _text(datum.find(self.c + "Value")))
                    break
        message = "\n".join(messages) or None
        if code is None and message is not None:
            found = re.search(r"Error Code:?\s*(-?\d{1,10})", message, re.IGNORECASE)
            if found is not None:
                code = int_value(found.group(1))
        return code, message

    # --- measurements -------------------------------------------------------------------

    def measurements(self, results: Iterable[ET.Element], status: Status, where: str) -> Measured:
        """The step's measurements.

        Only results with limits, or marked as logged, are measurements; the others are
        TestStand's additional results (report text, module parameters), left out.
        """
        measured: list[_Meas] = []
        candidates = [r for r in results if self.is_measurement(r)]
        for index, result in enumerate(candidates):
            name = (result.get("name") or result.get("ID") or "").strip() or f"#{index}"
            meas_where = f"{where}/TestResult[{name!r}]"
            meas = self.measurement(result, status, len(candidates) == 1, name, meas_where)
            if meas is not None:
                measured.append(meas)
        out = Measured(notes=[m.note for m in measured if m.note is not None])
        numeric = [m for m in measured if m.kind == "numeric"]
        if numeric:
            out.numeric = [
                NumericMeasurement(name=n, **m.fields)
                for m, n in zip(numeric, _names_of(numeric), strict=True)
            ]
        strings = [m for m in measured if m.kind == "string"]
        if strings:
            out.string = [
                StringMeasurement(name=n, **m.fields)
                for m, n in zip(strings, _names_of(strings), strict=True)
            ]
        booleans = [m for m in measured if m.kind == "boolean"]
        if booleans:
            out.boolean = [
                BooleanMeasurement(name=n, **m.fields)
                for m, n in zip(booleans, _names_of(booleans), strict=True)
            ]
        return out

    def is_measurement(self, result: ET.Element) -> bool:
        if result.find(self.tr + "TestLimits") is not None:
            return True
        return self.is_log(result, None)

    def limit_properties(self, result: ET.Element, limits: ET.Element | None) -> ET.Element | None:
        """``ts:TSLimitProperties``: in the Limits' extension (5.00, 6.01) or the result's."""
        ts = self.ts
        if limits is not None:
            found = _child(limits, self.c + "Extension", ts + "TSLimitProperties")
            if found is not None:
                return found
        return _child(result, self.tr + "Extension", ts + "TSLimitProperties")

    def is_log(self, result: ET.Element, limits: ET.Element | None) -> bool:
        props = self.limit_properties(result, limits)
        if props is None:
            return False
        flag = props.find(self.ts + "IsComparisonTypeLog")
        return flag is not None and (flag.get("value") or "").strip().lower() == "true"

    def measurement(
        self, result: ET.Element, step_status: Status, single: bool, name: str, where: str
    ) -> _Meas | None:
        tr, c = self.tr, self.c
        datum = _child(result, tr + "TestData", c + "Datum")
        if datum is None:
            return None  # a collection or an array: nothing WATS can hold as one value
        kind = (datum.get(_XSI_TYPE) or "").rpartition(":")[2].lower()
        if "array" in kind:
            return None
        outcome = result.find(tr + "Outcome")
        own: Status | None = None
        if outcome is not None:
            own = outcome_status(outcome.get("value"), outcome.get("qualifier"))[0]
        limits = _child(result, tr + "TestLimits", tr + "Limits")
        unit = datum.get("nonStandardUnit") or datum.get("unit") or None
        if "bool" in kind:
            flag = (datum.get("value") or "").strip().lower()
            status = own or inherit_status(step_status, single)
            if status is None:
                status = Status.PASSED if flag == "true" else Status.FAILED
            return _Meas(name, own is not None, "boolean", {"status": status})
        if "string" in kind or (datum.get("value") is None and datum.find(c + "Value") is not None):
            text = datum.find(c + "Value")
            value_text = (text.text or "") if text is not None else ""
            op, limit = self.string_limit(result, limits, where)
            status = (
                own or inherit_status(step_status, single) or judge_string(op, value_text, limit)
            )
            fields: dict[str, Any] = {
                "comp_op": op,
                "status": status,
                "value": value_text,
                "limit": limit,
            }
            return _Meas(name, own is not None, "string", fields)
        raw = datum.get("value")
        value = self.number(raw, f"{where} value")
        note = no_value_note(name, raw) if raw is not None and value is None else None
        op, low, high, limit_unit = self.numeric_limit(result, limits, where)
        status = own or inherit_status(step_status, single)
        if status is None:
            if value is not None:
                status = Status.PASSED if op.evaluate(value, low, high) else Status.FAILED
            else:
                status = step_status
        fields = {  # numeric
            "comp_op": op,
            "status": status,
            "unit": unit or limit_unit,
            "value": value,
            "low_limit": low,
            "high_limit": high,
        }
        return _Meas(name, own is not None, "numeric", fields, note)

    def string_limit(
        self, result: ET.Element, limits: ET.Element | None, where: str
    ) -> tuple[CompOp, str | None]:
        c = self.c
        expected = limits.find(c + "Expected") if limits is not None else None
        if expected is None:
            return CompOp.LOG, None
        comparator = (expected.get("comparator") or "").strip()
        op = _STRING_OPS.get(comparator.upper())
        if op is None:
            known = ", ".join(sorted(_STRING_OPS))
            raise _Bad(
                where, f"string comparator {comparator!r} is not one TestStand writes ({known})"
            )
        value = _child(expected, c + "Datum", c + "Value")
        return op, (value.text or "") if value is not None else ""

    def numeric_limit(
        self, result: ET.Element, limits: ET.Element | None, where: str
    ) -> tuple[CompOp, float | None, float | None, str | None]:
        """compOp, lowLimit, highLimit (WATS encoding) and the limits' unit."""
        c, ts = self.c, self.ts
        if limits is None or self.is_log(result, limits):
            return CompOp.LOG, None, None, None
        props = self.limit_properties(result, limits)
        threshold = _text(props.find(ts + "ThresholdType")) if props is not None else None
        pair = limits.find(c + "LimitPair")
        single = limits.find(c + "SingleLimit")
        expected = limits.find(c + "Expected")
        if threshold and props is not None:
            # EQT: TestStand writes the raw tolerances (10 = 10 %) where the limits go;
            # the real limits are the nominal value widened by them.
            return (*self.threshold_limits(props, threshold, where), self.limit_unit(limits))
        if pair is not None:
            halves: list[tuple[str, float | None]] = []
            for limit in pair.findall(c + "Limit"):
                comparator = (limit.get("comparator") or "").strip().upper()
                if comparator not in ("GE", "GT", "LE", "LT"):
                    raise _Bad(where, f"limit comparator {comparator!r} is not GE, GT, LE or LT")
                datum = limit.find(c + "Datum")
                value = self.number(datum.get("value") if datum is not None else None, where)
                halves.append((comparator, value))
            if len(halves) != 2:
                raise _Bad(where, f"c:LimitPair holds {len(halves)} c:Limit, not 2")
            (first, low), (second, high) = halves
            try:
                op = CompOp(first + second)
            except ValueError:
                raise _Bad(where, f"limit comparators {first} and {second} make no range") from None
            return (*drop_missing(op, low, high), self.limit_unit(limits))
        for element in (single, expected):
            if element is None:
                continue
            comparator = (element.get("comparator") or "").strip().upper()
            if comparator not in _SINGLE_OPS:
                raise _Bad(
                    where,
                    f"comparator {comparator!r} is not one of {', '.join(sorted(_SINGLE_OPS))}",
                )
            datum = element.find(c + "Datum")
            value = self.number(datum.get("value") if datum is not None else None, where)
            if value is None:
                return CompOp.LOG, None, None, self.limit_unit(limits)
            return CompOp(comparator), value, None, self.limit_unit(limits)
        return CompOp.LOG, None, None, None

    def threshold_limits(
        self, props: ET.Element, threshold: str, where: str
    ) -> tuple[CompOp, float | None, float | None]:
        ts = self.ts
        raw = props.find(ts + "RawLimits")
        if raw is None:
            raise _Bad(where, f"ThresholdType {threshold} without ts:RawLimits")
        nominal = self.number(_value_of(raw.find(ts + "Nominal")), f"{where} Nominal")
        low = self.number(_value_of(raw.find(ts + "Low")), f"{where} Low")
        high = self.number(_value_of(raw.find(ts + "High")), f"{where} High")
        try:
            return threshold_limits(threshold, nominal, low, high)
        except ValueError as exc:
            raise _Bad(where, str(exc)) from None

    def limit_unit(self, limits: ET.Element) -> str | None:
        for datum in limits.iter(self.c + "Datum"):
            unit = datum.get("nonStandardUnit") or datum.get("unit")
            if unit:
                return unit
        return None


def drop_missing(
    op: CompOp, low: float | None, high: float | None
) -> tuple[CompOp, float | None, float | None]:
    """``op`` with its limits, where a missing (NaN, infinite) limit is no limit at all.

    TestStand writes "no upper limit" as an infinity, which WSJF cannot carry. A range
    with one such end keeps the other end as a single-limit operator (``GELE`` with an
    infinite high limit is ``GE`` low); with no usable limit it is ``LOG``. Single-limit
    operators keep their limit in ``lowLimit``, as WATS wants.
    """
    if op.limit_count == 0:
        return CompOp.LOG, None, None
    if op.limit_count == 1:
        limit = low if low is not None else high
        return (op, limit, None) if limit is not None else (CompOp.LOG, None, None)
    if low is None and high is None:
        return CompOp.LOG, None, None
    if high is None:
        return CompOp(op.value[:2]), low, None
    if low is None:
        return CompOp(op.value[2:]), high, None
    return op, low, high


def threshold_limits(
    kind: str, nominal: float | None, low: float | None, high: float | None
) -> tuple[CompOp, float | None, float | None]:
    """The real limits of TestStand's ``EQT`` (equal within a tolerance), as ``GELE``.

    TestStand keeps the nominal value and the two tolerances; ``kind`` says what they
    are: ``PERCENTAGE`` (of the nominal), ``PPM`` or ``DELTA`` (absolute).
    ValueError for any other kind or without a nominal value.
    """
    scale = {"PERCENTAGE": 1 / 100, "PPM": 1 / 1e6, "DELTA": None}
    key = kind.strip().upper()
    if key not in scale:
        raise ValueError(f"ThresholdType {kind!r} is not PERCENTAGE, PPM or DELTA")
    if nominal is None:
        raise ValueError(f"ThresholdType {kind} without a nominal value")
    factor = scale[key]
    width = 1.0 if factor is None else abs(nominal) * factor
    low_limit = nominal - low * width if low is not None else None
    high_limit = nominal + high * width if high is not None else None
    return drop_missing(CompOp.GELE, low_limit, high_limit)


def _value_of(element: ET.Element | None) -> str | None:
    """A TestStand value: the ``value`` attribute, else the ``c:Value`` child's text."""
    if element is None:
        return None
    value = element.get("value")
    if value is not None:
        return value.strip()
    for child in element:
        if isinstance(child.tag, str) and child.tag.endswith("}Value"):
            return (child.text or "").strip()
    return (element.text or "").strip()


def inherit_status(step_status: Status, single: bool) -> Status | None:
    """The step's verdict for a measurement that has none of its own, when it applies.

    A lone measurement has its step's verdict; every measurement of a passed step
    passed. An errored or terminated step's measurements share that. Otherwise (a failed
    step with several measurements, a custom status) the limits decide.
    """
    if step_status in (Status.ERROR, Status.TERMINATED):
        return step_status
    if single and step_status in (Status.PASSED, Status.FAILED):
        return step_status
    if step_status is Status.PASSED:
        return step_status
    return None


def judge_string(op: CompOp, value: str, limit: str | None) -> Status:
    if op is CompOp.LOG or limit is None:
        return Status.PASSED
    if op is CompOp.IGNORECASE:
        passed = value.casefold() == limit.casefold()
    elif op is CompOp.NE:
        passed = value != limit
    else:
        passed = value == limit
    return Status.PASSED if passed else Status.FAILED


def _names_of(measured: list[_Meas]) -> list[str | None]:
    return unique_names([m.name for m in measured], any(m.own_outcome for m in measured))


def unique_names(names: Sequence[str], multiple: bool) -> list[str | None]:
    """The WSJF names of a step's measurements: None for a lone one, else unique names.

    ``multiple`` keeps the name of a lone measurement that belongs to a
    multiple-measurement step (an ``NI_MultipleNumericLimitTest`` with one entry, known by
    its own outcome). TestStand allows equal names (two long names cut to the same text);
    WATS needs them unique, so a repeat gets `` (2)``, `` (3)`` ...
    """
    if len(names) == 1 and not multiple:
        return [None]
    taken = set(names)
    seen: dict[str, int] = {}
    out: list[str | None] = []
    for name in names:
        count = seen.get(name, 0) + 1
        seen[name] = count
        if count > 1:
            candidate = f"{name} ({count})"
            while candidate in taken:
                count += 1
                candidate = f"{name} ({count})"
            seen[name] = count
            taken.add(candidate)
            name = candidate
        out.append(name)
    return out


def is_pass_fail(step_type: str) -> bool:
    """Whether a step type records a pass/fail verdict (``PassFailTest``, ``ET_PFT`` ...)."""
    lowered = step_type.lower()
    return "passfail" in lowered or lowered.endswith("pft")


def _default_type(measured: Measured) -> str:
    """A step type for a ``tr:Test`` whose file names none, from what it measured."""
    if measured.numeric:
        return "NumericLimitTest"
    if measured.string:
        return "StringValueTest"
    if measured.boolean:
        return "PassFailTest"
    return "Action"
