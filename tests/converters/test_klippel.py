"""The ``klippel`` converter: a Klippel QC header and its result folder, one report.

The real log (tests/data/equipment/klippel, from Virinco's Klippel converter) is read the
way the pipeline reads it: the header's bytes, and its folder's files as companions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywats.converters import (
    ConversionContext,
    Source,
    StationDefaults,
    load_converter,
    run_converter,
)
from pywats.converters.klippel import MAX_CHART_POINTS, KlippelArguments, KlippelConverter
from pywats.errors import ConfigError, ConversionError
from pywats.pipeline.steps import read_companions_now
from pywats.report import CompOp, Report, Result, Status, StepKind, wsjf
from pywats.report.model import NumericMeasurement, Step

DATA = Path(__file__).resolve().parents[1] / "data" / "equipment"
KLIPPEL = DATA / "klippel"
HEADER = KLIPPEL / "DUT xyz115 2020-05-14 10-01-37-5 UTC+0200.txt"
FOLDER = HEADER.stem
STATION = StationDefaults(machine_name="ST-K", location="Audio line", purpose="Production")
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def real_companions() -> dict[str, bytes]:
    return read_companions_now(KlippelConverter(), HEADER)


def convert(
    header: bytes | None = None,
    companions: Mapping[str, bytes] | None = None,
    arguments: KlippelArguments | None = None,
    path: Path = HEADER,
) -> list[Report]:
    source = Source(
        path,
        HEADER.read_bytes() if header is None else header,
        real_companions() if companions is None else companions,
    )
    context = ConversionContext(STATION, arguments or KlippelArguments())
    return run_converter(KlippelConverter(), source, context)


def one(**kw: object) -> Report:
    (report,) = convert(**kw)  # type: ignore[arg-type]
    return report


def error(**kw: object) -> str:
    with pytest.raises(ConversionError) as info:
        convert(**kw)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith("converter 'klippel': ")
    assert "crashed" not in message
    assert "\n" not in message
    return message


def by_name(report: Report) -> dict[str, Step]:
    steps = {s.name: s for s in report.steps()}
    assert len(steps) == len(report.steps()), "step names are unique in the real log"
    return steps


def meas(step: Step) -> dict[str | None, NumericMeasurement]:
    return {m.name: m for m in step.numeric_meas or []}


def header_with(**changes: str) -> bytes:
    """The real header with ``Key=Value`` lines replaced (an empty string drops the line)."""
    text = HEADER.read_text()
    for key, value in changes.items():
        line = re.compile(rf"^{key}=.*$", re.MULTILINE)
        assert line.search(text), key
        text = line.sub(f"{key}={value}" if value else "", text)
    return text.encode()


def folder(**files: str) -> dict[str, bytes]:
    """Companions: result files (name -> text) in the header's folder."""
    return {f"{FOLDER}/{name}": text.encode() for name, text in files.items()}


# --- The real log ------------------------------------------------------------------------


def test_the_real_log_is_one_failed_report_with_its_header() -> None:
    report = one()
    assert (report.sn, report.pn, report.rev) == ("xyz115", "PartNumber1", "1.0")
    assert report.result is Result.FAILED  # Ctrl_OverallVerdict=0
    assert report.process_code == 10
    # Cfg_DutStartTime=2020-5-20-135-5-14-10-1-37-563-120-...: the offset (120 min) kept.
    assert report.start == "2020-05-14T10:01:37.563+02:00"
    assert report.start_utc == "2020-05-14T08:01:37.563Z"
    assert report.uut is not None
    assert report.uut.user == "win:m.liebig"
    assert report.uut.error_message is None  # Ctrl_ErrorGeneral is empty
    # Cfg_PCName is empty: the station's name, location and purpose.
    assert (report.machine_name, report.location, report.purpose) == (
        "ST-K",
        "Audio line",
        "Production",
    )
    misc = {m.description: m.text for m in report.misc_infos or []}
    assert misc["Ctrl_OverallVerdict"] == "0 (Fail)"
    assert misc["Cfg_Speaker"] == "sp2"
    assert misc["Cfg_LoginMode"] == "PROGRAMMER"
    assert misc["Ctrl_SaveData"].endswith("DUT xyz115 2020-05-14 10-01-37-5 UTC+0200.kdbx")
    assert "Cfg_MonitorID" not in misc  # empty in the file


