"""Salvage from a damaged queue file: real queues written by the Store, damaged on disk
(bytes stamped over pages, the file cut short), then opened again or salvaged by hand."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import apsw
import pytest

from pywats import salvage
from pywats.store import NewReport, QueueState, SourceFile, Store

PAGE = 4096


def report(n: int) -> NewReport:
    return NewReport(
        id=f"00000000-0000-4000-8000-{n:012d}",
        body=bytes([n % 251]) * 3000,  # one page or so each: damage hits a few rows
        pn="PN-1",
        sn=f"SN{n:05d}",
        result="Passed",
        start="2024-05-01T10:00:00+02:00",
        converter="wsjf",
    )


def source(n: int) -> SourceFile:
    return SourceFile(hash=f"sha-{n}", path=f"/data/in/f{n}.json", size=10, mtime=0.0)


async def make_queue(path: Path, n: int, *, failed: int = 0, done: int = 0) -> None:
    """``n`` reports: the first ``done`` uploaded, the next ``failed`` rejected, the rest
    pending (one of those claimed: uploading when the "service" stopped)."""
    async with await Store.open(path) as store:
        for i in range(n):
            await store.enqueue([report(i)], source(i))
        for _ in range(done):
            [claim] = await store.claim()
            await store.mark_done(claim.id, status=200)
        for _ in range(failed):
            [claim] = await store.claim()
            await store.mark_failed(claim.id, error="400 bad", status=400)
        await store.claim()


def table_pages(path: Path) -> list[int]:
    """Page numbers of the reports table's leaves (where the rows are), from ``dbstat``."""
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = 'reports' AND pagetype = 'leaf' ORDER BY pageno"
        ).fetchall()
    finally:
        conn.close()
    return [p for (p,) in rows if isinstance(p, int)]


def stamp(path: Path, page: int) -> None:
    with path.open("r+b") as f:
        f.seek((page - 1) * PAGE)
        f.write(b"\xa5" * PAGE)


async def test_damaged_pages_lose_only_their_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "queue.db"
    await make_queue(db, 60, failed=5, done=10)
    leaves = table_pages(db)
    assert len(leaves) > 10
    for page in (leaves[3], leaves[20]):
        stamp(db, page)
    caplog.set_level(logging.WARNING, "pywats.store")
    async with await Store.open(db) as store:
        stats = await store.stats()
        got = {r.id: r for r in await store.list_reports(limit=100)}
    # 50 were waiting (45 pending, 1 of them uploading, and 5 failed); two damaged leaves
    # hold a few of them, and every other one is back, with its state.
    assert 40 <= len(got) < 50
    assert stats.failed + stats.pending == len(got)
    assert stats.done == 0
    assert all(r.state in (QueueState.PENDING, QueueState.FAILED) for r in got.values())
    line = next(r.getMessage() for r in caplog.records if "salvaged" in r.getMessage())
    assert f"salvaged {len(got)} of {len(got)} pending/failed reports from" in line
    assert "corrupt-" in line
    unreadable = int(line.rsplit("(", 1)[1].split()[0])
    assert 1 <= unreadable <= 12  # the rows on two damaged pages, whatever their state


async def test_salvaged_reports_keep_id_body_attempts_and_are_claimed(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    await make_queue(db, 12, failed=2)
    stamp(db, table_pages(db)[-1])  # the newest rows: report 11 among them
    async with await Store.open(db) as store:
        failed = await store.list_reports(state=QueueState.FAILED)
        assert [r.attempts for r in failed] == [1, 1]
        assert all(r.last_error == "400 bad" for r in failed)
        claims = await store.claim(100)
        assert claims
        assert all(c.body == report(int(c.id[-12:])).body for c in claims)
        # The uploading one was pending when the service stopped: claimed again (its
        # attempt kept), and the sources came along: a known file is not queued twice.
        assert max(c.attempts for c in claims) == 2
        assert (await store.enqueue([report(5)], source(5))).duplicate
        # A file whose report was lost is not taken for queued: it can be queued again.
        assert not (await store.enqueue([report(11)], source(11))).duplicate


async def test_salvage_by_hand_skips_what_is_queued_already(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    await make_queue(db, 20)
    aside = tmp_path / "old.db"
    shutil.copy(db, aside)
    async with await Store.open(tmp_path / "new.db") as store:
        first = await store.salvage(aside)
        again = await store.salvage(aside)
    assert (first.salvaged, first.found, first.unreadable) == (20, 20, 0)
    assert (again.salvaged, again.found) == (0, 20)


async def test_file_cut_short_salvages_the_part_that_is_left(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    await make_queue(db, 60)
    with db.open("r+b") as f:
        f.truncate(db.stat().st_size // 2)
    found = salvage.read(db)
    assert 10 < len(found.reports) < 60
    # An index that still reads counts the rows the lost half held; else nobody can.
    assert found.unreadable is None or len(found.reports) + found.unreadable == 60
    async with await Store.open(tmp_path / "new.db") as store:
        result = await store.salvage(db)
    assert result.salvaged == len(found.reports)
    assert (await store_count(tmp_path / "new.db")) == len(found.reports)


async def store_count(path: Path) -> int:
    async with await Store.open(path) as store:
        return (await store.stats()).pending


def test_not_a_database_reads_nothing(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 1000)
    found = salvage.read(junk)
    assert found.reports == ()
    assert found.problem is not None


async def test_queue_salvage_command(tmp_path: Path) -> None:
    old = tmp_path / "queue.db.corrupt-20240501T100000Z"
    await make_queue(old, 8)
    stamp(old, table_pages(old)[2])
    new = tmp_path / "queue.db"
    await make_queue(new, 0)
    run = [sys.executable, "-m", "pywats.cli", "queue", "salvage", str(old), "--db", str(new)]
    done = subprocess.run(run, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "salvaged 7 of 7 pending/failed reports from" in done.stdout
    assert "(1 unreadable)" in done.stdout
    assert "salvaged" not in done.stderr  # said once, on stdout
    again = subprocess.run(run, capture_output=True, text=True, timeout=60, check=False)
    assert "salvaged 0 of 7" in again.stdout
    async with await Store.open(new) as store:
        assert (await store.stats()).pending == 7
