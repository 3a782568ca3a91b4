"""Small building blocks converters share: report ids, times, status words, limits, numbers,
decoding, the texts of messages, and the loop that makes one validated report per unit.

Plugins may use them too; they raise plain ``ValueError`` with a message meant for people,
which the caller wraps with the line and column it was parsing.
"""

from __future__ import annotations

import codecs
import hashlib
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from pywats.converters.base import ArgumentError, Source
from pywats.errors import ConversionError, ReportValidationError
from pywats.report.codes import CompOp, Result, Status
from pywats.report.model import Report
from pywats.report.validate import validate

_U = TypeVar("_U")
_E = TypeVar("_E", bound=Exception)

#: How bad a status is, for rolling child statuses up into a sequence's and a report's.
_SEVERITY = {
    Status.SKIPPED: 0,
    Status.DONE: 1,
    Status.PASSED: 1,
    Status.FAILED: 2,
    Status.ERROR: 3,
    Status.TERMINATED: 4,
}

_STATUS_WORDS = {
    "p": Status.PASSED,
    "pass": Status.PASSED,
    "passed": Status.PASSED,
    "ok": Status.PASSED,
    "f": Status.FAILED,
    "fail": Status.FAILED,
    "failed": Status.FAILED,
    "ng": Status.FAILED,
    "s": Status.SKIPPED,
    "skip": Status.SKIPPED,
    "skipped": Status.SKIPPED,
    "d": Status.DONE,
    "done": Status.DONE,
    "e": Status.ERROR,
    "error": Status.ERROR,
    "t": Status.TERMINATED,
    "terminated": Status.TERMINATED,
    "aborted": Status.TERMINATED,
}

_RESULTS = {
    Status.PASSED: Result.PASSED,
    Status.DONE: Result.PASSED,
    Status.SKIPPED: Result.PASSED,
    Status.FAILED: Result.FAILED,
    Status.ERROR: Result.ERROR,
    Status.TERMINATED: Result.TERMINATED,
}


#: The uuid5 namespace of derived report ids. Never change it: every id a station has
#: already sent would then come out different for the same file, and a file converted
#: again (after a crash, or dropped twice) would become a second report on the server.
REPORT_ID_NAMESPACE = uuid.UUID("6c1f3a52-8e0b-4d6e-9a57-2f0d3c9b7e41")
_NAMESPACE_BYTES = REPORT_ID_NAMESPACE.bytes


def content_digest(data: bytes, companions: Mapping[str, bytes] | None = None) -> bytes:
    """SHA-256 over a source file's bytes and its companions' (names and bytes, by name).

    Every part is length-prefixed, so moving bytes between a file and a companion, or
    between a companion's name and its content, gives a different digest.
    """
    digest = hashlib.sha256()
    digest.update(len(data).to_bytes(8, "big"))
    digest.update(data)
    for name in sorted(companions or {}):
        encoded = name.encode("utf-8", "surrogatepass")
        content = (companions or {})[name]
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
        digest.update(len(content).to_bytes(8, "big"))
        digest.update(content)
    return digest.digest()


def derived_report_id(digest: bytes, index: int) -> str:
    """The id of report ``index`` (0-based) of the source whose content has ``digest``.

    A uuid5 (lower case, 8-4-4-4-12, as WATS writes ids) of the digest and the index: the
    same file gives the same ids in any process, so converting it again makes the server
    overwrite its reports instead of storing them twice (wats-format.md 2.1, ``id``).
    """
    # uuid.uuid5 worked out directly (RFC 4122 4.3: SHA-1 of the namespace and the name,
    # version 5 and the variant in their bits): the same id, a third of the time, which
    # counts for a format with a report every few dozen bytes (csv rows).
    raw = bytearray(
        hashlib.sha1(_NAMESPACE_BYTES + f"{digest.hex()}/{index}".encode()).digest()[:16]
    )
    raw[6] = raw[6] & 0x0F | 0x50
    raw[8] = raw[8] & 0x3F | 0x80
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def new_report_id() -> str:
    """A random report id (uuid4). Deprecated: use :class:`ReportIds`, whose ids do not
    change when the same file is converted again; kept for plugins written before it."""
    return str(uuid.uuid4())


