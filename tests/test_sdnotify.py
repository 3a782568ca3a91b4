"""Tests for :mod:`pywats.sdnotify`.

Rules: every message goes over a real ``AF_UNIX`` datagram socket, bound in ``tmp_path`` or
in the abstract namespace, playing systemd's part; nothing is mocked except, in one
test, a notifier whose send takes time (to check the watchdog's schedule after a stall).
Watchdog rates run on pytest-trio's ``autojump_clock`` and assert exact virtual times.
Every test is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing

from pywats.defaults import NOTIFY_SEND_TIMEOUT_S
from pywats.sdnotify import Notifier, Watchdog, watchdog_interval


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[tuple[str, trio.socket.SocketType]]:
    """A datagram socket bound at a path, as systemd's notify socket is."""
    path = tmp_path / "notify.sock"
    with trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        await sock.bind(str(path))
        yield str(path), sock


async def receive(sock: trio.socket.SocketType) -> bytes:
    with trio.fail_after(5):
        return await sock.recv(4096)


async def test_without_notify_socket_every_call_is_a_no_op() -> None:
    notifier = Notifier.from_environ({})
    assert not notifier.enabled
    assert await notifier.notify(READY=1) is False
    assert await notifier.ready("up") is False
    assert await notifier.watchdog() is False


async def test_messages_reach_a_path_socket(receiver: tuple[str, trio.socket.SocketType]) -> None:
    path, sock = receiver
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert await notifier.notify(READY=1, STATUS="watching 2 folders") is True
    assert await receive(sock) == b"READY=1\nSTATUS=watching 2 folders"
    assert await notifier.ready() is True
    assert await receive(sock) == b"READY=1"
    assert await notifier.status("3 queued, server online") is True
    assert await receive(sock) == b"STATUS=3 queued, server online"
    assert await notifier.stopping("stopping: 2 uploads in flight") is True
    assert await receive(sock) == b"STOPPING=1\nSTATUS=stopping: 2 uploads in flight"
    assert await notifier.watchdog() is True
    assert await receive(sock) == b"WATCHDOG=1"


async def test_messages_reach_an_abstract_socket() -> None:
    name = f"pywats-test-{secrets.token_hex(8)}"
    with trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        await sock.bind("\0" + name)
        notifier = Notifier(f"@{name}")
        assert await notifier.notify("READY=1\nSTATUS=up") is True
        assert await receive(sock) == b"READY=1\nSTATUS=up"


async def test_the_sender_is_our_process(receiver: tuple[str, trio.socket.SocketType]) -> None:
    # NotifyAccess=main: systemd accepts a message only from the main pid, which it learns
    # from the kernel's SCM_CREDENTIALS; so the datagram must come from this process.
    path, sock = receiver
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    await Notifier(path).watchdog()
    with trio.fail_after(5):
        data, ancillary, _flags, _addr = await sock.recvmsg(4096, socket.CMSG_SPACE(12))
    assert data == b"WATCHDOG=1"
    [(level, kind, creds)] = ancillary
    assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_CREDENTIALS)
    assert int.from_bytes(creds[:4], "little") == os.getpid()


async def test_values_stay_on_one_line(receiver: tuple[str, trio.socket.SocketType]) -> None:
    # A file name is free text; with a newline in it, it must not become a second command.
    path, sock = receiver
    notifier = Notifier(path)
    await notifier.status("rejected bad\nSTOPPING=1.csv")
    assert await receive(sock) == b"STATUS=rejected bad STOPPING=1.csv"
    await notifier.notify({"STATUS": "ok", "EXTEND_TIMEOUT_USEC": 5_000_000}, READY=True)
    assert await receive(sock) == b"STATUS=ok\nEXTEND_TIMEOUT_USEC=5000000\nREADY=1"
    await notifier.status("Prüfplatz 3: ok")
    assert (await receive(sock)).decode("utf-8") == "STATUS=Prüfplatz 3: ok"


@pytest.mark.parametrize("key", ["", "ready", "READY=1", "WITH SPACE", "ÄRGER", "1ST"])
async def test_bad_variable_names_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="invalid sd_notify variable name"):
        await Notifier(None).notify({key: "1"})


async def test_send_failures_are_logged_once_and_never_raise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pywats.sdnotify")
    path = tmp_path / "notify.sock"
    notifier = Notifier(str(path))
    for _ in range(3):
        assert await notifier.watchdog() is False  # nobody listens
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].getMessage() == f"cannot notify systemd at {path}: No such file or directory"
    assert sum(r.levelno == logging.DEBUG for r in caplog.records) == 2

    caplog.clear()
    with trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        await sock.bind(str(path))
        assert await notifier.watchdog() is True
        assert await receive(sock) == b"WATCHDOG=1"
    assert [r.getMessage() for r in caplog.records] == [f"notifying systemd at {path} works again"]
    caplog.clear()
    path.unlink()
    assert await notifier.watchdog() is False
    assert [r.levelno for r in caplog.records] == [logging.WARNING]  # a new run of failures


