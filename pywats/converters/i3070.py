"""The ``i3070`` converter: Keysight/Agilent i3070 (Medalist) log records.

An i3070 log is a tree of records in braces, not a file of lines::

    {@BATCH|501-6338-02|50|12|1||btest|040107103921||solmb3t1|501-6338-02|RevA|||
    {@BTEST|5016338409302|00|040107105353|000350|0|all||n|n|040107105943||1
    {@BLOCK|vr1|00
    {@A-MEA|0|+1.201013E+01|in{@LIM2|+1.320000E+01|+1.090910E+01}}
    }
    }}

``{@NAME`` opens a record, ``|`` separates its fields, ``~N|`` starts a literal field of
N characters, ``\\N|`` a list of N fields; a line end, a ``{`` (a child record) or a
``}`` ends the fields, and ``}`` closes the record. Records nest and are not one per
line: a limit sits inside its measurement on the same line, the next board's ``{@BATCH``
follows ``}}`` on the closing line, and a file may end without a line end.

The tokenizer is hand-written and linear: it scans for the few special characters with
compiled patterns and splits field runs with ``str.split``. Real logs hold damaged
records (ASCII 4 where the tester truncated one, lines cut at a fixed width with their
closing braces lost); the parser resynchronises at the next ``{@`` record instead of
nesting the rest of the file inside the broken one: a record that cannot hold the new
one (a limit cannot hold a block) is closed there.

Each BTEST (a board) becomes one report; its verdict is the BTEST test status, never
recomputed from the tests (a real log has status 82, aborted, with every block 00).
``docs/converters.md`` has the full mapping.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Literal

import attrs

from pywats.converters.arguments import check_arguments
from pywats.converters.base import ArgumentError, ConversionContext, Source
from pywats.converters.helpers import (
    clip,
    decoded_text,
    encode_limits,
    one_line,
    parse_float,
    parse_int,
    start_fields,
    station_time,
    unit_reports,
)
from pywats.converters.sniffing import head_text, never_raises
from pywats.errors import ConversionError
from pywats.report.codes import CompOp, ReportType, Result, Status, StepGroup
from pywats.report.model import (
    BooleanMeasurement,
    MiscInfo,
    NumericMeasurement,
    Report,
    SequenceCallInfo,
    Step,
    UUTInfo,
)

ResultLetter = Literal["P", "F", "E", "T"]

#: The reading and limit the i3070 writes for "no limit" / "open circuit".
NO_LIMIT = 9.999999e99

# --- Arguments -----------------------------------------------------------------------------


def _check_status_results(value: Mapping[str, str]) -> None:
    for key in value:
        if not (key.isascii() and key.isdigit()) or not 0 <= int(key) <= 999:
            raise ArgumentError(
                f"statusResults.{key}", "keys are BTEST test status codes (0 to 999)"
            )


@attrs.frozen
class I3070Arguments:
    """Arguments of the ``i3070`` converter."""

    #: Process code of every report (it must exist on the server).
    operationTypeCode: int = 30
    #: Part revision when the BATCH record's UUT type rev is empty.
    partRevision: str = "1"
    #: Part number when the log has no BATCH record or its UUT type is empty; None refuses.
    partNumber: str | None = None
    #: Root sequence version when the BATCH record's testplan rev is empty.
    sequenceVersion: str = "0.0.0"
    #: Text encoding; None reads a byte-order mark, else UTF-8, else cp1252.
    encoding: str | None = None
    #: BTEST test status code -> report result (P, F, E, T), overriding the defaults.
    statusResults: dict[str, ResultLetter] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        check_arguments(self)
        _check_status_results(self.statusResults)


# --- Record grammar --------------------------------------------------------------------------

#: Analog tests: record -> unit of the measured value (SI base units, as the tester writes).
ANALOG_UNITS: dict[str, str | None] = {
    "A-CAP": "F",
    "A-DIO": "V",
    "A-FUS": "Ohm",
    "A-IND": "H",
    "A-JUM": "Ohm",
    "A-MEA": None,  # a generic measurement: volts, amperes or hertz, the log does not say
    "A-NFE": None,
    "A-PFE": None,
    "A-NPN": None,
    "A-PNP": None,
    "A-POT": "Ohm",
    "A-RES": "Ohm",
    "A-SWI": "Ohm",
    "A-ZEN": "V",
}

#: Other tests: record -> (status field, designator field, detail fields with labels).
OTHER_TESTS: dict[str, tuple[int, int | None, tuple[tuple[int, str], ...]]] = {
    "TS": (1, 5, ((2, "shorts"), (3, "opens"), (4, "phantoms"))),
    "PF": (2, 1, ((3, "failing pins"),)),
    "TJET": (1, 3, ((2, "pins"),)),
    "D-T": (1, 5, ((2, "substatus"), (3, "failing vector"), (4, "pins"))),
    "BS-CON": (2, 1, ((3, "shorts"), (4, "opens"))),
    "CCHK": (1, 3, ((2, "pins"),)),
    "PCHK": (1, 2, ()),
    "PRB": (1, 3, ((2, "pins"),)),
    "ARRAY": (2, 1, ((3, "failures"), (4, "samples"))),
    "D-PLD": (3, 1, ((2, "action"), (4, "message"), (5, "program counter"))),
}

TESTS = frozenset(ANALOG_UNITS) | frozenset(OTHER_TESTS)
LIMITS = frozenset({"LIM2", "LIM3"})
#: Records that belong to a test (limits, details, report text).
SUB_RECORDS = LIMITS | frozenset(
    {"RPT", "PIN", "TS-S", "TS-D", "TS-O", "TS-P", "BS-O", "BS-S", "NODE", "DPIN", "INDICT"}
)
#: Records whose fields end at the line end, with children on the following lines.
LINE_RECORDS = frozenset({"BATCH", "BTEST", "BLOCK", "PF", "TS", "TS-S", "BS-CON", "D-T"})
#: Known records that carry nothing a report needs (alarms, network and node bookkeeping).
IGNORED = frozenset({"AID", "ALM", "NETV", "DPIN", "NODE"})
KNOWN = (
    TESTS
    | SUB_RECORDS
    | frozenset({"BATCH", "BTEST", "BLOCK", "NOTE", "EXPRT", "RETEST", "INDICT"})
    | IGNORED
)


def _can_contain(parent: str, child: str) -> bool:
    """Whether a ``parent`` record may hold ``child``: the grammar used to resynchronise."""
    if parent == "BATCH":
        return child != "BATCH"
    if parent == "BTEST":
        return child not in ("BATCH", "BTEST")
    if parent == "BLOCK":
        return child not in ("BATCH", "BTEST", "BLOCK")
    if parent in TESTS:
        return child in SUB_RECORDS
    if parent == "TS-S":
        return child in ("TS-D", "RPT")
    return False  # limits, report text, details and custom records hold nothing


# --- Tokenizer -------------------------------------------------------------------------------

#: A record's fields: from the "|" after its name, the text up to the character that ends
#: them (the group: the fields joined by "|").
_FIELDS = r"\|([^~\\{}\n\x04]*)"
#: The layout nearly every block has, read in one match instead of one per record and
#: brace (the tokenizer's main cost is the work per match): ``{@BLOCK|fields`` ending its
#: line (LF or CRLF), then on the next line one test whose fields end at a brace, with or
#: without a limit inside, and the closers of all of them::
#:
#:     {@BLOCK|r5|00
#:     {@A-RES|0|+2.173640E+02{@LIM3|+2.200000E+02|+2.420000E+02|+1.980000E+02}}
#:     }
#:
#: Block fields (group 1), test name (2) and fields (3), limit name (4) and fields (5).
#: It reads exactly what the general tokens below would (see _Parser.parse); anything
#: else (more records in the block, a line end inside, damage) fails the pattern, and the
#: general tokens read it.
_BLOCK_OF_ONE = (
    r"\{@BLOCK\|([^~\\{}\n\r\x04]*)\r?\n"
    r"\{@("
    + "|".join(re.escape(name) for name in sorted(TESTS))
    + ")"
    + _FIELDS
    + r"(?:\{@(LIM2|LIM3)"
    + _FIELDS
    + r"\})?\}\s*\}"
)
#: Or, in general, a record's start: its name (group 6), its fields as in _FIELDS (group
#: 7, absent when no "|" follows the name), a line end that ends them (group 8) and the
#: closing braces that follow (group 9, with the white space between them); or a brace or
#: ASCII 4 (no group). Taking the fields' end and the closers in the same match saves a
#: match for each ``}`` (most records end in ``}}`` or on a line of their own followed by
#: ``}``); white space between the closers is skipped, as the search would skip it.
_TOKEN = re.compile(
    _BLOCK_OF_ONE + r"|\{@([^|~\\{}\n\x04]*)(?:" + _FIELDS + r")?(\n?)(\}[}\s]*)?|[{}\x04]"
)
_FIELD_END = re.compile(r"[~\\{}\n\x04]")
_COUNT = re.compile(r"([0-9]{1,9})\|")


class _Record:
    """One ``{@NAME|field...`` record with its child records."""

    __slots__ = ("children", "closed", "cut", "fields", "line", "name", "suspect")

    def __init__(self, name: str, line: int, fields: list[str]) -> None:
        self.name = name
        self.line = line
        self.fields = fields
        self.children: list[_Record] = []
        #: Its ``}`` was read.
        self.closed = False
        #: Its fields were cut short (ASCII 4, the end of the file, a cut line): the last
        #: field read may be incomplete.
        self.cut = False
        #: Its fields ended at a line end although records of its kind end on their own
        #: line: the line may have been cut (decided when the structure breaks).
        self.suspect = False

    def field(self, index: int) -> str:
        """Field ``index`` (1-based) stripped, "" when the record has fewer fields."""
        fields = self.fields
        return fields[index - 1].strip() if index <= len(fields) else ""

    def reliable(self) -> int:
        """How many fields can be trusted (a cut record's last field may be partial)."""
        return len(self.fields) - 1 if self.cut and self.fields else len(self.fields)


class _ParseError(Exception):
    """A problem at a line of the log; turned into a ConversionError."""

    def __init__(self, line: int, reason: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {reason}")


class _Parser:
    """Reads the record tree of one log in a single pass."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._line = 1
        self._line_pos = 0
        self.damaged = 0  # records auto-closed or truncated by the tester
        self.last: _Record | None = None  # the record read most recently
        #: Some record was cut short or left open: only then are a board's records
        #: walked for the lines to name (see _damaged_lines).
        self.flawed = False

    def line_at(self, pos: int) -> int:
        """The line number of ``pos`` (positions are asked in increasing order)."""
        if pos > self._line_pos:
            self._line += self.text.count("\n", self._line_pos, pos)
            self._line_pos = pos
        return self._line

    def parse(self) -> list[_Record]:
        """The top-level records of the log."""
        text = self.text
        n = len(text)
        top: list[_Record] = []
        stack: list[_Record] = []
        count = text.count
        # line_at, inlined: it is asked once for every record.
        line, line_pos = self._line, self._line_pos
        pos = 0
        while True:
            # Every token ends where the next search starts, but for records with literal
            # fields or lists: _fields reads those and says where the scan goes on, and
            # the iteration starts again there.
            resume = -1
            for match in _TOKEN.finditer(text, pos):
                block_chunk, test, test_chunk, limit, limit_chunk, name, chunk, newline, closers = (
                    match.groups()
                )
                start = match.start()
                if start > line_pos:
                    line += count("\n", line_pos, start)
                    line_pos = start
                if block_chunk is not None:
                    # _BLOCK_OF_ONE: what the tokens would do, without a stack. The block
                    # ends its line (a line record: not suspect); the test and its limit
                    # are on the next line, ended by braces; all three are closed.
                    block = _Record("BLOCK", line, block_chunk.split("|"))
                    if stack and not _can_contain(stack[-1].name, "BLOCK"):
                        self._resync(stack, "BLOCK")
                    (stack[-1].children if stack else top).append(block)
                    record = _Record(test, line + 1, test_chunk.split("|"))
                    block.children.append(record)
                    block.closed = record.closed = True
                    if limit is not None:  # a test may hold a limit
                        inner = _Record(limit, line + 1, limit_chunk.split("|"))
                        inner.closed = True
                        record.children.append(inner)
                        record = inner
                    self.last = record
                    continue
                if name is None:
                    char = text[start]
                    if char == "}":
                        if stack:  # a stray closer at the top level is ignored
                            stack.pop().closed = True
                    elif char == "\x04":
                        # ASCII 4: the tester truncated this record; what follows up to
                        # the next brace is not part of it.
                        if stack:
                            stack[-1].cut = True
                        self.damaged += 1
                    else:  # "{" without "@": kept balanced, otherwise ignored
                        self._push(top, stack, _Record("", line, []))
                    continue
                name = name.rstrip("\r")
                if not name:
                    # "{@" without a name: only its braces count (its fields are skipped).
                    self._push(top, stack, _Record("", line, []))
                else:
                    # Any other record: the pattern took its name and its fields up to
                    # the character that ends them, and the closers that follow.
                    fields = chunk.split("|") if chunk is not None else []
                    record = _Record(name, line, fields)
                    if stack and not _can_contain(stack[-1].name, name):
                        self._resync(stack, name)
                    (stack[-1].children if stack else top).append(record)
                    stack.append(record)
                    self.last = record
                    if newline:
                        if fields and fields[-1].endswith("\r"):
                            fields[-1] = fields[-1].rstrip("\r")
                        if name not in LINE_RECORDS:
                            record.suspect = True
                    elif not closers:
                        # Where the fields (group 7), or the name (group 6), end.
                        end = match.end(7) if chunk is not None else match.end(6)
                        if end == n:
                            record.cut = True  # the file ends inside the record's fields
                        elif text[end] in ("~", "\\"):
                            resume = self._fields(record, end)
                            break
                        continue  # fields end at "{" or ASCII 4: the next token
                if closers:
                    for _ in range(closers.count("}")):
                        if not stack:
                            break  # a stray closer at the top level is ignored
                        stack.pop().closed = True
            if resume < 0:
                break
            pos = resume
        self._line, self._line_pos = line, line_pos
        # Every record is closed by its "}" and none is cut short unless the tester
        # truncated one or a resync closed some (both counted in damaged), or records are
        # left open at the end (a record the file ends in is one of them).
        self.flawed = bool(self.damaged or stack)
        if stack:
            self._at_end(stack)
        return top

    def _push(self, top: list[_Record], stack: list[_Record], record: _Record) -> None:
        """Add ``record`` (not the common case: parse adds those itself) and open it."""
        if stack and not _can_contain(stack[-1].name, record.name):
            self._resync(stack, record.name)
        (stack[-1].children if stack else top).append(record)
        stack.append(record)
        self.last = record

    def _resync(self, stack: list[_Record], name: str) -> None:
        # Close what cannot hold the new record: a line was cut and lost its closing
        # braces. The record read just before is then the cut one if its fields ended at
        # a line end where they should have ended at a brace.
        if self.last is not None and self.last.suspect:
            self.last.cut = True
        while stack and not _can_contain(stack[-1].name, name):
            lost = stack.pop()
            if lost.suspect:
                lost.cut = True
            self.damaged += 1

    def _at_end(self, stack: list[_Record]) -> None:
        last = self.last
        if not self.damaged and not (last is not None and (last.suspect or last.cut)):
            inner = stack[-1]
            outer = stack[0]
            raise _ParseError(
                self.line_at(len(self.text)),
                f"the file ends inside {{@{inner.name}}} (line {inner.line}) with "
                f"{len(stack)} record(s) open since {{@{outer.name}}} (line {outer.line}): "
                "is it complete?",
            )
        # A damaged log: its braces were lost with the damage, not the file's tail.
        if last is not None and last.suspect:
            last.cut = True

    def _fields(self, record: _Record, pos: int) -> int:
        """Read ``record``'s fields from ``pos``; returns where the main scan goes on."""
        text = self.text
        n = len(text)
        fields = record.fields
        search = _FIELD_END.search
        while True:
            match = search(text, pos)
            end = match.start() if match else n
            if end > pos:
                parts = text[pos:end].split("|")
                if fields:
                    fields[-1] += parts[0]  # text right after a literal or a list count
                fields.extend(parts[1:])
            if match is None:
                record.cut = True  # the file ends inside the record's fields
                self._strip_cr(fields)
                return n
            char = text[end]
            if char == "~":
                count = _COUNT.match(text, end + 1)
                if count is None:
                    fields.append("")  # "~" without a length: an ordinary separator
                    pos = end + 1
                    continue
                start = count.end()
                stop = start + int(count.group(1))
                if stop > n:
                    stop = n
                    record.cut = True
                fields.append(text[start:stop])
                pos = stop
                continue
            if char == "\\":
                count = _COUNT.match(text, end + 1)
                if count is None:
                    if fields:  # a backslash that starts no list belongs to the text
                        fields[-1] += "\\"
                    pos = end + 1
                    continue
                pos = count.end() - 1  # the list's items follow as ordinary fields
                continue
            self._strip_cr(fields)
            if char == "\n":
                if record.name not in LINE_RECORDS:
                    record.suspect = True
                return end + 1
            return end  # "{", "}" or ASCII 4: the main scan handles it

    @staticmethod
    def _strip_cr(fields: list[str]) -> None:
        if fields and fields[-1].endswith("\r"):
            fields[-1] = fields[-1].rstrip("\r")


# --- Mapping ---------------------------------------------------------------------------------

#: BTEST test status -> (result, meaning), from the manual's table of test statuses.
BTEST_STATUS: dict[int, tuple[Result, str]] = {
    0: (Result.PASSED, "passed"),
    1: (Result.FAILED, "failed (uncategorized)"),
    2: (Result.FAILED, "pins test failed"),
    3: (Result.FAILED, "learn failed"),
    4: (Result.FAILED, "shorts test failed"),
    5: (Result.FAILED, "failed"),
    6: (Result.FAILED, "analog test failed"),
    7: (Result.FAILED, "power supply test failed"),
    8: (Result.FAILED, "digital or boundary scan test failed"),
    9: (Result.FAILED, "functional test failed"),
    10: (Result.FAILED, "pre-shorts test failed"),
    11: (Result.ERROR, "handler failure"),
    12: (Result.ERROR, "barcode failure"),
    13: (Result.TERMINATED, "X'd out (not tested)"),
    14: (Result.FAILED, "VTEP/TestJet test failed"),
    15: (Result.FAILED, "polarity test failed"),
    17: (Result.FAILED, "analog cluster test failed"),
    80: (Result.ERROR, "runtime error"),
    81: (Result.TERMINATED, "aborted (STOP)"),
    82: (Result.TERMINATED, "aborted (BREAK)"),
}

#: Analog test status -> (status, error message).
ANALOG_STATUS: dict[int, tuple[Status, str | None]] = {
    0: (Status.PASSED, None),
    1: (Status.FAILED, None),
    2: (Status.FAILED, "compliance limit reached"),
    3: (Status.FAILED, "detector timeout"),
    11: (Status.TERMINATED, "aborted"),
}

_BOARD_PREFIX = re.compile(r"[0-9]+%")


def btest_result(code: int, overrides: Mapping[str, ResultLetter]) -> tuple[Result, str]:
    """The report result and meaning of a BTEST test status code."""
    override = overrides.get(str(code))
    known = BTEST_STATUS.get(code)
    if known is not None:
        result, meaning = known
    elif 90 <= code <= 99:
        result, meaning = Result.FAILED, "user-defined failure"
    else:
        result, meaning = Result.ERROR, "unknown test status"
    return (Result(override) if override else result), meaning


def _name(designator: str) -> str:
    """A designator without its board prefix (``2%r11`` -> ``r11``)."""
    if "%" not in designator:
        return designator  # the common case, without a regex call
    match = _BOARD_PREFIX.match(designator)
    return designator[match.end() :] if match and match.end() < len(designator) else designator


def _number(record: _Record, text: str, what: str) -> float:
    """The number ``text`` (a field of ``record``, stripped)."""
    # float() alone also takes "nan", "1_0" and non-ASCII digits; the tester writes none
    # of them, so those (rare) texts go through the strict parser for its message.
    if text.isascii() and "_" not in text:
        try:
            value = float(text)
        except ValueError:
            pass
        else:
            if math.isfinite(value):
                return value
    try:
        return parse_float(text)
    except ValueError:
        raise _ParseError(
            record.line, f"{{@{record.name}}}: {what} {text!r} is not a number"
        ) from None


def _integer(record: _Record, index: int, what: str) -> int:
    text = record.field(index)
    try:
        return parse_int(text)
    except ValueError:
        raise _ParseError(
            record.line, f"{{@{record.name}}}: {what} {text!r} is not an integer"
        ) from None


def _stamp(record: _Record, index: int, what: str) -> datetime:
    text = record.field(index)
    problem = _ParseError(
        record.line, f"{{@{record.name}}}: {what} {text!r} is not a YYMMDDhhmmss time"
    )
    if len(text) != 12 or not (text.isascii() and text.isdigit()):
        raise problem
    try:
        year = int(text[0:2])
        year += 2000 if year < 69 else 1900  # two-digit years as strptime's %y reads them
        naive = datetime(
            year, int(text[2:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:12])
        )
        return station_time(naive)
    except (ValueError, OverflowError, OSError):
        raise problem from None


@attrs.define
class _Board:
    """One BTEST record with the BATCH it belongs to and the records in scope."""

    btest: _Record
    batch: _Record | None
    misc: list[MiscInfo]
    #: The log has damaged records (maybe not this board's): see _Parser.flawed.
    flawed: bool


@attrs.define
class _Builder:
    """Builds the step tree of one board; step ids are taken in tree order."""

    next_id: int = 2
    misc: list[MiscInfo] = attrs.field(factory=list)
    #: What _limits made of each limit record text read so far: (its result, its notes).
    known_limits: dict[
        tuple[str, ...], tuple[tuple[CompOp, float | None, float | None], tuple[str, ...]]
    ] = attrs.field(factory=dict)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def limits(self, limit: _Record, notes: list[str]) -> tuple[CompOp, float | None, float | None]:
        """``_limits(limit, notes)``, worked out once for each limit text of the board.

        A board repeats the same limits for parts of the same value, and reading them is
        much of a test's cost. Only complete records are kept: what _limits makes of one
        depends on its name and fields alone (a cut or short one's note names its line).
        """
        fields = limit.fields
        if limit.cut or len(fields) < (3 if limit.name == "LIM3" else 2):
            return _limits(limit, notes)
        key = (limit.name, *fields)
        known = self.known_limits.get(key)
        if known is None:
            mark = len(notes)
            result = _limits(limit, notes)
            known = self.known_limits[key] = (result, tuple(notes[mark:]))
        else:
            notes.extend(known[1])
        return known[0]

    def steps(self, records: list[_Record], block: str | None) -> tuple[list[Step], list[str]]:
        """Steps for ``records`` (children of BTEST or a BLOCK) and their loose text."""
        steps: list[Step] = []
        text: list[str] = []
        for index, record in enumerate(records):
            name = record.name
            if name == "BLOCK":
                steps.append(self.block(record))
            elif name in TESTS:
                following = records[index + 1] if index + 1 < len(records) else None
                steps.append(self.test(record, block, following, None, []))
            else:
                self.loose(record, text)
        return steps, text

    def loose(self, record: _Record, text: list[str]) -> None:
        """A record that is no test: text for the enclosing step, or a misc info."""
        name = record.name
        if name == "RPT":
            text.append(_report_text(record))
        elif name == "INDICT":
            text.append("indicted: " + " ".join(f for f in record.fields if f.strip()))
        elif name in ("NOTE", "EXPRT"):
            self.misc.append(_misc(record.field(1) or name, record.field(2)))
        elif name == "RETEST":
            self.misc.append(_misc("Retest", record.field(1)))
        elif name and name not in KNOWN:
            self.misc.append(_custom(record))
        # Limits after their test are read with the test; other known records carry
        # nothing a report has a field for (and BATCH/BTEST never nest here).

    def test(
        self,
        record: _Record,
        block: str | None,
        following: _Record | None,
        block_code: int | None,
        notes: list[str],
    ) -> Step:
        if record.name in ANALOG_UNITS:
            return self.analog(record, block, following, block_code, notes)
        return self.other(record, block, block_code, notes)

    def block(self, record: _Record) -> Step:
        fields = record.fields
        reliable = record.reliable()
        designator = fields[0].strip() if reliable >= 1 else ""
        name = _name(designator) or "BLOCK"
        code: int | None = None
        status_text = fields[1].strip() if reliable >= 2 else ""
        if status_text:
            code = _code(record, status_text, 2, "block status")
        children = record.children
        if len(children) == 1 and children[0].name in TESTS:
            tests = children  # the usual block: its test alone
        else:
            tests = [c for c in children if c.name in TESTS]
        if len(tests) == 1 and not _has_subtest(tests[0]):
            # A block of one test is that test: one step named by the block designator.
            test = tests[0]
            notes: list[str] = []
            following: _Record | None = None
            if len(children) > 1:  # records besides the test (most blocks have none)
                for index, child in enumerate(children):
                    if child is test:
                        following = children[index + 1] if index + 1 < len(children) else None
                    elif child.name not in LIMITS:
                        self.loose(child, notes)
            if record.cut:
                notes.append(f"the BLOCK record at line {record.line} is cut short in the log")
            if test.name in ANALOG_UNITS:
                return self.analog(test, name, following, code, notes)
            return self.other(test, name, code, notes)
        step_id = self.new_id()
        steps, text = self.steps(children, name)
        if code is not None:
            status = Status.PASSED if code == 0 else Status.FAILED
        else:
            # No block status (a cut record): the block is as bad as its worst test.
            status = _worst(s.status for s in steps)
        error = None
        if record.cut:
            error = f"the BLOCK record at line {record.line} is cut short in the log"
        return Step(
            id=step_id,
            group=StepGroup.MAIN,
            step_type="SequenceCall",
            name=name,
            status=status,
            error_message=error,
            report_text="\n".join(text) or None,
            seq_call=SequenceCallInfo(path=designator or name, name=name, version=None),
            steps=steps,
        )

    def analog(
        self,
        record: _Record,
        block: str | None,
        following: _Record | None,
        block_code: int | None,
        notes: list[str],
    ) -> Step:
        fields = record.fields
        reliable = record.reliable()
        subtest = fields[2].strip() if reliable >= 3 else ""
        name = _name(subtest) if subtest else (block or record.name)
        limit: _Record | None = None  # the first limit record inside
        for child in record.children:
            if child.name == "RPT":
                notes.append(_report_text(child))
            elif limit is None and child.name in LIMITS:
                limit = child
        status_text = fields[0].strip() if reliable >= 1 else ""
        if not status_text:
            return self._broken(record, name, notes)
        code = _code(record, status_text, 1, "test status")
        known = ANALOG_STATUS.get(code)
        status, error = known if known is not None else (Status.ERROR, f"test status {code}")
        status = _with_block(status, block_code)
        value_text = fields[1].strip() if reliable >= 2 else ""
        if not value_text:
            notes.append(f"the {{@{record.name}}} record is cut short: no measured value")
            return self._pass_fail(name, status, error, notes)
        value = _number(record, value_text, "measured value")
        if limit is None and following is not None and following.name in LIMITS:
            limit = following  # written as the next record instead of inside
        comp_op, low, high = CompOp.LOG, None, None
        if limit is not None:
            comp_op, low, high = self.limits(limit, notes)
        if value == NO_LIMIT:
            notes.append("reading +9.999999E+99: open circuit or out of range")
        return Step(
            id=self.new_id(),
            group=StepGroup.MAIN,
            step_type="ET_NLT",
            name=name,
            status=status,
            error_message=error,
            report_text="\n".join(notes) or None,
            numeric_meas=[
                NumericMeasurement(
                    comp_op=comp_op,
                    value=value,
                    low_limit=low,
                    high_limit=high,
                    unit=ANALOG_UNITS[record.name],
                    status=status,
                )
            ],
        )

    def other(
        self, record: _Record, block: str | None, block_code: int | None, notes: list[str]
    ) -> Step:
        status_at, designator_at, details = OTHER_TESTS[record.name]
        reliable = record.reliable()
        designator = (
            record.field(designator_at) if designator_at and reliable >= designator_at else ""
        )
        own = _name(designator) if designator else ""
        name = block or own or record.name
        if own and own != name:
            notes.append(f"test designator {designator}")
        notes.extend(
            f"{label}: {record.field(at)}"
            for at, label in details
            if at <= reliable and record.field(at) not in ("", "0", "00")
        )
        notes.extend(_details(record))
        status_text = record.field(status_at) if reliable >= status_at else ""
        if not status_text:
            return self._broken(record, name, notes)
        code = _code(record, status_text, status_at, "test status")
        status = _with_block(Status.PASSED if code == 0 else Status.FAILED, block_code)
        error = None if code == 0 else f"{record.name} test status {code}"
        return self._pass_fail(name, status, error, notes)

    def _broken(self, record: _Record, name: str, notes: list[str]) -> Step:
        notes.append(f"the {{@{record.name}}} record at line {record.line} is cut short")
        return self._pass_fail(name, Status.ERROR, "record cut short in the log", notes)

    def _pass_fail(self, name: str, status: Status, error: str | None, notes: list[str]) -> Step:
        return Step(
            id=self.new_id(),
            group=StepGroup.MAIN,
            step_type="ET_PFT",
            name=name,
            status=status,
            error_message=error,
            report_text="\n".join(notes) or None,
            boolean_meas=[_BOOLEAN[status]],
        )


#: Pass/fail measurements are immutable: one instance of each serves every step.
_BOOLEAN = {status: BooleanMeasurement(status=status) for status in Status}
#: Status codes as written ("0", "00", "01" ...), parsed once.
_CODES = {f"{n:0{w}d}": n for n in range(100) for w in (1, 2)}


def _code(record: _Record, text: str, index: int, what: str) -> int:
    """The status code ``text`` (field ``index`` of ``record``, stripped)."""
    code = _CODES.get(text)
    return code if code is not None else _integer(record, index, what)


def _has_subtest(record: _Record) -> bool:
    return record.name in ANALOG_UNITS and record.reliable() >= 3 and bool(record.fields[2].strip())


def _with_block(status: Status, block_code: int | None) -> Status:
    """A test's status, failed when the one-test block it stands for says so."""
    if block_code and status is Status.PASSED:
        return Status.FAILED
    return status


def _worst(statuses: Iterator[Status]) -> Status:
    order = (Status.TERMINATED, Status.ERROR, Status.FAILED)
    seen = set(statuses)
    return next((s for s in order if s in seen), Status.PASSED)


def _limits(limit: _Record, notes: list[str]) -> tuple[CompOp, float | None, float | None]:
    """Operator and limits of a LIM2 (HIGH|LOW) or LIM3 (NOMINAL|HIGH|LOW) record."""
    offset = 1 if limit.name == "LIM3" else 0
    if limit.reliable() < 2 + offset:
        notes.append(f"the {{@{limit.name}}} record at line {limit.line} is cut short: no limits")
        return CompOp.LOG, None, None
    fields = limit.fields
    if offset:
        nominal = fields[0].strip()
        _number(limit, nominal, "nominal value")
        notes.append(f"nominal {nominal}")
    high = _number(limit, fields[offset].strip(), "high limit")
    low = _number(limit, fields[1 + offset].strip(), "low limit")
    # A limit at or beyond NO_LIMIT is none; a single limit goes in lowLimit (WATS rule).
    return encode_limits(
        None, None if low <= -NO_LIMIT else low, None if high >= NO_LIMIT else high
    )


def _report_text(record: _Record) -> str:
    text = "|".join(record.fields).strip()
    return text + " \u2026 (cut short)" if record.cut else text


def _details(record: _Record) -> list[str]:
    """Text for the detail records of a test (shorts, opens, pins, boundary scan nets)."""
    out: list[str] = []
    for child in record.children:
        fields = [f.strip() for f in child.fields if f.strip()]
        name = child.name
        if name == "TS-S":
            out.append(
                f"short from {child.field(3)} ({child.field(1)} shorts, {child.field(2)} phantoms)"
            )
            for dest in child.children:
                if dest.name == "TS-D":
                    out.append("  to " + " ".join(f.strip() for f in dest.fields if f.strip()))
        elif name == "TS-D":
            out.append("  to " + " ".join(fields))
        elif name == "TS-O":
            out.append(f"open from {child.field(1)} to {child.field(2)} ({child.field(3)})")
        elif name == "TS-P":
            out.append(f"phantom short ({child.field(1)})")
        elif name == "PIN":
            out.append("pins: " + " ".join(fields))
        elif name in ("BS-O", "BS-S", "INDICT", "NODE"):
            out.append(f"{name}: " + " ".join(fields))
        elif name == "RPT":
            out.append(_report_text(child))
    return out


def _misc(description: str, text: str) -> MiscInfo:
    return MiscInfo(description=clip(description), text=clip(text))


def _custom(record: _Record) -> MiscInfo:
    """A record the manual does not define (``{@MySW_Version:OK|OK``): a misc info."""
    return _misc(record.name, "|".join(f.strip() for f in record.fields))


class I3070Converter:
    """Reads Keysight i3070 log records; every board (BTEST) in the file is one report."""

    name = "i3070"
    version = "1.0"
    #: i3070 logs have no extension: the folder's files are all offered, and anything that
    #: is not a log is refused with one line saying so.
    patterns = ("*",)
    Arguments = I3070Arguments

    @staticmethod
    @never_raises
    def sniff(head: bytes, name: str) -> str | None:
        """A reason when ``head`` starts with i3070 log records (``{@BATCH|``, ``{@BTEST|``)."""
        text = head_text(head[:4096]).lstrip()
        if not text.startswith("{@"):
            return None
        for marker in ("{@BATCH|", "{@BTEST|"):
            if marker in text:
                return f"{marker} log record near the start (Keysight i3070)"
        return None

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """One report per BTEST record (board) in the log."""
        args = context.arguments_as(I3070Arguments)
        text = decoded_text(self.name, source.data, args.encoding)
        try:
            boards = _boards(text)
        except _ParseError as exc:
            raise ConversionError(self.name, one_line(str(exc))) from None
        return unit_reports(
            self.name,
            source,
            ((f"board {n} (BTEST at line {b.btest.line})", b) for n, b in enumerate(boards, 1)),
            lambda board, report_id: _report(board, args, context, report_id()),
            _ParseError,
            lambda where, exc: one_line(str(exc)),
        )


def _boards(text: str) -> list[_Board]:
    start = text.lstrip(" \t\r\n\ufeff")
    if not start.startswith("{@"):
        first = start.split("\n", 1)[0][:40]
        line = text[: len(text) - len(start)].count("\n") + 1
        raise _ParseError(
            line, f"not an i3070 log: it does not start with a {{@ record (found {first!r})"
        )
    parser = _Parser(text)
    top = parser.parse()
    boards: list[_Board] = []
    file_misc: list[MiscInfo] = []
    batch: _Record | None = None
    for record in top:
        if record.name == "BATCH":
            batch = record
            batch_misc = list(file_misc)
            for child in record.children:
                if child.name == "BTEST":
                    boards.append(_Board(child, record, batch_misc, parser.flawed))
                elif child.name and child.name not in KNOWN:
                    batch_misc.append(_custom(child))
        elif record.name == "BTEST":
            boards.append(_Board(record, batch, file_misc, parser.flawed))
        elif record.name and record.name not in KNOWN:
            file_misc.append(_custom(record))
    if not boards:
        raise _ParseError(1, "not an i3070 log: it holds no {@BTEST record (a board's result)")
    return boards


def _report(
    board: _Board, args: I3070Arguments, context: ConversionContext, report_id: str
) -> Report:
    btest, batch = board.btest, board.batch
    sn = btest.field(1) if btest.reliable() >= 1 else ""
    if not sn:
        raise _ParseError(btest.line, "{@BTEST}: the board id (the serial number) is empty")
    if btest.reliable() < 3 or not btest.field(2):
        raise _ParseError(btest.line, "{@BTEST} is cut short: it has no test status")
    code = _integer(btest, 2, "test status")
    result, meaning = btest_result(code, args.statusResults)
    start = _stamp(btest, 3, "start time")

    def batch_field(index: int) -> str:
        return batch.field(index) if batch is not None and batch.reliable() >= index else ""

    pn = batch_field(1) or args.partNumber
    if not pn:
        where = "has no {@BATCH record" if batch is None else "{@BATCH}: the UUT type is empty"
        raise _ParseError(
            btest.line if batch is None else batch.line,
            f"the log {where}: no part number (set the converter's partNumber argument)",
        )
    rev = batch_field(2) or args.partRevision
    exec_time: float | None = None
    duration = btest.field(4) if btest.reliable() >= 4 else ""
    if duration.isascii() and duration.isdigit():  # isdigit alone takes "²"
        exec_time = float(int(duration))
    elif btest.reliable() >= 10 and btest.field(10):
        exec_time = max((_stamp(btest, 10, "end time") - start).total_seconds(), 0.0)

    builder = _Builder()
    steps, text = builder.steps(btest.children, None)
    misc = _board_misc(btest, batch_field, code, meaning) + board.misc + builder.misc
    damaged = _damaged_lines(btest) if board.flawed else []
    if damaged:
        lines = ", ".join(str(n) for n in damaged)
        misc.append(_misc("Damaged log records", f"lines {lines} (cut short or braces lost)"))
    plan = batch_field(10)
    root_name = plan or pn
    root = Step(
        id=1,
        group=StepGroup.MAIN,
        step_type="SequenceCall",
        name=root_name,
        status=Status(result.value),
        seq_call=SequenceCallInfo(
            path=plan or root_name, name=root_name, version=batch_field(11) or args.sequenceVersion
        ),
        steps=steps,
    )
    comment = "\n".join(text)
    start_text, start_utc = start_fields(start)
    station = context.station
    return Report(
        type=ReportType.UUT,
        id=report_id,
        pn=pn,
        sn=sn,
        rev=rev,
        process_code=args.operationTypeCode,
        result=result,
        machine_name=batch_field(9) or station.machine_name,
        location=station.location,
        purpose=station.purpose,
        start=start_text,
        start_utc=start_utc,
        uut=UUTInfo(
            user=batch_field(8) or None,
            comment=clip(comment, 5000) if comment else None,
            exec_time=exec_time,
            fixture_id=batch_field(3) or None,
            batch_sn=batch_field(7) or None,
        ),
        misc_infos=misc or None,
        root=root,
    )


def _damaged_lines(btest: _Record) -> list[int]:
    """Lines of the records under ``btest`` that were cut short or never closed."""
    lines: set[int] = set()
    stack = list(btest.children)
    while stack:
        record = stack.pop()
        if record.cut or not record.closed:
            lines.add(record.line)
        stack.extend(record.children)
    return sorted(lines)


def _board_misc(
    btest: _Record, batch_field: Callable[[int], str], code: int, meaning: str
) -> list[MiscInfo]:
    out = [_misc("Test status", f"{code:02d} {meaning}")]

    def add(description: str, value: str) -> None:
        if value:
            out.append(_misc(description, value))

    def btest_field(index: int) -> str:
        return btest.field(index) if btest.reliable() >= index else ""

    add("Status qualifier", btest_field(11))
    add("Board number", btest_field(12))
    add("Parent panel id", btest_field(13))
    add("Parent panel type", batch_field(12))
    add("Parent panel type rev", batch_field(13))
    add("Testhead number", batch_field(4))
    add("Testhead type", batch_field(5))
    add("Process step", batch_field(6))
    add("Version label", batch_field(14))
    if btest_field(8).lower() == "y":
        add("Learning", "y")
    if btest_field(9).lower() == "y":
        add("Known good", "y")
    return out
