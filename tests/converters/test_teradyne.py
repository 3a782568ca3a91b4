"""Teradyne ICT converters: GR228X text logs and Spectrum structured logs (formats 4)."""

from __future__ import annotations

import json
import random
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywats.converters import ConversionContext, Source, StationDefaults, run_converter
from pywats.converters.helpers import start_fields, station_time
from pywats.converters.registry import load_converter
from pywats.converters.teradyne_gr228x import GR228XArguments, GR228XConverter
from pywats.converters.teradyne_spectrum import SpectrumArguments, SpectrumConverter
from pywats.errors import ConfigError, ConversionError
from pywats.report import CompOp, Report, Result, Status, Step, StepKind, wsjf

DATA = Path(__file__).resolve().parents[1] / "data" / "equipment"
GR228X_FILE = DATA / "teradyne-gr228x" / "43420_BIO2.LOG"
SPECTRUM_FILE = DATA / "teradyne-spectrum" / "sample_ict_data.txt"
STATION = StationDefaults(machine_name="ST-1", location="Line 1", purpose="Production")
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def start(year: int, month: int, day: int, hour: int, minute: int, second: int, ms: int = 0) -> str:
    """``start`` for a local wall-clock time, as the station writes it."""
    moment = datetime(year, month, day, hour, minute, second, ms * 1000)
    return start_fields(station_time(moment))[0]


def without_id(report: Report) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(wsjf.dumps(report))
    out.pop("id")
    return out


def steps_named(report: Report, name: str) -> list[Step]:
    return [s for s in report.steps()[1:] if s.name == name]


def step(report: Report, name: str) -> Step:
    (found,) = steps_named(report, name)
    return found


def numeric(s: Step) -> tuple[Any, ...]:
    assert s.kind is StepKind.NUMERIC_LIMIT, s.kind
    assert s.numeric_meas is not None
    (m,) = s.numeric_meas
    assert m.status == s.status
    return (m.value, m.comp_op, m.low_limit, m.high_limit, m.unit, m.status)


def in_section(report: Report, name: str) -> Step:
    """The one step of the section ``name`` (named like its section)."""
    assert report.root is not None
    (section,) = [s for s in report.root.steps or [] if s.name == name]
    (only,) = section.steps or []
    return only


def misc(report: Report) -> dict[str, str | None]:
    return {m.description: m.text for m in report.misc_infos or []}


# === GR228X =================================================================================


def gr228x(data: bytes | str, name: str = "43420_BIO2.LOG", **arguments: Any) -> list[Report]:
    raw = data.encode() if isinstance(data, str) else data
    context = ConversionContext(STATION, GR228XArguments(**arguments))
    return run_converter(GR228XConverter(), Source(Path(name), raw), context)


def gr228x_error(data: bytes | str) -> str:
    with pytest.raises(ConversionError) as info:
        gr228x(data)
    message = str(info.value)
    assert "converter 'teradyne-gr228x'" in message
    assert "crashed" not in message
    assert "\n" not in message
    return message


SAMPLE = GR228X_FILE.read_bytes()


def test_gr228x_three_uuts() -> None:
    aborted, failed, passed = gr228x(SAMPLE)
    assert [r.sn for r in (aborted, failed, passed)] == [
        "65428553938829725787",
        "24422984989544535753",
        "42842937739687688567",
    ]
    # The verdict is the end event: ? aborted, / fail, " pass.
    assert [r.result for r in (aborted, failed, passed)] == [
        Result.TERMINATED,
        Result.FAILED,
        Result.PASSED,
    ]
    for report in (aborted, failed, passed):
        # Part number from the program's file name (43420_BIO2.obc), revision the default.
        assert (report.pn, report.rev, report.process_code) == ("43420", "1", 30)
        assert report.machine_name == "ST-1"
        root = report.root
        assert root is not None
        assert root.seq_call is not None
        assert root.name == "43420_BIO2.obc"
        assert root.seq_call.path == "F:\\BOARDS\\43420_BIO2_PROGRAM\\43420_BIO2.obc"
        assert root.status.value == report.result.value
    assert aborted.start == start(2012, 7, 31, 14, 18, 51)
    assert failed.start == start(2012, 7, 31, 14, 19, 32)
    assert passed.start == start(2012, 7, 31, 14, 25, 12)
    assert [r.uut.exec_time for r in (aborted, failed, passed)] == [2.0, 17.0, 16.0]  # type: ignore[union-attr]


