"""Hypothesis properties of the WSJF wire format.

* Every generated valid report survives parse -> serialise -> parse unchanged, both as
  JSON and as model objects.
* No input, however broken, makes the parser raise anything but the documented
  ReportError family (MalformedInputError, ReportValidationError).
"""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywats.errors import ReportError
from pywats.report import CompOp, wsjf
from pywats.report.validate import check
from tests.report.minimal import uur, uut

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# JSON can carry lone UTF-16 surrogates; valid reports cannot (they are not Unicode text).
unicode = st.characters(blacklist_categories=("Cs",))
text = st.text(unicode, max_size=20)
header_text = st.text(unicode, min_size=1, max_size=100)
finite = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**6), 10**6)
status = st.sampled_from("PFSDET")
offset = st.sampled_from(["Z", "+01:00", "-05:30", "+00:00"])
timestamp = st.builds(
    lambda d, o: d.isoformat() + o,
    st.datetimes(),
    offset,
)
guid = st.uuids().map(str)


def numeric_meas(named: bool) -> st.SearchStrategy[dict[str, Any]]:
    def build(
        op: CompOp, value: float, low: float, high: float, st_: str, name: str, unit: Any
    ) -> dict[str, Any]:
        m: dict[str, Any] = {"compOp": op.value, "value": value, "status": st_, "unit": unit}
        m["lowLimit"] = low if op.limit_count >= 1 else None
        m["highLimit"] = high if op.limit_count == 2 else None
        if named:
            m["name"] = name
        return m

    ops = st.sampled_from([op for op in CompOp if op.is_numeric])
    return st.builds(build, ops, finite, finite, finite, status, text, st.none() | text)


def measurements(kind: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    if kind == "numericMeas":
        single = numeric_meas(False).map(lambda m: [m])
        multi = st.lists(numeric_meas(True), min_size=2, max_size=4, unique_by=lambda m: m["name"])
    elif kind == "booleanMeas":
        single = st.builds(lambda s: [{"name": None, "status": s}], status)
        multi = st.lists(
            st.builds(lambda n, s: {"name": n, "status": s}, text, status),
            min_size=2,
            max_size=4,
            unique_by=lambda m: m["name"],
        )
    else:
        ops = st.sampled_from([op.value for op in CompOp if op.is_string])
        one = st.builds(
            lambda op, v, lim, s, n: {
                "compOp": op,
                "value": v,
                "limit": lim,
                "status": s,
                "name": n,
            },
            ops,
            text,
            st.none() | text,
            status,
            text,
        )
        single = one.map(lambda m: [{**m, "name": None}])
        multi = st.lists(one, min_size=2, max_size=4, unique_by=lambda m: m["name"])
    return single | multi


leaf_step = st.one_of(
    st.builds(lambda k, m: {k: m}, st.just(kind), measurements(kind))
    for kind in ("numericMeas", "booleanMeas", "stringMeas")
) | st.fixed_dictionaries(
    {},
    optional={
        "callExe": st.fixed_dictionaries({"exitCode": finite}),
        "messagePopup": st.fixed_dictionaries(
            {"response": st.none() | text, "button": st.integers(0, 9)}
        ),
        "chart": st.fixed_dictionaries(
            {
                "chartType": st.sampled_from(["Line", "LineLogX"]),
                "label": text,
                "series": st.lists(
                    st.fixed_dictionaries(
                        {"dataType": st.just("XYG"), "name": text, "xdata": text, "ydata": text}
                    ),
                    max_size=2,
                ),
            }
        ),
        "loop": st.fixed_dictionaries(
            {"idx": st.none() | st.integers(0, 9), "num": st.none() | st.integers(0, 9)}
        ),
        "reportText": text,
        "totTime": finite,
        "vendorExtra": st.none() | text | finite,
    },
)


def step_tree() -> st.SearchStrategy[dict[str, Any]]:
    def with_common(
        body: dict[str, Any], name: str, st_: str, step_type: str, group: str
    ) -> dict[str, Any]:
        return {"group": group, "stepType": step_type, "name": name, "status": st_, **body}

    common = (text, status, text, st.sampled_from("SMC"))
    leaves = st.builds(with_common, leaf_step, *[s for s in common])

    def seq(children: list[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        return st.builds(
            lambda name, st_: {
                "stepType": "SequenceCall",
                "name": name,
                "status": st_,
                "seqCall": {"path": "x.seq", "name": name, "version": "1.0"},
                "steps": children,
            },
            text,
            status,
        )

    return st.recursive(
        leaves, lambda inner: st.lists(inner, max_size=4).flatmap(seq), max_leaves=15
    )


def number_steps(root: dict[str, Any]) -> dict[str, Any]:
    counter = 0
    stack = [root]
    while stack:
        step = stack.pop()
        counter += 1
        step["id"] = counter
        stack.extend(step.get("steps", []))
    return root


@st.composite
def valid_uut(draw: st.DrawFn) -> dict[str, Any]:
    doc = uut()
    doc["id"] = draw(guid)
    for key in ("pn", "sn", "rev", "machineName", "location", "purpose"):
        doc[key] = draw(header_text)
    doc["processCode"] = draw(st.integers(0, 10**9))
    doc["result"] = draw(st.sampled_from("PFET"))
    doc["start"] = draw(timestamp)
    doc["root"] = number_steps(draw(step_tree()))
    doc["miscInfos"] = draw(
        st.lists(
            st.fixed_dictionaries(
                {"description": header_text, "text": st.text(unicode, max_size=100)},
                optional={"numeric": st.none() | finite, "typedef": st.text(unicode, max_size=30)},
            ),
            max_size=3,
        )
    )
    doc["uut"] = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "user": st.none() | text,
                "execTime": st.none() | finite,
                "testSocketIndex": st.integers(-1, 99),
                "comment": st.none() | text,
            },
        )
    )
    return doc


@st.composite
def valid_uur(draw: st.DrawFn) -> dict[str, Any]:
    doc = uur()
    doc["id"] = draw(guid)
    doc["start"] = draw(timestamp)
    doc["sn"] = draw(header_text)
    doc["subUnits"][0]["failures"] = draw(
        st.lists(
            st.fixed_dictionaries(
                {"category": text, "code": text}, optional={"comRef": st.none() | text}
            ),
            max_size=3,
        )
    )
    return doc


@SETTINGS
@given(valid_uut() | valid_uur())
def test_generated_valid_reports_round_trip(doc: dict[str, Any]) -> None:
    raw = json.dumps(doc).encode()
    report = wsjf.loads(raw)
    assert check(report) == []
    again = wsjf.loads(wsjf.dumps(report))
    assert again == report
    assert json.loads(wsjf.dumps(again)) == doc


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@SETTINGS
@given(json_values)
def test_arbitrary_json_raises_only_documented_errors(value: Any) -> None:
    with contextlib.suppress(ReportError):
        wsjf.loads(json.dumps(value))


@SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_documented_errors(data: bytes) -> None:
    with contextlib.suppress(ReportError):
        wsjf.loads(data)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@SETTINGS
@given(st.data())
def test_mutated_real_documents_raise_only_documented_errors(data: st.DataObject) -> None:
    doc = copy.deepcopy(data.draw(st.sampled_from([uut(), uur()])))
    for _ in range(data.draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(json_values)
    try:
        report = wsjf.loads(json.dumps(doc))
    except ReportError:
        return
    # Whatever was accepted must serialise to valid JSON again.
    json.loads(wsjf.dumps(report))
