"""Row 1 of the fault matrix: kill -9 at random moments (during start-up, conversion,
upload or idle), then drain: 0 acknowledged reports lost, no source queued twice,
duplicates at the server only for uploads in flight at a kill. 20 kills by default;
1,000 with ``PYWATS_LONG=1`` (``PYWATS_KILL_ROUNDS`` to change it)."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from tests.integration.faults import oracle
from tests.integration.harness import Instance, ReceiverProcess, running, stop, wait_for

pytestmark = pytest.mark.slow

ROUNDS = int(os.environ.get("PYWATS_KILL_ROUNDS", "1000"))
WORKERS = 5


@pytest.mark.long
def test_kill_9_a_thousand_times_loses_nothing(tmp_path: Path) -> None:
    with oracle.receiving(tmp_path / "rx.db") as rx:
        inst = Instance(tmp_path, "ict", server_url=rx.url, workers=WORKERS)
        rng = random.Random(20261201)
        ids: set[str] = set()
        for round_no in range(ROUNDS):
            ids |= set(inst.drop(5, start=round_no * 5))
            with running(inst.serve()) as proc:
                time.sleep(rng.uniform(0.05, 3.0))
                proc.kill()
                proc.wait(timeout=10)
        with running(inst.serve()) as proc:
            inst.wait_ready()
            oracle.drained(inst, rx, ids, timeout=600)
            ids |= oracle.fresh_file_flows(inst, rx, start=ROUNDS * 5)
            assert stop(proc) == 0
        verdict = oracle.check(inst, rx, ids)
    assert not inst.files_left()
    assert verdict.duplicates <= ROUNDS * WORKERS


def test_kill_9_loop_loses_nothing_and_queues_nothing_twice(
    tmp_path: Path, receiver: ReceiverProcess
) -> None:
    rounds = 20
    inst = Instance(tmp_path, "ict", server_url=receiver.url, workers=5)
    rng = random.Random(20261125)
    ids: dict[str, str] = {}
    kills_in_flight = 0
    for round_no in range(rounds):
        ids.update(inst.drop(10, start=round_no * 10))
        with running(inst.serve()) as proc:
            # Kill at a random moment: during start-up, conversion, upload or idle.
            time.sleep(rng.uniform(0.05, 0.8))
            proc.kill()
            proc.wait(timeout=10)
            kills_in_flight += 1
    with running(inst.serve()) as proc:
        inst.wait_ready()
        wait_for(lambda: set(ids) <= receiver.ids(), timeout=90, what="every report")
        wait_for(lambda: not inst.files_left(), timeout=30, what="the watch folder to empty")
        wait_for(lambda: inst.queue_counts()["done"] == len(ids), timeout=30, what="all rows done")
        assert stop(proc) == 0
    counts = inst.queue_counts()
    # Nothing lost: every report made it; nothing queued twice: one row per source file.
    assert receiver.ids() == set(ids)
    assert sum(counts.values()) == len(ids) == rounds * 10
    assert counts["done"] == len(ids)
    assert sorted(p.name for p in inst.done.iterdir()) == sorted(ids.values())
    # Duplicates at the receiver only for uploads in flight at a kill (at most the workers).
    assert receiver.stats()["duplicates"] <= kills_in_flight * 5
