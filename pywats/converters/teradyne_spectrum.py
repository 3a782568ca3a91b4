"""The ``teradyne-spectrum`` converter: Teradyne Spectrum ICT structured logs.

A Spectrum log is a sequence of parenthesised forms ``(KEYWORD: value ...)`` that nest::

    (PROGRAM_NAME: "PB3187900")
    (SECTION_NAME: "CAPACITORS")
    (STEP:
        (TYPE: RAW) (TIME: 02/09/2023 16:44:30 )
         (SNAME: "CAP[C1]")
        (DESC: "CAPACITOR 4n7 TOP 3.326 2.831  ") (PAGE:
            (TYPE: CAP) (PAGE_NAME: "C1") (STAT: PASS)
            (ANA:
                (TYPE: CAP) (STAT: PASS)
                (LOLIM: (VAL: 3.64) (SCALE: n) (UNIT: F) )
                (NOMVAL: (VAL: 4.6999993) (SCALE: n) (UNIT: F) ) (MEASVAL: ...)
                (HILIM: (VAL: 5.76) (SCALE: n) (UNIT: F) ) ...))
            ) (STAT: PASS))
        (USER:  Serialnumber:1111111111)
        (USER:  STATUS: BOARD PASSED)

Values are bare text or quoted strings; every value carries its own SCALE (``m`` milli,
``M`` mega), so a low limit, a measured value and a high limit can differ in prefix. The
header and the verdict come from ``(USER: key: value)`` lines written by the test program
(``Serialnumber``, ``Operator``, ``Date``, ``StartTime``, ``EndTime``, and the trailer
``STATUS: BOARD PASSED``), with irregular spaces around the colons.

The reader is a small linear tokenizer over the whole text (one compiled pattern) that
builds the form tree; line ends (CRLF or LF) are only white space. Each PROGRAM_NAME
starts a UUT (the real files hold one). ``docs/converters.md`` has the full mapping.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import attrs

from pywats.converters.arguments import check_arguments
from pywats.converters.base import ConversionContext, Source
from pywats.converters.helpers import (
    clip,
    decoded_text,
    one_line,
    show,
    start_fields,
    station_time,
    unit_reports,
    worst_status,
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


@attrs.frozen
class SpectrumArguments:
    """Arguments of the ``teradyne-spectrum`` converter."""

    #: Process code of every report (it must exist on the server).
    operationTypeCode: int = 30
    #: Part number; None takes the PROGRAM_NAME (a ``PartNumber`` USER line wins).
    partNumber: str | None = None
    #: Part revision when the log has no ``PartRevision`` USER line.
    partRevision: str = "1"
    #: Root sequence version when the log has no ``version``/``SequenceRev`` USER line.
    sequenceVersion: str = "0.0.0"
    #: Text encoding; None reads a byte-order mark, else UTF-8, else cp1252.
    encoding: str | None = None

    def __attrs_post_init__(self) -> None:
        check_arguments(self)


#: SCALE -> power of ten (case matters: ``m`` milli, ``M`` mega).
SCALES = {"": 0, "p": -12, "n": -9, "u": -6, "\u00b5": -6, "m": -3, "k": 3, "K": 3, "M": 6, "G": 9}
#: UNIT -> WATS unit.
UNITS = {"O": "Ohm"}
#: STAT words -> status.
STATS = {
    "PASS": Status.PASSED,
    "PASSED": Status.PASSED,
    "FAIL": Status.FAILED,
    "FAILED": Status.FAILED,
    "SKIP": Status.SKIPPED,
    "SKIPPED": Status.SKIPPED,
    "NOT_TESTED": Status.SKIPPED,
    "ABORT": Status.TERMINATED,
    "ABORTED": Status.TERMINATED,
    "ERROR": Status.ERROR,
}
#: Children of a PAGE that are not measurement blocks.
PAGE_KEYS = frozenset({"TYPE", "PAGE_NAME", "COMMENT", "STAT", "FAIL_MSG", "EXTPROG"})

# One alternative per group, so ``lastindex`` names the token: 1 a form's keyword, 2 ")",
# 3 a quoted string, 4 "(" that opens no form, 5 other text, 6 a quote never closed. White
# space before a token is skipped by the pattern itself.
_TOKEN = re.compile(r'\s*(?:\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*:|(\))|"([^"]*)"|(\()|([^()"]+)|("))')
_DATE = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})\s+([0-9]{1,2}):([0-9]{2}):([0-9]{2})")
_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2}):([0-9]{2})(?:[:.,]([0-9]{1,6}))?")
_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


class _ParseError(Exception):
    """A problem at a position of the text (turned into a line number when reported)."""

    def __init__(self, pos: int, reason: str) -> None:
        self.pos = pos
        self.reason = reason
        super().__init__(reason)

    def where(self, text: str) -> str:
        return f"line {_line(text, self.pos)}: {self.reason}"


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


class _Form:
    """One ``(KEY: ...)`` form: its words, quoted strings and child forms."""

    __slots__ = ("children", "depth", "key", "pos", "strings", "texts")

    def __init__(self, key: str, pos: int) -> None:
        self.key = key
        self.pos = pos
        self.texts: list[str] = []
        self.strings: list[str] | None = None
        self.children: list[_Form] = []
        self.depth = 0  # parentheses in the text that open no form: "(x86)"

    def text(self) -> str:
        """The value: its quoted string(s), else its words with white space collapsed."""
        if self.strings is not None:
            return "".join(self.strings)
        return " ".join(" ".join(self.texts).split())

    def child(self, key: str) -> _Form | None:
        """The first child form with ``key``."""
        for child in self.children:
            if child.key == key:
                return child
        return None

    def value(self, key: str) -> str | None:
        """The text of the first child form with ``key`` (None when there is none)."""
        child = self.child(key)
        return child.text() if child is not None else None


def _tokenize(text: str) -> list[_Form]:
    """The top-level forms of ``text`` (one pass, one compiled pattern)."""
    top: list[_Form] = []
    stack: list[_Form] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastindex
        if kind == 5:
            if stack:
                stack[-1].texts.append(match.group(5))
            elif match.group(5).strip():
                raise _ParseError(
                    match.start(5),
                    f"text outside a (KEYWORD: ...) form: {show(match.group(5).strip())}",
                )
        elif kind == 1:
            form = _Form(match.group(1), match.start(1))
            (stack[-1].children if stack else top).append(form)
            stack.append(form)
        elif kind == 2:
            if not stack:
                raise _ParseError(match.start(2), "')' closes no form")
            form = stack[-1]
            if form.depth:
                form.depth -= 1
                form.texts.append(")")
            else:
                stack.pop()
        elif kind == 3:
            if not stack:
                raise _ParseError(match.start(3), "a quoted string outside a (KEYWORD: ...) form")
            strings = stack[-1].strings
            if strings is None:
                stack[-1].strings = [match.group(3)]
            else:
                strings.append(match.group(3))
        elif kind == 4:
            if not stack:
                raise _ParseError(match.start(4), "'(' without a KEYWORD: (not a Spectrum log)")
            stack[-1].depth += 1
            stack[-1].texts.append("(")
        elif kind == 6:
            raise _ParseError(match.start(6), 'a quoted string is never closed (no matching ")')
    if stack:
        inner, outer = stack[-1], stack[0]
        raise _ParseError(
            len(text),
            f"the file ends inside ({inner.key}: (line {_line(text, inner.pos)}), "
            f"{len(stack)} form(s) open since ({outer.key}: (line {_line(text, outer.pos)}): "
            "is it complete?",
        )
    return top


def _status(form: _Form | None) -> Status | None:
    if form is None:
        return None
    word = form.text().upper()
    status = STATS.get(word)
    if status is None:
        known = ", ".join(STATS)
        raise _ParseError(form.pos, f"(STAT: {word}) is not a status ({known})")
    return status


def _quantity(form: _Form) -> tuple[float | None, str | None]:
    """(value in the SI base unit, unit) of a ``(X: (VAL: v) (SCALE: s) (UNIT: u))`` form."""
    val = form.child("VAL")
    if val is None:
        return None, None
    text = val.text()
    if not _NUMBER.fullmatch(text):
        raise _ParseError(val.pos, f"({form.key}: (VAL: {text})) is not a number")
    scale_text = form.value("SCALE") or ""
    power = SCALES.get(scale_text)
    if power is None:
        raise _ParseError(
            form.pos, f"(SCALE: {scale_text}) is not a known scale (p, n, u, m, k, K, M, G)"
        )
    mantissa, _, exponent = text.upper().partition("E")
    # The exponent is written into the text so the float is the correctly rounded one.
    try:
        value = float(f"{mantissa}e{power + (int(exponent) if exponent else 0)}")
    except (ValueError, OverflowError):  # pragma: no cover - the pattern checked the text
        raise _ParseError(val.pos, f"({form.key}: (VAL: {text})) is not a number") from None
    if value in (float("inf"), float("-inf")):
        raise _ParseError(val.pos, f"({form.key}: (VAL: {text}{scale_text})) is out of range")
    unit = form.value("UNIT")
    return value, (UNITS.get(unit, unit) if unit else None)


def _quantity_text(form: _Form) -> str:
    """``30 mV``, ``1.25 MOhm``: a value as the log writes it, for report text."""
    unit = form.value("UNIT") or ""
    return f"{form.value('VAL') or ''} {form.value('SCALE') or ''}{UNITS.get(unit, unit)}".strip()


@attrs.define
class _Measured:
    """What one measurement block (ANA, INTC ...) of a page holds."""

    name: str
    status: Status
    value: float | None
    unit: str | None
    comp_op: CompOp
    low: float | None
    high: float | None
    notes: list[str]

    def numeric(self, named: bool) -> NumericMeasurement:
        return NumericMeasurement(
            name=self.name if named else None,
            comp_op=self.comp_op,
            value=self.value,
            low_limit=self.low,
            high_limit=self.high,
            unit=self.unit,
            status=self.status,
        )


def _block(form: _Form, page_status: Status) -> _Measured:
    result = form.child("INTC_RESULT")
    status = _status(form.child("STAT")) or page_status
    if result is not None:
        status = _status(result.child("STAT")) or status
    value: float | None = None
    unit: str | None = None
    low: float | None = None
    high: float | None = None
    notes: list[str] = []
    low_unit = high_unit = None
    for scope in (form, result):
        if scope is None:
            continue
        for child in scope.children:
            key = child.key
            if key in ("MEASVAL", "MEAS_VAL"):
                value, unit = _quantity(child)
            elif key == "LOLIM":
                low, low_unit = _quantity(child)
            elif key == "HILIM":
                high, high_unit = _quantity(child)
            elif key == "THRESH":
                low = _threshold(child)
            elif key == "NOMVAL":
                notes.append(f"nominal {_quantity_text(child)}")
            elif key.endswith("_LIMIT"):
                notes.append(f"{key.lower().replace('_', ' ')} {_quantity_text(child)}")
    unit = unit or high_unit or low_unit
    if value is None:
        # Nothing measured (a discharge or shorts check): the status is all there is; the
        # limits are kept as text.
        if low is not None:
            notes.append(f"low limit {_limit(form, result, 'LOLIM')}")
        if high is not None:
            notes.append(f"high limit {_limit(form, result, 'HILIM')}")
        comp_op, low, high = CompOp.LOG, None, None
    elif low is not None and high is not None:
        comp_op = CompOp.GELE
    elif low is not None:
        comp_op = CompOp.GE
    elif high is not None:
        comp_op, low, high = CompOp.LE, high, None  # one upper limit goes in lowLimit
    else:
        comp_op = CompOp.LOG
    name = form.value("TYPE") or form.key
    return _Measured(name, status, value, unit, comp_op, low, high, notes)


def _threshold(form: _Form) -> float | None:
    if form.child("VAL") is not None:
        return _quantity(form)[0]
    text = form.text()
    if not _NUMBER.fullmatch(text):
        raise _ParseError(form.pos, f"(THRESH: {text}) is not a number")
    return float(text)


def _limit(form: _Form, result: _Form | None, key: str) -> str:
    child = form.child(key) or (result.child(key) if result is not None else None)
    return _quantity_text(child) if child is not None else ""


@attrs.define
class _Section:
    """A SECTION_NAME and the steps read after it (its id is taken when it starts)."""

    name: str
    id: int
    steps: list[Step] = attrs.field(factory=list)


@attrs.define
class _Uut:
    """One UUT being read: header values and the section tree."""

    pos: int
    program: str | None
    subprogram: str | None = None
    loose: list[Step] = attrs.field(factory=list)  # steps before the first SECTION_NAME
    sections: list[_Section] = attrs.field(factory=list)
    user: dict[str, str] = attrs.field(factory=dict)
    user_pos: dict[str, int] = attrs.field(factory=dict)
    misc: list[MiscInfo] = attrs.field(factory=list)
    first_time: datetime | None = None
    next_id: int = 2

    def new_id(self) -> int:
        """The next step id; ids are taken in tree order as the log is read."""
        self.next_id += 1
        return self.next_id - 1

    def current(self) -> list[Step]:
        return self.sections[-1].steps if self.sections else self.loose


#: USER keys (lower case) the header uses; any other key becomes a misc info.
USER_KEYS = frozenset(
    {
        "serialnumber",
        "operator",
        "date",
        "starttime",
        "endtime",
        "status",
        "machine",
        "version",
        "sequencerev",
        "partnumber",
        "partrevision",
    }
)


class SpectrumConverter:
    """Reads Teradyne Spectrum ICT structured logs; each PROGRAM_NAME is one report."""

    name = "teradyne-spectrum"
    version = "1.0"
    patterns = ("*.txt",)
    Arguments = SpectrumArguments

    @staticmethod
    @never_raises
    def sniff(head: bytes, name: str) -> str | None:
        """A reason when ``head`` holds Spectrum forms (``(PROGRAM_NAME:``, ``(STEP:``)."""
        text = head_text(head).lstrip()
        if not text.startswith("("):
            return None
        for marker in ("(PROGRAM_NAME:", "(SECTION_NAME:", "(STEP:"):
            if marker in text:
                return f"{marker} forms of a Teradyne Spectrum structured log"
        return None

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """One report per PROGRAM_NAME (UUT) in the log."""
        args = context.arguments_as(SpectrumArguments)
        text = decoded_text(self.name, source.data, args.encoding)
        try:
            uuts = _parse(text)
        except _ParseError as exc:
            raise ConversionError(self.name, one_line(exc.where(text))) from None

        def told(where: str, exc: _ParseError) -> str:
            # The position is told as a line of the text; the UUT only when there are more.
            message = one_line(exc.where(text))
            return f"{where}, {message}" if len(uuts) > 1 else message

        return unit_reports(
            self.name,
            source,
            ((f"UUT {n} (line {_line(text, uut.pos)})", uut) for n, uut in enumerate(uuts, 1)),
            lambda uut, report_id: _report(uut, args, context, report_id()),
            _ParseError,
            told,
        )


def _parse(text: str) -> list[_Uut]:
    forms = _tokenize(text)
    if not forms:
        raise _ParseError(0, "not a Spectrum log: it holds no (KEYWORD: ...) form")
    uuts: list[_Uut] = []
    uut: _Uut | None = None
    for form in forms:
        key = form.key
        if key == "PROGRAM_NAME":
            uut = _Uut(form.pos, form.text() or None)
            uuts.append(uut)
            continue
        if uut is None:
            uut = _Uut(form.pos, None)
            uuts.append(uut)
        if key == "SUBPROGRAM_NAME":
            uut.subprogram = form.text() or None
        elif key == "SECTION_NAME":
            uut.sections.append(_Section(form.text() or "Section", uut.new_id()))
        elif key == "STEP":
            uut.current().append(_step(uut, form))
        elif key == "USER":
            _user(uut, form)
        # Other top-level forms carry nothing a report has a field for.
    return uuts


def _user(uut: _Uut, form: _Form) -> None:
    key, sep, value = form.text().partition(":")
    key, value = key.strip(), value.strip()
    if not sep or not key:
        return
    lower = key.lower()
    if lower in USER_KEYS:
        uut.user[lower] = value
        uut.user_pos[lower] = form.pos
    elif value:
        uut.misc.append(MiscInfo(description=clip(key), text=clip(value)))


def _step(uut: _Uut, form: _Form) -> Step:
    name = form.value("SNAME") or form.value("TYPE") or "STEP"
    status = _status(form.child("STAT"))
    desc = (form.value("DESC") or "").strip()
    start: str | None = None
    when = form.child("TIME")
    if when is not None and when.text():
        moment = _moment(when)
        start = moment.isoformat(timespec="milliseconds")
        if uut.first_time is None:
            uut.first_time = moment
    pages = [child for child in form.children if child.key == "PAGE"]
    step_id = uut.new_id()
    if len(pages) == 1:
        # One page: the page is the step (named by its PAGE_NAME, as Virinco's converter).
        return _page(uut, pages[0], name, step_id, start, desc)
    if not pages:
        return Step(
            id=step_id,
            group=StepGroup.MAIN,
            step_type="Action",
            name=name,
            status=status or Status.PASSED,
            start=start,
            report_text=desc or None,
        )
    children = [_page(uut, page, name, uut.new_id(), None, "") for page in pages]
    return Step(
        id=step_id,
        group=StepGroup.MAIN,
        step_type="SequenceCall",
        name=name,
        status=status or worst_status(c.status for c in children),
        start=start,
        report_text=desc or None,
        seq_call=SequenceCallInfo(path=name, name=name, version=None),
        steps=children,
    )


def _page(
    uut: _Uut, page: _Form, step_name: str, step_id: int, start: str | None, desc: str
) -> Step:
    name = page.value("PAGE_NAME") or step_name
    status = _status(page.child("STAT")) or Status.PASSED
    notes: list[str] = [desc] if desc else []
    comment = (page.value("COMMENT") or "").strip()
    if comment:
        notes.append(comment)
    fail = (page.value("FAIL_MSG") or "").strip()
    if fail:
        notes.append(fail)
    program = page.child("EXTPROG")
    if program is not None and program.value("PROG_NAME"):
        notes.append(f"EXT_PROG: {program.value('PROG_NAME')}")
    blocks = [
        _block(child, status)
        for child in page.children
        if child.key not in PAGE_KEYS and (child.child("STAT") or child.child("INTC_RESULT"))
    ]
    error = (fail or None) if status is Status.FAILED else None
    if not blocks:
        return Step(
            id=step_id,
            group=StepGroup.MAIN,
            step_type="Action",
            name=name,
            status=status,
            error_message=error,
            start=start,
            report_text="\n".join(notes) or None,
        )
    several = len(blocks) > 1
    if several:
        _unique_names(blocks)
    for block in blocks:
        notes.extend(f"{block.name}: {n}" if several else n for n in block.notes)
    text = "\n".join(notes) or None
    numeric = [b for b in blocks if b.value is not None]
    if not several or len(numeric) == len(blocks) or not numeric:
        step_type = (
            ("ET_NLT" if numeric else "ET_PFT")
            if not several
            else ("ET_MNLT" if numeric else "ET_MPFT")
        )
        return Step(
            id=step_id,
            group=StepGroup.MAIN,
            step_type=step_type,
            name=name,
            status=status,
            error_message=error,
            start=start,
            report_text=text,
            numeric_meas=[b.numeric(several) for b in blocks] if numeric else None,
            boolean_meas=None
            if numeric
            else [
                BooleanMeasurement(name=b.name if several else None, status=b.status)
                for b in blocks
            ],
        )
    # Measured and unmeasured blocks on one page: a step cannot hold both kinds, so the
    # page becomes a sequence with a step per block.
    children = [
        Step(
            id=uut.new_id(),
            group=StepGroup.MAIN,
            step_type="ET_NLT" if b.value is not None else "ET_PFT",
            name=b.name,
            status=b.status,
            report_text="\n".join(b.notes) or None,
            numeric_meas=[b.numeric(False)] if b.value is not None else None,
            boolean_meas=None if b.value is not None else [BooleanMeasurement(status=b.status)],
        )
        for b in blocks
    ]
    own = [n for n in notes[: len(notes) - sum(len(b.notes) for b in blocks)]]
    return Step(
        id=step_id,
        group=StepGroup.MAIN,
        step_type="SequenceCall",
        name=name,
        status=status,
        error_message=error,
        start=start,
        report_text="\n".join(own) or None,
        seq_call=SequenceCallInfo(path=name, name=name, version=None),
        steps=children,
    )


def _unique_names(blocks: list[_Measured]) -> None:
    seen: dict[str, int] = {}
    for block in blocks:
        count = seen.get(block.name, 0) + 1
        seen[block.name] = count
        if count > 1:
            block.name = f"{block.name} #{count}"


def _moment(form: _Form) -> datetime:
    text = form.text()
    match = _DATE.fullmatch(text)
    problem = _ParseError(form.pos, f"(TIME: {text}) is not a date and time (MM/DD/YYYY HH:MM:SS)")
    if match is None:
        raise problem
    try:
        month, day, year, hour, minute, second = (int(g) for g in match.groups())
        return station_time(datetime(year, month, day, hour, minute, second))
    except (ValueError, OverflowError, OSError):
        raise problem from None


def _day_time(uut: _Uut, key: str) -> timedelta | None:
    text = uut.user.get(key)
    if not text:
        return None
    match = _CLOCK.fullmatch(text)
    if match is None:
        raise _ParseError(uut.user_pos[key], f"(USER: {key}: {text}) is not a time (HH:MM:SS:mmm)")
    hour, minute, second = (int(g) for g in match.groups()[:3])
    fraction = match.group(4) or "0"
    if hour > 23 or minute > 59 or second > 59:
        raise _ParseError(uut.user_pos[key], f"(USER: {key}: {text}) is not a time of day")
    micro = int((fraction + "000000")[:6]) if match.group(4) else 0
    return timedelta(hours=hour, minutes=minute, seconds=second, microseconds=micro)


def _start(uut: _Uut) -> tuple[datetime, timedelta | None]:
    """The start (station time) and the execution time."""
    start_of_day = _day_time(uut, "starttime")
    end_of_day = _day_time(uut, "endtime")
    date_text = uut.user.get("date")
    exec_time = None
    if start_of_day is not None and end_of_day is not None:
        exec_time = end_of_day - start_of_day
        if exec_time < timedelta(0):
            exec_time += timedelta(days=1)  # the test ran over midnight
    if date_text and start_of_day is not None:
        match = re.fullmatch(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})", date_text)
        problem = _ParseError(
            uut.user_pos["date"], f"(USER: Date: {date_text}) is not a date (MM/DD/YYYY)"
        )
        if match is None:
            raise problem
        try:
            month, day, year = (int(g) for g in match.groups())
            naive = datetime(year, month, day) + start_of_day
            return station_time(naive), exec_time
        except (ValueError, OverflowError, OSError):
            raise problem from None
    if uut.first_time is not None:
        return uut.first_time, exec_time
    raise _ParseError(uut.pos, "the log has no start time (no USER Date/StartTime, no STEP TIME)")


def _verdict(text: str) -> Result | None:
    upper = text.upper()
    for word, result in (
        ("FAIL", Result.FAILED),
        ("ABORT", Result.TERMINATED),
        ("STOP", Result.TERMINATED),
        ("CANCEL", Result.TERMINATED),
        ("TERMINAT", Result.TERMINATED),
        ("ERROR", Result.ERROR),
        ("PASS", Result.PASSED),
    ):
        if word in upper:
            return result
    return None


def _report(
    uut: _Uut, args: SpectrumArguments, context: ConversionContext, report_id: str
) -> Report:
    sn = uut.user.get("serialnumber")
    if not sn:
        raise _ParseError(
            uut.pos, "the log has no (USER: Serialnumber: ...) line: no serial number"
        )
    status_text = uut.user.get("status")
    if status_text is None:
        raise _ParseError(
            uut.pos,
            "the log has no (USER: STATUS: BOARD PASSED/FAILED) trailer, which gives the "
            "verdict: is it complete?",
        )
    result = _verdict(status_text)
    error = None
    if result is None:
        result = Result.ERROR
        error = f"unknown board status {status_text!r}"
    pn = uut.user.get("partnumber") or args.partNumber or uut.program
    if not pn:
        raise _ParseError(uut.pos, "the log has no PROGRAM_NAME (the part number)")
    start, exec_time = _start(uut)
    steps = list(uut.loose)
    for section in uut.sections:
        steps.append(
            Step(
                id=section.id,
                group=StepGroup.MAIN,
                step_type="SequenceCall",
                name=section.name,
                status=worst_status(s.status for s in section.steps),
                seq_call=SequenceCallInfo(path=section.name, name=section.name, version=None),
                steps=section.steps,
            )
        )
    program = uut.program or pn
    version = uut.user.get("version") or uut.user.get("sequencerev") or args.sequenceVersion
    root = Step(
        id=1,
        group=StepGroup.MAIN,
        step_type="SequenceCall",
        name=program,
        status=Status(result.value),
        seq_call=SequenceCallInfo(
            path=program, name=uut.subprogram or program, version=clip(version, 30)
        ),
        steps=steps,
    )
    start_text, start_utc = start_fields(start)
    station = context.station
    return Report(
        type=ReportType.UUT,
        id=report_id,
        pn=pn,
        sn=sn,
        rev=uut.user.get("partrevision") or args.partRevision,
        process_code=args.operationTypeCode,
        result=result,
        machine_name=uut.user.get("machine") or station.machine_name,
        location=station.location,
        purpose=station.purpose,
        start=start_text,
        start_utc=start_utc,
        uut=UUTInfo(
            user=uut.user.get("operator") or None,
            exec_time=exec_time.total_seconds() if exec_time is not None else None,
            error_message=error,
        ),
        misc_infos=uut.misc or None,
        root=root,
    )
