"""The ``csv`` converter: column mapping from the config, one report per row or per file."""

from __future__ import annotations

import codecs
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywats import config
from pywats.converters import (
    ConversionContext,
    LoadedConverter,
    Source,
    StationDefaults,
    load_converter,
    run_converter,
)
from pywats.converters.csv import CsvArguments, CsvConverter
from pywats.errors import ConfigError, ConversionError
from pywats.report import CompOp, Report, Result, Status, wsjf
from pywats.report.model import Step

STATION = StationDefaults(machine_name="ST-1", location="Line 1", purpose="Production")

WIDE = """Serial,Date,Operator,VCC,VCC_min,VCC_max,Idle,Result
SN-1,2026-02-01T09:15:00+01:00,ola,5.02,4.9,5.1,0.3,
SN-2,2026-02-01T09:16:00+01:00,kari,5.20,4.9,5.1,0.3,
SN-3,2026-02-01T09:17:00+01:00,ola,5.00,4.9,5.1,,
"""

BASE: dict[str, Any] = {
    "columns": {"sn": "Serial", "start": "Date", "operator": "Operator"},
    "constants": {"pn": "PCBA-100", "rev": "A"},
    "steps": [
        {"valueColumn": "VCC", "lowColumn": "VCC_min", "highColumn": "VCC_max", "unit": "V"},
        {"valueColumn": "Idle", "name": "Idle current", "high": 0.5, "unit": "A"},
    ],
}


def arguments(**changes: Any) -> dict[str, Any]:
    out = {**BASE, **changes}
    return out


def convert(text: str | bytes, raw: dict[str, Any] | None = None) -> list[Report]:
    loaded = load_converter("csv", arguments() if raw is None else raw)
    data = text.encode() if isinstance(text, str) else text
    return loaded.convert(Source(Path("data.csv"), data), STATION)


def error(text: str | bytes, raw: dict[str, Any] | None = None) -> str:
    with pytest.raises(ConversionError) as info:
        convert(text, raw)
    message = str(info.value)
    assert "converter 'csv'" in message
    assert "crashed" not in message
    return message


