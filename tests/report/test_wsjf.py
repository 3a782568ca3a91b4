"""WSJF wire format: lossless round trip of the real server exports, strict types, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from pywats.errors import MalformedInputError, ReportValidationError
from pywats.report import CompOp, ReportType, Result, Status, StepKind, wsjf
from tests.report.minimal import uut

DATA = Path(__file__).parent.parent / "data"
EXPORTS = sorted(DATA.glob("*.json"))


def same_json(a: Any, b: Any, path: str = "$") -> None:
    """Deep equality that also tells int from float and bool from int, and says where."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b) or set(a) == set(b), f"{path}: keys {set(a) ^ set(b)}"
        for key in a:
            same_json(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same_json(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_reference_files_are_there() -> None:
    assert {p.name for p in EXPORTS} >= {"uut-wsjf-export.json", "uur_example.json"}


@pytest.mark.parametrize("path", EXPORTS, ids=lambda p: p.name)
def test_round_trip_is_lossless(path: Path) -> None:
    raw = path.read_bytes()
    report = wsjf.loads(raw)
    same_json(json.loads(wsjf.dumps(report)), json.loads(raw))


def test_export_reads_into_the_model() -> None:
    report = wsjf.loads((DATA / "uut-wsjf-export.json").read_bytes())
    assert report.type is ReportType.UUT
    assert report.result is Result.FAILED
    assert report.start == "2026-01-30T22:01:41.4707353+01:00"  # seven digits kept
    assert report.start_datetime().utcoffset() is not None
    assert report.uut is not None
    assert report.uut.step_id_caused_uut_failure == 5
    steps = report.steps()
    assert [s.id for s in steps] == sorted(s.id for s in steps if s.id is not None)
    kinds = {s.kind for s in steps}
    assert {
        StepKind.SEQUENCE_CALL,
        StepKind.NUMERIC_LIMIT,
        StepKind.MULTI_NUMERIC_LIMIT,
        StepKind.PASS_FAIL,
        StepKind.MULTI_PASS_FAIL,
        StepKind.STRING_VALUE,
        StepKind.MULTI_STRING_VALUE,
        StepKind.CALL_EXE,
        StepKind.MESSAGE_POPUP,
        StepKind.ACTION,
    } <= kinds


def test_every_numeric_status_in_the_export_matches_the_operator() -> None:
    """The server's own pass/fail cases for every operator agree with CompOp.evaluate."""
    report = wsjf.loads((DATA / "uut-wsjf-export.json").read_bytes())
    checked = set()
    for step in report.steps():
        for m in step.numeric_meas or []:
            assert m.comp_op is not None
            expected = Status.PASSED if m.evaluate() else Status.FAILED
            assert m.status is expected, (step.id, step.name, m)
            checked.add(m.comp_op)
    numeric_ops = {op for op in CompOp if op.is_numeric}
    assert checked == numeric_ops


def test_unknown_keys_and_nulls_survive() -> None:
    doc = uut()
    doc["vendorField"] = {"nested": [1, 2.5, None, "x"]}
    doc["root"]["steps"][0]["numericMeas"][0]["futureKey"] = True
    doc["uut"]["comment"] = None
    report = wsjf.loads(json.dumps(doc))
    assert report.extra == {"vendorField": {"nested": [1, 2.5, None, "x"]}}
    same_json(json.loads(wsjf.dumps(report)), doc)


def test_numbers_keep_their_json_type_and_strings_their_spaces() -> None:
    doc = uut()
    doc["uut"]["execTime"] = 12
    doc["root"]["steps"][0]["numericMeas"][0]["value"] = 5
    doc["sn"] = " SN 1 "
    out = json.loads(wsjf.dumps(wsjf.loads(json.dumps(doc))))
    assert out["uut"]["execTime"] == 12
    assert type(out["uut"]["execTime"]) is int
    assert type(out["root"]["steps"][0]["numericMeas"][0]["value"]) is int
    assert out["sn"] == " SN 1 "


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [
        (lambda d: d.update(pn=5), "pn", "expected a string, got an integer"),
        (lambda d: d.update(processCode=True), "processCode", "expected an integer, got a boolean"),
        (lambda d: d.update(processCode=10.0), "processCode", "expected an integer, got a number"),
        (lambda d: d.update(processCode="10"), "processCode", "expected an integer, got a string"),
        (lambda d: d.pop("sn"), "sn", "required field is missing"),
        (lambda d: d.update(sn=None), "sn", "must not be null"),
        (lambda d: d.update(type="X"), "type", "'X' is not a report type (T, R)"),
        (lambda d: d.update(result="D"), "result", "'D' is not a report result code"),
        (lambda d: d.update(miscInfos={}), "miscInfos", "expected an array, got an object"),
        (
            lambda d: d["root"]["steps"][0]["numericMeas"][0].update(compOp="GTX"),
            "root.steps[0].numericMeas[0].compOp",
            "'GTX' is not a comparison operator",
        ),
        (
            lambda d: d["root"]["steps"][1].update(status="OK"),
            "root.steps[1].status",
            "'OK' is not a status code",
        ),
        (
            lambda d: d["root"]["steps"][0].update(group="X"),
            "root.steps[0].group",
            "'X' is not a step group",
        ),
        (
            lambda d: d["root"]["steps"][0]["numericMeas"][0].update(value="5.0"),
            "root.steps[0].numericMeas[0].value",
            "expected a number, got a string",
        ),
        (lambda d: d.update(uut=[]), "uut", "expected an object, got an array"),
        (lambda d: d.update(pn="\ud800"), "pn", "unpaired UTF-16 surrogate"),
        (lambda d: d.update(vendor="\udfff"), "vendor", "unpaired UTF-16 surrogate"),
    ],
)
def test_shape_errors_name_the_field_path(mutate: Any, path: str, message: str) -> None:
    doc = uut()
    mutate(doc)
    with pytest.raises(ReportValidationError) as info:
        wsjf.loads(json.dumps(doc))
    assert any(e.path == path and message in e.message for e in info.value.errors), (
        info.value.errors
    )
    assert str(info.value).startswith(path + ": ")


def test_every_shape_error_is_reported_at_once() -> None:
    doc = uut()
    doc["pn"] = 1
    doc["sn"] = 2
    doc["root"]["steps"][2]["booleanMeas"][1]["status"] = "?"
    with pytest.raises(ReportValidationError) as info:
        wsjf.loads(json.dumps(doc))
    assert {e.path for e in info.value.errors} == {
        "pn",
        "sn",
        "root.steps[2].booleanMeas[1].status",
    }
    assert "(and 2 more)" in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"{", "not valid JSON: Expecting property name enclosed in double quotes at line 1"),
        (b'{"a": NaN}', "NaN is not valid JSON"),
        (b'{"a": Infinity}', "Infinity is not valid JSON"),
        (b"\xff\xfe\xfa", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_json_is_one_clear_error(text: bytes, message: str) -> None:
    with pytest.raises(MalformedInputError, match=message.replace("(", r"\(")):
        wsjf.loads(text)


def test_a_number_too_large_for_a_double_is_refused() -> None:
    doc = json.dumps(uut()).replace('"value": 5.02', '"value": 1e400')
    with pytest.raises(ReportValidationError, match="not finite"):
        wsjf.loads(doc)


def test_non_object_document_is_a_validation_error() -> None:
    with pytest.raises(ReportValidationError, match="expected an object, got an array"):
        wsjf.loads(b"[]")


def _nested(depth: int) -> dict[str, Any]:
    doc = uut()
    step = doc["root"]
    for level in range(depth):
        child = {
            "id": 100 + level,
            "group": "M",
            "stepType": "SequenceCall",
            "name": f"level {level}",
            "status": "P",
            "steps": [],
        }
        step.setdefault("steps", []).append(child)
        step = child
    return doc


def test_deeply_nested_steps_are_one_clear_error_not_a_recursion_error() -> None:
    text = '{"root": ' + '{"steps": [' * 400 + "]}" * 400 + "}"
    with pytest.raises(MalformedInputError, match=f"nested deeper than {wsjf.MAX_DEPTH}"):
        wsjf.loads(text)


def test_the_deepest_accepted_report_also_serialises() -> None:
    # Every level of step nesting costs two JSON levels (the object and its steps array).
    doc = _nested(wsjf.MAX_DEPTH // 2 - 3)
    report = wsjf.loads_obj(doc, validate=False)
    assert json.loads(wsjf.dumps(report)) == doc


def test_an_integer_too_long_to_convert_is_malformed_input() -> None:
    text = '{"processCode": ' + "9" * 5000 + "}"
    with pytest.raises(MalformedInputError, match="not valid JSON"):
        wsjf.loads(text)


_FIRST_USE_IN_THREADS = """
import json, sys, threading
from tests.report.minimal import uut
from pywats.report import wsjf
data = json.dumps(uut()).encode()
barrier = threading.Barrier(8)
out = []
def work():
    barrier.wait()
    out.append(wsjf.dumps(wsjf.loads(data)))
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(len(set(out)), len(out))
"""


def test_first_use_from_several_threads_at_once_gives_whole_reports() -> None:
    # Converter threads are the first users of the lazily built hooks after a (re)start;
    # a half-built plan once dropped every field after `rev` from uploaded reports.
    import subprocess
    import sys

    root = Path(__file__).parent.parent.parent
    for _ in range(5):
        result = subprocess.run(
            [sys.executable, "-c", _FIRST_USE_IN_THREADS],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=60,
            check=True,
        )
        assert result.stdout.split() == ["1", "8"], result.stdout


def test_objects_built_in_code_serialise_every_set_field_falsy_ones_included() -> None:
    # Converters build objects without nulls or unknown keys: those take the generated
    # serialiser; with a null recorded, the same object takes the general one. Both must
    # write every field that is set (0, False, "" and [] included) in declared order.
    from pywats.report.model import NumericMeasurement, Step

    meas = NumericMeasurement(comp_op=CompOp.LOG, value=0, status=Status.PASSED)
    step = Step(
        id=0,
        step_type="",
        name="n",
        status=Status.PASSED,
        report_text="",
        tot_time=0.0,
        caused_seq_failure=False,
        numeric_meas=[meas],
        steps=[],
    )
    expected = {
        "id": 0,
        "stepType": "",
        "name": "n",
        "status": "P",
        "reportText": "",
        "totTime": 0.0,
        "causedSeqFailure": False,
        "numericMeas": [{"compOp": "LOG", "status": "P", "value": 0}],
        "steps": [],
    }
    fast = wsjf.converter.unstructure(step)
    same_json(json.loads(json.dumps(fast)), expected)
    assert list(fast) == list(expected)
    general = wsjf.converter.unstructure(attrs.evolve(step, nulls=frozenset({"errorCode"})))
    assert list(general) == ["id", "stepType", "name", "status", "errorCode", *list(expected)[4:]]
    assert general.pop("errorCode") is None
    same_json(json.loads(json.dumps(general)), expected)
