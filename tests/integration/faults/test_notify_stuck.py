"""Issue 12 item 8 and row 15 of the fault matrix: a ``$NOTIFY_SOCKET`` nobody reads (its
queue full, as a hung systemd leaves it) must not make a stop take longer than the stop's
own bound. Before the fix each message waited 5 s: STOPPING plus the next STATUS made a
stop of an idle ``pywats serve`` take 10.2 s."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from tests.integration.faults import oracle
from tests.integration.harness import Instance, running, wait_for

pytestmark = pytest.mark.slow


def stuck_socket(path: Path) -> socket.socket:
    """A bound datagram socket that is never read, its queue filled up."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as filler:
        filler.connect(str(path))
        filler.setblocking(False)
        for _ in range(100_000):
            try:
                filler.send(b"STATUS=filler")
            except BlockingIOError:
                return sock
    raise AssertionError("the socket's queue never filled up")


def test_a_notify_socket_nobody_reads_does_not_slow_the_stop(tmp_path: Path) -> None:
    stuck = tmp_path / "stuck.sock"
    sock = stuck_socket(stuck)
    try:
        inst = Instance(tmp_path, "ict", server_url=None)
        # Watchdog pings every 0.25 s too: none of them may add up either.
        env = {"NOTIFY_SOCKET": str(stuck), "WATCHDOG_USEC": "500000"}
        with running(inst.serve(env=env)) as proc:
            wait_for(lambda: " ready: " in inst.log(), timeout=30, what="the ready line")
            code, took = oracle.exit_time(proc, signal.SIGTERM)
        log = inst.log()
    finally:
        sock.close()
    assert code == 0
    # The stop's bound with nothing in flight: well under a second; a stuck socket may
    # cost one 1 s wait (NOTIFY_SEND_TIMEOUT_S), never one per message.
    assert took < 2.5, f"the stop took {took:.1f} s"
    warnings = oracle.log_lines(log, "WARNING sdnotify: cannot notify systemd")
    assert len(warnings) == 1, warnings
    assert "nobody reads it" in warnings[0]
