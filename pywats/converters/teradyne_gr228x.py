"""The ``teradyne-gr228x`` converter: Teradyne GR228X in-circuit test text logs.

A GR228X log holds the UUTs a tester ran with one program, one after the other::

    (blank line)
    F:\\BOARDS\\43420_BIO2_PROGRAM\\43420_BIO2.obc[31-JUL-12  14:17:35
    @31-JUL-12  14:19:32 SN 24422984989544535753
    (O 397,398,
    R508=100.20007K(92.919K,105.131K)R
    C206=10.212763N(7.999999N,12.000001N)CP
    D103_B1=
    /31-JUL-12  14:19:49

The program line names the program (its file name gives the part number); each ``@``
line starts a UUT with its serial number; failure lists ``(F``, ``(O``, ``(S``, ``(B``,
``(C`` (continued on the next line after a ``+``) and measurements
``<ref><result><value>(<low>,<high>)<type>`` follow; a line starting with an end event
(``"`` pass, ``/`` fail, ``?`` aborted, ``*`` error, ``&`` system error, ``!`` cancelled)
ends the UUT and gives its verdict. ``]`` (return to diagnose) is a tester event, not a
verdict. Test programs written for WATS may add ``WATS_partNumber=...`` lines.

Every UUT is one report. Values and limits are converted to SI base units with their own
prefix (``M`` is milli, ``MEG`` is mega). ``docs/converters.md`` has the full mapping.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import datetime
from pathlib import PurePath, PureWindowsPath
from typing import NamedTuple

import attrs

from pywats.converters.arguments import check_arguments
from pywats.converters.base import ConversionContext, Source
from pywats.converters.helpers import (
    clip,
    decoded_text,
    encode_limits,
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
class GR228XArguments:
    """Arguments of the ``teradyne-gr228x`` converter."""

    #: Process code of every report (it must exist on the server).
    operationTypeCode: int = 30
    #: Part number for every UUT; None takes it from the program's file name.
    partNumber: str | None = None
    #: Part revision when the log has no ``WATS_partRevision=`` line.
    partRevision: str = "1"
    #: Root sequence version when the log has no ``WATS_sequenceVersion=`` line.
    sequenceVersion: str = "0.0.0"
    #: Text encoding; None reads a byte-order mark, else UTF-8, else cp1252.
    encoding: str | None = None

    def __attrs_post_init__(self) -> None:
        check_arguments(self)


#: End events: character -> (result, meaning). ``]`` is not among them: not a verdict.
EVENTS: dict[str, tuple[Result, str]] = {
    '"': (Result.PASSED, "pass"),
    "/": (Result.FAILED, "fail"),
    "?": (Result.TERMINATED, "aborted"),
    "!": (Result.TERMINATED, "cancelled"),
    "*": (Result.ERROR, "error"),
    "&": (Result.ERROR, "system error"),
}
RETURN_TO_DIAGNOSE = "]"

#: Failure-list keys -> step name.
FAILURE_LISTS = {
    "F": "Contact",
    "O": "Opens",
    "S": "Shorts",
    "B": "Bus",
    "C": "Scratch probe",
}

#: Unit prefixes -> power of ten (``M`` is milli, ``MEG`` mega).
PREFIXES = {"": 0, "P": -12, "N": -9, "U": -6, "M": -3, "K": 3, "MEG": 6}

#: Measurement type codes -> unit of the value (None: a ratio, a count or not known).
UNITS: dict[str, str | None] = {
    "R": "Ohm",
    "RP": "Ohm",
    "RS": "Ohm",
    "XP": "Ohm",
    "XS": "Ohm",
    "ZM": "Ohm",
    "CP": "F",
    "CS": "F",
    "LP": "H",
    "LS": "H",
    "V": "V",
    "VS": "V",
    "DC": "V",
    "AC": "V",
    "AV": "V",
    "I": "A",
    "IS": "A",
    "AI": "A",
    "HZ": "Hz",
    "S": "s",
    "TI": "s",
}

_DATE = (
    r"(?P<day>[0-9]{1,2})-(?P<month>[A-Za-z]{3})-(?P<year>[0-9]{2,4})"
    r"\s+(?P<time>[0-9]{1,2}:[0-9]{2}:[0-9]{2})"
)
_EVENT = re.compile(r"(?P<event>[\"/?*&!\]])\s*" + _DATE + r"\s*$")
_START = re.compile(r"@\s*" + _DATE + r"(?:\s+SN\b\s*(?P<sn>.*?))?\s*$")
_PROGRAM = re.compile(r"(?P<path>[^\[]*[^\[\s])\s*\[\s*" + _DATE + r"\s*$")
_LIST = re.compile(r"\((?P<key>[A-Za-z])(?:\s+(?P<info>.*?))?\s*$")
_WATS = re.compile(r"WATS_(?P<key>[A-Za-z0-9_]+)\s*=\s*(?P<value>.*?)\s*$")
# Letters in either case, spelled out, not re.IGNORECASE: that would also take the Kelvin
# sign (U+212A, which folds to "k") for the prefix K, and PREFIXES[prefix.upper()] then
# failed on it. (Case folding also makes the hottest line's match about 9 % slower.)
_NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[Ee][-+]?[0-9]+)?"
_PREFIX = r"[Mm][Ee][Gg]|[PNUMKpnumk]"
# ``limits`` (the whole parenthesis) only serves as the key of the limits already read:
# a log repeats the same few limits on many lines. _measurement unpacks the groups by
# position (faster than by name on the hottest line), so their order is part of the code.
_MEASURE = re.compile(
    rf"(?P<ref>[^\s=#<>%(]+)(?P<result>[=#<>%])"
    rf"(?P<value>{_NUMBER})?(?P<vp>{_PREFIX})?"
    rf"(?P<limits>\((?P<low>{_NUMBER})?(?P<lp>{_PREFIX})?,(?P<high>{_NUMBER})?(?P<hp>{_PREFIX})?\))?"
    rf"(?P<type>[A-Za-z]+)?\s*(?:=\s*(?P<message>.*?))?\s*$"
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
#: Known ``WATS_<key>=`` lines; other keys become misc infos.
WATS_KEYS = {
    "partnumber": "partNumber",
    "partrevision": "partRevision",
    "sequencename": "sequenceName",
    "sequenceversion": "sequenceVersion",
    "operator": "operator",
    "stationname": "stationName",
}


class _ParseError(Exception):
    def __init__(self, line: int, reason: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {reason}")


def _time(match: re.Match[str], line: int) -> datetime:
    month = _MONTHS.get(match["month"].upper())
    if month is not None:
        try:
            year = int(match["year"])
            if year < 100:
                year += 2000 if year < 69 else 1900  # as strptime's %y
            hour, minute, second = map(int, match["time"].split(":"))
            return station_time(datetime(year, month, int(match["day"]), hour, minute, second))
        except (ValueError, OverflowError, OSError):
            pass
    # The message is only built for a bad time: every line with a time comes through here.
    text = f"{match['day']}-{match['month']}-{match['year']}  {match['time']}"
    raise _ParseError(line, f"{text!r} is not a date and time (DD-MMM-YY HH:MM:SS)")


def _scaled(number: str | None, prefix: str | None, line: int) -> float | None:
    """``number`` with its unit prefix applied, as a float in the SI base unit."""
    if number is None:
        return None
    if prefix:
        power = PREFIXES[prefix.upper()]
        mantissa = number
        if "E" in number or "e" in number:  # the usual number has no exponent of its own
            mantissa, _, exponent = number.upper().partition("E")
            power += int(exponent) if exponent else 0
        # The exponent is written into the text so the float is the correctly rounded one
        # (100.20007K is 100200.07, not 100200.07000000001).
        value = float(f"{mantissa}e{power}")
    else:
        value = float(number)  # no prefix: the text is the number, exponent and all
    if not math.isfinite(value):
        raise _ParseError(line, f"{number}{prefix or ''} is out of range")
    return value


@attrs.define
class _Group:
    """A run of measurements whose references start with the same letter."""

    letter: str
    id: int
    number: int
    steps: list[Step] = attrs.field(factory=list)


@attrs.define
class _Uut:
    """One UUT being read."""

    line: int
    sn: str
    start: datetime
    program: str | None
    steps: list[Step | _Group] = attrs.field(factory=list)
    wats: dict[str, str] = attrs.field(factory=dict)
    misc: list[MiscInfo] = attrs.field(factory=list)
    result: Result | None = None
    end: datetime | None = None
    error: str | None = None
    next_id: int = 2
    groups: dict[str, int] = attrs.field(factory=dict)  # letter -> groups so far
    group: _Group | None = None  # the last of ``steps`` when it is a group
    open_list: Step | None = None  # a failure list continued on the next line

    def new_id(self) -> int:
        """The next step id; ids are taken in tree order as the log is read."""
        self.next_id += 1
        return self.next_id - 1


class GR228XConverter:
    """Reads Teradyne GR228X ICT logs; every UUT (``@... SN ...`` line) is one report."""

    name = "teradyne-gr228x"
    version = "1.0"
    patterns = ("*.log",)
    Arguments = GR228XArguments

    @staticmethod
    @never_raises
    def sniff(head: bytes, name: str) -> str | None:
        """A reason when ``head`` starts like a GR228X log (program line, ``@`` UUT line)."""
        lines = [line.strip() for line in head_text(head[:4096]).split("\n")]
        first = next((line for line in lines if line), "")
        if _PROGRAM.match(first) and ".obc" in first.lower():
            return "a program line (<program>.obc[DD-MMM-YY HH:MM:SS) (Teradyne GR228X)"
        if _START.match(first) and " SN " in first:
            return "an @DD-MMM-YY HH:MM:SS SN line (Teradyne GR228X)"
        return None

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """One report per UUT in the log."""
        args = context.arguments_as(GR228XArguments)
        text = decoded_text(self.name, source.data, args.encoding)
        try:
            uuts = _parse(text)
        except _ParseError as exc:
            raise ConversionError(self.name, one_line(str(exc))) from None
        return unit_reports(
            self.name,
            source,
            ((f"UUT {n} (line {uut.line})", uut) for n, uut in enumerate(uuts, 1)),
            lambda uut, report_id: _report(uut, args, context, source, report_id()),
            _ParseError,
            lambda where, exc: one_line(f"{where}, {exc}"),
        )


def _parse(text: str) -> list[_Uut]:
    uuts: list[_Uut] = []
    program: str | None = None
    uut: _Uut | None = None
    seen_header = False
    continues = False  # the previous line ended a failure list with "+"
    limits: dict[str, _Limits] = {}  # see _measurement
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            continue
        first = line[0]
        if first == "@":
            start = _START.match(line)
            if start is None:
                raise _ParseError(
                    number,
                    f"a UUT line must be '@DD-MMM-YY HH:MM:SS SN <serial>', got {show(line)}",
                )
            if uut is not None and uut.result is None:
                uut.result = Result.ERROR
                uut.error = f"the log has no end event for this UUT before line {number}"
            sn = (start["sn"] or "").strip()
            if not sn:
                raise _ParseError(number, "the UUT line has no serial number (SN <serial>)")
            uut = _Uut(number, sn, _time(start, number), program)
            uuts.append(uut)
            seen_header = continues = False
            continue
        if first in EVENTS or first == RETURN_TO_DIAGNOSE:
            event = _EVENT.match(line)
            if event is None:
                raise _ParseError(
                    number, f"an event line must be '{first}DD-MMM-YY HH:MM:SS', got {show(line)}"
                )
            when = _time(event, number)
            continues = False
            if uut is None or uut.result is not None:
                continue  # an event between UUTs (return to diagnose) belongs to none
            if first == RETURN_TO_DIAGNOSE:
                uut.misc.append(MiscInfo(description="Return to diagnose", text=_stamp(event)))
                continue
            uut.result = EVENTS[first][0]
            uut.end = when
            continue
        if uut is None or uut.result is not None:
            # Between UUTs: only the program line (a new program may be loaded).
            match = _PROGRAM.match(line)
            if match is None:
                if not uuts and not seen_header:
                    raise _ParseError(
                        number,
                        "not a GR228X log: expected a program line "
                        f"'<program>[DD-MMM-YY HH:MM:SS' or an '@' UUT line, got {show(line)}",
                    )
                raise _ParseError(
                    number,
                    f"expected a program line or an '@' UUT line between UUTs, got {show(line)}",
                )
            _time(match, number)
            program = match["path"]
            seen_header = True
            continue
        if continues and uut.open_list is not None and not _starts_record(line):
            _extend_list(uut, line)
            continues = line.endswith("+")
            continue
        continues = False
        if first == "(":
            match = _LIST.match(line)
            if match is None:  # pragma: no cover - the pattern takes any "(<letter>"
                raise _ParseError(number, f"not a failure list: {show(line)}")
            _failure_list(uut, match)
            continues = line.endswith("+")
            continue
        # The test on the literal start of _WATS spares a regex call on every measurement.
        wats = _WATS.match(line) if line.startswith("WATS_") else None
        if wats is not None:
            key = wats["key"]
            known = WATS_KEYS.get(key.lower())
            if known is not None:
                if wats["value"]:
                    uut.wats[known] = wats["value"]
            elif wats["value"]:
                uut.misc.append(MiscInfo(description=clip(key), text=clip(wats["value"])))
            continue
        measure = _MEASURE.match(line)
        if measure is None:
            raise _ParseError(
                number, f"not a GR228X measurement, failure list or event: {show(line)}"
            )
        _measurement(uut, measure, number, limits)
    if uut is not None and uut.result is None:
        raise _ParseError(
            uut.line,
            f"the log ends before the end event of the UUT with SN {uut.sn} (no "
            '" / ? * & ! line after it): is the file complete?',
        )
    if not uuts:
        if not seen_header:
            raise _ParseError(1, "not a GR228X log: no program line and no '@' UUT line")
        raise _ParseError(1, "the log holds no UUT (no '@DD-MMM-YY HH:MM:SS SN <serial>' line)")
    return uuts


def _stamp(match: re.Match[str]) -> str:
    return f"{match['day']}-{match['month']}-{match['year']} {match['time']}"


def _starts_record(line: str) -> bool:
    """Whether ``line`` is a record of its own rather than the rest of a failure list."""
    return line[0] in "@(" or line.startswith("WATS_") or _MEASURE.match(line) is not None


def _failure_list(uut: _Uut, match: re.Match[str]) -> None:
    key = match["key"].upper()
    name = FAILURE_LISTS.get(key, f"({key} list")
    info = (match["info"] or "").removesuffix("+").strip()
    step = Step(
        id=uut.new_id(),
        group=StepGroup.MAIN,
        step_type="ET_PFT",
        name=name,
        status=Status.FAILED,
        report_text=info or None,
        boolean_meas=[_BOOLEAN[Status.FAILED]],
    )
    uut.steps.append(step)
    uut.group = None
    uut.open_list = step


def _extend_list(uut: _Uut, line: str) -> None:
    step = uut.open_list
    assert step is not None
    more = line.removesuffix("+").strip()
    text = f"{step.report_text or ''} {more}".strip()
    replaced = attrs.evolve(step, report_text=text or None)
    uut.steps[uut.steps.index(step)] = replaced
    uut.open_list = replaced


#: Pass/fail measurements are immutable: one instance of each serves every step.
_BOOLEAN = {status: BooleanMeasurement(status=status) for status in Status}
#: Result character -> (step status, error message).
_RESULTS: dict[str, tuple[Status, str | None]] = {
    "=": (Status.PASSED, None),
    "#": (Status.DONE, None),
    "<": (Status.FAILED, "below the low limit"),
    ">": (Status.FAILED, "above the high limit"),
    "%": (Status.FAILED, "failed"),
}


class _Limits(NamedTuple):
    """The limits of a measurement: as read (``low``, ``high``) and as WATS takes them."""

    low: float | None
    high: float | None
    comp_op: CompOp
    low_limit: float | None
    high_limit: float | None


_NO_LIMITS = _Limits(None, None, CompOp.LOG, None, None)


def _limits(
    low_text: str | None,
    low_prefix: str | None,
    high_text: str | None,
    high_prefix: str | None,
    line: int,
) -> _Limits:
    low = _scaled(low_text, low_prefix, line)
    high = _scaled(high_text, high_prefix, line)
    return _Limits(low, high, *encode_limits(None, low, high))


def _measurement(uut: _Uut, m: re.Match[str], line: int, seen: dict[str, _Limits]) -> None:
    """The step of a measurement line; ``seen`` holds the limits read so far, by their text
    (the same limits come back on many lines: each is converted once)."""
    # By position, in the order of _MEASURE's groups: this runs for nearly every line.
    (
        ref,
        result,
        number,
        value_prefix,
        limits_text,
        low_text,
        low_prefix,
        high_text,
        high_prefix,
        type_text,
        message,
    ) = m.groups()
    if number is None and result == "#":
        return  # not judged and nothing measured: a source set-up line (SETCR#(,)IS)
    value = _scaled(number, value_prefix, line)
    letter = ref[0].upper()
    group = uut.group
    if group is None or group.letter != letter:
        count = uut.groups.get(letter, 0) + 1
        uut.groups[letter] = count
        group = uut.group = _Group(letter, uut.new_id(), count)
        uut.steps.append(group)
    uut.open_list = None
    type_code = (type_text or "").upper()
    name = f"{ref}({type_code})" if type_code else ref
    limits = _NO_LIMITS if limits_text is None else seen.get(limits_text)
    if limits is None:  # limits not met before in this log
        limits = seen[limits_text] = _limits(low_text, low_prefix, high_text, high_prefix, line)
    low, high, comp_op, lo, hi = limits
    status, error = _RESULTS[result]  # _MEASURE takes no other result character
    message = message or None
    if value is None:
        notes = [message] if message else []
        if low is not None or high is not None:
            notes.append(
                f"limits: low {_limit_text(m, 'low', 'lp')}, high {_limit_text(m, 'high', 'hp')}"
            )
        group.steps.append(
            Step(
                id=uut.new_id(),
                group=StepGroup.MAIN,
                step_type="ET_PFT",
                name=name,
                status=status,
                error_message=error,
                report_text="\n".join(notes) or None,
                boolean_meas=[_BOOLEAN[status]],
            )
        )
        return
    group.steps.append(
        Step(
            id=uut.new_id(),
            group=StepGroup.MAIN,
            step_type="ET_NLT",
            name=name,
            status=status,
            error_message=error,
            report_text=message,
            numeric_meas=[
                NumericMeasurement(
                    comp_op=comp_op,
                    value=value,
                    low_limit=lo,
                    high_limit=hi,
                    unit=UNITS.get(type_code),
                    status=status,
                )
            ],
        )
    )


def _limit_text(m: re.Match[str], number: str, prefix: str) -> str:
    return f"{m[number]}{m[prefix] or ''}" if m[number] else "-"


def _part_number(uut: _Uut, args: GR228XArguments, source: Source) -> str:
    if uut.wats.get("partNumber"):
        return uut.wats["partNumber"]
    if args.partNumber:
        return args.partNumber
    if uut.program:
        from_program = _program_part_number(uut.program)
        if from_program:
            return from_program
    return source.path.name.split(".", 1)[0] or source.path.name


@functools.lru_cache(maxsize=64)
def _program_part_number(program: str) -> str:
    """The part number in a program's file name: ``<part number>_<variant>.obc``."""
    stem = PurePath(PureWindowsPath(program).name).stem
    head, sep, _ = stem.rpartition("_")
    return (head if sep else stem).strip()