class ReportIds:
    """Ids for the reports of one source file that carry none in their format.

    ``ids(index)`` is :func:`derived_report_id` of the file's content (its bytes and its
    companions', see :func:`content_digest`) and ``index``, the report's position among the
    reports the converter makes from the file (0-based, whether or not the others carry an
    id of their own). The digest is computed on first use, so a format whose reports all
    carry ids never pays for it. Not thread-safe on its own: make one per ``convert`` call.
    """

    __slots__ = ("_companions", "_data", "_digest")

    def __init__(self, data: bytes, companions: Mapping[str, bytes] | None = None) -> None:
        self._data = data
        self._companions = companions
        self._digest: bytes | None = None

    def __call__(self, index: int) -> str:
        if self._digest is None:
            self._digest = content_digest(self._data, self._companions)
        return derived_report_id(self._digest, index)


def start_fields(start: datetime) -> tuple[str, str]:
    """``start`` (local time with its offset) and ``startUTC`` (``Z``) for an aware time.

    ValueError when the time has no UTC form (year 1 with a positive offset).
    """
    if start.tzinfo is None:
        raise ValueError("start time has no time zone")
    try:
        as_utc = start.astimezone(UTC)
    except (OverflowError, ValueError):
        # Year 1 with a positive offset (or 9999 with a negative one) has no UTC form.
        raise ValueError(f"{start.isoformat()} is out of range") from None
    local = start.isoformat(timespec="milliseconds")
    return local, as_utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def station_time(moment: datetime) -> datetime:
    """``moment`` made aware: a time written without a zone is the station's local time.

    Test equipment writes local wall-clock time; the offset is the station's at that date
    (so daylight saving time is right for old files too). An aware time keeps its offset.
    """
    return moment if moment.tzinfo is not None else moment.astimezone()


def now() -> datetime:
    """The current time, aware, in the station's local zone (for inputs with no start)."""
    return datetime.now().astimezone()


def parse_status(text: str) -> Status:
    """A status from a word or letter (``Passed``, ``fail``, ``P``, ``OK`` ...)."""
    try:
        return _STATUS_WORDS[text.strip().lower()]
    except KeyError:
        raise ValueError(
            f"{text!r} is not a status (Passed, Failed, Error, Done, Skipped, Terminated)"
        ) from None


def parse_result(text: str) -> Result:
    """A report result from a word or letter; Done means Passed, Skipped is refused."""
    status = parse_status(text)
    if status is Status.SKIPPED:
        raise ValueError(f"{text!r} is not a report result (Passed, Failed, Error, Terminated)")
    return _RESULTS[status]


def worst_status(statuses: Iterable[Status], default: Status = Status.PASSED) -> Status:
    """The most severe status (Terminated > Error > Failed > Passed/Done > Skipped).

    A sequence whose children were all skipped is reported as ``default``: it ran.
    """
    worst: Status | None = None
    for status in statuses:
        if worst is None or _SEVERITY[status] > _SEVERITY[worst]:
            worst = status
    if worst is None or worst is Status.SKIPPED or worst is Status.DONE:
        return default
    return worst


def result_of(status: Status) -> Result:
    """The report result a root status means."""
    return _RESULTS[status]


