"""Row 16 of the fault matrix: instances side by side under one user, each with its own
queue, lock, socket and watches; one more start on a state directory in use is refused
cleanly. (Two instances and the refused second start are also in
``tests/integration/test_serve.py``; this is the matrix's size: 8 with ``PYWATS_LONG=1``.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import LONG_TESTS
from tests.integration.faults import oracle
from tests.integration.harness import Instance, running, stop

pytestmark = pytest.mark.slow

INSTANCES = 8 if LONG_TESTS else 3
FILES = 30


def test_instances_side_by_side_are_isolated_and_one_more_is_refused(tmp_path: Path) -> None:
    with oracle.receiving(tmp_path / "rx.db") as rx:
        insts = [Instance(tmp_path, f"st{n}", server_url=rx.url) for n in range(INSTANCES)]
        ids = {inst.name: set(inst.drop(FILES, start=n * 1000)) for n, inst in enumerate(insts)}
        procs = [inst.serve() for inst in insts]
        try:
            for inst in insts:
                inst.wait_ready()
            # One more on the first one's state directory: refused, the first unharmed.
            with running(insts[0].serve()) as extra:
                assert extra.wait(timeout=30) == 1
            assert "already running" in insts[0].log()
            for inst in insts:
                oracle.drained(inst, rx, ids[inst.name], timeout=120)
            for n, inst in enumerate(insts):
                ids[inst.name] |= oracle.fresh_file_flows(inst, rx, start=n * 1000 + 500)
            for proc in procs:
                assert stop(proc) == 0
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)
        for inst in insts:
            # Each queue holds its own reports and no one else's.
            assert set(oracle.queued(inst)) == ids[inst.name]
        everything = set().union(*ids.values())
        assert rx.ids() == everything
        assert rx.stats()["duplicates"] == 0
