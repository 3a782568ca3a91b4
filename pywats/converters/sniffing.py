"""Which converter takes a file: by its name, or by what its first bytes hold.

A file name often says nothing: `.xml` is written by WSXF, ATML and TestStand alike,
`.txt`, `.csv` and `.log` by half the testers on the floor, and i3070 logs have no
extension at all. So :func:`choose` decides in stages, over candidates in their order
(for ``pywats convert``: built-ins, then plugins by name; for a shared watch folder: the
entries whose patterns take the name, in configuration order):

1. ``--converter NAME`` (``override``) wins.
2. **Pattern.** An unambiguous extension (not one of :data:`AMBIGUOUS_EXTENSIONS`) that
   exactly one candidate's pattern names (``*.json``, ``*.xjlog``) decides: the file is
   not read for this.
3. **Sniff.** Otherwise every candidate that has a ``sniff(head, name)`` static method is
   asked about the first :data:`~pywats.defaults.SNIFF_BYTES` of the file. The first one
   that claims it wins, candidates whose pattern matched the name first. A sniff that
   raises counts as "no" (its error is kept in the explanation, not logged).
4. **Fallback.** Nobody claimed it: the first candidate whose pattern matched and that
   has no ``sniff`` (a plugin chosen by pattern only), else the first that declares
   ``fallback_patterns`` taking the name (the generic ``csv`` converter: CSV has no
   markers, so it takes ``*.csv`` and ``*.txt`` only when no other converter claims them;
   in a watch folder, its entry's own patterns count too).
5. **Last resort** (``pywats convert`` only, where a person reads the answer): the first
   candidate whose specific pattern (not a catch-all such as ``*``) matches the name. Its
   own error then says exactly what is wrong with the file, which helps more than "no
   converter takes it". A shared watch folder does not take this step: a file nobody
   claims goes to the error folder with every candidate's answer.

Everything here is pure and never raises for any file content: it is given the name and
the head, and returns a :class:`Choice` or a :class:`NoChoice`, each with the answer of
every candidate it considered (for ``pywats convert --explain`` and the error folder's
sidecar).

Helpers for writing a ``sniff``: :func:`head_text` (the head as text, whatever its
encoding, never raising), :func:`xml_root` (the root element and its namespace) and
:func:`never_raises` (a sniff that answers "not mine" where it would raise).
"""

from __future__ import annotations

import codecs
import fnmatch
import functools
import re
from collections.abc import Callable, Sequence
from pathlib import PurePath
from typing import Any, Literal

import attrs

from pywats.defaults import SNIFF_BYTES

__all__ = [
    "AMBIGUOUS_EXTENSIONS",
    "Answer",
    "Candidate",
    "Choice",
    "Decision",
    "How",
    "NoChoice",
    "XmlRoot",
    "by_pattern",
    "can_sniff",
    "choose",
    "head_text",
    "is_catch_all",
    "matching_pattern",
    "never_raises",
    "xml_root",
]

#: Extensions that say nothing about the format: a file with one of these (or none) is
#: given to the converter whose ``sniff`` recognises its content.
AMBIGUOUS_EXTENSIONS = frozenset({".xml", ".txt", ".csv", ".log", ""})

How = Literal["pattern", "sniff", "override", "fallback"]
"""How a converter was chosen."""

_GLOB_CHARS = frozenset("*?[")


def _extension(name: str) -> str:
    return PurePath(name).suffix.lower()


def is_catch_all(pattern: str) -> bool:
    """Whether ``pattern`` takes names without saying anything about them (``*``, ``*.*``).

    A catch-all match is no evidence of the format: it sends the file to sniffing, and it
    is never the last resort.
    """
    return not pattern.strip("*?.")


def _names_extension(pattern: str, extension: str) -> bool:
    """Whether ``pattern`` ends in ``extension`` written out literally (``*.xjlog``)."""
    suffix = _extension(pattern)
    return bool(extension) and suffix == extension and not (_GLOB_CHARS & set(suffix))