def test_the_real_log_has_one_sequence_per_operation_and_the_tasks_without_files() -> None:
    report = one()
    root = report.root
    assert root is not None
    assert root.kind is StepKind.SEQUENCE_CALL
    assert root.status is Status.FAILED  # the unit's verdict, not recomputed
    assert [s.name for s in root.steps or []] == ["Impedance", "Sound Pressure", "pol", "fs"]
    impedance, sound, pol, fs = root.steps or []
    assert [s.name for s in impedance.steps or []] == ["imp", "re", "qts"]
    assert [s.name for s in sound.steps or []] == ["rbz", "resp", "thd", "level"]
    assert impedance.status is Status.FAILED
    assert sound.status is Status.PASSED
    # Tasks the header gives a verdict without a result file: pass/fail steps.
    assert (pol.kind, pol.status) == (StepKind.PASS_FAIL, Status.PASSED)
    assert (fs.kind, fs.status) == (StepKind.PASS_FAIL, Status.FAILED)
    assert [s.id for s in report.steps()] == list(range(1, 13))  # tree order


def test_a_values_row_is_name_value_max_min() -> None:
    level = by_name(one())["level"]  # level 95.203 97.337 91.337
    assert level.kind is StepKind.NUMERIC_LIMIT
    assert level.step_type == "ET_NLT"
    [m] = level.numeric_meas or []
    assert m.name is None
    assert m.comp_op is CompOp.GELE
    assert m.value == 95.203
    assert m.low_limit == 91.337  # min, the last column
    assert m.high_limit == 97.337  # max, before min
    assert m.unit is None  # Klippel's values files carry no unit
    assert m.status is Status.PASSED
    assert level.status is Status.PASSED


def test_a_row_without_a_value_keeps_the_task_verdict() -> None:
    steps = by_name(one())
    re_step = steps["re"]  # re - 3.5156 2.8764, and re is in Results_Fail
    assert re_step.kind is StepKind.PASS_FAIL
    assert re_step.status is Status.FAILED
    assert re_step.report_text == "no value (limits min 2.8764, max 3.5156)"
    qts = steps["qts"]  # qts - (no limits), in no Results_ list
    assert qts.status is Status.SKIPPED
    assert qts.report_text == "no value"


def test_a_curve_is_a_chart_with_the_counts_outside_its_limits() -> None:
    imp = by_name(one())["imp"]  # frq imp max min, imp in Results_Fail
    assert imp.step_type == "WATS_XYGMNLT"
    assert imp.kind is StepKind.MULTI_NUMERIC_LIMIT
    assert imp.status is Status.FAILED
    m = meas(imp)
    assert list(m) == ["Lowest", "Highest", "Above max", "Below min"]
    assert (m["Lowest"].value, m["Lowest"].comp_op) == (1.7263, CompOp.LOG)
    assert (m["Highest"].value, m["Highest"].comp_op) == (6.6844, CompOp.LOG)
    above, below = m["Above max"], m["Below min"]
    assert (above.value, above.comp_op, above.low_limit, above.high_limit) == (
        3.0,
        CompOp.EQ,
        0.0,
        None,
    )
    assert (above.unit, above.status) == ("#", Status.FAILED)
    assert (below.value, below.status) == (17.0, Status.FAILED)
    chart = imp.chart
    assert chart is not None
    assert (chart.chart_type, chart.x_label, chart.x_unit, chart.label) == (
        "LineLogX",
        "Frequency",
        "Hz",
        "imp",
    )
    series = {s.name: s for s in chart.series or []}
    assert list(series) == ["imp", "max", "min"]
    values = series["imp"]
    assert values.data_type == "XYG"
    assert values.xdata is not None
    assert values.ydata is not None
    xs, ys = values.xdata.split(";"), values.ydata.split(";")
    assert len(xs) == len(ys) == 129
    assert (xs[0], ys[0], xs[-1], ys[-1]) == ("18.750", "1.7263", "5001.6", "6.6844")
    assert (series["max"].ydata or "").startswith("3.4030;3.4223")
    assert (series["min"].ydata or "").startswith("3.0445;3.0645")


def test_a_curve_with_only_a_max_and_gaps() -> None:
    steps = by_name(one())
    thd = steps["thd"]  # frq thd max, the first rows "-", thd in Results_Pass
    assert thd.status is Status.PASSED
    m = meas(thd)
    assert list(m) == ["Lowest", "Highest", "Above max"]
    assert (m["Above max"].value, m["Above max"].status) == (0.0, Status.PASSED)
    assert thd.chart is not None
    series = {s.name: s for s in thd.chart.series or []}
    assert list(series) == ["thd", "max"]
    assert series["thd"].xdata is not None
    assert len(series["thd"].xdata.split(";")) == 131  # 30 of 161 points have no value
    assert series["thd"].xdata.startswith("230.00;")
    resp = steps["resp"]
    assert (resp.status, meas(resp)["Below min"].value) == (Status.PASSED, 0.0)


