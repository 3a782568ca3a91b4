"""The power-cut file system of row 2 (``powercut.py``) does what its model says: what
was written and not synced is gone after a cut, what was synced stays, and SQLite in WAL
mode on it keeps exactly its committed transactions (with ``synchronous=FULL``; with
``synchronous=OFF`` it loses them, so the cut really bites)."""

from __future__ import annotations

import mmap
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.integration.faults import powercut
from tests.integration.harness import wait_for

UNAVAILABLE = powercut.unavailable()
pytestmark = pytest.mark.skipif(UNAVAILABLE is not None, reason=UNAVAILABLE or "")


@pytest.fixture
def fs(tmp_path: Path) -> tuple[Path, Path]:
    """(backing folder, mount point); each test mounts and unmounts it itself."""
    return tmp_path / "backing", tmp_path / "mnt"


def write(path: Path, data: bytes, *, sync: bool, mode: str = "wb") -> None:
    with path.open(mode) as out:
        out.write(data)
        out.flush()
        if sync:
            os.fsync(out.fileno())


def test_written_and_not_synced_is_gone_synced_stays(fs: tuple[Path, Path]) -> None:
    backing, mnt = fs
    with powercut.mounted(backing, mnt) as mount:
        write(mnt / "unsynced", b"lost", sync=False)
        write(mnt / "synced", b"kept", sync=True)
        os.mkdir(mnt / "sub")
        write(mnt / "sub" / "synced", b"kept too", sync=True)
        assert (mnt / "unsynced").read_bytes() == b"lost"
        mount.cut()
    with powercut.mounted(backing, mnt):
        # Namespace operations are durable at once: the file is there, its data is not.
        assert (mnt / "unsynced").read_bytes() == b""
        assert (mnt / "synced").read_bytes() == b"kept"
        assert (mnt / "sub" / "synced").read_bytes() == b"kept too"


def test_a_clean_unmount_loses_nothing(fs: tuple[Path, Path]) -> None:
    backing, mnt = fs
    with powercut.mounted(backing, mnt):
        write(mnt / "f", b"written", sync=False)
    with powercut.mounted(backing, mnt) as mount:
        assert (mnt / "f").read_bytes() == b"written"
        mount.cut()  # nothing changed since the remount: nothing to put back
    assert (backing / "f").read_bytes() == b"written"


def test_a_truncate_is_undone(fs: tuple[Path, Path]) -> None:
    backing, mnt = fs
    with powercut.mounted(backing, mnt) as mount:
        write(mnt / "ftruncate", b"0123456789", sync=True)
        write(mnt / "o_trunc", b"abcdefghij", sync=True)
        with (mnt / "ftruncate").open("r+b") as f:
            f.truncate(3)
            f.write(b"xyz")
            f.truncate(20)  # grows again, with zeros
        write(mnt / "o_trunc", b"new", sync=False)  # open(..., "wb") truncates
        assert (mnt / "ftruncate").read_bytes() == b"xyz" + b"\0" * 17
        mount.cut()
    with powercut.mounted(backing, mnt):
        assert (mnt / "ftruncate").read_bytes() == b"0123456789"
        assert (mnt / "o_trunc").read_bytes() == b"abcdefghij"


def test_an_append_after_the_sync_is_all_that_is_lost(fs: tuple[Path, Path]) -> None:
    backing, mnt = fs
    with powercut.mounted(backing, mnt) as mount:
        write(mnt / "log", b"first\n", sync=True)
        write(mnt / "log", b"second\n", sync=True, mode="ab")
        write(mnt / "log", b"third\n", sync=False, mode="ab")
        with (mnt / "log").open("r+b") as f:
            f.write(b"FIRST")  # an overwrite inside the synced part, not synced either
        mount.cut()
    with powercut.mounted(backing, mnt):
        assert (mnt / "log").read_bytes() == b"first\nsecond\n"


def test_a_sync_of_one_file_keeps_nothing_of_another(fs: tuple[Path, Path]) -> None:
    backing, mnt = fs
    with powercut.mounted(backing, mnt) as mount:
        write(mnt / "a", b"a0", sync=True)
        write(mnt / "b", b"b0", sync=True)
        write(mnt / "a", b"a1", sync=False)
        write(mnt / "b", b"b1", sync=True)
        # A hard link is the same file: its sync is the file's.
        os.link(mnt / "b", mnt / "b-link")
        write(mnt / "b-link", b"b2", sync=False, mode="ab")
        mount.cut()
    with powercut.mounted(backing, mnt):
        assert (mnt / "a").read_bytes() == b"a0"
        assert (mnt / "b").read_bytes() == b"b1"
        assert (mnt / "b-link").read_bytes() == b"b1"


