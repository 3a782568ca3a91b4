"""Reading the XML files test equipment writes: decoded by declaration, no DTDs, one error.

Shared by the ``atml`` and ``teststand-xml`` converters (both NI TestStand outputs).

* **Decoding.** The bytes are decoded in Python by their byte-order mark, else by the
  encoding the XML declaration names, else as UTF-8 with a cp1252 fallback
  (:func:`pywats.converters.helpers.decode_auto`). TestStand declares
  ``encoding="iso-8859-1"`` and means it ("ø" is the byte 0xF8), so the declaration is
  trusted; a byte the declared encoding cannot hold is an error naming the line, never
  dropped. The parser is then given text, so it does not decode a second time.
* **Safety.** A document type declaration (``<!DOCTYPE``) is refused before anything is
  parsed: without one, no entity can be declared, so nothing can be expanded (billion
  laughs) or fetched (XXE; expat fetches nothing anyway). A DTD can only stand in the
  prolog, before the root element, so looking there is enough. No result file of either
  format carries one.
* **Errors.** Every problem is one :class:`XmlReadError` (a ``ValueError``) with one line
  that says what is wrong and where (line and column).

The tree is :mod:`xml.etree.ElementTree` (its C parser): linear time, no recursion.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET

from pywats.converters.helpers import decode_auto

__all__ = [
    "XmlReadError",
    "declared_encoding",
    "decode_xml",
    "describe_tag",
    "local_name",
    "parse_xml",
]


class XmlReadError(ValueError):
    """The bytes are not an XML document that may be read; the message says why and where."""


# The declaration is ASCII in every ASCII-compatible encoding; only its start is looked at.
_DECLARATION = re.compile(
    rb"""<\?xml\s[^>]*?\bencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._\-]{0,39})["']"""
)
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_PROLOG_ITEM = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)
_MAX_PROLOG_ITEMS = 10_000


def declared_encoding(data: bytes) -> str | None:
    """The encoding the XML declaration at the start of ``data`` names, or None.

    None as well when a UTF-16/UTF-32 byte-order mark starts the data (the mark decides),
    and for a declaration of UTF-16/UTF-32 in single bytes: it cannot be true (a real
    UTF-16 declaration is not readable as ASCII), so it is no help.
    """
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith(_BOMS):
        return None
    match = _DECLARATION.match(data.lstrip(b" \t\r\n")[:400])
    if match is None:
        return None
    name = match.group(1).decode("ascii")
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        return name  # decode_auto names it in its error
    if canonical.startswith(("utf-16", "utf-32")):
        return None
    return name


def decode_xml(data: bytes) -> str:
    """``data`` as text: byte-order mark, else the declared encoding, else UTF-8/cp1252."""
    if data[:2] == b"<\x00" and not data.startswith(_BOMS):
        declared: str | None = "utf-16-le"  # UTF-16 without its mark ("<?xml" as < NUL ? NUL)
    elif data[:2] == b"\x00<":
        declared = "utf-16-be"
    else:
        declared = declared_encoding(data)
    try:
        return decode_auto(data, declared)
    except ValueError as exc:
        # decode_auto's advice about an `encoding` argument does not apply: XML says its
        # own encoding, and these converters follow it.
        reason = str(exc).split("; set the converter", 1)[0].replace("utf-8-sig", "utf-8")
        if declared:
            raise XmlReadError(f"the XML declares encoding {declared!r}, but {reason}") from None
        raise XmlReadError(reason) from None


def _check_prolog(text: str) -> None:
    position = 0
    for _ in range(_MAX_PROLOG_ITEMS):
        item = _PROLOG_ITEM.match(text, position)
        if item is None or item.end() == position:
            break
        position = item.end()
    if text.startswith("<!DOCTYPE", position) or text.startswith("<!ENTITY", position):
        line = text.count("\n", 0, position) + 1
        raise XmlReadError(
            f"line {line}: the XML has a document type declaration (<!DOCTYPE ...>), which "
            "is not accepted: result files need none, and its entities could expand without "
            "bound (billion laughs) or point at other files"
        )


def parse_xml(data: bytes) -> ET.Element:
    """The root element of the XML document ``data``; XmlReadError if it cannot be read."""
    text = decode_xml(data)
    if not text.strip():
        raise XmlReadError("the file is empty: no XML document in it")
    _check_prolog(text)
    parser = ET.XMLParser()
    try:
        parser.feed(text)
        return parser.close()
    except ET.ParseError as exc:
        line, column = exc.position
        reason = str(exc).split(":", 1)[0]
        if reason in ("no element found", "unclosed token"):
            # What expat says about a file cut short: say what that most likely means.
            raise XmlReadError(
                f"the XML ends before its root element is closed ({reason} at line {line}, "
                f"column {column + 1}): is the file complete?"
            ) from None
        if reason.startswith("not well-formed"):  # expat's "not well-formed (invalid token)"
            reason = reason.replace("not well-formed", "not well-formed XML", 1)
        else:
            reason = f"not well-formed XML: {reason}"
        raise XmlReadError(f"{reason} at line {line}, column {column + 1}") from None


def local_name(tag: object) -> str:
    """``{uri}Name`` -> ``Name``; comments and processing instructions give ``""``."""
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def describe_tag(tag: str) -> str:
    """``{uri}Name`` -> ``Name in uri``, ``Name`` -> ``Name (no namespace)``: for messages."""
    namespace, _, local = tag.rpartition("}")
    return f"{local} in {namespace[1:]}" if namespace else f"{local} (no namespace)"
