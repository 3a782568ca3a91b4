"""The ``xjtag`` converter: XJTAG ``.xjlog`` archives (equipment-formats.md 6).

An ``.xjlog`` is a ZIP archive::

    Info.xml        <LogFileInfo><Version>1</Version><TestRunCount>6</TestRunCount>
                    <ProjectPath>C:\\...\\demo.xjp</ProjectPath> ...
    Run 1.xml       one test run (one unit), UTF-8 with a byte-order mark
    Run 1.checksum  (may be 0 bytes; not read)
    ...             opaque connection-test data (not read)

Each ``Run N.xml`` becomes one report::

    <testrun datetime="2019-10-28T13:52:10.8594008Z">          start, UTC
      <testgroup name="Check Chain">                            a sequence
        <testfunction name="CheckChain">                        a pass/fail step
          <text-output output-type="Error"><![CDATA[...]]>      its report text
          <result value="Failed" />                             its status
          <time-taken>232</time-taken>                          ms (newer XJTAG)
      ...
      <testruninfo>  project-description, user, serial, xjlink-serial, xjlink-name,
                     result (the unit verdict), time-taken (ms), xjtag-version

The archive is read in memory only (nothing is extracted) and within the limits below;
a member name that is absolute or climbs out with ``..`` refuses the whole file. The XML
is read with expat and any DTD is refused, so no entity is ever expanded.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
import zlib
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import IO
from xml.etree.ElementTree import Element, ParseError, XMLParser
from xml.parsers import expat

import attrs

from pywats.converters.arguments import check_arguments
from pywats.converters.base import ConversionContext, Source
from pywats.converters.helpers import (
    decode_auto,
    parse_float,
    parse_int,
    parse_result,
    parse_status,
    show,
    start_fields,
    station_time,
    unit_reports,
    worst_status,
)
from pywats.converters.sniffing import never_raises
from pywats.errors import ConversionError
from pywats.report.codes import ReportType, Status, StepGroup
from pywats.report.model import (
    BooleanMeasurement,
    MiscInfo,
    Report,
    SequenceCallInfo,
    Step,
    UUTInfo,
)

#: At most this many members in an archive (real logs hold 2 per run plus a few).
MAX_MEMBERS = 10_000
#: At most this many bytes uncompressed, all members together: checked against the sizes
#: the archive declares before anything is read, and against the bytes really inflated
#: while reading (a member may lie about its size: zip bombs).
MAX_UNCOMPRESSED_BYTES = 256 * 1024 * 1024
#: A step's report text is cut to this many characters (head and tail kept). WSJF sets
#: no limit; the server's own exports hold 4399 characters, and 5000 is the longest text
#: field pyWATS allows (comment).
MAX_REPORT_TEXT = 5000
#: Misc info values are at most 100 characters on the server (wats-format.md 7.1).
MAX_MISC_TEXT = 100
#: Test groups nested deeper than this are refused (real runs nest none).
MAX_DEPTH = 64

_RUN_MEMBER = re.compile(r"Run ([0-9]{1,6})\.xml", re.IGNORECASE)
_INFO_MEMBER = "info.xml"
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:[.,]([0-9]{1,9}))?(Z|[+-][0-9]{2}:?[0-9]{2})?"
)
_DECLARED = re.compile(rb"""^(?:\xef\xbb\xbf)?<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)""")
# The local file header of a ZIP member: signature, then 26 bytes, then the name.
_SNIFF_MEMBER = re.compile(rb"PK\x03\x04[\s\S]{22}([\s\S]{2})[\s\S]{2}(Info\.xml|Run [0-9]+\.xml)")
# Patterns over text from the file stay linear: a tag ends at the next "<" too.
_TAG = re.compile(r"<[^<>]*>")
_LAYOUT_HEAD = re.compile(r"\A\n[ \t]+")
_LAYOUT_TAIL = re.compile(r"\n[ \t]+\Z")
_BREAK = re.compile(r"<br\s*/?>|</(?:p|div|h[1-6]|tr|li)>", re.IGNORECASE)
_ERROR_OPEN = re.compile(
    r"""<(\w+)\b[^<>]*?\bclass\s*=\s*["'][^"'<>]*error[^"'<>]*["'][^<>]*>""", re.IGNORECASE
)
#: How far an error heading's closing tag is looked for, and how many headings are tried
#: per HTML block: the report text is bounded anyway, and hostile HTML stays cheap.
_ERROR_SPAN = 4000
_ERROR_TRIES = 200


