"""Read what is still readable out of a damaged queue database: :func:`read`.

When :meth:`Store.open <pywats.store.Store.open>` finds the queue database corrupt it
moves the file aside (``queue.db.corrupt-<stamp>``) and starts an empty one. The reports
waiting in the old file are the station's test results, so they are read back here and
put into the new queue (:meth:`Store.salvage <pywats.store.Store.salvage>`); ``pywats
queue salvage FILE`` does the same for an older moved-aside file.

The file is opened read-only and read through the table itself (``NOT INDEXED``, so a
damaged index does not matter), a range of rowids at a time; a range that fails is read
again row by row, so a damaged page loses the rows on it and no others. A row is taken
only if every column has the type the schema gives it. ``done`` rows are left (they were
uploaded); ``uploading`` rows were pending when the service stopped, and are pending
again. Source records are read the same way, so files kept in their folder (post-action
``keep``) are still recognised as queued.

Nothing here imports the store: it only reads a file and returns plain rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import TypeAlias

import apsw
import attrs

__all__ = ["REPORT_COLUMNS", "SOURCE_COLUMNS", "Salvaged", "read"]

REPORT_COLUMNS = (
    "id",
    "state",
    "attempts",
    "next_attempt_at",
    "last_error",
    "last_status",
    "created_at",
    "updated_at",
    "converter",
    "source",
    "pn",
    "sn",
    "result",
    "start",
    "size",
    "body",
)
"""The ``reports`` columns copied, in the order of :attr:`Salvaged.reports` rows."""

SOURCE_COLUMNS = ("hash", "path", "size", "mtime", "converted_at", "report_ids")
"""The ``sources`` columns copied, in the order of :attr:`Salvaged.sources` rows."""

_WANTED_STATES = frozenset({"pending", "uploading", "failed"})

_REPORT_INDEXES = (
    "reports_created",
    "reports_state_created",
    "reports_due",
    "sqlite_autoindex_reports_1",
)
"""Each index holds one entry per row: any that reads counts the rows."""

_CHUNK = 256
"""Rowids read per statement; a failing range is read again one rowid at a time."""

Row: TypeAlias = "tuple[apsw.SQLiteValue, ...]"  # a stub-only name: a string

_TEXT = (str,)
_INT = (int,)
_REAL = (int, float)
_NULL_OR_TEXT = (str, type(None))
_NULL_OR_INT = (int, type(None))
_PATH = (str, bytes, type(None))  # a path that is not UTF-8 is stored as its bytes
# The type each column must have for the row to be taken (damage can leave a row
# readable with nonsense in it).
_REPORT_TYPES: tuple[tuple[type, ...], ...] = (
    _TEXT,
    _TEXT,
    _INT,
    _REAL,
    _NULL_OR_TEXT,
    _NULL_OR_INT,
    _REAL,
    _REAL,
    _TEXT,
    _PATH,
    _TEXT,
    _TEXT,
    _TEXT,
    _TEXT,
    _INT,
    (bytes,),
)
_SOURCE_TYPES: tuple[tuple[type, ...], ...] = (_TEXT, (str, bytes), _INT, _REAL, _REAL, _TEXT)


@attrs.frozen
class Salvaged:
    """What could be read from a damaged queue file."""

    reports: tuple[Row, ...]
    """Pending, uploading and failed rows (columns :data:`REPORT_COLUMNS`)."""
    sources: tuple[Row, ...]
    """Source records (columns :data:`SOURCE_COLUMNS`)."""
    unreadable: int | None
    """Report rows that could not be read (their state is unknown); ``None`` when that
    cannot be told (the table's tree and every index of it are damaged)."""
    problem: str | None = None
    """Why nothing at all could be read (the file is not a database any more), if so."""


def read(path: str | os.PathLike[str]) -> Salvaged:
    """Read every readable pending, uploading and failed report (and every source record)
    out of the queue database at ``path``, which may be damaged. Never writes to it."""
    try:
        conn = apsw.Connection(os.fspath(path), flags=apsw.SQLITE_OPEN_READONLY)
    except apsw.Error as exc:
        return Salvaged((), (), 0, f"cannot open it: {exc}")
    try:
        # Lets SQLite read a file shorter than its header says (cut off), where it would
        # otherwise refuse it whole; the connection is read-only, so nothing is written.
        conn.pragma("writable_schema", 1)
        try:
            conn.execute("SELECT count(*) FROM sqlite_schema").get  # noqa: B018 - page 1 readable?
        except apsw.Error as exc:
            return Salvaged((), (), 0, f"it is not readable as a database: {exc}")
        bad = [0]
        exact = [True]
        rows = list(_rows(conn, "reports", REPORT_COLUMNS, _REPORT_TYPES, bad, exact))
        reports = tuple(row for row in rows if row[1] in _WANTED_STATES)
        unreadable: int | None = bad[0]
        if bad[0]:
            # A failed rowid is not always a row (a damaged tree fails every lookup under
            # it, rows or gaps); an index that still reads counts the rows there were.
            indexed = _indexed_count(conn)
            if indexed is not None:
                unreadable = max(0, indexed - len(rows))
            elif not exact[0]:
                unreadable = None
        sources = tuple(_rows(conn, "sources", SOURCE_COLUMNS, _SOURCE_TYPES, [0], [True]))
        if unreadable != 0:
            # A source whose report may be among the unreadable must stay unknown: if
            # its file is still in a watch folder (post-action keep), it is queued again
            # rather than taken for queued. (A report purged after upload looks the same;
            # sending that again is harmless, the server overwrites on the same id.)
            read_ids = {row[0] for row in rows}
            sources = tuple(s for s in sources if _ids_of(s) <= read_ids)
        return Salvaged(reports, sources, unreadable)
    finally:
        conn.close()


def _rows(
    conn: apsw.Connection,
    table: str,
    columns: Sequence[str],
    types: Sequence[tuple[type, ...]],
    bad: list[int],
    exact: list[bool],
) -> Iterator[Row]:
    """Every readable, well-typed row of ``table``; ``bad[0]`` counts the others;
    ``exact[0]`` is set false when the largest rowid could not be read."""
    bounds = _bounds(conn, table, exact)
    if bounds is None:
        bad[0] += 1  # the table cannot be found or walked at all
        return
    select = f"SELECT {', '.join(columns)} FROM {table} NOT INDEXED"
    low, high = bounds
    for start in range(low, high + 1, _CHUNK):
        end = min(start + _CHUNK - 1, high)
        try:
            chunk = conn.execute(f"{select} WHERE rowid BETWEEN ? AND ?", (start, end)).fetchall()
        except apsw.Error:
            chunk = list(_one_by_one(conn, f"{select} WHERE rowid = ?", start, end, bad))
        for row in chunk:
            if _typed(row, types):
                yield tuple(row)
            else:
                bad[0] += 1


def _one_by_one(
    conn: apsw.Connection, select: str, start: int, end: int, bad: list[int]
) -> Iterator[Row]:
    for rowid in range(start, end + 1):
        try:
            row = conn.execute(select, (rowid,)).fetchone()
        except apsw.Error:
            bad[0] += 1
            continue
        if row is not None:
            yield tuple(row)


def _bounds(conn: apsw.Connection, table: str, exact: list[bool]) -> tuple[int, int] | None:
    """The smallest and largest rowid of ``table``, or a range sure to hold them all."""

    def value(sql: str) -> int | None:
        try:
            got = conn.execute(sql).get
        except apsw.Error:
            return None
        return got if isinstance(got, int) else None

    try:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (table,)
        ).get
    except apsw.Error:
        exists = 1  # the schema page is damaged: try the table anyway
    if not exists:
        return None
    high = value(f"SELECT max(rowid) FROM {table}")
    if high is None:
        # The right edge of the tree is damaged: no table holds more rows than fit in the
        # file at the smallest row size, so scanning that far finds every rowid left.
        pages = value("PRAGMA page_count")
        size = value("PRAGMA page_size")
        if pages is None or size is None:
            return None
        high = pages * max(1, size // 32)
        exact[0] = False
    low = value(f"SELECT min(rowid) FROM {table}") or 1
    return min(low, high), high


def _ids_of(source: Row) -> set[apsw.SQLiteValue]:
    try:
        ids = json.loads(str(source[SOURCE_COLUMNS.index("report_ids")]))
    except ValueError:
        return {None}  # unreadable: never a subset of real ids
    return set(ids) if isinstance(ids, list) else {None}


def _indexed_count(conn: apsw.Connection) -> int | None:
    for index in _REPORT_INDEXES:
        try:
            got = conn.execute(f"SELECT count(*) FROM reports INDEXED BY {index}").get
        except apsw.Error:
            continue
        if isinstance(got, int):
            return got
    return None


def _typed(row: Sequence[apsw.SQLiteValue], types: Sequence[tuple[type, ...]]) -> bool:
    return (
        len(row) == len(types)
        and all(isinstance(v, t) for v, t in zip(row, types, strict=True))
        and bool(row[0])
    )
