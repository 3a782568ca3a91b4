"""WSXF (XML) parsing: the server's XML export gives the report its WSJF export gives.

Also: hostile XML (DTDs, entity expansion, external entities, deep nesting) is refused
fast; malformed XML and bad values give one clear error with a WSJF field path; and no
input, however mangled, raises anything but a ReportError.
"""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pywats.errors import MalformedInputError, ReportError, ReportValidationError
from pywats.report import ReportType, Status, wsjf, wsxf

DATA = Path(__file__).parent.parent / "data"
XML = (DATA / "uut-wsxf-export.xml").read_bytes()
JSON_EXPORT = json.loads((DATA / "uut-wsjf-export.json").read_bytes())
NS = wsxf.WSXF_NAMESPACE

#: Fields of the WSJF export that the WSXF export of the same report cannot carry. Each
#: is removed from both sides before comparing; everything else must be equal.
EXCLUDED: dict[str, str] = {
    # Output only: statistics the server computes from its asset register when it
    # exports. WSXF has no element for them and a client never sends them.
    "assetStats": "server-computed output, no WSXF counterpart",
}


def as_json(report: Any) -> Any:
    """The report as the JSON a WSJF file would hold (enums become plain strings)."""
    return json.loads(wsjf.dumps(report))


def without(obj: dict[str, Any], paths: dict[str, str]) -> dict[str, Any]:
    """A copy of ``obj`` without the top-level or dotted ``paths``."""
    out = copy.deepcopy(obj)
    for path in paths:
        *parents, last = path.split(".")
        target = out
        for key in parents:
            target = target[key]
        target.pop(last, None)
    return out


def same_json(a: Any, b: Any, path: str = "$") -> None:
    """Deep equality that also tells int from float and bool from int, and says where."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys differ: {sorted(set(a) ^ set(b))}"
        for key in a:
            same_json(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same_json(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def replace_once(data: bytes, old: str, new: str) -> bytes:
    assert data.count(old.encode()) >= 1, old
    return data.replace(old.encode(), new.encode(), 1)


# --- The twin exports ------------------------------------------------------------------------


def test_xml_export_equals_json_export() -> None:
    parsed = as_json(wsxf.parse_one(XML))
    same_json(without(parsed, EXCLUDED), without(JSON_EXPORT, EXCLUDED))


def test_every_exclusion_is_needed() -> None:
    """Each excluded field really differs: the list is not padded."""
    parsed = as_json(wsxf.parse_one(XML))
    for path in EXCLUDED:
        others = {p: why for p, why in EXCLUDED.items() if p != path}
        with pytest.raises(AssertionError, match=re.escape(path.split(".")[-1])):
            same_json(without(parsed, others), without(JSON_EXPORT, others))


def test_parsed_model_has_the_json_types() -> None:
    report = wsxf.parse_one(XML)
    assert report.type is ReportType.UUT
    assert report.id == "33a2d408-3fc8-480b-b554-6866c77fd91c"  # upper case in the XML
    steps = report.steps()
    assert len(steps) == 186
    first = steps[2]  # SingleLog: NumericValue="10" Units="A" CompOperator="LOG"
    assert first.numeric_meas is not None
    value = first.numeric_meas[0].value
    assert type(value) is float
    assert value == 10.0
    assert first.numeric_meas[0].high_limit is None
    assert report.misc_infos is not None
    assert type(report.misc_infos[0].numeric) is int  # the export writes "numeric": 100


def test_statuses_read_as_words() -> None:
    for status in Status:
        data = replace_once(
            XML,
            'Status="Passed" MeasIndex="0" MeasOrderNumber="0"',
            f'Status="{status.wsxf}" MeasIndex="0" MeasOrderNumber="0"',
        )
        report = wsxf.parse_one(data, validate=False)
        step = report.steps()[3]
        assert step.numeric_meas is not None
        assert step.numeric_meas[0].status is status


@pytest.mark.parametrize("namespace", [wsxf.WRML_NAMESPACE, ""])
def test_older_and_missing_namespace_are_accepted(namespace: str) -> None:
    declaration = f' xmlns="{namespace}"' if namespace else ""
    data = replace_once(XML, f' xmlns="{NS}"', declaration)
    same_json(as_json(wsxf.parse_one(data)), as_json(wsxf.parse_one(XML)))


def test_measurements_follow_meas_index() -> None:
    """Elements written out of order are put back in MeasIndex order."""
    step = re.search(rb'<Step Id="32" .*?</Step>', XML)
    assert step is not None
    body = step.group()
    limits = re.findall(rb"<NumericLimit [^>]*/>", body)
    assert len(limits) > 2
    shuffled = body
    for limit in limits:
        shuffled = shuffled.replace(limit, b"")
    head, _, tail = shuffled.partition(b"</Step>")
    shuffled = head + b"".join(reversed(limits)) + b"</Step>" + tail
    data = XML.replace(body, shuffled)
    same_json(as_json(wsxf.parse_one(data)), as_json(wsxf.parse_one(XML)))


def test_empty_attributes_are_unset_only_where_the_export_says_so() -> None:
    data = replace_once(XML, 'StringValue="No compare"', 'StringValue=""')
    report = wsxf.parse_one(data)
    step = next(s for s in report.steps() if s.string_meas)
    assert step.string_meas is not None
    assert step.string_meas[0].value == ""  # a measured empty string stays one
    units = [m.unit for s in report.steps() for m in s.numeric_meas or []]
    assert None in units  # Units="" is the export's spelling of "unit": null
    assert "" not in units


def test_missing_or_empty_operator_is_log() -> None:
    """As in Virinco's own WSXF converter; both operators replaced here were LOG."""
    data = replace_once(XML, 'Units="A" CompOperator="LOG"', 'Units="A"')
    data = replace_once(
        data,
        'CompOperator="LOG" StringValue="No compare"',
        'CompOperator="" StringValue="No compare"',
    )
    same_json(as_json(wsxf.parse_one(data)), as_json(wsxf.parse_one(XML)))


