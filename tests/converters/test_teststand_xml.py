"""The ``teststand-xml`` converter: TestStand's XML report and the WATS add-on dump.

The two real files (tests/data/equipment/teststand-xml, from Virinco's TestStand XML
converter) are checked field by field; made-up reports in the same ``Prop`` layout cover
the step kinds those two do not hold; then bad input and Hypothesis fuzzing.
"""

from __future__ import annotations

import codecs
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywats.converters import Source, StationDefaults, load_converter
from pywats.converters.atml import AtmlConverter
from pywats.converters.teststand_xml import TestStandXmlConverter
from pywats.converters.wsxf import WsxfConverter
from pywats.defaults import SNIFF_BYTES
from pywats.errors import ConfigError, ConversionError
from pywats.report import CompOp, Report, Result, Status, Step, StepGroup, StepKind, wsjf

STATION = StationDefaults(machine_name="ST-1", location="Line 1", purpose="Production")
DATA = Path(__file__).parents[1] / "data"
FOLDER = DATA / "equipment" / "teststand-xml"
CLASSIC = FOLDER / "TsWithoutWats.xml"
DUMP = FOLDER / "TSWithWats.xml"

FUZZ = settings(
    max_examples=int(os.environ.get("PYWATS_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(autouse=True)
def station_zone() -> Iterator[None]:
    """The station's clock is in Oslo (+01:00 in winter, +02:00 in summer)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "CET-1CEST,M3.5.0,M10.5.0/3"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def convert(data: bytes, **arguments: Any) -> list[Report]:
    loaded = load_converter("teststand-xml", arguments)
    return loaded.convert(Source(Path("report.xml"), data), STATION)


def one(data: bytes, **arguments: Any) -> Report:
    (report,) = convert(data, **arguments)
    return report


def error(data: bytes, **arguments: Any) -> str:
    with pytest.raises(ConversionError) as info:
        convert(data, **arguments)
    message = str(info.value)
    assert message.startswith("converter 'teststand-xml': ")
    assert "crashed" not in message
    assert "\n" not in message
    return message


def find(report: Report, *names: str) -> Step:
    step = report.root
    assert step is not None
    for name in names:
        matches = [s for s in step.steps or [] if s.name == name]
        assert matches, f"no step {name!r} under {step.name!r}"
        step = matches[0]
    return step


def meas(step: Step, index: int = 0) -> tuple[object, ...]:
    m = (step.numeric_meas or [])[index]
    return (m.name, m.comp_op, m.value, m.low_limit, m.high_limit, m.unit, m.status)


def without_ids(reports: list[Report]) -> list[Report]:
    return [attrs.evolve(r, id="x") for r in reports]


# --- The classic report -----------------------------------------------------------------


def test_classic_report_header() -> None:
    report = one(CLASSIC.read_bytes())
    assert (report.sn, report.pn, report.rev, report.process_code) == ("2342343", "NA", "1.0", 10)
    assert report.result is Result.PASSED  # Report UUTResult='Passed'
    assert report.machine_name == "TS-2021-BETA"  # StationInfo.StationID
    assert (report.location, report.purpose) == ("Line 1", "Production")  # station defaults
    # StartDate 2022-7-1 + StartTime 15:47:48.927 (the Text says "15:47:48 PM"), July: +02:00.
    assert report.start == "2022-07-01T15:47:48.927+02:00"
    assert report.start_utc == "2022-07-01T13:47:48.927Z"
    assert report.uut is not None
    assert report.uut.user == "administrator"  # StationInfo.LoginName
    assert report.uut.exec_time == pytest.approx(6.0831833)  # the root's TS.TotalTime
    assert report.uut.test_socket_index == -1
    assert report.uut.batch_sn is None  # empty BatchSerialNumber
    assert report.misc_infos is None
    assert report.sub_units is None


def test_classic_report_steps() -> None:
    report = one(CLASSIC.read_bytes())
    root = report.root
    assert root is not None
    assert (root.name, root.step_type, root.status) == (
        "MainSequence Callback",
        "SequenceCall",
        Status.PASSED,
    )
    assert root.seq_call is not None
    assert root.seq_call.path.endswith("\\Computer Motherboard Test Sequence.seq")
    assert (root.seq_call.name, root.seq_call.version) == ("MainSequence", "21.0.0.49156")
    assert len(report.steps()) == 18  # the root and StepCount='17'
    assert [(s.name, s.group, s.status) for s in root.steps or []][:4] == [
        ("Simulation Dialog", StepGroup.SETUP, Status.PASSED),  # Done
        ("Turn Vacuum Table On", StepGroup.SETUP, Status.PASSED),
        ("Powerup Test", StepGroup.MAIN, Status.PASSED),
        ("If", StepGroup.MAIN, Status.PASSED),
    ]
    assert (root.steps or [])[-1].group is StepGroup.CLEANUP
    cpu = find(report, "CPU Test")
    assert cpu.kind is StepKind.SEQUENCE_CALL
    assert cpu.seq_call is not None
    assert (cpu.seq_call.name, cpu.seq_call.version) == ("CPU Test", "21.0.0.49156")
    assert [s.name for s in cpu.steps or []] == [
        "Register Test",
        "Instruction Set Test",
        "Cache Test",
        "FPU Test",
    ]
    # Numeric + Units + Limits.Low/High + Comp.
    assert meas(find(report, "Video Test")) == (
        None,
        CompOp.GTLT,
        5.0,
        0.0,
        10.0,
        "microseconds",
        Status.PASSED,
    )
    # A single limit (Comp GT, Limits.Low) is lowLimit; highLimit stays null.
    assert meas(find(report, "Keyboard Test")) == (None, CompOp.GT, 6.0, 5.0, None, None, "P")
    # PassFail True is a passed boolean measurement.
    powerup = find(report, "Powerup Test")
    assert powerup.kind is StepKind.PASS_FAIL
    assert [(m.name, m.status) for m in powerup.boolean_meas or []] == [(None, Status.PASSED)]
    flow = [s for s in root.steps or [] if s.step_type == "NI_Flow_If"]
    assert [s.report_text for s in flow] == ["{True}", "{False}"]
    assert find(report, "Video Test").tot_time == pytest.approx(0.0008776)
    assert find(report, "Video Test").ts_guid == "ID#:hMZLdWPO6BG1UABQVsAACA"
    # No EngineStarted in a classic report: the steps' TS.StartTime has no clock to add to.
    assert all(s.start is None for s in report.steps())
    assert [s.id for s in report.steps()] == list(range(1, 19))


# --- The WATS add-on dump ---------------------------------------------------------------


def test_dump_header() -> None:
    report = one(DUMP.read_bytes())
    assert report.id == "f4fb0a29-93b1-4f7f-ada7-672b382774ab"  # ReportInfo ID
    assert (report.sn, report.pn, report.rev, report.process_code) == ("12345", "PN1", "1.0", 60)
    assert report.result is Result.PASSED  # MainSequenceResults Status
    # ReportInfo Start carries its offset: kept, not the station's.
    assert report.start == "2022-06-23T10:55:04.370+02:00"
    assert report.start_utc == "2022-06-23T08:55:04.370Z"
    assert (report.machine_name, report.location, report.purpose) == (
        "VIC-PCBA-003",
        "Norautron Horten",
        "PCBA Test",
    )
    assert report.uut is not None
    assert (report.uut.user, report.uut.test_socket_index) == ("administrator", -1)
    assert (report.uut.batch_loop_index, report.uut.batch_fail_count) == (0, 0)
    assert report.uut.comment is None  # empty Comment
    assert report.uut.fixture_id is None


def test_dump_steps_and_their_start_times() -> None:
    report = one(DUMP.read_bytes())
    root = report.root
    assert root is not None
    assert root.seq_call is not None
    assert (root.seq_call.name, root.seq_call.version) == ("MainSequence", "0.0.0.0")
    (step,) = root.steps or []
    assert (step.name, step.step_type, step.status) == ("Pass/Fail Test", "ET_PFT", "P")
    assert [m.status for m in step.boolean_meas or []] == [Status.PASSED]
    # EngineStarted 08:51:29.994Z + TS.StartTime 214.4463569 s, in the report's offset.
    assert step.start == "2022-06-23T10:55:04.440+02:00"
    assert root.start == "2022-06-23T10:55:04.392+02:00"


def test_dump_with_a_cleared_id_gets_one_from_the_file() -> None:
    data = DUMP.read_bytes().replace(
        b"f4fb0a29-93b1-4f7f-ada7-672b382774ab", b"00000000-0000-0000-0000-000000000000"
    )
    first, second = one(data), one(data)
    assert first.id == second.id  # derived from the file's bytes: the same file, the same id
    assert first.id != one(data + b"\n").id
    assert first.id != "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize("path", [CLASSIC, DUMP], ids=["classic", "dump"])
def test_real_files_round_trip_and_ignore_line_ends(path: Path) -> None:
    data = path.read_bytes()
    lf = data.replace(b"\r\n", b"\n")
    crlf = lf.replace(b"\n", b"\r\n")
    assert without_ids(convert(lf)) == without_ids(convert(crlf))
    assert without_ids(convert(lf.rstrip())) == without_ids(convert(lf))
    for report in convert(data):
        assert wsjf.loads(wsjf.dumps(report)) == report


def test_dump_without_its_bom_and_as_utf16_reads_alike() -> None:
    data = DUMP.read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    text = data[3:].decode("utf-8")
    utf16 = text.replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16")
    assert convert(data[3:]) == convert(data) == convert(utf16)  # the same id: ReportInfo ID


# --- Made-up reports --------------------------------------------------------------------


def prop(
    name: str | None, kind: str, value: str | None = None, *children: str, **attrs_: str
) -> str:
    named = f" Name='{name}'" if name is not None else ""
    extra = "".join(f" {k}='{v}'" for k, v in attrs_.items())
    inner = f"<Value>{value}</Value>" if value is not None else ""
    return f"<Prop{named} Type='{kind}'{extra} Flags='0x0'>{inner}{''.join(children)}</Prop>"


def array(name: str, *elements: str) -> str:
    values = "".join(f"<Value ID='[{i}]'>{e}</Value>" for i, e in enumerate(elements))
    prototype = "<ArrayElementPrototype Type='Obj' Flags='0x0'><Prop Name='X' Type='String'/>"
    return (
        f"<Prop Name='{name}' Type='Array' LBound='[0]' HBound='[{len(elements) - 1}]' "
        f"ElementType='Obj' Flags='0x0'>{prototype}</ArrayElementPrototype>{values}</Prop>"
    )


def te_result(
    name: str,
    step_type: str,
    status: str = "Passed",
    *extra: str,
    ts_extra: str = "",
    group: str = "Main",
) -> str:
    ts = prop(
        "TS",
        "Obj",
        None,
        prop("StartTime", "Number", "10.5"),
        prop("TotalTime", "Number", "0.25"),
        prop("StepName", "String", name),
        prop("StepGroup", "String", group),
        prop("StepType", "String", step_type),
        ts_extra,
    )
    return prop(None, "TEResult", None, prop("Status", "String", status), *extra, ts)


def sequence(name: str, status: str, *results: str, file: str = "C:\\seq\\Main.seq") -> str:
    return prop(
        "TS",
        "Obj",
        None,
        prop(
            "SequenceCall",
            "Obj",
            None,
            array("ResultList", *results),
            prop("SequenceFile", "String", file),
            prop("SequenceFileVersion", "String", "1.2.3"),
            prop("Sequence", "String", name),
            prop("Status", "String", status),
        ),
        prop("TotalTime", "Number", "2.5"),
        prop("StepName", "String", "MainSequence Callback"),
        prop("StepType", "String", "SequenceCall"),
    )


def classic(
    *results: str,
    verdict: str = "Passed",
    serial: str = "SN-1",
    uut_extra: str = "",
    date: tuple[str, str, str] = ("2026", "2", "1"),
    clock: tuple[str, str, str, str] = ("9", "15", "0", "250"),
    reports: int = 1,
    root_status: str | None = None,
) -> bytes:
    year, month, day = date
    hours, minutes, seconds, ms = clock
    report = f"""<Report Type='UUT' Title='UUT Report' UUTResult='{verdict}' StepCount='1'>
{prop("UUT", "Obj", None, prop("SerialNumber", "String", serial), uut_extra, TypeName="UUT")}
{
        prop(
            "StartTime",
            "Obj",
            None,
            prop("Text", "String", "03:04:05 AM"),
            prop("Hours", "Number", hours),
            prop("Minutes", "Number", minutes),
            prop("Seconds", "Number", seconds),
            prop("Milliseconds", "Number", ms),
        )
    }
{
        prop(
            "StartDate",
            "Obj",
            None,
            prop("Text", "String", "Friday, July 1, 1999"),
            prop("ShortText", "String", "7/1/1999"),
            prop("Year", "Number", year),
            prop("Month", "Number", month),
            prop("MonthDay", "Number", day),
        )
    }
{
        prop(
            "StationInfo",
            "Obj",
            None,
            prop("StationID", "String", "ST-9"),
            prop("LoginName", "String", "op1"),
        )
    }
{
        prop(
            None,
            "TEResult",
            None,
            sequence("MainSequence", verdict, *results),
            prop("Status", "String", root_status or verdict),
        )
    }
</Report>"""
    batch = "<Report Type='Batch' Title='Batch Report'></Report>"
    body = batch + report * reports
    return f"<?xml version='1.0' encoding='iso-8859-1' ?>\n<Reports>{body}</Reports>".encode(
        "latin-1"
    )


def numeric(
    value: str, comp: str | None, low: str | None, high: str | None, unit: str = "V"
) -> str:
    limits = []
    if low is not None:
        limits.append(prop("Low", "Number", low))
    if high is not None:
        limits.append(prop("High", "Number", high))
    parts = [prop("Numeric", "Number", value), prop("Units", "String", unit)]
    parts.append(prop("Limits", "Obj", None, *limits))
    if comp is not None:
        parts.append(prop("Comp", "String", comp))
    return "".join(parts)


def steps_of(data: bytes) -> list[Step]:
    report = one(data)
    assert report.root is not None
    return list(report.root.steps or [])


def test_made_up_report_header_uses_numeric_date_fields() -> None:
    report = one(classic(), operationTypeCode=40, revision="C", partNumber="PN-9")
    assert (report.sn, report.pn, report.rev, report.process_code) == ("SN-1", "PN-9", "C", 40)
    # 2026-02-01 09:15:00.250 from Year/Month/MonthDay/Hours/...; the Text fields lie.
    assert report.start == "2026-02-01T09:15:00.250+01:00"
    assert report.machine_name == "ST-9"
    assert report.uut is not None
    assert (report.uut.user, report.uut.exec_time) == ("op1", 2.5)
    assert report.root is not None
    assert report.root.seq_call is not None
    assert report.root.seq_call.version == "1.2.3"


def test_add_on_uut_fields_misc_infos_and_sub_units() -> None:
    part = prop(
        None,
        "Obj",
        None,
        prop("Part_Type", "String", "PSU"),
        prop("Part_Number", "String", "PSU-1"),
        prop("Part_Serial_Number", "String", "P-77"),
        prop("Part_Revision_Number", "String", "B"),
        TypeName="ET_UUT_Part_Info",
    )
    misc = [
        prop(
            None,
            "Obj",
            None,
            prop("Description", "String", "Firmware"),
            prop("Data_String", "String", "1.2.3"),
            prop("Data_Numeric", "Number", "0"),
            TypeName="ET_Misc_UUT_Info",
        ),
        prop(
            None,
            "Obj",
            None,
            prop("Description", "String", "Temperature"),
            prop("Data_String", "String", ""),
            prop("Data_Numeric", "Number", "23"),
            TypeName="ET_Misc_UUT_Info",
        ),
    ]
    extra = "".join(
        [
            prop("UUTPartNumber", "String", "PCBA-100"),
            prop("UUTPartRevisionNumber", "String", "A"),
            prop("UUTOperationType", "Number", "60"),
            prop("BatchSerialNumber", "String", "B-7"),
            prop("TestSocketIndex", "Number", "2"),
            prop("Comment", "String", "hello"),
            prop("UUT_Fixture_ID", "String", "FX-1"),
            prop(
                "MiscUUTResult",
                "Obj",
                None,
                array("UUT_Part_Info", part),
                array("Misc_UUT_Info", *misc),
            ),
        ]
    )
    report = one(classic(uut_extra=extra), partNumber="unused")
    assert (report.pn, report.rev, report.process_code) == ("PCBA-100", "A", 60)
    assert report.uut is not None
    assert (report.uut.batch_sn, report.uut.test_socket_index) == ("B-7", 2)
    assert (report.uut.comment, report.uut.fixture_id) == ("hello", "FX-1")
    assert [(m.description, m.text) for m in report.misc_infos or []] == [
        ("Firmware", "1.2.3"),
        ("Temperature", "23"),
    ]
    assert [(u.part_type, u.pn, u.sn, u.rev) for u in report.sub_units or []] == [
        ("PSU", "PSU-1", "P-77", "B")
    ]


def test_numeric_limits_and_operators() -> None:
    nlt = "NumericLimitTest"
    raw = prop(
        "RawLimits",
        "Obj",
        None,
        prop("Nominal", "Number", "5"),
        prop("Low", "Number", "10"),
        prop("High", "Number", "10"),
    )
    eqt = numeric("5.2", "EQT", "10", "10") + raw
    eqt = eqt.replace(
        prop("Low", "Number", "10") + prop("High", "Number", "10"),
        prop("Low", "Number", "10")
        + prop("High", "Number", "10")
        + prop("ThresholdType", "String", "PERCENTAGE"),
        1,
    )
    steps = steps_of(
        classic(
            te_result("le", nlt, "Passed", numeric("3", "LE", "4", None)),
            te_result("lt-high", nlt, "Passed", numeric("3", "LT", None, "4")),
            te_result("inf", nlt, "Passed", numeric("3", "GELE", "1", "+INF")),
            te_result("none", nlt, "Passed", numeric("3", None, "1", "9")),
            te_result("log", nlt, "Passed", numeric("3", "LOG", None, None)),
            te_result("eqt", nlt, "Passed", eqt),
            te_result("nan", nlt, "Failed", numeric("NaN", "GELE", "1", "9")),
        )
    )
    got = [meas(s)[1:5] for s in steps]
    assert got == [
        (CompOp.LE, 3.0, 4.0, None),  # Limits.Low: TestStand's one limit
        (CompOp.LT, 3.0, 4.0, None),  # only a high limit given: still lowLimit
        (CompOp.GE, 3.0, 1.0, None),  # an infinite end is no limit
        (CompOp.GELE, 3.0, 1.0, 9.0),  # no Comp: both limits, GELE
        (CompOp.LOG, 3.0, None, None),
        (CompOp.GELE, 5.2, 4.5, 5.5),  # EQT: nominal 5 +/- 10 %
        (CompOp.GELE, None, 1.0, 9.0),  # NaN is not sent
    ]
    assert [meas(s)[6] for s in steps] == [Status.PASSED] * 6 + [Status.FAILED]
    assert (
        steps[-1].report_text == "Numeric: NaN (no reading WSJF can carry: the value is left out)"
    )


def test_multiple_measurements_strings_and_pass_fail() -> None:
    def element(name: str, *parts: str) -> str:
        return prop(name, "Obj", None, *parts)

    multi = array(
        "Measurement",
        element(
            "Measurement 0",
            prop("Data", "Number", "1"),
            prop("Limits", "Obj", None, prop("Low", "Number", "0"), prop("High", "Number", "2")),
            prop("Comp", "String", "GELE"),
            prop("Units", "String", "A"),
            prop("Status", "String", "Passed"),
        ),
        element(
            "Measurement 1",
            prop("Data", "Number", "7"),
            prop("Limits", "Obj", None, prop("Low", "Number", "0"), prop("High", "Number", "2")),
            prop("Comp", "String", "GELE"),
            prop("Status", "String", "Failed"),
        ),
        element(
            "Measurement 0",
            prop("Data", "Number", "3"),
            prop("Comp", "String", "LOG"),
            prop("Status", "String", "Passed"),
        ),
    )
    strings = array(
        "Measurement",
        element(
            "m",
            prop("MeasName", "String", "Serial"),
            prop("StringData", "String", "ABC"),
            prop("StringLimit", "String", "abc"),
            prop("Comp", "String", "IgnoreCase"),
            prop("Status", "String", "Passed"),
        ),
        element(
            "m",
            prop("MeasName", "String", "Ok"),
            prop("PassFail", "Boolean", "False"),
            prop("Status", "String", "Failed"),
        ),
    )
    single_string = prop("String", "String", "v1.0") + prop(
        "Limits", "Obj", None, prop("String", "String", "v1.0")
    )
    steps = steps_of(
        classic(
            te_result("multi", "NI_MultipleNumericLimitTest", "Failed", multi),
            te_result("strings", "ET_MSVT", "Failed", strings),
            te_result("svt", "StringValueTest", "Passed", single_string),
            te_result("pf", "PassFailTest", "Failed", prop("PassFail", "Boolean", "False")),
            verdict="Failed",
        ),
    )
    multi_step, strings_step, svt, pf = steps
    assert multi_step.kind is StepKind.MULTI_NUMERIC_LIMIT
    assert [meas(multi_step, i) for i in range(3)] == [
        ("Measurement 0", CompOp.GELE, 1.0, 0.0, 2.0, "A", Status.PASSED),
        ("Measurement 1", CompOp.GELE, 7.0, 0.0, 2.0, None, Status.FAILED),
        ("Measurement 0 (2)", CompOp.LOG, 3.0, None, None, None, Status.PASSED),
    ]
    assert [
        (m.name, m.comp_op, m.value, m.limit, m.status) for m in strings_step.string_meas or []
    ] == [("Serial", CompOp.IGNORECASE, "ABC", "abc", Status.PASSED)]
    assert [(m.name, m.status) for m in strings_step.boolean_meas or []] == [("Ok", "F")]
    assert [(m.comp_op, m.value, m.limit, m.status) for m in svt.string_meas or []] == [
        (CompOp.CASESENSIT, "v1.0", "v1.0", Status.PASSED)
    ]
    assert [m.status for m in pf.boolean_meas or []] == [Status.FAILED]


def test_errors_statuses_loops_popups_and_executables() -> None:
    error_prop = prop(
        "Error",
        "Obj",
        None,
        prop("Code", "Number", "-17502"),
        prop("Msg", "String", "Could not open 'DMM1'"),
        prop("Occurred", "Boolean", "True"),
    )
    no_error = prop(
        "Error",
        "Obj",
        None,
        prop("Code", "Number", "0"),
        prop("Msg", "String", ""),
        prop("Occurred", "Boolean", "False"),
    )
    loop = prop("NumLoops", "Number", "3") + prop("NumPassed", "Number", "2")
    loop += prop("NumFailed", "Number", "1") + prop("EndingLoopIndex", "Number", "3")
    steps = steps_of(
        classic(
            te_result("open", "Action", "Error", error_prop),
            te_result("fine", "Action", "Done", no_error),
            te_result("skipped", "NumericLimitTest", "Skipped", numeric("1", "EQ", "1", None)),
            te_result("stopped", "Action", "Terminated"),
            te_result("custom", "Action", "Tommy"),
            te_result("looped", "Action", "Passed", ts_extra=loop),
            te_result(
                "popup",
                "MessagePopup",
                "Done",
                prop("ButtonHit", "Number", "1"),
                prop("Response", "String", "yes"),
            ),
            te_result("exe", "CallExecutable", "Done", prop("ExitCode", "Number", "3")),
            te_result("setup", "Action", "Done", group="Setup"),
            verdict="Error",
        ),
    )
    assert [s.status for s in steps] == ["E", "P", "S", "T", "D", "P", "P", "P", "P"]
    assert (steps[0].error_code, steps[0].error_message) == (-17502, "Could not open 'DMM1'")
    assert (steps[1].error_code, steps[1].error_message) == (None, None)
    assert steps[2].numeric_meas is None  # a skipped step measured nothing
    assert steps[5].loop is not None
    assert (steps[5].loop.num, steps[5].loop.passed, steps[5].loop.failed) == (3, 2, 1)
    assert steps[6].message_popup is not None
    assert (steps[6].message_popup.button, steps[6].message_popup.response) == (1, "yes")
    assert steps[7].call_exe is not None
    assert steps[7].call_exe.exit_code == 3.0
    assert steps[8].group is StepGroup.SETUP
    assert all(s.tot_time == 0.25 for s in steps)


@pytest.mark.parametrize(
    ("verdict", "result"),
    [
        ("Passed", Result.PASSED),
        ("Failed", Result.FAILED),
        ("Error", Result.ERROR),
        ("Terminated", Result.TERMINATED),
        ("Done", Result.PASSED),
        ("Skipped", Result.TERMINATED),  # a unit that never ran is no pass
        ("Tommy", Result.ERROR),  # a custom status is no pass either
    ],
)
def test_unit_verdict_is_uutresult(verdict: str, result: Result) -> None:
    # Every step passed; only UUTResult counts.
    passed = te_result("pf", "PassFailTest", "Passed", prop("PassFail", "Boolean", "True"))
    # The MainSequence's own Status says Passed: the report's UUTResult decides.
    assert one(classic(passed, verdict=verdict, root_status="Passed")).result is result


def test_several_uut_reports_in_one_file_and_batch_reports_skipped() -> None:
    reports = convert(classic(reports=3))
    assert len(reports) == 3
    assert len({r.id for r in reports}) == 3


def test_latin1_names_and_odd_characters() -> None:
    name = "Spänning &lt;5V&gt; &amp; °C &quot;x&quot; &#x1F600;"
    report = one(classic(te_result(name, "Action")))
    assert report.root is not None
    assert (report.root.steps or [])[0].name == 'Spänning <5V> & °C "x" \U0001f600'


# --- Bad input --------------------------------------------------------------------------


def test_doctype_is_refused() -> None:
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE Reports [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<Reports><Report Type='UUT'>&b;</Report></Reports>"""
    assert "line 2: the XML has a document type declaration" in error(bomb)


def test_missing_and_bad_parts_name_the_place() -> None:
    assert "Report[1]/UUT: SerialNumber is missing or empty" in error(classic(serial=""))
    message = error(classic(date=("2026", "13", "1")))
    assert "Report[1]/StartDate: not a date and time: month must be in 1..12" in message
    message = error(classic(clock=("9", "x", "0", "0")))
    assert "Report[1]/StartTime: Minutes is missing or not a whole number" in message
    bad = te_result("v", "NumericLimitTest", "Passed", numeric("5,5", "GELE", "0", "9"))
    message = error(classic(bad))
    assert "Report[1]/TEResult 'MainSequence Callback'/ResultList[0] 'v' Numeric" in message
    assert "'5,5' is not a number" in message
    bad_comp = te_result("c", "NumericLimitTest", "Passed", numeric("5", "ABOUT", "0", "9"))
    assert "Comp 'ABOUT' is not a comparison operator" in error(classic(bad_comp))
    assert "holds no <Report Type='UUT'>" in error(b"<Reports><Report Type='Batch'/></Reports>")
    no_root = b"<Reports><Report Type='UUT'><Prop Name='UUT' Type='Obj'/></Report></Reports>"
    assert "Report[1]: no TEResult" in error(no_root)
    assert "process code 'sixty'" in error(
        classic(uut_extra=prop("UUTOperationType", "String", "sixty"))
    )


def test_other_formats_are_named() -> None:
    atml = (DATA / "equipment" / "atml" / "ATML 5.00 [2 31 11 PM][5 15 2019].xml").read_bytes()
    message = error(atml)
    assert (
        "the root element is TestResultsCollection in "
        "urn:IEEE-1636.1:2011:01:TestResultsCollection, not a TestStand" in message
    )
    assert "not a TestStand Reports, Report or TSReport" in message
    wsxf = (DATA / "uut-wsxf-export.xml").read_bytes()
    assert "not a TestStand Reports" in error(wsxf)


def test_truncated_file() -> None:
    data = CLASSIC.read_bytes()
    assert "is the file complete?" in error(data[: len(data) * 2 // 3])


def test_deep_nesting_is_refused() -> None:
    inner = te_result("leaf", "Action")
    for _ in range(120):
        inner = prop(None, "TEResult", None, sequence("S", "Passed", inner))
    assert "steps are nested deeper than 100 levels" in error(classic(inner))


def test_bad_arguments_are_refused_at_load() -> None:
    with pytest.raises(ConfigError, match=r"arguments\.revision: must be 1 to 100"):
        load_converter("teststand-xml", {"revision": ""})
    with pytest.raises(ConfigError, match="unknown argument"):
        load_converter("teststand-xml", {"partnumber": "x"})


# --- Sniffing ---------------------------------------------------------------------------


def head(path: Path) -> bytes:
    return path.read_bytes()[:SNIFF_BYTES]


def test_sniff_claims_both_layouts_and_no_other_format() -> None:
    sniff = TestStandXmlConverter.sniff
    assert sniff(head(CLASSIC), CLASSIC.name) == (
        "root element Reports (no namespace) holding <Report Type='UUT'>"
    )
    assert sniff(head(DUMP), DUMP.name) == (
        "root element TSReport (no namespace): the WATS TestStand add-on dump"
    )
    assert sniff(classic()[:2000], "x.xml") is not None
    # WSXF: a Reports root too, but in the WATS namespace, or bare with lower-case type.
    assert sniff(head(DATA / "uut-wsxf-export.xml"), "x.xml") is None
    bare_wsxf = b'<?xml version="1.0"?><Reports><Report type="UUT" ID="1"/></Reports>'
    assert sniff(bare_wsxf, "x.xml") is None
    assert WsxfConverter.sniff(bare_wsxf, "x.xml") is not None
    for path in sorted((DATA / "equipment" / "atml").iterdir()):
        assert sniff(head(path), path.name) is None
    for path in (CLASSIC, DUMP):
        assert WsxfConverter.sniff(head(path), path.name) is None
        assert AtmlConverter.sniff(head(path), path.name) is None


@FUZZ
@given(st.binary(max_size=400))
def test_sniff_never_raises(data: bytes) -> None:
    for prefix in (b"", b"<Reports><Report Type='UUT'", codecs.BOM_UTF8 + b"<TSReport"):
        said = TestStandXmlConverter.sniff(prefix + data, "x.xml")
        assert said is None or isinstance(said, str)


# --- Fuzzing ----------------------------------------------------------------------------

CONVERTER = load_converter("teststand-xml")


def check(data: bytes) -> None:
    failure: ConversionError | None = None
    try:
        reports = CONVERTER.convert(Source(Path("fuzz.xml"), data), STATION)
    except ConversionError as exc:
        failure, reports = exc, []
    if failure is not None:
        assert "crashed" not in str(failure), str(failure)
        assert "\n" not in str(failure)
    for report in reports:
        assert wsjf.loads(wsjf.dumps(report)) == report


SMALL = classic(
    te_result("n", "NumericLimitTest", "Passed", numeric("1", "GELE", "0", "2")),
    te_result("p", "PassFailTest", "Failed", prop("PassFail", "Boolean", "False")),
)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.sampled_from([CLASSIC, DUMP]), st.floats(0, 1))
def test_fuzz_truncated_real_files(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    check(data[: int(len(data) * fraction)])


@FUZZ
@given(st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_fuzz_byte_flips(flips: list[tuple[float, int]]) -> None:
    for source in (SMALL, DUMP.read_bytes()):
        data = bytearray(source)
        for fraction, value in flips:
            data[int(fraction * (len(data) - 1))] = value
        check(bytes(data))


_VALUES = st.sampled_from(
    ["", " ", "x", "NaN", "INF", "-INF", "1e999", "0x1F", "99999999999", "5", "-0", "True", "1,5"]
)


@FUZZ
@given(
    _VALUES,
    _VALUES,
    _VALUES,
    st.sampled_from(["GE", "LT", "GELE", "LTGT", "EQT", "LOG", "CASESENSIT", "?", ""]),
    _VALUES,
)
def test_fuzz_values(value: str, low: str, high: str, comp: str, number: str) -> None:
    step = te_result("v", "NumericLimitTest", "Passed", numeric(value, comp or None, low, high))
    uut = prop("TestSocketIndex", "Number", number) + prop("UUTOperationType", "Number", number)
    check(classic(step, uut_extra=uut, clock=("9", "15", number or "0", "0")))
