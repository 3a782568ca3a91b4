"""Row 18 of the fault matrix at process level: the station's wall clock steps (an NTP
step, an RTC reset) while reports wait for a retry. A real ``pywats serve`` runs with its
wall clock (``time.time``) shifted by an offset the test changes at run time (a
``sitecustomize`` on its path, as an NTP step moves CLOCK_REALTIME and not the monotonic
clock). Stepped back a day while the server fails, then the server healed: every report
arrives within seconds, not a day later, none twice, and its timestamps are the file's."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import textwrap
from pathlib import Path

import pytest

from tests.integration.faults import oracle
from tests.integration.harness import Instance, running, stop, wait_for

pytestmark = pytest.mark.slow

COUNT = 20
DAY_S = 86_400.0

SITECUSTOMIZE = """
import time

_real_time = time.time
_offset_file = {offset!r}


def _shifted() -> float:
    try:
        with open(_offset_file) as f:
            offset = float(f.read() or 0)
    except (OSError, ValueError):
        offset = 0.0
    return _real_time() + offset


time.time = _shifted
"""


def retrying(inst: Instance) -> int:
    """Reports that were tried and wait for a later attempt."""
    with contextlib.closing(sqlite3.connect(f"file:{inst.db()}?mode=ro", uri=True)) as conn:
        (count,) = conn.execute(
            "select count(*) from reports where state = 'pending' and attempts > 0"
        ).fetchone()
    return int(count)


def test_a_clock_step_back_strands_no_waiting_report(tmp_path: Path) -> None:
    offset = tmp_path / "clock-offset"
    offset.write_text("0")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        textwrap.dedent(SITECUSTOMIZE.format(offset=str(offset)))
    )
    with oracle.receiving(tmp_path / "rx.db", "--fail-rate", "1.0") as rx:
        inst = Instance(tmp_path, "ict", server_url=rx.url)
        ids = inst.drop(COUNT)
        with running(inst.serve(env={"PYTHONPATH": str(site)})) as proc:
            inst.wait_ready()
            # Reports refused once wait for their retry (the others for the server's hold).
            wait_for(lambda: retrying(inst) >= 3, timeout=60, what="reports waiting to retry")
            offset.write_text(str(-DAY_S))  # the clock steps back a day
            rx.set_faults()  # and the server is well again
            drained_s = oracle.drained(inst, rx, set(ids), timeout=30)
            offset.write_text(str(DAY_S))  # then a day ahead: nothing expires, nothing resent
            fresh = oracle.fresh_file_flows(inst, rx, start=COUNT)
            assert stop(proc) == 0
        verdict = oracle.check(inst, rx, set(ids) | fresh)
    assert verdict.duplicates == 0
    stored = oracle.received(rx)
    for report_id in ids:
        body, _ = stored[report_id]
        assert json.loads(body)["start"].startswith("20")  # the file's own time, kept
    print(f"\nall {COUNT} waiting reports uploaded {drained_s:.1f} s after the clock stepped back")
