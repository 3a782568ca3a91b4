"""File names as the kernel allows them: any bytes but ``/`` and NUL, up to ``NAME_MAX``.

Python hands such names around as ``str`` decoded with :func:`os.fsdecode`: a byte that
is not UTF-8 (``b'caf\\xe9.csv'``, written by a Windows tool in Latin-1) becomes a lone
surrogate (``'caf\\udce9.csv'``). The ``os`` functions take that ``str`` back to the very
same bytes, so the pipeline opens, moves and hashes such a file like any other. What
cannot take it is anything that encodes text as UTF-8: a log line, a sidecar, a JSON-RPC
answer, a SQLite text value. The functions here are the two forms such names take there:

* :func:`shown`: the *escaped* form, for people and for JSON. Every undecodable byte is
  written ``\\xNN`` (Python's ``backslashreplace``), control characters (a newline in a
  name) ``\\n`` / ``\\xNN``: one line of valid text. It is not reversible (a name may hold
  a real backslash), so it addresses a file only together with the folder's listing
  (:func:`matching`).
* :func:`to_db` / :func:`from_db`: the *lossless* form of a path in the queue database. A
  name that is valid UTF-8 is stored as TEXT exactly as before; any other is stored as a
  BLOB of its raw bytes (SQLite keeps a BLOB in a TEXT column as is), and read back to
  the same ``str``. Old databases need no migration.

:func:`fit` shortens a name that a suffix (``.error.txt``, a number) would push past the
file system's name limit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

__all__ = ["NAME_MAX", "escape_text", "fit", "from_db", "matching", "shown", "to_db"]

NAME_MAX = 255
"""Bytes a file name may have on Linux file systems (``NAME_MAX``): ext4, xfs, btrfs, tmpfs."""

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}
_CONTROL.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"})


def _escape_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # an undecodable byte, as os.fsdecode made it
    return f"\\u{code:04x}"  # a lone surrogate of another origin (JSON can carry them)


def escape_text(text: str) -> str:
    """``text`` with every lone surrogate escaped (``\\xNN`` for an undecodable byte):
    text any UTF-8 writer takes. Newlines stay (a sidecar has many lines)."""
    return _SURROGATE.sub(_escape_surrogate, text)


def shown(name: str | os.PathLike[str]) -> str:
    """A file name or path as one line of valid text: undecodable bytes as ``\\xNN``,
    control characters escaped. ``shown('caf\\udce9.csv') == 'caf\\\\xe9.csv'``."""
    return escape_text(os.fspath(name)).translate(_CONTROL)


def matching(name: str, candidates: Iterable[str]) -> list[str]:
    """The ``candidates`` (real names) whose :func:`shown` form is ``name``, or that are
    ``name`` itself: how an escaped name from a listing finds its file again."""
    return [c for c in candidates if c == name or shown(c) == name]


def to_db(path: str) -> str | bytes:
    """The value that stores ``path`` losslessly in SQLite: itself if it is valid UTF-8,
    else its raw bytes (:func:`os.fsencode`)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def from_db(value: str | bytes) -> str:
    """The path :func:`to_db` stored (the same ``str``, surrogates and all)."""
    return value if isinstance(value, str) else os.fsdecode(value)


def _cut(raw: bytes, size: int) -> bytes:
    """The first ``size`` bytes of ``raw``, not ending inside a UTF-8 character."""
    cut = raw[: max(size, 0)]
    for back in range(1, min(4, len(cut)) + 1):
        lead = cut[-back]
        if lead < 0x80:
            break  # ASCII: nothing is cut in half
        if lead >= 0xC0:
            need = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
            return cut[:-back] if back < need else cut
    return cut


def fit(name: str, reserve: int = 0, limit: int = NAME_MAX) -> str:
    """``name`` shortened (in its stem, the extension kept) so that its bytes and
    ``reserve`` more fit in ``limit``; ``name`` itself when it fits."""
    raw = os.fsencode(name)
    room = limit - reserve
    if len(raw) <= room:
        return name
    stem, dot, ext = raw.rpartition(b".")
    if not dot or not stem or len(ext) + 2 > room:
        return os.fsdecode(_cut(raw, room))
    return os.fsdecode(_cut(stem, room - len(ext) - 1) + b"." + ext)
