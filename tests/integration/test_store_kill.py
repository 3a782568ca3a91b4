"""SIGKILL a process that is queueing reports; nothing it acknowledged may be lost.

The writer (``store_writer.py``) prints a report id only after the commit that holds it
returned. The test kills it at a random moment 20-150 ms after its first id, many rounds
over the same database file, and after every round checks the oracle: every id ever
printed is in the database, the database passes ``integrity_check``, and the one source
file every round tries to queue has exactly one report.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import apsw
import pytest
import trio

from tests.conftest import LONG_TESTS

WRITER = Path(__file__).with_name("store_writer.py")
ROUNDS = 300 if LONG_TESTS else 30
"""Kills: 30 by default (the suite's ten minutes), 300 with ``PYWATS_LONG=1``."""


class Writers:
    """The writer's fork server (see ``store_writer.py``): one writer at a time."""

    def __init__(self, proc: trio.Process, stderr_path: Path) -> None:
        assert proc.stdin is not None
        assert proc.stdout is not None
        self._proc = proc
        self._stdin = proc.stdin
        self._stdout = proc.stdout
        self._stderr_path = stderr_path
        self._buffer = bytearray()

    async def _line(self) -> str:
        while b"\n" not in self._buffer:
            chunk = await self._stdout.receive_some()
            if not chunk:
                raise AssertionError(f"the fork server ended: {self._stderr_path.read_text()}")
            self._buffer.extend(chunk)
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer[:] = rest
        return line.decode()

    async def run_and_kill(self, seed: int, delay_s: float) -> list[str]:
        """Start a writer, SIGKILL it ``delay_s`` after its first id, return printed ids.

        A line cut off by the kill was never acknowledged: only complete lines count.
        """
        await self._stdin.send_all(f"{seed}\n".encode())
        ids: list[str] = []
        pid = None
        with trio.fail_after(20):
            while pid is None or not ids:
                line = await self._line()
                if line.startswith("pid "):
                    pid = int(line.split()[1])
                elif line.startswith("exit "):
                    raise AssertionError(f"the writer died: {self._stderr_path.read_text()}")
                else:
                    ids.append(line)
        await trio.sleep(delay_s)
        os.kill(pid, signal.SIGKILL)
        with trio.fail_after(20):
            while True:
                line = await self._line()
                # What the killed writer wrote of a line before the server's "exit" was
                # cut off: never acknowledged, so not counted.
                _cut, exit_, code = line.rpartition("exit ")
                if exit_ and code.lstrip("-").isdigit():
                    break
                ids.append(line)
        assert code == str(-signal.SIGKILL), self._stderr_path.read_text()
        return ids


def check_database(db: Path, acknowledged: set[str], *, whole: bool = True) -> int:
    """The oracle after a kill: every acknowledged id is there, the fixed source has one
    report; with ``whole``, ``integrity_check`` passes too. Returns the row count."""
    conn = apsw.Connection(str(db))
    try:
        if whole:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        present = {row[0] for row in conn.execute("SELECT id FROM reports")}
        missing = acknowledged - present
        assert not missing, f"{len(missing)} acknowledged report(s) lost, e.g. {min(missing)}"
        fixed = conn.execute("SELECT count(*) FROM reports WHERE source = '/fixed/source.json'").get
        assert fixed == 1
        return len(present)
    finally:
        conn.close()


@pytest.mark.slow
async def test_sigkill_never_loses_an_acknowledged_report(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    rng = random.Random(20240501)
    acknowledged: set[str] = set()
    rows = 0
    stderr_path = tmp_path / "err"
    with stderr_path.open("wb") as stderr, trio.fail_after(ROUNDS * 0.9 + 10):
        proc = await trio.lowlevel.open_process(
            [sys.executable, str(WRITER), str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        try:
            writers = Writers(proc, stderr_path)
            for round_no in range(ROUNDS):
                ids = await writers.run_and_kill(round_no, delay_s=rng.uniform(0.02, 0.15))
                assert ids, "the writer printed nothing before it was killed"
                acknowledged.update(ids)
                # integrity_check reads the whole file, which grows every round: after
                # every kill of the default 30, after every tenth of the long run's 300.
                whole = round_no < 30 or round_no % 10 == 9 or round_no == ROUNDS - 1
                rows = check_database(db, acknowledged, whole=whole)
        finally:
            proc.kill()
            with trio.CancelScope(shield=True):  # reaped even when the deadline passed
                await proc.wait()
                for pipe in (proc.stdin, proc.stdout):
                    if pipe is not None:
                        await pipe.aclose()
    # The rounds really did work: far more rows than rounds, all kept.
    assert rows >= len(acknowledged) > ROUNDS