@attrs.frozen
class XjtagArguments:
    """Arguments of the ``xjtag`` converter."""

    #: Process code of the reports (the boundary-scan operation on your WATS server).
    operationTypeCode: int = 10
    #: Part number; None takes the run's project-description.
    partNumber: str | None = None
    #: Part revision (XJTAG logs carry none).
    revision: str = "1.0"
    #: Root sequence version (XJTAG logs carry the project path, not its version).
    sequenceVersion: str = "1.0.0"
    #: Convert the runs present when Info.xml announces more (TestRunCount) than the
    #: archive holds; by default such an archive is refused, so no unit goes missing
    #: unnoticed.
    allowMissingRuns: bool = False

    def __attrs_post_init__(self) -> None:
        check_arguments(self)


class _Bad(Exception):
    """What is wrong and where (member, element path); becomes a ConversionError."""


# --- The archive -----------------------------------------------------------------------------


def _unsafe_name(name: str) -> str | None:
    """Why a member name is unsafe (absolute, a drive, ``..``), or None if it is fine."""
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return "is an absolute path"
    if ".." in re.split(r"[/\\]", name):
        return "climbs out of the archive with '..'"
    if "\x00" in name:
        return "contains a NUL character"
    return None


#: A value (member name, text) for a message: quoted, escaped, at most 80 characters (a
#: member's path inside the archive runs longer than a line of a text log).
_show = partial(show, most=80)


@attrs.frozen
class _Archive:
    """The members this converter reads, as bytes: Info.xml and the runs by number."""

    info: bytes | None
    runs: dict[int, tuple[str, bytes]]


def _read_archive(data: bytes) -> _Archive:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise _Bad(f"not a readable ZIP archive (an .xjlog is one): {exc}") from None
    except (NotImplementedError, RuntimeError, IndexError, KeyError) as exc:
        raise _Bad(f"not a readable ZIP archive: {type(exc).__name__}: {exc}") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise _Bad(f"the archive has {len(members)} members, more than {MAX_MEMBERS}")
        declared = 0
        wanted: list[tuple[zipfile.ZipInfo, int | None]] = []
        seen: set[str] = set()
        for member in members:
            problem = _unsafe_name(member.filename)
            if problem:
                raise _Bad(f"archive member {_show(member.filename)} {problem}: refused")
            declared += member.file_size
            folded = member.filename.casefold()
            if folded == _INFO_MEMBER:
                wanted.append((member, None))
            elif match := _RUN_MEMBER.fullmatch(member.filename):
                wanted.append((member, int(match.group(1))))
            else:
                continue
            if folded in seen:
                raise _Bad(f"archive member {_show(member.filename)} is there twice")
            seen.add(folded)
        if declared > MAX_UNCOMPRESSED_BYTES:
            raise _Bad(
                f"the archive would inflate to {declared} bytes, more than {MAX_UNCOMPRESSED_BYTES}"
            )
        info: bytes | None = None
        runs: dict[int, tuple[str, bytes]] = {}
        budget = MAX_UNCOMPRESSED_BYTES
        for member, run in wanted:
            content = _read_member(archive, member, budget)
            budget -= len(content)
            if run is None:
                info = content
            elif run in runs:
                raise _Bad(
                    f"archive members {_show(runs[run][0])} and {_show(member.filename)} clash"
                )
            else:
                runs[run] = (member.filename, content)
    return _Archive(info=info, runs=runs)


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, budget: int) -> bytes:
    """``member``'s bytes, inflated in chunks, never past its declared size or ``budget``."""
    name = member.filename
    if member.flag_bits & 0x1:
        raise _Bad(f"archive member {_show(name)} is encrypted")
    try:
        with archive.open(member) as stream:
            content = _inflate(stream, min(member.file_size, budget))
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise _Bad(f"archive member {_show(name)} is damaged: {exc}") from None
    except (NotImplementedError, RuntimeError) as exc:
        raise _Bad(f"archive member {_show(name)} cannot be read: {exc}") from None
    if content is None:
        raise _Bad(
            f"archive member {_show(name)} inflates beyond its declared size "
            f"({member.file_size} bytes) or the limit of {MAX_UNCOMPRESSED_BYTES} bytes"
        )
    return content


