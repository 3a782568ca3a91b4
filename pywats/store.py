"""The durable report queue: one SQLite database per instance, through apsw.

Every report a converter makes is committed here (``synchronous=FULL``, so the commit is
on disk when :meth:`Store.enqueue` returns) together with the content hash of the file it
came from, before anything touches that file. Uploaders claim due reports, send the exact
bytes stored here, and record the answer. The states are::

    pending --claim--> uploading --mark_done--> done --(retention)--> purged
       ^                  |  |
       +---retry_later----+  +--mark_failed--> failed --requeue--> pending
       |                  |
       +---release--------+  (no answer yet: the attempt is not counted)

At open, ``uploading`` rows go back to ``pending`` (the process that claimed them is gone),
the database is checked with ``quick_check``, and a corrupt file is moved aside (never
deleted) and replaced by a new queue, into which every readable pending and failed report
of the old file is salvaged (:mod:`pywats.salvage`).

Threading: the connection lives in apsw's async mode (:meth:`apsw.Connection.as_async`
with the Trio controller), so every database call runs on the connection's own worker
thread and the Trio loop never waits on the disk. Each public operation is one call into
that thread, and each write is one transaction, so operations never interleave.
``docs/architecture.md`` ("Store") says why this and not ``trio.to_thread``. A second,
read-only connection with its own thread answers what people look at (stats, pages of
reports, one report): in WAL mode it never waits for a write, so a status poll during a
burst does not queue behind the pipeline's commits. Stats are remembered until the next
write through this object (nothing else writes while the service runs), so polling an
idle queue costs no database read.

Times stored in the database are wall-clock epoch seconds from the ``clock`` given to
:meth:`Store.open` (tests pass a fake one). Trio's clock is used only for the housekeeping
period in :meth:`Store.run`.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Concatenate, NoReturn, ParamSpec, Self, TypeVar, cast

import apsw
import apsw.aio
import attrs
import trio

from pywats import defaults, filenames, salvage
from pywats.diskfull import DiskFull, is_disk_full
from pywats.errors import NotFoundError, StoreError

__all__ = [
    "DEFAULT_RETENTION_S",
    "LIST_ORDERS",
    "Claim",
    "EnqueueResult",
    "ListOrder",
    "NewReport",
    "QueueReader",
    "QueueState",
    "QueueStats",
    "QueuedReport",
    "SalvageResult",
    "SourceFile",
    "Store",
]

log = logging.getLogger("pywats.store")

P = ParamSpec("P")
T = TypeVar("T")

APPLICATION_ID = 0x70574154
"""``PRAGMA application_id`` of a pywats queue ("pWAT"), so ``file(1)`` and we can tell."""

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` this code writes; older databases are migrated at open."""

DEFAULT_RETENTION_S = defaults.RETENTION_DAYS * 24 * 3600.0
"""How long ``done`` rows stay visible (for the TUI) before :meth:`Store.purge_done`."""

DEFAULT_BUSY_TIMEOUT_MS = 5000
"""How long a statement waits for another connection's lock before failing."""

DEFAULT_MAX_DELAY_S = defaults.RETRY_AFTER_MAX_S
"""Longest retry delay the store schedules (``retry.RETRY_AFTER_MAX_S``, the backoff cap
is shorter); :meth:`Store.retry_later` clamps to it."""

DEFAULT_PURGE_INTERVAL_S = 3600.0
"""How often :meth:`Store.run` purges old ``done`` rows."""

# SQLite truncates the WAL file back to this size after a checkpoint, so a burst of
# writes does not leave a large WAL behind for the life of the process.
_JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024


class QueueState(enum.StrEnum):
    """Where a report is in its life; stored as this text in the ``state`` column."""

    PENDING = "pending"
    UPLOADING = "uploading"
    DONE = "done"
    FAILED = "failed"


@attrs.frozen
class NewReport:
    """A report a converter hands to the store.

    ``body`` is the exact JSON that will be sent, byte for byte, on every attempt; ``id``
    is the report's GUID, which the server uses to recognise a resend. ``pn``, ``sn``,
    ``result`` and ``start`` are copied out of the report for listing and search only.
    """

    id: str = attrs.field(validator=attrs.validators.min_len(1))
    body: bytes = attrs.field(validator=attrs.validators.instance_of(bytes))
    pn: str
    sn: str
    result: str
    start: str
    converter: str


@attrs.frozen
class SalvageResult:
    """What :meth:`Store.salvage` did with a damaged queue file."""

    salvaged: int
    """Reports copied into the queue."""
    found: int
    """Pending, uploading and failed reports read from the file (``salvaged`` plus
    those already queued)."""
    unreadable: int | None
    """Rows that could not be read (their state unknown); ``None``: how many cannot be
    told (the file is cut short, or the table and all its indexes are damaged)."""
    problem: str | None = None
    """Why nothing could be read, if so."""

    @property
    def lost(self) -> bool:
        """Whether something in the file could not be read."""
        return self.unreadable != 0 or self.problem is not None

    def describe(self, path: Path) -> str:
        """The one log line."""
        if self.problem is not None:
            return f"salvaged no reports from {path}: {self.problem}"
        unreadable = "an unknown number" if self.unreadable is None else self.unreadable
        return (
            f"salvaged {self.salvaged} of {self.found} pending/failed reports from {path}"
            f" ({unreadable} unreadable)"
        )


@attrs.frozen
class SourceFile:
    """The file reports were made from; ``hash`` (of its content) is its identity."""

    hash: str
    path: str
    size: int
    mtime: float


@attrs.frozen
class EnqueueResult:
    """What :meth:`Store.enqueue` did for one source.

    ``duplicate`` is true when the source's hash was already recorded: nothing was
    inserted and ``ids`` are the reports queued the first time.
    """

    ids: tuple[str, ...]
    duplicate: bool


@attrs.frozen
class Claim:
    """A report handed to an uploader: send ``body``; ``attempts`` counts this attempt."""

    id: str
    body: bytes
    attempts: int
    pn: str = ""
    sn: str = ""


@attrs.frozen
class QueueStats:
    """Counts by state, the age of the oldest report still to upload, and bytes queued.

    ``oldest_pending_age_s`` covers ``pending`` and ``uploading`` reports (a report that
    has been retried for days must not vanish from the figure while it is in flight) and
    is ``None`` when there are none. ``total_bytes`` is the size of every stored body.
    """

    pending: int
    uploading: int
    done: int
    failed: int
    oldest_pending_age_s: float | None
    total_bytes: int

    @property
    def total(self) -> int:
        """Number of reports in the queue, whatever their state."""
        return self.pending + self.uploading + self.done + self.failed

    def count(self, state: QueueState) -> int:
        """Number of reports in ``state``."""
        return cast(int, getattr(self, state.value))


# The columns QueuedReport.from_row reads, in order. The body is not among them: it is
# the last column of the table, so listing never reads its overflow pages.
_COLUMNS = (
    "id, state, attempts, next_attempt_at, last_error, last_status, created_at, updated_at,"
    " converter, source, pn, sn, result, start, size"
)


