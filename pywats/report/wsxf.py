"""WSXF, the WATS Standard XML Format: parse it into the same report model as WSJF.

A WSXF document is a ``Reports`` element holding ``Report`` elements (namespace
:data:`WSXF_NAMESPACE`; the older :data:`WRML_NAMESPACE` and no namespace are accepted too).
:func:`parse` returns every report, :func:`parse_one` insists on exactly one.

How: the XML is turned into the WSJF-shaped JSON object the server would export for the
same report, and :func:`pywats.report.wsjf.structure` builds the model from that. Going
through WSJF reuses its strict type checks and its field paths, so an error in a WSXF file
is reported at the same path as the same error in a WSJF file
(``root.steps[0].steps[3].numericMeas[0].value``), and the two formats cannot drift apart
in what they accept. This module only does what is specific to XML: names, value syntax,
vocabularies spelled as words, and the shape rules below. Every error message also names
the XML element and line it came from.

The target is the server's own WSJF export of the same report (``tests/data`` holds both
exports of one report; ``docs/report-format.md`` has the full name table). Three rules
make the two agree; each is backed by those exports:

* Values get the WSJF type of their field, not of their spelling: ``NumericValue="10"``
  becomes ``10.0`` because the export writes measurements, times and exit codes as floats;
  ids and counts become integers; ``MiscInfo@Numeric`` stays an integer when it is written as
  one (the export writes ``"numeric": 100``).
* The XML export writes an unset optional string as an empty attribute where the JSON export
  writes ``null`` (units, chart units, sequence version, popup response, product name,
  typedef). For exactly those attributes (:data:`_EMPTY_IS_UNSET`) ``""`` means unset.
* A key the JSON export always writes (as ``null`` or ``[]`` when unset) is written the same
  way here when the XML leaves it out (``highLimit``, ``loop.idx``, ``miscInfos`` ...).
  Keys the export leaves out when unset stay out.

Unknown elements and attributes are errors, not silently dropped: a report uploaded
without, say, its attachments would look complete and be wrong. WSXF attributes known to
have no WSJF counterpart (``StepIndex``, ``MeasIndex``, ``MeasOrderNumber``, ``idx`` ...) are
read or skipped on purpose; each ``_Spec`` lists them. Namespaced attributes (``xsi:*``) are
ignored.

Security: the parser is expat, used directly. Any DTD is refused before it is read, so
no entity is ever declared or expanded and nothing external is loaded (billion laughs,
XXE). Element nesting is limited to :data:`MAX_DEPTH`, and nothing here recurses, so a
hostile file gives a :class:`~pywats.errors.MalformedInputError` or a
:class:`~pywats.errors.ReportValidationError`, never a RecursionError.

Mapped from Virinco's WSXF schema (its C# WSXF-to-WRML converter) but not seen in any
export, so unverified: the UUR header (``UUR`` element), sub-unit ``Idx``/``ParentIDX``/
``ReplacedIDX``, ``Failures`` (linked to a sub-unit by ``PartIdx``), step ``Attachment``,
``Start``, ``TSGuid``, ``StepCausedSequenceFailure`` and the ``*Format`` attributes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NoReturn
from xml.parsers import expat

from pywats.errors import FieldError, MalformedInputError, ReportValidationError
from pywats.report import wsjf
from pywats.report.codes import CompOp, ReportType, Result, Status, StepGroup
from pywats.report.model import JSON, Report
from pywats.report.validate import is_guid
from pywats.report.validate import validate as check_rules

WSXF_NAMESPACE = "http://wats.virinco.com/schemas/WATS/Report/wsxf"
#: The namespace of WSXF's predecessor, still written by older tools.
WRML_NAMESPACE = "http://wats.virinco.com/schemas/WATS/Report/wrml"
_NAMESPACES = (WSXF_NAMESPACE, WRML_NAMESPACE, "")

#: Deepest element nesting accepted. Real sequences nest tens of levels; the limit keeps
#: the model's recursive structuring and JSON writing (wsjf.structure, wsjf.dumps) well
#: inside Python's default recursion limit for every report this module accepts.
MAX_DEPTH = 256

# expat joins namespace and local name with this; local names cannot contain it, so
# splitting at its last occurrence is unambiguous.
_NS_SEP = " "
_XML_SPACE = " \t\r\n"


# --- The XML tree ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Element:
    """One element: local name (``{uri}name`` when in a foreign namespace), attributes."""

    name: str
    attrs: dict[str, str]
    line: int
    column: int
    children: list[_Element] = field(default_factory=list)
    text_parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    @property
    def where(self) -> str:
        return f"<{self.name}> at line {self.line}, column {self.column}"


class _Refused(Exception):
    """Raised inside expat handlers; becomes a MalformedInputError."""


class _TreeBuilder:
    def __init__(self, parser: expat.XMLParserType) -> None:
        self.parser = parser
        self.stack: list[_Element] = []
        self.root: _Element | None = None
        self.namespace = ""

    def start(self, qname: str, attrs: dict[str, str]) -> None:
        line = self.parser.CurrentLineNumber
        column = self.parser.CurrentColumnNumber + 1
        if len(self.stack) >= MAX_DEPTH:
            raise _Refused(
                f"XML is nested deeper than {MAX_DEPTH} elements (at line {line}, column {column})"
            )
        namespace, _, local = qname.rpartition(_NS_SEP)
        if self.root is None:
            self.namespace = namespace
        elif namespace != self.namespace:
            # Elements of another vocabulary match no WSXF name and are reported as unknown.
            local = f"{{{namespace}}}{local}"
        element = _Element(local, attrs, line, column)
        if self.stack:
            self.stack[-1].children.append(element)
        else:
            self.root = element
        self.stack.append(element)

    def end(self, _: str) -> None:
        self.stack.pop()

    def data(self, text: str) -> None:
        if self.stack:
            self.stack[-1].text_parts.append(text)


def _refuse_dtd(*_: object) -> NoReturn:
    raise _Refused(
        "XML with a DTD/entity declarations is not accepted (WSXF needs none, and entities "
        "allow entity-expansion and external-entity attacks)"
    )


# The encodings expat decodes itself. For any other name expat would ask Python's codec
# registry, which knows non-text codecs (rot13, zlib) and raises LookupError/ValueError;
# WSXF writers (.NET) write UTF-8, so the short list loses nothing real.
_ENCODINGS = frozenset({"utf-8", "utf-16", "iso-8859-1", "us-ascii"})


def _check_declaration(_version: str, encoding: str | None, _standalone: int) -> None:
    # expat calls this before it looks the encoding up.
    if encoding is not None and encoding.lower() not in _ENCODINGS:
        raise _Refused(
            f"XML encoding {encoding!r} is not supported (use UTF-8; UTF-16, ISO-8859-1 and "
            "US-ASCII are read too)"
        )


def _parse_xml(data: bytes) -> tuple[_Element, str]:
    """The element tree and root namespace of ``data``; MalformedInputError if unreadable."""
    if not isinstance(data, bytes | bytearray | memoryview):
        # A str would bypass the document's own encoding declaration: a caller bug.
        raise TypeError(f"WSXF input must be bytes, got {type(data).__name__}")
    parser = expat.ParserCreate(namespace_separator=_NS_SEP)
    parser.buffer_text = True
    # Defence in depth: the doctype handler already stops any DTD before entities exist.
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    builder = _TreeBuilder(parser)
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.XmlDeclHandler = _check_declaration
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.UnparsedEntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    try:
        parser.Parse(bytes(data), True)
    except expat.ExpatError as exc:
        raise MalformedInputError(
            f"not valid XML: {expat.ErrorString(exc.code)} "
            f"at line {exc.lineno} column {exc.offset + 1}"
        ) from exc
    except _Refused as exc:
        raise MalformedInputError(str(exc)) from exc
    if builder.root is None:  # pragma: no cover - expat reports "no element found" first
        raise MalformedInputError("not valid XML: no element found")
    return builder.root, builder.namespace


# --- Values ----------------------------------------------------------------------------------


class _BadValue(ValueError):
    """An attribute value that is not of its field's type; the message is for people."""