def _inflate(stream: IO[bytes], limit: int) -> bytes | None:
    """At most ``limit`` bytes from ``stream``; None if it holds more (a lying header)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read(min(64 * 1024, limit - size + 1)):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


# --- XML ---------------------------------------------------------------------------------------


@attrs.frozen
class _Document:
    """A parsed XML member."""

    root: Element

    @staticmethod
    def content(element: Element) -> str:
        """What an output element printed: its text without the layout around its CDATA.

        Newer XJTAG writes ``<text-output>\\n        <![CDATA[...]]>\\n      </text-output>``:
        a newline plus indent before the CDATA and after it is pretty-printing, not output.
        (A newline without indent, as older XJTAG starts some outputs with, is kept.)
        """
        text = element.text or ""
        if text.startswith("\n"):
            text = _LAYOUT_HEAD.sub("", text, count=1)
        if text.endswith((" ", "\t")):
            text = _LAYOUT_TAIL.sub("", text, count=1)
        return text


def _doctype(text: str) -> bool:
    """Whether the prolog (the only place XML allows one) holds a document type declaration."""
    at = 0
    while True:
        while at < len(text) and text[at] in " \t\r\n\ufeff":
            at += 1
        if text.startswith("<?", at):
            end = text.find("?>", at)
        elif text.startswith("<!--", at):
            end = text.find("-->", at)
        else:
            return text.startswith("<!", at)  # <!DOCTYPE (any case: refused as well)
        if end < 0:
            return False  # an unterminated prolog: expat reports it
        at = end + 2


def _parse_xml(data: bytes, member: str) -> _Document:
    """The element tree of ``data``; _Bad naming ``member`` when it is not safe, valid XML.

    Decoded first by its byte-order mark or declared encoding (helpers.decode_auto), then
    parsed as text, so the declaration cannot pick a codec Python does not trust. A DTD
    is refused before expat sees it: no entity is ever declared or expanded, nothing
    external is loaded. The C parser and tree builder keep this fast (no Python call per
    element) and build deep trees without recursion; only test groups are walked
    recursively, and their nesting is bounded (MAX_DEPTH).
    """
    head = _DECLARED.match(data[:200])
    declared = head.group(1).decode("ascii") if head else None
    try:
        text = decode_auto(data, declared)
    except ValueError as exc:
        # decode_text's hint names an `encoding` argument; here the file declares its own.
        reason = str(exc).replace("; set the converter's `encoding` argument", "")
        raise _Bad(f"{member}: {reason}") from None
    if _doctype(text):
        raise _Bad(
            f"{member}: XML with a DTD/entity declarations is not accepted (XJTAG writes "
            "none, and entities allow entity-expansion attacks)"
        )
    parser = XMLParser()
    try:
        # A str is parsed as UTF-8 whatever the declaration says: it is already decoded.
        parser.feed(text.lstrip("\ufeff"))
        root = parser.close()
    except ParseError as exc:
        line, column = exc.position
        raise _Bad(
            f"{member}: not valid XML: {expat.ErrorString(exc.code)} at line {line} "
            f"column {column + 1}"
        ) from None
    return _Document(root)


def _text(element: Element | None) -> str:
    """The element's text, stripped ('' when absent)."""
    if element is None:
        return ""
    return "".join(element.itertext()).strip()


# --- Text output -------------------------------------------------------------------------------


def _html_text(fragment: str) -> str:
    return html.unescape(_TAG.sub("", _BREAK.sub("\n", fragment)))