def config_error(raw: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_converter("csv", raw)
    return info.value


def test_one_report_per_row() -> None:
    reports = convert(WIDE)
    assert [r.sn for r in reports] == ["SN-1", "SN-2", "SN-3"]
    assert [r.result for r in reports] == [Result.PASSED, Result.FAILED, Result.PASSED]
    assert len({r.id for r in reports}) == 3
    first = reports[0]
    assert (first.pn, first.rev, first.process_code) == ("PCBA-100", "A", 10)
    assert (first.machine_name, first.location, first.purpose) == ("ST-1", "Line 1", "Production")
    assert first.start == "2026-02-01T09:15:00.000+01:00"
    assert first.uut is not None
    assert first.uut.user == "ola"
    vcc, idle = first.steps()[1:]
    assert vcc.name == "VCC"
    assert vcc.numeric_meas is not None
    meas = vcc.numeric_meas[0]
    assert (meas.comp_op, meas.value, meas.low_limit, meas.high_limit, meas.unit) == (
        CompOp.GELE,
        5.02,
        4.9,
        5.1,
        "V",
    )
    assert idle.name == "Idle current"
    assert idle.numeric_meas is not None
    # a high limit alone is LE, kept in lowLimit (the WATS encoding)
    assert (idle.numeric_meas[0].comp_op, idle.numeric_meas[0].low_limit) == (CompOp.LE, 0.5)
    assert idle.numeric_meas[0].high_limit is None
    # an empty value cell: the step is there, skipped, and does not fail the unit
    skipped = reports[2].steps()[2]
    assert skipped.status is Status.SKIPPED
    assert skipped.numeric_meas is None
    for report in reports:
        assert wsjf.loads(wsjf.dumps(report)) == report


def test_one_report_per_file_long_format() -> None:
    text = "Serial;Test;Value;Low;High;Unit\nSN-9;VCC;5,02;4,9;5,1;V\nSN-9;R12;1003;990;1010;Ohm\n"
    raw = {
        "mode": "file",
        "delimiter": ";",
        "decimal": ",",
        "columns": {"sn": "Serial"},
        "constants": {"pn": "P", "rev": "1", "processCode": 30, "miscInfos": {"Line": "L2"}},
        "steps": [
            {
                "valueColumn": "Value",
                "nameColumn": "Test",
                "lowColumn": "Low",
                "highColumn": "High",
                "unitColumn": "Unit",
            }
        ],
    }
    (report,) = convert(text, raw)
    assert report.process_code == 30
    assert [(s.name, s.status) for s in report.steps()[1:]] == [
        ("VCC", Status.PASSED),
        ("R12", Status.PASSED),
    ]
    assert [s.id for s in report.steps()] == [1, 2, 3]
    meas = report.steps()[1].numeric_meas
    assert meas is not None
    assert (meas[0].value, meas[0].low_limit, meas[0].unit) == (5.02, 4.9, "V")
    assert [(m.description, m.text) for m in report.misc_infos or []] == [("Line", "L2")]


def test_header_from_columns_and_constants() -> None:
    text = "sn,pn,code,res,station,fw,t\nA1,P-1,40,Failed,ICT-9,1.2,3.5\n"
    raw = {
        "columns": {
            "sn": "sn",
            "pn": "pn",
            "processCode": "code",
            "result": "res",
            "machineName": "station",
            "execTime": "t",
            "miscInfos": {"Firmware": "fw"},
        },
        "constants": {"rev": "B", "location": "Lab", "purpose": "Debug", "comment": "c"},
    }
    (report,) = convert(text, raw)
    assert (report.sn, report.pn, report.rev, report.process_code) == ("A1", "P-1", "B", 40)
    assert report.result is Result.FAILED  # the result column wins (there are no steps)
    assert (report.machine_name, report.location, report.purpose) == ("ICT-9", "Lab", "Debug")
    assert report.uut is not None
    assert (report.uut.exec_time, report.uut.comment) == (3.5, "c")
    assert [(m.description, m.text) for m in report.misc_infos or []] == [("Firmware", "1.2")]


def test_constant_limits_and_compop() -> None:
    raw = arguments(
        steps=[
            {"valueColumn": "VCC", "low": 5.1, "compOp": "LT"},
            {"valueColumn": "Idle", "low": 0.1, "high": 0.2, "compOp": "LTGT"},
            {"valueColumn": "VCC", "name": "logged"},
        ]
    )
    reports = convert(WIDE, raw)
    lt, ltgt, logged = reports[0].steps()[1:]
    assert lt.numeric_meas is not None
    assert (lt.numeric_meas[0].comp_op, lt.status) == (CompOp.LT, Status.PASSED)
    assert ltgt.status is Status.PASSED
    assert logged.numeric_meas is not None
    assert logged.numeric_meas[0].comp_op is CompOp.LOG
    assert reports[1].steps()[1].status is Status.FAILED


def test_status_column_wins_over_limits() -> None:
    text = "sn,v,st\nA,9,Passed\nB,1,Failed\n"
    raw = {
        "columns": {"sn": "sn"},
        "constants": {"pn": "P", "rev": "1"},
        "steps": [{"valueColumn": "v", "high": 5, "statusColumn": "st"}],
    }
    assert [r.result for r in convert(text, raw)] == [Result.PASSED, Result.FAILED]


def test_start_format_and_timezone() -> None:
    text = "sn,when\nA,01.02.2026 09:15:00\n"
    raw = {
        "columns": {"sn": "sn", "start": "when"},
        "constants": {"pn": "P", "rev": "1"},
        "startFormat": "%d.%m.%Y %H:%M:%S",
        "timezone": "Europe/Oslo",
    }
    (report,) = convert(text, raw)
    assert report.start == "2026-02-01T09:15:00.000+01:00"
    assert report.start_utc == "2026-02-01T08:15:00.000Z"
    (fixed,) = convert(text, {**raw, "timezone": "-03:30"})
    assert fixed.start == "2026-02-01T09:15:00.000-03:30"
    (utc,) = convert(text, {**raw, "timezone": "UTC"})
    assert utc.start_utc == "2026-02-01T09:15:00.000Z"


def test_preamble_bom_quotes_and_blank_lines() -> None:
    text = '\ufeffACME tester v2\nexported by someone\nsn,note\n\n"A,1","x"\n\n"B"""\n'
    raw = {
        "skipLines": 2,
        "columns": {"sn": "sn", "miscInfos": {"Note": "note"}},
        "constants": {"pn": "P", "rev": "1"},
    }
    reports = convert(text, raw)
    assert [r.sn for r in reports] == ["A,1", 'B"']
    assert reports[1].misc_infos is None  # empty cell: no misc info


def test_cp1252_encoding() -> None:
    text = "sn,op\nA,S\u00f8ren\n"
    raw = {
        "columns": {"sn": "sn", "operator": "op"},
        "constants": {"pn": "P", "rev": "1"},
        "encoding": "cp1252",
    }
    (report,) = convert(text.encode("cp1252"), raw)
    assert report.uut is not None
    assert report.uut.user == "S\u00f8ren"
    assert "line 2: the file is not valid utf-8" in error(
        text.encode("cp1252"), {**raw, "encoding": "utf-8"}
    )


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        (arguments(bogus=1), "converters.csv.arguments.bogus", "unknown argument"),
        (arguments(mode="rows"), "converters.csv.arguments.mode", "'rows' is not one of"),
        (
            arguments(steps=[{"name": "x"}]),
            "converters.csv.arguments.steps[0].valueColumn",
            "missing",
        ),
        (
            arguments(steps=[{"valueColumn": "a", "low": 1, "lowColumn": "b"}]),
            "converters.csv.arguments.steps[0].lowColumn",
            "not both",
        ),
        (
            arguments(steps=[{"valueColumn": "a", "compOp": "GELE", "low": 1}]),
            "converters.csv.arguments.steps[0].compOp",
            "needs a low and a high",
        ),
        (
            arguments(steps=[{"valueColumn": "a", "compOp": "IGNORECASE"}]),
            "converters.csv.arguments.steps[0].compOp",
            "strings",
        ),
        (
            arguments(steps=[{"valueColumn": "a", "compOp": "GX"}]),
            "converters.csv.arguments.steps[0].compOp",
            "not one of",
        ),
        (
            arguments(steps=[{"valueColumn": "a", "low": "1"}]),
            "converters.csv.arguments.steps[0].low",
            "expected a number",
        ),
        (
            arguments(steps=[{"valueColumn": "a", "oops": 1}]),
            "converters.csv.arguments.steps[0].oops",
            "unknown",
        ),
        (
            arguments(steps={"valueColumn": "a"}),
            "converters.csv.arguments.steps",
            "expected an array",
        ),
        (
            arguments(columns={"sn": "S", "serial": "x"}),
            "converters.csv.arguments.columns.serial",
            "unknown",
        ),
        (arguments(columns={}), "converters.csv.arguments.columns.sn", "required"),
        (
            arguments(constants={"pn": "P", "rev": "A", "sn": "X"}),
            "converters.csv.arguments.constants.sn",
            "also mapped",
        ),
        (
            arguments(constants={"pn": "P", "rev": "A", "processCode": "10"}),
            "converters.csv.arguments.constants.processCode",
            "expected an integer",
        ),
        (arguments(delimiter=";;"), "converters.csv.arguments.delimiter", "one character"),
        (arguments(encoding="klingon"), "converters.csv.arguments.encoding", "unknown"),
        (arguments(encoding="base64"), "converters.csv.arguments.encoding", "not a text"),
        (arguments(timezone="Mars/Base"), "converters.csv.arguments.timezone", "unknown time zone"),
        (arguments(startFormat="%Q"), "converters.csv.arguments.startFormat", "strptime"),
        (arguments(skipLines=-1), "converters.csv.arguments.skipLines", "0 or more"),
        (arguments(decimal=";"), "converters.csv.arguments.decimal", "not one of"),
        (
            arguments(columns={"sn": "S", "miscInfos": {"Board Name": 3}}),
            'converters.csv.arguments.columns.miscInfos."Board Name"',
            "expected a string",
        ),
    ],
)
def test_bad_arguments_name_the_key(raw: dict[str, Any], key: str, fragment: str) -> None:
    exc = config_error(raw)
    assert exc.key == key
    assert fragment in exc.reason
    assert str(exc).startswith(key)


