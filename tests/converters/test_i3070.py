"""The ``i3070`` converter: Keysight/Agilent i3070 log records (equipment-formats.md 3)."""

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
from pywats.converters.i3070 import I3070Arguments, I3070Converter, btest_result
from pywats.converters.registry import load_converter
from pywats.errors import ConfigError, ConversionError
from pywats.report import CompOp, Report, Result, Status, Step, StepKind, wsjf

DATA = Path(__file__).resolve().parents[1] / "data" / "equipment"
FOLDER = DATA / "i3070"
STATION = StationDefaults(machine_name="ST-1", location="Line 1", purpose="Production")
FILES = sorted(p for p in FOLDER.iterdir() if p.name != "README.md")
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def convert(data: bytes | str, name: str = "log", **arguments: Any) -> list[Report]:
    raw = data.encode() if isinstance(data, str) else data
    context = ConversionContext(STATION, I3070Arguments(**arguments))
    return run_converter(I3070Converter(), Source(Path(name), raw), context)


def from_file(name: str, **arguments: Any) -> list[Report]:
    path = FOLDER / name
    return convert(path.read_bytes(), path.name, **arguments)


def one(name: str, **arguments: Any) -> Report:
    (report,) = from_file(name, **arguments)
    return report


def error(data: bytes | str) -> str:
    with pytest.raises(ConversionError) as info:
        convert(data)
    message = str(info.value)
    assert "converter 'i3070'" in message
    assert "crashed" not in message
    assert "\n" not in message
    return message


def start(year: int, month: int, day: int, hour: int, minute: int, second: int) -> str:
    """``start`` for a local wall-clock time, as the station writes it."""
    return start_fields(station_time(datetime(year, month, day, hour, minute, second)))[0]


def step(report: Report, name: str) -> Step:
    (found,) = [s for s in report.steps()[1:] if s.name == name]
    return found


def misc(report: Report) -> dict[str, str | None]:
    return {m.description: m.text for m in report.misc_infos or []}


def numeric(report: Report, name: str) -> tuple[Any, ...]:
    s = step(report, name)
    assert s.kind is StepKind.NUMERIC_LIMIT
    assert s.numeric_meas is not None
    (m,) = s.numeric_meas
    assert m.status == s.status
    return (m.value, m.comp_op, m.low_limit, m.high_limit, m.unit, m.status)


def without_id(report: Report) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(wsjf.dumps(report))
    out.pop("id")
    return out


# --- The real-format files ------------------------------------------------------------------


def test_single_board_passed() -> None:
    report = one("BRD4711-250314091205ict01")
    assert (report.sn, report.pn, report.rev) == ("BRD4711", "PCA-2210-01", "B")
    assert report.result is Result.PASSED
    assert report.process_code == 30
    assert report.machine_name == "ict01"  # BATCH controller: the tester host
    assert (report.location, report.purpose) == ("Line 1", "Production")
    assert report.start == start(2025, 3, 14, 9, 12, 5)
    assert report.uut is not None
    assert report.uut.exec_time == 47.0
    assert (report.uut.fixture_id, report.uut.batch_sn, report.uut.user) == (
        "2210",
        "250314090800",
        None,  # operator id is empty, as in every real log
    )
    root = report.root
    assert root is not None
    assert root.seq_call is not None
    assert (root.name, root.seq_call.version, root.status) == ("PCA-2210-01", "3.2", Status.PASSED)
    names = [s.name for s in root.steps or []]
    assert names == ["pins", "shorts", "r12", "c7", "d3", "j1", "u5_vreg", "u8", "testjet"]
    # LIM3 is NOMINAL|HIGH|LOW: low 9.5k, high 10.5k; limits inclusive.
    assert numeric(report, "r12") == (10023.71, CompOp.GELE, 9500.0, 10500.0, "Ohm", Status.PASSED)
    assert step(report, "r12").report_text == "nominal +1.000000E+04"
    assert numeric(report, "c7") == (9.84211e-08, CompOp.GELE, 8e-08, 1.2e-07, "F", Status.PASSED)
    # LIM2 is HIGH|LOW (high first).
    assert numeric(report, "d3") == (0.65123, CompOp.GELE, 0.5, 0.8, "V", Status.PASSED)
    assert numeric(report, "j1") == (1.245, CompOp.GELE, 0.0, 8.0, "Ohm", Status.PASSED)
    vreg = step(report, "u5_vreg")
    assert vreg.kind is StepKind.SEQUENCE_CALL
    assert [s.name for s in vreg.steps or []] == ["out", "in"]
    assert numeric(report, "in") == (12.01013, CompOp.GELE, 10.9091, 13.2, None, Status.PASSED)
    for name in ("pins", "shorts", "u8", "testjet"):
        assert step(report, name).kind is StepKind.PASS_FAIL
        assert step(report, name).status is Status.PASSED
    assert step(report, "testjet").report_text == "test designator u8\npins: 14"
    info = misc(report)
    assert info["Test status"] == "00 passed"
    assert info["Board number"] == "1"
    assert info["Process step"] == "btest"
    assert "Parent panel id" not in info