def test_the_report_is_valid_wsjf_and_round_trips() -> None:
    report = one()
    assert wsjf.loads(wsjf.dumps(report)) == report


def test_arguments_give_part_number_revision_process_and_sequence() -> None:
    args = KlippelArguments(
        partNumber="SPK-40",
        partRevision="C",
        sequenceName="QC",
        sequenceVersion="2.1",
        operationTypeCode=710,
    )
    report = one(arguments=args)
    assert (report.pn, report.rev, report.process_code) == ("SPK-40", "C", 710)
    assert report.root is not None
    assert report.root.name == "QC"
    assert report.root.seq_call is not None
    assert (report.root.seq_call.name, report.root.seq_call.version) == ("QC", "2.1")


def test_bad_arguments_name_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        load_converter("klippel", {"partNumber": ""})
    assert info.value.key == "converters.klippel.arguments.partNumber"
    with pytest.raises(ConfigError) as info:
        load_converter("klippel", {"encoding": "nope"})
    assert info.value.key == "converters.klippel.arguments.encoding"


def test_loaded_by_name_with_the_pipeline_reading_its_folder() -> None:
    loaded = load_converter("klippel", {"partNumber": "SPK-40"})
    source = Source(HEADER, HEADER.read_bytes(), read_companions_now(loaded.converter, HEADER))
    [report] = loaded.convert(source, STATION)
    assert (report.pn, report.sn, report.result) == ("SPK-40", "xyz115", Result.FAILED)


# --- Verdicts, statuses, limits ----------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "result", "word"),
    [
        ("-1", Result.TERMINATED, "Void"),
        ("0", Result.FAILED, "Fail"),
        ("1", Result.PASSED, "Pass"),
        ("2", Result.PASSED, "Warning"),
        ("3", Result.ERROR, "Noise"),
        ("4", Result.ERROR, "Invalid"),
    ],
)
def test_the_unit_verdict_comes_from_ctrl_overall_verdict(
    code: str, result: Result, word: str
) -> None:
    report = one(header=header_with(Ctrl_OverallVerdict=code))
    assert report.result is result
    assert report.root is not None
    assert report.root.status.value == result.value
    misc = {m.description: m.text for m in report.misc_infos or []}
    assert misc["Ctrl_OverallVerdict"] == f"{code} ({word})"
    # The steps are the same whatever the verdict: it is never recomputed from them.
    assert by_name(report)["imp"].status is Status.FAILED


@pytest.mark.parametrize("code", ["5", "pass", "", "1.0"])
def test_an_unknown_verdict_is_refused_with_its_line(code: str) -> None:
    message = error(header=header_with(Ctrl_OverallVerdict=code))
    if code:
        assert "line 38: Ctrl_OverallVerdict" in message
        assert "-1 void, 0 fail, 1 pass" in message
    else:  # an empty value is a line of its own without the key (header_with drops it)
        assert "no Ctrl_OverallVerdict= line" in message


def test_task_lists_give_step_statuses_and_the_worst_list_wins() -> None:
    header = header_with(
        Results_Pass="resp\tlevel\tpol",
        Results_Fail="imp\tre\tfs",
        Results_Warning="thd",
        Results_Noise="rbz",
        Results_Invalid="level",  # also in Pass: the worse list counts
    )
    steps = by_name(one(header=header))
    assert steps["thd"].status is Status.PASSED
    assert steps["thd"].report_text == "Klippel verdict: warning"
    assert steps["rbz"].status is Status.ERROR
    assert steps["rbz"].report_text == "Klippel verdict: noise"
    assert steps["level"].status is Status.ERROR
    [m] = steps["level"].numeric_meas or []
    assert m.status is Status.ERROR


