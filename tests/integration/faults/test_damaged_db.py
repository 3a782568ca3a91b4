"""A damaged queue database (row 13 of the matrix): moved aside at start, every readable
waiting report salvaged into the new queue and uploaded, the rest of the station flows,
and the log says how many were salvaged of how many (``pywats.salvage``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.harness import Instance, ReceiverProcess, running, stop, wait_for
from tests.test_salvage import stamp, table_pages

pytestmark = pytest.mark.slow


def test_a_damaged_queue_is_salvaged_and_its_reports_uploaded(
    tmp_path: Path, receiver: ReceiverProcess
) -> None:
    # No server in the first run: the 60 reports wait in the queue, their files in done.
    inst = Instance(tmp_path, "ict", server_url=None)
    ids = inst.drop(60)
    with running(inst.serve()) as proc:
        inst.wait_ready()
        wait_for(lambda: not inst.files_left(), timeout=60, what="the watch folder to empty")
        assert stop(proc) == 0  # a clean stop: everything is in the database file
    leaves = table_pages(inst.db())
    assert len(leaves) > 4
    stamp(inst.db(), leaves[1])  # outside damage to one page of rows

    text = inst.config.read_text()
    inst.config.write_text(text.replace("[upload]", f'[server]\nurl = "{receiver.url}"\n[upload]'))
    with running(inst.serve()) as proc:
        inst.wait_ready()
        log = wait_for(
            lambda: re.search(
                r"salvaged (\d+) of (\d+) pending/failed reports from (\S+)", inst.log()
            ),
            timeout=30,
            what="the salvage line",
        )
        salvaged, found = int(log.group(1)), int(log.group(2))
        assert Path(log.group(3).rstrip(":")).name.startswith("queue.db.corrupt-")
        assert 40 <= salvaged == found < 60  # one page lost, every other row back
        wait_for(lambda: len(receiver.ids()) >= salvaged, timeout=60, what="salvaged reports")
        # Liveness: a new file still flows.
        fresh = inst.drop(1, start=100)
        wait_for(lambda: set(fresh) <= receiver.ids(), timeout=30, what="a fresh report")
        assert stop(proc) == 0
    got = receiver.ids()
    assert got <= set(ids) | set(fresh)  # nothing the station did not make
    assert len(got & set(ids)) == salvaged
    print(f"\nsalvaged and uploaded {salvaged} of 60 reports after one damaged page")