def test_two_reports_give_two() -> None:
    report = re.search(rb"<Report .*</Report>", XML, re.DOTALL)
    assert report is not None
    second = report.group().replace(b"33A2D408-", b"44B3E519-")
    data = XML.replace(b"</Reports>", second + b"</Reports>")
    first, other = wsxf.parse(data)
    assert first.id.startswith("33a2d408")
    assert other.id.startswith("44b3e519")
    with pytest.raises(MalformedInputError, match="exactly one <Report>, the document holds 2"):
        wsxf.parse_one(data)


def test_validate_false_skips_the_wsjf_rules() -> None:
    data = replace_once(XML, 'ID="33A2D408-3FC8-480B-B554-6866C77FD91C"', 'ID="not-a-guid"')
    assert wsxf.parse_one(data, validate=False).id == "not-a-guid"
    with pytest.raises(ReportValidationError) as info:
        wsxf.parse_one(data)
    assert info.value.path == "id"
    assert "Report@ID" in str(info.value)


# --- A repair report (names inferred from Virinco's WSXF schema; no export to check) ----------

UUR_XML = f"""<?xml version="1.0" encoding="utf-8"?>
<Reports xmlns="{NS}">
  <Report type="UUR" ID="83AC0B8E-B575-4004-94DE-F905774C3ED8"
      Start="2025-12-21T23:01:45.472254+01:00" Start_utc="2025-12-21T22:01:45.472254Z"
      Result="Passed" SN="MODULE-20251221230142-5519" PN="PRODUCTION-TEST-MODULE" Rev="A"
      origin="8033657d-c2c1-40f8-832b-a48113cf869a" MachineName="RepairStation"
      Location="TestLab" Purpose="Repair" ProductName="Production Test Module">
    <Process Code="500" Name="Repair" />
    <UUR UserLoginName="RepairOperator" ExecutionTime="0"
        ReferencedUUT="873D67F8-7669-4F4B-A627-E598E444D323"
        ConfirmDate="2025-12-21T22:01:45.472138+00:00"
        FinalizeDate="2025-12-21T22:01:45.472138+00:00">
      <Comment>Thermal failure repaired</Comment>
      <Process Code="90" Name="Burn In test" />
    </UUR>
    <ReportUnitHierarchy PartType="Main" PN="PRODUCTION-TEST-MODULE"
        SN="MODULE-20251221230142-5519" Rev="A" Idx="0" />
    <Failures PartIdx="0" Category="Component" Code="Burned Component"
        Comment="Thermal failure during burn-in - Reworked thermal interface" CompRef="U1"
        StepID="0" />
  </Report>
</Reports>""".encode()

