"""Row 1 of the fault matrix at its full size: kill -9 at random moments, 1,000 times,
then drain: 0 acknowledged reports lost, no source queued twice, duplicates at the server
only for uploads in flight at a kill. The default run's version (20 rounds) is
``tests/integration/test_serve.py::test_kill_9_loop_loses_nothing_and_queues_nothing_twice``."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from tests.integration.faults import oracle
from tests.integration.harness import Instance, running, stop

pytestmark = [pytest.mark.slow, pytest.mark.long]

ROUNDS = int(os.environ.get("PYWATS_KILL_ROUNDS", "1000"))
WORKERS = 5


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
