"""The ``spea`` converter: SPEA ICT semicolon logs (equipment-formats.md 5)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywats.converters import Source, StationDefaults, load_converter
from pywats.converters.spea import SpeaConverter
from pywats.converters.xjtag import XjtagConverter
from pywats.errors import ConversionError
from pywats.report import CompOp, Report, Result, Status, Step, StepKind, wsjf

STATION = StationDefaults(machine_name="ST-1", location="Line 1", purpose="Production")
DATA = Path(__file__).parents[1] / "data" / "equipment"
REAL = DATA / "spea" / "testdata_SN9871234012.csv"

FUZZ = settings(
    max_examples=int(os.environ.get("PYWATS_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def convert(data: bytes | str, **arguments: Any) -> list[Report]:
    raw = data.encode() if isinstance(data, str) else data
    return load_converter("spea", arguments).convert(Source(Path("log.csv"), raw), STATION)


def error(data: bytes | str, **arguments: Any) -> str:
    with pytest.raises(ConversionError) as info:
        convert(data, **arguments)
    message = str(info.value)
    assert message.startswith("converter 'spea': ")
    assert "crashed" not in message
    assert "\n" not in message
    return message


@cache
def real_reports() -> tuple[Report, ...]:
    return tuple(convert(REAL.read_bytes()))


def local(year: int, month: int, day: int, hour: int, minute: int, second: int) -> str:
    """A local wall-clock time as the station writes it (its own offset at that date)."""
    moment = datetime(year, month, day, hour, minute, second)
    return moment.astimezone().isoformat(timespec="milliseconds")


def leaves(report: Report) -> list[Step]:
    """The test steps (not sequences), in file order."""
    return [s for s in report.steps() if s.kind is not StepKind.SEQUENCE_CALL]


def step(report: Report, sequence: str, name: str) -> Step:
    assert report.root is not None
    for seq in report.root.steps or []:
        if seq.name == sequence:
            for child in seq.steps or []:
                if child.name == name:
                    return child
    raise AssertionError(f"no step {sequence}/{name}")


def sample(
    *rows: str, tail: str = "SN;SN-1\nBOARDRESULT;PASS\nEND;PASS;10/12/2024;16:15:22\n"
) -> str:
    head = "FORMAT;mmdd\nSTART;Programme;PLAN-1;1.0.2;PROD-9;op1;10/12/2024;16:15:03\nLOT;B-7\n"
    return head + "".join(r + "\n" for r in rows) + tail


ROW = "ANL;1;R1;1;1;RESR1 10K;;PASS;1.000000e+04;9.000000e+03;1.100000e+04;ohm;12 13 ;1"


# --- The real file -------------------------------------------------------------------------


def test_real_file_is_ten_runs_of_one_serial() -> None:
    reports = real_reports()
    assert len(reports) == 10
    assert {r.sn for r in reports} == {"SN9871234012"}
    assert {r.pn for r in reports} == {"23462-TS"}  # the START line's product
    assert {r.rev for r in reports} == {"1.0"}
    assert {r.process_code for r in reports} == {10}
    # The first nine failed, the last passed: BOARDRESULT of each run.
    assert [r.result for r in reports] == [Result.FAILED] * 9 + [Result.PASSED]
    assert [r.root.status for r in reports if r.root] == [Status.FAILED] * 9 + [Status.PASSED]
    assert len({r.id for r in reports}) == 10
    for report in reports:
        assert (report.machine_name, report.location, report.purpose) == (
            "ST-1",
            "Line 1",
            "Production",
        )
        assert report.uut is not None
        assert report.uut.user == "Test Operator op1"
        assert report.uut.batch_sn is None  # LOT; is empty
        assert report.root is not None
        assert report.root.name == "23462-TS"
        assert report.root.seq_call is not None
        assert (report.root.seq_call.path, report.root.seq_call.version) == (
            "Programme",
            "1.0.2",
        )


def test_real_file_start_times_follow_format_mmdd() -> None:
    # FORMAT;mmdd: 10/12/2024 is the 12th of October, local time of the station.
    starts = [(16, 15, 3), (16, 15, 29), (16, 15, 56), (16, 16, 21), (16, 18, 24)]
    starts += [(16, 18, 46), (16, 19, 12), (16, 19, 34), (16, 19, 57), (16, 22, 3)]
    reports = real_reports()
    assert [r.start for r in reports] == [local(2024, 10, 12, *hms) for hms in starts]
    utc = [datetime(2024, 10, 12, *hms).astimezone() for hms in starts]
    assert [r.start_utc for r in reports] == [
        u.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z") for u in utc
    ]
    assert reports[0].start_datetime() == utc[0]
    # END - START, seconds.
    assert [r.uut.exec_time for r in reports if r.uut] == [19, 20, 19, 19, 19, 19, 19, 20, 19, 438]


def _file_rows() -> list[list[tuple[int, list[str]]]]:
    """The measurement rows of each run, read straight from the file (not the converter)."""
    runs: list[list[tuple[int, list[str]]]] = []
    for number, line in enumerate(REAL.read_text("ascii").splitlines(), 1):
        if line.startswith("START;"):
            runs.append([])
        elif line.startswith(("ANL;", "FUNC;")):
            runs[-1].append((number, line.split(";")))
    return runs


def test_real_file_every_row_is_a_step_with_the_files_status() -> None:
    for report, rows in zip(real_reports(), _file_rows(), strict=True):
        steps = leaves(report)
        assert len(steps) == len(rows)
        for test, (number, cells) in zip(steps, rows, strict=True):
            expected = Status.PASSED if cells[7] == "PASS" else Status.FAILED
            assert test.status is expected, number
            assert test.name == cells[5].strip(), number
        # Each consecutive task is a sequence, named by the task.
        assert report.root is not None
        tasks = [
            cells[2]
            for i, (_, cells) in enumerate(rows)
            if i == 0 or rows[i - 1][1][2:4] != cells[2:4]
        ]
        assert [s.name for s in report.root.steps or []] == tasks


def test_real_file_failing_steps_of_the_first_and_the_last_runs() -> None:
    first, last = real_reports()[0], real_reports()[-1]
    failed = [(s.name, s.step_type) for s in leaves(first) if s.status is Status.FAILED]
    assert failed == [
        ("CAPC332 1nF 10% -10%", "ET_NLT"),
        ("DSC-CP[C128] Check capacitor voltage > |0.05V|", "Action"),
        ("DSC-C241 Check capacitor voltage > |0.05V|", "Action"),
        ("DSC-CP[C273] Check capacitor voltage > |0.05V|", "Action"),
    ]
    # The last run's board PASSED although its capacitor discharge checks failed (they
    # repeat until the capacitor is empty): the verdict is BOARDRESULT, not the steps.
    assert last.result is Result.PASSED
    failed_last = [s.name for s in leaves(last) if s.status is Status.FAILED]
    assert len(failed_last) == 21  # grep -c FAIL in lines 10843-13258
    assert all(n.endswith("Check capacitor voltage > |0.05V|") for n in failed_last)
    # The sequences of the failing steps failed; the others passed.
    assert first.root is not None
    failed_sequences = [s.name for s in first.root.steps or [] if s.status is Status.FAILED]
    assert failed_sequences == ["C332", "DSC-CP[C128](2)", "DSC-C241(2)", "DSC-CP[C273](2)"]


def test_real_file_numeric_limits_and_units() -> None:
    first = real_reports()[0]
    # ANL ...;PASS;9.046875e+00;1.000000e+00;1.200000e+01;V: a limit pair.
    (m,) = (
        step(first, "ADA_ICT", "Adapter ist angesaugt, keine Verschiebung moeglich!").numeric_meas
        or []
    )
    assert (m.comp_op, m.value, m.low_limit, m.high_limit, m.unit, m.status) == (
        CompOp.GELE,
        9.046875,
        1.0,
        12.0,
        "V",
        Status.PASSED,
    )
    assert m.name is None
    # 0 .. 10 ohm is a real pair (only 0/0 means no limits).
    (m,) = step(first, "LNK2TP $$SIGNAL1", "LNK2TP $$SIGNAL1 387-1106").numeric_meas or []
    assert (m.comp_op, m.value, m.low_limit, m.high_limit, m.unit) == (
        CompOp.GELE,
        1.085938,
        0.0,
        10.0,
        "ohm",
    )
    # max +1e10 is SPEA's "no upper limit": GE with the limit in lowLimit.
    (m,) = step(first, "R223", "LNKR223 Mounted!").numeric_meas or []
    assert (m.comp_op, m.value, m.low_limit, m.high_limit, m.unit) == (
        CompOp.GE,
        46022.5,
        20000.0,
        None,
        "ohm",
    )
    # min -1e10 is "no lower limit": LE, its one limit in lowLimit (the WATS encoding).
    (m,) = step(first, "C167", "CAPC167 mounted!").numeric_meas or []
    assert (m.comp_op, m.value, m.low_limit, m.high_limit, m.unit) == (
        CompOp.LE,
        -1.254105e-10,
        1.4e-07,
        None,
        "F",
    )
    # Values and limits keep the file's scale: 1 nF is written 1e-9 F.
    (m,) = step(first, "C332", "CAPC332 1nF 10% -10%").numeric_meas or []
    assert (m.comp_op, m.low_limit, m.high_limit, m.unit, m.status) == (
        CompOp.GELE,
        8.5e-10,
        1.15e-09,
        "F",
        Status.FAILED,
    )
    # -NAN: no reading. WSJF has no NaN, so the value is left out and the step says why.
    assert m.value is None
    assert step(first, "C332", "CAPC332 1nF 10% -10%").report_text == "measure: -NAN (no reading)"


def test_real_file_fail_directions() -> None:
    reports = real_reports()
    # FAIL(+): above max (run 5, line 5659).
    (m,) = step(reports[4], "C335", "CAPC335 1nF 10% -10%").numeric_meas or []
    assert (m.value, m.low_limit, m.high_limit, m.status) == (
        1.153988e-09,
        8.5e-10,
        1.15e-09,
        Status.FAILED,
    )
    # FAIL(-): below min, GE (run 9, line 10270).
    test = step(reports[8], "R562", "RESR562 1K 1% -1% Mounted!")
    (m,) = test.numeric_meas or []
    assert (test.status, m.comp_op, m.value, m.low_limit, m.status) == (
        Status.FAILED,
        CompOp.GE,
        164271.0,
        200000.0,
        Status.FAILED,
    )


def test_real_file_actions_automatic_and_function_tests() -> None:
    first, last = real_reports()[0], real_reports()[-1]
    # min = max = 0, no unit, reading 0: an action.
    action = step(first, "ADA_ICT", "ADA_POS_ICT  Connect")
    assert (action.step_type, action.kind, action.status) == (
        "Action",
        StepKind.ACTION,
        Status.PASSED,
    )
    assert action.numeric_meas is None
    # A failed check without limits stays a failed action: the file's status.
    failed = step(first, "DSC-CP[C128](2)", "DSC-CP[C128] Check capacitor voltage > |0.05V|")
    assert (failed.step_type, failed.status) == ("Action", Status.FAILED)
    # Automatic: the tester judged it (shorts); a pass/fail step.
    shorts = step(first, "SHO CHN DGND", "SHO CHN DGND")
    assert shorts.kind is StepKind.PASS_FAIL
    assert [b.status for b in shorts.boolean_meas or []] == [Status.PASSED]
    # FUNC;...;PASS;1;1;0;; "at least 1": GE 1 (max below min is no upper limit).
    (m,) = step(last, "FKT", "CAN-Initialisierung").numeric_meas or []
    assert (m.comp_op, m.value, m.low_limit, m.high_limit, m.unit) == (
        CompOp.GE,
        1.0,
        1.0,
        None,
        None,
    )
    # FUNC with a real pair and no unit.
    (m,) = step(last, "FKT", "5.11 SPI acceleration sensor").numeric_meas or []
    assert (m.comp_op, m.value, m.low_limit, m.high_limit, m.unit) == (
        CompOp.GELE,
        16634.0,
        15600.0,
        18000.0,
        None,
    )


def test_real_file_ids_are_unique_and_in_tree_order() -> None:
    for report in real_reports():
        ids = [s.id for s in report.steps()]
        assert ids == list(range(1, len(ids) + 1))


def test_real_file_round_trips_through_wsjf() -> None:
    report = real_reports()[0]
    assert wsjf.loads(wsjf.dumps(report)) == report


def _without_ids(reports: list[Report]) -> list[bytes]:
    return [wsjf.dumps(r).replace(r.id.encode(), b"ID") for r in reports]


def test_crlf_bom_and_missing_final_newline_change_nothing() -> None:
    lf = REAL.read_bytes()
    expected = _without_ids(list(real_reports()))
    assert _without_ids(convert(lf.replace(b"\n", b"\r\n"))) == expected
    assert _without_ids(convert(b"\xef\xbb\xbf" + lf)) == expected
    assert _without_ids(convert(lf.rstrip(b"\n"))) == expected


# --- Mapping details -----------------------------------------------------------------------


def test_lot_becomes_the_batch_and_arguments_override() -> None:
    (report,) = convert(sample(ROW), partNumber="PCBA-1", revision="B", operationTypeCode=30)
    assert (report.pn, report.rev, report.process_code) == ("PCBA-1", "B", 30)
    assert report.uut is not None
    assert report.uut.batch_sn == "B-7"
    (report,) = convert(sample(ROW))
    assert report.pn == "PROD-9"


def test_format_ddmm_reads_day_first() -> None:
    (report,) = convert(sample(ROW).replace("FORMAT;mmdd", "FORMAT;ddmm"))
    assert report.start == local(2024, 12, 10, 16, 15, 3)
    assert report.uut is not None
    assert report.uut.exec_time == 19


def test_format_applies_per_run() -> None:
    one = sample(ROW)
    two = sample(ROW).replace("FORMAT;mmdd", "FORMAT;ddmm").replace("SN-1", "SN-2")
    first, second = convert(one + two)
    assert (first.sn, first.start) == ("SN-1", local(2024, 10, 12, 16, 15, 3))
    assert (second.sn, second.start) == ("SN-2", local(2024, 12, 10, 16, 15, 3))


def test_start_without_format_starts_a_run_with_the_last_order() -> None:
    text = sample(ROW) + sample(ROW).replace("FORMAT;mmdd\n", "").replace("SN-1", "SN-2")
    assert [r.sn for r in convert(text)] == ["SN-1", "SN-2"]


def test_no_format_line_needs_the_date_order_argument() -> None:
    text = sample(ROW).replace("FORMAT;mmdd\n", "")
    assert "set the converter's `dateOrder` argument" in error(text)
    (report,) = convert(text, dateOrder="ddmm")
    assert report.start == local(2024, 12, 10, 16, 15, 3)


def test_verdict_comes_from_boardresult_never_from_the_steps() -> None:
    failing_row = ROW.replace(";PASS;", ";FAIL(+);")
    (report,) = convert(sample(failing_row))  # BOARDRESULT;PASS
    assert report.result is Result.PASSED
    assert leaves(report)[0].status is Status.FAILED
    tail = "SN;SN-1\nBOARDRESULT;FAIL\nEND;PASS;10/12/2024;16:15:22\n"
    (report,) = convert(sample(ROW, tail=tail))
    assert report.result is Result.FAILED  # BOARDRESULT wins over END
    (report,) = convert(sample(ROW, tail="SN;SN-1\nEND;ERROR;10/12/2024;16:15:22\n"))
    assert report.result is Result.ERROR  # END when there is no BOARDRESULT
    (report,) = convert(sample(ROW, tail="SN;SN-1\nBOARDRESULT;FAIL\n"))
    assert report.result is Result.FAILED  # no END: no execution time
    assert report.uut is not None
    assert report.uut.exec_time is None


def test_empty_limits_and_no_reading_words() -> None:
    rows = [
        "ANL;1;T;1;1;only min;;PASS;5;1;;V;;1",
        "ANL;1;T;1;2;only max;;PASS;5;;9;V;;2",
        "ANL;1;T;1;3;logged;;PASS;5;0;0;V;;3",
        "ANL;1;T;1;4;inf;;FAIL;+INF;1;2;V;;4",
        "ANL;1;T;1;5;both open;;PASS;5;-1e10;1e10;V;;5",
    ]
    (report,) = convert(sample(*rows))
    got = [
        (m.comp_op, m.value, m.low_limit, m.high_limit)
        for s in leaves(report)
        for m in s.numeric_meas or []
    ]
    assert got == [
        (CompOp.GE, 5.0, 1.0, None),
        (CompOp.LE, 5.0, 9.0, None),
        (CompOp.LOG, 5.0, None, None),
        (CompOp.GELE, None, 1.0, 2.0),
        (CompOp.LOG, 5.0, None, None),
    ]


def test_record_names_in_another_case_or_indented_are_read() -> None:
    (report,) = convert(sample(ROW, " anl" + ROW[3:], "Func" + ROW[3:]))
    assert len(leaves(report)) == 3
    (report,) = convert(sample(ROW).replace("SN;SN-1", " sn ;SN-1"))
    assert report.sn == "SN-1"


def test_other_status_words() -> None:
    rows = [
        ROW.replace(";PASS;", f";{word};") for word in ("SKIP", "ERROR", "INTERRUPTED", "FAIL(x)")
    ]
    (report,) = convert(sample(*rows))
    assert [s.status for s in leaves(report)] == [
        Status.SKIPPED,
        Status.ERROR,
        Status.TERMINATED,
        Status.FAILED,
    ]


def test_latin1_and_utf8_names_decode_alike() -> None:
    row = "ANL;1;Widerstand R1;1;1;Prüfung 10kΩ ±1 % °C;;PASS;1e4;9e3;1.1e4;Ω;;1"
    text = sample(row)
    (utf8,) = convert(text.encode("utf-8"))
    (latin,) = convert(text.replace("Ω", "O").encode("cp1252"))
    assert leaves(utf8)[0].name == "Prüfung 10kΩ ±1 % °C"
    assert (leaves(utf8)[0].numeric_meas or [])[0].unit == "Ω"
    assert leaves(latin)[0].name == "Prüfung 10kO ±1 % °C"
    assert latin.root is not None
    assert (latin.root.steps or [])[0].name == "Widerstand R1"
    (declared,) = convert(text.encode("utf-16"), encoding="utf-16")
    assert leaves(declared)[0].name == "Prüfung 10kΩ ±1 % °C"


def test_odd_characters_in_names_change_nothing() -> None:
    row = 'ANL;1;R"1<&>;1;1;  a\ttab "quoted" \\ back  ;;PASS;1e4;9e3;1.1e4;ohm;;1'
    (report,) = convert(sample(row))
    assert leaves(report)[0].name == 'a\ttab "quoted" \\ back'
    assert report.root is not None
    assert (report.root.steps or [])[0].name == 'R"1<&>'
    assert wsjf.loads(wsjf.dumps(report)) == report


# --- Errors ----------------------------------------------------------------------------------


def test_truncated_file_says_where_the_run_starts() -> None:
    data = REAL.read_bytes()
    cut = data[: data.index(b"SN;SN9871234012\nBOARDRESULT;PASS")]
    message = error(cut)
    assert "line 10843" in message
    assert "no SN line" in message
    assert "is the file complete?" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "line 1: no START line: this is not a SPEA log"),
        ("hello;world\n", "line 1: 'hello;world' is not a SPEA record"),
        (sample(ROW.replace("1.000000e+04", "abc")), "line 4: measure: 'abc' is not a number"),
        (sample(ROW.replace("9.000000e+03", "1_0")), "line 4: min: '1_0' is not a number"),
        (
            sample(ROW.replace("1.100000e+04", "1e999")),
            "line 4: max: '1e999' is not a finite number",
        ),
        (sample(ROW.replace(";PASS;", ";MAYBE;")), "line 4: result 'MAYBE' is not PASS"),
        (sample("ANL;1;R1;1;1;x;;PASS"), "line 4: a ANL record has 8 fields, expected at least 12"),
        (sample(ROW, "DIG;1;2"), "line 5: 'DIG;1;2' is not a SPEA record"),
        (ROW + "\n" + sample(ROW), "line 1: ANL record before the run's START line"),
        (sample(ROW) + ROW + "\n", "line 8: ANL record after the END of the run"),
        (sample(ROW, tail="SN;\n"), "line 5: SN line with an empty serial number"),
        (sample(ROW, tail="SN;A\nSN;B\n"), "line 6: a second serial 'B' in one run"),
        (
            sample(ROW, tail="SN;A\nBOARDRESULT;MEH\n"),
            "line 6: BOARDRESULT 'MEH' is not a board result",
        ),
        (sample(ROW, tail="SN;A\n"), "line 1: the run has no BOARDRESULT or END line"),
        (
            sample(ROW).replace("FORMAT;mmdd", "FORMAT;yyyy"),
            "line 1: FORMAT 'yyyy' is not a date order",
        ),
        (sample(ROW).replace(";10/12/2024;16:15:03", ""), "line 2: a START line is START;folder"),
        (
            sample(ROW).replace("10/12/2024;16:15:03", "13/12/2024;16:15:03"),
            "line 2: START date/time",
        ),
        (
            sample(ROW).replace("10/12/2024;16:15:03", "10-12;16:15:03"),
            "line 2: START date '10-12'",
        ),
        (sample(ROW).replace("16:15:03", "4 pm"), "line 2: START time '4 pm' is not hh:mm:ss"),
        (sample(ROW).replace("PROD-9", ""), "the START line has an empty product field"),
        ("FORMAT;mmdd\nFORMAT;mmdd\n", "line 1: FORMAT line without a START line after it"),
    ],
)
def test_bad_files_give_one_clear_line(text: str, expected: str) -> None:
    assert expected in error(text)


def test_a_serial_too_long_for_wats_names_the_run_and_field() -> None:
    message = error(sample(ROW, tail="SN;" + "9" * 101 + "\nBOARDRESULT;PASS\n"))
    assert "run 1 (line 1): sn: must be 1 to 100 characters" in message


def test_declared_encoding_that_the_bytes_break() -> None:
    assert "not valid utf-8" in error(sample(ROW).encode() + b"\xff\n", encoding="utf-8")


def test_bad_arguments_are_refused_at_load() -> None:
    from pywats.errors import ConfigError

    with pytest.raises(ConfigError, match=r"arguments.encoding: unknown text encoding"):
        load_converter("spea", {"encoding": "klingon"})
    with pytest.raises(ConfigError, match=r"arguments.dateOrder"):
        load_converter("spea", {"dateOrder": "yymm"})
    with pytest.raises(ConfigError, match=r"arguments.revision: must be 1 to 100"):
        load_converter("spea", {"revision": ""})


# --- Sniffing --------------------------------------------------------------------------------


def test_sniff_claims_the_real_file_and_no_other_equipment_file() -> None:
    for path in sorted(DATA.rglob("*")):
        if not path.is_file() or path.name == "README.md":
            continue
        head = path.read_bytes()[:65536]
        reason = SpeaConverter.sniff(head, path.name)
        if path.parent.name == "spea":
            assert reason == "SPEA START;/ANL; records"
        else:
            assert reason is None, path
    head = REAL.read_bytes()[:65536]
    assert XjtagConverter.sniff(head, REAL.name) is None


def test_sniff_takes_a_bom_and_a_cut_head_and_refuses_lookalikes() -> None:
    head = REAL.read_bytes()[:1000]
    assert SpeaConverter.sniff(b"\xef\xbb\xbf" + head, "x.csv")
    assert SpeaConverter.sniff(head.replace(b"\n", b"\r\n"), "x.txt")
    assert SpeaConverter.sniff("START;a;b;c;d;é;1;2\nANL;ü".encode()[:-1], "x") is not None
    assert SpeaConverter.sniff(b"Serial,Date\nSN-1,2026\n", "x.csv") is None
    assert SpeaConverter.sniff(b"ANL;1;2;3\n", "x.csv") is None  # no FORMAT/START
    assert SpeaConverter.sniff(b"START;x\n", "x.csv") is None  # no data records


@FUZZ
@given(st.binary(max_size=2000))
def test_sniff_never_raises(head: bytes) -> None:
    assert SpeaConverter.sniff(head, "x") in (None, "SPEA START;/ANL; records")


# --- Fuzzing: only ConversionError comes out -----------------------------------------------


def check(data: bytes) -> None:
    """The converter returns valid reports or raises its own clear ConversionError."""
    failure: ConversionError | None = None
    try:
        reports = convert(data)
    except ConversionError as exc:
        failure, reports = exc, []
    if failure is not None:
        assert failure.converter == "spea"
        assert "crashed" not in str(failure), str(failure)
        assert "\n" not in str(failure)
    for report in reports:
        assert wsjf.loads(wsjf.dumps(report)) == report


@cache
def first_run() -> bytes:
    data = REAL.read_bytes()
    return data[: data.index(b"FORMAT", 10)]


@FUZZ
@given(st.binary(max_size=500))
def test_fuzz_random_bytes(data: bytes) -> None:
    check(data)


@settings(FUZZ, max_examples=min(FUZZ.max_examples, 40))
@given(st.integers(0, REAL.stat().st_size))
def test_fuzz_truncated_real_file(offset: int) -> None:
    check(REAL.read_bytes()[:offset])


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), min_size=1, max_size=8))
def test_fuzz_byte_flips_in_a_real_run(flips: list[tuple[int, int]]) -> None:
    data = bytearray(first_run())
    for at, value in flips:
        data[at % len(data)] = value
    check(bytes(data))


_CELLS = st.sampled_from(
    ["", " ", "0", "-NAN", "Automatic", "1e10", "-1e10", "FAIL(+)", "PASS", "x" * 120, "é", "\x00"]
) | st.text(max_size=8)


@FUZZ
@given(
    st.lists(st.lists(_CELLS, min_size=1, max_size=15), max_size=6),
    st.sampled_from(["ANL", "FUNC", "SN", "END", "START", "LOT", "BOARDRESULT", "FORMAT"]),
)
def test_fuzz_random_records(rows: list[list[str]], tag: str) -> None:
    body = [";".join([tag, *r]) for r in rows]
    check(sample(ROW, *body).encode("utf-8", "surrogatepass"))
