"""``pywats serve`` as a real process, with a real ``pywats receiver`` and a fake systemd
notify socket: start-up, READY/STOPPING/WATCHDOG, files in -> reports received, crash
safety under kill -9, graceful stop, one process per instance, isolation, bad config."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.integration.harness import (
    Instance,
    ReceiverProcess,
    running,
    stop,
    wait_for,
)

pytestmark = pytest.mark.slow


def all_received(receiver: ReceiverProcess, ids: set[str]) -> bool:
    return ids <= receiver.ids()


def test_ready_watchdog_and_stopping_on_the_notify_socket(tmp_path: Path) -> None:
    inst = Instance(tmp_path, "ict", server_url=None)
    # WATCHDOG_USEC=1 s: the service must ping every 0.5 s.
    with running(inst.serve(env={"WATCHDOG_USEC": "1000000"})) as proc:
        ready = inst.wait_ready()
        time.sleep(3.5)
        pings = [
            t
            for t, fields in inst.notify.snapshot()
            if fields.get("WATCHDOG") == "1" and ready < t <= ready + 3.0
        ]
        assert 4 <= len(pings) <= 8, f"{len(pings)} watchdog pings in 3 s (expected about 6)"
        assert stop(proc, signal.SIGTERM) == 0
        keys = inst.notify.keys()
        assert "STOPPING" in keys
        assert keys.index("READY") < len(keys) - 1 - keys[::-1].index("STOPPING")
        assert any(k == "STATUS" for k in keys)


def test_files_dropped_are_uploaded_and_moved(tmp_path: Path, receiver: ReceiverProcess) -> None:
    inst = Instance(tmp_path, "ict", server_url=receiver.url)
    ids = inst.drop(40)
    with running(inst.serve()) as proc:
        inst.wait_ready()
        more = inst.drop(40, start=40)
        ids.update(more)
        wait_for(lambda: all_received(receiver, set(ids)), timeout=60, what="all 80 reports")
        wait_for(lambda: not inst.files_left(), timeout=30, what="the watch folder to empty")
        assert stop(proc) == 0
    assert sorted(p.name for p in inst.done.iterdir()) == sorted(ids.values())
    assert inst.queue_counts()["done"] == 80
    assert receiver.stats()["duplicates"] == 0
    assert not inst.error.exists() or not any(inst.error.iterdir())


def test_no_server_configured_converts_and_queues(tmp_path: Path) -> None:
    inst = Instance(tmp_path, "ict", server_url=None)
    ids = inst.drop(10)
    with running(inst.serve()) as proc:
        inst.wait_ready()
        wait_for(lambda: not inst.files_left(), timeout=30, what="the watch folder to empty")
        assert stop(proc) == 0
    assert inst.queue_counts()["pending"] == len(ids)


def test_a_bad_file_goes_to_the_error_folder_and_the_rest_flow(
    tmp_path: Path, receiver: ReceiverProcess
) -> None:
    inst = Instance(tmp_path, "ict", server_url=receiver.url)
    (inst.watch / "broken.json").write_text('{"id": ')
    ids = inst.drop(5)
    with running(inst.serve()) as proc:
        wait_for(lambda: all_received(receiver, set(ids)), timeout=60, what="the good reports")
        wait_for(
            lambda: (inst.error / "broken.json.error.txt").exists(),
            timeout=30,
            what="the sidecar of the bad file",
        )
        assert stop(proc) == 0
    sidecar = (inst.error / "broken.json.error.txt").read_text()
    assert "wsjf" in sidecar
    assert "not valid JSON" in sidecar


def test_sigterm_during_a_burst_exits_cleanly_and_a_restart_drains_the_rest(
    tmp_path: Path,
) -> None:
    # A slow receiver keeps uploads in flight when SIGTERM arrives.
    slow = ReceiverProcess(tmp_path / "slow.db", "--latency-ms", "50")
    try:
        inst = Instance(tmp_path, "ict", server_url=slow.url, workers=2)
        ids = inst.drop(200)
        with running(inst.serve()) as proc:
            wait_for(lambda: slow.stats()["received"] >= 10, timeout=60, what="10 uploads")
            started = time.monotonic()
            assert stop(proc) == 0
            assert time.monotonic() - started < 15
        err = inst.log()
        assert "Traceback" not in err
        assert slow.stats()["unique"] < len(ids)
        with running(inst.serve()) as proc:
            wait_for(lambda: all_received(slow, set(ids)), timeout=120, what="the rest")
            assert stop(proc) == 0
        assert inst.queue_counts()["done"] == len(ids)
    finally:
        slow.stop()


def test_a_second_sigint_stops_at_once_and_loses_nothing(tmp_path: Path) -> None:
    # Uploads that would hang for a minute: a graceful stop would wait its 10 s deadline.
    stuck = ReceiverProcess(tmp_path / "stuck.db", "--latency-ms", "60000")
    try:
        inst = Instance(tmp_path, "ict", server_url=stuck.url, workers=2)
        ids = inst.drop(5)
        with running(inst.serve()) as proc:
            wait_for(lambda: not inst.files_left(), timeout=30, what="every file queued")
            wait_for(lambda: inst.queue_counts()["uploading"] == 2, timeout=30, what="2 uploads")
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            wait_for(
                lambda: "stopping gracefully" in inst.log(), timeout=10, what="the graceful stop"
            )
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == 130
            assert time.monotonic() - started < 8  # well inside the 10 s upload deadline
        assert "second SIGINT: stopping at once" in inst.log()
        assert "Traceback" not in inst.log()
        counts = inst.queue_counts()
        assert sum(counts.values()) == len(ids)  # nothing lost
        assert counts["done"] == 0
    finally:
        stuck.stop()


def test_a_second_serve_of_the_same_instance_is_refused(tmp_path: Path) -> None:
    inst = Instance(tmp_path, "ict", server_url=None)
    with running(inst.serve()) as first:
        inst.wait_ready()
        with running(inst.serve()) as second:
            assert second.wait(timeout=30) == 1
            err = inst.log()
        assert f"already running (pid {first.pid}" in err
        assert len(err.strip().splitlines()) == 1, err
        assert first.poll() is None
        assert stop(first) == 0


def test_two_instances_run_side_by_side_isolated(tmp_path: Path, receiver: ReceiverProcess) -> None:
    ict = Instance(tmp_path, "ict", server_url=receiver.url)
    fct = Instance(tmp_path, "fct", server_url=receiver.url)
    ict_ids = ict.drop(10)
    fct_ids = fct.drop(15, start=100)
    with running(ict.serve()) as a, running(fct.serve()) as b:
        wait_for(
            lambda: all_received(receiver, set(ict_ids) | set(fct_ids)),
            timeout=60,
            what="both instances' reports",
        )
        wait_for(lambda: not ict.files_left() and not fct.files_left(), timeout=30, what="moves")
        assert stop(a) == 0
        assert stop(b) == 0
    assert ict.queue_counts()["done"] == 10
    assert fct.queue_counts()["done"] == 15
    assert sorted(p.name for p in ict.done.iterdir()) == sorted(ict_ids.values())
    assert sorted(p.name for p in fct.done.iterdir()) == sorted(fct_ids.values())


def test_a_bad_config_key_stops_start_up_with_the_key_path(tmp_path: Path) -> None:
    inst = Instance(tmp_path, "ict", server_url=None)
    inst.config.write_text(inst.config.read_text() + "\n[queue]\nretention_dayz = 3\n")
    with running(inst.serve()) as proc:
        assert proc.wait(timeout=30) == 1
        err = inst.log()
    assert err.strip().endswith(
        "queue.retention_dayz: unknown key (did you mean 'retention_days'?)"
    )
    assert "Traceback" not in err
    assert not inst.db().exists()
