"""Framing and dispatch together over ``trio.testing.memory_stream_pair``: the server's
connection handling with a WebSocket client on the other end, no socket file at all.

The view is a bare :class:`ServiceView` (the service is starting), so what is checked is
the protocol: answers, errors, notifications from the hub, the connection staying usable.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream

from pywats.events import EventHub, ReportDeleted
from pywats.rpc.errors import ErrorCode
from pywats.rpc.server import MAX_MESSAGE_SIZE, RpcServer, RpcSettings
from pywats.view import ServiceState, ServiceView

LIMIT_S = 10.0


@asynccontextmanager
async def connected(tmp_path: Path) -> AsyncIterator[tuple[WebSocketConnection, ServiceView]]:
    view = ServiceView("mem", EventHub(), request_stop=lambda: None)
    server = RpcServer(view, RpcSettings(tmp_path / "unused.sock"))
    client_end, server_end = trio.testing.memory_stream_pair()
    with trio.fail_after(LIMIT_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server._converse, server_end)
            ws = await wrap_client_stream(nursery, client_end, "localhost", "/rpc")  # type: ignore[arg-type]
            yield ws, view
            await ws.aclose()
            nursery.cancel_scope.cancel()


async def ask(ws: WebSocketConnection, message: Any) -> Any:
    await ws.send_message(message if isinstance(message, str) else json.dumps(message))
    return json.loads(await ws.get_message())


def call(method: str, request_id: int, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params, "id": request_id}


async def test_status_while_starting_and_verbs_say_starting(tmp_path: Path) -> None:
    async with connected(tmp_path) as (ws, _):
        status = (await ask(ws, call("service.status", 1)))["result"]
        assert (status["state"], status["queue"], status["instance"]) == ("starting", None, "mem")
        assert status["protocol"] == {"version": 1, "oldest": 1}
        paused = await ask(ws, call("service.pause", 2))
        assert paused["error"]["code"] == ErrorCode.SERVICE_STARTING
        assert (await ask(ws, call("queue.stats", 3)))["error"][
            "code"
        ] == ErrorCode.SERVICE_STARTING


async def test_control_verbs_while_stopping_say_stopping(tmp_path: Path) -> None:
    async with connected(tmp_path) as (ws, view):
        view.set_state(ServiceState.STOPPING, "test")
        for n, method in enumerate(("service.pause", "service.resume", "converters.enable")):
            params = {"name": "x"} if method == "converters.enable" else {}
            answer = await ask(ws, call(method, n, **params))
            assert answer["error"]["code"] == ErrorCode.SERVICE_STOPPING
        # Reading still works while it stops.
        assert (await ask(ws, call("service.status", 9)))["result"]["state"] == "stopping"


async def test_bad_messages_get_answers_and_the_connection_goes_on(tmp_path: Path) -> None:
    async with connected(tmp_path) as (ws, _):
        assert (await ask(ws, "{oops"))["error"]["code"] == ErrorCode.PARSE_ERROR
        assert (await ask(ws, '{"id": 1}'))["error"]["code"] == ErrorCode.INVALID_REQUEST
        assert (await ask(ws, call("no.such", 2)))["error"]["code"] == ErrorCode.METHOD_NOT_FOUND
        wrong = await ask(ws, call("events.subscribe", 3, since="x"))
        assert wrong["error"]["code"] == ErrorCode.INVALID_PARAMS
        assert "'since'" in wrong["error"]["message"]
        # A byte message is parsed the same way as a text one.
        await ws.send_message(json.dumps(call("rpc.discover", 4)).encode())
        assert json.loads(await ws.get_message())["id"] == 4


async def test_events_arrive_as_notifications_with_seq_and_stream(tmp_path: Path) -> None:
    async with connected(tmp_path) as (ws, view):
        answer = (await ask(ws, call("events.subscribe", 1)))["result"]
        assert answer == {"stream": view.hub.stream_id, "seq": 0}
        view.hub.publish(ReportDeleted(report_id="r1"))
        note = json.loads(await ws.get_message())
        assert note["method"] == "report.deleted"
        assert "id" not in note
        assert note["params"]["report_id"] == "r1"
        assert (note["params"]["seq"], note["params"]["stream"]) == (1, view.hub.stream_id)
        assert (await ask(ws, call("events.unsubscribe", 2)))["result"]["was_subscribed"]
        view.hub.publish(ReportDeleted(report_id="r2"))
        # Nothing is pushed after unsubscribing: the next message is the next answer.
        assert (await ask(ws, call("rpc.discover", 3)))["id"] == 3


async def test_subscribing_since_an_old_seq_starts_with_a_gap(tmp_path: Path) -> None:
    async with connected(tmp_path) as (ws, view):
        for n in range(5):
            view.hub.publish(ReportDeleted(report_id=f"r{n}"))
        await ws.send_message(json.dumps(call("events.subscribe", 1, since=2)))
        messages = [json.loads(await ws.get_message()) for _ in range(2)]
        [gap] = [m for m in messages if m.get("method") == "events.gap"]
        assert gap["params"]["dropped"] == 3


async def test_an_oversized_message_closes_with_1009(tmp_path: Path) -> None:
    async with connected(tmp_path) as (ws, _):
        await ws.send_message("x" * (MAX_MESSAGE_SIZE + 1))
        with pytest.raises(ConnectionClosed) as caught:
            await ws.get_message()
        assert caught.value.reason is not None
        assert caught.value.reason.code == 1009