def test_several_bad_arguments_are_counted() -> None:
    exc = config_error(arguments(mode=1, delimiter=2))
    assert "and 1 more" in exc.reason


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("", ("no header row",)),
        (
            "Serial,Date\n",
            (
                "line 1",
                "column 'Operator' (columns.operator) is not in the header",
            ),
        ),
        (WIDE.splitlines()[0] + "\n", ("header row but no data rows",)),
        (WIDE.replace("5.20", "5.2x"), ("line 3, column 'VCC'", "'5.2x' is not a number")),
        (WIDE.replace("SN-2", ""), ("line 3, column 'Serial'", "sn comes from this column")),
        (WIDE.replace("2026-02-01T09:16", "1.2.2026 09:16"), ("line 3, column 'Date'", "ISO 8601")),
        (
            WIDE.replace("2026-02-01T09:16:00+01:00", "0001-01-01T00:00:00+14:00"),
            ("line 3, column 'Date'", "out of range"),
        ),
        (WIDE.replace("0.3,\nSN-3", "0.3,,9\nSN-3"), ("line 3", "9 fields", "has 8")),
        (WIDE.replace("SN-2,", '"SN-2,'), ("not valid CSV",)),
        (WIDE.replace("SN-2", "x" * 101), ("line 3", "sn: must be 1 to 100")),
        (WIDE.replace("5.1,0.3,\nSN-3", "nan,0.3,\nSN-3"), ("line 3, column 'VCC_max'",)),
        (WIDE.replace("Idle,Result", "Idle,Serial"), ("'Serial' (columns.sn) appears twice",)),
    ],
)
def test_bad_files_name_line_and_column(text: str, fragments: tuple[str, ...]) -> None:
    message = error(text)
    for fragment in fragments:
        assert fragment in message


def test_arguments_structured_once_at_load() -> None:
    loaded = load_converter("csv", arguments(), key="converters[1]")
    assert isinstance(loaded.arguments, CsvArguments)
    assert loaded.arguments.steps[1].high == 0.5
    assert loaded.context(STATION).arguments is loaded.arguments
    with pytest.raises(ConfigError) as info:
        load_converter("csv", arguments(mode="x"), key="converters[1]")
    assert info.value.key == "converters[1].arguments.mode"


def test_direct_run_without_arguments_says_what_is_missing() -> None:
    source = Source(Path("a.csv"), b"a\n1\n")
    with pytest.raises(ConversionError, match=r"bad arguments: arguments\.columns\.pn: required"):
        run_converter(CsvConverter(), source, ConversionContext())


# -- real tester layouts: a Key;Value block, then the table (tests/data/equipment/csv) ------

EQUIPMENT = Path(__file__).resolve().parents[1] / "data" / "equipment" / "csv"
FCT_PASSED = EQUIPMENT / "FCT_HU2411290012_20241129_1618.csv"
FCT_FAILED = EQUIPMENT / "FCT_HU2411290013_20241129_1631.csv"
ICT_PASSED = EQUIPMENT / "ICT_4711000123_20200706_054304.txt"
ICT_FAILED = EQUIPMENT / "ICT_4711000124_20200706_054451.txt"

