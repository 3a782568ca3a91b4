"""Row 6 of the fault matrix, and issue 12 item 8's log lines: the server stores a report
and then drops the connection instead of answering. The report is sent again with the
same id (0 lost, duplicates counted), and the log says so once per outage, not once per
lost answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import LONG_TESTS
from tests.integration.faults import oracle
from tests.integration.harness import Instance, running, stop

pytestmark = pytest.mark.slow

COUNT = 2000 if LONG_TESTS else 120


def test_lost_answers_are_resent_with_the_same_id_and_logged_once(tmp_path: Path) -> None:
    with oracle.receiving(tmp_path / "rx.db", "--drop-rate", "0.3", "--seed", "12") as rx:
        inst = Instance(tmp_path, "ict", server_url=rx.url, workers=5)
        ids = set(inst.drop(COUNT))
        with running(inst.serve()) as proc:
            inst.wait_ready()
            oracle.drained(inst, rx, ids, timeout=120)
            rx.set_faults()  # healed: the liveness check must not depend on luck
            ids |= oracle.fresh_file_flows(inst, rx, start=COUNT)
            assert stop(proc) == 0
        log = inst.log()
        verdict = oracle.check(inst, rx, ids)
        dropped = rx.stats()["dropped_injected"]
    assert dropped >= COUNT // 10, "the fault was injected"
    assert verdict.duplicates >= dropped  # each lost answer was sent again, same id
    # Before the fix: one WARNING "uploader offline" and one "uploader online" per lost
    # answer (dozens here). Now the lost answers of this short run are one outage.
    offline = oracle.log_lines(log, r"WARNING uploader: uploader offline")
    assert 1 <= len(offline) <= 2, offline
    assert "the server closed the connection without answering" in offline[0]
    online = oracle.log_lines(log, r"INFO uploader: uploader online: .*was offline")
    assert len(online) == len(offline)
    assert "Traceback" not in log
