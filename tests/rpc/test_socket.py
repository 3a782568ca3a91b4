"""The control socket for real: a :class:`Service` in-process with its Unix socket in
``tmp_path``, real watch folders and a real receiver, and :class:`RpcClient` (or a raw
WebSocket, for what the client would never send) on the other end.

Every wait is bounded by ``trio.fail_after``; conditions are waited for through events
and notifications, never by sleeping.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream

from pywats.errors import ConfigError, PywatsError
from pywats.events import FileProcessed, ReportDeleted
from pywats.plan import prepare
from pywats.rpc.client import RpcClient
from pywats.rpc.errors import (
    ErrorCode,
    PermissionRefusedError,
    RpcError,
    ServiceNotRunningError,
)
from pywats.rpc.server import (
    CLOSE_TIMEOUT_S,
    MAX_MESSAGE_SIZE,
    PeerCredentials,
    PeerPolicy,
    RpcServer,
    RpcSettings,
    peer_credentials,
)
from pywats.service import Service
from tests.test_service import drop, make_plan, receiving

LIMIT_S = 60.0


@asynccontextmanager
async def serving(
    tmp_path: Path, url: str | None, *, rpc: RpcSettings | None = None
) -> AsyncIterator[tuple[Service, Path]]:
    settings = rpc or RpcSettings(tmp_path / "run" / "control.sock")
    service = Service(make_plan(tmp_path, url), handle_signals=False, rpc=settings)
    with trio.fail_after(LIMIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            yield service, settings.path
            service.request_stop()


@asynccontextmanager
async def raw(path: Path) -> AsyncIterator[WebSocketConnection]:
    """A WebSocket on the socket without the client's manners."""
    async with trio.open_nursery() as nursery:
        stream = await trio.open_unix_socket(str(path))
        ws = await wrap_client_stream(nursery, stream, "localhost", "/rpc")
        yield ws
        with trio.move_on_after(1):
            await ws.aclose()
        await stream.aclose()
        nursery.cancel_scope.cancel()


async def next_note(notes: Any, method: str, **match: Any) -> dict[str, Any]:
    async for note in notes:
        if note.method == method and all(note.params.get(k) == v for k, v in match.items()):
            return dict(note.params)
    raise AssertionError(f"the notifications ended before {method}")


