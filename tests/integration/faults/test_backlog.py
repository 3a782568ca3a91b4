"""Row 11 of the fault matrix: a backlog at start-up and a burst into a running
instance. All files found (an inotify overflow is logged and caught up by a scan), memory
bounded, all received. The issue's sizes (10,000 waiting, 20,000 renamed in) run with
``PYWATS_LONG=1``; the default run is a tenth of that."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import LONG_TESTS
from tests.integration.faults import oracle
from tests.integration.harness import Instance, running, stop

pytestmark = pytest.mark.slow

WAITING = 10_000 if LONG_TESTS else 1_000
BURST = 20_000 if LONG_TESTS else 2_000


def test_files_waiting_at_start_all_arrive_with_bounded_memory(tmp_path: Path) -> None:
    with oracle.receiving(tmp_path / "rx.db") as rx:
        inst = Instance(tmp_path, "ict", server_url=rx.url)
        ids = set(inst.drop(WAITING))
        with running(inst.serve()) as proc:
            started = time.monotonic()
            oracle.drained(inst, rx, ids, timeout=300)
            took = time.monotonic() - started
            peak = oracle.rss_mib(proc.pid)
            ids |= oracle.fresh_file_flows(inst, rx, start=WAITING)
            assert stop(proc) == 0
        verdict = oracle.check(inst, rx, ids)
    assert verdict.duplicates == 0
    assert not inst.files_left()
    # Measured: 10,000 in 15-21 s, peak RSS 53 MiB (target T7: <= 150 MiB under backlog).
    assert peak < 150, f"peak RSS {peak:.0f} MiB"
    print(f"{WAITING} files waiting at start: all received in {took:.1f} s, peak {peak:.0f} MiB")


@pytest.mark.long
def test_a_burst_past_the_inotify_queue_is_caught_up(tmp_path: Path) -> None:
    # 20,000 renames overflow max_queued_events (16,384): IN_Q_OVERFLOW, then a scan.
    with oracle.receiving(tmp_path / "rx.db") as rx:
        inst = Instance(tmp_path, "ict", server_url=rx.url)
        with running(inst.serve()) as proc:
            inst.wait_ready()
            ids = set(inst.drop(BURST))
            oracle.drained(inst, rx, ids, timeout=600)
            ids |= oracle.fresh_file_flows(inst, rx, start=BURST)
            assert stop(proc) == 0
        oracle.check(inst, rx, ids)
    assert not inst.files_left()
    assert oracle.log_lines(inst.log(), "overflow"), "the overflow is logged"


def test_a_burst_into_a_running_instance_loses_nothing(tmp_path: Path) -> None:
    count = BURST // 10 if LONG_TESTS else BURST // 2
    with oracle.receiving(tmp_path / "rx.db") as rx:
        inst = Instance(tmp_path, "ict", server_url=rx.url)
        with running(inst.serve()) as proc:
            inst.wait_ready()
            ids = set(inst.drop(count))
            oracle.drained(inst, rx, ids, timeout=300)
            assert stop(proc) == 0
        oracle.check(inst, rx, ids)
    assert not inst.files_left()
