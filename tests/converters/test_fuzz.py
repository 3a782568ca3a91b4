"""Fuzzing the built-in parsers: whatever the bytes, only a clear ConversionError escapes.

Each parser (wsjf, wstf, csv; wsxf is fuzzed with the report model) gets arbitrary bytes,
arbitrary text, and valid files with random damage. The converter must either return
reports that are valid WSJF, or raise an error it wrote itself: a "converter crashed"
message means an exception slipped through that the converter should have turned into a
message naming the line, column or field.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywats.converters import LoadedConverter, Source, StationDefaults, load_converter
from pywats.errors import ConversionError
from pywats.report import wsjf
from tests.report import minimal

STATION = StationDefaults(machine_name="ST-1", location="Line 1", purpose="Production")
# PYWATS_FUZZ_EXAMPLES=5000 for a long run; the default keeps the suite fast.
FUZZ = settings(
    max_examples=int(os.environ.get("PYWATS_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

WSTF_SAMPLE = (
    "--Header-Start--\nSerialNumber\tSN-1\nPartNumber\tPCBA-100\nRevision\tA\n"
    "StartDateTime\t2026-02-01T09:15:00+01:00\nOperatorName\tola\nFirmware\t1.2.3\n"
    "Subunit\tPSU\tPSU-1\tP-77\tB\nOperationTypeCode\t20\n--Step-Data-Start--\n"
    "StepType\tStepName\tMeasureName\tValue\tLowLimit\tHighLimit\tCompOperator\tUnit\tStatus"
    "\tExecutionTime\tReportText\tErrorCode\tErrorMessage\n"
    "SequenceCall\tPower\n"
    "NumericLimitTest\tVCC\t\t5.02\t4.9\t5.1\tGELE\tV\n"
    "MultipleNumericLimitTest\tRails\t3V3\t3.31\t3.2\t3.4\t\tV\n"
    "MultipleNumericLimitTest\t\t1V8\t1.8\t1.75\t1.85\t\tV\n"
    "EndSequenceCall\n"
    "PassFailTest\tLED\t\tTrue\n"
    "StringValueTest\tFW\t\t1.2.3\t1.2.3\n"
    "ActionStep\tBeep\t\t\t\t\t\t\tPassed\t0.5\tnote\t0\tnone\n"
    "--Step-Data-End--\nUUTStatus\tPassed\nExecutionTime\t12.5\n--UUT-End--\n"
)

CSV_SAMPLE = (
    "Serial,Date,Operator,VCC,VCC_min,VCC_max,Idle,Result\n"
    "SN-1,2026-02-01T09:15:00+01:00,ola,5.02,4.9,5.1,0.3,Passed\n"
    'SN-2,2026-02-01T09:16:00+01:00,"kari, k",5.20,4.9,5.1,0.3,\n'
)

CSV_ARGUMENTS: dict[str, Any] = {
    "columns": {
        "sn": "Serial",
        "start": "Date",
        "operator": "Operator",
        "result": "Result",
        "miscInfos": {"Who": "Operator"},
    },
    "constants": {"pn": "PCBA-100", "rev": "A"},
    "steps": [
        {"valueColumn": "VCC", "lowColumn": "VCC_min", "highColumn": "VCC_max", "unit": "V"},
        {"valueColumn": "Idle", "high": 0.5, "statusColumn": "Result"},
        {"valueColumn": "VCC_min", "nameColumn": "Operator", "compOp": "GE", "low": 1},
    ],
}

CONVERTERS = {
    "wsjf": load_converter("wsjf"),
    "wstf": load_converter("wstf"),
    "wstf-cp1252": load_converter("wstf", {"encoding": "cp1252"}),
    "csv": load_converter("csv", CSV_ARGUMENTS),
    "csv-file": load_converter("csv", {**CSV_ARGUMENTS, "mode": "file"}),
    "csv-semicolon": load_converter(
        "csv", {**CSV_ARGUMENTS, "delimiter": ";", "decimal": ",", "skipLines": 1}
    ),
}


def check(loaded: LoadedConverter, data: bytes | Source) -> None:
    """The converter returns valid reports or raises its own clear ConversionError (one
    line). ``data`` is the file's bytes, or a whole Source (a path, companions)."""
    source = data if isinstance(data, Source) else Source(Path("input"), data)
    failure: ConversionError | None = None
    try:
        reports = loaded.convert(source, STATION)
    except ConversionError as exc:
        failure = exc
        reports = []
    if failure is not None:
        assert failure.converter == loaded.name
        assert "converter crashed" not in str(failure), str(failure)
        assert "must return a list" not in str(failure)
        assert "\n" not in str(failure)
    for report in reports:
        # The WSJF it becomes is valid and reads back to the same report.
        assert wsjf.loads(wsjf.dumps(report)) == report


