"""The durable report queue, on real SQLite files in tmp_path.

Rules: no mocks; times come from a fake wall clock handed to the store (the store never
reads trio's clock for what it records), so ages, retention and due times are exact.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import apsw
import attrs
import pytest
import trio
import trio.testing

import pywats.store as store_module
from pywats.errors import NotFoundError, StoreError
from pywats.store import (
    APPLICATION_ID,
    DEFAULT_RETENTION_S,
    SCHEMA_VERSION,
    Claim,
    EnqueueResult,
    NewReport,
    QueuedReport,
    QueueReader,
    QueueState,
    QueueStats,
    SourceFile,
    Store,
)

T0 = 1_700_000_000.0
DAY = 86_400.0


@attrs.define
class FakeClock:
    """Wall clock for the store: only moves when a test says so."""

    now: float = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def report(n: int, *, sn: str | None = None, body: bytes | None = None) -> NewReport:
    return NewReport(
        id=f"00000000-0000-4000-8000-{n:012d}",
        body=body if body is not None else f'{{"id": "{n}", "sn": "x"}}'.encode(),
        pn="PN-100",
        sn=sn if sn is not None else f"SN{n:05d}",
        result="Passed",
        start="2024-05-01T10:00:00+02:00",
        converter="wsjf",
    )


def source(n: int) -> SourceFile:
    return SourceFile(hash=f"sha256-{n}", path=f"/data/in/file{n}.json", size=100 + n, mtime=T0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "queue.db"


@pytest.fixture
async def store(db_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    async with await Store.open(db_path, clock=clock) as opened:
        yield opened


def raw(path: Path) -> apsw.Connection:
    """A plain connection for checking what is really in the file."""
    return apsw.Connection(str(path))


def worker_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if "apsw" in t.name]


# --- opening, schema, configuration ----------------------------------------------------


async def test_open_creates_directory_schema_and_settings(
    store: Store, db_path: Path, clock: FakeClock
) -> None:
    assert db_path.is_file()
    assert store.path == db_path
    assert store.clock is clock
    synchronous = await store._call("read pragma", lambda c: c.pragma("synchronous"))
    assert synchronous == 2  # FULL
    conn = raw(db_path)
    assert conn.pragma("user_version") == SCHEMA_VERSION
    assert conn.pragma("application_id") == APPLICATION_ID
    assert conn.pragma("journal_mode") == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")}
    assert tables == {"reports", "sources"}
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='index'")}
    assert {"reports_due", "reports_state_created", "reports_created"} <= indexes
    conn.close()


async def test_reopen_keeps_data_and_does_not_migrate_again(
    db_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pywats.store")
    async with await Store.open(db_path, clock=clock) as store:
        await store.enqueue([report(1)], source(1))
    assert "created queue database" in caplog.text
    caplog.clear()
    async with await Store.open(db_path, clock=clock) as store:
        assert (await store.get(report(1).id)).body == report(1).body
    assert "created" not in caplog.text
    assert "migrated" not in caplog.text


async def test_close_stops_the_worker_thread_even_when_cancelled(db_path: Path) -> None:
    before = len(worker_threads())
    store = await Store.open(db_path)
    assert len(worker_threads()) == before + 2  # the writer's and the reader's
    with trio.CancelScope() as scope:
        scope.cancel()
        await store.aclose()
    # The thread exits right after the close call returns; give it a moment to finish.
    for _ in range(100):
        if len(worker_threads()) == before:
            break
        await trio.sleep(0.01)
    assert len(worker_threads()) == before
    await store.aclose()  # idempotent


async def test_closed_store_refuses_calls(db_path: Path) -> None:
    store = await Store.open(db_path)
    await store.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await store.stats()


async def test_foreign_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = raw(path)
    conn.execute("CREATE TABLE t (x); INSERT INTO t VALUES (1)")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a pywats queue"):
        await Store.open(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


async def test_other_application_id_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = raw(path)
    conn.pragma("application_id", 1234)
    conn.close()
    with pytest.raises(StoreError, match="another application"):
        await Store.open(path)


async def test_newer_schema_is_refused(db_path: Path) -> None:
    async with await Store.open(db_path):
        pass
    conn = raw(db_path)
    conn.pragma("user_version", SCHEMA_VERSION + 1)
    conn.close()
    with pytest.raises(StoreError, match="newer than this pywats"):
        await Store.open(db_path)


async def test_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError):
        await Store.open(blocker / "queue.db")


# --- corruption ------------------------------------------------------------------------


def corrupt_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".corrupt-" in p.name)


async def test_garbage_file_is_moved_aside_with_wal_and_shm(
    db_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    db_path.parent.mkdir()
    garbage = b"this is not a database, it is a test report " * 200
    db_path.write_bytes(garbage)
    Path(f"{db_path}-wal").write_bytes(b"stray wal")
    Path(f"{db_path}-shm").write_bytes(b"stray shm")
    async with await Store.open(db_path, clock=clock) as store:
        assert (await store.stats()).total == 0
        await store.enqueue([report(1)])
        assert (await store.get(report(1).id)).state is QueueState.PENDING
    aside = db_path.parent / "queue.db.corrupt-20231114T221320Z"
    assert corrupt_files(db_path.parent) == [aside.name, f"{aside.name}-shm", f"{aside.name}-wal"]
    assert aside.read_bytes() == garbage
    assert Path(f"{aside}-wal").read_bytes() == b"stray wal"
    [record] = [r for r in caplog.records if r.name == "pywats.store" and r.levelname == "ERROR"]
    message = record.getMessage()
    assert "corrupt" in message
    assert str(aside) in message
    assert "\n" not in message


async def fill(db_path: Path, n: int, body_size: int = 3000) -> None:
    async with await Store.open(db_path) as store:
        for i in range(n):
            await store.enqueue([report(i, body=bytes([i % 251]) * body_size)], source(i))


async def test_truncated_database_is_moved_aside(db_path: Path, clock: FakeClock) -> None:
    await fill(db_path, 30)
    size = db_path.stat().st_size
    with db_path.open("r+b") as f:
        f.truncate(size // 2)
    truncated = db_path.read_bytes()
    async with await Store.open(db_path, clock=clock) as store:
        # The rows in the half that is left are salvaged (with their sources), the
        # others are lost with the cut.
        salvaged = (await store.stats()).pending
        assert 0 < salvaged < 30
        await store.enqueue([report(1)], source(1))
        assert (await store.enqueue([report(1)], source(1))).duplicate
        assert (await store.enqueue([report(100)], source(100))).duplicate is False
    [main] = [n for n in corrupt_files(db_path.parent) if not n.endswith(("-wal", "-shm"))]
    assert (db_path.parent / main).read_bytes() == truncated


async def test_damaged_btree_page_is_moved_aside(
    db_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await fill(db_path, 30)
    # Page 3 is an index root written by the migration; stamp over its header.
    with db_path.open("r+b") as f:
        f.seek(4096 * 2)
        f.write(b"\xff" * 64)
    async with await Store.open(db_path, clock=clock) as store:
        # The table itself is whole: every pending report comes back into the new queue.
        assert (await store.stats()).pending == 30
    assert "salvaged 30 of 30 pending/failed reports" in caplog.text
    assert len(corrupt_files(db_path.parent)) >= 1
    conn = raw(db_path)
    assert conn.execute("PRAGMA integrity_check").get == "ok"
    conn.close()


async def test_two_corruptions_in_one_second_get_distinct_names(
    db_path: Path, clock: FakeClock
) -> None:
    db_path.parent.mkdir()
    for content in (b"first garbage" * 50, b"second garbage" * 50):
        db_path.write_bytes(content)
        async with await Store.open(db_path, clock=clock):
            pass
    mains = [n for n in corrupt_files(db_path.parent) if not n.endswith(("-wal", "-shm"))]
    assert mains == ["queue.db.corrupt-20231114T221320Z", "queue.db.corrupt-20231114T221320Z.1"]


# --- enqueue and sources ---------------------------------------------------------------


async def test_enqueue_stores_exact_bytes_and_metadata(store: Store, clock: FakeClock) -> None:
    body = b'{"id": "x",  "odd spacing" : [1,2]}\n'
    result = await store.enqueue([report(1, body=body)], source(1))
    assert result == EnqueueResult(ids=(report(1).id,), duplicate=False)
    got = await store.get(report(1).id)
    assert got == QueuedReport(
        id=report(1).id,
        state=QueueState.PENDING,
        attempts=0,
        next_attempt_at=T0,
        last_error=None,
        last_status=None,
        created_at=T0,
        updated_at=T0,
        converter="wsjf",
        source="/data/in/file1.json",
        pn="PN-100",
        sn="SN00001",
        result="Passed",
        start="2024-05-01T10:00:00+02:00",
        size=len(body),
        body=body,
    )


async def test_enqueue_many_reports_from_one_source(store: Store, db_path: Path) -> None:
    reports = [report(1), report(2), report(3)]
    result = await store.enqueue(reports, source(7))
    assert result.ids == tuple(r.id for r in reports)
    assert not result.duplicate
    conn = raw(db_path)
    row = conn.execute("SELECT path, size, mtime, converted_at, report_ids FROM sources").get
    conn.close()
    assert row == (
        "/data/in/file7.json",
        107,
        T0,
        T0,
        f'["{reports[0].id}", "{reports[1].id}", "{reports[2].id}"]',
    )


async def test_duplicate_source_inserts_nothing_and_returns_first_ids(store: Store) -> None:
    first = await store.enqueue([report(1), report(2)], source(1))
    again = await store.enqueue([report(3)], source(1))
    assert again == EnqueueResult(ids=first.ids, duplicate=True)
    assert (await store.stats()).total == 2
    with pytest.raises(NotFoundError):
        await store.get(report(3).id)
    assert await store.lookup_source(source(1).hash) == first.ids
    assert await store.lookup_source("never-seen") is None
    both = await store.lookup_sources([source(1).hash, "never-seen"])
    assert both == {source(1).hash: first.ids}


async def test_source_without_reports_is_still_recorded(store: Store) -> None:
    assert await store.enqueue([], source(1)) == EnqueueResult(ids=(), duplicate=False)
    assert await store.enqueue([report(1)], source(1)) == EnqueueResult(ids=(), duplicate=True)


async def test_reports_without_source_are_not_deduplicated(store: Store) -> None:
    await store.enqueue([report(1)])
    await store.enqueue([report(2)])
    assert (await store.stats()).pending == 2


async def test_batch_commits_all_items_and_detects_repeats_within_it(store: Store) -> None:
    results = await store.enqueue_batch(
        [([report(1)], source(1)), ([report(2), report(3)], source(2)), ([report(4)], source(1))]
    )
    assert results == [
        EnqueueResult(ids=(report(1).id,), duplicate=False),
        EnqueueResult(ids=(report(2).id, report(3).id), duplicate=False),
        EnqueueResult(ids=(report(1).id,), duplicate=True),
    ]
    assert (await store.stats()).pending == 3
    assert await store.enqueue_batch([]) == []


async def test_clashing_report_id_rolls_back_the_whole_batch(store: Store) -> None:
    await store.enqueue([report(1)], source(1))
    with pytest.raises(StoreError, match=report(1).id) as info:
        await store.enqueue_batch([([report(2)], source(2)), ([report(1)], source(3))])
    assert isinstance(info.value.__cause__, apsw.ConstraintError)
    assert (await store.stats()).total == 1
    assert await store.lookup_source(source(2).hash) is None
    with pytest.raises(StoreError, match="twice"):
        await store.enqueue([report(5), report(5)])
    # The failed transactions were rolled back, not left open: the next commit stands.
    assert not await store._call("check", lambda conn: conn.in_transaction)
    await store.enqueue([report(2)], source(2))
    assert (await store.stats()).total == 2


def test_new_report_rejects_text_body_and_empty_id() -> None:
    with pytest.raises(TypeError):
        NewReport("x", "text", "pn", "sn", "Passed", "s", "c")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Length"):
        NewReport("", b"{}", "pn", "sn", "Passed", "s", "c")


# --- claiming and the upload outcomes --------------------------------------------------


async def test_claim_takes_due_reports_oldest_first_up_to_limit(
    store: Store, clock: FakeClock
) -> None:
    for n in range(1, 4):
        await store.enqueue([report(n, body=f"body{n}".encode())])
        clock.advance(1)
    claims = await store.claim(2)
    assert claims == [
        Claim(id=report(1).id, body=b"body1", attempts=1, pn="PN-100", sn="SN00001"),
        Claim(id=report(2).id, body=b"body2", attempts=1, pn="PN-100", sn="SN00002"),
    ]
    got = await store.get(report(1).id)
    assert got.state is QueueState.UPLOADING
    assert got.attempts == 1
    assert got.updated_at == clock.now
    assert [c.id for c in await store.claim(10)] == [report(3).id]
    assert await store.claim(10) == []
    with pytest.raises(ValueError, match="limit"):
        await store.claim(0)


async def test_mark_done(store: Store, clock: FakeClock) -> None:
    await store.enqueue([report(1)])
    [claim] = await store.claim()
    clock.advance(2)
    await store.mark_done(claim.id, status=200)
    got = await store.get(claim.id)
    assert (got.state, got.last_status, got.last_error, got.updated_at) == (
        QueueState.DONE,
        200,
        None,
        T0 + 2,
    )
    assert await store.claim() == []


async def test_finish_and_claim_records_done_and_claims_in_one_call(
    store: Store, clock: FakeClock
) -> None:
    for n in range(1, 6):
        await store.enqueue([report(n)])
    first = await store.claim(3)
    await store.delete(first[2].id)  # deleted while it was uploading
    clock.advance(1)
    missed, claims, due = await store.finish_and_claim(
        [(first[0].id, 200), (first[1].id, 201), (first[2].id, 200)], 5
    )
    assert (missed, due) == ([first[2].id], None)
    assert [c.id for c in claims] == [report(4).id, report(5).id]
    got = await store.get(first[1].id)
    assert (got.state, got.last_status, got.updated_at) == (QueueState.DONE, 201, T0 + 1)
    stats = await store.stats()
    assert (stats.done, stats.uploading, stats.pending) == (2, 2, 0)
    # Only recording, no claiming; and nothing at all is a no-op.
    assert await store.finish_and_claim([(claims[0].id, 200)], 0) == ([], [], None)
    assert (await store.get(claims[0].id)).state is QueueState.DONE
    assert await store.finish_and_claim([], 0) == ([], [], None)
    # Nothing due: it says when the next one is (a retry in 30 s).
    await store.retry_later(claims[1].id, delay_s=30, error="503", status=503)
    assert await store.finish_and_claim([], 5) == ([], [], T0 + 1 + 30)
    with pytest.raises(ValueError, match="limit"):
        await store.finish_and_claim([], -1)


async def test_outcomes_need_an_uploading_report(store: Store) -> None:
    await store.enqueue([report(1)])
    with pytest.raises(StoreError, match="is pending, not uploading"):
        await store.mark_done(report(1).id)
    with pytest.raises(StoreError, match="is pending"):
        await store.mark_failed(report(1).id, error="x")
    with pytest.raises(StoreError, match="is pending"):
        await store.retry_later(report(1).id, delay_s=1, error="x")
    for call in (
        store.mark_done("missing"),
        store.mark_failed("missing", error="x"),
        store.retry_later("missing", delay_s=1, error="x"),
    ):
        with pytest.raises(NotFoundError):
            await call


async def test_retry_later_backs_off_until_due(store: Store, clock: FakeClock) -> None:
    await store.enqueue([report(1)])
    [claim] = await store.claim()
    await store.retry_later(claim.id, delay_s=30, error="503 Service Unavailable", status=503)
    got = await store.get(claim.id)
    assert (got.state, got.next_attempt_at, got.last_error, got.last_status, got.attempts) == (
        QueueState.PENDING,
        T0 + 30,
        "503 Service Unavailable",
        503,
        1,
    )
    assert await store.next_due_at() == T0 + 30
    clock.advance(29.9)
    assert await store.claim() == []
    clock.advance(0.1)
    assert await store.claim() == [attrs.evolve(claim, attempts=2)]
    await store.retry_later(claim.id, delay_s=0, error="connection refused", status=None)
    assert (await store.get(claim.id)).last_status is None
    with pytest.raises(ValueError, match="delay_s"):
        await store.retry_later(claim.id, delay_s=-1, error="x")


async def test_mark_failed_is_permanent_until_requeued(store: Store, clock: FakeClock) -> None:
    await store.enqueue([report(1)])
    [claim] = await store.claim()
    await store.mark_failed(claim.id, error="422: UUT serial number missing", status=422)
    got = await store.get(claim.id)
    assert (got.state, got.last_error, got.last_status) == (
        QueueState.FAILED,
        "422: UUT serial number missing",
        422,
    )
    clock.advance(DAY * 30)
    assert await store.claim() == []
    assert await store.next_due_at() is None


async def test_release_returns_claims_as_if_never_claimed(store: Store, clock: FakeClock) -> None:
    await store.enqueue_batch([([report(n)], None) for n in range(1, 4)])
    [first, second, third] = await store.claim(3)
    await store.retry_later(first.id, delay_s=0, error="503 busy", status=503)
    clock.advance(1)
    [first] = await store.claim()
    assert first.attempts == 2
    await store.mark_done(third.id, status=200)
    clock.advance(5)
    seen = store.generation
    # third is done and "missing" unknown: both are skipped, not errors.
    assert await store.release([first.id, second.id, third.id, "missing"]) == 2
    assert store.generation == seen + 1
    got = await store.get(first.id)
    # The attempt is not counted and the schedule and last answer are untouched.
    assert (
        got.state,
        got.attempts,
        got.next_attempt_at,
        got.last_error,
        got.last_status,
        got.updated_at,
    ) == (QueueState.PENDING, 1, T0, "503 busy", 503, T0 + 6)
    assert (await store.get(second.id)).attempts == 0
    assert (await store.get(third.id)).state is QueueState.DONE
    # Due at once, oldest first again.
    assert [c.id for c in await store.claim(5)] == [first.id, second.id]


async def test_release_of_nothing_does_nothing(store: Store) -> None:
    seen = store.generation
    assert await store.release([]) == 0
    await store.enqueue([report(1)])
    assert await store.release([report(1).id]) == 0  # pending, not uploading
    assert store.generation == seen + 1  # only the enqueue


async def test_requeue_one(store: Store, clock: FakeClock) -> None:
    await store.enqueue([report(1)])
    [claim] = await store.claim()
    await store.mark_failed(claim.id, error="400", status=400)
    clock.advance(100)
    await store.requeue(claim.id)
    got = await store.get(claim.id)
    assert (got.state, got.attempts, got.next_attempt_at) == (QueueState.PENDING, 0, T0 + 100)
    assert got.last_error == "400"  # kept until the next attempt replaces it
    assert [c.attempts for c in await store.claim()] == [1]
    await store.mark_done(claim.id)
    with pytest.raises(StoreError, match="is done"):
        await store.requeue(claim.id)
    with pytest.raises(NotFoundError):
        await store.requeue("missing")


async def test_requeue_makes_a_waiting_pending_report_due_now(
    store: Store, clock: FakeClock
) -> None:
    await store.enqueue([report(1)])
    [claim] = await store.claim()
    await store.retry_later(claim.id, delay_s=300, error="timeout")
    await store.requeue(claim.id)
    assert await store.next_due_at() == clock.now
    assert [c.id for c in await store.claim()] == [claim.id]


async def test_make_due_brings_waiting_reports_forward_and_keeps_attempts(
    store: Store, clock: FakeClock
) -> None:
    await store.enqueue_batch([([report(n)], None) for n in range(4)])
    waiting, failed, uploading, due_already = await store.claim(4)
    await store.retry_later(waiting.id, delay_s=300, error="503")
    await store.mark_failed(failed.id, error="400", status=400)
    await store.retry_later(due_already.id, delay_s=0, error="503")
    clock.advance(1)
    seen = store.generation
    count = await store.make_due([waiting.id, failed.id, uploading.id, due_already.id, "gone"])
    assert count == 1  # only the waiting pending one; the others are left alone
    assert store.generation != seen  # uploaders waiting for work wake up
    got = await store.get(waiting.id)
    assert (got.state, got.attempts, got.next_attempt_at) == (QueueState.PENDING, 1, clock.now)
    assert (await store.get(failed.id)).state is QueueState.FAILED
    assert (await store.get(uploading.id)).state is QueueState.UPLOADING
    assert await store.make_due([]) == 0


async def test_requeue_and_delete_many_name_the_ids_not_found(
    store: Store, clock: FakeClock
) -> None:
    await store.enqueue_batch([([report(n)], None) for n in range(3)])
    first, second, third = await store.claim(3)
    await store.mark_failed(first.id, error="400", status=400)
    await store.mark_failed(second.id, error="400", status=400)
    assert await store.requeue_many([first.id, "gone", second.id]) == ["gone"]
    assert (await store.get(first.id)).state is QueueState.PENDING
    assert (await store.get(second.id)).state is QueueState.PENDING
    assert await store.delete_many([third.id, "gone"]) == ["gone"]
    with pytest.raises(NotFoundError):
        await store.get(third.id)


async def test_requeue_all_failed(store: Store, clock: FakeClock) -> None:
    await store.enqueue_batch([([report(n)], None) for n in range(5)])
    claims = await store.claim(5)
    for c in claims[:3]:
        await store.mark_failed(c.id, error="bad", status=400)
    await store.mark_done(claims[3].id)
    clock.advance(5)
    assert await store.requeue_failed() == 3
    stats = await store.stats()
    assert (stats.pending, stats.uploading, stats.done, stats.failed) == (3, 1, 1, 0)
    assert await store.requeue_failed() == 0


async def test_delete(store: Store) -> None:
    await store.enqueue([report(1)], source(1))
    await store.delete(report(1).id)
    with pytest.raises(NotFoundError):
        await store.get(report(1).id)
    with pytest.raises(NotFoundError):
        await store.delete(report(1).id)
    # The source stays known: deleting a report must not let its file be queued again.
    assert (await store.enqueue([report(1)], source(1))).duplicate


async def test_delete_while_uploading_then_outcome_is_not_found(store: Store) -> None:
    await store.enqueue([report(1)])
    [claim] = await store.claim()
    await store.delete(claim.id)
    with pytest.raises(NotFoundError):
        await store.mark_done(claim.id)


# --- purge, stats, next due ------------------------------------------------------------


async def test_purge_done_by_age(db_path: Path, clock: FakeClock) -> None:
    async with await Store.open(db_path, clock=clock) as store:
        await store.enqueue_batch([([report(n)], None) for n in range(4)])
        claims = await store.claim(3)
        await store.mark_done(claims[0].id)  # done at T0
        clock.advance(DAY)
        await store.mark_done(claims[1].id)  # done at T0 + 1 day
        await store.mark_failed(claims[2].id, error="x")  # failed rows are never purged
        clock.advance(DEFAULT_RETENTION_S - DAY)  # now T0 + 7 days
        assert await store.purge_done() == 0  # exactly at the limit: kept
        clock.advance(1)
        assert await store.purge_done() == 1
        assert [r.id for r in await store.list_reports(state=QueueState.DONE)] == [claims[1].id]
        assert await store.purge_done(older_than_s=0) == 1
        stats = await store.stats()
        assert (stats.pending, stats.done, stats.failed) == (1, 0, 1)
    async with await Store.open(db_path, clock=clock, retention_s=60) as store:
        [claim] = await store.claim()
        await store.mark_done(claim.id)
        clock.advance(61)
        assert await store.purge_done() == 1


async def test_stats(store: Store, clock: FakeClock) -> None:
    assert await store.stats() == QueueStats(
        pending=0, uploading=0, done=0, failed=0, oldest_pending_age_s=None, total_bytes=0
    )
    await store.enqueue([report(1, body=b"a" * 100)])
    clock.advance(10)
    await store.enqueue([report(2, body=b"b" * 200), report(3, body=b"c" * 300)])
    await store.enqueue([report(4, body=b"d" * 400)])
    clock.advance(5)
    claims = await store.claim(2)  # reports 1 and 2
    await store.mark_done(claims[1].id)
    [claim3] = await store.claim()
    await store.mark_failed(claim3.id, error="x")
    stats = await store.stats()
    assert stats == QueueStats(
        pending=1,
        uploading=1,
        done=1,
        failed=1,
        # report 1 is uploading, created at T0: still counts as waiting.
        oldest_pending_age_s=15.0,
        total_bytes=1000,
    )
    assert stats.total == 4
    assert stats.count(QueueState.FAILED) == 1
    await store.mark_done(claims[0].id)
    assert (await store.stats()).oldest_pending_age_s == 5.0


async def test_stats_asked_again_follow_every_write_and_the_clock(
    store: Store, db_path: Path, clock: FakeClock
) -> None:
    # Stats are remembered between writes (a status poll on an idle queue reads nothing):
    # after each kind of write they must equal a fresh read of the file.
    def fresh() -> QueueStats:
        with QueueReader.open(db_path) as reader:
            return reader.stats(clock())

    async def same() -> None:
        assert await store.stats() == fresh()
        assert await store.stats() == fresh()  # the remembered answer

    await same()
    await store.enqueue_batch([([report(n)], source(n)) for n in range(5)])
    await same()
    clock.advance(30)
    await same()  # the oldest report's age moves with the clock, without a write
    assert (await store.stats()).oldest_pending_age_s == 30.0
    claims = await store.claim(4)
    await same()
    await store.mark_done(claims[0].id)
    await store.retry_later(claims[1].id, delay_s=5, error="x")
    await same()
    await store.mark_failed(claims[2].id, error="x")
    await same()
    await store.release([claims[3].id])
    await same()
    assert await store.requeue_failed() == 1
    await same()
    await store.delete(claims[1].id)
    await same()
    clock.advance(1)
    assert await store.purge_done(older_than_s=0) == 1
    await same()
    assert (await store.stats()).total == 3


async def test_next_due_at(store: Store, clock: FakeClock) -> None:
    assert await store.next_due_at() is None
    await store.enqueue([report(1)])
    clock.advance(3)
    await store.enqueue([report(2)])
    assert await store.next_due_at() == T0
    [claim] = await store.claim()
    assert await store.next_due_at() == T0 + 3  # uploading rows are not "due"
    await store.retry_later(claim.id, delay_s=1, error="x")  # due at T0 + 4
    assert await store.next_due_at() == T0 + 3
    clock.advance(1)
    assert len(await store.claim(2)) == 2
    assert await store.next_due_at() is None


async def test_wall_clock_stepping_back_does_not_strand_reports(
    store: Store, clock: FakeClock
) -> None:
    await store.enqueue([report(1)])
    [claim] = await store.claim()
    await store.retry_later(claim.id, delay_s=60, error="timeout")
    clock.advance(-10 * 365 * DAY)  # the RTC was reset
    assert await store.next_due_at() == clock.now
    assert [c.id for c in await store.claim()] == [claim.id]


async def test_retry_later_clamps_to_max_delay(db_path: Path, clock: FakeClock) -> None:
    async with await Store.open(db_path, clock=clock, max_delay_s=100) as store:
        await store.enqueue([report(1)])
        [claim] = await store.claim()
        await store.retry_later(claim.id, delay_s=1e6, error="x")
        assert await store.next_due_at() == T0 + 100


# --- listing and search ----------------------------------------------------------------


async def test_list_newest_first_with_paging(store: Store, clock: FakeClock) -> None:
    for n in range(7):
        await store.enqueue([report(n)])
        clock.advance(1)
    ids = [r.id for r in await store.list_reports()]
    assert ids == [report(n).id for n in reversed(range(7))]
    page1 = await store.list_reports(limit=3)
    page2 = await store.list_reports(limit=3, offset=3)
    page3 = await store.list_reports(limit=3, offset=6)
    assert [r.id for r in page1 + page2 + page3] == ids
    assert await store.list_reports(offset=7) == []
    assert all(r.body is None for r in page1)
    with pytest.raises(ValueError, match="limit"):
        await store.list_reports(limit=-1)


async def test_same_second_reports_list_in_reverse_insertion_order(store: Store) -> None:
    await store.enqueue_batch([([report(n)], None) for n in range(3)])
    assert [r.id for r in await store.list_reports()] == [report(n).id for n in (2, 1, 0)]


async def test_list_filters_by_state_and_serial_number(store: Store, clock: FakeClock) -> None:
    sns = ["ABC-001", "abc-002", "XYZ-003", "A%C_1", "AxC-1"]
    for n, sn in enumerate(sns):
        await store.enqueue([report(n, sn=sn)])
        clock.advance(1)
    [claim] = await store.claim()
    await store.mark_failed(claim.id, error="x")

    async def sns_of(**kwargs: object) -> list[str]:
        return [r.sn for r in await store.list_reports(**kwargs)]  # type: ignore[arg-type]

    assert await sns_of(sn="abc") == ["abc-002", "ABC-001"]
    assert await sns_of(sn="C-00") == ["abc-002", "ABC-001"]
    assert await sns_of(sn="%") == ["A%C_1"]  # matched literally, not as a wildcard
    assert await sns_of(sn="_") == ["A%C_1"]
    assert await sns_of(state=QueueState.FAILED) == ["ABC-001"]
    assert await sns_of(state=QueueState.PENDING, sn="abc") == ["abc-002"]
    assert await sns_of(state=QueueState.DONE) == []
    assert await sns_of(sn="") == list(reversed(sns))


async def test_get_unknown_id(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no report with id nope"):
        await store.get("nope")


# --- wake-up ---------------------------------------------------------------------------


async def test_wait_enqueued_wakes_on_enqueue_and_requeue_only(store: Store) -> None:
    woke: list[int] = []

    async def waiter(seen: int) -> None:
        woke.append(await store.wait_enqueued(seen))

    async with trio.open_nursery() as nursery:
        seen = store.generation
        nursery.start_soon(waiter, seen)
        await trio.testing.wait_all_tasks_blocked()
        await store.enqueue([report(1)], source(1))
        await trio.testing.wait_all_tasks_blocked()
        assert woke == [seen + 1]

        seen = store.generation
        nursery.start_soon(waiter, seen)
        await trio.testing.wait_all_tasks_blocked()
        # Neither a duplicate source nor an upload outcome makes anything due now.
        await store.enqueue([report(2)], source(1))
        [claim] = await store.claim()
        await store.mark_failed(claim.id, error="x")
        await trio.testing.wait_all_tasks_blocked()
        assert woke == [seen]
        await store.requeue(claim.id)
        await trio.testing.wait_all_tasks_blocked()
        assert woke == [seen, seen + 1]


async def test_wait_enqueued_returns_at_once_if_something_was_queued_since(
    store: Store,
) -> None:
    seen = store.generation
    await store.enqueue([report(1)])
    with trio.fail_after(1):
        assert await store.wait_enqueued(seen) == seen + 1


# --- crash recovery --------------------------------------------------------------------


async def test_uploading_reports_return_to_pending_at_open(
    db_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with await Store.open(db_path, clock=clock) as store:
        await store.enqueue_batch([([report(n)], None) for n in range(3)])
        claims = await store.claim(2)
        await store.mark_done(claims[0].id)
        # The process "dies" here with claims[1] in flight: nothing records an outcome.
    clock.advance(60)
    async with await Store.open(db_path, clock=clock) as store:
        got = await store.get(claims[1].id)
        assert (got.state, got.attempts, got.updated_at) == (QueueState.PENDING, 1, T0 + 60)
        stats = await store.stats()
        assert (stats.pending, stats.uploading, stats.done) == (2, 0, 1)
        assert [c.attempts for c in await store.claim(5)] == [2, 1]
    assert "1 report(s) were being uploaded" in caplog.text


# --- housekeeping task -----------------------------------------------------------------


async def test_run_purges_periodically(store: Store, clock: FakeClock) -> None:
    from functools import partial

    # A real (short) period: the purge runs on the store's worker thread, which a mock
    # trio clock would jump past. Each round makes a row old enough only after the
    # previous purge was seen, so only a purge that runs again can remove it.
    async def purged(report_id: str) -> None:
        with trio.fail_after(5):
            while (await store.stats()).done:
                await trio.sleep(0.01)
        with pytest.raises(NotFoundError):
            await store.get(report_id)

    async def done_and_aged(n: int) -> str:
        await store.enqueue([report(n)])
        [claim] = await store.claim()
        await store.mark_done(claim.id)
        clock.advance(DEFAULT_RETENTION_S + 1)
        return claim.id

    first = await done_and_aged(1)
    async with trio.open_nursery() as nursery:
        started = await nursery.start(partial(store.run, purge_interval_s=0.05))
        assert started is store
        await purged(first)  # the first purge runs at start
        for n in (2, 3):
            await purged(await done_and_aged(n))
        nursery.cancel_scope.cancel()


# --- read-only access ------------------------------------------------------------------


async def test_reader_sees_committed_rows_while_the_store_is_open(
    store: Store, db_path: Path, clock: FakeClock
) -> None:
    await store.enqueue([report(1), report(2)], source(1))
    [claim] = await store.claim()
    with QueueReader.open(db_path) as reader:
        stats = reader.stats(clock.now + 1)
        assert (stats.pending, stats.uploading, stats.oldest_pending_age_s) == (1, 1, 1.0)
        assert [r.id for r in reader.list_reports(state=QueueState.UPLOADING)] == [claim.id]
        assert reader.get(claim.id).body == report(1).body
        with pytest.raises(NotFoundError):
            reader.get("missing")
        await store.enqueue([report(3)])
        assert reader.stats(clock.now).pending == 2  # a new read sees the new commit


def test_reader_refuses_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no queue database at"):
        QueueReader.open(tmp_path / "missing.db")
    (tmp_path / "garbage.db").write_bytes(b"garbage" * 100)
    with pytest.raises(StoreError, match="cannot read"):
        QueueReader.open(tmp_path / "garbage.db")
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")  # a valid, empty SQLite database
    with pytest.raises(StoreError, match="schema 0"):
        QueueReader.open(empty)


async def test_reader_never_writes(db_path: Path) -> None:
    async with await Store.open(db_path) as store:
        await store.enqueue([report(1)])
        await store.claim()
    before = {p.name: p.read_bytes() for p in db_path.parent.iterdir()}
    with QueueReader.open(db_path) as reader:
        assert reader.stats(T0).uploading == 1  # no crash recovery in read-only mode
    after = {p.name: p.read_bytes() for p in db_path.parent.iterdir()}
    assert before[db_path.name] == after[db_path.name]


# --- durability of upload bookkeeping --------------------------------------------------


async def test_upload_bookkeeping_is_relaxed_but_enqueues_stay_fully_synced(
    store: Store,
) -> None:
    def synchronous(conn: apsw.Connection) -> int:
        value = conn.execute("PRAGMA synchronous").get
        assert isinstance(value, int)
        return value

    full, normal = 2, 1
    seen: list[int] = []
    original = store_module._transition

    def spy_transition(conn: apsw.Connection, *args: object) -> None:
        seen.append(synchronous(conn))
        original(conn, *args)  # type: ignore[arg-type]

    await store.enqueue([report(1)], source(1))
    await store.enqueue([report(2)], source(2))
    assert await store._call("check", synchronous) == full
    store_module._transition = spy_transition  # type: ignore[assignment]
    try:
        # The wrapper is applied at call time, so the spy sees the setting in force.
        claims = await store.claim(2)
        await store.mark_done(claims[0].id, status=200)
        await store.retry_later(claims[1].id, delay_s=0, error="503", status=503)
    finally:
        store_module._transition = original
    assert seen == [normal, normal]
    # ...and every operation puts FULL back for the enqueues that follow.
    assert await store._call("check", synchronous) == full
    await store.enqueue([report(3)], source(3))
    assert (await store.stats()).pending == 2