def test_gr228x_failure_lists() -> None:
    aborted, failed, _ = gr228x(SAMPLE)
    contact = steps_named(aborted, "Contact")
    assert [s.report_text for s in contact] == [
        "300,301,303",
        "90,156,172,176,186,187,189,200,201,202,204,237,238,239,248,254,255,256",
    ]
    assert all(s.status is Status.FAILED and s.kind is StepKind.PASS_FAIL for s in contact)
    assert len(aborted.steps()) == 3  # the root and the two lists: it stopped there
    opens = step(failed, "Opens")
    assert (opens.status, opens.report_text) == (Status.FAILED, "397,398,")


def test_gr228x_measurements() -> None:
    _, failed, passed = gr228x(SAMPLE)
    # Values and limits in SI base units, each with its own prefix.
    assert numeric(step(failed, "R508(R)")) == (
        100200.07,
        CompOp.GELE,
        92919.0,
        105131.0,
        "Ohm",
        Status.PASSED,
    )
    # MEG is mega; an empty high limit leaves a single low limit (GE, in lowLimit).
    assert numeric(step(failed, "R402(R)")) == (
        45131532.0,
        CompOp.GE,
        500000.0,
        None,
        "Ohm",
        Status.PASSED,
    )
    # M is milli.
    assert numeric(step(failed, "V230(V)")) == (
        0.520747483,
        CompOp.GELE,
        0.474999994,
        0.954999983,
        "V",
        Status.PASSED,
    )
    assert numeric(step(failed, "C500(CS)")) == (
        1.97461958e-07,
        CompOp.GELE,
        1.59999985e-07,
        2.1999999e-07,
        "F",
        Status.PASSED,
    )
    # "#" is not judged: logged, Done.
    assert numeric(step(failed, "R211(R)")) == (
        10.636159,
        CompOp.LOG,
        None,
        None,
        "Ohm",
        Status.DONE,
    )
    assert numeric(step(failed, "R211(AR)"))[4] is None  # arithmetic: no unit
    negative = steps_named(failed, "K500_RLY1_NO(V)")[1]
    assert numeric(negative)[:4] == (0.062061187, CompOp.GELE, -0.5, 0.5)
    # No value: a pass/fail step with the limits as text.
    digital = step(failed, "D103_B1")
    assert (digital.kind, digital.status) == (StepKind.PASS_FAIL, Status.PASSED)
    ps_off = step(failed, "PS_OFF(V)")
    assert ps_off.report_text == "limits: low 1.6, high 5.5"
    # Source set-up lines (no value, not judged) carry nothing and make no step.
    assert not steps_named(failed, "SETCR(IS)")
    assert not steps_named(failed, "K500_START(VS)")
    groups = [s.name for s in failed.root.steps or []]  # type: ignore[union-attr]
    assert groups == [
        "Opens",
        "R-Group1",
        "C-Group1",
        "V-Group1",
        "K-Group1",
        "D-Group1",
        "P-Group1",
    ]
    assert {s.status for s in passed.steps()} == {Status.PASSED, Status.DONE}


def test_gr228x_failing_measurement() -> None:
    text = SAMPLE.decode().replace("R516=100.248422K", "R516>110.248422K")
    _, failed, _ = gr228x(text)
    r516 = step(failed, "R516(R)")
    assert numeric(r516) == (110248.422, CompOp.GELE, 93803.0, 106027.0, "Ohm", Status.FAILED)
    assert r516.error_message == "above the high limit"
    assert step(failed, "R-Group1").status is Status.FAILED