# The two complete examples of docs/converters.md, word for word.
FCT_TOML = """
[[converters]]
name = "csv"
watch = "/srv/results/fct"
patterns = ["FCT_*.csv"]
[converters.arguments]
mode = "file"
delimiter = ";"
decimal = ","
encoding = "latin-1"
startFormat = "%Y.%m.%d. %H:%M"
timezone = "Europe/Budapest"
constants = { rev = "A", processCode = 20 }

[converters.arguments.keys]
sn = "SerialNumber"
pn = "Part Number"
machineName = "Machine ID"
start = "Start Time"
execTime = "Testing time(sec)"
result = "Result"
errorCode = "Error Code"
miscInfos = { MainSerial = "MainSerial", "Part Type" = "Part Type", MES = "MES" }

[[converters.arguments.steps]]
valueColumn = "Value"
nameColumn = "StepName"
lowColumn = "Min"
highColumn = "Max"
unitColumn = "Unit"
statusColumn = "Status"
"""

ICT_TOML = """
[[converters]]
name = "csv"
watch = "/srv/results/ict"
patterns = ["ICT_*.txt"]
[converters.arguments]
mode = "file"
delimiter = "\\t"
keySeparator = "="
startFormat = "%Y%m%d %H:%M:%S"
sectionRows = true
endLine = "END"
resultMap = { "0" = "Passed", "1" = "Failed" }
constants = { rev = "A", processCode = 30 }

[converters.arguments.keys]
sn = "Traceability Number"
pn = "Board Name"
start = "DateTime"
result = "Overall_Status"
operator = "Operator"
fixtureId = "Fixture"
miscInfos = { Program = "Program" }

[[converters.arguments.steps]]
valueColumn = "MeasResult"
nameColumn = "TestStep"
highColumn = "HiLimit"
lowColumn = "LoLimit"
unitColumn = "UOM"
"""


def documented(toml_text: str) -> dict[str, Any]:
    """The arguments of a documented entry, after the whole entry passed the config check."""
    document = tomllib.loads(toml_text)
    parsed = config.parse(document)
    assert parsed.converters[0].name == "csv"
    arguments: dict[str, Any] = document["converters"][0]["arguments"]
    return arguments


FCT_ARGS = documented(FCT_TOML)
ICT_ARGS = documented(ICT_TOML)


def convert_file(path: Path, raw: dict[str, Any], data: bytes | None = None) -> list[Report]:
    loaded = load_converter("csv", raw)
    return loaded.convert(Source(path, path.read_bytes() if data is None else data), STATION)


def numeric(step: Step) -> tuple[object, ...]:
    """(compOp, value, lowLimit, highLimit, unit, status) of a step's one measurement."""
    assert step.numeric_meas is not None, step
    assert len(step.numeric_meas) == 1, step
    m = step.numeric_meas[0]
    return (m.comp_op, m.value, m.low_limit, m.high_limit, m.unit, m.status)


def test_fct_passed_file_field_by_field() -> None:
    (report,) = convert_file(FCT_PASSED, FCT_ARGS)
    assert (report.sn, report.pn, report.rev, report.process_code) == (
        "HU2411290012",
        "40-1187-03",
        "A",
        20,
    )
    assert report.result is Result.PASSED
    assert (report.machine_name, report.location, report.purpose) == (
        "FCT-03",
        "Line 1",
        "Production",
    )
    # The Hungarian date, no seconds, in the configured zone (CET in November).
    assert (report.start, report.start_utc) == (
        "2024-11-29T16:18:00.000+01:00",
        "2024-11-29T15:18:00.000Z",
    )
    assert report.uut is not None
    assert (report.uut.exec_time, report.uut.error_code) == (47.3, 0)
    assert [(m.description, m.text) for m in report.misc_infos or []] == [
        ("MainSerial", "MB-7731-0042"),
        ("Part Type", "T\u00e1pegys\u00e9g vez\u00e9rl\u00f5"),  # Latin-1, decoded as such
        ("MES", "OK"),
    ]
    steps = {s.name: s for s in report.steps()[1:]}
    assert list(steps) == [
        "T\u00e1pfesz\u00fclts\u00e9g 24V",
        "Fesz\u00fclts\u00e9g 5V",
        "Fesz\u00fclts\u00e9g 3V3",
        "\u00c1ramfelv\u00e9tel",
        "Sziv\u00e1rg\u00e1si \u00e1ram",
        "Szigetel\u00e9si ellen\u00e1ll\u00e1s",
        "H\u00f5m\u00e9rs\u00e9klet NTC1",
        "Ventil\u00e1tor fordulat",
    ]
    assert [s.id for s in report.steps()] == list(range(1, 10))
    assert all(s.step_type == "ET_NLT" and s.status is Status.PASSED for s in steps.values())
    # Min;Value;Max in that order, decimal comma.
    assert numeric(steps["T\u00e1pfesz\u00fclts\u00e9g 24V"]) == (
        CompOp.GELE, 24.02, 23.5, 24.5, "V", Status.PASSED
    )  # fmt: skip
    assert numeric(steps["\u00c1ramfelv\u00e9tel"]) == (
        CompOp.GELE, 0.182, 0.1, 0.25, "A", Status.PASSED
    )  # fmt: skip
    # Only Max: LE, its limit in lowLimit (the WATS way); a Latin-1 unit.
    assert numeric(steps["Sziv\u00e1rg\u00e1si \u00e1ram"]) == (
        CompOp.LE, 0.8, 2.0, None, "\u00b5A", Status.PASSED
    )  # fmt: skip
    # Only Min: GE.
    assert numeric(steps["Szigetel\u00e9si ellen\u00e1ll\u00e1s"]) == (
        CompOp.GE, 512.0, 100.0, None, "MOhm", Status.PASSED
    )  # fmt: skip
    assert numeric(steps["H\u00f5m\u00e9rs\u00e9klet NTC1"])[4] == "\u00b0C"
    # No limits: logged, its status as the tester wrote it.
    assert numeric(steps["Ventil\u00e1tor fordulat"]) == (
        CompOp.LOG, 2950.0, None, None, "rpm", Status.PASSED
    )  # fmt: skip
    assert wsjf.loads(wsjf.dumps(report)) == report


