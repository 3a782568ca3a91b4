"""Choosing a converter by name and content (:mod:`pywats.converters.sniffing`).

The real files of every format in ``tests/data`` are chosen right with every converter
installed as a candidate, each claimed by its own converter's sniff only; then the rules
one by one with small made-up converters, and Hypothesis for "never raises".
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywats.converters import discover
from pywats.converters.csv import CsvConverter
from pywats.converters.sniffing import (
    AMBIGUOUS_EXTENSIONS,
    Candidate,
    Choice,
    NoChoice,
    by_pattern,
    choose,
    head_text,
    is_catch_all,
    xml_root,
)
from pywats.converters.wsjf import WsjfConverter
from pywats.converters.wstf import WstfConverter
from pywats.converters.wsxf import WsxfConverter
from pywats.defaults import SNIFF_BYTES
from pywats.report.wsxf import WSXF_NAMESPACE

DATA = Path(__file__).resolve().parents[1] / "data"
EQUIPMENT = DATA / "equipment"

WSTF = (
    "--Header-Start--\nSerialNumber\tSN-1\nPartNumber\tPCBA-100\nRevision\tA\n"
    "--Step-Data-Start--\n--Step-Data-End--\nUUTStatus\tPassed\n--UUT-End--\n"
)


def candidates() -> list[Candidate]:
    """Every installed converter, in the order ``pywats convert`` considers them."""
    return [Candidate.of(cls, name=name) for name, cls in discover().items()]


def head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(SNIFF_BYTES)


def _is_companion(path: Path) -> bool:
    """A file inside a folder that belongs with a header file beside it (Klippel: the
    folder named like ``DUT ... .txt`` without the ``.txt``): not an input of its own."""
    for parent in path.parents:
        if parent == DATA:
            return False
        if parent.with_name(parent.name + ".txt").is_file():
            return True
    return False


def real_files() -> list[tuple[str, Path]]:
    """``(the converter that must take it, path)`` for every input file in tests/data."""
    out: list[tuple[str, Path]] = [
        ("wsjf" if p.suffix == ".json" else "wsxf", p)
        for p in sorted(DATA.iterdir())
        if p.is_file() and p.suffix in (".json", ".xml")
    ]
    if EQUIPMENT.is_dir():
        for folder in sorted(p for p in EQUIPMENT.iterdir() if p.is_dir()):
            for path in sorted(folder.rglob("*")):
                if path.is_file() and path.name != "README.md" and not _is_companion(path):
                    out.append((folder.name, path))
    return out


REAL = real_files()


@pytest.mark.parametrize(
    ("expected", "path"), REAL, ids=[str(p.relative_to(DATA)) for _, p in REAL]
)
def test_every_real_file_is_chosen_right(expected: str, path: Path) -> None:
    available = discover()
    if expected not in available:
        pytest.skip(f"converter {expected!r} does not exist yet")
    decision = choose(path.name, head(path), candidates(), last_resort=False)
    assert isinstance(decision, Choice), "\n".join(decision.explain())
    assert decision.name == expected, "\n".join(decision.explain())
    answers = {a.name: a for a in decision.answers}
    claims = sorted(name for name, a in answers.items() if a.claim is not None)
    own = answers[expected]
    assert all(a.error is None for a in answers.values()), "\n".join(decision.explain())
    if own.can_sniff:
        # Its own sniff recognises it, and no other converter's does.
        assert claims == [expected], "\n".join(decision.explain())
        assert decision.how in ("pattern", "sniff")
    else:
        # Generic csv has no markers: it takes its files as the fallback, when no
        # other converter claims them.
        assert claims == [], "\n".join(decision.explain())
        assert decision.how == "fallback"


@pytest.mark.parametrize(
    ("expected", "path"), REAL, ids=[str(p.relative_to(DATA)) for _, p in REAL]
)
def test_every_real_file_renamed_without_extension_is_still_recognised(
    expected: str, path: Path
) -> None:
    """Testers write names without an extension or with their own: content decides."""
    available = discover()
    if expected not in available:
        pytest.skip(f"converter {expected!r} does not exist yet")
    if not hasattr(available[expected], "sniff"):
        pytest.skip(f"{expected} has no sniff: it is chosen by pattern (or as fallback) only")
    for name in ("unit42", "result.dat", "RESULT.BIN"):
        decision = choose(name, head(path), candidates())
        assert isinstance(decision, Choice), "\n".join(decision.explain())
        assert (decision.name, decision.how) == (expected, "sniff"), decision.explain()


def test_the_built_in_sniffs_know_their_formats() -> None:
    wsjf = (DATA / "uut-wsjf-export.json").read_bytes()
    wsxf = (DATA / "uut-wsxf-export.xml").read_bytes()
    assert (
        WsjfConverter.sniff(wsjf, "x") == "a JSON object with WSJF keys (pn, sn, rev, processCode)"
    )
    assert WsjfConverter.sniff(b'\xef\xbb\xbf [ {"sn": 1, "root": {}}]', "x") is not None
    assert WsjfConverter.sniff(json.dumps({"sn": "x"}).encode(), "x") is None  # one key only
    assert WsjfConverter.sniff(b'{"name": "a", "value": 1}', "x") is None
    assert WsjfConverter.sniff(wsxf, "x") is None
    assert WsxfConverter.sniff(wsxf, "x") == f"root element Reports in {WSXF_NAMESPACE}"
    assert WsxfConverter.sniff(b"<Reports><Report type='UUT'/></Reports>", "x") is not None
    # The classic TestStand report is <Reports> without a namespace too, but Type=.
    assert WsxfConverter.sniff(b"<Reports>\n<Report Type='UUT' Title='UUT Report'>", "x") is None
    assert WsxfConverter.sniff(b"<Reports xmlns='urn:other'><Report type='x'/>", "x") is None
    assert WsxfConverter.sniff(wsjf, "x") is None
    assert WstfConverter.sniff(WSTF.encode(), "x") is not None
    assert WstfConverter.sniff(b"\xef\xbb\xbf\r\n\r\n" + WSTF.encode(), "x") is not None
    assert WstfConverter.sniff(codecs.BOM_UTF16_LE + WSTF.encode("utf-16-le"), "x") is not None
    assert WstfConverter.sniff(b"junk\n" + WSTF.encode(), "x") is None  # wstf refuses it too
    assert not hasattr(CsvConverter, "sniff")
    assert CsvConverter.fallback_patterns == ("*.csv", "*.txt")


def test_an_unknown_extension_with_recognisable_content() -> None:
    wsjf = (DATA / "uut-wsjf-export.json").read_bytes()
    decision = choose("export.dat", wsjf, candidates())
    assert isinstance(decision, Choice)
    assert (decision.name, decision.how) == ("wsjf", "sniff")
    assert decision.reason.startswith("a JSON object with WSJF keys")


def test_a_name_without_extension() -> None:
    decision = choose("SN-0001", WSTF.encode(), candidates())
    assert isinstance(decision, Choice)
    assert (decision.name, decision.how) == ("wstf", "sniff")
    assert decision.reason == "first line is the WSTF marker --Header-Start--"


def test_a_pattern_on_an_unambiguous_extension_wins_over_content() -> None:
    # A WSTF text named .json goes to wsjf (whose error then says it is not JSON).
    decision = choose("r.json", WSTF.encode(), candidates())
    assert isinstance(decision, Choice)
    assert (decision.name, decision.how) == ("wsjf", "pattern")
    assert decision.reason == "its pattern '*.json' names the extension .json"
    # Every sniff was still asked, for the explanation.
    answers = {a.name: a for a in decision.answers}
    assert answers["wstf"].claim is not None
    assert answers["wsjf"].asked
    assert answers["wsjf"].claim is None
    # Without the head (a watch folder deciding by name) nothing is asked.
    by_name = by_pattern("r.json", candidates())
    assert by_name is not None
    assert by_name.name == "wsjf"
    assert not any(a.asked for a in by_name.answers)
    assert by_pattern("r.xml", candidates()) is None


def test_the_override_wins_and_an_unknown_one_is_refused() -> None:
    decision = choose("r.json", WSTF.encode(), candidates(), override="wstf")
    assert isinstance(decision, Choice)
    assert (decision.name, decision.how, decision.reason) == (
        "wstf",
        "override",
        "--converter wstf",
    )
    with pytest.raises(ValueError, match=r"unknown converter 'nope' \(known: wsjf, wsxf, wstf"):
        choose("r.json", b"", candidates(), override="nope")


def test_a_file_nobody_takes() -> None:
    builtins = [c for c in candidates() if c.name in ("wsjf", "wsxf", "wstf", "csv")]
    decision = choose("result.dat", b"hello", builtins)
    assert isinstance(decision, NoChoice)
    assert decision.reason == (
        "no converter takes this file: no converter matches 'result.dat' by pattern, and "
        "none of wsjf, wsxf, wstf recognises its content"
    )
    # With every converter installed: the same, a catch-all ("*") being no evidence.
    everyone = choose("result.dat", b"hello", candidates())
    assert isinstance(everyone, NoChoice)
    assert everyone.reason.startswith(
        "no converter takes this file: no converter matches 'result.dat' by pattern"
    )
    lines = decision.explain()
    assert lines[0] == decision.reason
    assert lines[1] == "candidates:"
    assert any(
        line.split() == ["wsjf", "no", "pattern", "matches;", "sniff:", "no"] for line in lines
    )
    assert "wsjf: no pattern matches; sniff: no" in decision.summary()


def test_fallbacks_csv_and_the_last_resort() -> None:
    # .csv and .txt nobody recognises: csv, the generic converter, takes them.
    for name in ("export.csv", "export.TXT"):
        decision = choose(name, b"Serial;Value\nA;1\n", candidates())
        assert isinstance(decision, Choice)
        assert (decision.name, decision.how) == ("csv", "fallback")
    # .xml nobody recognises: wsxf's pattern matches, so wsxf says what is wrong ...
    decision = choose("broken.xml", b"<Reports><Report>", candidates())
    assert isinstance(decision, Choice)
    assert (decision.name, decision.how) == ("wsxf", "fallback")
    # ... but not in a shared watch folder, where nobody claiming it is the answer.
    assert isinstance(choose("broken.xml", b"<x/>", candidates(), last_resort=False), NoChoice)


# --- The rules, with made-up converters ---------------------------------------------------


class Fake:
    version = "1"

    def __init__(self, name: str, patterns: Sequence[str], said: Any = None) -> None:
        self.name = name
        self.patterns = tuple(patterns)
        self._said = said

    def convert(self, source: Any, context: Any) -> list[Any]:  # pragma: no cover
        return []


class Sniffer(Fake):
    calls: ClassVar[list[str]] = []

    def sniff(self, head: bytes, name: str) -> Any:
        Sniffer.calls.append(self.name)
        if isinstance(self._said, BaseException):
            raise self._said
        return self._said(head) if callable(self._said) else self._said


def cands(*converters: Fake) -> list[Candidate]:
    return [Candidate.of(c) for c in converters]


def test_a_sniff_that_raises_or_returns_junk_counts_as_no() -> None:
    decision = choose(
        "x.xml",
        b"<a/>",
        cands(
            Sniffer("boom", ["*.xml"], ValueError("bad head")),
            Sniffer("junk", ["*.xml"], 42),
            Sniffer("yes", ["*.xml"], "root a"),
        ),
    )
    assert isinstance(decision, Choice)
    assert (decision.name, decision.how, decision.reason) == ("yes", "sniff", "root a")
    boom, junk, _ = decision.answers
    assert boom.error == "ValueError: bad head"
    assert (
        boom.text() == "pattern '*.xml' matches; sniff raised ValueError: bad head (counted as no)"
    )
    assert junk.error == "it returned int, not a str or None"


def test_a_claim_of_a_converter_whose_pattern_matches_is_preferred() -> None:
    both = cands(Sniffer("other", ["*.dat"], "mine"), Sniffer("xml", ["*.xml"], "mine too"))
    decision = choose("a.xml", b"", both)
    assert isinstance(decision, Choice)
    assert decision.name == "xml"
    decision = choose("a.log", b"", both)  # neither pattern: the first claim
    assert isinstance(decision, Choice)
    assert decision.name == "other"


def test_a_plugin_without_sniff_is_chosen_by_pattern_only() -> None:
    plain = Fake("plain", ["*.xml"])
    decision = choose("a.xml", b"<a/>", cands(Sniffer("s", ["*.xml"], None), plain))
    assert isinstance(decision, Choice)
    assert (decision.name, decision.how) == ("plain", "fallback")
    assert (
        decision.answers[1].text() == "pattern '*.xml' matches; no sniff (chosen by pattern only)"
    )
    # ... but a sniff that claims the file beats it.
    decision = choose("a.xml", b"<a/>", cands(plain, Sniffer("s", ["*.xml"], "root a")))
    assert isinstance(decision, Choice)
    assert decision.name == "s"
    # ... and it is never chosen for a name its patterns do not take.
    assert isinstance(choose("a.dat", b"", cands(plain), last_resort=False), NoChoice)


def test_catch_all_patterns_send_files_to_sniffing_and_are_no_last_resort() -> None:
    assert is_catch_all("*")
    assert is_catch_all("*.*")
    assert is_catch_all("?*")
    assert not is_catch_all("*.xjlog")
    assert not is_catch_all("board_*")
    everything = Sniffer("i3070ish", ["*"], lambda h: "records" if h.startswith(b"{@") else None)
    json_like = Sniffer("jsonish", ["*.json"], None)
    both = cands(everything, json_like)
    # .json is named by one converter: by pattern, though "*" takes the name too.
    decision = choose("a.json", b"{@BATCH|", both)
    assert isinstance(decision, Choice)
    assert (decision.name, decision.how) == ("jsonish", "pattern")
    decision = choose("board7", b"{@BATCH|x", both)
    assert isinstance(decision, Choice)
    assert (decision.name, decision.how) == ("i3070ish", "sniff")
    # Nobody claims it: a catch-all match is no reason to try that converter.
    nobody = choose("board7", b"hello", both)
    assert isinstance(nobody, NoChoice)
    assert nobody.reason == (
        "no converter takes this file: no converter matches 'board7' by pattern (only the "
        "catch-all of i3070ish), and none of i3070ish, jsonish recognises its content"
    )


def test_two_converters_naming_one_extension_are_told_apart_by_content() -> None:
    first = Sniffer("first", ["*.json"], None)
    second = Sniffer("second", ["*.json"], "mine")
    assert by_pattern("a.json", cands(first, second)) is None
    decision = choose("a.json", b"{}", cands(first, second))
    assert isinstance(decision, Choice)
    assert (decision.name, decision.how) == ("second", "sniff")
    # Nobody claims it: the first pattern match, as before sniffing existed.
    decision = choose("a.json", b"{}", cands(first, Sniffer("second", ["*.json"], None)))
    assert isinstance(decision, Choice)
    assert (decision.name, decision.how) == ("first", "fallback")


def test_only_the_first_sniff_bytes_are_shown() -> None:
    seen: list[int] = []
    sniffer = Sniffer("s", ["*.xml"], lambda h: seen.append(len(h)))
    choose("a.xml", b"x" * (SNIFF_BYTES * 3), cands(sniffer))
    assert seen == [SNIFF_BYTES]
    assert SNIFF_BYTES == 64 * 1024


def test_ambiguous_extensions() -> None:
    assert {".xml", ".txt", ".csv", ".log", ""} == AMBIGUOUS_EXTENSIONS


# --- Helpers for sniff methods --------------------------------------------------------------


def test_head_text_by_byte_order_mark() -> None:
    assert head_text(codecs.BOM_UTF8 + "Sätt".encode()) == "SÃ¤tt"  # bytes kept 1:1
    assert head_text("<a>".encode("utf-16-le")) == "<\x00a\x00>\x00"  # no mark: Latin-1
    assert head_text(codecs.BOM_UTF16_LE + "<a>".encode("utf-16-le") + b"\x00") == "<a>\ufffd"
    assert head_text(codecs.BOM_UTF16_BE + "<a>".encode("utf-16-be")) == "<a>"
    assert head_text(codecs.BOM_UTF32_LE + "<a>".encode("utf-32-le")) == "<a>"


def test_xml_root_finds_the_root_past_the_prolog() -> None:
    root = xml_root(
        b'\xef\xbb\xbf<?xml version="1.0" encoding="iso-8859-1" ?>\n'
        b'<?xml-stylesheet type="text/xsl" href="C:\\a.xsl"?>\n<!-- a <comment> -->\n'
        b'<!DOCTYPE r [<!ENTITY e "x">]>\n'
        b'<trc:TestResultsCollection xmlns:trc="urn:IEEE-1636.1:2011:01:TestResultsCollection"'
        b" xmlns='urn:default' a = 'b'>"
    )
    assert root is not None
    assert (root.prefix, root.local) == ("trc", "TestResultsCollection")
    assert root.namespace == "urn:IEEE-1636.1:2011:01:TestResultsCollection"
    assert root.attributes["a"] == "b"
    assert root.describe() == (
        "root element TestResultsCollection in urn:IEEE-1636.1:2011:01:TestResultsCollection"
    )
    bare = xml_root(b"<Reports>")
    assert bare is not None
    assert bare.namespace == ""
    assert bare.describe().endswith("(no namespace)")
    utf16 = xml_root(codecs.BOM_UTF16_LE + "<?xml version='1.0'?><TSReport/>".encode("utf-16-le"))
    assert utf16 is not None
    assert utf16.local == "TSReport"
    # Cut in the middle of the root's attributes: what the head holds.
    cut = xml_root(b'<Reports xmlns="http://wats.virinco.com/schemas/WATS/Report/wsxf" ver')
    assert cut is not None
    assert cut.namespace == WSXF_NAMESPACE
    for junk in (b"", b"hello", b"{}", b"<", b"<1a>", b"<!-- never closed", b"<?xml"):
        assert xml_root(junk) is None


# --- Never raises -----------------------------------------------------------------------------

_HEADS = [head(path) for _, path in REAL]


def _sniffers() -> list[tuple[str, Any]]:
    return [(name, cls) for name, cls in discover().items() if hasattr(cls, "sniff")]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(
        st.binary(max_size=2048),
        st.tuples(st.sampled_from(_HEADS), st.integers(0, SNIFF_BYTES)).map(lambda t: t[0][: t[1]]),
        st.tuples(st.sampled_from(_HEADS), st.integers(0, SNIFF_BYTES), st.integers(0, 255)).map(
            lambda t: t[0][: t[1]] + bytes([t[2]]) + t[0][t[1] + 1 :]
        ),
    ),
    name=st.sampled_from(["x.xml", "x.txt", "x.csv", "x", "x.json", "x.xjlog", "x.LOG"]),
)
def test_sniffing_never_raises(data: bytes, name: str) -> None:
    for converter_name, cls in _sniffers():
        said = cls.sniff(data, name)
        assert said is None or (isinstance(said, str) and said), converter_name
    decision = choose(name, data, candidates())
    assert isinstance(decision, Choice | NoChoice)
    assert all(a.error is None for a in decision.answers), decision.explain()
    xml_root(data)
    head_text(data)