_Parse = Callable[[str], JSON]

_INT = re.compile(r"[+-]?[0-9]{1,19}")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INT64 = 2**63


def _text(raw: str) -> str:
    return raw


def _int(raw: str) -> int:
    # xsd numbers allow surrounding whitespace (whiteSpace="collapse"); Python's int()
    # would also take "1_000" and non-ASCII digits, which xsd does not.
    text = raw.strip(_XML_SPACE)
    if not _INT.fullmatch(text):
        raise _BadValue(f"{raw!r} is not an integer")
    value = int(text)
    if not -_INT64 <= value < _INT64:
        raise _BadValue(f"{raw!r} is out of range")
    return value


def _float(raw: str) -> float:
    text = raw.strip(_XML_SPACE)
    if text in ("NaN", "INF", "-INF", "+INF"):
        raise _BadValue(f"{raw!r} is not a finite number (WSJF cannot carry it)")
    if not _FLOAT.fullmatch(text):
        raise _BadValue(f"{raw!r} is not a number")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _BadValue(f"{raw!r} is too large for a double")
    return value


def _number(raw: str) -> int | float:
    """An integer when written as one, else a float (``MiscInfo@Numeric``, see module doc)."""
    text = raw.strip(_XML_SPACE)
    return _int(text) if _INT.fullmatch(text) else _float(raw)