def _error_headings(fragment: str) -> list[str]:
    """The text of elements whose class names an error (``<h2 class="ct_error">``)."""
    out: list[str] = []
    for tries, match in enumerate(_ERROR_OPEN.finditer(fragment)):
        if tries >= _ERROR_TRIES:
            break
        start = match.end()
        end = fragment.find(f"</{match.group(1)}>", start, start + _ERROR_SPAN)
        if end >= 0 and (text := _html_text(fragment[start:end]).strip()):
            out.append(text)
    return out


def _output_text(doc: _Document, function: Element) -> str:
    """What the test function printed, in order: its text output and the text of inline
    HTML (component and pin names), plus error headings from block HTML (connection-test
    faults such as "Short found between nets: IO13, IO14")."""
    parts: list[str] = []
    for child in function:
        if child.tag == "text-output":
            parts.append(doc.content(child))
        elif child.tag == "html-output":
            fragment = doc.content(child)
            if child.get("inline", "").lower() == "true":
                parts.append(_html_text(fragment))
            elif "error" in fragment.lower():  # most blocks have none: skip the search
                parts.extend(f"{text}\n" for text in _error_headings(fragment))
        elif child.tag == "conntest-errors":
            text = _text(child)
            if text:
                parts.append(f"Connection test errors: {text}\n")
    # Only the blank lines around it go: leading spaces are the first line's indent.
    return "".join(parts).strip("\r\n").rstrip()


def _bounded(text: str, limit: int = MAX_REPORT_TEXT) -> str | None:
    """``text`` within ``limit`` characters, keeping its start and its end (where XJTAG
    prints the verdict and the error); None for no text."""
    if not text:
        return None
    if len(text) <= limit:
        return text
    marker = f"\n[... {len(text)} characters in all; the middle is cut ...]\n"
    keep = limit - len(marker)
    head = keep // 2
    return text[:head] + marker + text[len(text) - (keep - head) :]


# --- Runs ----------------------------------------------------------------------------------------


def _parse_datetime(text: str, where: str) -> datetime:
    """XJTAG's ``datetime`` (UTC ``Z``, 7 fractional digits), kept in its own zone.

    Python 3.11's fromisoformat takes at most 6 fractional digits, so the 7th (100 ns) is
    dropped here; a time without a zone is the station's local time.
    """
    match = _DATETIME.fullmatch(text.strip())
    if match is None:
        raise _Bad(f"{where}: {_show(text)} is not an ISO 8601 date-time")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = (match.group(7) or "").ljust(6, "0")[:6]
    zone = match.group(8)
    tz: timezone | None = None
    if zone == "Z":
        tz = UTC
    elif zone:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 23 or minutes > 59:
            raise _Bad(f"{where}: {_show(text)} has an impossible UTC offset")
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        moment = datetime(year, month, day, hour, minute, second, int(fraction), tzinfo=tz)
        return station_time(moment)
    except (ValueError, OverflowError, OSError) as exc:
        raise _Bad(f"{where}: {_show(text)} is not a date-time: {exc}") from None


def _milliseconds(element: Element | None, where: str) -> float | None:
    text = _text(element)
    if not text:
        return None
    try:
        # XJTAG writes integers; a decimal comma is its locale's (HTML snippets use one).
        value = parse_float(text.replace(",", "."))
    except ValueError as exc:
        raise _Bad(f"{where}: {exc}") from None
    if value < 0:
        raise _Bad(f"{where}: {_show(text)} is negative")
    return value / 1000.0


def _step_status(function: Element, path: str) -> Status:
    result = function.find("result")
    if result is None:
        raise _Bad(f"{path}: no <result> element (the test function's verdict)")
    value = (result.get("value") or _text(result)).strip()
    try:
        return parse_status(value)
    except ValueError:
        raise _Bad(
            f"{path}/result: {_show(value)} is not a result (Passed, Failed, Skipped, Error, "
            "Terminated)"
        ) from None


@attrs.define
class _Ids:
    next: int = 1

    def take(self) -> int:
        self.next += 1
        return self.next - 1


