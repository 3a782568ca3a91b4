"""The ``csv`` converter: column mapping from the config, one report per row or per file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pywats.converters import (
    ConversionContext,
    Source,
    StationDefaults,
    load_converter,
    run_converter,
)
from pywats.converters.csv import CsvArguments, CsvConverter
from pywats.errors import ConfigError, ConversionError
from pywats.report import CompOp, Report, Result, Status, wsjf

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
