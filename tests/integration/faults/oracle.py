"""The oracle of the fault matrix (``docs/reliability.md``): the checks every fault test
ends with, and the measurements ``bench/faults.py`` prints.

The checks (reliability.md §8): every report the station acknowledged (a row in its
queue) was received; every received id was produced; every payload matches the queued
bytes; duplicates are counted; a fresh file still flows end to end.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import attrs

from tests.integration.harness import Instance, ReceiverProcess, wait_for

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@attrs.frozen
class Verdict:
    """What the oracle found; the assertions are in :func:`check`."""

    produced: int
    received: int
    duplicates: int


def queued(inst: Instance) -> dict[str, tuple[str, bytes]]:
    """Every report the station acknowledged: id -> (state, the exact bytes it sends)."""
    with contextlib.closing(sqlite3.connect(f"file:{inst.db()}?mode=ro", uri=True)) as conn:
        rows = conn.execute("select id, state, body from reports").fetchall()
    return {report_id: (state, bytes(body)) for report_id, state, body in rows}


def received(receiver: ReceiverProcess) -> dict[str, tuple[bytes, int]]:
    """Every report the server stored: id -> (body, times submitted)."""
    with contextlib.closing(sqlite3.connect(receiver.db)) as conn:
        rows = conn.execute("select id, body, count from reports").fetchall()
    return {report_id: (bytes(body), count) for report_id, body, count in rows}


def check(
    inst: Instance,
    receiver: ReceiverProcess,
    produced: set[str],
    *,
    failed: set[str] | frozenset[str] = frozenset(),
) -> Verdict:
    """The end-of-test checks, after the drain (the instance may be stopped or running).

    ``failed``: ids the server was made to refuse for good; they must be ``failed`` in the
    queue and absent at the server, every other produced id ``done`` and received.
    """
    queue = queued(inst)
    got = received(receiver)
    assert set(queue) == produced, "the queue holds exactly the reports produced"
    assert set(got) <= produced, f"unknown ids at the server: {sorted(set(got) - produced)[:5]}"
    for report_id, (state, body) in queue.items():
        if report_id in failed:
            assert state == "failed", f"{report_id}: {state}, expected failed"
            assert report_id not in got
            continue
        assert state == "done", f"{report_id}: {state}, expected done"
        assert report_id in got, f"{report_id}: acknowledged, never received"
        assert got[report_id][0] == body, f"{report_id}: the payload differs"
    duplicates = sum(count - 1 for _, count in got.values())
    return Verdict(produced=len(produced), received=len(got), duplicates=duplicates)


def fresh_file_flows(inst: Instance, receiver: ReceiverProcess, *, start: int) -> set[str]:
    """Liveness: one more file, dropped now, reaches the server; its id."""
    ids = set(inst.drop(1, start=start))
    wait_for(lambda: ids <= receiver.ids(), timeout=30, what="a fresh file to flow")
    return ids


def drained(inst: Instance, receiver: ReceiverProcess, ids: set[str], timeout: float) -> float:
    """Wait until every id is received and the queue has nothing left to do; the time."""
    started = time.monotonic()
    wait_for(lambda: ids <= receiver.ids(), timeout=timeout, what=f"{len(ids)} reports received")
    wait_for(
        lambda: inst.queue_counts()["pending"] + inst.queue_counts()["uploading"] == 0,
        timeout=timeout,
        what="the queue to drain",
    )
    return time.monotonic() - started


def wait_settled(inst: Instance, ids: set[str], *, timeout: float = 60) -> None:
    """Wait until every id is queued and ``done`` or ``failed`` (nothing left to try)."""

    def settled() -> bool:
        queue = queued(inst)
        return all(queue.get(i, ("", b""))[0] in ("done", "failed") for i in ids)

    wait_for(settled, timeout=timeout, what=f"{len(ids)} reports done or failed")


def log_lines(text: str, pattern: str) -> list[str]:
    """The lines of a service log that match ``pattern`` (a regex)."""
    return [line for line in text.splitlines() if re.search(pattern, line)]


def wait_lines(
    inst: Instance, pattern: str, *, more_than: int = 0, timeout: float = 30
) -> list[str]:
    """Wait until the service log of ``inst`` has more than ``more_than`` lines matching
    ``pattern``; those lines."""
    lines: list[str] = wait_for(
        lambda: (found := log_lines(inst.log(), pattern)) and len(found) > more_than and found,
        timeout=timeout,
        what=f"more than {more_than} log line(s) matching {pattern!r}",
    )
    return lines


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int, key: str = "VmHWM") -> float:
    """Peak (``VmHWM``) or current (``VmRSS``) resident memory of a process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def open_fds(pid: int) -> int:
    """How many file descriptors a process holds."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def free_port() -> int:
    """A loopback TCP port nobody listens on now (for a server that comes later)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def receiving(db: Path, *args: str, port: int = 0) -> Iterator[ReceiverProcess]:
    """A ``pywats receiver`` for the length of a block."""
    proc = ReceiverProcess(db, *args, port=port)
    try:
        yield proc
    finally:
        proc.stop()


def exit_time(proc: subprocess.Popen[str], sig: int, *, timeout: float = 30) -> tuple[int, float]:
    """Send ``sig`` and wait: the exit code and how long it took."""
    started = time.monotonic()
    proc.send_signal(sig)
    code = proc.wait(timeout=timeout)
    return code, time.monotonic() - started