def test_gr228x_repeated_limits() -> None:
    # Limits are converted once per text and log: the same text, on any line or UUT and
    # with or without a value, gives the same limits; a look-alike in another case too.
    lines = (
        "R1=1.5E1K(2E-1K,3e1K)R\n"
        "R2=2K(,3e1K)R\n"
        "R3=3K(2E-1K,3e1K)R\n"
        "R4=(2E-1K,3e1K)R\n"
        "R5=5K(,3e1K)R\n"
        "R6=6k(2e-1k,3E1K)R\n"
    )
    uut = f"@31-JUL-12  14:18:51 SN 1\n{lines}/31-JUL-12  14:18:53\n"
    text = f"F:\\P\\1_A.obc[31-JUL-12  14:17:35\n{uut}"
    (first, second) = gr228x(text + uut)
    for report in (first, second):
        assert numeric(step(report, "R1(R)")) == (
            15000.0,
            CompOp.GELE,
            200.0,
            30000.0,
            "Ohm",
            Status.PASSED,
        )
        assert numeric(step(report, "R3(R)"))[1:4] == (CompOp.GELE, 200.0, 30000.0)
        assert numeric(step(report, "R6(R)"))[:4] == (6000.0, CompOp.GELE, 200.0, 30000.0)
        # One limit goes in lowLimit, each time it comes back.
        assert numeric(step(report, "R2(R)"))[1:4] == (CompOp.LE, 30000.0, None)
        assert numeric(step(report, "R5(R)"))[1:4] == (CompOp.LE, 30000.0, None)
        assert step(report, "R4(R)").report_text == "limits: low 2E-1K, high 3e1K"
    # A limit out of range is an error on the line it is on.
    bad = text.replace("R4=(2E-1K,3e1K)R", "R4=4K(2E-1K,3e999K)R")
    assert "line 6: 3e999K is out of range" in gr228x_error(bad)


def test_gr228x_wats_lines() -> None:
    extra = (
        "WATS_partNumber=123456\nWATS_partRevision=C\nWATS_sequenceName=CPU02\n"
        "WATS_sequenceVersion=1.1\nWATS_operator=KB\nWATS_stationName=AREL1001\n"
        "WATS_Fixture=FX-7\n"
    )
    text = SAMPLE.decode().replace("SN 24422984989544535753\n", "SN 24422984989544535753\n" + extra)
    _, failed, passed = gr228x(text)
    assert (failed.pn, failed.rev, failed.machine_name) == ("123456", "C", "AREL1001")
    assert failed.uut is not None
    assert failed.uut.user == "KB"
    assert failed.root is not None
    assert failed.root.seq_call is not None
    assert (failed.root.name, failed.root.seq_call.version) == ("CPU02", "1.1")
    assert misc(failed) == {"Fixture": "FX-7"}
    assert (passed.pn, passed.machine_name) == ("43420", "ST-1")  # only the UUT they follow


def test_gr228x_lower_case_months_and_crlf() -> None:
    text = SAMPLE.decode().replace('"31-JUL-12  14:25:28', '"31-jul-12  14:25:28')
    reports = gr228x(text.replace("\n", "\r\n").encode())
    assert reports[2].result is Result.PASSED
    assert [without_id(r) for r in reports] == [without_id(r) for r in gr228x(SAMPLE)]


def test_gr228x_prefixes_and_types_in_either_case() -> None:
    lower = (
        SAMPLE.decode()
        .replace("R402=45.131532MEG(500K,)R", "R402=45.131532meg(500k,)r")
        .replace(
            "C206=10.212763N(7.999999N,12.000001N)CP", "C206=1.0212763e1n(7.999999n,12.000001N)cp"
        )
    )
    _, failed, _ = gr228x(lower)
    _, same, _ = gr228x(SAMPLE)
    for name in ("R402(R)", "C206(CP)"):
        assert numeric(step(failed, name)) == numeric(step(same, name))


def test_gr228x_arguments() -> None:
    (report, *_) = gr228x(SAMPLE, partNumber="PCBA-43420", partRevision="B")
    assert (report.pn, report.rev) == ("PCBA-43420", "B")
    with pytest.raises(ConfigError) as info:
        load_converter("teradyne-gr228x", {"partRevision": ""})
    assert info.value.key == "converters.teradyne-gr228x.arguments.partRevision"


def test_gr228x_uut_without_end_event() -> None:
    text = SAMPLE.decode().replace("/31-JUL-12  14:19:49\n", "")
    _, second, _ = gr228x(text)
    assert second.result is Result.ERROR
    assert second.uut is not None
    assert second.uut.error_message == "the log has no end event for this UUT before line 53"


def test_gr228x_bad_input() -> None:
    assert "line 1: not a GR228X log" in gr228x_error("Serial;Value\n1;2\n")
    cut = SAMPLE.decode().split('"31-JUL-12')[0]
    message = gr228x_error(cut)
    assert "line 54: the log ends before the end event of the UUT with SN 4284" in message
    assert "is the file complete?" in message
    garbage = SAMPLE.decode().replace("C206=10.212763N", "C206 10.212763N")
    assert "line 18: not a GR228X measurement" in gr228x_error(garbage)
    no_sn = SAMPLE.decode().replace("SN 65428553938829725787", "")
    assert "line 3: the UUT line has no serial number" in gr228x_error(no_sn)
    bad_date = SAMPLE.decode().replace("@31-JUL-12  14:19:32", "@31-JUX-12  14:19:32")
    assert "line 8: '31-JUX-12  14:19:32' is not a date and time" in gr228x_error(bad_date)
    # The Kelvin sign folds to "k" but is no prefix (it once crashed with a KeyError).
    kelvin = SAMPLE.decode().replace("R508=100.20007K(", "R508=100.20007\u212a(")
    assert "line 10: not a GR228X measurement" in gr228x_error(kelvin)