def test_fct_failed_run_stops_early() -> None:
    (report,) = convert_file(FCT_FAILED, FCT_ARGS)
    assert (report.sn, report.result, report.start) == (
        "HU2411290013",
        Result.FAILED,
        "2024-11-29T16:31:00.000+01:00",
    )
    assert report.uut is not None
    assert (report.uut.exec_time, report.uut.error_code) == (12.8, 217)
    assert [(s.name, s.status) for s in report.steps()[1:]] == [
        ("T\u00e1pfesz\u00fclts\u00e9g 24V", Status.PASSED),
        ("Fesz\u00fclts\u00e9g 5V", Status.PASSED),
        ("Fesz\u00fclts\u00e9g 3V3", Status.FAILED),  # the last line, no newline after it
    ]
    assert numeric(report.steps()[3]) == (CompOp.GELE, 3.52, 3.2, 3.4, "V", Status.FAILED)
    assert report.root.status is Status.FAILED


def test_fct_verdicts_come_from_the_file_not_from_the_limits() -> None:
    data = FCT_FAILED.read_bytes()
    # The unit's verdict is the Result line, even against a failed step.
    (report,) = convert_file(FCT_FAILED, FCT_ARGS, data.replace(b"Result;Failed", b"Result;Passed"))
    assert report.result is Result.PASSED
    assert report.steps()[3].status is Status.FAILED
    # A step's Status column wins over its limits.
    (report,) = convert_file(FCT_FAILED, FCT_ARGS, data.replace(b"V;Failed", b"V;Passed"))
    assert report.steps()[3].status is Status.PASSED
    assert report.result is Result.FAILED
    # An empty Result: computed from the steps.
    (report,) = convert_file(FCT_FAILED, FCT_ARGS, data.replace(b"Result;Failed", b"Result;"))
    assert report.result is Result.FAILED


def test_ict_export_field_by_field() -> None:
    (report,) = convert_file(ICT_PASSED, ICT_ARGS)
    assert (report.sn, report.pn, report.rev, report.process_code, report.result) == (
        "4711000123",
        "PWR-CTRL-2",
        "A",
        30,
        Result.PASSED,  # Overall_Status = 0, through resultMap
    )
    # Local wall-clock time: the station's offset at that date.
    local = datetime(2020, 7, 6, 5, 43, 4).astimezone()
    assert report.start == local.isoformat(timespec="milliseconds")
    assert report.uut is not None
    assert (report.uut.user, report.uut.fixture_id) == ("nightshift", "FX-118")
    assert [(m.description, m.text) for m in report.misc_infos or []] == [
        ("Program", "PWRCTRL2_ICT_v3.1")
    ]
    sections = report.root.steps or []
    assert [(s.name, s.step_type, [c.name for c in s.steps or []]) for s in sections] == [
        ("pins", "SequenceCall", ["CONTACT_MAX"]),
        ("shorts", "SequenceCall", ["SHORTS_NET12"]),
        ("resistors", "SequenceCall", ["R101", "R102", "R215"]),
        ("capacitors", "SequenceCall", ["C12", "C31"]),
        ("diodes", "SequenceCall", ["D3"]),
        ("power", "SequenceCall", ["+5V", "+3V3", "LEAK_5V"]),
    ]
    assert all(s.status is Status.PASSED for s in sections)
    assert [s.id for s in report.steps()] == list(range(1, 19))  # depth first, file order
    steps = {s.name: s for s in report.steps()}
    # HiLimit before LoLimit in the file; the unit's leading space is not part of it.
    assert numeric(steps["R101"]) == (CompOp.GELE, 10020.0, 9500.0, 10500.0, "Ohm", Status.PASSED)
    assert numeric(steps["C12"]) == (CompOp.GELE, 98.7e-9, 80e-9, 120e-9, "F", Status.PASSED)
    # Only a low limit: GE; only a high limit: LE with its limit in lowLimit.
    assert numeric(steps["SHORTS_NET12"]) == (CompOp.GE, 1520.0, 1000.0, None, "Ohm", Status.PASSED)
    assert numeric(steps["LEAK_5V"]) == (CompOp.LE, 0.8, 2.0, None, "uA", Status.PASSED)
    assert "END" not in steps
    assert not any("Overall" in name for name in steps)