def fill(path: str) -> None:
    """Fill a receiver's queue (it never reads), as a hung systemd would leave it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as filler:
        filler.connect(path)
        filler.setblocking(False)
        for _ in range(100_000):
            try:
                filler.send(b"WATCHDOG=1")
            except BlockingIOError:
                return
    pytest.fail("the receiver's queue never filled up")


async def test_a_stuck_receiver_costs_one_wait_not_one_per_message(
    receiver: tuple[str, trio.socket.SocketType],
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Issue 12 item 8: a notify socket nobody reads made a stop take 10.2 s (5 s for
    # STOPPING, 5 s for the next STATUS). Now the first message waits at most 1 s and the
    # ones after it do not wait at all, however many (watchdog pings, STATUS, STOPPING).
    caplog.set_level(logging.DEBUG, logger="pywats.sdnotify")
    path, sock = receiver
    fill(path)
    notifier = Notifier(path)
    start = trio.current_time()
    with trio.fail_after(60):
        assert await notifier.watchdog() is False
        assert trio.current_time() - start == NOTIFY_SEND_TIMEOUT_S
        for _ in range(20):
            assert await notifier.status("still stuck") is False
        assert await notifier.stopping("stopping") is False
    assert trio.current_time() - start == NOTIFY_SEND_TIMEOUT_S
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"cannot notify systemd at {path}: its queue stayed full for 1 s (nobody reads it)"
    ]
    # The receiver reads again: the next message goes out, and waiting is back on.
    with trio.move_on_after(0.5):
        while True:
            await sock.recv(100)
    assert await notifier.status("back") is True
    assert caplog.messages[-1] == f"notifying systemd at {path} works again"


async def test_a_message_still_goes_out_from_a_cancelled_scope(
    receiver: tuple[str, trio.socket.SocketType],
) -> None:
    # The service sends STOPPING=1 while its nursery is being cancelled.
    path, sock = receiver
    with trio.CancelScope() as scope:
        scope.cancel()
        assert await Notifier(path).stopping("stopping") is True
    assert await receive(sock) == b"STOPPING=1\nSTATUS=stopping"


async def test_unsupported_addresses_turn_notifying_off(caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier("vsock:2:1234")
    assert not notifier.enabled
    assert await notifier.ready() is False
    assert caplog.messages == [
        "NOTIFY_SOCKET='vsock:2:1234' is not a socket path; not notifying systemd"
    ]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "2000000"}, 1.0),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "30s"}, None),
        ({"WATCHDOG_PID": str(os.getpid())}, None),
    ],
)
def test_watchdog_interval(environ: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(environ) == expected


def test_watchdog_interval_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "500000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 0.25
    monkeypatch.delenv("WATCHDOG_USEC")
    assert watchdog_interval() is None


async def test_watchdog_pings_at_half_the_interval(
    receiver: tuple[str, trio.socket.SocketType], autojump_clock: trio.testing.MockClock
) -> None:
    path, sock = receiver
    environ = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"}
    watchdog = Watchdog.from_environ(Notifier.from_environ(environ), environ)
    assert watchdog.enabled
    assert watchdog.interval == 1.0
    times: list[float] = []

    async def listen() -> None:
        while True:
            assert await sock.recv(4096) == b"WATCHDOG=1"
            times.append(trio.current_time() - start)

    with trio.fail_after(60):
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(listen)
            await nursery.start(watchdog.run)
            await trio.sleep(9.5)
            nursery.cancel_scope.cancel()
    assert times == [float(n) for n in range(10)]


class SlowNotifier(Notifier):
    """A notifier whose pings take ``delays`` seconds each (a stalled loop, seen from trio)."""

    def __init__(self, delays: list[float]) -> None:
        super().__init__("@unused")
        self.delays = delays
        self.sent: list[float] = []

    async def watchdog(self) -> bool:
        self.sent.append(trio.current_time())
        await trio.sleep(self.delays.pop(0) if self.delays else 0)
        return True


async def test_watchdog_keeps_its_grid_and_restarts_it_after_a_stall(
    autojump_clock: trio.testing.MockClock,
) -> None:
    notifier = SlowNotifier([0.25, 0.0, 3.5])
    with trio.fail_after(60):
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            await nursery.start(Watchdog(notifier, 1.0).run)
            await trio.sleep(7.25)
            nursery.cancel_scope.cancel()
    # A slow ping (0.25 s) does not shift the grid; after a 3.5 s stall at t=2 the next
    # ping is one interval after the stall ends (6.5), not a burst of the missed ones.
    assert [t - start for t in notifier.sent] == [0.0, 1.0, 2.0, 6.5]


@pytest.mark.parametrize(("socket_name", "interval"), [(None, 1.0), ("@x", None), (None, None)])
async def test_watchdog_off_returns_at_once(
    socket_name: str | None, interval: float | None, autojump_clock: trio.testing.MockClock
) -> None:
    watchdog = Watchdog(Notifier(socket_name), interval)
    assert not watchdog.enabled
    with trio.fail_after(1):
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            await nursery.start(watchdog.run)
    assert trio.current_time() == start


def test_watchdog_refuses_a_non_positive_interval() -> None:
    with pytest.raises(ValueError, match="positive"):
        Watchdog(Notifier(None), 0)