def matching_pattern(name: str, patterns: Sequence[str]) -> str | None:
    """The first of ``patterns`` that matches ``name`` (case-insensitive), or None."""
    lowered = name.lower()
    for pattern in patterns:
        if fnmatch.fnmatchcase(lowered, pattern.lower()):
            return pattern
    return None


def _optional(converter: object, attribute: str) -> Any:
    """An optional attribute of a third-party converter; None if missing or unreadable."""
    try:
        return getattr(converter, attribute, None)
    except Exception:
        # A property or __getattr__ that raises: treated as absent, the choice goes on.
        return None


def can_sniff(converter: object) -> bool:
    """Whether ``converter`` (a class or an instance) has a callable ``sniff``."""
    return callable(_optional(converter, "sniff"))


def _fallback_patterns(converter: object) -> tuple[str, ...]:
    value = _optional(converter, "fallback_patterns")
    if isinstance(value, str) or not isinstance(value, Sequence):
        return ()
    return tuple(p for p in value if isinstance(p, str) and p)


def _to_tuple(value: Sequence[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Candidate:
    """A converter that may take the file, under the name the explanation shows.

    ``converter`` is a converter class or instance; its optional ``sniff(head, name)``
    and ``fallback_patterns`` are read here. ``patterns`` are the globs that count for
    this choice (a watch folder entry's own patterns, or the converter's).
    """

    name: str
    converter: Any
    patterns: tuple[str, ...] = attrs.field(converter=_to_tuple)

    @classmethod
    def of(cls, converter: Any, *, name: str | None = None) -> Candidate:
        """A candidate for a converter class or instance, with its own name and patterns."""
        patterns: Any = getattr(converter, "patterns", ())
        if isinstance(patterns, str):
            patterns = (patterns,)
        return cls(name or str(getattr(converter, "name", "?")), converter, tuple(patterns))


@attrs.frozen
class Answer:
    """What one candidate said about the file."""

    name: str
    pattern: str | None
    """The candidate's glob that matched the name, or None."""
    can_sniff: bool
    """Whether the candidate has a ``sniff`` (else it is chosen by pattern only)."""
    asked: bool = False
    """Whether its sniff was asked (not when a pattern decided before the file was read)."""
    claim: str | None = None
    """Its sniff's reason for claiming the file; None when it did not."""
    error: str | None = None
    """What its sniff raised (counted as no)."""
    fallback: tuple[str, ...] = ()
    """Its ``fallback_patterns``: names it takes when no sniff claims the file."""

    def text(self) -> str:
        """One line: ``pattern '*.xml' matches; sniff: root element Reports ...``."""
        if self.pattern is None:
            parts = ["no pattern matches"]
        elif is_catch_all(self.pattern):
            parts = [f"catch-all pattern {self.pattern!r} matches"]
        else:
            parts = [f"pattern {self.pattern!r} matches"]
        if self.fallback and not self.can_sniff:
            globs = ", ".join(repr(p) for p in self.fallback)
            parts.append(f"no sniff; the fallback for {globs} when no sniff claims the file")
        elif not self.can_sniff:
            parts.append("no sniff (chosen by pattern only)")
        elif self.error is not None:
            parts.append(f"sniff raised {self.error} (counted as no)")
        elif not self.asked:
            parts.append("sniff not asked")
        elif self.claim is not None:
            parts.append(f"sniff: {self.claim}")
        else:
            parts.append("sniff: no")
        return "; ".join(parts)


def _listing(answers: Sequence[Answer], chosen: str | None) -> list[str]:
    width = max((len(a.name) for a in answers), default=0)
    return [
        f"  {a.name:<{width}}  {a.text()}{'  <- chosen' if a.name == chosen else ''}"
        for a in answers
    ]


@attrs.frozen
class Choice:
    """The converter chosen for a file, how, why, and what every candidate said."""

    name: str
    """The chosen candidate's name."""
    index: int
    """Its position in the candidates given to :func:`choose`."""
    how: How
    reason: str
    answers: tuple[Answer, ...]

    def explain(self) -> list[str]:
        """The choice and every candidate's answer, as lines for a person."""
        return [
            f"converter {self.name!r} ({self.how}): {self.reason}",
            "candidates:",
            *_listing(self.answers, self.name),
        ]


@attrs.frozen
class NoChoice:
    """No candidate takes the file; ``reason`` says so in one line."""

    reason: str
    answers: tuple[Answer, ...]

    def explain(self) -> list[str]:
        """The refusal and every candidate's answer, as lines for a person."""
        return [self.reason, "candidates:", *_listing(self.answers, None)]

    def summary(self) -> str:
        """Every candidate's answer on one line (for a log line or an error message)."""
        return "; ".join(f"{a.name}: {a.text()}" for a in self.answers) or "no candidates"


Decision = Choice | NoChoice


def _sniff(converter: Any, head: bytes, name: str) -> tuple[str | None, str | None]:
    """``(claim, error)`` from the converter's sniff; anything it raises is a no."""
    try:
        sniff: Callable[[bytes, str], object] = converter.sniff
        said = sniff(head, name)
    except Exception as exc:
        # Third-party code, and a sniff is a guess: a broken one must not stop the choice.
        return None, f"{type(exc).__name__}: {exc}"
    if said is None or said == "":
        return None, None
    if not isinstance(said, str):
        return None, f"it returned {type(said).__name__}, not a str or None"
    return " ".join(said.split())[:200], None


def _answers(name: str, candidates: Sequence[Candidate], head: bytes | None) -> tuple[Answer, ...]:
    out: list[Answer] = []
    for candidate in candidates:
        sniffs = can_sniff(candidate.converter)
        pattern = matching_pattern(name, candidate.patterns)
        fallback = _fallback_patterns(candidate.converter)
        if head is None or not sniffs:
            out.append(Answer(candidate.name, pattern, sniffs, fallback=fallback))
            continue
        claim, error = _sniff(candidate.converter, head, name)
        out.append(Answer(candidate.name, pattern, True, True, claim, error, fallback))
    return tuple(out)


def _by_pattern(
    name: str, candidates: Sequence[Candidate], answers: Sequence[Answer]
) -> int | None:
    extension = _extension(name)
    if extension in AMBIGUOUS_EXTENSIONS:
        return None
    named = [
        i
        for i, answer in enumerate(answers)
        if answer.pattern is not None
        and any(
            _names_extension(p, extension) and matching_pattern(name, (p,)) is not None
            for p in candidates[i].patterns
        )
    ]
    # Two candidates naming one extension (two JSON converters) are ambiguous too.
    return named[0] if len(named) == 1 else None


def by_pattern(name: str, candidates: Sequence[Candidate]) -> Choice | None:
    """The candidate an unambiguous extension gives, without reading the file; else None.

    None means the head is needed: call :func:`choose` with it.
    """
    answers = _answers(name, candidates, None)
    index = _by_pattern(name, candidates, answers)
    if index is None:
        return None
    return _pattern_choice(name, index, answers)


def _pattern_choice(name: str, index: int, answers: tuple[Answer, ...]) -> Choice:
    pattern = answers[index].pattern
    reason = f"its pattern {pattern!r} names the extension {_extension(name)}"
    return Choice(answers[index].name, index, "pattern", reason, answers)


def choose(
    name: str,
    head: bytes,
    candidates: Sequence[Candidate],
    *,
    override: str | None = None,
    last_resort: bool = True,
) -> Decision:
    """Choose the converter for a file called ``name`` whose first bytes are ``head``.

    Args:
        name: the file's name (a path is fine: only its last part counts).
        head: the first bytes of the file (only :data:`SNIFF_BYTES` of them are used).
        candidates: the converters to choose from, in their order.
        override: the candidate named by ``--converter``; ValueError if it is none of them.
        last_resort: take stage 5 (see the module): the first specific pattern match
            when nobody recognises the content. ``pywats convert`` does; a shared watch
            folder does not, so what nobody claims goes to its error folder.

    Every candidate's sniff is asked (for the explanation), even when a pattern decides.
    """
    name = PurePath(name).name or name
    head = head[:SNIFF_BYTES]
    answers = _answers(name, candidates, head)
    if override is not None:
        for index, candidate in enumerate(candidates):
            if candidate.name == override:
                return Choice(override, index, "override", f"--converter {override}", answers)
        known = ", ".join(c.name for c in candidates) or "none"
        raise ValueError(f"unknown converter {override!r} (known: {known})")
    by_name = _by_pattern(name, candidates, answers)
    if by_name is not None:
        return _pattern_choice(name, by_name, answers)
    claims = [i for i, a in enumerate(answers) if a.claim is not None]
    if claims:
        # A claim from a converter whose pattern takes the name is the stronger one.
        first = min(claims, key=lambda i: (answers[i].pattern is None, i))
        return Choice(answers[first].name, first, "sniff", answers[first].claim or "", answers)
    for index, answer in enumerate(answers):
        if answer.pattern is not None and not answer.can_sniff and not answer.fallback:
            reason = (
                f"no converter recognises the content; its pattern {answer.pattern!r} "
                "matches and it has no sniff (chosen by pattern only)"
            )
            return Choice(answer.name, index, "fallback", reason, answers)
    for index, answer in enumerate(answers):
        if not answer.fallback:
            continue
        # Its fallback globs, or the patterns given for this choice (a watch folder
        # entry's own patterns, which the station engineer wrote for it).
        pattern = matching_pattern(name, answer.fallback) or answer.pattern
        if pattern is not None:
            reason = (
                f"no other converter recognises the content; it is the fallback for {pattern!r}"
            )
            return Choice(answer.name, index, "fallback", reason, answers)
    if last_resort:
        for index, answer in enumerate(answers):
            if answer.pattern is not None and not is_catch_all(answer.pattern):
                reason = (
                    f"no converter recognises the content; its pattern {answer.pattern!r} "
                    "matches the name, so it reads the file and says what is wrong"
                )
                return Choice(answer.name, index, "fallback", reason, answers)
    return NoChoice(_refusal(name, answers), answers)


def _refusal(name: str, answers: Sequence[Answer]) -> str:
    specific = [a.name for a in answers if a.pattern is not None and not is_catch_all(a.pattern)]
    catch_all = [a.name for a in answers if a.pattern is not None and is_catch_all(a.pattern)]
    sniffers = [a.name for a in answers if a.can_sniff]
    if specific:
        verb = "matches" if len(specific) == 1 else "match"
        by_name = f"{', '.join(specific)} {verb} {name!r} by pattern"
    else:
        by_name = f"no converter matches {name!r} by pattern"
    if catch_all:
        by_name += f" ({'and' if specific else 'only'} the catch-all of {', '.join(catch_all)})"
    by_content = (
        f"none of {', '.join(sniffers)} recognises its content" if sniffers else "none can sniff"
    )
    return f"no converter takes this file: {by_name}, and {by_content}"


# --- Helpers for sniff methods ------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its mark starts with UTF-16's
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def never_raises(sniff: Callable[[bytes, str], str | None]) -> Callable[[bytes, str], str | None]:
    """``sniff`` answering None ("not mine") where it would raise: for a sniff that guesses
    at bytes it may not understand, failing to read them is not recognising them.

    The choice counts a sniff that raises as a no too, but tells it as a broken sniff
    (:attr:`Answer.error`); wrap a sniff with this, under ``@staticmethod``.
    """

    @functools.wraps(sniff)
    def guarded(head: bytes, name: str) -> str | None:
        try:
            return sniff(head, name)
        except Exception:  # a sniffer never raises: it only says "not mine"
            return None

    return guarded


def head_text(head: bytes) -> str:
    """The head of a file as text for looking for markers; never raises.

    A byte-order mark is removed and decides the codec (UTF-8, UTF-16, UTF-32); a head cut
    in the middle of a character loses only that character. Without a mark the bytes are
    read as Latin-1, one character per byte, which keeps every ASCII marker as it is
    whatever the real 8-bit encoding (UTF-8, cp1252, Latin-1). For markers only: a
    converter decodes its text with :func:`pywats.converters.helpers.decode_auto`.
    """
    for bom, codec in _BOMS:
        if head.startswith(bom):
            body = head[len(bom) :]
            if codec == "utf-8":
                return body.decode("latin-1")
            # Replacement, not loss: only the character cut at the end of the head.
            return body.decode(codec, errors="replace")
    return head.decode("latin-1")


@attrs.frozen
class XmlRoot:
    """The root element of an XML head: its name, namespace and the attributes seen."""

    local: str
    """The local name (``TestResultsCollection``)."""
    prefix: str
    """The prefix as written (``trc``), empty without one."""
    namespace: str
    """The namespace URI bound to the prefix (or the default namespace); empty if none."""
    attributes: dict[str, str]
    """The root's attributes as written (qualified names), ``xmlns`` ones included."""

    def describe(self) -> str:
        """``root element Reports in http://...`` for a sniff's reason."""
        where = f" in {self.namespace}" if self.namespace else " (no namespace)"
        return f"root element {self.local}{where}"


# The prolog: the XML declaration, processing instructions, comments, a DOCTYPE (with an
# internal subset) and whitespace, in any order, before the root element.
_PROLOG_ITEM = re.compile(
    r"\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]|\[[^\]]*\])*>",
    re.DOTALL,
)
_START_TAG = re.compile(r"<([A-Za-z_][\w.\-]*)(?::([A-Za-z_][\w.\-]*))?")
_ATTRIBUTE = re.compile(r"\s*([A-Za-z_][\w.\-:]*)\s*=\s*(?:\"([^\"<]*)\"|'([^'<]*)')")
_TAG_END = re.compile(r"\s*/?>")
_MAX_PROLOG_ITEMS = 1000


_QUICK_BYTES = 4096
"""Most prologs and root tags end within this: it is tried before the whole head."""


def xml_root(head: bytes) -> XmlRoot | None:
    """The root element of the XML document that starts with ``head``, or None.

    None when the head does not start like XML (after a byte-order mark, whitespace, the
    declaration, comments, processing instructions and a DOCTYPE). Attributes are read
    as far as the head holds them. Never raises.
    """
    if len(head) > _QUICK_BYTES:
        # Decoding and scanning 64 KiB for every file costs more than the sniff is worth;
        # the whole head is only needed for a long prolog or a huge root tag.
        quick = _xml_root(head_text(head[:_QUICK_BYTES]), complete=True)
        if quick is not None:
            return quick
    return _xml_root(head_text(head), complete=False)


def _xml_root(text: str, *, complete: bool) -> XmlRoot | None:
    """The root element of ``text``; with ``complete``, None unless its start tag ends."""
    position = 0
    for _ in range(_MAX_PROLOG_ITEMS):
        item = _PROLOG_ITEM.match(text, position)
        if item is None or item.end() == position:
            break
        position = item.end()
    tag = _START_TAG.match(text, position)
    if tag is None:
        return None
    prefix, local = (tag.group(1), tag.group(2)) if tag.group(2) else ("", tag.group(1))
    attributes: dict[str, str] = {}
    position = tag.end()
    while (attribute := _ATTRIBUTE.match(text, position)) is not None:
        value = attribute.group(2) if attribute.group(2) is not None else attribute.group(3)
        attributes.setdefault(attribute.group(1), value or "")
        position = attribute.end()
    if complete and _TAG_END.match(text, position) is None:
        return None  # the start tag goes on past this text: look at more of it
    namespace = attributes.get(f"xmlns:{prefix}" if prefix else "xmlns", "")
    return XmlRoot(local, prefix, namespace, attributes)