@attrs.frozen
class QueuedReport:
    """One row of the queue, as listed and shown.

    Times are epoch seconds. ``body`` is only filled in by ``get`` (listings leave it
    ``None`` so a page of 50 rows does not carry 50 report bodies).
    """

    id: str
    state: QueueState
    attempts: int
    next_attempt_at: float
    last_error: str | None
    last_status: int | None
    created_at: float
    updated_at: float
    converter: str
    source: str | None
    pn: str
    sn: str
    result: str
    start: str
    size: int
    body: bytes | None = None

    @classmethod
    def from_row(cls, row: Sequence[apsw.SQLiteValue], body: bytes | None = None) -> Self:
        """Build from a row selected with the ``_COLUMNS`` column list."""
        return cls(
            id=_text(row[0]),
            state=QueueState(_text(row[1])),
            attempts=_integer(row[2]),
            next_attempt_at=_real(row[3]),
            last_error=None if row[4] is None else _text(row[4]),
            last_status=None if row[5] is None else _integer(row[5]),
            created_at=_real(row[6]),
            updated_at=_real(row[7]),
            converter=_text(row[8]),
            source=None if row[9] is None else _shown_path(row[9]),
            pn=_text(row[10]),
            sn=_text(row[11]),
            result=_text(row[12]),
            start=_text(row[13]),
            size=_integer(row[14]),
            body=body,
        )


def _text(value: apsw.SQLiteValue) -> str:
    if not isinstance(value, str):
        raise StoreError(f"queue database holds {value!r} where text was expected")
    return value


def _shown_path(value: apsw.SQLiteValue) -> str:
    # A source path is TEXT, or a BLOB of its bytes when it is not UTF-8 (to_db); rows
    # are listed and shown, so it comes back escaped (valid text for JSON and terminals).
    if not isinstance(value, str | bytes):
        raise StoreError(f"queue database holds {value!r} where a path was expected")
    return filenames.shown(filenames.from_db(value)) if isinstance(value, bytes) else value


def _integer(value: apsw.SQLiteValue) -> int:
    if not isinstance(value, int):
        raise StoreError(f"queue database holds {value!r} where an integer was expected")
    return value


def _real(value: apsw.SQLiteValue) -> float:
    if not isinstance(value, int | float):
        raise StoreError(f"queue database holds {value!r} where a number was expected")
    return float(value)


def _blob(value: apsw.SQLiteValue) -> bytes:
    if not isinstance(value, bytes):
        raise StoreError(f"queue database holds {type(value).__name__} where a blob was expected")
    return value


# Each entry migrates from version (index) to version (index + 1). They run inside the
# one transaction that also sets user_version, so a crash mid-migration changes nothing.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE reports (
        id              TEXT PRIMARY KEY NOT NULL,
        state           TEXT NOT NULL
                        CHECK (state IN ('pending', 'uploading', 'done', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error      TEXT,
        last_status     INTEGER,
        created_at      REAL NOT NULL,
        updated_at      REAL NOT NULL,
        converter       TEXT NOT NULL,
        source          TEXT,
        pn              TEXT NOT NULL,
        sn              TEXT NOT NULL,
        result          TEXT NOT NULL,
        start           TEXT NOT NULL,
        size            INTEGER NOT NULL,
        -- Last on purpose: columns before a large blob are read without its overflow pages.
        body            BLOB NOT NULL
    );
    -- Claiming due reports and next_due_at walk this in order.
    CREATE INDEX reports_due ON reports (state, next_attempt_at);
    -- Covers stats (count, sum(size), min(created_at) per state) without touching the
    -- table, and listing one state newest first.
    CREATE INDEX reports_state_created ON reports (state, created_at, size);
    -- Listing every state newest first.
    CREATE INDEX reports_created ON reports (created_at);
    CREATE TABLE sources (
        hash         TEXT PRIMARY KEY NOT NULL,
        path         TEXT NOT NULL,
        size         INTEGER NOT NULL,
        mtime        REAL NOT NULL,
        converted_at REAL NOT NULL,
        report_ids   TEXT NOT NULL  -- JSON array of the ids of the reports made from it
    );
    """,
)


class _CorruptDatabaseError(Exception):
    """The file is not a SQLite database, or ``quick_check`` found damage."""


@attrs.frozen
class _Opened:
    version_before: int
    recovered: int


# ---------------------------------------------------------------------------------------
# Synchronous database work. Everything below runs on the connection's worker thread (or,
# for QueueReader, in the calling thread of a short-lived command).


def _configure(conn: apsw.Connection, busy_timeout_ms: int) -> None:
    conn.set_busy_timeout(busy_timeout_ms)
    # apsw.bestpractice, applied to this connection only (its apply() would hook every
    # connection in the process): "double quotes" are identifiers, never strings.
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DML, 0)
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DDL, 0)
    conn.pragma("foreign_keys", "ON")


def _check_ours(conn: apsw.Connection, path: Path) -> int:
    """Return the schema version, or raise StoreError if the file is someone else's."""
    app_id = int(conn.pragma("application_id"))
    version = int(conn.pragma("user_version"))
    if app_id == 0 and version == 0:
        tables = conn.execute("SELECT count(*) FROM sqlite_schema").get
        if tables:
            raise StoreError(f"{path} is a SQLite database but not a pywats queue")
        return 0
    if app_id != APPLICATION_ID:
        raise StoreError(f"{path} is a SQLite database of another application ({app_id:#x})")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has queue schema {version}, newer than this pywats understands"
            f" ({SCHEMA_VERSION}); refusing to touch it"
        )
    return version


def _check_readable(conn: apsw.Connection, path: Path) -> None:
    version = _check_ours(conn, path)
    if version != SCHEMA_VERSION:
        raise StoreError(
            f"{path} has queue schema {version}; the service migrates it to"
            f" {SCHEMA_VERSION} when it starts"
        )


def _prepare(conn: apsw.Connection, path: Path, busy_timeout_ms: int, now: float) -> _Opened:
    """Check, configure, migrate and recover a freshly opened read-write connection."""
    _configure(conn, busy_timeout_ms)
    try:
        problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check")]
    except (apsw.NotADBError, apsw.CorruptError) as exc:
        _no_checkpoint_on_close(conn)
        raise _CorruptDatabaseError(str(exc)) from exc
    if problems != ["ok"]:
        _no_checkpoint_on_close(conn)
        # quick_check lines can span several lines; the log line must stay one line.
        raise _CorruptDatabaseError("; ".join(" ".join(p.split()) for p in problems[:3]))
    version = _check_ours(conn, path)
    # journal_mode persists in the file, the other two hold for this connection; none of
    # them may be changed inside a transaction.
    conn.pragma("journal_mode", "wal")
    conn.pragma("synchronous", "FULL")
    conn.pragma("journal_size_limit", _JOURNAL_SIZE_LIMIT)
    if version < SCHEMA_VERSION:
        with conn:
            for script in _MIGRATIONS[version:]:
                conn.execute(script)
            conn.pragma("application_id", APPLICATION_ID)
            conn.pragma("user_version", SCHEMA_VERSION)
    with conn:
        # Whoever claimed these died before recording an answer; they are due again.
        conn.execute(
            "UPDATE reports SET state = 'pending', updated_at = ? WHERE state = 'uploading'",
            (now,),
        )
        recovered = conn.changes()
    # Lets the query planner record what it would like statistics for (apsw best practice).
    conn.pragma("optimize", 0x10002)
    return _Opened(version_before=version, recovered=recovered)


@contextlib.contextmanager
def _transaction(conn: apsw.Connection) -> Iterator[None]:
    """One write transaction, committed (or rolled back) by a statement.

    Not ``with conn:``: apsw runs the commit of its context manager while holding the
    GIL, so the commit's fsync (and any WAL checkpoint it triggers) would stop every
    Python thread, the event loop included. A ``COMMIT`` statement releases the GIL
    while SQLite works, like every other statement.
    """
    if conn.in_transaction:
        # Left open by a rollback that itself failed: never build on its leftovers.
        conn.execute("ROLLBACK")
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _no_checkpoint_on_close(conn: apsw.Connection) -> None:
    # Closing the last connection normally copies the WAL into the main file; a corrupt
    # database is moved aside as evidence, so leave both files exactly as they were.
    conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)