def test_ict_failed_export_and_the_verdict_from_overall_status() -> None:
    (report,) = convert_file(ICT_FAILED, ICT_ARGS)
    assert (report.sn, report.pn, report.result) == ("4711000124", "PWR-CTRL-2", Result.FAILED)
    local = datetime(2020, 7, 6, 5, 44, 51).astimezone()
    assert report.start == local.isoformat(timespec="milliseconds")
    assert report.start_utc == local.astimezone(UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )
    steps = {s.name: s for s in report.steps()}
    assert numeric(steps["R102"]) == (CompOp.GELE, 112.4, 95.0, 105.0, "Ohm", Status.FAILED)
    assert steps["resistors"].status is Status.FAILED
    assert steps["capacitors"].status is Status.PASSED
    # Overall_Status says pass: the unit passed, whatever the steps say.
    data = ICT_FAILED.read_bytes().replace(b"Overall_Status = 1", b"Overall_Status = 0")
    (report,) = convert_file(ICT_FAILED, ICT_ARGS, data)
    assert report.result is Result.PASSED
    # The footer line is a key too (its own '=' inside the key is kept).
    raw = {**ICT_ARGS, "keys": {**ICT_ARGS["keys"], "result": "Overall Status (Pass=0,Fail=1)"}}
    (report,) = convert_file(ICT_FAILED, raw)
    assert report.result is Result.FAILED


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        (FCT_PASSED, FCT_ARGS),
        (FCT_FAILED, FCT_ARGS),
        (ICT_PASSED, ICT_ARGS),
        (ICT_FAILED, ICT_ARGS),
    ],
)
def test_line_ends_and_a_missing_final_newline_change_nothing(
    path: Path, raw: dict[str, Any]
) -> None:
    data = path.read_bytes()
    lf = data.replace(b"\r\n", b"\n")
    variants = [data, lf, lf.replace(b"\n", b"\r\n"), lf.rstrip(b"\n"), lf + b"\n\n"]
    dumped = set()
    for variant in variants:
        (report,) = convert_file(path, raw, variant)
        dumped.add(wsjf.dumps(attrs.evolve(report, id="0")))
    assert len(dumped) == 1


@pytest.mark.parametrize(
    ("path", "raw", "change", "fragments"),
    [
        (ICT_PASSED, ICT_ARGS, (b"END\n", b""), ("line 26", "ends without its 'END' line")),
        (
            ICT_PASSED,
            ICT_ARGS,
            (b"C31\t4.51E-6", b"C31\t4.51E-"),
            ("line 19, column 'MeasResult'", "not a number"),
        ),
        (
            ICT_PASSED,
            ICT_ARGS,
            (b"Overall_Status = 0", b"Overall_Status = 2"),
            (
                "line 7, key 'Overall_Status'",
                "'2' is neither in resultMap ('0', '1') nor a status word",
            ),
        ),
        (
            ICT_PASSED,
            ICT_ARGS,
            (b"Traceability Number = 4711000123\n", b""),
            ("the file has no line with the key 'Traceability Number' (keys.sn)",),
        ),
        (
            ICT_PASSED,
            ICT_ARGS,
            (b"Traceability Number = 4711000123", b"Traceability Number ="),
            ("line 1, key 'Traceability Number'", "empty, but sn comes from this key"),
        ),
        (
            ICT_PASSED,
            ICT_ARGS,
            (b"DateTime = 20200706 05:43:04", b"DateTime = 2020-07-06 05:43"),
            ("line 4, key 'DateTime'", "does not match %Y%m%d %H:%M:%S"),
        ),
        (
            ICT_PASSED,
            ICT_ARGS,
            (b"TestStep\tMeasResult", b"TestStep\tMeasured"),
            (
                "no table header row: none of its 27 lines holds every mapped column "
                "('HiLimit', 'LoLimit', 'MeasResult', 'TestStep', 'UOM')",
            ),
        ),
        (
            FCT_PASSED,
            FCT_ARGS,
            (b"Testing time(sec);47,3", b"Testing time(sec);47.3s"),
            ("line 8, key 'Testing time(sec)'", "'47.3s' is not a number"),
        ),
        (
            FCT_PASSED,
            FCT_ARGS,
            (b"Error Code;0", b"Error Code;E17"),
            ("line 10, key 'Error Code'", "'E17' is not an integer"),
        ),
        (
            FCT_PASSED,
            FCT_ARGS,
            (b"V;Passed\r\nFesz", b"V;Fine\r\nFesz"),
            ("line 12, column 'Status'", "'Fine' is not a status"),
        ),
        (FCT_PASSED, FCT_ARGS, (b"\xc1ram", b"\xc1ram;1;2;3;4;5;6"), ("line 15", "12 fields")),
    ],
)  # fmt: skip
def test_bad_tester_files_name_the_line_and_the_column_or_key(
    path: Path, raw: dict[str, Any], change: tuple[bytes, bytes], fragments: tuple[str, ...]
) -> None:
    data = path.read_bytes()
    assert change[0] in data
    message = error(data.replace(*change), raw)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_a_file_of_another_format_is_refused_in_one_line() -> None:
    spea = b"FORMAT;mmdd\nSTART;Programme;23462-TS;1.0.2\nANL;1;ADA;1;1;x;;PASS;0;0;0;;;1\n"
    message = error(spea, FCT_ARGS)
    assert "no table header row: none of its 3 lines holds every mapped column" in message
    assert "\n" not in message