#: What the repair example's WSJF export has that WSXF cannot carry.
UUR_EXCLUDED = {
    # Output only: the UURs that name this one as their parent, filled in by the server.
    "uur.children": "server-computed output, no WSXF counterpart",
}


def test_repair_report_maps_like_the_wsjf_example() -> None:
    expected = json.loads((DATA / "uur_example.json").read_bytes())
    # Output only: the server looks the step name up from refStepId; WSXF Failures carry
    # only the StepID.
    del expected["subUnits"][0]["failures"][0]["refStepName"]
    parsed = as_json(wsxf.parse_one(UUR_XML))
    same_json(without(parsed, EXCLUDED | UUR_EXCLUDED), without(expected, EXCLUDED | UUR_EXCLUDED))


def test_failure_must_name_an_existing_sub_unit() -> None:
    data = UUR_XML.replace(b'PartIdx="0"', b'PartIdx="3"')
    with pytest.raises(ReportValidationError, match="no ReportUnitHierarchy has Idx 3"):
        wsxf.parse_one(data)


# --- Hostile and malformed XML ---------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE Reports [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Reports xmlns="http://wats.virinco.com/schemas/WATS/Report/wsxf">&lol9;</Reports>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Reports [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Reports xmlns="http://wats.virinco.com/schemas/WATS/Report/wsxf">
  <Report type="UUT" SN="&xxe;"/>
</Reports>"""

XXE_PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE Reports [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<Reports/>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE Reports SYSTEM "http://127.0.0.1:9/wsxf.dtd">
<Reports/>"""


@pytest.mark.parametrize(
    "data",
    [BILLION_LAUGHS, XXE, XXE_PARAMETER, EXTERNAL_DTD],
    ids=["billion-laughs", "xxe", "xxe-parameter-entity", "external-dtd"],
)
def test_dtds_are_refused_fast(data: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(MalformedInputError, match="DTD/entity declarations is not accepted"):
        wsxf.parse(data)
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not valid XML: no element found at line 1 column 1"),
        (b"<Reports><Report></Reports>", "not valid XML: mismatched tag at line 1 column 20"),
        (b"<Reports>\n  &nbsp;</Reports>", "not valid XML: undefined entity at line 2 column 3"),
        (b"<Reports a='1' a='2'/>", "not valid XML: duplicate attribute at line 1 column 16"),
        (b"\xff\xfe\x00garbage", "not valid XML:"),
        (b"<Reports>" + XML, "not valid XML: XML or text declaration not at start of entity"),
    ],
)
def test_malformed_xml_names_line_and_column(data: bytes, message: str) -> None:
    with pytest.raises(MalformedInputError) as info:
        wsxf.parse(data)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("encoding", ["rot13", "zlib", "shift_jis", "no-such-codec", "cp1252"])
def test_only_encodings_expat_reads_itself_are_accepted(encoding: str) -> None:
    """Other names would reach Python's codec registry (and its LookupError/ValueError)."""
    data = f'<?xml version="1.0" encoding="{encoding}"?><Reports/>'.encode()
    with pytest.raises(MalformedInputError, match=f"XML encoding '{encoding}' is not supported"):
        wsxf.parse(data)


def test_utf16_document_is_read() -> None:
    text = XML.decode().replace('encoding="utf-8"', 'encoding="utf-16"')
    same_json(as_json(wsxf.parse_one(text.encode("utf-16"))), as_json(wsxf.parse_one(XML)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'<Report xmlns="' + NS.encode() + b'"/>', "the root element is <{" + NS + "}Report>"),
        (b'<Reports xmlns="urn:other"/>', "the root element is <{urn:other}Reports>"),
        (b"<Reports/>", "holds no <Report>"),
        (b"<Reports><Other/></Reports>", "unexpected element <Other> at line 1, column 10"),
        (b"<Reports>text</Reports>", "unexpected text in <Reports>"),
    ],
)
def test_wrong_document_is_named(data: bytes, message: str) -> None:
    with pytest.raises(MalformedInputError) as info:
        wsxf.parse(data)
    assert message in str(info.value)