# --- Strategies -----------------------------------------------------------------------------

_INTERESTING = [
    "",
    " ",
    "\t",
    "0",
    "-1",
    "1e999",
    "-1e308",
    "nan",
    "inf",
    "1_0",
    "\u0661",
    "9" * 30,
    "5,5",
    "GELE",
    "LE",
    "LT",
    "LOG",
    "EQ",
    "CASESENSIT",
    "Passed",
    "Failed",
    "Skipped",
    "Done",
    "Error",
    "Terminated",
    "True",
    "False",
    "SequenceCall",
    "EndSequenceCall",
    "NumericLimitTest",
    "MultipleNumericLimitTest",
    "PassFailTest",
    "StringValueTest",
    "ActionStep",
    "Chart",
    "--Header-Start--",
    "--Step-Data-Start--",
    "--Step-Data-End--",
    "--UUT-End--",
    "SerialNumber",
    "Subunit",
    "UUTStatus",
    "StartDateTime",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59",
    "2026-02-01",
    "2026-W05-1T10:00Z",
    "2147483648",
    "-2147483648",
    "x" * 101,
    '"',
    "\ud800",
    "\x00",
    "\r",
    "\u212a",  # the Kelvin sign, which case-folds to "k" (see test_case_folding.py)
    "\u017f",  # the long s, which folds to "s"
    "Pa\u017f\u017fed",
]

cell = st.one_of(st.sampled_from(_INTERESTING), st.text(max_size=12))


@st.composite
def mutated(draw: st.DrawFn, sample: str, separator: str) -> str:
    """``sample`` with a few random edits: cells replaced, lines dropped, duplicated, cut."""
    lines = sample.split("\n")
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines = [""]
        index = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["cell", "drop", "dup", "insert", "cut", "swap"]))
        if action == "cell":
            cells = lines[index].split(separator)
            at = draw(st.integers(0, len(cells)))
            if at == len(cells):
                cells.append(draw(cell))
            else:
                cells[at] = draw(cell)
            lines[index] = separator.join(cells)
        elif action == "drop":
            del lines[index]
        elif action == "dup":
            lines[index:index] = [lines[index]] * draw(st.integers(1, 3))
        elif action == "insert":
            lines.insert(index, separator.join(draw(st.lists(cell, max_size=14))))
        elif action == "cut":
            lines[index] = lines[index][: draw(st.integers(0, len(lines[index])))]
        else:
            other = draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
    return "\n".join(lines)


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


# --- wsjf -----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(_INTERESTING),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out.extend(_paths(value, (*prefix, index)))
    return out


@st.composite
def mutated_wsjf(draw: st.DrawFn) -> Any:
    document: Any = draw(st.sampled_from([minimal.uut, minimal.uur]))()
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(document)[1:]))
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return document


@FUZZ
@given(st.binary(max_size=300))
def test_wsjf_arbitrary_bytes(data: bytes) -> None:
    check(CONVERTERS["wsjf"], data)


@FUZZ
@given(json_values)
def test_wsjf_arbitrary_json(document: Any) -> None:
    check(CONVERTERS["wsjf"], json.dumps(document).encode("utf-8", "surrogatepass"))


@FUZZ
@given(mutated_wsjf(), st.booleans())
def test_wsjf_mutated_reports(document: Any, as_list: bool) -> None:
    payload = [document, minimal.uut()] if as_list else document
    check(CONVERTERS["wsjf"], json.dumps(payload).encode("utf-8", "surrogatepass"))


def test_wsjf_pathological_documents() -> None:
    for data in (b"[" * 100_000, b'{"processCode": ' + b"9" * 5000 + b"}", b"1e999", b"[1]"):
        check(CONVERTERS["wsjf"], data)