def _bool(raw: str) -> bool:
    text = raw.strip(_XML_SPACE)
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise _BadValue(f"{raw!r} is not a boolean (true, false, 1 or 0)")


def _guid(raw: str) -> str:
    # WSXF exports write GUIDs in upper case, WSJF in lower case; anything that is not a
    # GUID is kept as written so the validation message shows it.
    return raw.lower() if is_guid(raw) else raw


def _words(codes: Iterable[ReportType | Result | Status | StepGroup], what: str) -> _Parse:
    table = {code.wsxf: code.value for code in codes}
    allowed = ", ".join(table)
    # Any case, as for WSJF codes (wsjf module doc): ``PASSED`` is ``Passed``. ASCII only.
    by_upper = {word.upper(): value for word, value in table.items()}

    def parse(raw: str) -> str:
        value = table.get(raw)
        if value is None and raw.isascii():
            value = by_upper.get(raw.upper())
        if value is None:
            raise _BadValue(f"{raw!r} is not {what} ({allowed})")
        return value

    return parse


def _comp_op(raw: str) -> str:
    # Virinco's own WSXF converter writes "Log" for an empty or missing operator, so case
    # is not significant and "" means LOG.
    if raw == "":
        return CompOp.LOG.value
    # ASCII only: str.upper() maps some other letters onto ASCII ones.
    op = _COMP_OPS.get(raw.upper()) if raw.isascii() else None
    if op is None:
        allowed = ", ".join(op.value for op in CompOp)
        raise _BadValue(f"{raw!r} is not a comparison operator ({allowed})")
    return op.value


_COMP_OPS = {op.value: op for op in CompOp}


_report_type = _words(ReportType, "a report type")
_result = _words(Result, "a report result")
_status = _words(Status, "a status")
_group = _words(StepGroup, "a step group")