def _enqueue_batch(
    conn: apsw.Connection,
    items: Sequence[tuple[Sequence[NewReport], SourceFile | None]],
    now: float,
) -> list[EnqueueResult]:
    results: list[EnqueueResult] = []
    with _transaction(conn):
        for reports, source in items:
            if source is not None:
                known = _source_ids(conn, source.hash)
                if known is not None:
                    results.append(EnqueueResult(ids=known, duplicate=True))
                    continue
            # Lossless: a name that is not UTF-8 is stored as its bytes (pywats.filenames).
            source_path = filenames.to_db(source.path) if source is not None else None
            rows = [
                (
                    r.id,
                    now,
                    now,
                    now,
                    r.converter,
                    source_path,
                    r.pn,
                    r.sn,
                    r.result,
                    r.start,
                    len(r.body),
                    r.body,
                )
                for r in reports
            ]
            try:
                conn.executemany(
                    "INSERT INTO reports (id, state, attempts, next_attempt_at, created_at,"
                    " updated_at, converter, source, pn, sn, result, start, size, body)"
                    " VALUES (?, 'pending', 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            except apsw.ConstraintError as exc:
                raise StoreError(_duplicate_id_message(conn, reports)) from exc
            ids = tuple(r.id for r in reports)
            if source is not None:
                conn.execute(
                    "INSERT INTO sources (hash, path, size, mtime, converted_at, report_ids)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        source.hash,
                        filenames.to_db(source.path),
                        source.size,
                        source.mtime,
                        now,
                        json.dumps(ids),
                    ),
                )
            results.append(EnqueueResult(ids=ids, duplicate=False))
    return results


def _duplicate_id_message(conn: apsw.Connection, reports: Sequence[NewReport]) -> str:
    # Runs after the failed statement, inside the still-open transaction, so it sees the
    # rows this batch inserted before the clash as well.
    ids = [r.id for r in reports]
    if len(set(ids)) != len(ids):
        return "the same report id appears twice in one source's reports"
    queued = [i for i in ids if conn.execute("SELECT 1 FROM reports WHERE id = ?", (i,)).get]
    return f"report id already queued: {', '.join(queued) or ', '.join(ids)}"


