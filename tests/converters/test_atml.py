"""The ``atml`` converter: IEEE 1636.1 TestResults as NI TestStand writes them.

The real files (tests/data/equipment/atml, from Virinco's ATML converter) are checked
unit by unit and step by step; small made-up documents cover what they do not show
(errors from tr:Events, terminated units, regular expressions, infinite limits); then bad
input and Hypothesis fuzzing.
"""

from __future__ import annotations

import codecs
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywats.converters import Source, StationDefaults, load_converter
from pywats.converters.atml import AtmlConverter, outcome_status, parse_number
from pywats.converters.teststand_xml import TestStandXmlConverter
from pywats.converters.wsxf import WsxfConverter
from pywats.defaults import SNIFF_BYTES
from pywats.errors import ConfigError, ConversionError
from pywats.report import CompOp, Report, Result, Status, Step, StepGroup, StepKind, wsjf

STATION = StationDefaults(machine_name="ST-1", location="Line 1", purpose="Production")
DATA = Path(__file__).parents[1] / "data"
ATML = DATA / "equipment" / "atml"
V500 = ATML / "ATML 5.00 [2 31 11 PM][5 15 2019].xml"
V601 = ATML / "ATML 6.01 [2 31 52 PM][5 15 2019].xml"
V202 = ATML / "TS2017_ATML2.02 - FATv1.XML"
BATCH = ATML / "Parallel Testing Strategies_BatchReport.6 45 31 AM..9 13 2022.xml"