# === Spectrum ===============================================================================


def spectrum(data: bytes | str, **arguments: Any) -> list[Report]:
    raw = data.encode() if isinstance(data, str) else data
    context = ConversionContext(STATION, SpectrumArguments(**arguments))
    return run_converter(SpectrumConverter(), Source(Path("sample.txt"), raw), context)


def spectrum_error(data: bytes | str) -> str:
    with pytest.raises(ConversionError) as info:
        spectrum(data)
    message = str(info.value)
    assert "converter 'teradyne-spectrum'" in message
    assert "crashed" not in message
    assert "\n" not in message
    return message


SPECTRUM = SPECTRUM_FILE.read_bytes()
SPECTRUM_LF = SPECTRUM.replace(b"\r\n", b"\n")


@pytest.fixture(scope="module")
def sample() -> Report:
    (report,) = spectrum(SPECTRUM)
    return report


def test_spectrum_header(sample: Report) -> None:
    assert (sample.sn, sample.pn, sample.rev) == ("1111111111", "PB3187900", "1")
    assert sample.result is Result.PASSED  # (USER: STATUS: BOARD PASSED)
    assert sample.start == start(2023, 2, 9, 16, 44, 27, ms=988)
    assert sample.uut is not None
    assert (sample.uut.user, sample.uut.exec_time) == ("1234567", 10.136)
    assert misc(sample) == {"CustomerSerialnumber": "AAAAAAAAAAA", "OrderNumber": "222222222"}
    root = sample.root
    assert root is not None
    assert root.seq_call is not None
    assert (root.name, root.seq_call.name, root.seq_call.version) == (
        "PB3187900",
        "SubProgram-1",
        "V2.0.0.0",
    )
    sections = [s.name for s in root.steps or []]
    assert sections == [
        "Header",
        "DISCHARGE",
        "APC",
        "JUMPERS",
        "SHORTS",
        "CAPACITORS",
        "RESISTORS",
        "ZENERS",
        "ANALOG",
        "Trailer",
        "DISCHARGE",
    ]
    # Every STEP of the log is there, with its time.
    assert sum(1 for s in sample.steps() if s.start is not None) == 508
    assert all(s.status is Status.PASSED for s in sample.steps())


def test_spectrum_measurements(sample: Report) -> None:
    cap = step(sample, "C1")
    assert numeric(cap) == (4.6900024e-09, CompOp.GELE, 3.64e-09, 5.76e-09, "F", Status.PASSED)
    assert cap.report_text == "CAPACITOR 4n7 TOP 3.326 2.831\nnominal 4.6999993 nF"
    assert cap.start == station_time(datetime(2023, 2, 9, 16, 44, 30)).isoformat(
        timespec="milliseconds"
    )
    # Each value has its own scale: low in n, value and high in m.
    assert numeric(step(sample, "FU1_IN")) == (
        0.1934001,
        CompOp.GELE,
        2.24e-09,
        0.25,
        "Ohm",
        Status.PASSED,
    )
    # A jumper (LOWR) has an upper limit only: LE, the limit in lowLimit.
    assert numeric(step(sample, "L3")) == (1.4330307, CompOp.LE, 5.0, None, "Ohm", Status.PASSED)
    zener = step(sample, "SMBJ33A[V6]_REV_V_1")
    assert numeric(zener) == (38.324821, CompOp.GELE, 36.7, 40.6, "V", Status.PASSED)