def test_without_a_task_verdict_the_status_is_computed_from_value_and_limits() -> None:
    header = header_with(Results_Pass="", Results_Fail="")
    values = "name\tvalue\tmax\tmin\nin\t5\t6\t4\nhigh\t7\t6\t4\nlow\t3\t6\t4\n"
    curve = "frq\tspl\tmax\tmin\n100\t5\t6\t4\n200\t7\t6\t4\n"
    steps = by_name(
        one(header=header, companions=folder(**{"A-values.txt": values, "A-spl.txt": curve}))
    )
    assert steps["in"].status is Status.PASSED
    assert steps["high"].status is Status.FAILED
    assert steps["low"].status is Status.FAILED
    assert steps["spl"].status is Status.FAILED  # one point above max
    assert meas(steps["spl"])["Above max"].value == 1.0


def test_a_task_verdict_wins_over_the_limits() -> None:
    header = header_with(Results_Pass="high", Results_Fail="in")
    values = "name\tvalue\tmax\tmin\nin\t5\t6\t4\nhigh\t7\t6\t4\n"
    steps = by_name(one(header=header, companions=folder(**{"A-values.txt": values})))
    assert steps["in"].status is Status.FAILED
    assert steps["high"].status is Status.PASSED


@pytest.mark.parametrize(
    ("row", "op", "low", "high"),
    [
        ("x\t5\t6\t4", CompOp.GELE, 4.0, 6.0),
        ("x\t5\t6\t", CompOp.LE, 6.0, None),  # only max: LE, its limit in lowLimit
        ("x\t5\t6\t-", CompOp.LE, 6.0, None),
        ("x\t5\t\t4", CompOp.GE, 4.0, None),  # only min: GE
        ("x\t5\t\t", CompOp.LOG, None, None),
        ("x\t5", CompOp.LOG, None, None),  # trailing cells left out
    ],
)
def test_one_sided_and_missing_limits(
    row: str, op: CompOp, low: float | None, high: float | None
) -> None:
    values = f"name\tvalue\tmax\tmin\n{row}\n"
    header = header_with(Results_Pass="", Results_Fail="")
    step = by_name(one(header=header, companions=folder(**{"A-values.txt": values})))["x"]
    [m] = step.numeric_meas or []
    assert (m.comp_op, m.low_limit, m.high_limit, m.value) == (op, low, high, 5.0)
    assert m.status is Status.PASSED


def test_columns_are_read_by_their_names() -> None:
    # min before max, and a unit column: the header row says which is which.
    values = "name\tvalue\tmin\tmax\tunit\nre\t3.1\t2.8\t3.5\tOhm\n"
    step = by_name(one(companions=folder(**{"Impedance-values.txt": values})))["re"]
    [m] = step.numeric_meas or []
    assert (m.low_limit, m.high_limit, m.unit) == (2.8, 3.5, "Ohm")


def test_a_long_curve_is_thinned_for_the_chart_but_counted_whole() -> None:
    rows = "".join(f"{10 + i * 0.5:.1f}\t{1.0 if i != 4321 else 9.0}\t2\n" for i in range(5000))
    steps = by_name(one(companions=folder(**{"A-spl.txt": "frq\tspl\tmax\n" + rows})))
    spl = steps["spl"]
    assert meas(spl)["Above max"].value == 1.0  # the one point above is counted
    assert meas(spl)["Highest"].value == 9.0
    assert spl.chart is not None
    [values, _limit] = spl.chart.series or []
    assert values.xdata is not None
    xs = values.xdata.split(";")
    assert len(xs) <= MAX_CHART_POINTS + 1
    assert (xs[0], xs[-1]) == ("10.0", f"{10 + 4999 * 0.5:.1f}")  # both ends kept


def test_a_curve_with_extra_columns_draws_them_too() -> None:
    curve = "frq\tspl\tmax\tref\n100\t5\t6\t5.5\n200\t5\t6\t5.4\n"
    spl = by_name(one(companions=folder(**{"A-spl.txt": curve})))["spl"]
    assert spl.chart is not None
    assert [s.name for s in spl.chart.series or []] == ["spl", "max", "ref"]


# --- Times -------------------------------------------------------------------------------


def test_a_negative_utc_offset_is_kept() -> None:
    report = one(header=header_with(Cfg_DutStartTime="2021-1-2-2-6-8-23-59-58-7--300-1.6E+09"))
    assert report.start == "2021-01-08T23:59:58.007-05:00"
    assert report.start_utc == "2021-01-09T04:59:58.007Z"


def test_without_a_start_time_the_file_name_gives_it() -> None:
    report = one(header=header_with(Cfg_DutStartTime=""))
    assert report.start == "2020-05-14T10:01:37.500+02:00"