def parse_float(text: str) -> float:
    """A finite number from text (``1.5``, ``-2e-3``); ValueError says why not."""
    stripped = text.strip()
    if stripped.isascii() and "_" not in stripped:
        # The fast way for the usual number. Of what float() takes beyond the pattern
        # below, only "_" and non-ASCII digits could give a finite value, and neither
        # gets here; "nan" and "inf" words fall through to be told as the pattern tells.
        try:
            value = float(stripped)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if math.isfinite(value):
            return value
    # A pattern rather than float() alone: float() also takes "nan", "1_000" and non-ASCII
    # digits, none of which a tester means as a measured value.
    if not _FLOAT.fullmatch(stripped):
        raise ValueError(f"{text!r} is not a number")
    value = float(stripped)
    if not math.isfinite(value):
        # WSJF cannot carry NaN or infinities; the server would reject the report.
        raise ValueError(f"{text!r} is not a finite number")
    return value


def encode_limits(
    comp_op: CompOp | None, low: float | None, high: float | None
) -> tuple[CompOp, float | None, float | None]:
    """The operator and (lowLimit, highLimit) the WATS way (wats-format.md 2.15).

    With no operator it is inferred: both limits GELE, only low GE, only high LE, none
    LOG. A single-limit operator keeps its one limit in ``lowLimit`` whichever limit it was
    given as (``LE`` with only a high limit of 5 becomes lowLimit 5). ValueError when the
    limits do not fit the operator.
    """
    if comp_op is None:
        if low is not None and high is not None:
            return CompOp.GELE, low, high
        if low is not None:
            return CompOp.GE, low, None
        if high is not None:
            return CompOp.LE, high, None
        return CompOp.LOG, None, None
    if not comp_op.is_numeric:
        raise ValueError(f"{comp_op.value} compares strings, not numbers")
    if comp_op.limit_count == 1:
        if low is not None and high is not None:
            raise ValueError(f"{comp_op.value} uses one limit, got a low and a high limit")
        limit = low if low is not None else high
        if limit is None:
            raise ValueError(f"{comp_op.value} needs a limit")
        return comp_op, limit, None
    if comp_op.limit_count == 2 and (low is None or high is None):
        raise ValueError(f"{comp_op.value} needs a low and a high limit")
    return comp_op, low, high


def parse_int(text: str) -> int:
    """A 32-bit integer from text; ValueError says why not.

    WATS stores codes and indexes as 32-bit integers; a larger one would be refused by the
    server after it had been queued.
    """
    stripped = text.strip()
    if not _INT.fullmatch(stripped):
        raise ValueError(f"{text!r} is not an integer")
    value = int(stripped)
    if not -(2**31) <= value < 2**31:
        raise ValueError(f"{text!r} is out of range for a 32-bit integer")
    return value


_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INT = re.compile(r"[+-]?[0-9]{1,12}")


def check_encoding(name: str) -> None:
    """ValueError unless ``name`` is a text encoding Python knows (``utf-8``, ``cp1252``)."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise ValueError(f"unknown text encoding {name!r}") from None
    # codecs also knows bytes-to-bytes codecs (base64, zlib); they cannot decode text.
    if not getattr(info, "_is_text_encoding", True):
        raise ValueError(f"{name!r} is not a text encoding")


def check_encoding_argument(encoding: str | None) -> None:
    """For a converter's ``Arguments``: ArgumentError at ``encoding`` unless it is None
    (the converter's own choice) or a text encoding (:func:`check_encoding`)."""
    if encoding is None:
        return
    try:
        check_encoding(encoding)
    except ValueError as exc:
        raise ArgumentError("encoding", str(exc)) from None


def validated(converter: str, where: str, report: Report) -> Report:
    """``report`` checked (:func:`~pywats.report.validate.validate`) with ``where`` (the
    unit's place in the file: "UUT 2 (line 40)") put before a broken rule, as one
    :class:`~pywats.errors.ConversionError` of ``converter``."""
    try:
        return validate(report)
    except ReportValidationError as exc:
        reason = f"{where}: {exc}" if where else str(exc)
        raise ConversionError(converter, reason, path=exc.path) from exc


def decode_text(data: bytes, encoding: str) -> str:
    """``data`` as text; a UTF-8 byte-order mark is dropped; ValueError names the line."""
    check_encoding(encoding)
    codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"line {line}: the file is not valid {encoding} text (byte {exc.start}: "
            f"{exc.reason}); set the converter's `encoding` argument"
        ) from None
    except UnicodeError as exc:
        raise ValueError(f"the file is not valid {encoding} text: {exc}") from None