def test_spectrum_steps_without_a_value(sample: Report) -> None:
    (discharge, _) = steps_named(sample, "C118_DSG")
    assert (discharge.kind, discharge.report_text) == (StepKind.PASS_FAIL, "high limit 30 mV")
    apc = in_section(sample, "APC")
    assert apc.report_text == "res limit 1.25 MOhm\ncap limit 100 pF"
    shorts = in_section(sample, "SHORTS")
    assert shorts.kind is StepKind.MULTI_PASS_FAIL
    assert [m.name for m in shorts.boolean_meas or []] == ["SPECIAL", "SHORTS"]
    assert shorts.report_text == "SPECIAL: low limit 5 Ohm\nSHORTS: low limit 5 Ohm"
    start_step = step(sample, "START")
    assert start_step.kind is StepKind.SEQUENCE_CALL
    assert [(s.name, s.report_text) for s in start_step.steps or []] == [
        ("showconnections", "EXT_PROG: C:\\TP\\PB3187900\\img\\start.bat"),
        ("exitShowconnections", "EXT_PROG: C:\\TP\\PB3187900\\img\\stop.bat"),
    ]
    array = step(sample, "SMDA05C[V100]")
    assert [s.name for s in array.steps or []] == [f"SMDA05CA[V100]_REV_V_{n}" for n in range(1, 7)]
    power = step(sample, "POWEROFF")
    assert power.report_text == "All power supplies were turned off in reverse order."


def test_spectrum_lf_copy_is_identical(sample: Report) -> None:
    assert SPECTRUM.count(b"\r\n") > 7000
    (lf,) = spectrum(SPECTRUM_LF)
    assert without_id(lf) == without_id(sample)
    (no_final,) = spectrum(SPECTRUM_LF.rstrip())
    assert without_id(no_final) == without_id(sample)


def test_spectrum_failed_board() -> None:
    text = SPECTRUM_LF.decode()
    text = text.replace("STATUS: BOARD PASSED", "STATUS: BOARD FAILED")
    text = text.replace(
        '(PAGE_NAME: "C1") (STAT: PASS)\n        (ANA:\n            (TYPE: CAP) (STAT: PASS)',
        '(PAGE_NAME: "C1") (STAT: FAIL)\n        (ANA:\n            (TYPE: CAP) (STAT: FAIL)',
    )
    text = text.replace("(VAL: 4.6900024) (SCALE: n)", "(VAL: 6.1) (SCALE: n)")
    (report,) = spectrum(text)
    assert report.result is Result.FAILED
    cap = step(report, "C1")
    assert numeric(cap) == (6.1e-09, CompOp.GELE, 3.64e-09, 5.76e-09, "F", Status.FAILED)
    assert step(report, "CAPACITORS").status is Status.FAILED


def test_spectrum_irregular_user_lines() -> None:
    text = SPECTRUM_LF.decode().replace("(USER:  Operator:1234567)", "(USER:Operator :  op 7 )")
    (report,) = spectrum(text)
    assert report.uut is not None
    assert report.uut.user == "op 7"


def test_spectrum_bad_input() -> None:
    text = SPECTRUM_LF.decode()
    assert "not a Spectrum log" in spectrum_error("")
    assert "line 1: text outside a (KEYWORD: ...) form" in spectrum_error("hello world\n")
    cut = text[: text.index('(SECTION_NAME: "ZENERS")') + 40]
    message = spectrum_error(cut)
    assert "the file ends inside (STEP: (line 6537)" in message
    assert "is it complete?" in message
    no_status = text.replace("(USER:  STATUS: BOARD PASSED)", "")
    assert "no (USER: STATUS: BOARD PASSED/FAILED) trailer" in spectrum_error(no_status)
    bad_value = text.replace("(VAL: 4.6900024)", "(VAL: 4,69)", 1)
    assert "line 3388: (MEASVAL: (VAL: 4,69)) is not a number" in spectrum_error(bad_value)
    bad_stat = text.replace('(PAGE_NAME: "C1") (STAT: PASS)', '(PAGE_NAME: "C1") (STAT: MAYBE)')
    assert "line 3384: (STAT: MAYBE) is not a status" in spectrum_error(bad_stat)
    bad_scale = text.replace("(VAL: 3.64) (SCALE: n)", "(VAL: 3.64) (SCALE: q)", 1)
    assert "(SCALE: q) is not a known scale" in spectrum_error(bad_scale)
    no_sn = text.replace("(USER:  Serialnumber:1111111111)", "")
    assert "no (USER: Serialnumber: ...) line" in spectrum_error(no_sn)


# === Sniffing ===============================================================================

OWN: dict[str, tuple[Any, Path]] = {
    "teradyne-gr228x": (GR228XConverter, DATA / "teradyne-gr228x"),
    "teradyne-spectrum": (SpectrumConverter, DATA / "teradyne-spectrum"),
}


