"""SIGKILL a process that is queueing reports; nothing it acknowledged may be lost.

The writer (``store_writer.py``) prints a report id only after the commit that holds it
returned. The test kills it at a random moment 20-150 ms after its first id, many rounds
over the same database file, and after every round checks the oracle: every id ever
printed is in the database, the database passes ``integrity_check``, and the one source
file every round tries to queue has exactly one report.
"""

from __future__ import annotations

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


async def run_and_kill(db: Path, seed: int, delay_s: float, stderr_path: Path) -> list[str]:
    """Start the writer, SIGKILL it ``delay_s`` after its first id, return printed ids."""
    output = bytearray()
    first_id = trio.Event()
    with stderr_path.open("wb") as stderr:
        proc = await trio.lowlevel.open_process(
            [sys.executable, str(WRITER), str(db), str(seed)],
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        assert proc.stdout is not None
        stdout = proc.stdout

        async def read_all() -> None:
            async for chunk in stdout:
                output.extend(chunk)
                if b"\n" in output:
                    first_id.set()
            first_id.set()  # EOF: the writer died on its own; the return code shows it

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_all)
                with trio.fail_after(20):
                    await first_id.wait()
                await trio.sleep(delay_s)
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == -signal.SIGKILL, stderr_path.read_text()
    # A line cut off by the kill was never acknowledged; only complete lines count.
    return [line.decode() for line in bytes(output).split(b"\n")[:-1]]


def check_database(db: Path, acknowledged: set[str]) -> int:
    conn = apsw.Connection(str(db))
    try:
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
    with trio.fail_after(ROUNDS * 0.9 + 10):
        for round_no in range(ROUNDS):
            ids = await run_and_kill(
                db, seed=round_no, delay_s=rng.uniform(0.02, 0.15), stderr_path=tmp_path / "err"
            )
            assert ids, "the writer printed nothing before it was killed"
            acknowledged.update(ids)
            rows = check_database(db, acknowledged)
    # The rounds really did work: far more rows than rounds, all kept.
    assert rows >= len(acknowledged) > ROUNDS
