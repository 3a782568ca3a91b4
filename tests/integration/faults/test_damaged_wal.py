"""A damaged write-ahead log after a kill -9: the reports it lost come back from the
done folder (``pywats.recovery``), and the log says how many."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from tests.integration.harness import Instance, ReceiverProcess, running, stop, wait_for

pytestmark = pytest.mark.slow


def test_reports_lost_with_a_cut_wal_are_recovered_from_the_done_folder(
    tmp_path: Path, receiver: ReceiverProcess
) -> None:
    # No server in the first run: every report stays in the queue, so one lost with the
    # WAL can only reach the server through the recovery.
    inst = Instance(tmp_path, "ict", server_url=None)
    ids = inst.drop(50)
    with running(inst.serve()) as proc:
        inst.wait_ready()
        wait_for(lambda: not inst.files_left(), timeout=60, what="the watch folder to empty")
        assert len(list(inst.done.iterdir())) == 50
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    wal = Path(f"{inst.db()}-wal")
    size = wal.stat().st_size
    assert size > 50 * 4096, "the commits must be in the WAL (not checkpointed) to be cut"
    os.truncate(wal, size // 2)

    text = inst.config.read_text()
    inst.config.write_text(text.replace("[upload]", f'[server]\nurl = "{receiver.url}"\n[upload]'))
    with running(inst.serve()) as proc:
        inst.wait_ready()
        wait_for(lambda: set(ids) <= receiver.ids(), timeout=60, what="all 50 reports")
        wait_for(lambda: not inst.files_left(), timeout=30, what="the watch folder to empty")
        assert stop(proc) == 0
    log = inst.log()
    found = re.search(r"(\d+) of 50 file\(s\) filed in .* recovered (\d+): moved back", log)
    assert found, log
    missing, recovered = int(found.group(1)), int(found.group(2))
    assert 0 < missing == recovered < 50
    print(f"\nreports lost with the cut WAL and recovered from the done folder: {recovered}")
    assert sorted(p.name for p in inst.done.iterdir()) == sorted(ids.values())
    # A clean stop leaves no marker: the next start checks nothing.
    assert not Path(f"{inst.db()}.running").exists()