def _function_step(doc: _Document, function: Element, path: str, ids: _Ids) -> Step:
    status = _step_status(function, path)
    name = (function.get("name") or "").strip() or "Test function"
    return Step(
        id=ids.take(),
        group=StepGroup.MAIN,
        step_type="ET_PFT",
        name=name,
        status=status,
        tot_time=_milliseconds(function.find("time-taken"), f"{path}/time-taken"),
        report_text=_bounded(_output_text(doc, function)),
        boolean_meas=[BooleanMeasurement(status=status)],
    )


def _group_step(
    doc: _Document, group: Element, path: str, ids: _Ids, version: str, depth: int
) -> Step:
    """A testgroup as a sequence (groups in groups too: nesting is bounded by MAX_DEPTH)."""
    if depth > MAX_DEPTH:
        raise _Bad(f"{path}: test groups are nested deeper than {MAX_DEPTH}")
    name = (group.get("name") or "").strip() or "Test group"
    step_id = ids.take()
    steps = _steps(doc, group, path, ids, version, depth)
    times = [s.tot_time for s in steps if s.tot_time is not None]
    return Step(
        id=step_id,
        group=StepGroup.MAIN,
        step_type="SequenceCall",
        name=name,
        # XJTAG gives groups no result element of their own: the worst of their steps.
        status=worst_status(s.status for s in steps),
        tot_time=sum(times) if times else None,
        seq_call=SequenceCallInfo(path=name, name=name, version=version),
        steps=steps,
    )


def _steps(
    doc: _Document, parent: Element, path: str, ids: _Ids, version: str, depth: int = 0
) -> list[Step]:
    """The steps of ``parent``'s testgroup and testfunction children, in order; their paths
    (``.../testgroup[2]``, the 2nd testgroup) name them in messages."""
    steps: list[Step] = []
    groups = functions = 0
    for child in parent:
        tag = child.tag
        if tag == "testgroup":
            groups += 1
            child_path = f"{path}/testgroup[{groups}]"
            steps.append(_group_step(doc, child, child_path, ids, version, depth + 1))
        elif tag == "testfunction":
            functions += 1
            steps.append(_function_step(doc, child, f"{path}/testfunction[{functions}]", ids))
    return steps


def _misc(description: str, value: str) -> MiscInfo | None:
    return MiscInfo(description=description, text=value[:MAX_MISC_TEXT]) if value else None


@attrs.frozen
class _Info:
    count: int | None = None
    project_path: str = ""


def _read_info(data: bytes | None) -> _Info:
    if data is None:
        return _Info()
    root = _parse_xml(data, "Info.xml").root
    if root.tag != "LogFileInfo":
        raise _Bad(f"Info.xml: the root element is <{root.tag}>, expected <LogFileInfo>")
    count_text = _text(root.find("TestRunCount"))
    count: int | None = None
    if count_text:
        try:
            count = parse_int(count_text)
        except ValueError as exc:
            raise _Bad(f"Info.xml: LogFileInfo/TestRunCount: {exc}") from None
    return _Info(count=count, project_path=_text(root.find("ProjectPath")))