def test_failed_board() -> None:
    report = one("BRD4712-250314093010ict01")
    assert report.result is Result.FAILED
    assert misc(report)["Test status"] == "02 pins test failed"
    assert report.uut is not None
    assert report.uut.comment == "Board BRD4712 failed: pins, shorts, analog"
    pins = step(report, "pins")
    assert (pins.kind, pins.status) == (StepKind.PASS_FAIL, Status.FAILED)
    assert pins.report_text == "failing pins: 2\npins: 20117 20131"
    shorts = step(report, "shorts")
    assert shorts.status is Status.FAILED
    assert shorts.report_text is not None
    assert 'Shorts Report for "shorts".' in shorts.report_text
    assert "short from v_3v3 (1 shorts, 0 phantoms)\n  to gnd +2.300000E+00" in shorts.report_text
    assert numeric(report, "r15") == (11874.0, CompOp.GELE, 9500.0, 10500.0, "Ohm", Status.FAILED)
    assert step(report, "r15").report_text == "Resistance in OHMS\nnominal +1.000000E+04"
    # +9.999999E+99 as the upper limit is no limit: a single GE limit, in lowLimit.
    assert numeric(report, "swprobe1") == (
        9.999999e99,
        CompOp.GE,
        10000.0,
        None,
        "Ohm",
        Status.PASSED,
    )
    assert "open circuit" in (step(report, "swprobe1").report_text or "")
    assert numeric(report, "d9") == (0.112, CompOp.GELE, 0.5, 0.8, "V", Status.FAILED)
    inductor = step(report, "l4")
    assert inductor.status is Status.FAILED
    assert inductor.error_message == "compliance limit reached"
    assert numeric(report, "c22")[-1] is Status.PASSED


def test_panel_in_one_file() -> None:
    first, second = from_file("PNL0815-250314100012ict02")
    assert (first.sn, second.sn) == ("PNL0815-1", "PNL0815-2")
    assert (first.result, second.result) == (Result.PASSED, Result.FAILED)
    assert first.pn == second.pn == "PCA-3300-02"
    assert first.start == second.start == start(2025, 3, 14, 10, 0, 12)
    for report, board in ((first, "1"), (second, "2")):
        info = misc(report)
        assert info["Board number"] == board
        assert info["Parent panel id"] == "PNL0815-1"
        assert info["Parent panel type"] == "PNL-3300"
        # The board prefix (2%) is not part of the step names.
        assert [s.name for s in report.root.steps or []] == ["r11", "c3", "5v_power_test"]  # type: ignore[union-attr]
    assert numeric(second, "r11") == (5312.0, CompOp.GELE, 4465.0, 4935.0, "Ohm", Status.FAILED)
    assert misc(second)["Test status"] == "06 analog test failed"


def test_panel_one_file_per_board() -> None:
    board1 = one("PNL0816-1-250314103000ict02")
    board2 = one("PNL0816-2-250314103000ict02")
    assert (board1.sn, board1.result) == ("PNL0816-1", Result.PASSED)
    assert (board2.sn, board2.result) == ("PNL0816-2", Result.TERMINATED)
    assert misc(board2)["Test status"] == "13 X'd out (not tested)"
    assert misc(board2)["Status qualifier"] == "xout"
    assert misc(board2)["Parent panel id"] == "PNL0816-1"
    assert board2.root is not None
    assert board2.root.steps == []


def test_aborted_run_keeps_its_verdict() -> None:
    report = one("BRD4713-250314110000ict01")
    # BTEST 82 (BREAK) with every block 00: Terminated, not recomputed from the blocks.
    assert report.result is Result.TERMINATED
    assert report.root is not None
    assert report.root.status is Status.TERMINATED
    assert all(s.status is Status.PASSED for s in report.steps()[1:])
    assert misc(report)["Test status"] == "82 aborted (BREAK)"
    assert report.uut is not None
    assert report.uut.comment == "Test aborted by operator (BREAK)"
    override = one("BRD4713-250314110000ict01", statusResults={"82": "E"})
    assert override.result is Result.ERROR


