"""Codes in another case than the documentation's (issue 12, item 9): never stricter than
the server. Real exports spell some codes otherwise (TestStand's ``IgnoreCase``); the
server reads codes in any case, so a report it wrote (or would take) is accepted, its
codes mean what they say, and it is written back with each code spelled as it was.

The documents here are the real WATS exports of ``tests/data`` with codes respelled.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import attrs
import pytest

from pywats.converters import ConversionContext, Source, run_converter
from pywats.converters.wsjf import WsjfConverter
from pywats.errors import ReportValidationError
from pywats.report import CompOp, ReportType, Result, Status, StepGroup, wsjf, wsxf
from tests.report.test_wsjf import same_json
from tests.report.test_wsxf import EXCLUDED, without

DATA = Path(__file__).parent.parent / "data"
EXPORT = (DATA / "uut-wsjf-export.json").read_bytes()
REPAIR = (DATA / "uur_example.json").read_bytes()
XML = (DATA / "uut-wsxf-export.xml").read_bytes()

#: WSJF key and code -> another spelling of the same code (each seen or plausible in the
#: wild: TestStand names its string comparisons in mixed case).
RESPELLED = {
    ("compOp", "IGNORECASE"): "IgnoreCase",
    ("compOp", "CASESENSIT"): "CaseSensit",
    ("compOp", "GELE"): "gele",
    ("compOp", "LOG"): "Log",
    ("status", "P"): "p",
    ("status", "F"): "f",
    ("status", "D"): "d",
    ("group", "M"): "m",
    ("result", "F"): "f",
    ("type", "T"): "t",
}


def respell(data: bytes, table: dict[tuple[str, str], str] = RESPELLED) -> bytes:
    """``data`` with every ``"key": "CODE"`` of the table spelled the other way."""
    text = data.decode()
    for (key, code), other in table.items():
        pattern = re.compile(rf'("{key}"\s*:\s*)"{code}"')
        text, count = pattern.subn(rf'\1"{other}"', text)
        assert count, f"{key}={code} is not in the export"
    return text.encode()


def test_the_export_respelled_is_accepted_and_means_the_same() -> None:
    original = wsjf.loads(EXPORT)
    report = wsjf.loads(respell(EXPORT))  # shape and WSJF rules
    assert report.type is ReportType.UUT
    assert report.result is Result.FAILED
    steps, steps_before = report.steps(), original.steps()
    assert [s.status for s in steps] == [s.status for s in steps_before]
    assert {s.group for s in steps} == {StepGroup.MAIN}
    strings = [m for s in steps for m in s.string_meas or []]
    assert {m.comp_op for m in strings} >= {CompOp.IGNORECASE, CompOp.CASESENSIT}
    # The codes are the codes: an IgnoreCase comparison compares without case.
    assert CompOp.IGNORECASE in {m.comp_op for m in strings}
    assert all(
        m.comp_op.evaluate_string(m.value, m.limit) == (m.status is Status.PASSED)
        for m in strings
        if m.comp_op is CompOp.IGNORECASE and m.value is not None and m.limit is not None
    )


@pytest.mark.parametrize(
    "data",
    [EXPORT, REPAIR],
    ids=["uut-wsjf-export.json", "uur_example.json"],
)
def test_respelled_codes_round_trip_byte_for_byte(data: bytes) -> None:
    table = RESPELLED if data is EXPORT else {("type", "R"): "r", ("result", "P"): "p"}
    respelled = respell(data, table)
    out = wsjf.dumps(wsjf.loads(respelled))
    same_json(json.loads(out), json.loads(respelled))
    # Each spelling written exactly as read, as many times as the file has it.
    for (key, _), other in table.items():
        needle = f'"{key}":"{other}"'.encode()
        assert out.count(needle) == respelled.replace(b'": "', b'":"').count(needle)


def test_a_changed_code_is_written_the_wsjf_way() -> None:
    report = wsjf.loads(respell(EXPORT))
    assert json.loads(wsjf.dumps(report))["result"] == "f"
    passed = attrs.evolve(report, result=Result.PASSED)
    assert json.loads(wsjf.dumps(passed))["result"] == "P"


def test_the_wsjf_converter_takes_a_respelled_export() -> None:
    respelled = respell(EXPORT)
    (report,) = run_converter(
        WsjfConverter(), Source(Path("a.json"), respelled), ConversionContext()
    )
    same_json(json.loads(wsjf.dumps(report)), json.loads(respelled))


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [
        # str.upper() turns these into ASCII letters; no server reads them as codes.
        ("status", "\u017f", "is not a status code"),  # long s -> "S"
        ("result", "\u0131", "is not a report result code"),  # dotless i
        ("status", "Passed", "is not a status code"),  # a WSXF word is not a WSJF code
    ],
)
def test_look_alikes_are_still_refused(key: str, text: str, message: str) -> None:
    doc = json.loads(EXPORT)
    if key == "status":
        doc["root"]["steps"][0]["status"] = text
    else:
        doc[key] = text
    with pytest.raises(ReportValidationError, match=message):
        wsjf.loads_obj(doc)


def test_wsxf_words_and_operators_in_any_case() -> None:
    text = XML.decode()
    text = text.replace('Status="Passed"', 'Status="PASSED"')
    text = text.replace('Status="Failed"', 'Status="failed"')
    text = text.replace('Group="Main"', 'Group="MAIN"')
    text = text.replace('Result="Failed"', 'Result="FAILED"')
    text = text.replace('CompOperator="IGNORECASE"', 'CompOperator="IgnoreCase"')
    text = re.sub(r'type="UUT"', 'type="uut"', text, count=1)
    parsed = json.loads(wsjf.dumps(wsxf.parse_one(text.encode())))
    same_json(without(parsed, EXCLUDED), without(json.loads(EXPORT), EXCLUDED))
