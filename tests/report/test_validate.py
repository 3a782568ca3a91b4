"""One test per WSJF rule: each names the field path and says what is wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pywats.errors import MalformedInputError, ReportValidationError
from pywats.report import wsjf
from pywats.report.validate import check
from tests.report.minimal import uur, uut


def errors_of(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e.path, e.message) for e in check(wsjf.structure(doc))]


def assert_rule(doc: dict[str, Any], path: str, fragment: str) -> None:
    errors = errors_of(doc)
    assert any(p == path and fragment in m for p, m in errors), errors
    with pytest.raises(ReportValidationError) as info:
        wsjf.loads(json.dumps(doc))
    assert any(e.path == path for e in info.value.errors)


def test_minimal_documents_are_valid() -> None:
    assert errors_of(uut()) == []
    assert errors_of(uur()) == []


@pytest.mark.parametrize("value", ["not-a-guid", "3f1c2b1e9a7d4c559b0e2d4f7e6a1b20", ""])
def test_id_must_be_a_guid(value: str) -> None:
    doc = uut()
    doc["id"] = value
    assert_rule(doc, "id", "is not a GUID")


def test_upper_case_guid_is_accepted() -> None:
    doc = uut()
    doc["id"] = doc["id"].upper()
    assert errors_of(doc) == []


@pytest.mark.parametrize("key", ["pn", "sn", "rev", "machineName", "location", "purpose"])
@pytest.mark.parametrize("length", [0, 101])
def test_header_strings_are_1_to_100_characters(key: str, length: int) -> None:
    doc = uut()
    doc[key] = "x" * length
    assert_rule(doc, key, f"must be 1 to 100 characters, got {length}")


@pytest.mark.parametrize("key", ["pn", "sn", "rev", "machineName", "location", "purpose"])
def test_header_strings_of_100_characters_are_fine(key: str) -> None:
    doc = uut()
    doc[key] = "é" * 100
    assert errors_of(doc) == []


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2026-02-01T09:15:00", "has no UTC offset"),
        ("yesterday", "is not an ISO 8601 date-time"),
        ("2026-13-01T09:15:00+01:00", "is not an ISO 8601 date-time"),
    ],
)
def test_start_needs_an_iso_date_time_with_offset(value: str, fragment: str) -> None:
    doc = uut()
    doc["start"] = value
    assert_rule(doc, "start", fragment)


def test_start_utc_is_checked_when_present() -> None:
    doc = uut()
    doc["startUTC"] = "2026-02-01 08:15"
    assert_rule(doc, "startUTC", "has no UTC offset")


@pytest.mark.parametrize("value", ["2026-02-01T09:15:00Z", "2026-02-01T09:15:00.1234567-05:00"])
def test_start_forms_that_are_accepted(value: str) -> None:
    doc = uut()
    doc["start"] = value
    assert errors_of(doc) == []


def test_process_code_must_be_an_integer() -> None:
    doc = uut()
    doc["processCode"] = 10.5
    with pytest.raises(ReportValidationError, match=r"^processCode: expected an integer"):
        wsjf.loads(json.dumps(doc))


def test_result_code_must_be_known() -> None:
    doc = uut()
    doc["result"] = "Passed"
    with pytest.raises(ReportValidationError, match=r"^result: 'Passed' is not a report result"):
        wsjf.loads(json.dumps(doc))


def test_type_must_be_t_or_r() -> None:
    doc = uut()
    doc["type"] = "U"
    with pytest.raises(ReportValidationError, match=r"^type: 'U' is not a report type"):
        wsjf.loads(json.dumps(doc))


def test_test_report_needs_root() -> None:
    doc = uut()
    del doc["root"]
    assert_rule(doc, "root", "required for a test report (type T)")


def test_test_report_needs_uut() -> None:
    doc = uut()
    del doc["uut"]
    assert_rule(doc, "uut", "required for a test report (type T)")


def test_test_report_has_no_uur() -> None:
    doc = uut()
    doc["uur"] = {}
    assert_rule(doc, "uur", "only a repair report")


def test_repair_report_needs_uur() -> None:
    doc = uur()
    del doc["uur"]
    assert_rule(doc, "uur", "required for a repair report (type R)")


def test_repair_report_needs_sub_units() -> None:
    doc = uur()
    del doc["subUnits"]
    assert_rule(doc, "subUnits", "required for a repair report (type R)")


def test_repair_sub_units_need_idx() -> None:
    doc = uur()
    del doc["subUnits"][0]["idx"]
    assert_rule(doc, "subUnits[0].idx", "required for a repair report")


def test_repair_needs_the_main_unit_as_idx_0() -> None:
    doc = uur()
    doc["subUnits"][0]["idx"] = 1
    assert_rule(doc, "subUnits", "idx 0")


def test_repair_report_has_no_test_steps() -> None:
    doc = uur()
    doc["root"] = uut()["root"]
    assert_rule(doc, "root", "has no test steps")


def test_misc_info_needs_description_of_1_to_100() -> None:
    doc = uut()
    doc["miscInfos"][0]["description"] = ""
    assert_rule(doc, "miscInfos[0].description", "must be 1 to 100 characters, got 0")


def test_misc_info_needs_a_value() -> None:
    doc = uut()
    doc["miscInfos"][0]["text"] = None
    assert_rule(doc, "miscInfos[0]", "needs a text or a numeric value")


def test_misc_info_text_at_most_100() -> None:
    doc = uut()
    doc["miscInfos"][0]["text"] = "x" * 101
    assert_rule(doc, "miscInfos[0].text", "must be 0 to 100 characters, got 101")


def test_misc_info_typedef_at_most_30() -> None:
    doc = uut()
    doc["miscInfos"][0]["typedef"] = "t" * 31
    assert_rule(doc, "miscInfos[0].typedef", "must be 0 to 30 characters, got 31")


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("partType", "p" * 51, "must be 1 to 50 characters, got 51"),
        ("pn", "", "must be 1 to 100 characters, got 0"),
        ("sn", None, "required field is missing"),
        ("rev", "r" * 101, "must be 0 to 100 characters, got 101"),
    ],
)
def test_sub_unit_fields(key: str, value: str | None, fragment: str) -> None:
    doc = uut()
    doc["subUnits"] = [{"partType": "PCBA", "pn": "P1", "sn": "S1", "rev": "A"}]
    doc["subUnits"][0][key] = value
    assert_rule(doc, f"subUnits[0].{key}", fragment)


def test_step_ids_are_unique() -> None:
    doc = uut()
    doc["root"]["steps"][1]["id"] = 2
    assert_rule(doc, "root.steps[1].id", "step id 2 is also used by root.steps[0]")


def test_several_measurements_need_names() -> None:
    doc = uut()
    doc["root"]["steps"][2]["booleanMeas"][1]["name"] = None
    assert_rule(doc, "root.steps[2].booleanMeas[1].name", "required when a step has several")


def test_measurement_names_are_unique() -> None:
    doc = uut()
    doc["root"]["steps"][2]["booleanMeas"][1]["name"] = "red"
    assert_rule(
        doc, "root.steps[2].booleanMeas[1].name", "'red' is also the name of booleanMeas[0]"
    )


@pytest.mark.parametrize(
    ("step", "key", "alone"),
    [
        (0, "numericMeas", True),
        (1, "stringMeas", True),
        (2, "booleanMeas", False),
        (2, "booleanMeas", True),  # one pass/fail alone: the check's quickest case
    ],
)
def test_measurements_need_a_status(step: int, key: str, alone: bool) -> None:
    doc = uut()
    if alone:
        doc["root"]["steps"][step][key] = doc["root"]["steps"][step][key][:1]
        for other in ("numericMeas", "stringMeas", "booleanMeas"):
            if other != key:
                doc["root"]["steps"][step].pop(other, None)
    del doc["root"]["steps"][step][key][0]["status"]
    assert_rule(doc, f"root.steps[{step}].{key}[0].status", "required field is missing")


def test_numeric_measurement_needs_a_numeric_operator() -> None:
    doc = uut()
    doc["root"]["steps"][0]["numericMeas"][0]["compOp"] = "IGNORECASE"
    assert_rule(doc, "root.steps[0].numericMeas[0].compOp", "compares strings, not numbers")


def test_string_measurement_needs_a_string_operator() -> None:
    doc = uut()
    doc["root"]["steps"][1]["stringMeas"][0]["compOp"] = "GELE"
    assert_rule(doc, "root.steps[1].stringMeas[0].compOp", "is not a string comparison operator")


@pytest.mark.parametrize("op", ["EQ", "NE", "GT", "GE", "LT", "LE"])
def test_single_limit_operators_use_low_limit_only(op: str) -> None:
    doc = uut()
    meas = doc["root"]["steps"][0]["numericMeas"][0]
    meas.update(compOp=op, lowLimit=5.0, highLimit=6.0)
    assert_rule(doc, "root.steps[0].numericMeas[0].highLimit", "single-limit operator")
    meas.update(lowLimit=None, highLimit=None)
    assert_rule(doc, "root.steps[0].numericMeas[0].lowLimit", f"required by {op}")
    meas.update(lowLimit=5.0)
    assert errors_of(doc) == []


@pytest.mark.parametrize("op", ["GTLT", "GELE", "GELT", "GTLE", "LTGT", "LEGE", "LEGT", "LTGE"])
def test_two_limit_operators_need_both(op: str) -> None:
    doc = uut()
    meas = doc["root"]["steps"][0]["numericMeas"][0]
    meas.update(compOp=op, highLimit=None)
    assert_rule(doc, "root.steps[0].numericMeas[0].highLimit", f"required by {op}")


def test_log_needs_no_limits() -> None:
    doc = uut()
    doc["root"]["steps"][0]["numericMeas"][0].update(compOp="LOG", lowLimit=None, highLimit=None)
    assert errors_of(doc) == []


def test_step_id_caused_uut_failure_must_name_a_step() -> None:
    doc = uut()
    doc["uut"]["stepIdCausedUUTFailure"] = 99
    assert_rule(doc, "uut.stepIdCausedUUTFailure", "no step has id 99")


def test_deep_step_tree_error_has_the_full_path() -> None:
    doc = uut()
    step: dict[str, Any] = doc["root"]
    for i in range(60):
        child = {"id": 100 + i, "stepType": "SequenceCall", "name": f"s{i}", "status": "P"}
        step["steps"] = [child]
        step = child
    step["numericMeas"] = [{"compOp": "GE", "status": "P"}]
    with pytest.raises(ReportValidationError) as info:
        wsjf.loads(json.dumps(doc))
    assert info.value.path == "root" + ".steps[0]" * 60 + ".numericMeas[0].lowLimit"


def test_absurdly_deep_step_tree_is_one_clear_error() -> None:
    doc = json.dumps(uut())
    inner = '{"stepType": "A", "name": "n", "status": "P", "steps": [' * 5000
    text = doc.replace('"steps": [', '"steps": [' + inner, 1) + "]}" * 5000
    with pytest.raises(MalformedInputError, match="nested too deeply"):
        wsjf.loads(text)