# --- What each element holds -----------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """How one WSXF element's attributes map to the keys of one WSJF object.

    ``attrs``: XML attribute -> (WSJF key, value parser). ``skipped``: WSXF attributes with
    no WSJF counterpart, read elsewhere or dropped on purpose. ``nulls``: keys the server's
    WSJF export writes as ``null`` when unset (seen so in tests/data), written so here too.
    """

    attrs: Mapping[str, tuple[str, _Parse]]
    skipped: frozenset[str] = frozenset()
    nulls: tuple[str, ...] = ()


# XML "" -> unset, where the twin exports show WSXF "" for WSJF null (see module doc).
_EMPTY_IS_UNSET = frozenset(
    {
        ("Report", "ProductName"),
        ("MiscInfo", "Typedef"),
        ("NumericLimit", "Units"),
        ("SequenceCall", "Version"),
        ("MessagePopup", "Response"),
        ("Chart", "XUnit"),
        ("Chart", "YUnit"),
    }
)

_REPORT = _Spec(
    {
        "type": ("type", _report_type),
        "ID": ("id", _guid),
        "Start": ("start", _text),
        "Start_utc": ("startUTC", _text),
        "Result": ("result", _result),
        "SN": ("sn", _text),
        "PN": ("pn", _text),
        "Rev": ("rev", _text),
        "MachineName": ("machineName", _text),
        "Location": ("location", _text),
        "Purpose": ("purpose", _text),
        "origin": ("origin", _text),
        "ProductName": ("productName", _text),
    },
    nulls=("productName", "processCodeFormat"),
)
_PROCESS = _Spec(
    {
        "Code": ("processCode", _int),
        "Name": ("processName", _text),
        "CodeFormat": ("processCodeFormat", _text),
    }
)
_UUT = _Spec(
    {
        "UserLoginName": ("user", _text),
        "BatchSN": ("batchSN", _text),
        "TestSocketIndex": ("testSocketIndex", _int),
        "TestSocketIndexFormat": ("testSocketIndexFormat", _text),
        "ExecutionTime": ("execTime", _float),
        "ExecutionTimeFormat": ("execTimeFormat", _text),
        "FixtureId": ("fixtureId", _text),
        "ErrorCode": ("errorCode", _int),
        "ErrorCodeFormat": ("errorCodeFormat", _text),
        "ErrorMessage": ("errorMessage", _text),
        "BatchFailCount": ("batchFailCount", _int),
        "BatchFailCountFormat": ("batchFailCountFormat", _text),
        "BatchLoopIndex": ("batchLoopIndex", _int),
        "BatchLoopIndexFormat": ("batchLoopIndexFormat", _text),
        "StepIdCausedUUTFailure": ("stepIdCausedUUTFailure", _int),
    },
    skipped=frozenset({"ParameterBaseVersion"}),
    nulls=("batchLoopIndex",),
)
_UUR = _Spec(
    {
        "UserLoginName": ("user", _text),
        "ExecutionTime": ("execTime", _float),
        "Active": ("active", _bool),
        "ConfirmDate": ("confirmDate", _text),
        "FinalizeDate": ("finalizeDate", _text),
        "ReferencedUUT": ("refUUT", _guid),
        "Parent": ("parent", _guid),
    },
    nulls=("parent",),
)
_MISC_INFO = _Spec(
    {
        "Description": ("description", _text),
        "Numeric": ("numeric", _number),
        "NumericFormat": ("numericFormat", _text),
        "Typedef": ("typedef", _text),
        "Id": ("id", _text),
    },
    # idx/order_no number the entries; WSJF keeps them in array order instead.
    skipped=frozenset({"idx", "order_no"}),
    nulls=("text", "numeric"),
)
_SUB_UNIT = _Spec(
    {
        "PartType": ("partType", _text),
        "PN": ("pn", _text),
        "SN": ("sn", _text),
        "Rev": ("rev", _text),
        "Position": ("position", _int),
        "Idx": ("idx", _int),
        "ParentIDX": ("parentIdx", _int),
        "ReplacedIDX": ("replacedIdx", _int),
    }
)
_FAILURE = _Spec(
    {
        "Category": ("category", _text),
        "Code": ("code", _text),
        "Comment": ("comment", _text),
        "CompRef": ("comRef", _text),
        "FunctionBlock": ("funcBlock", _text),
        "StepID": ("refStepId", _int),
        "ArticleNumber": ("artNumber", _text),
        "ArticleRevision": ("artRev", _text),
        "ArticleVendor": ("artVendor", _text),
        "ArticleDescription": ("artDescription", _text),
    },
    # PartIdx places the failure on a sub-unit; Failcode is a server GUID WSJF does not
    # carry; Idx numbers the failures (array order in WSJF).
    skipped=frozenset({"PartIdx", "Failcode", "Idx"}),
    nulls=("artNumber", "artRev", "artVendor", "artDescription", "funcBlock"),
)
_STEP = _Spec(
    {
        "Id": ("id", _int),
        "Group": ("group", _group),
        "Name": ("name", _text),
        "StepType": ("stepType", _text),
        "Status": ("status", _status),
        "total_time": ("totTime", _float),
        "total_timeFormat": ("totTimeFormat", _text),
        "Start": ("start", _text),
        "TSGuid": ("tsGuid", _text),
        "StepCausedUUTFailure": ("causedUUTFailure", _bool),
        "StepCausedSequenceFailure": ("causedSeqFailure", _bool),
        "StepErrorCode": ("errorCode", _int),
        "StepErrorCodeFormat": ("errorCodeFormat", _text),
        "StepErrorMessage": ("errorMessage", _text),
    },
    # StepIndex/Idx: position among siblings (array order in WSJF); module_time and the
    # interactive execution number have no WSJF field.
    skipped=frozenset(
        {
            "StepIndex",
            "Idx",
            "module_time",
            "module_timeFormat",
            "InteractiveExeNum",
            "InteractiveExeNumFormat",
        }
    ),
)
_LOOP = _Spec(
    {
        "index": ("idx", _int),
        "num": ("num", _int),
        "ending_index": ("endingIndex", _int),
        "passed": ("passed", _int),
        "failed": ("failed", _int),
    },
    nulls=("idx", "num", "endingIndex", "passed", "failed"),
)
# MeasIndex orders a step's measurements (array order in WSJF); MeasOrderNumber numbers
# them across the whole report; neither is a WSJF field.
_MEAS_SKIPPED = frozenset({"MeasIndex", "MeasOrderNumber"})
_SEQUENCE_CALL = _Spec(
    {"Filepath": ("path", _text), "Name": ("name", _text), "Version": ("version", _text)},
    # The export's seqCall.path is Filepath; Filename has no WSJF field.
    skipped=frozenset({"Filename"}) | _MEAS_SKIPPED,
    nulls=("version",),
)
_NUMERIC_LIMIT = _Spec(
    {
        "Name": ("name", _text),
        "NumericValue": ("value", _float),
        "NumericValueFormat": ("valueFormat", _text),
        "Units": ("unit", _text),
        "CompOperator": ("compOp", _comp_op),
        "LowLimit": ("lowLimit", _float),
        "LowLimitFormat": ("lowLimitFormat", _text),
        "HighLimit": ("highLimit", _float),
        "HighLimitFormat": ("highLimitFormat", _text),
        "Status": ("status", _status),
    },
    skipped=_MEAS_SKIPPED,
    nulls=("name", "unit", "lowLimit", "highLimit"),
)
_PASS_FAIL = _Spec(
    {"Name": ("name", _text), "Status": ("status", _status)},
    skipped=_MEAS_SKIPPED,
    nulls=("name",),
)
_STRING_VALUE = _Spec(
    {
        "Name": ("name", _text),
        "StringValue": ("value", _text),
        "StringLimit": ("limit", _text),
        "CompOperator": ("compOp", _comp_op),
        "Status": ("status", _status),
    },
    skipped=_MEAS_SKIPPED,
    nulls=("name", "limit"),
)
_MESSAGE_POPUP = _Spec(
    {"Button": ("button", _int), "Response": ("response", _text)},
    # ButtonFormat: the model has no messagePopup.buttonFormat (see the format doc).
    skipped=_MEAS_SKIPPED | {"ButtonFormat"},
    nulls=("response",),
)
_CALL_EXE = _Spec(
    {"ExitCode": ("exitCode", _float)},
    # ExitCodeFormat: the model has no callExe.exitCodeFormat (see the format doc).
    skipped=_MEAS_SKIPPED | {"ExitCodeFormat"},
)
_CHART = _Spec(
    {
        "ChartType": ("chartType", _text),
        "Label": ("label", _text),
        "XLabel": ("xLabel", _text),
        "XUnit": ("xUnit", _text),
        "YLabel": ("yLabel", _text),
        "YUnit": ("yUnit", _text),
    },
    skipped=frozenset({"idx"}),  # always 0: one chart per step
    nulls=("xUnit", "yUnit"),
)
_SERIES = _Spec({"Name": ("name", _text), "DataType": ("dataType", _text)})
_ATTACHMENT = _Spec(
    {"Name": ("name", _text), "ContentType": ("contentType", _text)},
)

# Measurement element -> (WSJF array key, spec). Missing CompOperator means LOG, as in
# Virinco's WSXF converter.
_MEASUREMENTS: dict[str, tuple[str, _Spec]] = {
    "NumericLimit": ("numericMeas", _NUMERIC_LIMIT),
    "PassFail": ("booleanMeas", _PASS_FAIL),
    "StringValue": ("stringMeas", _STRING_VALUE),
}
# Arrays the JSON export always writes, as [] when empty (both exports in tests/data).
_REPORT_ARRAYS = ("miscInfos", "subUnits", "assets", "additionalData")
# WSXF elements this parser knows exist but cannot map yet (no export to check them
# against): refused with a pointer to WSJF rather than dropped.
_UNSUPPORTED = frozenset(
    {"AdditionalResults", "AdditionalData", "Asset", "Assets", "Binary", "BinaryData"}
)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- XML tree -> WSJF object -----------------------------------------------------------------


class _Converter:
    """Builds the WSJF object of one ``Report`` element, collecting every error."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        # WSJF path of each object -> the element it came from, to locate later errors.
        self.elements: dict[str, tuple[_Element, _Spec]] = {}

    def fail(self, path: str, message: str, element: _Element) -> None:
        self.errors.append(FieldError(path, f"{message} ({element.where})"))

    def unknown(self, path: str, child: _Element, parent: _Element) -> None:
        if child.name in _UNSUPPORTED:
            message = f"WSXF <{child.name}> is not supported yet; send this report as WSJF"
        else:
            message = f"unknown element <{child.name}> in <{parent.name}>"
        self.fail(path, message, child)

    def no_text(self, path: str, element: _Element) -> None:
        if element.text.strip(_XML_SPACE):
            self.fail(path, f"unexpected text in <{element.name}>", element)

    def fields(
        self, element: _Element, spec: _Spec, path: str, *, own_object: bool = True
    ) -> dict[str, JSON]:
        """The WSJF keys of ``element``'s attributes (bad values become errors).

        ``own_object``: the element is a WSJF object of its own at ``path`` (Process is not:
        its keys join the enclosing object).
        """
        if own_object:
            self.elements[path] = (element, spec)
        out: dict[str, JSON] = {}
        for name, raw in element.attrs.items():
            if _NS_SEP in name:
                continue  # xsi:* and other vocabularies' attributes carry no report data
            mapped = spec.attrs.get(name)
            if mapped is None:
                if name not in spec.skipped:
                    self.fail(path, f"unknown attribute {name} on <{element.name}>", element)
                continue
            key, parse = mapped
            if raw == "" and (element.name, name) in _EMPTY_IS_UNSET:
                continue
            try:
                out[key] = parse(raw)
            except _BadValue as exc:
                self.fail(_join(path, key), f"{element.name}@{name}: {exc}", element)
        for key in spec.nulls:
            out.setdefault(key, None)
        return out

    def text_only(self, element: _Element, path: str) -> str:
        """The text of an element that holds nothing else (Comment, ReportText, xdata)."""
        for name in element.attrs:
            if _NS_SEP not in name:
                self.fail(path, f"unknown attribute {name} on <{element.name}>", element)
        for child in element.children:
            self.unknown(path, child, element)
        return element.text

    def once(self, seen: dict[str, _Element], child: _Element, path: str) -> None:
        if child.name in seen:
            self.fail(path, f"more than one <{child.name}>", child)
        else:
            seen[child.name] = child

    def report(self, element: _Element) -> dict[str, JSON]:
        out = self.fields(element, _REPORT, "")
        self.no_text("", element)
        singles: dict[str, _Element] = {}
        misc: list[_Element] = []
        units: list[_Element] = []
        failures: list[_Element] = []
        steps: list[_Element] = []
        for child in element.children:
            match child.name:
                case "Process" | "UUT" | "UUR":
                    self.once(singles, child, "")
                case "MiscInfo":
                    misc.append(child)
                case "ReportUnitHierarchy":
                    units.append(child)
                case "Failures" | "Failure":
                    failures.append(child)
                case "Step":
                    steps.append(child)
                case _:
                    self.unknown("", child, element)
        if process := singles.get("Process"):
            out.update(self.process(process, ""))
        if uut := singles.get("UUT"):
            out["uut"] = self.uut(uut)
        if uur := singles.get("UUR"):
            out["uur"] = self.uur(uur)
        out["miscInfos"] = [self.misc_info(m, f"miscInfos[{i}]") for i, m in enumerate(misc)]
        out["subUnits"] = [self.sub_unit(u, f"subUnits[{i}]") for i, u in enumerate(units)]
        self.attach_failures(out["subUnits"], failures)
        if len(steps) > 1:
            self.fail("root", f"a report has one root <Step>, this one has {len(steps)}", steps[1])
        if steps:
            out["root"] = self.step_tree(steps[0])
        for key in _REPORT_ARRAYS:
            out.setdefault(key, [])
        return out

    def process(self, element: _Element, path: str) -> dict[str, JSON]:
        self.no_text(path, element)
        for child in element.children:
            self.unknown(path, child, element)
        return self.fields(element, _PROCESS, path, own_object=False)

    def comment_and_process(
        self, element: _Element, path: str, out: dict[str, JSON], *, process: bool
    ) -> None:
        self.no_text(path, element)
        seen: dict[str, _Element] = {}
        for child in element.children:
            if child.name == "Comment" or (process and child.name == "Process"):
                self.once(seen, child, path)
            else:
                self.unknown(path, child, element)
        if comment := seen.get("Comment"):
            out["comment"] = self.text_only(comment, _join(path, "comment"))
        if proc := seen.get("Process"):
            out.update(self.process(proc, path))

    def uut(self, element: _Element) -> dict[str, JSON]:
        out = self.fields(element, _UUT, "uut")
        self.comment_and_process(element, "uut", out, process=False)
        return out

    def uur(self, element: _Element) -> dict[str, JSON]:
        # The UUR's own Process is the test operation that found the failure.
        out = self.fields(element, _UUR, "uur")
        self.comment_and_process(element, "uur", out, process=True)
        return out

    def misc_info(self, element: _Element, path: str) -> dict[str, JSON]:
        out = self.fields(element, _MISC_INFO, path)
        for child in element.children:
            self.unknown(path, child, element)
        # The value is the element's text; the export writes "text": null for a
        # numeric entry, whose element is empty.
        text = element.text
        if text:
            out["text"] = text
        return out

    def sub_unit(self, element: _Element, path: str) -> dict[str, JSON]:
        self.no_text(path, element)
        for child in element.children:
            self.unknown(path, child, element)
        return self.fields(element, _SUB_UNIT, path)

    def attach_failures(self, units: list[dict[str, JSON]], failures: list[_Element]) -> None:
        for element in failures:
            # Without PartIdx a failure belongs to the repaired unit itself, idx 0.
            raw = element.attrs.get("PartIdx", "0")
            try:
                part = _int(raw)
            except _BadValue as exc:
                self.fail("subUnits", f"{element.name}@PartIdx: {exc}", element)
                continue
            index = next((i for i, u in enumerate(units) if u.get("idx") == part), None)
            if index is None:
                self.fail(
                    "subUnits",
                    f"{element.name}@PartIdx={part}: no ReportUnitHierarchy has Idx {part}",
                    element,
                )
                continue
            listed = units[index].setdefault("failures", [])
            path = f"subUnits[{index}].failures[{len(listed)}]"
            self.no_text(path, element)
            for child in element.children:
                self.unknown(path, child, element)
            listed.append(self.fields(element, _FAILURE, path))

    def step_tree(self, root: _Element) -> dict[str, JSON]:
        # Iterative on purpose: the depth of a hostile file must not reach Python's stack.
        out: dict[str, JSON] = {}
        pending = [(root, "root", out)]
        while pending:
            element, path, target = pending.pop()
            children = self.step(element, path, target)
            if children is None:
                continue
            slots: list[dict[str, JSON]] = [{} for _ in children]
            target["steps"] = slots
            pending.extend(
                (child, f"{path}.steps[{i}]", slots[i])
                for i, child in reversed(list(enumerate(children)))
            )
        return out

    def step(self, element: _Element, path: str, out: dict[str, JSON]) -> list[_Element] | None:
        """Fill ``out`` with one step; return its child steps (None when it has none)."""
        out.update(self.fields(element, _STEP, path))
        self.no_text(path, element)
        children: list[_Element] = []
        singles: dict[str, _Element] = {}
        measurements: dict[str, list[_Element]] = {name: [] for name in _MEASUREMENTS}
        for child in element.children:
            if child.name == "Step":
                children.append(child)
            elif child.name in _MEASUREMENTS:
                measurements[child.name].append(child)
            elif child.name in (
                "ReportText",
                "Loop",
                "SequenceCall",
                "MessagePopup",
                "Callexe",
                "Chart",
                "Attachment",
            ):
                self.once(singles, child, path)
            else:
                self.unknown(path, child, element)
        for name, found in measurements.items():
            if found:
                key, spec = _MEASUREMENTS[name]
                out[key] = self.measurements(found, spec, _join(path, key))
        if text := singles.get("ReportText"):
            out["reportText"] = self.text_only(text, _join(path, "reportText"))
        for name, key, spec in (
            ("Loop", "loop", _LOOP),
            ("SequenceCall", "seqCall", _SEQUENCE_CALL),
            ("MessagePopup", "messagePopup", _MESSAGE_POPUP),
            ("Callexe", "callExe", _CALL_EXE),
        ):
            if found_single := singles.get(name):
                out[key] = self.leaf(found_single, spec, _join(path, key))
        if chart := singles.get("Chart"):
            out["chart"] = self.chart(chart, _join(path, "chart"))
        if attachment := singles.get("Attachment"):
            out["attachment"] = self.attachment(attachment, _join(path, "attachment"))
        if children or "SequenceCall" in singles:
            return children
        return None

    def leaf(self, element: _Element, spec: _Spec, path: str) -> dict[str, JSON]:
        self.no_text(path, element)
        for child in element.children:
            self.unknown(path, child, element)
        return self.fields(element, spec, path)

    def measurements(self, found: list[_Element], spec: _Spec, path: str) -> list[dict[str, JSON]]:
        ordered = self.by_meas_index(found, path)
        out = []
        for i, element in enumerate(ordered):
            meas = self.leaf(element, spec, f"{path}[{i}]")
            if "CompOperator" in spec.attrs:
                meas.setdefault("compOp", CompOp.LOG.value)
            out.append(meas)
        return out

    def by_meas_index(self, found: list[_Element], path: str) -> list[_Element]:
        """Measurements in MeasIndex order when every one has it, else document order."""
        keyed: list[tuple[int, int, _Element]] = []
        for i, element in enumerate(found):
            raw = element.attrs.get("MeasIndex")
            if raw is None:
                return found
            try:
                keyed.append((_int(raw), i, element))
            except _BadValue as exc:
                self.fail(f"{path}[{i}]", f"{element.name}@MeasIndex: {exc}", element)
                return found
        return [element for _, _, element in sorted(keyed, key=lambda k: (k[0], k[1]))]

    def chart(self, element: _Element, path: str) -> dict[str, JSON]:
        out = self.fields(element, _CHART, path)
        self.no_text(path, element)
        series: list[dict[str, JSON]] = []
        for child in element.children:
            if child.name != "Series":
                self.unknown(path, child, element)
                continue
            series_path = f"{path}.series[{len(series)}]"
            item = self.fields(child, _SERIES, series_path)
            self.no_text(series_path, child)
            seen: dict[str, _Element] = {}
            for data in child.children:
                if data.name in ("xdata", "ydata"):
                    self.once(seen, data, series_path)
                    item[data.name] = self.text_only(data, _join(series_path, data.name))
                else:
                    self.unknown(series_path, data, child)
            series.append(item)
        out["series"] = series
        return out

    def attachment(self, element: _Element, path: str) -> dict[str, JSON]:
        for child in element.children:
            self.unknown(path, child, element)
        out = self.fields(element, _ATTACHMENT, path)
        # The file is the element's base64 text; surrounding line breaks are layout.
        out["data"] = element.text.strip(_XML_SPACE)
        return out

    def locate(self, errors: Iterable[FieldError]) -> list[FieldError]:
        """``errors`` with the XML spelling and element of each path added.

        Errors found on the model (a required key missing, a WSJF rule broken) know only
        the WSJF path; people editing the XML need the attribute name and line too.
        """
        out = []
        for error in errors:
            path = error.path
            while path not in self.elements and path:
                cut = max(path.rfind("."), path.rfind("["))
                path = path[:cut] if cut > 0 else ""
            if path not in self.elements:  # pragma: no cover - "" (the Report) is always there
                out.append(error)
                continue
            element, spec = self.elements[path]
            key = error.path[len(path) :].removeprefix(".")
            attribute = _xml_attribute(element.name, spec, key)
            named = f"{attribute}; " if attribute else ""
            out.append(FieldError(error.path, f"{error.message} ({named}{element.where})"))
        return out