@pytest.mark.parametrize(
    "text",
    [
        "2020-5-14 10:01:37",
        "2020-13-20-135-5-14-10-1-37-563-120-1",
        "2020-5-20-135-5-14-10-1-37-563-2000",
    ],
)
def test_a_bad_start_time_is_refused_with_its_line(text: str) -> None:
    message = error(header=header_with(Cfg_DutStartTime=text))
    assert "line 5: Cfg_DutStartTime" in message


# --- Text --------------------------------------------------------------------------------


def crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def comparable(report: Report) -> dict[str, object]:
    document = wsjf.unstructure(report)
    del document["id"]
    return document


def test_windows_line_ends_and_missing_last_newlines_change_nothing() -> None:
    expected = comparable(one())
    companions = {k: crlf(v).rstrip(b"\r\n") for k, v in real_companions().items()}
    assert comparable(one(header=crlf(HEADER.read_bytes()), companions=companions)) == expected
    assert comparable(one(header=HEADER.read_bytes().rstrip(b"\n"))) == expected


def test_text_is_decoded_by_byte_order_mark_or_cp1252() -> None:
    latin = header_with(Cfg_UserName="win:søren").decode().encode("cp1252")
    report = one(header=latin)
    assert report.uut is not None
    assert report.uut.user == "win:søren"
    report = one(header=b"\xef\xbb\xbf" + header_with(Cfg_UserName="win:søren"))
    assert report.uut is not None
    assert report.uut.user == "win:søren"
    utf16 = header_with(Cfg_UserName="win:søren").decode().encode("utf-16")
    report = one(header=utf16)
    assert report.uut is not None
    assert report.uut.user == "win:søren"
    values = "name\tvalue\tmax\tmin\ntemp°\t5\t6\t4\n".encode("cp1252")
    report = one(companions={f"{FOLDER}/A-values.txt": values})
    assert "temp°" in by_name(report)


def test_a_declared_encoding_that_the_bytes_break_is_refused() -> None:
    latin = header_with(Cfg_UserName="win:søren").decode().encode("cp1252")
    message = error(header=latin, arguments=KlippelArguments(encoding="utf-8"))
    assert "line 32" in message
    assert "utf-8" in message


# --- Bad input ---------------------------------------------------------------------------


def test_not_a_klippel_header() -> None:
    message = error(header=b"--Header-Start--\nSerialNumber\tSN-1\n")
    assert "no Ctrl_OverallVerdict= line: this is not a Klippel QC header" in message


def test_an_empty_serial_number_is_refused_with_its_line() -> None:
    text = HEADER.read_text().replace("Cfg_SerialNumber=xyz115", "Cfg_SerialNumber=")
    assert "line 26: Cfg_SerialNumber is empty" in error(header=text.encode())


def test_a_header_without_its_folder_is_refused() -> None:
    message = error(companions={})
    assert f"the folder '{FOLDER}' beside the header is missing or holds no .txt file" in message
    # Files of another folder, or not .txt, are not result files of this header.
    message = error(companions={"other/A-values.txt": b"name\tvalue\n", f"{FOLDER}/a.png": b""})
    assert "no result files" in message


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "A-values.txt",
            "name\tvalue\tmax\tmin\nre\tabc\t1\t0\n",
            "line 2: column value: 'abc' is not a number",
        ),
        (
            "A-values.txt",
            "name\tvalue\tmax\tmin\nre\t1\t1\t0\t9\n",
            "line 2: 5 cells, but the header row names 4",
        ),
        ("A-values.txt", "name\tvalue\tmax\tmin\n\t1\t1\t0\n", "line 2: the row has no name"),
        (
            "A-values.txt",
            "name\tmax\tmin\nre\t1\t0\n",
            "line 1: the header row has no 'value' column",
        ),
        ("A-values.txt", "name\tvalue\tlimit\nre\t1\t0\n", "line 1: unknown column 'limit'"),
        (
            "A-values.txt",
            "name\tvalue\tmax\tmax\nre\t1\t0\t0\n",
            "line 1: the header row names 'max' twice",
        ),
        (
            "A-imp.txt",
            "frq\timp\tmax\n100\t1\t2\n1e999\t1\t2\n",
            "line 3: column frq: '1e999' is not a finite number",
        ),
        ("A-imp.txt", "frq\n100\n", "line 1: a curve file has frq and a value column"),
        ("A-imp.txt", "frq\tmax\n100\t1\n", "line 1: the second column is 'max'"),
        ("A-x.txt", "freq\tx\n1\t2\n", "line 1: the first column is 'freq'"),
        ("A-x.txt", "\n\n", "the file is empty (no header row)"),
    ],
)
def test_bad_result_files_name_the_file_and_line(name: str, text: str, expected: str) -> None:
    message = error(companions=folder(**{name: text}))
    assert f"{FOLDER}/{name}" in message
    assert expected in message


