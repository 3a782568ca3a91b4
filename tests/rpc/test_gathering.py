"""Status polls that several tasks of one client make at once leave as one batch message
(:data:`pywats.rpc.client.GATHERED`); a lone call, and every other method, goes alone.

Against a recording peer on a real Unix socket (to see what the client puts on the wire)
and against the real service (the answers each caller gets).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed, wrap_server_stream

from pywats.rpc.api import REGISTRY
from pywats.rpc.client import GATHERED, RpcClient
from pywats.rpc.errors import ConnectionLostError
from tests.rpc.test_socket import serving

LIMIT_S = 30.0


@asynccontextmanager
async def recording(path: Path) -> AsyncIterator[list[Any]]:
    """A WebSocket peer on ``path`` that records every message it receives (decoded) and
    answers each request with its own id as the result, batches as batches."""
    messages: list[Any] = []

    async def answer(stream: trio.SocketStream) -> None:
        async with trio.open_nursery() as nursery:
            request = await wrap_server_stream(nursery, stream)
            ws = await request.accept()
            try:
                while True:
                    message = json.loads(await ws.get_message())
                    messages.append(message)
                    entries = message if isinstance(message, list) else [message]
                    answers = [
                        {"jsonrpc": "2.0", "id": e["id"], "result": {"answering": e["id"]}}
                        for e in entries
                    ]
                    await ws.send_message(
                        json.dumps(answers if isinstance(message, list) else answers[0])
                    )
            except ConnectionClosed:
                pass
            nursery.cancel_scope.cancel()

    listener = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await listener.bind(str(path))
    listener.listen()
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, answer, [trio.SocketListener(listener)])
        yield messages
        nursery.cancel_scope.cancel()


def _sizes(messages: list[Any]) -> list[int]:
    return [len(m) if isinstance(m, list) else 1 for m in messages]


async def _together(client: RpcClient, method: str, count: int) -> list[Any]:
    results: list[Any] = [None] * count

    async def one(index: int) -> None:
        results[index] = await client.call(method)

    async with trio.open_nursery() as nursery:
        for index in range(count):
            nursery.start_soon(one, index)
    return results


async def test_concurrent_status_polls_share_one_message(tmp_path: Path) -> None:
    assert {"service.status", "queue.stats"} == GATHERED
    # The gathered methods are the service's inline ones (the set lives apart from the
    # registry so a client need not import the handlers).
    assert {name for name, spec in REGISTRY.methods.items() if spec.inline} == GATHERED
    with trio.fail_after(LIMIT_S):
        async with (
            recording(tmp_path / "peer.sock") as messages,
            RpcClient(tmp_path / "peer.sock") as client,
        ):
            results = await _together(client, "service.status", 8)
            # Each caller got the answer to its own request: eight different ones.
            assert len({r["answering"] for r in results}) == 8
            assert sum(_sizes(messages)) == 8
            assert len(messages) < 8, _sizes(messages)
            messages.clear()
            # A lone call goes as it is: a request, not a batch of one.
            await client.call("queue.stats")
            assert len(messages) == 1
            assert isinstance(messages[0], dict)


async def test_other_methods_are_never_gathered(tmp_path: Path) -> None:
    with trio.fail_after(LIMIT_S):
        async with (
            recording(tmp_path / "peer.sock") as messages,
            RpcClient(tmp_path / "peer.sock") as client,
        ):
            await _together(client, "queue.list", 8)
            assert _sizes(messages) == [1] * 8
            assert all(isinstance(m, dict) for m in messages)


async def test_a_failed_send_leaves_the_other_gathered_calls_to_the_next_sender(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(LIMIT_S):
        async with (
            recording(tmp_path / "peer.sock") as messages,
            RpcClient(tmp_path / "peer.sock", timeout_s=5) as client,
        ):
            real_send = client._send
            failed: list[str] = []

            async def send_once_failing(text: str) -> None:
                if not failed:
                    failed.append(text)
                    await trio.lowlevel.checkpoint()
                    raise ConnectionLostError("the write failed", tmp_path)
                await real_send(text)

            monkeypatch.setattr(client, "_send", send_once_failing)
            outcomes: list[object] = []

            async def one() -> None:
                try:
                    outcomes.append(await client.call("service.status"))
                except ConnectionLostError as exc:
                    outcomes.append(exc)

            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(one)
        # The caller whose send failed hears it; the four gathered with it are answered.
        errors = [o for o in outcomes if isinstance(o, ConnectionLostError)]
        assert len(errors) == 1
        assert len([o for o in outcomes if isinstance(o, dict)]) == 4
        assert sum(_sizes(messages)) == 4


async def test_concurrent_status_polls_against_the_service(tmp_path: Path) -> None:
    async with serving(tmp_path, None) as (service, path), RpcClient(path) as client:
        statuses = await _together(client, "service.status", 8)
        stats = await _together(client, "queue.stats", 3)
    assert all(s["state"] == "running" and s["stream"] == service.hub.stream_id for s in statuses)
    assert all(s == stats[0] for s in stats)
    assert "pending" in stats[0]
