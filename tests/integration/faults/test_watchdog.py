"""Row 14 of the fault matrix, as far as one machine without a systemd manager goes: the
``WATCHDOG=1`` pings come from the running service; while it is stalled (here: stopped
with SIGSTOP) none arrive, so systemd's ``WatchdogSec=`` would fire; once it runs again the
pings resume on a fresh grid (no burst of missed pings) and files flow.

Not tested here: systemd killing and restarting the unit (that needs a user manager,
``systemd-run --user``); the recovery after it is row 1's (kill -9) and holds."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.integration.faults import oracle
from tests.integration.harness import Instance, running, stop

pytestmark = pytest.mark.slow

STALL_S = 2.0


def pings(inst: Instance, since: float, until: float) -> list[float]:
    return [t for t, f in inst.notify.snapshot() if f.get("WATCHDOG") == "1" and since < t < until]


def test_a_stalled_service_stops_pinging_and_resumes(tmp_path: Path) -> None:
    with oracle.receiving(tmp_path / "rx.db") as rx:
        inst = Instance(tmp_path, "ict", server_url=rx.url)
        with running(inst.serve(env={"WATCHDOG_USEC": "1000000"})) as proc:
            inst.wait_ready()
            time.sleep(1.0)
            proc.send_signal(signal.SIGSTOP)
            stalled = time.monotonic()
            time.sleep(STALL_S)
            proc.send_signal(signal.SIGCONT)
            resumed = time.monotonic()
            time.sleep(1.6)
            ids = oracle.fresh_file_flows(inst, rx, start=0)
            assert stop(proc) == 0
        oracle.check(inst, rx, ids)
    # Pings every 0.5 s (half of WATCHDOG_USEC); none while stalled (0.1 s for the signal).
    assert pings(inst, stalled + 0.1, resumed) == []
    after = pings(inst, resumed, resumed + 1.6)
    assert 2 <= len(after) <= 5, after  # resumed, on a grid: not the 4 missed ones at once