FUZZ = settings(
    max_examples=int(os.environ.get("PYWATS_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Central European time without the tz database: +01:00 in winter, +02:00 in summer.
STATION_TZ = "CET-1CEST,M3.5.0,M10.5.0/3"


@pytest.fixture(autouse=True)
def station_zone() -> Iterator[None]:
    """The station's clock is in Oslo: local times in the files are +01:00/+02:00."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = STATION_TZ
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
    loaded = load_converter("atml", arguments)
    return loaded.convert(Source(Path("report.xml"), data), STATION)


def one(data: bytes, **arguments: Any) -> Report:
    (report,) = convert(data, **arguments)
    return report


def error(data: bytes, **arguments: Any) -> str:
    with pytest.raises(ConversionError) as info:
        convert(data, **arguments)
    message = str(info.value)
    assert message.startswith("converter 'atml': ")
    assert "crashed" not in message
    assert "\n" not in message
    return message


def find(report: Report, *names: str) -> Step:
    """The step reached from the root through the named children."""
    step = report.root
    assert step is not None
    for name in names:
        matches = [s for s in step.steps or [] if s.name == name]
        assert matches, f"no step {name!r} under {step.name!r}"
        step = matches[0]
    return step


def measurement(step: Step, index: int = 0) -> tuple[object, ...]:
    m = (step.numeric_meas or [])[index]
    return (m.name, m.comp_op, m.value, m.low_limit, m.high_limit, m.unit, m.status)


# --- 5.00 and 6.01: one sequence, two dialects -----------------------------------------


@pytest.mark.parametrize("path", [V500, V601], ids=["5.00", "6.01"])
def test_motherboard_unit_header(path: Path) -> None:
    report = one(path.read_bytes())
    assert (report.sn, report.pn, report.rev) == ("123456789", "Ragnar123", "1.0")
    assert report.result is Result.FAILED  # the ResultSet's Outcome
    assert report.process_code == 10
    assert report.machine_name == "TS-2016-BETA"  # tr:TestStation/c:SerialNumber
    assert (report.location, report.purpose) == ("Line 1", "Production")
    assert report.uut is not None
    assert report.uut.user == "administrator"
    assert report.uut.test_socket_index is None
    if path is V500:
        # Local wall-clock time of a May day in Oslo: +02:00.
        assert report.start == "2019-05-15T14:31:11.452+02:00"
        assert report.start_utc == "2019-05-15T12:31:11.452Z"
        assert report.uut.exec_time == pytest.approx(2.695)  # endDateTime - startDateTime
    else:
        assert report.start == "2019-05-15T14:31:52.851+02:00"
        assert report.uut.exec_time == pytest.approx(2.127)
    root = report.root
    assert root is not None
    assert (root.name, root.step_type, root.status) == ("MainSequence", "SequenceCall", "F")
    assert root.seq_call is not None
    assert root.seq_call.path.endswith("\\Computer Motherboard Test Sequence VIC.seq")
    assert (root.seq_call.name, root.seq_call.version) == ("MainSequence", "0.0.0")
    assert root.tot_time == (2.6958 if path is V500 else 2.12798)  # ts:TotalTime


@pytest.mark.parametrize("path", [V500, V601], ids=["5.00", "6.01"])
def test_motherboard_steps(path: Path) -> None:
    report = one(path.read_bytes())
    root = report.root
    assert root is not None
    names = [(s.name, s.step_type, s.group, s.status) for s in root.steps or []]
    assert names[:6] == [
        ("Add Partnumber", "Statement", StepGroup.SETUP, Status.PASSED),  # Done
        ("Simulation Dialog", "Action", StepGroup.SETUP, Status.PASSED),
        ("Turn Vacuum Table On", "Action", StepGroup.SETUP, Status.PASSED),
        ("Powerup Test", "PassFailTest", StepGroup.MAIN, Status.PASSED),
        ("If", "NI_Flow_If", StepGroup.MAIN, Status.PASSED),
        ("CPU Test", "SequenceCall", StepGroup.MAIN, Status.PASSED),
    ]
    assert names[-1] == ("Turn Vacuum Table Off", "Action", StepGroup.CLEANUP, Status.PASSED)
    assert len(report.steps()) == 24  # the root and ts:NumOfResults 23

    cpu = find(report, "CPU Test")
    assert cpu.kind is StepKind.SEQUENCE_CALL
    assert cpu.seq_call is not None
    assert cpu.seq_call.name == "CPU Test"  # callerName
    assert [s.name for s in cpu.steps or []] == [
        "Register Test",
        "Instruction Set Test",
        "Cache Test",
        "FPU Test",
    ]
    # A pass/fail step's verdict is its outcome (TestStand writes no result for it).
    powerup = find(report, "Powerup Test")
    assert powerup.kind is StepKind.PASS_FAIL
    assert [(m.name, m.status) for m in powerup.boolean_meas or []] == [(None, Status.PASSED)]
    failed_pf = find(report, "Keyboard Diagnostics")
    assert [m.status for m in failed_pf.boolean_meas or []] == [Status.FAILED]

    # LimitPair GT 0 / LT 10 in microseconds (nonStandardUnit).
    video = find(report, "Video Test")
    assert measurement(video) == (
        None,
        CompOp.GTLT,
        5.0,
        0.0,
        10.0,
        "microseconds",
        Status.PASSED,
    )
    # SingleLimit GT 5: the limit is lowLimit, highLimit stays null; no unit.
    keyboard = find(report, "Keyboard Test")
    assert measurement(keyboard) == (None, CompOp.GT, 4.0, 5.0, None, None, Status.FAILED)
    assert keyboard.caused_seq_failure is True

    # The CriticalFailureStack names the step that failed the unit.
    assert report.uut is not None
    assert report.uut.step_id_caused_uut_failure == keyboard.id
    assert keyboard.caused_uut_failure is True

    # Not run: 5.00 writes UserDefined/Skipped, 6.01 NotStarted. No measurement either way.
    for name in ("CPU Diagnostics", "ROM Diagnostics", "RAM Diagnostics", "Video Diagnostics"):
        skipped = find(report, name)
        assert skipped.status is Status.SKIPPED
        assert skipped.kind is StepKind.ACTION
    assert find(report, "If").report_text == "{True}"  # tr:Data ReportText
    expected_time = 0.0001209 if path is V500 else 0.0001217  # ts:TotalTime, seconds
    assert find(report, "Add Partnumber").tot_time == pytest.approx(expected_time)
    assert find(report, "Add Partnumber").start is not None
    assert find(report, "Powerup Test").ts_guid is not None


def test_5_00_and_6_01_give_the_same_steps() -> None:
    def shape(report: Report) -> list[tuple[object, ...]]:
        return [
            (s.name, s.step_type, s.group, s.status, s.numeric_meas, s.boolean_meas)
            for s in report.steps()
        ]

    assert shape(one(V500.read_bytes())) == shape(one(V601.read_bytes()))


def test_step_start_times_and_ids() -> None:
    report = one(V500.read_bytes())
    steps = report.steps()
    assert [s.id for s in steps] == list(range(1, len(steps) + 1))  # tree order
    assert find(report, "Powerup Test").start == "2019-05-15T14:31:13.996+02:00"


# --- The batch: four sockets ---------------------------------------------------------


def test_batch_file_is_one_report_per_socket() -> None:
    reports = convert(BATCH.read_bytes())
    assert len(reports) == 4
    assert [r.uut.test_socket_index for r in reports if r.uut] == [0, 1, 2, 3]
    assert {r.sn for r in reports} == {"NONE"}  # TestStand's "no serial", kept as is
    assert {r.pn for r in reports} == {"NA"}  # no IdentificationNumber: the argument
    assert {r.result for r in reports} == {Result.PASSED}
    assert {r.machine_name for r in reports} == {"TestStandDebug"}
    assert [r.start for r in reports] == [
        "2022-09-13T06:45:31.676+02:00",
        "2022-09-13T06:45:31.675+02:00",
        "2022-09-13T06:45:31.676+02:00",
        "2022-09-13T06:45:31.678+02:00",
    ]
    assert [r.uut.batch_sn for r in reports if r.uut] == [None, None, None, "BatchSerialNumber"]
    assert len({r.id for r in reports}) == 4
    for report in reports:
        assert report.root is not None
        assert report.root.name == "Sequential"
        assert report.root.steps == []  # ts:NumOfResults 0
        assert report.root.tot_time == pytest.approx(29.638, abs=0.01)


# --- 2.02: the WATS FAT sequence ------------------------------------------------------


def fat() -> Report:
    return one(V202.read_bytes())


def test_fat_header() -> None:
    report = fat()
    assert (report.sn, report.pn, report.result) == ("19008.8905787", "NA", Result.FAILED)
    assert report.machine_name == "TALLENOVO1"
    assert report.start == "2019-05-08T14:52:56.753+02:00"
    assert report.uut is not None
    assert report.uut.exec_time == pytest.approx(200.65)
    root = report.root
    assert root is not None
    # 2.02: the ResultSet wraps the MainSequence call; its step name is in userDefinedType.
    assert (root.name, root.status) == ("MainSequence Callback", Status.FAILED)
    assert root.seq_call is not None
    assert root.seq_call.path.endswith("\\TS2016 - FATv1.seq")
    assert root.seq_call.name == "MainSequence"
    assert [s.name for s in root.steps or []][:4] == [
        "Setup step",
        "NI steps (NI seq call)",
        "WATS steps (WATS seq call)",
        "IrregularlResults",
    ]
    assert len(report.steps()) == 184


def test_fat_sequence_versions_and_step_types() -> None:
    report = fat()
    wats = find(report, "WATS steps (WATS seq call)")
    assert wats.step_type == "WATS_SeqCall"
    assert wats.seq_call is not None
    assert (wats.seq_call.name, wats.seq_call.version) == ("WATS steps", "1.1.0.64")
    external = find(report, "Call sub seq in external seq file")
    assert external.seq_call is not None
    assert external.seq_call.version == "1.2.3.6"
    assert external.seq_call.path.endswith("\\WATS FAT- sub seq v1.seq")
    nested = find(report, "Call Sub level 1", "Call Sub level 2", "Call Sub level 3")
    assert [s.name for s in nested.steps or []] == ["teststap level 3"]
    # 2.02 has no TotalTime: a step's own start and end times give it.
    assert find(report, "NI steps (NI seq call)", "Message Popup").tot_time == pytest.approx(2.205)


def test_fat_every_comparison_operator() -> None:
    report = fat()
    group = "Numeric tests with all ComOp"

    def op(name: str) -> tuple[object, ...]:
        return measurement(find(report, group, name))[1:]

    volt = "Volt"
    assert op("EQ") == (CompOp.EQ, 0.0, 9.0, None, volt, Status.FAILED)  # c:Expected EQ
    assert op("NE") == (CompOp.NE, 0.0, 9.0, None, volt, Status.PASSED)
    assert op("GT") == (CompOp.GT, 0.0, 9.0, None, volt, Status.FAILED)  # c:SingleLimit
    assert op("LT") == (CompOp.LT, 0.0, 9.0, None, volt, Status.PASSED)  # lowLimit, not high
    assert op("GE") == (CompOp.GE, 0.0, 9.0, None, volt, Status.FAILED)
    assert op("LE") == (CompOp.LE, 0.0, 9.0, None, volt, Status.PASSED)
    assert op("GTLT") == (CompOp.GTLT, 0.0, 9.0, 11.0, volt, Status.FAILED)  # c:LimitPair
    assert op("GELE") == (CompOp.GELE, 0.0, 9.0, 11.0, volt, Status.FAILED)
    assert op("GELT") == (CompOp.GELT, 0.0, 9.0, 11.0, volt, Status.FAILED)
    assert op("GTLE") == (CompOp.GTLE, 0.0, 9.0, 11.0, volt, Status.FAILED)
    assert op("LTGT") == (CompOp.LTGT, 0.0, 9.0, 11.0, volt, Status.PASSED)  # operator OR
    assert op("LEGE") == (CompOp.LEGE, 0.0, 9.0, 11.0, volt, Status.PASSED)
    assert op("LEGT") == (CompOp.LEGT, 0.0, 9.0, 11.0, volt, Status.PASSED)
    assert op("LTGE") == (CompOp.LTGE, 0.0, 9.0, 11.0, volt, Status.PASSED)
    assert op("LOG") == (CompOp.LOG, 0.0, None, None, volt, Status.PASSED)  # IsComparisonTypeLog
    # EQT: nominal 5 with tolerances 10/10 (the file puts the raw 10 where limits go).
    assert op("EQT - PERCENTAGE") == (CompOp.GELE, 0.0, 4.5, 5.5, volt, Status.FAILED)
    assert op("EQT - PPM") == (CompOp.GELE, 0.0, 4.99995, 5.00005, volt, Status.FAILED)
    assert op("EQT - DELTA") == (CompOp.GELE, 0.0, -5.0, 15.0, volt, Status.PASSED)
    # Every one of them passes or fails by WATS's own rules as TestStand judged it.
    for step in find(report, group).steps or []:
        for m in step.numeric_meas or []:
            if m.value is not None:
                assert m.evaluate() is (m.status is Status.PASSED), (step.name, m.name)


def test_fat_multiple_numeric_steps() -> None:
    report = fat()
    step = find(report, "Numeric tests with all ComOp", "All Comp Operators")
    assert step.kind is StepKind.MULTI_NUMERIC_LIMIT
    meas = step.numeric_meas or []
    assert len(meas) == 18
    assert [m.name for m in meas[:3]] == [
        "Measurement EQ",
        "Measurement EQT - PRECENTAGE",
        "Measurement EQT - PPM",
    ]
    assert (meas[0].comp_op, meas[0].low_limit, meas[0].status) == (
        CompOp.EQ,
        9.0,
        Status.FAILED,
    )
    assert (meas[-1].name, meas[-1].comp_op, meas[-1].status) == (
        "Measurement LOG",
        CompOp.LOG,
        Status.PASSED,
    )
    # Each result's own Outcome is its status.
    mnlt = find(report, "NI steps (NI seq call)", "Multiple Numeric Limit Test")
    assert [measurement(mnlt, i) for i in range(3)] == [
        (f"Measurement {i}", CompOp.GELE, float(i + 1), 0.0, 10.0, "v", Status.PASSED)
        for i in range(3)
    ]
    # A WATS multiple-numeric step with one named result keeps its name.
    nan_plot = find(report, "IrregularlResults", "XYGMNLT with NAN in plot")
    assert [m.name for m in nan_plot.numeric_meas or []] == ["Measurement 0"]


def test_fat_equal_measurement_names_are_made_unique() -> None:
    step = find(fat(), "CroppingText", "MNLT with too long measuremnent names")
    long = "abcdefghijklmnopqrstuvwxyz" * 4
    assert [m.name for m in step.numeric_meas or []] == [long, f"{long} (2)"]


def test_fat_nan_and_infinity_are_not_sent_as_values() -> None:
    report = fat()
    step = find(report, "IrregularlResults", "MNLT with NAN and INF")
    assert [(m.name, m.value, m.status) for m in step.numeric_meas or []] == [
        ("NAN", None, Status.FAILED),
        ("INF", None, Status.FAILED),
    ]
    assert step.report_text == (
        "NAN: NaN (no reading WSJF can carry: the value is left out)\n"
        "INF: INF (no reading WSJF can carry: the value is left out)"
    )
    assert b'"value": NaN' not in wsjf.dumps(report)


def test_fat_additional_results_are_not_measurements() -> None:
    report = fat()
    step = find(report, "StepsWithAdditionalResults", "NLT - AdditionalResults")
    # Numeric (with limits) is the measurement; NLT_AdditionalResults and Step Comment
    # are additional results.
    assert len(step.numeric_meas or []) == 1
    assert step.string_meas is None
    # An ET_NLT written without TestLimits has no measurement at all (see the docs).
    assert find(report, "WATS steps (WATS seq call)", "Numeric Limit Test").numeric_meas is None
    # ReportText results are the step's report text.
    mpft = find(report, "WATS steps (WATS seq call)", "Multiple Pass/Fail test")
    assert mpft.report_text == "Report text"
    assert [m.status for m in mpft.boolean_meas or []] == [Status.FAILED]


def test_fat_strings_popups_executables_and_latin1() -> None:
    report = fat()
    ni = ("NI steps (NI seq call)",)
    svt = find(report, *ni, "String Value Test")
    (m,) = svt.string_meas or []
    assert (m.comp_op, m.value, m.limit, m.status) == (
        CompOp.CASESENSIT,  # Expected EQ: TestStand's case-sensitive compare
        "this is a string result",
        "this is a string limit",
        Status.FAILED,
    )
    popup = find(report, *ni, "Message Popup")
    assert popup.kind is StepKind.MESSAGE_POPUP
    assert popup.message_popup is not None
    assert (popup.message_popup.button, popup.message_popup.response) == (2, "Response text")
    exe = find(report, *ni, "Call Executable")
    assert exe.call_exe is not None
    assert exe.call_exe.exit_code == 0.0
    # iso-8859-1 as declared: 0xF8 is "ø", never dropped or replaced.
    text = find(report, "CroppingText", "Step Report Text should be 5K characters").report_text
    assert text is not None
    assert text.startswith("Orhitr øeotøorey tørehitøø")


def test_fat_outcomes() -> None:
    report = fat()
    ni = ("NI steps (NI seq call)",)
    assert find(report, *ni, "Statement").status is Status.SKIPPED  # Aborted/Skipped
    assert find(report, *ni, "Action").status is Status.PASSED  # Done
    # A custom status (Aborted/Tommy) is Done; its measurement is judged by its limits.
    tommy = find(report, "IrregularlResults", "NLT with unvalid step status")
    assert tommy.status is Status.DONE
    assert measurement(tommy)[1:] == (CompOp.GELE, 0.0, 9.0, 11.0, None, Status.FAILED)


def test_fat_loops() -> None:
    report = fat()
    summary = find(report, "Looping", "NLT loop with all results")
    assert summary.loop is not None
    assert (summary.loop.num, summary.loop.passed, summary.loop.failed) == (3, 3, 0)
    assert summary.loop.ending_index == 3
    first = find(report, "Looping", "NLT loop with all results (Loop Index:0)")
    assert first.loop is not None
    assert first.loop.idx == 0


def test_fat_a_test_step_that_calls_a_sequence() -> None:
    step = find(fat(), "NLT - Call sub seq from test step")
    assert step.step_type == "NumericLimitTest"
    assert measurement(step)[1:] == (CompOp.GELE, 0.0, 9.0, 11.0, None, Status.FAILED)
    (post,) = step.steps or []
    assert post.seq_call is not None
    assert post.seq_call.name == "SubSeq"
    assert [s.name for s in post.steps or []] == ["SubSeq test 1", "SubSeq test 2", "SubSeq test 3"]


@pytest.mark.parametrize("path", [V500, V601, V202, BATCH], ids=lambda p: p.name[:12])
def test_real_files_round_trip_through_wsjf(path: Path) -> None:
    for report in convert(path.read_bytes()):
        assert wsjf.loads(wsjf.dumps(report)) == report


# --- Text, line ends, namespaces ------------------------------------------------------


def without_ids(reports: list[Report]) -> list[Report]:
    return [attrs.evolve(r, id="x") for r in reports]


@pytest.mark.parametrize("path", [V500, V202], ids=["5.00", "2.02"])
def test_crlf_and_missing_final_newline_change_nothing(path: Path) -> None:
    data = path.read_bytes()
    lf = data.replace(b"\r\n", b"\n")
    crlf = lf.replace(b"\n", b"\r\n")
    cut = lf.rstrip(b"\n")
    assert without_ids(convert(lf)) == without_ids(convert(crlf)) == without_ids(convert(cut))


def test_utf8_with_bom_and_utf16_read_alike() -> None:
    text = V202.read_bytes().decode("latin-1")
    utf8 = codecs.BOM_UTF8 + text.replace('encoding="iso-8859-1"', 'encoding="utf-8"').encode()
    utf16 = text.replace('encoding="iso-8859-1"', 'encoding="utf-16"').encode("utf-16")
    assert without_ids(convert(utf8)) == without_ids(convert(utf16)) == without_ids([fat()])


def test_bytes_the_declared_encoding_cannot_hold() -> None:
    data = V500.read_bytes().replace(b'encoding="iso-8859-1"', b'encoding="utf-8"')
    data = data.replace(b"administrator", b"adm\xf8nistrator", 1)
    assert "declares encoding 'utf-8'" in error(data)
    assert "but line 6: the file is not valid utf-8 text (byte 835" in error(data)


def test_prefixes_do_not_matter_only_namespaces() -> None:
    data = V500.read_bytes()
    renamed = re.sub(rb"(?<![\w])tr:", b"results:", data).replace(b"xmlns:tr=", b"xmlns:results=")
    renamed = re.sub(rb"(?<![\w])c:", b"k:", renamed).replace(b"xmlns:c=", b"xmlns:k=")
    assert b"<results:ResultSet" in renamed
    assert b"<k:SerialNumber" in renamed
    assert without_ids(convert(renamed)) == without_ids(convert(data))
    wrong = data.replace(b'urn:IEEE-1636.1:2011:01:TestResults"', b'urn:example:Other"')
    assert "not an ATML" in error(wrong) or "no tr:ResultSet" in error(wrong)


# --- Made-up documents ----------------------------------------------------------------

NS = (
    'xmlns:trc="urn:IEEE-1636.1:2013:TestResultsCollection" '
    'xmlns:tr="urn:IEEE-1636.1:2013:TestResults" xmlns:c="urn:IEEE-1671:2010:Common" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:ts="www.ni.com/TestStand/ATMLTestResults/3.0"'
)


def document(
    *steps: str,
    outcome: str = '<tr:Outcome value="Passed"/>',
    serial: str = "SN-1",
    part: str = '<c:IdentificationNumber number="PCBA-100" type="Part"/>',
    result_set_extra: str = "",
    start: str = "2026-02-01T09:15:00.250",
) -> bytes:
    body = "".join(steps)
    return f"""<?xml version="1.0" encoding="iso-8859-1" ?>
<trc:TestResultsCollection {NS}>
<trc:TestResults uuid="u1" {NS}>
<tr:Personnel><tr:SystemOperator ID="op1" name="Operator One"/></tr:Personnel>
<tr:ResultSet ID="1" name="C:\\seq\\Main.seq#MainSequence" startDateTime="{start}"
  endDateTime="2026-02-01T09:15:12.750">
{result_set_extra}{outcome}{body}</tr:ResultSet>
<tr:TestStation><c:SerialNumber>ST-9</c:SerialNumber></tr:TestStation>
<tr:UUT><c:Definition><c:Identification><c:IdentificationNumbers>{part}
</c:IdentificationNumbers></c:Identification></c:Definition>
<c:SerialNumber>{serial}</c:SerialNumber></tr:UUT>
</trc:TestResults></trc:TestResultsCollection>""".encode("latin-1")


def make_step(
    name: str,
    step_type: str,
    outcome: str = '<tr:Outcome value="Passed"/>',
    body: str = "",
    step_id: str = "2",
) -> str:
    return f"""<tr:Test ID="{step_id}" name="{name}" startDateTime="2026-02-01T09:15:01.000">
<tr:Extension><ts:TSStepProperties><ts:StepType>{step_type}</ts:StepType>
<ts:StepGroup>Main</ts:StepGroup><ts:TotalTime value='0.5'/></ts:TSStepProperties></tr:Extension>
{outcome}{body}</tr:Test>"""


def numeric(
    value: str, limits: str, unit: str = "V", outcome: str = "", name: str = "Numeric"
) -> str:
    return f"""<tr:TestResult ID="tr-{name}" name="{name}"><tr:TestData>
<c:Datum value="{value}" xsi:type="ts:TS_double" nonStandardUnit="{unit}"/></tr:TestData>
<tr:TestLimits><tr:Limits>{limits}</tr:Limits></tr:TestLimits>{outcome}</tr:TestResult>"""


def pair(first: str, low: str, second: str, high: str) -> str:
    return (
        f'<c:LimitPair operator="AND"><c:Limit comparator="{first}">'
        f'<c:Datum value="{low}" xsi:type="ts:TS_double"/></c:Limit>'
        f'<c:Limit comparator="{second}"><c:Datum value="{high}" xsi:type="ts:TS_double"/>'
        "</c:Limit></c:LimitPair>"
    )


def test_made_up_document_header() -> None:
    report = one(document(), operationTypeCode=30, revision="B", partNumber="unused")
    assert (report.sn, report.pn, report.rev, report.process_code) == ("SN-1", "PCBA-100", "B", 30)
    assert report.start == "2026-02-01T09:15:00.250+01:00"  # winter: +01:00
    assert report.start_utc == "2026-02-01T08:15:00.250Z"
    assert report.uut is not None
    assert (report.uut.user, report.uut.exec_time) == ("op1", 12.5)
    assert report.machine_name == "ST-9"


def test_a_stated_offset_is_kept() -> None:
    report = one(document(start="2026-02-01T09:15:00.250-05:00"))
    assert report.start == "2026-02-01T09:15:00.250-05:00"
    assert report.start_utc == "2026-02-01T14:15:00.250Z"


def test_part_number_argument_when_the_file_has_none() -> None:
    report = one(document(part=""), partNumber="PN-ARG")
    assert report.pn == "PN-ARG"
    other = '<c:IdentificationNumber number="X-1" type="Manufacturer"/>'
    assert one(document(part=other)).pn == "NA"


@pytest.mark.parametrize(
    ("outcome", "result"),
    [
        ('<tr:Outcome value="Passed"/>', Result.PASSED),
        ('<tr:Outcome value="Failed"/>', Result.FAILED),
        ('<tr:Outcome value="Aborted" qualifier="Terminated"/>', Result.TERMINATED),
        ('<tr:Outcome value="Aborted" qualifier="Error"/>', Result.ERROR),
        ('<tr:Outcome value="Aborted"/>', Result.TERMINATED),
        ('<tr:Outcome value="UserDefined" qualifier="Terminated"/>', Result.TERMINATED),
        ('<tr:Outcome value="NotStarted"/>', Result.TERMINATED),  # never a pass
        ('<tr:Outcome value="UserDefined" qualifier="Tommy"/>', Result.ERROR),  # custom
    ],
)
def test_unit_verdict_is_the_result_sets_outcome(outcome: str, result: Result) -> None:
    # The steps all passed; the verdict is still the ResultSet's, never recomputed.
    passed = make_step("PF", "PassFailTest")
    assert one(document(passed, outcome=outcome)).result is result


def test_step_outcomes() -> None:
    cases = {
        '<tr:Outcome value="Aborted" qualifier="Terminated"/>': Status.TERMINATED,
        '<tr:Outcome value="Aborted" qualifier="Error"/>': Status.ERROR,
        '<tr:Outcome value="Aborted" qualifier="Skipped"/>': Status.SKIPPED,
        '<tr:Outcome value="UserDefined" qualifier="Skipped"/>': Status.SKIPPED,
        '<tr:Outcome value="NotStarted"/>': Status.SKIPPED,
        '<tr:Outcome value="Aborted" qualifier="Tommy"/>': Status.DONE,
    }
    steps = [
        make_step(f"s{i}", "Action", outcome, step_id=str(i + 2)) for i, outcome in enumerate(cases)
    ]
    report = one(document(*steps))
    assert [s.status for s in report.root.steps or []] == list(cases.values())  # type: ignore[union-attr]
    assert outcome_status("Passed", None) == (Status.PASSED, True)
    assert outcome_status("Something", None) == (Status.DONE, False)


def test_runtime_error_message_and_code_from_events() -> None:
    events = """<tr:Events><tr:Event ID="e1" source="TestStand">
<tr:Message><![CDATA[Could not open instrument 'DMM1'. [Error Code: -17502]]]></tr:Message>
</tr:Event></tr:Events>"""
    coded = """<tr:Events><tr:Event ID="e2" source="TestStand">
<tr:Message><![CDATA[Timeout]]></tr:Message>
<tr:Data name="Error Code"><c:Datum value="60" xsi:type="ts:TS_double"/></tr:Data>
</tr:Event></tr:Events>"""
    error_outcome = '<tr:Outcome value="Aborted" qualifier="Error"/>'
    report = one(
        document(
            make_step("Open DMM", "Action", error_outcome, events),
            make_step("Read", "Action", error_outcome, coded, step_id="3"),
            outcome='<tr:Outcome value="Aborted" qualifier="Error"/>',
            result_set_extra=coded,
        )
    )
    first, second = report.root.steps or []  # type: ignore[union-attr]
    assert (first.status, first.error_code) == (Status.ERROR, -17502)
    assert first.error_message == "Could not open instrument 'DMM1'. [Error Code: -17502]"
    assert (second.error_code, second.error_message) == (60, "Timeout")
    assert report.result is Result.ERROR
    assert report.uut is not None
    assert (report.uut.error_code, report.uut.error_message) == (60, "Timeout")


def test_string_comparators() -> None:
    def svt(comparator: str, value: str, limit: str, outcome: str) -> str:
        return make_step(
            comparator,
            "StringValueTest",
            f'<tr:Outcome value="{outcome}"/>',
            f"""<tr:TestResult ID="t" name="String"><tr:TestData><c:Datum xsi:type="ts:TS_string">
<c:Value>{value}</c:Value></c:Datum></tr:TestData><tr:TestLimits><tr:Limits>
<c:Expected comparator="{comparator}"><c:Datum xsi:type="ts:TS_string"><c:Value>{limit}</c:Value>
</c:Datum></c:Expected></tr:Limits></tr:TestLimits></tr:TestResult>""",
            step_id=comparator,
        )

    report = one(
        document(
            svt("CIEQ", "ABC", "abc", "Passed"),
            svt("NE", "a", "b", "Passed"),
            svt("RegularExpressionCaseSensitive", "A-17", "A-[0-9]+", "Passed"),
            svt("RegularExpressionIgnoreCase", "x", "[0-9]+", "Failed"),
        )
    )
    got = [
        (m.comp_op, m.value, m.limit, m.status)
        for s in report.root.steps or []  # type: ignore[union-attr]
        for m in s.string_meas or []
    ]
    assert got == [
        (CompOp.IGNORECASE, "ABC", "abc", Status.PASSED),
        (CompOp.NE, "a", "b", Status.PASSED),
        (CompOp.LOG, "A-17", "A-[0-9]+", Status.PASSED),  # WATS has no regex operator
        (CompOp.LOG, "x", "[0-9]+", Status.FAILED),  # TestStand's verdict stands
    ]
    bad = svt("SOUNDSLIKE", "a", "b", "Passed")
    assert "string comparator 'SOUNDSLIKE'" in error(document(bad))


def test_infinite_and_missing_limits() -> None:
    nlt = "NumericLimitTest"
    report = one(
        document(
            make_step("inf", nlt, body=numeric("5", pair("GE", "1", "LE", "INF")), step_id="2"),
            make_step(
                "-inf", nlt, body=numeric("5", pair("GE", "-Infinity", "LT", "9")), step_id="3"
            ),
            make_step("both", nlt, body=numeric("5", pair("GT", "-INF", "LT", "INF")), step_id="4"),
            make_step("hex", nlt, body=numeric("0x1F", pair("GE", "0", "LE", "100")), step_id="5"),
        )
    )
    got = [measurement(s)[1:5] for s in report.root.steps or []]  # type: ignore[union-attr]
    assert got == [
        (CompOp.GE, 5.0, 1.0, None),
        (CompOp.LT, 5.0, 9.0, None),  # the one limit is lowLimit
        (CompOp.LOG, 5.0, None, None),
        (CompOp.GELE, 31.0, 0.0, 100.0),
    ]
    assert parse_number("1e999") == float("inf")
    with pytest.raises(ValueError, match="not a number"):
        parse_number("five")


def test_failed_multiple_step_without_own_outcomes_is_judged_by_limits() -> None:
    body = numeric("1", pair("GE", "0", "LE", "2"), name="a") + numeric(
        "7", pair("GE", "0", "LE", "2"), name="b"
    )
    step = make_step("m", "NI_MultipleNumericLimitTest", '<tr:Outcome value="Failed"/>', body)
    (s,) = one(document(step)).root.steps or []  # type: ignore[union-attr]
    assert [(m.name, m.status) for m in s.numeric_meas or []] == [
        ("a", Status.PASSED),
        ("b", Status.FAILED),
    ]


def test_a_step_without_step_type_is_typed_by_what_it_measured() -> None:
    body = numeric("1", pair("GE", "0", "LE", "2"))
    raw = f"""<tr:Test ID="2" name="bare"><tr:Outcome value="Passed"/>{body}</tr:Test>"""
    (s,) = one(document(raw)).root.steps or []  # type: ignore[union-attr]
    assert (s.step_type, s.group, s.start) == ("NumericLimitTest", StepGroup.MAIN, None)


def test_odd_characters_in_names_change_nothing() -> None:
    name = "Volt &lt;5V&gt; &amp; ø/°/&quot;µ&quot;/&#x1F600;\t x"  # tab: an attribute space
    step = make_step(
        name, "NumericLimitTest", body=numeric("1", pair("GE", "0", "LE", "2"), unit="°C")
    )
    data = document(step).replace("ø".encode("latin-1"), b"&#248;")
    (s,) = one(data).root.steps or []  # type: ignore[union-attr]
    assert s.name == 'Volt <5V> & ø/°/"µ"/\U0001f600  x'
    assert (s.numeric_meas or [])[0].unit == "°C"


# --- Bad input ------------------------------------------------------------------------


def test_billion_laughs_is_refused_before_parsing() -> None:
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<trc:TestResultsCollection xmlns:trc="urn:IEEE-1636.1:2013:TestResultsCollection">&lol2;
</trc:TestResultsCollection>"""
    message = error(bomb)
    assert "line 2: the XML has a document type declaration" in message
    external = b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd"><x>&e;</x>'
    assert "document type declaration" in error(external)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "the file is empty"),
        (b"PK\x03\x04 zip", "not well-formed XML (invalid token) at line 1, column 3"),
        (b"<a><b></a>", "mismatched tag at line 1, column 9"),
        # No DTD, so no entity but the five XML ones: nothing to expand or fetch.
        (b"<a>&xxe;</a>", "not well-formed XML: undefined entity at line 1, column 4"),
        (b'<?xml version="1.0" encoding="ebcdic-x"?><a/>', "unknown text encoding 'ebcdic-x'"),
    ],
)
def test_not_xml(data: bytes, expected: str) -> None:
    assert expected in error(data)