def test_a_file_renamed_after_its_write_is_put_back_under_its_new_name(
    fs: tuple[Path, Path],
) -> None:
    backing, mnt = fs
    with powercut.mounted(backing, mnt) as mount:
        write(mnt / "old", b"synced", sync=True)
        with (mnt / "old").open("r+b") as f:
            f.write(b"SYNCED and more")
            os.rename(mnt / "old", mnt / "new")
            f.write(b" after the rename")
        mount.cut()
    with powercut.mounted(backing, mnt):
        assert not (mnt / "old").exists()
        assert (mnt / "new").read_bytes() == b"synced"


def mmap_write(path: Path, data: bytes, *, msync: bool) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        with mmap.mmap(fd, os.fstat(fd).st_size, mmap.MAP_SHARED) as mapped:
            mapped[0 : len(data)] = data
            assert os.pread(fd, len(data), 0) == data  # one page cache for both
            if msync:
                mapped.flush()  # msync(MS_SYNC): on Linux an fsync of the file
    finally:
        os.close(fd)  # the dirty page is written back to the file system here at the latest


def test_a_shared_writable_mmap_works_and_is_lost_unless_synced(fs: tuple[Path, Path]) -> None:
    """What SQLite does with the ``-shm`` file of a WAL database."""
    backing, mnt = fs
    with powercut.mounted(backing, mnt) as mount:
        for name in ("plain", "msynced"):
            write(mnt / name, b"\0" * 8192, sync=True)
        mmap_write(mnt / "plain", b"hello", msync=False)
        mmap_write(mnt / "msynced", b"hello", msync=True)
        assert (backing / "plain").read_bytes()[:5] == b"hello"  # it reached the file system
        mount.cut()
    with powercut.mounted(backing, mnt):
        assert (mnt / "plain").read_bytes() == b"\0" * 8192
        assert (mnt / "msynced").read_bytes() == b"hello" + b"\0" * 8187


SQLITE_WRITER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=" + sys.argv[2])
    conn.execute("PRAGMA cache_size=5")  # the open transaction spills into the WAL
    conn.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v BLOB)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t VALUES (?, randomblob(2000))",
                     [(f"committed-{i}",) for i in range(300)])
    conn.execute("COMMIT")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t VALUES (?, randomblob(2000))",
                     [(f"open-{i}",) for i in range(300)])
    print("ready", flush=True)
    sys.stdin.read()  # killed here, the second transaction open
    """
)


def sqlite_killed_mid_transaction(db: Path, synchronous: str) -> None:
    """A process commits 300 rows, writes 300 more without committing, and is killed."""
    with subprocess.Popen(
        [sys.executable, "-c", SQLITE_WRITER, str(db), synchronous],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        try:
            assert proc.stdout.readline() == "ready\n"
            wal = db.with_name(db.name + "-wal")
            # The open transaction's pages are in the WAL (uncommitted): the cut has
            # something to lose that SQLite must not show anyway.
            assert wal.stat().st_size > 300 * 2000
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)


def rows(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return {k.split("-")[0] for (k,) in conn.execute("SELECT k FROM t")}
    finally:
        conn.close()


def test_sqlite_wal_full_keeps_the_committed_transaction_only(fs: tuple[Path, Path]) -> None:
    backing, mnt = fs
    with powercut.mounted(backing, mnt) as mount:
        sqlite_killed_mid_transaction(mnt / "q.db", "FULL")
        mount.cut()
    with powercut.mounted(backing, mnt):
        assert rows(mnt / "q.db") == {"committed"}
        conn = sqlite3.connect(mnt / "q.db")
        try:
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (300,)
        finally:
            conn.close()


def test_sqlite_with_synchronous_off_loses_its_commit(fs: tuple[Path, Path]) -> None:
    """The control: without the fsync at commit the cut takes the committed rows too."""
    backing, mnt = fs
    with powercut.mounted(backing, mnt) as mount:
        sqlite_killed_mid_transaction(mnt / "q.db", "OFF")
        mount.cut()
    with powercut.mounted(backing, mnt):
        # The table's creation was not synced either; the database is empty, not damaged.
        conn = sqlite3.connect(mnt / "q.db")
        try:
            tables = conn.execute("SELECT name FROM sqlite_master").fetchall()
        finally:
            conn.close()
        assert tables == []


def test_a_cut_unmounts_and_says_what_it_put_back(fs: tuple[Path, Path]) -> None:
    backing, mnt = fs
    with powercut.mounted(backing, mnt) as mount:
        write(mnt / "f", b"x", sync=True)
        mount.cut()
        wait_for(lambda: not os.path.ismount(mnt), timeout=10, what="the mount to go")
        assert not (mnt / "f").exists()  # the bare mount point, not the file system
    assert "power cut, 0 file(s) put back" in mount.log()