def test_2004_log_with_12_btest_fields() -> None:
    report = one("6001234412004-041118142455hpict1")
    assert (report.sn, report.pn, report.rev) == ("6001234412004", "600-1234-01", "07")
    assert report.start == start(2004, 11, 18, 14, 24, 55)
    assert report.uut is not None
    assert report.uut.exec_time == 212.0
    assert report.machine_name == "hpict1"
    assert "Parent panel id" not in misc(report)
    assert misc(report)["Board number"] == "1"
    # The PF record sits directly under BTEST, between blocks.
    names = [s.name for s in report.root.steps or []]  # type: ignore[union-attr]
    assert names == ["polarity_check", "pins", "swprobe1", "swprobe2", "vr2"]
    # A negative reading with status 0 passes: the status is the verdict, not the limits.
    assert numeric(report, "swprobe1") == (
        -6920114.0,
        CompOp.GE,
        10000.0,
        None,
        "Ohm",
        Status.PASSED,
    )
    assert numeric(report, "out") == (3.30125, CompOp.GELE, 3.0, 3.63, None, Status.PASSED)


def test_utf8_bom() -> None:
    report = one("BRD4714-250314120000ict01")
    assert report.uut is not None
    assert report.uut.user == "J\u00f8rgen"
    assert step(report, "c9").report_text == (
        "Kondensator gepr\u00fcft, \u00b110 %\nnominal +2.200000E-09"
    )


def test_damaged_records_resynchronise() -> None:
    report = one("BRD4715-250314121500ict01")
    assert report.result is Result.FAILED
    assert [s.name for s in report.root.steps or []] == ["r12", "r13", "c7"]  # type: ignore[union-attr]
    # The LIM3 line was cut: its limits are not trusted, the measured value is.
    assert numeric(report, "r12") == (10001.23, CompOp.LOG, None, None, "Ohm", Status.PASSED)
    assert "LIM3} record at line 4 is cut short" in (step(report, "r12").report_text or "")
    # The next block is read as a block, not nested in the broken record.
    assert numeric(report, "r13") == (2612.0, CompOp.GELE, 2090.0, 2310.0, "Ohm", Status.FAILED)
    r13 = step(report, "r13").report_text or ""
    assert r13.startswith("Resistance in OHMS; measured on nodes")
    assert "(cut short)" in r13  # the RPT the tester truncated with ASCII 4
    assert numeric(report, "c7")[-1] is Status.PASSED
    assert misc(report)["Damaged log records"] == "lines 3, 4, 8 (cut short or braces lost)"
    assert "Damaged log records" not in misc(one("BRD4711-250314091205ict01"))


def test_custom_records_become_misc_infos() -> None:
    info = misc(one("BRD4716-250314123000ict01"))
    assert info["MySW_Version:OK"] == "OK"
    assert info["FIXTURE_COUNTER"] == "1207|cycles"


def test_production_size_log() -> None:
    report = one("BRD5001-250317080000ict03")
    assert report.result is Result.PASSED
    steps = report.steps()
    assert len(steps) == 368
    assert sum(1 for s in steps if s.kind is StepKind.NUMERIC_LIMIT) == 336
    assert all(s.status is Status.PASSED for s in steps)