# --- wstf -----------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["wstf", "wstf-cp1252"]))
def test_wstf_arbitrary_bytes(data: bytes, name: str) -> None:
    check(CONVERTERS[name], data)


@FUZZ
@given(st.text(max_size=300))
def test_wstf_arbitrary_text(text: str) -> None:
    check(CONVERTERS["wstf"], encode(text))


@FUZZ
@given(mutated(WSTF_SAMPLE, "\t"))
def test_wstf_mutated_files(text: str) -> None:
    check(CONVERTERS["wstf"], encode(text))


@FUZZ
@given(st.lists(st.lists(cell, min_size=1, max_size=14), max_size=12))
def test_wstf_random_step_rows(rows: list[list[str]]) -> None:
    head, tail = WSTF_SAMPLE.split("SequenceCall\tPower\n", 1)
    body = "".join("\t".join(r) + "\n" for r in rows)
    check(CONVERTERS["wstf"], encode(head + body + tail))


_WSTF_KEYS = [
    "SerialNumber",
    "PartNumber",
    "Revision",
    "OperationTypeCode",
    "OperationTypeName",
    "StationName",
    "Location",
    "Purpose",
    "OperatorName",
    "SoftwareName",
    "SoftwareVersion",
    "BatchSerialNumber",
    "Comment",
    "FixtureId",
    "UUTStatus",
    "ErrorCode",
    "ErrorMessage",
    "StartDateTime",
    "UTCStartDateTime",
    "ExecutionTime",
    "TestSocketIndex",
    "Subunit",
]


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(_WSTF_KEYS) | st.text(max_size=8), st.lists(cell, max_size=5)),
        max_size=6,
    ),
    st.booleans(),
)
def test_wstf_random_header_values(items: list[tuple[str, list[str]]], footer: bool) -> None:
    lines = "".join("\t".join([key, *values]) + "\n" for key, values in items)
    if footer:
        text = WSTF_SAMPLE.replace("UUTStatus\tPassed\n", lines)
    else:
        text = WSTF_SAMPLE.replace("Revision\tA\n", "Revision\tA\n" + lines)
    check(CONVERTERS["wstf"], encode(text))


def test_wstf_sample_is_valid() -> None:
    reports = CONVERTERS["wstf"].convert(Source(Path("a.txt"), WSTF_SAMPLE.encode()), STATION)
    assert len(reports) == 1


# --- csv ------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["csv", "csv-file", "csv-semicolon"]))
def test_csv_arbitrary_bytes(data: bytes, name: str) -> None:
    check(CONVERTERS[name], data)


@FUZZ
@given(st.text(max_size=300), st.sampled_from(["csv", "csv-file", "csv-semicolon"]))
def test_csv_arbitrary_text(text: str, name: str) -> None:
    check(CONVERTERS[name], encode(text))


@FUZZ
@given(mutated(CSV_SAMPLE, ","), st.sampled_from(["csv", "csv-file"]))
def test_csv_mutated_files(text: str, name: str) -> None:
    check(CONVERTERS[name], encode(text))


@FUZZ
@given(st.lists(st.lists(cell, min_size=1, max_size=9), max_size=6))
def test_csv_random_rows(rows: list[list[str]]) -> None:
    header = CSV_SAMPLE.split("\n", 1)[0]
    body = "".join(",".join(r) + "\n" for r in rows)
    check(CONVERTERS["csv"], encode(f"{header}\n{body}"))
    check(CONVERTERS["csv-semicolon"], encode(f"junk\n{header.replace(',', ';')}\n{body}"))


@FUZZ
@given(st.lists(cell, min_size=8, max_size=8), st.sampled_from(["csv", "csv-file"]))
def test_csv_random_values_in_every_column(values: list[str], name: str) -> None:
    header = CSV_SAMPLE.split("\n", 1)[0]
    row = ",".join('"' + v.replace('"', '""') + '"' for v in values)
    check(CONVERTERS[name], encode(f"{header}\n{row}\n"))


def test_csv_sample_is_valid() -> None:
    reports = CONVERTERS["csv"].convert(Source(Path("a.csv"), CSV_SAMPLE.encode()), STATION)
    assert len(reports) == 2
