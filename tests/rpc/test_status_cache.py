"""``service.status`` answered on the reader's task from an encoded snapshot that is reused
for a few milliseconds while nothing happens (:mod:`pywats.rpc.snapshots`): never stale
after a change the service announced, never behind a slow call of the same connection."""

from __future__ import annotations

import json
from pathlib import Path

import trio

from pywats.rpc import codec
from pywats.rpc.client import RpcClient
from pywats.rpc.dispatch import Dispatcher
from pywats.rpc.methods import Registry
from pywats.rpc.snapshots import StatusCache
from tests.rpc.test_socket import next_note, serving
from tests.test_service import drop, receiving


def test_an_answer_is_reused_only_while_young_and_nothing_happened() -> None:
    cache = StatusCache(max_age_s=0.01)
    assert cache.get(5, 100.0) is None
    text = codec.Encoded('{"state":"running"}')
    cache.put(5, 100.0, text)
    assert cache.get(5, 100.009) is text
    assert cache.get(5, 100.01) is None  # too old: the uptime and clock move on
    assert cache.get(6, 100.001) is None  # an event was published since
    cache.clear()  # another method was called
    assert cache.get(5, 100.001) is None


def test_an_encoded_result_is_spliced_into_the_answer_as_it_is() -> None:
    text = codec.dumps(codec.result_response(7, codec.Encoded('{"a":[1,2]}')))
    assert json.loads(text) == {"jsonrpc": "2.0", "id": 7, "result": {"a": [1, 2]}}
    batch = codec.dumps([codec.result_response("x", codec.Encoded('{"b":null}'))])
    assert json.loads(batch) == [{"jsonrpc": "2.0", "id": "x", "result": {"b": None}}]


async def test_only_inline_methods_are_answered_on_the_readers_task() -> None:
    registry: Registry[None] = Registry()

    @registry.method("fast", doc="", result="", inline=True)
    async def fast(_: None) -> int:
        return 1

    @registry.method("slow", doc="", result="")
    async def slow(_: None) -> int:
        return 2

    dispatcher = Dispatcher(registry)
    parse = codec.parse_incoming
    assert dispatcher.inline(parse('{"jsonrpc":"2.0","id":1,"method":"fast"}'))
    assert not dispatcher.inline(parse('{"jsonrpc":"2.0","id":1,"method":"slow"}'))
    batch = '[{"jsonrpc":"2.0","id":1,"method":"fast"},{"jsonrpc":"2.0","id":2,"method":"slow"}]'
    assert not dispatcher.inline(parse(batch))
    # Errors are answered from memory too: bad JSON, an unknown method.
    assert dispatcher.inline(parse("{"))
    assert dispatcher.inline(parse('{"jsonrpc":"2.0","id":1,"method":"nope"}'))


async def test_the_status_shows_every_announced_change_at_once(tmp_path: Path) -> None:
    async with serving(tmp_path, None) as (_, path), RpcClient(path) as client:
        notes = await client.subscribe()
        before = await client.call("service.status")
        assert before["queue"]["pending"] == 0
        for n in range(3):
            report_id = drop(tmp_path / "in", f"{n}.json")
            await next_note(notes, "report.queued", report_id=report_id)
            # Asked within the cache's lifetime of the previous answer: the event counts.
            status = await client.call("service.status")
            assert status["queue"]["pending"] == n + 1
        await client.call("converters.disable", name="wsjf")
        [folder] = (await client.call("service.status"))["folders"]
        assert folder["enabled"] is False


async def test_a_slow_call_does_not_hold_up_the_status_on_the_same_connection(
    tmp_path: Path,
) -> None:
    async with (
        receiving(latency_s=2.0, fail_health=True) as receiver,
        serving(tmp_path, receiver.url) as (_, path),
        RpcClient(path) as client,
    ):
        answers: list[str] = []

        async def test_server() -> None:
            await client.call("server.test")
            answers.append("server.test")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(test_server)
            await trio.sleep(0.2)  # the slow call is in flight
            with trio.fail_after(1.0):
                await client.call("service.status")
            answers.append("service.status")
        assert answers == ["service.status", "server.test"]