async def test_every_method_through_the_socket(tmp_path: Path) -> None:
    async with (
        receiving() as receiver,
        serving(tmp_path, receiver.url) as (service, path),
        RpcClient(path) as client,
    ):
        assert os.stat(path).st_mode & 0o777 == 0o660
        status = await client.call("service.status")
        assert status["state"] == "running"
        assert status["pid"] == os.getpid()
        assert status["server"]["url"] == receiver.url
        assert status["queue"]["pending"] == 0
        assert [f["name"] for f in status["folders"]] == ["wsjf"]
        assert status["stream"] == service.hub.stream_id
        assert set(status) >= {"instance", "version", "protocol", "uptime_s", "clock"}
        assert (await client.call("queue.stats"))["failed"] == 0
        [folder] = await client.call("converters.list")
        assert (folder["name"], folder["enabled"]) == ("wsjf", True)

        notes = await client.subscribe()
        assert notes.stream == service.hub.stream_id
        assert await client.call("service.pause") == {"state": "paused"}
        report_id = drop(tmp_path / "in", "one.json")
        queued = await next_note(notes, "report.queued", report_id=report_id)
        assert queued["stream"] == service.hub.stream_id
        assert queued["seq"] > notes.seq

        page = await client.call("queue.list", state="pending", limit=1)
        assert [r["id"] for r in page["reports"]] == [report_id]
        assert page["next_cursor"] is None
        assert "body" not in page["reports"][0]
        got = await client.call("queue.get", id=report_id)
        assert json.loads(got["body"])["id"] == report_id
        with pytest.raises(RpcError) as caught:
            await client.call("queue.get", id="no-such")
        assert caught.value.code == ErrorCode.REPORT_NOT_FOUND
        with pytest.raises(RpcError) as caught:
            await client.call("queue.list", state="lost")
        assert caught.value.code == ErrorCode.INVALID_PARAMS

        retried = await client.call("queue.retry", ids=[report_id, "gone"])
        assert retried == {"count": 1, "requeued": [report_id], "missing": ["gone"]}
        with pytest.raises(RpcError) as caught:
            await client.call("queue.retry")
        assert caught.value.code == ErrorCode.INVALID_PARAMS
        assert (await client.call("queue.retry", failed=True))["count"] == 0

        second = drop(tmp_path / "in", "two.json")
        await next_note(notes, "report.queued", report_id=second)
        deleted = await client.call("queue.delete", ids=[second, "gone"])
        assert deleted == {"deleted": [second], "missing": ["gone"]}
        await next_note(notes, "report.deleted", report_id=second)

        assert await client.call("service.resume") == {"state": "running"}
        await next_note(notes, "report.uploaded", report_id=report_id)
        assert receiver.get_report(report_id) is not None
        with pytest.raises(RpcError) as caught:
            await client.call("queue.retry", ids=[report_id])  # done: nothing to retry
        assert caught.value.code == ErrorCode.QUEUE_ERROR
        assert report_id in caught.value.message

        disabled = await client.call("converters.disable", name="wsjf")
        assert disabled == {"name": "wsjf", "enabled": False}
        await next_note(notes, "status.changed", component="folder:wsjf", state="disabled")
        await client.call("converters.enable", name="wsjf")
        with pytest.raises(RpcError) as caught:
            await client.call("converters.enable", name="nope")
        assert caught.value.code == ErrorCode.UNKNOWN_FOLDER

        tested = await client.call("server.test")
        assert tested["state"] == "online"
        sent = await client.call("server.test", send_report=True)
        assert sent["report"]["outcome"] == "uploaded", sent["report"]
        assert sent["report"]["pn"] == "PYWATS-TEST"
        assert receiver.get_report(sent["report"]["report_id"]) is not None
        assert await client.call("queue.clean", older_than_days=1) == {"deleted": 0}

        found = await client.call("rpc.discover")
        assert "service.status" in [m["name"] for m in found["methods"]]
        results = await client.batch([("queue.stats", {}), ("no.such", {})])
        assert results[0]["done"] == 2  # the report and the test report
        assert isinstance(results[1], RpcError)
        assert results[1].code == ErrorCode.METHOD_NOT_FOUND
        assert (await client.call("events.unsubscribe"))["was_subscribed"]

        assert await client.call("service.stop") == {"stopping": True}
        # The service stops: the socket closes and its file goes.
        async for _ in notes:
            pass
    assert not path.exists()


async def test_bad_messages_over_the_socket_and_the_next_connection_works(tmp_path: Path) -> None:
    async with serving(tmp_path, None) as (_, path):
        async with raw(path) as ws:
            for text, code in (
                ("{not json", ErrorCode.PARSE_ERROR),
                ('{"jsonrpc": "2.0", "id": 1}', ErrorCode.INVALID_REQUEST),
                ('{"jsonrpc": "2.0", "method": "no.such", "id": 2}', ErrorCode.METHOD_NOT_FOUND),
                (
                    '{"jsonrpc": "2.0", "method": "queue.delete", "params": {"ids": 1}, "id": 3}',
                    ErrorCode.INVALID_PARAMS,
                ),
            ):
                await ws.send_message(text)
                assert json.loads(await ws.get_message())["error"]["code"] == code
            await ws.send_message("[" + " " * MAX_MESSAGE_SIZE + "]")
            with pytest.raises(ConnectionClosed) as caught:
                await ws.get_message()
            assert caught.value.reason is not None
            assert caught.value.reason.code == 1009
        async with RpcClient(path) as client:
            assert (await client.call("service.status"))["state"] == "running"