@pytest.mark.parametrize("name", sorted(OWN))
def test_sniff_claims_its_files_only(name: str) -> None:
    converter, folder = OWN[name]
    for path in sorted(DATA.rglob("*")):
        if not path.is_file() or path.name == "README.md":
            continue
        head = path.read_bytes()[:65536]
        reason = converter.sniff(head, path.name)
        if folder in path.parents:
            assert reason is not None, path
        else:
            assert reason is None, path


def test_sniff_reasons() -> None:
    assert "GR228X" in (GR228XConverter.sniff(SAMPLE, "x.log") or "")
    assert "Spectrum" in (SpectrumConverter.sniff(SPECTRUM, "x.txt") or "")
    assert SpectrumConverter.sniff(b"\xef\xbb\xbf" + SPECTRUM_LF[:100], "x") is not None


@FUZZ
@given(st.binary(max_size=200))
def test_sniff_never_raises(head: bytes) -> None:
    GR228XConverter.sniff(head, "x")
    SpectrumConverter.sniff(head, "x")
    GR228XConverter.sniff(b"\nF:\\a.obc[31-JUL-12  14:17:35\n" + head, "x")
    SpectrumConverter.sniff(b'(PROGRAM_NAME: "' + head, "x")


# === Fuzzing ================================================================================

LOADED = {
    "teradyne-gr228x": load_converter("teradyne-gr228x"),
    "teradyne-spectrum": load_converter("teradyne-spectrum"),
}
# A shorter Spectrum log keeps each example fast: the header, two sections and the trailer.
_LF = SPECTRUM_LF.decode()
_RESISTORS = _LF.index('(SECTION_NAME: "RESISTORS")')
SPECTRUM_SMALL = (
    _LF[: _LF.index('(SECTION_NAME: "DISCHARGE")')]
    + _LF[_RESISTORS : _LF.index("(STEP:", _LF.index('"FU2_IN"', _RESISTORS) - 100)]
    + _LF[
        _LF.index('(SECTION_NAME: "Trailer")') : _LF.index(
            '(SECTION_NAME: "DISCHARGE")', _RESISTORS
        )
    ]
    + _LF[_LF.index("    (USER:  STATUS") :]
).encode()
SAMPLES = {"teradyne-gr228x": SAMPLE, "teradyne-spectrum": SPECTRUM_SMALL}


def check(name: str, data: bytes) -> None:
    """The converter returns valid reports or raises its own clear ConversionError."""
    failure: ConversionError | None = None
    try:
        reports = LOADED[name].convert(Source(Path("input"), data), STATION)
    except ConversionError as exc:
        failure = exc
        reports = []
    if failure is not None:
        assert failure.converter == name
        assert "converter crashed" not in str(failure), str(failure)
        assert "\n" not in str(failure)
    for report in reports:
        assert wsjf.loads(wsjf.dumps(report)) == report


def test_small_spectrum_sample_converts() -> None:
    (report,) = LOADED["teradyne-spectrum"].convert(Source(Path("x"), SPECTRUM_SMALL), STATION)
    assert step(report, "FU1_IN").status is Status.PASSED


@FUZZ
@given(st.sampled_from(sorted(LOADED)), st.binary(max_size=300))
def test_fuzz_random_bytes(name: str, data: bytes) -> None:
    check(name, data)


@FUZZ
@given(st.sampled_from(sorted(LOADED)), st.floats(0, 1))
def test_fuzz_truncated_files(name: str, where: float) -> None:
    sample = SAMPLES[name]
    check(name, sample[: int(len(sample) * where)])


@FUZZ
@given(
    st.sampled_from(sorted(LOADED)),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_fuzz_byte_flips(name: str, flips: list[tuple[float, int]]) -> None:
    data = bytearray(SAMPLES[name])
    for where, value in flips:
        data[min(int(len(data) * where), len(data) - 1)] = value
    check(name, bytes(data))


@FUZZ
@given(st.sampled_from(sorted(LOADED)), st.integers(0, 2**32 - 1))
def test_fuzz_special_characters(name: str, seed: int) -> None:
    rnd = random.Random(seed)
    data = bytearray(SAMPLES[name])
    specials = b'()":"\n' if name == "teradyne-spectrum" else b'@(=#<>%,+\n"/?]'
    for _ in range(rnd.randint(1, 6)):
        data.insert(rnd.randrange(len(data) + 1), rnd.choice(specials))
    check(name, bytes(data))
