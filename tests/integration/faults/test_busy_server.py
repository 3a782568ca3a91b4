"""Rows 4 and 5 of the fault matrix: a busy server (429 with ``Retry-After``, 503),
resets and slow answers past the read timeout. Nothing is sent before the server's
``Retry-After``; everything is retried with the same id; 0 lost."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from tests.integration.faults import oracle
from tests.integration.harness import Instance, running, stop, wait_for

pytestmark = pytest.mark.slow


def stamp(line: str) -> float:
    """The time of a service log line (ISO 8601 at its start)."""
    return datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()


def received_at(receiver_db: Path) -> list[float]:
    with contextlib.closing(sqlite3.connect(receiver_db)) as conn:
        rows = conn.execute("select received_at from reports").fetchall()
    return [datetime.fromisoformat(r[0]).timestamp() for r in rows]


def hit(inst: Instance, ids: set[str]) -> set[str]:
    """The errors of those of ``ids`` that got a transient failure (waiting for a retry)."""
    with contextlib.closing(sqlite3.connect(f"file:{inst.db()}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "select id, last_error from reports where last_error is not null"
        ).fetchall()
    return {error for report_id, error in rows if report_id in ids}


def test_retry_after_is_obeyed(tmp_path: Path) -> None:
    args = "--fail-first", "2", "--fail-first-status", "429", "--retry-after", "1"
    with oracle.receiving(tmp_path / "rx.db", *args) as rx:
        inst = Instance(tmp_path, "ict", server_url=rx.url, workers=1)
        ids = set(inst.drop(10))
        with running(inst.serve()) as proc:
            inst.wait_ready()
            oracle.drained(inst, rx, ids, timeout=60)
            ids |= oracle.fresh_file_flows(inst, rx, start=100)
            assert stop(proc) == 0
        verdict = oracle.check(inst, rx, ids)
        held = oracle.log_lines(inst.log(), r"answered 429 .*new uploads wait")
        stats = rx.stats()
    assert stats["failed_injected"] == 2
    assert held, "the hold is logged"
    # No report reached the server before the first 429's Retry-After ran out (the
    # retry backoff alone is 0.05-0.5 s in this instance: it would have).
    first_hold = stamp(held[0])
    assert min(received_at(tmp_path / "rx.db")) >= first_hold + 1.0 - 0.05
    assert verdict.duplicates == 0


def test_503_resets_and_slow_answers_are_retried_with_the_same_ids(tmp_path: Path) -> None:
    with oracle.receiving(tmp_path / "rx.db", "--seed", "5") as rx:
        inst = Instance(tmp_path, "ict", server_url=rx.url, workers=3)
        url_line = f'url = "{rx.url}"\n'
        inst.config.write_text(
            inst.config.read_text().replace(url_line, f"{url_line}read_timeout_s = 0.5\n")
        )
        ids: set[str] = set()
        errors: set[str] = set()
        with running(inst.serve()) as proc:
            inst.wait_ready()
            # 5xx, then answers lost, then answers slower than the read timeout.
            phases = (
                {"fail_rate": 0.3, "fail_status": 503},
                {"drop_rate": 0.3},
                {"latency_s": 0.8},
            )
            for n, faults in enumerate(phases):
                rx.set_faults(**faults)
                batch = set(inst.drop(30, start=n * 100))
                ids |= batch
                errors |= wait_for(
                    lambda b=batch: hit(inst, b),  # type: ignore[misc]
                    timeout=30,
                    what=f"faults {faults}",
                )
                rx.set_faults()  # heal: the retries go through
                oracle.drained(inst, rx, batch, timeout=60)
            ids |= oracle.fresh_file_flows(inst, rx, start=1000)
            assert stop(proc) == 0
        verdict = oracle.check(inst, rx, ids)
        log = inst.log()
    assert verdict.received == len(ids)
    # The three faults, named: busy, answer lost, read timeout enforced.
    assert any(e.startswith("503 Service Unavailable") for e in errors), errors
    assert any("closed the connection without answering" in e for e in errors), errors
    assert any("no answer within 0.5 s" in e for e in errors), errors
    assert "Traceback" not in log