def test_other_xml_formats_are_named() -> None:
    wsxf = (DATA / "uut-wsxf-export.xml").read_bytes()
    message = error(wsxf)
    assert (
        "the root element is Reports in http://wats.virinco.com/schemas/WATS/Report/wsxf" in message
    )
    classic = (DATA / "equipment" / "teststand-xml" / "TsWithoutWats.xml").read_bytes()
    assert "the root element is Reports (no namespace), not an ATML" in error(classic)


def test_truncated_file_says_so() -> None:
    data = V500.read_bytes()
    message = error(data[: len(data) // 2])
    assert "the XML ends before its root element is closed" in message
    assert "is the file complete?" in message


def test_missing_parts_name_the_element() -> None:
    assert "TestResults[1]/UUT: c:SerialNumber is missing or empty" in error(document(serial=" "))
    no_outcome = document(outcome="")
    assert "TestResults[1]/ResultSet: no tr:Outcome" in error(no_outcome)
    bad_start = document(start="yesterday")
    assert "ResultSet: startDateTime 'yesterday' is not an ISO 8601" in error(bad_start)
    bad_value = make_step("v", "NumericLimitTest", body=numeric("5,5", pair("GE", "0", "LE", "9")))
    message = error(document(bad_value))
    assert "ResultSet/Test[@ID='2']/TestResult['Numeric'] value: '5,5' is not a number" in message
    no_status = '<tr:Test ID="7" name="x"></tr:Test>'
    assert "Test[@ID='7']: no tr:Outcome" in error(document(no_status))
    bad_pair = make_step("p", "NumericLimitTest", body=numeric("5", pair("GE", "0", "GE", "9")))
    assert "limit comparators GE and GE make no range" in error(document(bad_pair))
    empty = f"<trc:TestResultsCollection {NS}></trc:TestResultsCollection>".encode()
    assert "holds no TestResults" in error(empty)


def test_deep_nesting_is_refused_with_a_clear_line() -> None:
    group = '<tr:TestGroup ID="g" name="f.seq#S"><tr:Outcome value="Passed"/>'
    deep = group * 150 + "</tr:TestGroup>" * 150
    assert "steps are nested deeper than 100 levels" in error(document(deep))


def test_a_serial_too_long_for_wats() -> None:
    message = error(document(serial="S" * 101))
    assert "TestResults[1]: sn: must be 1 to 100 characters, got 101" in message


def test_bad_arguments_are_refused_at_load() -> None:
    with pytest.raises(ConfigError, match=r"arguments\.partNumber: must be 1 to 100"):
        load_converter("atml", {"partNumber": ""})
    with pytest.raises(ConfigError, match=r"arguments\.operationTypeCode"):
        load_converter("atml", {"operationTypeCode": -1})
    with pytest.raises(ConfigError, match="unknown argument"):
        load_converter("atml", {"encoding": "utf-8"})


# --- Sniffing -------------------------------------------------------------------------


def head(path: Path) -> bytes:
    return path.read_bytes()[:SNIFF_BYTES]


def test_sniff_claims_each_dialect() -> None:
    sniff = AtmlConverter.sniff
    assert sniff(head(V601), V601.name) == (
        "root element TestResultsCollection in urn:IEEE-1636.1:2013:TestResultsCollection "
        "(TestStand ATML 6.01)"
    )
    assert sniff(head(V500), "x.xml") == (
        "root element TestResultsCollection in urn:IEEE-1636.1:2011:01:TestResultsCollection "
        "(TestStand ATML 5.00)"
    )
    assert sniff(head(V202), "x.xml") == (
        "root element TestResults in http://www.ieee.org/ATML/2007/TestResults "
        "(TestStand ATML 2.02)"
    )
    assert sniff(head(BATCH)[:300], "cut.xml") is not None  # a head cut early still tells


def test_sniff_refuses_the_other_xml_formats() -> None:
    for path in [
        DATA / "uut-wsxf-export.xml",
        *sorted((DATA / "equipment" / "teststand-xml").iterdir()),
    ]:
        assert AtmlConverter.sniff(head(path), path.name) is None, path
    for path in (V500, V202, BATCH):
        assert WsxfConverter.sniff(head(path), path.name) is None
        assert TestStandXmlConverter.sniff(head(path), path.name) is None
    assert AtmlConverter.sniff(b'<TestResults xmlns="urn:other"/>', "a.xml") is None


@FUZZ
@given(st.binary(max_size=400))
def test_sniff_never_raises(data: bytes) -> None:
    for prefix in (b"", b'<?xml version="1.0"?><tr:TestResults xmlns:tr="', codecs.BOM_UTF16_LE):
        said = AtmlConverter.sniff(prefix + data, "x.xml")
        assert said is None or isinstance(said, str)


# --- Fuzzing: only ConversionError comes out -------------------------------------------

CONVERTER = load_converter("atml")


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


SMALL = document(
    make_step("n", "NumericLimitTest", body=numeric("1", pair("GE", "0", "LE", "2"))),
    make_step("p", "PassFailTest", step_id="3"),
)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.sampled_from([V500, V202, BATCH]), st.floats(0, 1))
def test_fuzz_truncated_real_files(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    check(data[: int(len(data) * fraction)])


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, len(SMALL) - 1), st.integers(0, 255)), min_size=1, max_size=8)
)
def test_fuzz_byte_flips(flips: list[tuple[int, int]]) -> None:
    data = bytearray(SMALL)
    for at, value in flips:
        data[at] = value
    check(bytes(data))


@FUZZ
@given(
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=6),
    st.sampled_from([V500, V202]),
)
def test_fuzz_byte_flips_in_real_files(flips: list[tuple[float, int]], path: Path) -> None:
    data = bytearray(path.read_bytes())
    for fraction, value in flips:
        data[int(fraction * (len(data) - 1))] = value
    check(bytes(data))


_VALUES = st.sampled_from(
    ["", " ", "x", "NaN", "INF", "-INF", "1e999", "0x", "0xFFFFFFFFFFFFFFFFF", "5", "-0", "1,5"]
)


@FUZZ
@given(_VALUES, _VALUES, _VALUES, st.sampled_from(["GE", "GT", "LE", "LT", "EQ", "XX", ""]))
def test_fuzz_values_and_limits(value: str, low: str, high: str, comparator: str) -> None:
    limits = pair(comparator or "GE", low, "LE", high)
    single = f'<c:SingleLimit comparator="{comparator}"><c:Datum value="{low}"/></c:SingleLimit>'
    for body in (numeric(value, limits), numeric(value, single)):
        check(document(make_step("v", "NumericLimitTest", body=body)))
