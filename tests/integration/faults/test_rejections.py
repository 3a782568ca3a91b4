"""Row 7 of the fault matrix: permanent rejections (400, 413, 422). Exactly the rejected
reports end ``failed`` with the server's message, each sent once; the rest flow past them."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from tests.integration.faults import oracle
from tests.integration.harness import Instance, report_bytes, running, stop

pytestmark = pytest.mark.slow

BATCH = 40
MAX_BODY = 16_384


def drop_big(inst: Instance, count: int, *, start: int) -> set[str]:
    """Reports larger than the receiver takes (413)."""
    ids = set()
    for index in range(start, start + count):
        report_id, data = report_bytes(index)
        doc = json.loads(data)
        doc["miscInfos"].extend(
            {"description": f"pad{n}", "text": "x" * 90} for n in range(MAX_BODY // 90 + 10)
        )
        tmp = inst.watch / f".big{index}.tmp"
        tmp.write_text(json.dumps(doc))
        tmp.rename(inst.watch / f"big{index:07d}.json")
        ids.add(report_id)
    return ids


def failed_rows(inst: Instance) -> dict[str, tuple[int, int, str]]:
    """id -> (attempts, last_status, last_error) of every failed row."""
    with contextlib.closing(sqlite3.connect(f"file:{inst.db()}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "select id, attempts, last_status, last_error from reports where state = 'failed'"
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_rejected_reports_fail_once_and_the_rest_flow(tmp_path: Path) -> None:
    args = "--max-body-bytes", str(MAX_BODY), "--seed", "7"
    with oracle.receiving(tmp_path / "rx.db", *args) as rx:
        inst = Instance(tmp_path, "ict", server_url=rx.url)
        ids: set[str] = set()
        with running(inst.serve()) as proc:
            inst.wait_ready()
            for n, status in enumerate((422, 400)):
                rx.set_faults(fail_rate=0.25, fail_status=status)
                batch = set(inst.drop(BATCH, start=n * BATCH))
                oracle.wait_settled(inst, batch)
                ids |= batch
            rx.set_faults()
            big = drop_big(inst, 3, start=1000)
            ids |= big | set(inst.drop(5, start=2000))
            oracle.wait_settled(inst, ids)
            ids |= oracle.fresh_file_flows(inst, rx, start=3000)
            assert stop(proc) == 0
        failed = failed_rows(inst)
        oracle.check(inst, rx, ids, failed=set(failed))
        stats = rx.stats()
    # Exactly the rejected ones: every injected failure and every 413, nothing else.
    assert len(failed) == stats["failed_injected"] + stats["rejected"]
    assert stats["rejected"] == len(big)
    assert big <= set(failed)
    assert {status for _, status, _ in failed.values()} == {400, 413, 422}
    # Each sent once: a permanent answer never goes back into the retry loop.
    assert {attempts for attempts, _, _ in failed.values()} == {1}
    assert all(error.startswith(str(status)) for _, status, error in failed.values())
    assert stats["duplicates"] == 0