def _check_runs(info: _Info, runs: dict[int, tuple[str, bytes]], args: XjtagArguments) -> None:
    if not runs:
        raise _Bad("the archive holds no 'Run N.xml' member: is it an XJTAG log?")
    if info.count is None or args.allowMissingRuns:
        return
    missing = [n for n in range(1, info.count + 1) if n not in runs]
    if missing:
        shown = ", ".join(f"Run {n}.xml" for n in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise _Bad(
            f"Info.xml says TestRunCount {info.count}, but {shown}{more} is not in the "
            "archive (set allowMissingRuns to convert the runs that are there)"
        )


def _build_report(
    member: str,
    data: bytes,
    info: _Info,
    args: XjtagArguments,
    context: ConversionContext,
    report_id: str,
) -> Report:
    doc = _parse_xml(data, member)
    root_element = doc.root
    if root_element.tag != "testrun":
        raise _Bad(f"{member}: the root element is <{root_element.tag}>, expected <testrun>")
    where = f"{member}: testrun"
    stamp = root_element.get("datetime")
    if stamp is None:
        raise _Bad(f"{where}: no datetime attribute (the run's start)")
    try:
        start, start_utc = start_fields(_parse_datetime(stamp, f"{where}@datetime"))
    except ValueError as exc:
        raise _Bad(f"{where}@datetime: {exc}") from None
    run_info = root_element.find("testruninfo")
    if run_info is None:
        raise _Bad(f"{where}: no <testruninfo> (serial and result)")
    info_path = f"{where}/testruninfo"

    def field(name: str) -> str:
        return _text(run_info.find(name))

    serial = field("serial")
    if not serial:
        raise _Bad(f"{info_path}/serial is empty: the unit has no serial number")
    result_text = field("result")
    try:
        result = parse_result(result_text)
    except ValueError:
        raise _Bad(
            f"{info_path}/result: {_show(result_text)} is not a unit result (Passed, Failed, "
            "Error, Terminated)"
        ) from None
    description = field("project-description")
    pn = args.partNumber if args.partNumber is not None else description
    if not pn:
        raise _Bad(f"{info_path}/project-description is empty; set the `partNumber` argument")
    ids = _Ids()
    root_id = ids.take()
    steps = _steps(doc, root_element, where, ids, args.sequenceVersion)
    # Text the run printed outside any test function ("IC3.TestDestructive skipped").
    loose = "".join(doc.content(c) for c in root_element if c.tag == "text-output").strip()
    project = info.project_path
    name = re.split(r"[/\\]", project)[-1] if project else "XJTAG"
    root = Step(
        id=root_id,
        group=StepGroup.MAIN,
        step_type="SequenceCall",
        name=name or "XJTAG",
        # The root carries the unit's verdict, as the report's result does.
        status=Status(result.value),
        report_text=_bounded(loose),
        seq_call=SequenceCallInfo(
            path=project[:500] or name or "XJTAG",
            name=name or "XJTAG",
            version=args.sequenceVersion,
        ),
        steps=steps,
    )
    misc = [
        m
        for m in (
            _misc("XJTAG version", field("xjtag-version")),
            _misc("XJLink name", field("xjlink-name")),
            _misc("XJLink serial", field("xjlink-serial")),
        )
        if m is not None
    ]
    station = context.station
    return Report(
        type=ReportType.UUT,
        id=report_id,
        pn=pn,
        sn=serial,
        rev=args.revision,
        process_code=args.operationTypeCode,
        result=result,
        machine_name=station.machine_name,
        location=station.location,
        purpose=station.purpose,
        start=start,
        start_utc=start_utc,
        uut=UUTInfo(
            user=field("user") or None,
            comment=description or None,
            exec_time=_milliseconds(run_info.find("time-taken"), f"{info_path}/time-taken"),
        ),
        misc_infos=misc or None,
        root=root,
    )


class XjtagConverter:
    """Reads XJTAG ``.xjlog`` archives; every ``Run N.xml`` gives its own report."""

    name = "xjtag"
    version = "1.0"
    patterns = ("*.xjlog",)
    Arguments = XjtagArguments

    @staticmethod
    @never_raises
    def sniff(head: bytes, name: str) -> str | None:
        """A reason when ``head`` is a ZIP whose member headers name Info.xml or a run."""
        if not head.startswith(b"PK\x03\x04"):
            return None
        for match in _SNIFF_MEMBER.finditer(head):
            length = int.from_bytes(match.group(1), "little")
            member = match.group(2)
            if length == len(member):
                return f"ZIP archive with an XJTAG member {member.decode('ascii')!r}"
        return None

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """One report per ``Run N.xml`` in the archive, in run order."""
        args = context.arguments_as(XjtagArguments)
        try:
            archive = _read_archive(source.data)
            info = _read_info(archive.info)
            _check_runs(info, archive.runs, args)
        except _Bad as exc:
            raise ConversionError(self.name, str(exc)) from None
        return unit_reports(
            self.name,
            source,
            ((archive.runs[n][0], archive.runs[n]) for n in sorted(archive.runs)),
            lambda run, report_id: _build_report(*run, info, args, context, report_id()),
            _Bad,
        )