@functools.lru_cache(maxsize=64)
def _program_name(program: str) -> str:
    return PureWindowsPath(program).name


def _report(
    uut: _Uut,
    args: GR228XArguments,
    context: ConversionContext,
    source: Source,
    report_id: str,
) -> Report:
    steps: list[Step] = []
    for item in uut.steps:
        if isinstance(item, _Group):
            group_name = f"{item.letter}-Group{item.number}"
            steps.append(
                Step(
                    id=item.id,
                    group=StepGroup.MAIN,
                    step_type="SequenceCall",
                    name=group_name,
                    status=worst_status(c.status for c in item.steps),
                    seq_call=SequenceCallInfo(path=group_name, name=group_name, version=None),
                    steps=item.steps,
                )
            )
        else:
            steps.append(item)
    assert uut.result is not None
    program = uut.program or ""
    program_name = _program_name(program) if program else ""
    sequence = uut.wats.get("sequenceName") or program_name or "GR228X"
    version = uut.wats.get("sequenceVersion") or args.sequenceVersion
    root = Step(
        id=1,
        group=StepGroup.MAIN,
        step_type="SequenceCall",
        name=sequence,
        status=Status(uut.result.value),
        seq_call=SequenceCallInfo(path=program or sequence, name=sequence, version=version),
        steps=steps,
    )
    exec_time = None
    if uut.end is not None:
        exec_time = max((uut.end - uut.start).total_seconds(), 0.0)
    start, start_utc = start_fields(uut.start)
    station = context.station
    return Report(
        type=ReportType.UUT,
        id=report_id,
        pn=_part_number(uut, args, source),
        sn=uut.sn,
        rev=uut.wats.get("partRevision") or args.partRevision,
        process_code=args.operationTypeCode,
        result=uut.result,
        machine_name=uut.wats.get("stationName") or station.machine_name,
        location=station.location,
        purpose=station.purpose,
        start=start,
        start_utc=start_utc,
        uut=UUTInfo(
            user=uut.wats.get("operator"),
            exec_time=exec_time,
            error_message=uut.error,
        ),
        misc_infos=uut.misc or None,
        root=root,
    )