def test_status_and_result_maps() -> None:
    text = "Unit = U-1\nVerdict = NOK\nName;Meas;Res\nA;1;0\nB;2;NOK\nC;3;1\n"
    raw = {
        "mode": "file",
        "delimiter": ";",
        "keySeparator": "=",
        "keys": {"sn": "Unit", "result": "Verdict"},
        "constants": {"pn": "P", "rev": "1"},
        "resultMap": {"OK": "Passed", "nok": "Failed"},
        "statusMap": {"0": "Passed", "1": "Failed", "NOK": "Error"},
        "steps": [{"valueColumn": "Meas", "nameColumn": "Name", "statusColumn": "Res"}],
    }
    (report,) = convert(text, raw)
    assert report.result is Result.FAILED  # 'NOK' in any case
    assert [(s.name, s.status) for s in report.steps()[1:]] == [
        ("A", Status.PASSED),
        ("B", Status.ERROR),
        ("C", Status.FAILED),
    ]
    # Words still work beside the map.
    (report,) = convert(text.replace("Verdict = NOK", "Verdict = Terminated"), raw)
    assert report.result is Result.TERMINATED


def test_a_key_block_before_a_wide_table_one_report_per_row() -> None:
    text = "Station;ICT-7\nOperator;ola\n\nSerial;VCC\nA1;5.0\nA2;5.3\n"
    raw = {
        "delimiter": ";",
        "keys": {"operator": "Operator", "machineName": "Station"},
        "columns": {"sn": "Serial"},
        "constants": {"pn": "P", "rev": "1"},
        "steps": [{"valueColumn": "VCC", "low": 4.9, "high": 5.1}],
    }
    reports = convert(text, raw)
    assert [(r.sn, r.machine_name, r.result) for r in reports] == [
        ("A1", "ICT-7", Result.PASSED),
        ("A2", "ICT-7", Result.FAILED),
    ]
    assert all(r.uut is not None and r.uut.user == "ola" for r in reports)


def test_a_file_of_keys_only() -> None:
    text = "Serial = S-1\nPart = P-9\nStatus = Failed\n"
    raw = {
        "mode": "file",
        "keySeparator": "=",
        "keys": {"sn": "Serial", "pn": "Part", "result": "Status"},
        "constants": {"rev": "1"},
    }
    (report,) = convert(text, raw)
    assert (report.sn, report.pn, report.result, report.steps()[1:]) == (
        "S-1",
        "P-9",
        Result.FAILED,
        [],
    )


def test_encodings_auto_and_a_byte_order_mark_wins() -> None:
    latin = FCT_PASSED.read_bytes()
    expected = wsjf.dumps(attrs.evolve(convert_file(FCT_PASSED, FCT_ARGS)[0], id="0"))
    for data, encoding in (
        (latin, "auto"),  # not UTF-8: read as cp1252, which agrees with Latin-1 here
        (latin.decode("latin-1").encode("utf-8"), "auto"),
        (codecs.BOM_UTF16_LE + latin.decode("latin-1").encode("utf-16-le"), "latin-1"),
        (codecs.BOM_UTF8 + latin.decode("latin-1").encode("utf-8"), "latin-1"),
    ):
        (report,) = convert_file(FCT_PASSED, {**FCT_ARGS, "encoding": encoding}, data)
        assert wsjf.dumps(attrs.evolve(report, id="0")) == expected, encoding


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        (
            {**FCT_ARGS, "columns": {"sn": "Serial"}},
            "converters.csv.arguments.keys.sn",
            "also mapped as columns.sn",
        ),
        (
            {**FCT_ARGS, "constants": {"rev": "A", "pn": "X"}},
            "converters.csv.arguments.constants.pn",
            "also mapped as keys.pn",
        ),
        (
            {**ICT_ARGS, "resultMap": {"0": "Good"}},
            "converters.csv.arguments.resultMap.0",
            "'Good' is not a status",
        ),
        (
            {**ICT_ARGS, "resultMap": {"0": "Skipped"}},
            "converters.csv.arguments.resultMap.0",
            "not a report result",
        ),
        (
            {**ICT_ARGS, "statusMap": {" ": "Passed"}},
            'converters.csv.arguments.statusMap." "',
            "empty",
        ),
        ({**ICT_ARGS, "mode": "row"}, "converters.csv.arguments.sectionRows", 'mode = "file"'),
        ({**ICT_ARGS, "keySeparator": " "}, "converters.csv.arguments.keySeparator", "visible"),
        ({**ICT_ARGS, "endLine": ""}, "converters.csv.arguments.endLine", "empty"),
        (
            {**ICT_ARGS, "keys": {"sn": "S", "pn": "P", "bogus": "x"}},
            "converters.csv.arguments.keys.bogus",
            "unknown",
        ),
        ({**FCT_ARGS, "encoding": "latin-9x"}, "converters.csv.arguments.encoding", "unknown"),
    ],
)  # fmt: skip
def test_bad_key_block_arguments_name_the_key(raw: dict[str, Any], key: str, fragment: str) -> None:
    exc = config_error(raw)
    assert exc.key == key
    assert fragment in exc.reason, exc.reason


FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TESTER_FILES = [
    (FCT_PASSED, FCT_ARGS),
    (FCT_FAILED, FCT_ARGS),
    (ICT_PASSED, ICT_ARGS),
    (ICT_FAILED, ICT_ARGS),
]
LOADED = [(path.read_bytes(), load_converter("csv", raw)) for path, raw in TESTER_FILES]


def damaged(draw: st.DrawFn) -> tuple[bytes, LoadedConverter]:
    data, loaded = draw(st.sampled_from(LOADED))
    kind = draw(st.sampled_from(["cut", "flip", "bytes", "splice"]))
    if kind == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    elif kind == "bytes":
        data = draw(st.binary(max_size=400))
    else:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=40)) + data[at:]
    return data, loaded


@FUZZ
@given(case=st.composite(damaged)())
def test_damaged_tester_files_give_only_a_clear_conversion_error(
    case: tuple[bytes, LoadedConverter],
) -> None:
    data, loaded = case
    failure: ConversionError | None = None
    try:
        reports = loaded.convert(Source(Path("x.csv"), data), STATION)
    except ConversionError as exc:
        failure, reports = exc, []
    if failure is not None:
        assert failure.converter == "csv"
        assert "crashed" not in str(failure), str(failure)
        assert "\n" not in str(failure), str(failure)
    for report in reports:
        assert wsjf.loads(wsjf.dumps(report)) == report


def test_a_large_tester_file_takes_linear_time() -> None:
    # Throughput is measured by the benchmark; here only that time grows with the size
    # (no quadratic step), which holds on a loaded machine too.
    head, _, table = FCT_PASSED.read_bytes().partition(b"StepName;")
    header_row, _, rows = table.partition(b"\r\n")
    loaded = load_converter("csv", FCT_ARGS)

    def seconds(copies: int) -> float:
        data = head + b"StepName;" + header_row + b"\r\n" + rows * copies
        best = float("inf")
        for _ in range(2):
            began = time.process_time()
            (report,) = loaded.convert(Source(FCT_PASSED, data), STATION)
            best = min(best, time.process_time() - began)
        assert len(report.steps()) == 8 * copies + 1
        return best

    small, large = seconds(500), seconds(4000)
    assert large < 16 * small + 0.2, (small, large)  # 8 times the rows: not 64 times the time


def test_short_rows_lack_their_last_cells() -> None:
    # A row may stop before the header's last columns: the cells it lacks are empty.
    text = "Name;Value;Low;High;Unit;Status\nA;5;4;6;V;Passed\nB;5;4\nC;7;4;6\nD\n"
    raw = {
        "mode": "file",
        "delimiter": ";",
        "constants": {"pn": "P", "sn": "S", "rev": "1"},
        "steps": [
            {
                "valueColumn": "Value",
                "nameColumn": "Name",
                "lowColumn": "Low",
                "highColumn": "High",
                "unitColumn": "Unit",
                "statusColumn": "Status",
            }
        ],
    }
    (report,) = convert(text, raw)
    steps = report.steps()[1:]
    assert [(s.name, s.status) for s in steps] == [
        ("A", Status.PASSED),
        ("B", Status.PASSED),
        ("C", Status.FAILED),
        ("D", Status.SKIPPED),
    ]
    b_meas = steps[1].numeric_meas
    assert b_meas is not None
    assert (b_meas[0].comp_op, b_meas[0].low_limit, b_meas[0].unit) == (CompOp.GE, 4.0, None)
    assert steps[3].numeric_meas is None


def test_status_texts_repeated_row_after_row() -> None:
    # Each status text means the same on every row, in any case; a bad one is still
    # refused at its own line, after the same text was fine on others.
    rows = ["OK", "ok", "0", "1", "Passed", "0", "OK", "1", "FAIL"]
    text = "Name;Meas;Res\n" + "".join(f"S{n};{n};{r}\n" for n, r in enumerate(rows))
    raw = {
        "mode": "file",
        "delimiter": ";",
        "constants": {"pn": "P", "sn": "S", "rev": "1"},
        "statusMap": {"0": "Passed", "1": "Failed", "ok": "Error"},
        "steps": [{"valueColumn": "Meas", "nameColumn": "Name", "statusColumn": "Res"}],
    }
    (report,) = convert(text, raw)
    words = {"OK": Status.ERROR, "ok": Status.ERROR, "0": Status.PASSED, "1": Status.FAILED}
    words |= {"Passed": Status.PASSED, "FAIL": Status.FAILED}
    assert [s.status for s in report.steps()[1:]] == [words[r] for r in rows]
    message = error(text + "S9;9;maybe\nS10;10;OK\n", raw)
    assert "line 11, column 'Res'" in message
    assert "'maybe'" in message


def test_an_empty_required_cell_names_its_line_and_column() -> None:
    text = WIDE.replace("SN-2,", ",")
    assert "line 3, column 'Serial': empty, but sn comes from this column" in error(text)