def _xml_attribute(element: str, spec: _Spec, key: str) -> str:
    """The WSXF attribute that holds WSJF ``key`` of ``element`` (``Step@Name``), or ""."""
    for attribute, (wire, _) in spec.attrs.items():
        if wire == key:
            return f"{element}@{attribute}"
    if element in ("Report", "UUR"):  # their process keys come from the Process child
        for attribute, (wire, _) in _PROCESS.attrs.items():
            if wire == key:
                return f"Process@{attribute}"
    return ""


def _build(element: _Element, *, validate: bool) -> Report:
    converter = _Converter()
    obj = converter.report(element)
    errors = list(converter.errors)
    try:
        report = wsjf.structure(obj)
    except ReportValidationError as exc:
        # A value refused above is left out of obj, so structure may report the same path
        # again as missing; the first message is the useful one.
        seen = {e.path for e in errors}
        errors.extend(converter.locate(e for e in exc.errors if e.path not in seen))
        raise ReportValidationError(errors) from exc
    if errors:
        raise ReportValidationError(errors)
    if validate:
        try:
            check_rules(report)
        except ReportValidationError as exc:
            raise ReportValidationError(converter.locate(exc.errors)) from exc
    return report


# --- Public API ------------------------------------------------------------------------------


def _report_elements(data: bytes) -> list[_Element]:
    root, namespace = _parse_xml(data)
    if root.name != "Reports" or namespace not in _NAMESPACES:
        found = f"{{{namespace}}}{root.name}" if namespace else root.name
        raise MalformedInputError(
            f"not a WSXF document: the root element is <{found}>, expected <Reports> in "
            f"namespace {WSXF_NAMESPACE} (or {WRML_NAMESPACE}, or none)"
        )
    for child in root.children:
        if child.name != "Report":
            raise MalformedInputError(f"unexpected element {child.where} in <Reports>")
    if root.text.strip(_XML_SPACE):
        raise MalformedInputError(f"unexpected text in <Reports> (line {root.line})")
    if not root.children:
        raise MalformedInputError("the WSXF document holds no <Report>")
    return root.children


def parse(data: bytes, *, validate: bool = True) -> list[Report]:
    """Every report of a WSXF ``Reports`` document, in document order.

    Raises MalformedInputError when ``data`` is not XML, carries a DTD, nests too deeply,
    is not a ``Reports`` document or holds no ``Report``; ReportValidationError (with WSJF
    field paths and the XML line of each problem) when a report has bad values or, unless
    ``validate`` is false, breaks a WSJF rule (:mod:`pywats.report.validate`). The first
    report with a problem raises; its errors name lines, so which report is clear.
    """
    return [_build(element, validate=validate) for element in _report_elements(data)]


def parse_one(data: bytes, *, validate: bool = True) -> Report:
    """The single report of a WSXF document; MalformedInputError unless there is exactly one.

    Other errors as :func:`parse`.
    """
    elements = _report_elements(data)
    if len(elements) != 1:
        raise MalformedInputError(
            f"expected exactly one <Report>, the document holds {len(elements)}"
        )
    return _build(elements[0], validate=validate)