async def test_a_hundred_clients_at_once(tmp_path: Path) -> None:
    async with serving(tmp_path, None) as (_, path):
        answers: list[str] = []

        async def one() -> None:
            async with RpcClient(path) as client:
                answers.append((await client.call("service.status"))["state"])

        async with trio.open_nursery() as nursery:
            for _ in range(100):
                nursery.start_soon(one)
        assert answers == ["running"] * 100


async def test_a_subscriber_that_never_reads_loses_events_and_is_told(tmp_path: Path) -> None:
    # The service's own server has the default buffers; a second server on the same view
    # with small ones makes the stuck client's gap come after a few dozen files.
    service = Service(make_plan(tmp_path, None), handle_signals=False)
    small = RpcServer(
        service.view,
        RpcSettings(tmp_path / "run" / "small.sock"),
        subscription_buffer=10,
        send_buffer=4096,
    )
    files = 60
    with trio.fail_after(LIMIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            await nursery.start(small.run)
            async with RpcClient(small.path, notification_buffer=1) as stuck:
                notes = await stuck.subscribe()
                with service.hub.subscribe(buffer=10_000) as watch:
                    for n in range(files):
                        drop(tmp_path / "in", f"f{n}.json")
                    processed = 0
                    async for event in watch:
                        processed += isinstance(event, FileProcessed)
                        if processed == files:
                            break
                # The service went on; now the stuck client reads, and hears of its loss.
                gap = await next_note(notes, "events.gap")
                assert gap["dropped"] > 0
            service.request_stop()
            nursery.cancel_scope.cancel()


async def test_nothing_listens_and_a_live_socket_is_not_taken(tmp_path: Path) -> None:
    path = tmp_path / "run" / "control.sock"
    with pytest.raises(ServiceNotRunningError, match=str(path)):
        async with RpcClient(path):
            pass
    # A socket left by a killed service (nobody listens) is replaced.
    path.parent.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()
    async with serving(tmp_path, None) as (service, _):
        async with RpcClient(path) as client:
            assert (await client.call("service.status"))["state"] == "running"
        second = RpcServer(service.view, RpcSettings(path))
        with pytest.raises(PywatsError, match="another process is listening"):
            await second.run()
        assert path.exists()  # the live one is left alone
    assert not path.exists()
    path.write_text("not a socket")
    with pytest.raises(PywatsError, match="not a socket"):
        await RpcServer(service.view, RpcSettings(path)).run()


def test_the_peer_policy() -> None:
    policy = PeerPolicy(uid=1000, gid=50)
    assert policy.allows(PeerCredentials(1, 1000, 1000))
    assert policy.allows(PeerCredentials(1, 0, 0))
    assert policy.allows(PeerCredentials(1, 2000, 50))
    assert policy.allows(PeerCredentials(1, 2000, 60, (7, 50)))
    assert not policy.allows(PeerCredentials(1, 2000, 60, (7,)))
    assert not PeerPolicy(uid=1000).allows(PeerCredentials(1, 2000, 50, (50,)))


def test_peer_credentials_of_a_socketpair() -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        peer = peer_credentials(left)
    assert (peer.pid, peer.uid, peer.gid) == (os.getpid(), os.getuid(), os.getgid())
    assert set(peer.groups) >= set(os.getgroups()) - {os.getgid()}


CHILD = textwrap.dedent(
    """
    import os, socket, sys
    os.setgroups([int(g) for g in sys.argv[2:]])
    os.setgid(65534)
    os.setuid(65534)
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(sys.argv[1])
    sock.settimeout(20)
    try:
        sock.sendall(
            b"GET /rpc HTTP/1.1\\r\\nHost: localhost\\r\\nUpgrade: websocket\\r\\n"
            b"Connection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\n"
            b"Sec-WebSocket-Version: 13\\r\\n\\r\\n"
        )
        print(len(sock.recv(4096)))
    except (BrokenPipeError, ConnectionResetError):
        # Closed before our request was sent, or with it unread: still not a byte back.
        print(0)
    """
)


GROUP = 54321
"""A gid no account has: only the child given it as a supplementary group is in it."""


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another uid needs root")
async def test_another_uid_is_closed_without_a_byte(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Under /tmp (sticky, root's) with a directory nobody may traverse, and the socket
    # opened to everyone, so only the peer check stands in the child's way.
    where = Path(tempfile.mkdtemp(prefix="pywats-rpc-"))
    try:
        where.chmod(0o711)
        # Members of the allowed group get in by a supplementary group (SO_PEERGROUPS).
        settings = RpcSettings(where / "control.sock", mode=0o666, allowed_group=str(GROUP))
        caplog.set_level(logging.WARNING, logger="pywats.rpc")
        async with serving(tmp_path, None, rpc=settings) as (_, path):
            for _ in range(2):
                child = await trio.run_process(
                    [sys.executable, "-c", CHILD, str(path)], capture_stdout=True
                )
                assert child.stdout.decode().strip() == "0"
            member = await trio.run_process(
                [sys.executable, "-c", CHILD, str(path), "7", str(GROUP)], capture_stdout=True
            )
            assert int(member.stdout.decode()) > 0  # the handshake's answer
            async with RpcClient(path) as client:  # we (root) still may
                assert (await client.call("service.status"))["state"] == "running"
        refusals = [r for r in caplog.records if "refused uid 65534" in r.getMessage()]
        assert len(refusals) == 1
    finally:
        shutil.rmtree(where, ignore_errors=True)


class RefuseAll(PeerPolicy):
    """Even root (the tests run as root, whom the real policy always admits)."""

    def allows(self, peer: PeerCredentials) -> bool:
        return False


async def test_the_client_says_permission_refused(tmp_path: Path) -> None:
    # A server whose policy admits nobody: the client sees the close before any byte.
    async with serving(tmp_path, None) as (service, _):
        closed = RpcServer(service.view, RpcSettings(tmp_path / "run" / "closed.sock"))
        closed.policy = RefuseAll(uid=os.geteuid())
        async with trio.open_nursery() as nursery:
            await nursery.start(closed.run)
            with pytest.raises(PermissionRefusedError, match="closed the connection"):
                async with RpcClient(closed.path):
                    pass
            nursery.cancel_scope.cancel()


async def test_queue_list_pages_with_a_cursor(tmp_path: Path) -> None:
    async with serving(tmp_path, None) as (_, path), RpcClient(path) as client:
        notes = await client.subscribe()
        ids = []
        for n in range(3):
            ids.append(drop(tmp_path / "in", f"p{n}.json"))
            await next_note(notes, "report.queued", report_id=ids[-1])
        first = await client.call("queue.list", limit=2)
        assert [r["id"] for r in first["reports"]] == ids[:0:-1]  # newest first
        assert first["next_cursor"] is not None
        rest = await client.call("queue.list", limit=2, cursor=first["next_cursor"])
        assert [r["id"] for r in rest["reports"]] == ids[:1]
        assert rest["next_cursor"] is None
        found = await client.call("queue.list", search=" no such serial ")
        assert found == {"reports": [], "next_cursor": None}
        for bad in ({"cursor": "x"}, {"limit": 0}, {"limit": 1001}):
            with pytest.raises(RpcError) as caught:
                await client.call("queue.list", **bad)
            assert caught.value.code == ErrorCode.INVALID_PARAMS


async def test_a_silent_peer_is_cut_after_the_handshake_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pywats.rpc.server.HANDSHAKE_TIMEOUT_S", 0.2)
    async with serving(tmp_path, None) as (_, path):
        silent = await trio.open_unix_socket(str(path))
        async with silent:
            with trio.fail_after(5):
                assert await silent.receive_some() == b""  # closed without a byte
        async with RpcClient(path) as client:
            assert (await client.call("service.status"))["state"] == "running"


async def test_the_service_stops_promptly_with_a_client_that_never_reads(tmp_path: Path) -> None:
    service = Service(make_plan(tmp_path, None), handle_signals=False)
    server = RpcServer(service.view, RpcSettings(tmp_path / "run" / "s.sock"), send_buffer=4096)
    with trio.fail_after(LIMIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            await nursery.start(server.run)
            async with RpcClient(server.path, notification_buffer=1) as stuck:
                await stuck.subscribe()
                for n in range(3000):
                    service.hub.publish(ReportDeleted(report_id=f"r{n}"))
                # The sender is stuck on a full socket: closing gets its 1 s, then is cut.
                with trio.fail_after(CLOSE_TIMEOUT_S + 3):
                    nursery.cancel_scope.cancel()
                    await trio.lowlevel.checkpoint()
            assert server.connections == 0


def test_an_unknown_allowed_group_is_a_config_error(tmp_path: Path) -> None:
    view = Service(make_plan(tmp_path, None), handle_signals=False).view
    with pytest.raises(ConfigError, match=r"rpc\.allowed_group: no group named 'no-such-grp'"):
        RpcServer(view, RpcSettings(tmp_path / "s.sock", allowed_group="no-such-grp"))
    by_number = RpcServer(view, RpcSettings(tmp_path / "s.sock", allowed_group="4242"))
    assert by_number.policy.gid == 4242


def write_config(tmp_path: Path, retry_base_s: float) -> Path:
    path = tmp_path / "test.toml"
    path.write_text(
        f'[queue]\npath = "{tmp_path / "queue.db"}"\n'
        f"[upload]\nretry_base_s = {retry_base_s}\n"
        f'[[converters]]\nname = "wsjf"\nwatch = "{tmp_path / "in"}"\n'
        f'done_dir = "{tmp_path / "done"}"\nerror_dir = "{tmp_path / "error"}"\n'
    )
    return path


async def test_config_get_and_reload(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, 0.2)
    _, _, run_plan = prepare("test", config_path, environ={})
    settings = RpcSettings(tmp_path / "run" / "control.sock")
    service = Service(run_plan, handle_signals=False, rpc=settings)
    with trio.fail_after(LIMIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            async with RpcClient(settings.path) as client:
                shown = await client.call("config.get")
                assert (shown["instance"], shown["file"]) == ("test", str(config_path))
                assert shown["server"]["token"] is None
                assert shown["upload"]["retry_base_s"] == 0.2
                # Where each value came from, for a client that cannot read the file.
                assert "upload.retry_base_s" in shown["file_keys"]
                assert "upload.workers" not in shown["file_keys"]  # a default
                assert shown["state_dir_from"] in ("$XDG_DATA_HOME", "~/.local/share")

                same = await client.call("config.reload")
                assert (same["ok"], same["applied"], same["needs_restart"]) == (True, [], [])
                write_config(tmp_path, 0.3)
                changed = await client.call("config.reload")
                assert changed["ok"]
                assert changed["applied"] == ["upload.retry_base_s"]
                assert (await client.call("config.get"))["upload"]["retry_base_s"] == 0.3
                config_path.write_text("[upload]\nretry_base_s = -1\n")
                refused = await client.call("config.reload")
                assert not refused["ok"]
                assert refused["errors"][0]["key"] == "upload.retry_base_s"
                assert refused["lines"][0].startswith("config reload refused")
            service.request_stop()


async def test_config_methods_without_a_prepared_config(tmp_path: Path) -> None:
    async with serving(tmp_path, None) as (_, path), RpcClient(path) as client:
        with pytest.raises(RpcError) as caught:
            await client.call("config.reload")
        assert caught.value.code == ErrorCode.NO_CONFIG