def test_deep_nesting_is_refused_without_recursion() -> None:
    data = b"<Reports><Report>" + b"<Step>" * 100_000
    started = time.perf_counter()
    with pytest.raises(MalformedInputError, match=f"nested deeper than {wsxf.MAX_DEPTH}"):
        wsxf.parse(data)
    assert time.perf_counter() - started < 0.5


def test_deepest_accepted_report_round_trips_through_wsjf() -> None:
    """Whatever depth the parser accepts, the model and the JSON writer can handle."""
    levels = wsxf.MAX_DEPTH - 2  # Reports and Report take two levels
    step = '<Step Id="{0}" Group="Main" Name="s" StepType="SequenceCall" Status="Passed">'
    steps = "".join(step.format(i + 1) for i in range(levels)) + "</Step>" * levels
    data = replace_once(XML, XML[XML.index(b"<Step ") : XML.rindex(b"</Step>") + 7].decode(), steps)
    report = wsxf.parse_one(data)
    assert len(report.steps()) == levels
    written = wsjf.dumps(report)
    assert wsjf.dumps(wsjf.loads(written)) == written


# --- Bad values give WSJF field paths --------------------------------------------------------

BAD_VALUES = [
    # (replace this, with this, error path, words in the message)
    (
        'Status="Passed" total_time="0" StepIndex="3"',
        'Status="Banana" total_time="0" StepIndex="3"',
        "root.steps[0].steps[3].status",
        "Step@Status: 'Banana' is not a status",
    ),
    (
        'NumericValue="500" Units="V" CompOperator="GE" LowLimit="501"',
        'NumericValue="abc" Units="V" CompOperator="GE" LowLimit="501"',
        "root.steps[0].steps[4].numericMeas[0].value",
        "'abc' is not a number",
    ),
    ('Id="3"', 'Id="x"', "root.steps[0].steps[0].id", "Step@Id: 'x' is not an integer"),
    ('Result="Failed"', 'Result="Skipped"', "result", "'Skipped' is not a report result"),
    ('ExecutionTime="123.67"', 'ExecutionTime="fast"', "uut.execTime", "'fast' is not a number"),
    (
        'StepIndex="0" StepCausedUUTFailure="false"',
        'StepIndex="0" StepCausedUUTFailure="maybe"',
        "root.causedUUTFailure",
        "'maybe' is not a boolean",
    ),
    (
        'LowLimit="500"',
        'LowLimit="INF"',
        "root.steps[0].steps[1].numericMeas[0].lowLimit",
        "not a finite number",
    ),
    (
        'LowLimit="500"',
        'LowLimit="1e999"',
        "root.steps[0].steps[1].numericMeas[0].lowLimit",
        "too large for a double",
    ),
    ('Code="10"', 'Code="99999999999999999999"', "processCode", "is not an integer"),
    (
        'CompOperator="GE"',
        'CompOperator="ROUGHLY"',
        "root.steps[0].steps[3].numericMeas[0].compOp",
        "'ROUGHLY' is not a comparison operator",
    ),
    (
        'Group="Main" Name="SingleLog"',
        'Group="Middle" Name="SingleLog"',
        "root.steps[0].steps[0].group",
        "'Middle' is not a step group",
    ),
    (
        '<Loop index="0" />',
        '<Loop index="zero" />',
        "root.steps[5].steps[0].steps[1].loop.idx",
        "'zero' is not an integer",
    ),
    (
        '<Callexe ExitCode="0"',
        '<Callexe ExitCode="0x1"',
        "root.steps[5].steps[8].steps[0].callExe.exitCode",
        "is not a number",
    ),
    ('Numeric="100"', 'Numeric="lots"', "miscInfos[0].numeric", "'lots' is not a number"),
    ('Position="0"', 'Position="first"', "subUnits[0].position", "'first' is not an integer"),
    (
        'Id="3"',
        'Id="3" Colour="red"',
        "root.steps[0].steps[0]",
        "unknown attribute Colour on <Step>",
    ),
    (
        "<ReportText>",
        "<Attachment2/><ReportText>",
        "root.steps[3]",
        "unknown element <Attachment2>",
    ),
    (
        "<ReportText>",
        "<AdditionalResults/><ReportText>",
        "root.steps[3]",
        "WSXF <AdditionalResults> is not supported yet",
    ),
    (
        '<Loop index="0" />',
        '<Loop index="0" /><Loop index="1" />',
        "root.steps[5].steps[0].steps[1]",
        "more than one <Loop>",
    ),
    (
        'Name="SingleLog" ',
        "",
        "root.steps[0].steps[0].name",
        "required field is missing (Step@Name; <Step> at line 1",
    ),
    (
        'LowLimit="500" Status',
        "Status",
        "root.steps[0].steps[1].numericMeas[0].lowLimit",
        "required by EQ (NumericLimit@LowLimit",
    ),
]