def _sources_ids(conn: apsw.Connection, hashes: Sequence[str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for source_hash in hashes:
        ids = _source_ids(conn, source_hash)
        if ids is not None:
            found[source_hash] = ids
    return found


def _source_ids(conn: apsw.Connection, source_hash: str) -> tuple[str, ...] | None:
    raw = conn.execute("SELECT report_ids FROM sources WHERE hash = ?", (source_hash,)).get
    if raw is None:
        return None
    return tuple(str(i) for i in json.loads(_text(raw)))


def _relaxed(
    fn: Callable[Concatenate[apsw.Connection, P], T],
) -> Callable[Concatenate[apsw.Connection, P], T]:
    """Run ``fn`` with ``synchronous=NORMAL``: its commit is not fsynced on its own.

    Only for the upload bookkeeping (claim, done, retry, failed, release), whose loss in a
    power cut is harmless: a lost claim leaves the report pending, a lost done or failed
    mark means the report is sent again with the same id, which the server overwrites
    (at-least-once, as after any crash). WAL keeps the order, so the next FULL commit (an
    enqueue) makes these durable too, and a process crash (kill -9) loses nothing: the
    WAL is in the OS page cache. Enqueues stay FULL: they are what must never be lost.
    It halves the fsyncs per uploaded report and lets uploads keep up with conversion.
    """

    def run(conn: apsw.Connection, /, *args: P.args, **kwargs: P.kwargs) -> T:
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            return fn(conn, *args, **kwargs)
        finally:
            conn.execute("PRAGMA synchronous = FULL")

    return run


def _finish_and_claim(
    conn: apsw.Connection,
    done: Sequence[tuple[str, int | None]],
    limit: int,
    now: float,
    max_delay_s: float,
) -> tuple[list[str], list[Claim], float | None]:
    with _transaction(conn):
        missed: list[str] = []
        for report_id, status in done:
            conn.execute(
                "UPDATE reports SET state = 'done', last_status = ?, last_error = NULL,"
                " updated_at = ? WHERE id = ? AND state = 'uploading'",
                (status, now, report_id),
            )
            if not conn.changes():
                missed.append(report_id)
        claims = _claim_rows(conn, limit, now, max_delay_s) if limit > 0 else []
    due = _next_due_at(conn, now, max_delay_s) if limit > 0 and not claims else None
    return missed, claims, due


def _claim(conn: apsw.Connection, limit: int, now: float, max_delay_s: float) -> list[Claim]:
    with _transaction(conn):
        return _claim_rows(conn, limit, now, max_delay_s)


def _claim_rows(conn: apsw.Connection, limit: int, now: float, max_delay_s: float) -> list[Claim]:
    """Claim up to ``limit`` due reports, inside the caller's transaction."""
    # No retry is ever scheduled further out than max_delay_s, so a row due later than
    # that can only mean the wall clock stepped back (NTP, a reset RTC): due now, or it
    # would wait for as long as the clock jumped.
    conn.execute(
        "UPDATE reports SET next_attempt_at = ? WHERE state = 'pending' AND next_attempt_at > ?",
        (now, now + max_delay_s),
    )
    rows = conn.execute(
        # (next_attempt_at, rowid) is the index order, so no sort; for reports never
        # tried next_attempt_at is the enqueue time, which makes this FIFO.
        "SELECT id, attempts, pn, sn, body FROM reports"
        " WHERE state = 'pending' AND next_attempt_at <= ?"
        " ORDER BY next_attempt_at, rowid LIMIT ?",
        (now, limit),
    ).fetchall()
    claims = [
        Claim(id=_text(i), body=_blob(b), attempts=_integer(a) + 1, pn=_text(p), sn=_text(s))
        for i, a, p, s, b in rows
    ]
    conn.executemany(
        "UPDATE reports SET state = 'uploading', attempts = attempts + 1, updated_at = ?"
        " WHERE id = ?",
        [(now, c.id) for c in claims],
    )
    return claims


def _transition(
    conn: apsw.Connection,
    report_id: str,
    allowed: tuple[QueueState, ...],
    assignments: str,
    params: tuple[apsw.SQLiteValue, ...],
) -> None:
    """Run ``UPDATE reports SET <assignments>`` on one row if its state is in ``allowed``."""
    placeholders = ", ".join("?" for _ in allowed)
    with _transaction(conn):
        conn.execute(
            f"UPDATE reports SET {assignments} WHERE id = ? AND state IN ({placeholders})",
            (*params, report_id, *allowed),
        )
        if conn.changes():
            return
        state = conn.execute("SELECT state FROM reports WHERE id = ?", (report_id,)).get
    if state is None:
        raise NotFoundError(f"no report with id {report_id}")
    wanted = " or ".join(allowed)
    raise StoreError(f"report {report_id} is {state}, not {wanted}")


def _release(conn: apsw.Connection, report_ids: Sequence[str], now: float) -> int:
    with _transaction(conn):
        # One statement over a JSON array, so changes() counts every row it touched.
        # next_attempt_at is left alone: the row was due when it was claimed.
        conn.execute(
            "UPDATE reports SET state = 'pending', attempts = max(attempts - 1, 0),"
            " updated_at = ?"
            " WHERE state = 'uploading' AND id IN (SELECT value FROM json_each(?))",
            (now, json.dumps(list(report_ids))),
        )
        count = conn.changes()
    return count


def _requeue_failed(conn: apsw.Connection, now: float) -> int:
    with _transaction(conn):
        conn.execute(
            "UPDATE reports SET state = 'pending', attempts = 0, next_attempt_at = ?,"
            " updated_at = ? WHERE state = 'failed'",
            (now, now),
        )
        count = conn.changes()
    return count


def _make_due(conn: apsw.Connection, report_ids: Sequence[str], now: float) -> int:
    # changes() would count only the last row of executemany.
    before = conn.total_changes()
    with _transaction(conn):
        conn.executemany(
            "UPDATE reports SET next_attempt_at = ?, updated_at = ?"
            " WHERE id = ? AND state = 'pending' AND next_attempt_at > ?",
            [(now, now, report_id, now) for report_id in report_ids],
        )
    return conn.total_changes() - before


def _delete(conn: apsw.Connection, report_id: str) -> None:
    with _transaction(conn):
        conn.execute("DELETE FROM reports WHERE id = ?", (report_id,))
        if not conn.changes():
            raise NotFoundError(f"no report with id {report_id}")


def _purge_done(conn: apsw.Connection, cutoff: float) -> int:
    # Source records are kept: a file left in place (post-action "keep") must stay known,
    # or it would be queued again once its report is purged.
    with _transaction(conn):
        conn.execute("DELETE FROM reports WHERE state = 'done' AND updated_at < ?", (cutoff,))
        count = conn.changes()
    return count


def _insert_salvaged(
    conn: apsw.Connection,
    reports: Sequence[tuple[apsw.SQLiteValue, ...]],
    sources: Sequence[tuple[apsw.SQLiteValue, ...]],
    now: float,
) -> int:
    """Insert rows read by :func:`pywats.salvage.read`; return how many reports were new.

    Ids already queued are skipped (OR IGNORE), and so is a row the schema refuses.
    ``uploading`` rows were pending when their service stopped, and pending rows are due
    now: they have waited long enough. Ids, bodies, attempts and errors are kept.
    """
    columns = ", ".join(salvage.REPORT_COLUMNS)
    state = salvage.REPORT_COLUMNS.index("state")
    due = salvage.REPORT_COLUMNS.index("next_attempt_at")
    rows = []
    for row in reports:
        fixed = list(row)
        if fixed[state] != QueueState.FAILED:
            fixed[state], fixed[due] = str(QueueState.PENDING), now
        rows.append(fixed)
    marks = ", ".join("?" for _ in salvage.REPORT_COLUMNS)
    source_marks = ", ".join("?" for _ in salvage.SOURCE_COLUMNS)
    with _transaction(conn):
        before = conn.total_changes()
        conn.executemany(f"INSERT OR IGNORE INTO reports ({columns}) VALUES ({marks})", rows)
        count = conn.total_changes() - before
        conn.executemany(
            f"INSERT OR IGNORE INTO sources ({', '.join(salvage.SOURCE_COLUMNS)})"
            f" VALUES ({source_marks})",
            sources,
        )
    return count


def _checkpoint(conn: apsw.Connection) -> bool:
    # PASSIVE: never waits for the reader; a reader in the way leaves part of the WAL.
    wal_frames, copied = conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
    return wal_frames >= 0 and copied == wal_frames


def _next_due_at(conn: apsw.Connection, now: float, max_delay_s: float) -> float | None:
    value = conn.execute("SELECT min(next_attempt_at) FROM reports WHERE state = 'pending'").get
    if value is None:
        return None
    # Beyond max_delay_s only after the clock stepped back; the next claim repairs it.
    return now if _real(value) > now + max_delay_s else _real(value)


@attrs.frozen
class _Tally:
    """What :func:`_tally` read: counts by state, bytes, and when the oldest waiting came."""

    counts: Mapping[QueueState, int]
    total_bytes: int
    oldest_created_at: float | None

    def stats(self, now: float) -> QueueStats:
        """The figures as of ``now`` (epoch s): only the oldest report's age moves with it."""
        oldest = self.oldest_created_at
        return QueueStats(
            pending=self.counts[QueueState.PENDING],
            uploading=self.counts[QueueState.UPLOADING],
            done=self.counts[QueueState.DONE],
            failed=self.counts[QueueState.FAILED],
            oldest_pending_age_s=None if oldest is None else max(0.0, now - oldest),
            total_bytes=self.total_bytes,
        )


def _tally(conn: apsw.Connection) -> _Tally:
    counts = dict.fromkeys(QueueState, 0)
    total_bytes = 0
    oldest: float | None = None
    # One pass over the covering index reports_state_created.
    for state, count, size, first in conn.execute(
        "SELECT state, count(*), total(size), min(created_at) FROM reports GROUP BY state"
    ):
        counts[QueueState(_text(state))] = _integer(count)
        total_bytes += int(_real(size))
        if state in (QueueState.PENDING, QueueState.UPLOADING) and first is not None:
            oldest = _real(first) if oldest is None else min(oldest, _real(first))
    return _Tally(counts, total_bytes, oldest)


@attrs.frozen
class ListOrder:
    """How :func:`_list` orders a page: by ``column``, first ``descending`` or not.

    Equal values are ordered newest queued first (by rowid, which grows with every insert),
    so every order is total: a page continues the one before it exactly (see ``after``).
    """

    column: str
    descending: bool
    ties_descending: bool = True

    def sql(self) -> str:
        """The SQL expression this order sorts by."""
        if self.column == "state":
            # Attention first: what failed, then what waits, then what is done.
            ranks = " ".join(f"WHEN '{s}' THEN {r}" for s, r in _STATE_RANK.items())
            return f"(CASE state {ranks} END)"
        return self.column

    def value(self, report: QueuedReport) -> str | int | float:
        """``report``'s value of the sort column (what ``after`` takes)."""
        if self.column == "state":
            return _STATE_RANK[report.state.value]
        return cast(str | int | float, getattr(report, self.column))

    def reversed(self) -> ListOrder:
        """The same order the other way round (ties too: the exact reverse)."""
        return ListOrder(self.column, not self.descending, not self.ties_descending)


_STATE_RANK = {"failed": 0, "pending": 1, "uploading": 2, "done": 3}

LIST_ORDERS: Mapping[str, ListOrder] = {
    "newest": ListOrder("created_at", descending=True),
    "oldest": ListOrder("created_at", descending=False, ties_descending=False),
    "updated": ListOrder("updated_at", descending=True),
    "state": ListOrder("state", descending=False),
    "sn": ListOrder("sn", descending=False),
    "pn": ListOrder("pn", descending=False),
    "result": ListOrder("result", descending=False),
    "attempts": ListOrder("attempts", descending=True),
    "next_attempt": ListOrder("next_attempt_at", descending=False),
}
"""The orders a listing can have, by name: ``newest`` (the default), ``oldest``,
``updated`` (last changed first), ``state`` (failed, pending, uploading, done), ``sn``,
``pn``, ``result`` (A to Z), ``attempts`` (most first), ``next_attempt`` (soonest first)."""

_ROWID_MAX = 2**63 - 1


def _list(
    conn: apsw.Connection,
    state: QueueState | None,
    sn: str | None,
    limit: int,
    offset: int,
    order: ListOrder = LIST_ORDERS["newest"],
    after: tuple[str | int | float, str] | None = None,
) -> list[QueuedReport]:
    where: list[str] = []
    params: list[apsw.SQLiteValue] = []
    if state is not None:
        where.append("state = ?")
        params.append(str(state))
    if sn:
        # LIKE is case-insensitive for ASCII, which is what serial and part numbers are;
        # the user's text is matched literally, so % and _ in it are escaped.
        escaped = sn.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append("(sn LIKE ? ESCAPE '\\' OR pn LIKE ? ESCAPE '\\')")
        params += [f"%{escaped}%", f"%{escaped}%"]
    expr = order.sql()
    if after is not None:
        # Keyset paging: the rows after (value, id) in this order. Unlike an offset it
        # neither repeats nor skips rows when reports come, go or change state between two
        # pages. The id stands for its rowid; if that report is gone, every row with an
        # equal value counts as after it (a tie may repeat, nothing is skipped).
        value, last_id = after
        beyond = "<" if order.descending else ">"
        tie = "<" if order.ties_descending else ">"
        missing = _ROWID_MAX if order.ties_descending else -_ROWID_MAX - 1
        rowid = f"coalesce((SELECT rowid FROM reports WHERE id = ?), {missing})"
        if order.descending == order.ties_descending:
            # A row value comparison: SQLite walks the index from there.
            where.append(f"({expr}, rowid) {beyond} (?, {rowid})")
            params += [value, last_id]
        else:
            where.append(f"({expr} {beyond} ? OR ({expr} = ? AND rowid {tie} {rowid}))")
            params += [value, value, last_id]
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    direction = "DESC" if order.descending else "ASC"
    ties = "DESC" if order.ties_descending else "ASC"
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM reports{clause}"
        f" ORDER BY {expr} {direction}, rowid {ties} LIMIT ? OFFSET ?",
        (*params, limit, offset),
    ).fetchall()
    return [QueuedReport.from_row(row) for row in rows]


def _get(conn: apsw.Connection, report_id: str) -> QueuedReport:
    row = conn.execute(
        f"SELECT {_COLUMNS}, body FROM reports WHERE id = ?", (report_id,)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no report with id {report_id}")
    return QueuedReport.from_row(row, body=_blob(row[-1]))


def _optimize(conn: apsw.Connection) -> None:
    conn.pragma("optimize")


def _check_page(limit: int, offset: int, sort: str = "newest", reverse: bool = False) -> ListOrder:
    if limit < 0 or offset < 0:
        raise ValueError(f"limit and offset must be >= 0, got {limit}, {offset}")
    order = LIST_ORDERS.get(sort)
    if order is None:
        raise ValueError(f"sort must be one of {', '.join(LIST_ORDERS)}, got {sort!r}")
    return order.reversed() if reverse else order


# ---------------------------------------------------------------------------------------
# Files (run through trio.to_thread: renames and fsyncs are disk work too).


def _move_aside(path: Path, now: float) -> Path:
    """Rename a corrupt database and its -wal/-shm; return the new database path.

    The WAL and shared-memory files keep their suffix after the new name, so the set
    still opens as one database (``sqlite3 queue.db.corrupt-... .recover``). They are
    renamed before the main file: a stray ``queue.db-wal`` next to a fresh ``queue.db``
    would be replayed into it.
    """
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    suffixes = ("-wal", "-shm", "")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while any(os.path.lexists(f"{target}{s}") for s in suffixes):
        target = path.with_name(f"{path.name}.corrupt-{stamp}.{n}")
        n += 1
    for suffix in suffixes:
        source = f"{path}{suffix}"
        if os.path.lexists(source):
            os.rename(source, f"{target}{suffix}")
    _fsync_dir(path.parent)
    return target


def _fsync_dir(directory: Path) -> None:
    # Makes the renames durable before a new database is created under the old name.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_parent(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)


async def _aclose_connection(db: apsw.AsyncConnection) -> None:
    # Shielded: a cancelled aclose() never reaches the worker thread, which then keeps the
    # interpreter from exiting (it is not a daemon thread).
    with trio.CancelScope(shield=True):
        await db.aclose()


async def _open_async(path: Path, flags: int) -> apsw.AsyncConnection:
    # Named explicitly rather than left to apsw.aio.Auto, which probes for anyio first.
    # The variable holds a controller factory (apsw's own tests set classes); the stub
    # types it as an instance.
    token = apsw.async_controller.set(apsw.aio.Trio)  # type: ignore[arg-type]
    try:
        return await apsw.Connection.as_async(str(path), flags)
    except apsw.Error as exc:
        raise StoreError(f"cannot open queue database {path}: {exc}") from exc
    finally:
        apsw.async_controller.reset(token)


async def _open_reader(path: Path, busy_timeout_ms: int) -> apsw.AsyncConnection:
    """A read-only connection with its own worker thread, for what the control socket
    reads: in WAL mode it never waits for the writer, so a status poll during a burst
    does not queue behind the pipeline's commits."""
    reader = await _open_async(path, apsw.SQLITE_OPEN_READONLY)
    try:
        await reader.async_run(_configure, reader, busy_timeout_ms)
    except apsw.Error as exc:
        await _aclose_connection(reader)
        raise StoreError(f"cannot open queue database {path} for reading: {exc}") from exc
    except BaseException:
        await _aclose_connection(reader)
        raise
    return reader


async def _open_prepared(
    path: Path, busy_timeout_ms: int, now: float
) -> tuple[apsw.AsyncConnection, _Opened]:
    db = await _open_async(path, apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE)
    try:
        opened = await db.async_run(_prepare, db, path, busy_timeout_ms, now)
    except apsw.Error as exc:
        await _aclose_connection(db)
        raise StoreError(f"cannot open queue database {path}: {exc}") from exc
    except BaseException:
        await _aclose_connection(db)
        raise
    return db, cast(_Opened, opened)


# ---------------------------------------------------------------------------------------


class Store:
    """The queue database of one instance, for the Trio service.

    Open it with ``store = await Store.open(path)`` and close it with ``await
    store.aclose()``, or ``async with await Store.open(path) as store:``. Start
    :meth:`run` in the service nursery for housekeeping. All methods must be called from
    the Trio thread that opened the store.

    Error handling: database failures raise :class:`~pywats.errors.StoreError` (the apsw
    exception is its ``__cause__``); a missing id raises
    :class:`~pywats.errors.NotFoundError`; using a closed store raises
    :class:`trio.ClosedResourceError`.

    Cancellation: a call cancelled before the worker thread starts it does nothing; one
    cancelled while it runs is interrupted and its transaction rolled back, unless it
    already committed. Either way the caller only sees ``Cancelled``, so it cannot tell;
    that is safe because a source whose commit did land is recognised as a duplicate the
    next time, and an uploading row returns to pending at the next start.
    """

    def __init__(
        self,
        db: apsw.AsyncConnection,
        reader: apsw.AsyncConnection,
        path: Path,
        clock: Callable[[], float],
        retention_s: float,
        max_delay_s: float,
    ) -> None:
        """Use :meth:`open`; this only wires already prepared connections."""
        self._db = db
        self._reader = reader
        self._path = path
        self._clock = clock
        self._retention_s = retention_s
        self._max_delay_s = max_delay_s
        self._closed = False
        self._generation = 0
        self._queued = trio.Event()
        self._changes = 0
        """Calls that may have written so far (see :meth:`stats`)."""
        self._tally: tuple[int, _Tally] | None = None
        self.disk_full = DiskFull()
        """Where the disk is full now; shared with the pipeline (done folders) and read by
        the status. The store itself notes its database here."""
        self._place = f"queue database {path}"
        self._write_failed = False
        """A write failed in the database and none has changed a row since."""

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        retention_s: float = DEFAULT_RETENTION_S,
        max_delay_s: float = DEFAULT_MAX_DELAY_S,
    ) -> Store:
        """Open (creating it and its directory if needed) the queue database at ``path``.

        Runs ``quick_check``; a file that is not SQLite or fails the check is renamed to
        ``<name>.corrupt-<UTC timestamp>`` (with its ``-wal``/``-shm``), logged at ERROR on
        the ``pywats.store`` logger, and replaced by a new queue, into which the readable
        pending and failed reports of the old file are salvaged (:meth:`salvage`). Then
        sets WAL mode and ``synchronous=FULL``, migrates the schema (one transaction), and returns
        ``uploading`` reports to ``pending``.

        Args:
            path: the database file.
            clock: wall-clock time in epoch seconds, for every time the store records.
            busy_timeout_ms: how long to wait for a lock held by another connection.
            retention_s: how long :meth:`purge_done` keeps ``done`` reports by default.
            max_delay_s: the longest delay :meth:`retry_later` schedules. A pending report
                due later than this must be the wall clock having stepped back, and is
                made due now instead of waiting for as long as the clock jumped.

        Raises:
            StoreError: the file cannot be opened or created, belongs to another
                application or a newer pywats, or is still unusable after moving aside.
        """
        db_path = Path(path)
        try:
            await trio.to_thread.run_sync(_make_parent, db_path)
        except OSError as exc:
            raise StoreError(f"cannot create directory for {db_path}: {exc}") from exc
        aside: Path | None = None
        try:
            db, opened = await _open_prepared(db_path, busy_timeout_ms, clock())
        except _CorruptDatabaseError as exc:
            try:
                aside = await trio.to_thread.run_sync(_move_aside, db_path, clock())
            except OSError as move_exc:
                raise StoreError(
                    f"queue database {db_path} is corrupt ({exc}) and cannot be moved aside:"
                    f" {move_exc}"
                ) from move_exc
            log.error(  # noqa: TRY400 - the cause is in the message; no traceback wanted
                "queue database %s is corrupt (%s); moved it to %s and started a new queue",
                db_path,
                exc,
                aside,
            )
            try:
                db, opened = await _open_prepared(db_path, busy_timeout_ms, clock())
            except _CorruptDatabaseError as again:
                raise StoreError(f"new queue database {db_path} is corrupt: {again}") from again
        if opened.version_before == 0:
            log.info("created queue database %s", db_path)
        elif opened.version_before < SCHEMA_VERSION:
            log.info(
                "migrated queue database %s from schema %d to %d",
                db_path,
                opened.version_before,
                SCHEMA_VERSION,
            )
        if opened.recovered:
            log.warning(
                "queue database %s: %d report(s) were being uploaded when the last run"
                " stopped; they are pending again",
                db_path,
                opened.recovered,
            )
        try:
            reader = await _open_reader(db_path, busy_timeout_ms)
        except BaseException:
            await _aclose_connection(db)
            raise
        store = cls(db, reader, db_path, clock, retention_s, max_delay_s)
        if aside is not None:
            # The waiting reports of the damaged file are the station's results: bring
            # back every one that can still be read before anything else runs.
            try:
                await store.salvage(aside)
            except BaseException:
                await store.aclose()
                raise
        return store

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def clock(self) -> Callable[[], float]:
        """The wall clock the store stamps rows with (compare it with ``next_due_at``)."""
        return self._clock

    async def aclose(self) -> None:
        """Close the database and stop its worker thread; idempotent.

        Calls already queued run first. Closing is shielded from cancellation, because an
        unclosed connection keeps its worker thread, and the process, alive.
        """
        if self._closed:
            return
        self._closed = True
        await _aclose_connection(self._reader)
        await _aclose_connection(self._db)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def run(
        self,
        *,
        purge_interval_s: float = DEFAULT_PURGE_INTERVAL_S,
        task_status: trio.TaskStatus[Store] = trio.TASK_STATUS_IGNORED,
    ) -> NoReturn:
        """Housekeeping until cancelled: purge old ``done`` rows and refresh statistics.

        Start it with ``await nursery.start(store.run)``; it reports the store as started
        at once. It does not close the store: the owner does, after the components that
        use it have stopped. A failed purge is logged and tried again next period.
        """
        task_status.started(self)
        while True:
            try:
                purged = await self.purge_done()
                await self._call("optimize", _optimize)
            except StoreError:
                log.exception("queue housekeeping failed; trying again in %.0f s", purge_interval_s)
            else:
                if purged:
                    log.info("purged %d uploaded report(s) older than retention", purged)
            await trio.sleep(purge_interval_s)

    async def _call(
        self,
        what: str,
        fn: Callable[Concatenate[apsw.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn``, which may write, on the worker thread (see :meth:`_query`)."""
        # Counted before and after: a stats read that overlaps the write, on either side
        # of its commit, is never taken for the state after it.
        self._changes += 1

        def counted(conn: apsw.Connection) -> tuple[T, int]:
            before = conn.total_changes()
            result = fn(conn, *args, **kwargs)
            return result, conn.total_changes() - before

        try:
            try:
                result, changed = await self._query(what, counted)
            except StoreError as exc:
                self._failed_write(exc)
                raise
            if changed:
                self._wrote()
            return result
        finally:
            self._changes += 1

    def _failed_write(self, exc: StoreError) -> None:
        cause = exc.__cause__
        if not isinstance(cause, apsw.Error) or isinstance(cause, apsw.ConstraintError):
            return  # not the database failing: a missing row, a report id clash
        self._write_failed = True
        if is_disk_full(cause):
            self.disk_full.full(self._place, cause, trio.current_time())

    def _wrote(self) -> None:
        # Only a write that changed rows counts: an empty claim commits nothing, so it
        # succeeds on a full disk too and says nothing about space.
        if not self._write_failed:
            return
        self._write_failed = False
        self.disk_full.space(self._place, trio.current_time())
        # Whoever waits to try again (the uploader's backoff, a converter's commit) may
        # go now rather than at the end of its delay.
        self._bump()

    async def _query(
        self,
        what: str,
        fn: Callable[Concatenate[apsw.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn(connection, ...)``, which only reads, on the worker thread; apsw errors
        become StoreError."""
        return await self._run(self._db, what, fn, *args, **kwargs)

    async def _look(
        self,
        what: str,
        fn: Callable[Concatenate[apsw.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Like :meth:`_query`, on the read-only connection: for what people look at
        (stats, pages, one report), which must not wait behind the pipeline's writes."""
        return await self._run(self._reader, what, fn, *args, **kwargs)

    async def _run(
        self,
        db: apsw.AsyncConnection,
        what: str,
        fn: Callable[Concatenate[apsw.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        if self._closed:
            raise trio.ClosedResourceError("the store is closed")
        try:
            # In the worker thread the connection object answers synchronously.
            result = await db.async_run(fn, cast(apsw.Connection, db), *args, **kwargs)
        except apsw.Error as exc:
            raise StoreError(f"{what} failed: {exc}") from exc
        return cast(T, result)

    def _bump(self) -> None:
        # Wake every waiter: something became due now.
        self._generation += 1
        self._queued.set()
        self._queued = trio.Event()

    @property
    def generation(self) -> int:
        """A counter that grows whenever reports become due now (enqueue, requeue).

        Read it *before* looking for work and pass it to :meth:`wait_enqueued`, so a
        report queued between the look and the wait is not missed.
        """
        return self._generation

    async def wait_enqueued(self, seen: int) -> int:
        """Wait until :attr:`generation` differs from ``seen``; return the new value.

        Uploaders use it instead of polling::

            seen = store.generation
            claims = await store.claim(4)
            if not claims:
                with trio.move_on_after(delay_until_next_due):
                    await store.wait_enqueued(seen)
        """
        while self._generation == seen:
            await self._queued.wait()
        return self._generation

    async def enqueue(
        self, reports: Sequence[NewReport], source: SourceFile | None = None
    ) -> EnqueueResult:
        """Queue the reports made from one source, and record the source, in one commit.

        When ``source``'s hash is already recorded nothing is inserted and the result
        carries the ids queued the first time with ``duplicate=True``. ``source`` may be
        ``None`` for reports that come from no file (no duplicate check then). When this
        returns, the reports are durable (``synchronous=FULL``).

        Raises:
            StoreError: a report id is already queued (nothing of this call is kept), or
                the database failed.
        """
        [result] = await self.enqueue_batch([(reports, source)])
        return result

    async def enqueue_batch(
        self, items: Sequence[tuple[Sequence[NewReport], SourceFile | None]]
    ) -> list[EnqueueResult]:
        """Like :meth:`enqueue` for many sources, sharing one transaction and one fsync.

        Results are in the order of ``items``; a source repeated within the batch is a
        duplicate of its first occurrence. The batch is all or nothing: if any report id
        clashes, nothing is kept and StoreError is raised (enqueue the items one by one to
        find the bad one).
        """
        if not items:
            return []
        results = await self._call("enqueue", _enqueue_batch, items, self._clock())
        if any(not r.duplicate and r.ids for r in results):
            self._bump()
        return results

    async def lookup_source(self, source_hash: str) -> tuple[str, ...] | None:
        """The report ids recorded for a source hash, or ``None`` if it was never queued.

        Lets a converter skip work for a file it has already queued.
        """
        return await self._query("lookup source", _source_ids, source_hash)

    async def lookup_sources(self, hashes: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """:meth:`lookup_source` for many hashes in one call: the recorded ones only."""
        return await self._query("lookup sources", _sources_ids, list(hashes))

    async def claim(self, limit: int = 1) -> list[Claim]:
        """Take up to ``limit`` due reports for upload, oldest due first.

        Due means ``pending`` with ``next_attempt_at`` at or before now. Each is set to
        ``uploading`` and its ``attempts`` incremented, in one transaction.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        return await self._call("claim", _relaxed(_claim), limit, self._clock(), self._max_delay_s)

    async def finish_and_claim(
        self, done: Sequence[tuple[str, int | None]], limit: int
    ) -> tuple[list[str], list[Claim], float | None]:
        """Mark reports done and claim up to ``limit`` due ones, in one call.

        ``done`` holds ``(id, HTTP status)`` of ``uploading`` reports the server accepted;
        ``limit`` may be 0. Returns the ids of ``done`` that were no longer ``uploading``
        (deleted meanwhile: nothing to record), the claims (as :meth:`claim`), and, when
        it claimed none though it could, :meth:`next_due_at`. This is the uploader's one
        store call per round: finished uploads and new work share a commit.
        """
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        if not done and limit == 0:
            return [], [], None
        return await self._call(
            "finish and claim",
            _relaxed(_finish_and_claim),
            list(done),
            limit,
            self._clock(),
            self._max_delay_s,
        )

    async def mark_done(self, report_id: str, *, status: int | None = None) -> None:
        """Record that the server accepted an ``uploading`` report (HTTP ``status``).

        Raises:
            NotFoundError: no such report (it was deleted while uploading).
            StoreError: the report is not ``uploading``.
        """
        await self._call(
            "mark done",
            _relaxed(_transition),
            report_id,
            (QueueState.UPLOADING,),
            "state = 'done', last_status = ?, last_error = NULL, updated_at = ?",
            (status, self._clock()),
        )

    async def retry_later(
        self, report_id: str, *, delay_s: float, error: str, status: int | None = None
    ) -> None:
        """Put an ``uploading`` report back to ``pending``, due ``delay_s`` from now.

        ``delay_s`` is clamped to the store's ``max_delay_s``. ``error`` and ``status``
        (``None`` when there was no HTTP answer) are kept for the operator.

        Raises:
            NotFoundError: no such report.
            StoreError: the report is not ``uploading``.
        """
        if not math.isfinite(delay_s) or delay_s < 0:
            raise ValueError(f"delay_s must be a finite number >= 0, got {delay_s}")
        now = self._clock()
        await self._call(
            "retry later",
            _relaxed(_transition),
            report_id,
            (QueueState.UPLOADING,),
            "state = 'pending', next_attempt_at = ?, last_error = ?, last_status = ?,"
            " updated_at = ?",
            (now + min(delay_s, self._max_delay_s), error, status, now),
        )

    async def mark_failed(self, report_id: str, *, error: str, status: int | None = None) -> None:
        """Move an ``uploading`` report to ``failed``: the server rejected it for good.

        Raises:
            NotFoundError: no such report.
            StoreError: the report is not ``uploading``.
        """
        await self._call(
            "mark failed",
            _relaxed(_transition),
            report_id,
            (QueueState.UPLOADING,),
            "state = 'failed', last_error = ?, last_status = ?, updated_at = ?",
            (error, status, self._clock()),
        )

    async def release(self, report_ids: Sequence[str]) -> int:
        """Give claimed reports back: ``uploading`` -> ``pending``, as if never claimed.

        For an uploader that stops before it has an answer (shutdown, cancellation, a
        paused upload): ``attempts`` goes back down by one, ``next_attempt_at``,
        ``last_error`` and ``last_status`` stay as they were, so the report is due again
        at once and its backoff is not advanced. Ids that are not ``uploading`` (already
        recorded, deleted meanwhile, unknown) are skipped, which makes it safe to call
        for a claim whose outcome may or may not have been committed. Returns how many
        reports went back to ``pending``.
        """
        if not report_ids:
            return 0
        count = await self._call("release", _relaxed(_release), report_ids, self._clock())
        if count:
            self._bump()
        return count

    async def requeue(self, report_id: str) -> None:
        """Make a ``failed`` (or waiting ``pending``) report due now, attempts reset to 0.

        Attempts restart so the backoff after a requeue starts short again; the last
        error stays visible until the next attempt replaces it.

        Raises:
            NotFoundError: no such report.
            StoreError: the report is ``uploading`` or ``done``.
        """
        now = self._clock()
        await self._call(
            "requeue",
            _transition,
            report_id,
            (QueueState.FAILED, QueueState.PENDING),
            "state = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ?",
            (now, now),
        )
        self._bump()

    async def requeue_many(self, report_ids: Sequence[str]) -> list[str]:
        """:meth:`requeue` each id in turn; returns the ids not found (the others are due).

        Raises:
            StoreError: a report is ``uploading`` or ``done`` (the ones before it stay
                requeued).
        """
        missing: list[str] = []
        for report_id in report_ids:
            try:
                await self.requeue(report_id)
            except NotFoundError:
                missing.append(report_id)
        return missing

    async def delete_many(self, report_ids: Sequence[str]) -> list[str]:
        """:meth:`delete` each id in turn; returns the ids not found."""
        missing: list[str] = []
        for report_id in report_ids:
            try:
                await self.delete(report_id)
            except NotFoundError:
                missing.append(report_id)
        return missing

    async def make_due(self, report_ids: Sequence[str]) -> int:
        """Make waiting ``pending`` reports due now, attempts kept; return how many.

        The uploader's recovery after an outage: the reports' delays were about the
        server, which answers again. Other states and unknown ids are left alone.
        """
        if not report_ids:
            return 0
        count = await self._call("make_due", _make_due, list(report_ids), self._clock())
        if count:
            self._bump()
        return count

    async def requeue_failed(self) -> int:
        """Make every ``failed`` report due now (attempts reset); return how many."""
        count = await self._call("requeue failed", _requeue_failed, self._clock())
        if count:
            self._bump()
        return count

    async def delete(self, report_id: str) -> None:
        """Remove a report from the queue, whatever its state.

        Its source stays recorded, so the same file is not queued again.

        Raises:
            NotFoundError: no such report.
        """
        await self._call("delete", _delete, report_id)

    async def purge_done(self, *, older_than_s: float | None = None) -> int:
        """Delete ``done`` reports finished more than ``older_than_s`` ago; return how many.

        ``older_than_s`` defaults to the store's retention (7 days unless configured).
        """
        age = self._retention_s if older_than_s is None else older_than_s
        return await self._call("purge", _purge_done, self._clock() - age)

    async def salvage(self, path: str | os.PathLike[str], *, log_it: bool = True) -> SalvageResult:
        """Copy every readable pending, uploading and failed report (and every source
        record) from the damaged queue file ``path`` into this queue; log one line
        (unless ``log_it`` is false: a command that prints the line itself).

        The file is only read (:mod:`pywats.salvage`). Reports already in this queue are
        skipped, so salvaging the same file twice adds nothing the second time.

        Raises:
            StoreError: this queue cannot be written.
        """
        aside = Path(path)
        found = await trio.to_thread.run_sync(salvage.read, aside)
        salvaged = 0
        if found.reports or found.sources:
            salvaged = await self._call(
                "salvage", _insert_salvaged, found.reports, found.sources, self._clock()
            )
        if salvaged:
            self._bump()
        result = SalvageResult(
            salvaged=salvaged,
            found=len(found.reports),
            unreadable=found.unreadable,
            problem=found.problem,
        )
        if log_it:
            # WARNING even when all came back: the queue was damaged, someone should know.
            log.warning("%s", result.describe(aside))
        return result

    async def checkpoint(self) -> bool:
        """Copy the write-ahead log into the database file (``wal_checkpoint(PASSIVE)``).

        Returns True if all of it was copied (and so, with ``synchronous=FULL``, is on
        disk in the main file), False if a reader kept part of it or it failed.
        """
        try:
            return await self._call("checkpoint", _checkpoint)
        except StoreError as exc:
            log.debug("checkpoint failed: %s", exc)
            return False

    async def next_due_at(self) -> float | None:
        """The earliest ``next_attempt_at`` (epoch s) of ``pending`` reports, or ``None``.

        It may be in the past (reports are due now). Uploaders sleep ``next_due_at() -
        store.clock()`` when :meth:`claim` returned nothing. After the wall clock stepped
        back it is "now" rather than far in the future.
        """
        return await self._query("next due", _next_due_at, self._clock(), self._max_delay_s)

    async def stats(self) -> QueueStats:
        """Counts by state, age of the oldest report waiting for upload, bytes stored."""
        changes = self._changes
        tally = self._tally
        if tally is None or tally[0] != changes:
            # Nothing is written but through this object (one service per database, under
            # the instance lock), so an unchanged count means unchanged rows: a status
            # poll on an idle queue costs no trip to the worker thread.
            tally = (changes, await self._look("stats", _tally))
            self._tally = tally
        return tally[1].stats(self._clock())

    async def list_reports(
        self,
        *,
        state: QueueState | None = None,
        sn: str | None = None,
        limit: int = 50,
        offset: int = 0,
        sort: str = "newest",
        reverse: bool = False,
        after: tuple[str | int | float, str] | None = None,
    ) -> list[QueuedReport]:
        """A page of reports, newest first unless ``sort`` says otherwise, without bodies.

        Args:
            state: only reports in this state.
            sn: only reports whose serial number or part number contains this text
                (ASCII case-insensitive, matched literally).
            limit: page size.
            offset: how many matching reports to skip.
            sort: a name of :data:`LIST_ORDERS`.
            reverse: the exact reverse of that order.
            after: only the reports after the one with this (sort value, id): the last
                row of the page before (:meth:`ListOrder.value`), for the next page.

        Raises:
            ValueError: a negative ``limit`` or ``offset``, or an unknown ``sort``.
        """
        order = _check_page(limit, offset, sort, reverse)
        return await self._look("list", _list, state, sn, limit, offset, order, after)

    async def get(self, report_id: str) -> QueuedReport:
        """One report, with its body.

        Raises:
            NotFoundError: no such report.
        """
        return await self._look("get", _get, report_id)


class QueueReader:
    """Read-only, synchronous access to a queue database, for short-lived commands.

    It opens the file with ``SQLITE_OPEN_READONLY``, so it works while the service holds
    the database (WAL lets readers and the writer proceed together), and it never
    migrates, recovers or moves anything.
    """

    def __init__(self, conn: apsw.Connection, path: Path) -> None:
        """Use :meth:`open`."""
        self._conn = conn
        self._path = path

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, busy_timeout_ms: int = 2000) -> QueueReader:
        """Open an existing queue database read-only.

        Raises:
            StoreError: the file does not exist, is not a pywats queue, or has a schema
                this pywats cannot read.
        """
        db_path = Path(path)
        if not db_path.is_file():
            raise StoreError(f"no queue database at {db_path}")
        try:
            conn = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READONLY)
        except apsw.Error as exc:
            raise StoreError(f"cannot open queue database {db_path}: {exc}") from exc
        try:
            _configure(conn, busy_timeout_ms)
            _check_readable(conn, db_path)
        except apsw.Error as exc:
            conn.close()
            raise StoreError(f"cannot read queue database {db_path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return cls(conn, db_path)

    def close(self) -> None:
        """Close the database."""
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _read(
        self,
        fn: Callable[Concatenate[apsw.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        try:
            return fn(self._conn, *args, **kwargs)
        except apsw.Error as exc:
            raise StoreError(f"cannot read queue database {self._path}: {exc}") from exc

    def stats(self, now: float) -> QueueStats:
        """Counts by state, oldest waiting age (relative to ``now``, epoch s), bytes."""
        return self._read(_tally).stats(now)

    def list_reports(
        self,
        *,
        state: QueueState | None = None,
        sn: str | None = None,
        limit: int = 50,
        offset: int = 0,
        sort: str = "newest",
        reverse: bool = False,
        after: tuple[str | int | float, str] | None = None,
    ) -> list[QueuedReport]:
        """A page of reports, without bodies (see :meth:`Store.list_reports`)."""
        order = _check_page(limit, offset, sort, reverse)
        return self._read(_list, state, sn, limit, offset, order, after)

    def get(self, report_id: str) -> QueuedReport:
        """One report, with its body.

        Raises:
            NotFoundError: no such report.
        """
        return self._read(_get, report_id)