def test_crlf_and_missing_final_newline_change_nothing() -> None:
    lf = one("BRD4711-250314091205ict01")
    crlf = one("BRD4711-250314091205ict01-crlf")
    assert (FOLDER / "BRD4711-250314091205ict01-crlf").read_bytes().count(b"\r\n") > 10
    assert without_id(lf) == without_id(crlf)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_file_reads_the_same_with_crlf(path: Path) -> None:
    data = path.read_bytes()
    lf = convert(data.replace(b"\r\n", b"\n"), path.name)
    crlf = convert(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n").rstrip(b"\r\n"))
    assert [without_id(r) for r in lf] == [without_id(r) for r in crlf]
    assert all(r.id != s.id for r, s in zip(lf, crlf, strict=True))


# --- Syntax details --------------------------------------------------------------------------

HEAD = "{@BATCH|PN-1|A|1|1||btest|250101000000||host|PN-1|1|||\n"


def board(body: str, status: str = "00", tail: str = "}}\n") -> str:
    return (
        HEAD
        + f"{{@BTEST|SN-1|{status}|250101120000|000010|0|all||n|n|250101120010||1|\n{body}{tail}"
    )


def test_limit_written_after_its_test_and_no_lower_limit() -> None:
    (report,) = convert(
        board("{@BLOCK|r1|00\n{@A-RES|0|+5.000000E+01}\n{@LIM2|+1.000000E+02|-9.999999E+99}\n}\n")
    )
    assert numeric(report, "r1") == (50.0, CompOp.LE, 100.0, None, "Ohm", Status.PASSED)


def test_literal_and_list_fields() -> None:
    (report,) = convert(
        board(
            "{@BLOCK|u1|01\n{@PF|u1|1|2\n{@PIN\\2|101|102}\n}\n{@RPT~9|a|b}c{d}e}\n}\n",
            status="02",
        )
    )
    pins = step(report, "u1")
    # A literal field keeps |, { and } as text; the block's text comes first.
    assert pins.report_text == "a|b}c{d}e\nfailing pins: 2\npins: 101 102"


def test_unclosed_custom_record_is_closed_by_the_next_record() -> None:
    (report,) = convert(board("{@MyRecord|x\n{@BLOCK|r1|00\n{@A-RES|0|+1.0E+01}\n}\n"))
    assert misc(report)["MyRecord"] == "x"
    assert numeric(report, "r1")[0] == 10.0


def test_analog_statuses() -> None:
    (report,) = convert(
        board(
            "{@BLOCK|r1|01\n{@A-RES|3|+1.0E+01}\n}\n{@BLOCK|r2|01\n{@A-RES|11|+1.0E+01}\n}\n",
            status="06",
        )
    )
    assert step(report, "r1").error_message == "detector timeout"
    assert step(report, "r1").status is Status.FAILED
    assert step(report, "r2").status is Status.TERMINATED


@pytest.mark.parametrize(
    ("code", "result"),
    [
        (0, Result.PASSED),
        (4, Result.FAILED),
        (10, Result.FAILED),
        (11, Result.ERROR),
        (13, Result.TERMINATED),
        (15, Result.FAILED),
        (80, Result.ERROR),
        (81, Result.TERMINATED),
        (82, Result.TERMINATED),
        (95, Result.FAILED),
        (50, Result.ERROR),
    ],
)
def test_btest_status_codes(code: int, result: Result) -> None:
    assert btest_result(code, {})[0] is result


def test_panel_boards_on_the_closing_line_without_final_newline() -> None:
    text = board("{@BLOCK|1%r1|00\n{@A-RES|0|+1.0E+01}\n}\n") + board(
        "{@BLOCK|2%r1|01\n{@A-RES|1|+9.0E+01}\n}\n", status="06", tail="}}"
    )
    text = text.replace("}}\n" + HEAD, "}}" + HEAD)
    first, second = convert(text)
    assert (first.result, second.result) == (Result.PASSED, Result.FAILED)
    assert step(second, "r1").status is Status.FAILED


# --- Bad input -------------------------------------------------------------------------------


def test_not_an_i3070_log() -> None:
    message = error("SerialNumber,Value\nA,1\n")
    assert "line 1: not an i3070 log" in message
    assert "no {@BTEST" in error("{@BATCH|PN|A|1|1||btest|1||h|p|1|||\n}\n")


def test_truncated_file() -> None:
    data = (FOLDER / "BRD4711-250314091205ict01").read_text()
    cut = data[: data.index("{@BLOCK|u8")]
    message = error(cut)
    assert "the file ends inside {@BTEST} (line 2)" in message
    assert "is it complete?" in message


def test_bad_values_name_their_line() -> None:
    assert "line 3: {@A-RES}: measured value '1,5' is not a number" in error(
        board("{@A-RES|0|1,5}\n")
    )
    assert "line 2: {@BTEST}: test status 'x' is not an integer" in error(board("", status="x"))
    message = error(board("{@BLOCK|r1|00\n{@A-RES|0|+1.0E+01{@LIM2|high|+1.0}}\n}\n"))
    assert "line 4: {@LIM2}: high limit 'high' is not a number" in message
    no_sn = HEAD + "{@BTEST||00|250101120000|000010|0|all||n|n|250101120010||1|\n}}\n"
    assert "board id (the serial number) is empty" in error(no_sn)
    bad_time = board("").replace("250101120000", "251301120000")
    assert "start time '251301120000' is not a YYMMDDhhmmss time" in error(bad_time)


def test_missing_part_number() -> None:
    text = "{@BTEST|SN-1|00|250101120000|000010|0|all||n|n|250101120010||1|\n}\n"
    assert "no part number" in error(text)
    (report,) = convert(text, partNumber="PN-9")
    assert (report.pn, report.rev) == ("PN-9", "1")


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError) as info:
        load_converter("i3070", {"statusResults": {"x": "F"}})
    assert info.value.key == "converters.i3070.arguments.statusResults.x"
    with pytest.raises(ConfigError) as info:
        load_converter("i3070", {"statusResults": {"82": "X"}})
    assert "statusResults" in info.value.key