_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def sniff_encoding(data: bytes, declared: str | None = None) -> str:
    """The codec to read ``data`` with: its byte-order mark, else ``declared``, else a guess.

    The guess is UTF-8 when the bytes are valid UTF-8 and cp1252 otherwise (test equipment
    on Windows writes cp1252 or Latin-1 without saying so). A mark wins over a declaration
    because it is what the writer really did. ValueError if ``declared`` is no text encoding.
    """
    for bom, codec in _BOMS:  # UTF-32 LE before UTF-16 LE: its mark starts with UTF-16's
        if data.startswith(bom):
            return codec
    if declared:
        check_encoding(declared)
        return "utf-8-sig" if codecs.lookup(declared).name == "utf-8" else declared
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def decode_auto(data: bytes, declared: str | None = None) -> str:
    """``data`` as text by its byte-order mark or ``declared`` encoding (see sniff_encoding).

    Bytes that cp1252 leaves undefined (0x81, 0x8d, 0x8f, 0x90, 0x9d) are read as Latin-1,
    which defines every byte, so a guessed Windows file always decodes. A declared encoding
    the bytes break is a ValueError naming the line: never ``errors="ignore"``.
    """
    codec = sniff_encoding(data, declared)
    if codec == "cp1252" and not declared:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    return decode_text(data, codec)


def decoded_text(converter: str, data: bytes, encoding: str | None) -> str:
    """``data`` as text by :func:`decode_auto`; its ValueError as one ConversionError of
    ``converter`` (the message names the line and the ``encoding`` argument)."""
    try:
        return decode_auto(data, encoding)
    except ValueError as exc:
        raise ConversionError(converter, str(exc)) from None


def _error_text(where: str, exc: Exception) -> str:
    return str(exc)


def unit_reports(
    converter: str,
    source: Source,
    units: Iterable[tuple[str, _U]],
    build: Callable[[_U, Callable[[], str]], Report],
    refusal: type[_E],
    told: Callable[[str, _E], str] = _error_text,
) -> list[Report]:
    """One report per unit of ``source``, each checked by :func:`validated`.

    ``units`` are ``(where, unit)`` in file order, ``where`` the unit's place in the file
    ("UUT 2 (line 40)", "" for no place). ``build(unit, report_id)`` makes the report;
    ``report_id()`` is the unit's derived id (:class:`ReportIds` of the source, by the
    unit's 0-based position), computed only when called, for units that carry no id of
    their own. A ``refusal`` it raises (the converter's own parse error) becomes one
    ConversionError of ``converter`` whose reason is ``told(where, error)`` (by default
    the error's text alone).
    """
    ids = ReportIds(source.data, source.companions)
    reports: list[Report] = []
    for index, (where, unit) in enumerate(units):
        try:
            reports.append(validated(converter, where, build(unit, partial(ids, index))))
        except refusal as exc:
            raise ConversionError(converter, told(where, exc)) from None
    return reports


def one_line(message: str) -> str:
    """``message`` on one line: text quoted from the file may hold line breaks."""
    return " ".join(message.splitlines())


def clip(text: str, size: int = 100) -> str:
    """``text`` within ``size`` characters, an ellipsis ending a cut one (the default 100 is
    what WATS keeps of a misc info's description and text)."""
    return text if len(text) <= size else text[: size - 1] + "\u2026"


def show(text: str, most: int = 60) -> str:
    """``text`` for a message: quoted and escaped (``repr``), cut to ``most`` characters
    with ``...`` so a long line of the file does not drown the message."""
    return repr(text if len(text) <= most else text[: most - 3] + "...")