def test_a_repeated_key_with_another_value_is_refused() -> None:
    text = HEADER.read_text() + "Ctrl_OverallVerdict=1\n"
    message = error(header=text.encode())
    assert "Ctrl_OverallVerdict is given again, differently (first on line 38)" in message


# --- Sniffing ----------------------------------------------------------------------------


def test_sniff_knows_the_real_header() -> None:
    head = HEADER.read_bytes()[:65536]
    reason = KlippelConverter.sniff(head, HEADER.name)
    assert (reason or "").startswith("Klippel QC header (")
    assert KlippelConverter.sniff(b"\xef\xbb\xbf" + head, HEADER.name) is not None
    assert KlippelConverter.sniff(head.decode().encode("utf-16"), HEADER.name) is not None
    assert KlippelConverter.sniff(head[:500], HEADER.name) is not None  # cut mid-way
    assert KlippelConverter.sniff(b"", "x.txt") is None
    two_keys = b"Cfg_SerialNumber=1\nCtrl_OverallVerdict=1\n"
    assert KlippelConverter.sniff(two_keys, "x.txt") is None  # three keys at least


def test_sniff_takes_no_other_real_file() -> None:
    others = [p for p in DATA.rglob("*") if p.is_file() and p != HEADER and p.name != "README.md"]
    assert any(p.parent.name == FOLDER for p in others)  # the result files themselves
    for path in others:
        head = path.read_bytes()[:65536]
        assert KlippelConverter.sniff(head, path.name) is None, path


def test_patterns_take_the_header_not_its_result_files() -> None:
    from pywats.converters import matches

    assert matches(KlippelConverter(), HEADER)
    for path in (KLIPPEL / FOLDER).iterdir():
        assert not matches(KlippelConverter(), path), path


def test_companions_is_the_folder_beside_the_header() -> None:
    assert list(KlippelConverter().companions(HEADER)) == [KLIPPEL / FOLDER]


# --- Fuzzing: whatever the bytes, only a ConversionError comes out -----------------------


def ok_or_clear(header: bytes, companions: Mapping[str, bytes]) -> None:
    try:
        reports = convert(header=header, companions=companions)
    except ConversionError as exc:
        message = str(exc)
    else:
        for report in reports:
            wsjf.dumps(report)
        return
    assert "crashed" not in message, message
    assert "\n" not in message


@FUZZ
@given(st.binary(max_size=4096))
def test_fuzz_random_header_bytes(data: bytes) -> None:
    ok_or_clear(data, real_companions())


@FUZZ
@given(
    st.text(
        alphabet=st.sampled_from("Cfg_DutStartTime=Ctrl_OverallVerdict-0123\t\n/"), max_size=400
    )
)
def test_fuzz_header_like_text(text: str) -> None:
    ok_or_clear(text.encode(), real_companions())


@FUZZ
@given(st.data())
def test_fuzz_truncated_real_files(data: st.DataObject) -> None:
    companions = real_companions()
    which = data.draw(st.sampled_from(["header", *sorted(companions)]))
    header = HEADER.read_bytes()
    if which == "header":
        header = header[: data.draw(st.integers(0, len(header)))]
    else:
        content = companions[which]
        companions[which] = content[: data.draw(st.integers(0, len(content)))]
    ok_or_clear(header, companions)


@FUZZ
@given(st.data())
def test_fuzz_flipped_bytes_in_real_files(data: st.DataObject) -> None:
    companions = real_companions()
    header = bytearray(HEADER.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        which = data.draw(st.sampled_from(["header", *sorted(companions)]))
        target = header if which == "header" else bytearray(companions[which])
        if not target:
            continue
        at = data.draw(st.integers(0, len(target) - 1))
        target[at] = data.draw(st.integers(0, 255))
        if which != "header":
            companions[which] = bytes(target)
    ok_or_clear(bytes(header), companions)


@FUZZ
@given(st.dictionaries(st.text(max_size=30), st.binary(max_size=300), max_size=5))
def test_fuzz_random_companions(companions: dict[str, bytes]) -> None:
    named = {f"{FOLDER}/{k}.txt": v for k, v in companions.items()}
    ok_or_clear(HEADER.read_bytes(), {**companions, **named})