@pytest.mark.parametrize(("old", "new", "path", "message"), BAD_VALUES)
def test_bad_values_name_the_field_path(old: str, new: str, path: str, message: str) -> None:
    with pytest.raises(ReportValidationError) as info:
        wsxf.parse(replace_once(XML, old, new))
    errors = info.value.errors
    hits = [e for e in errors if e.path == path]
    assert hits, [str(e) for e in errors]
    assert message in hits[0].message, str(hits[0])
    assert "line" in hits[0].message


def test_every_bad_value_is_reported_at_once() -> None:
    data = replace_once(XML, 'Id="3"', 'Id="x"')
    data = replace_once(data, 'Result="Failed"', 'Result="Meh"')
    with pytest.raises(ReportValidationError) as info:
        wsxf.parse(data)
    assert {e.path for e in info.value.errors} >= {"result", "root.steps[0].steps[0].id"}


# --- Nothing but ReportError, whatever the input ----------------------------------------------

_ATTRIBUTE = re.compile(rb' ([A-Za-z_]+)="([^"]*)"')
_SPANS = [m.span() for m in _ATTRIBUTE.finditer(XML)]
_VALUES = st.one_of(
    # Characters XML can hold (controls and lone surrogates would only test expat).
    st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=12),
    st.sampled_from(
        ["", "-1", "0", "1e999", "NaN", "true", "Passed", "Banana", "UUR", "&amp;", "&lt;", " 7 "]
    ),
)


@st.composite
def mutated_exports(draw: st.DrawFn) -> bytes:
    """The real export with attributes deleted, duplicated, rewritten, and maybe truncated.

    A duplicated attribute is not well-formed XML, so duplication is drawn less often than
    the edits that reach the report checks.
    """
    data = XML
    edits = draw(
        st.lists(
            st.tuples(
                st.sampled_from(range(len(_SPANS))),
                st.sampled_from(["del", "del", "set", "set", "set", "dup"]),
            ),
            min_size=1,
            max_size=4,
            unique_by=lambda edit: edit[0],
        )
    )
    # Apply from the end so earlier spans keep their offsets.
    for index, action in sorted(edits, reverse=True):
        start, end = _SPANS[index]
        attribute = data[start:end]
        if action == "del":
            data = data[:start] + data[end:]
        elif action == "dup":
            data = data[:end] + attribute + data[end:]
        else:
            name = attribute.split(b"=", 1)[0]
            value = draw(_VALUES).replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
            data = data[:start] + name + b'="' + value.encode() + b'"' + data[end:]
    if draw(st.integers(0, 3)) == 0:  # truncate one time in four: most of them stay XML
        data = data[: draw(st.integers(0, len(data)))]
    return data


# Tokens of XML syntax and WSXF names, strung together: mostly broken documents, some
# well-formed ones that reach the report checks.
_XMLISH = st.lists(
    st.sampled_from(
        [
            *"<>/=\"' &;!?[]-:",
            *["Reports", "Report", "Step", "xmlns", f'"{NS}"', "a", "1"],
            *['<?xml version="1.0" encoding="', "rot13", "utf-16", "cp1252", "UTF-8"],
        ]
    ),
    max_size=80,
).map("".join)


def _only_report_errors(data: bytes) -> None:
    """Parse; any exception but a ReportError fails the test. Outcomes show as events."""
    try:
        wsxf.parse(data)
    except ReportError as exc:
        event(type(exc).__name__)
    else:
        event("parsed")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_report_errors(data: bytes) -> None:
    _only_report_errors(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_XMLISH)
def test_xml_like_text_raises_only_report_errors(text: str) -> None:
    _only_report_errors(text.encode())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_exports())
def test_mutated_exports_raise_only_report_errors(data: bytes) -> None:
    _only_report_errors(data)