# --- Sniffing --------------------------------------------------------------------------------


def _other_files() -> list[Path]:
    return sorted(
        p
        for p in DATA.rglob("*")
        if p.is_file() and p.name != "README.md" and FOLDER not in p.parents
    )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_sniff_claims_every_log(path: Path) -> None:
    reason = I3070Converter.sniff(path.read_bytes()[:65536], path.name)
    assert reason is not None
    assert "i3070" in reason


def test_sniff_leaves_other_formats_alone() -> None:
    for path in _other_files():
        assert I3070Converter.sniff(path.read_bytes()[:65536], path.name) is None, path


@given(st.binary(max_size=200))
@FUZZ
def test_sniff_never_raises(head: bytes) -> None:
    I3070Converter.sniff(head, "x")
    I3070Converter.sniff(b"\xef\xbb\xbf{@BATCH|" + head, "x")


# --- Fuzzing ---------------------------------------------------------------------------------

LOADED = load_converter("i3070")


def check(data: bytes) -> None:
    """The converter returns valid reports or raises its own clear ConversionError."""
    failure: ConversionError | None = None
    try:
        reports = LOADED.convert(Source(Path("log"), data), STATION)
    except ConversionError as exc:
        failure = exc
        reports = []
    if failure is not None:
        assert failure.converter == "i3070"
        assert "converter crashed" not in str(failure), str(failure)
        assert "\n" not in str(failure)
    for report in reports:
        assert wsjf.loads(wsjf.dumps(report)) == report


SAMPLES = [p.read_bytes() for p in FILES if p.stat().st_size < 5000]


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    check(data)
    check(b"{@BATCH|" + data)


@FUZZ
@given(st.sampled_from(SAMPLES), st.floats(0, 1))
def test_fuzz_truncated_files(sample: bytes, where: float) -> None:
    check(sample[: int(len(sample) * where)])


@FUZZ
@given(
    st.sampled_from(SAMPLES),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_fuzz_byte_flips(sample: bytes, flips: list[tuple[float, int]]) -> None:
    data = bytearray(sample)
    for where, value in flips:
        data[min(int(len(data) * where), len(data) - 1)] = value
    check(bytes(data))


@FUZZ
@given(st.sampled_from(SAMPLES), st.integers(0, 2**32 - 1))
def test_fuzz_special_characters(sample: bytes, seed: int) -> None:
    # Braces, separators and ASCII 4 dropped in at random: the structure breaks, the
    # parser resynchronises or says what is wrong.
    rnd = random.Random(seed)
    data = bytearray(sample)
    for _ in range(rnd.randint(1, 6)):
        data.insert(rnd.randrange(len(data) + 1), rnd.choice(b"{}|~\\\x04\n@"))
    check(bytes(data))


def test_a_digit_that_is_not_ascii_is_read_as_no_number_not_a_crash() -> None:
    # Found by the fuzzing: str.isdigit() is true for "²", which int() refuses.
    sample = (
        b"{@BATCH|PCA-3300-02|A|3300|1|Control XT|btest|250314103000||ict02|PCA-3300-02_panel"
        b"|1.4|PNL-3300|A|\n{@BTEST|PNL0816-1|00|250314103000|000\xc2\xb229|0|all||n|n|"
        b"250314103029||1|PNL0816-1\n{@BLOCK|1%r11|00\n{@A-RES|0|+4.699000E+03"
        b"{@LIM3|+4.700000E+03|+4.935000E+03|+4.465000E+03}}\n}\n}}\n"
    )
    [report] = convert(sample)  # the duration is unreadable: the end time gives it
    assert report.sn == "PNL0816-1"
