"""The sans-IO layer as pure functions: parsing, the registry's param checks, dispatch."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pywats.rpc import codec
from pywats.rpc.dispatch import Dispatcher
from pywats.rpc.errors import ErrorCode, RpcError
from pywats.rpc.methods import Param, ParamType, Registry


def test_a_request_a_notification_and_a_batch_parse() -> None:
    one = codec.parse_incoming('{"jsonrpc":"2.0","method":"a.b","params":{"x":1},"id":7}')
    assert one == codec.Incoming((codec.Request("a.b", {"x": 1}, 7),), batch=False)
    note = codec.parse_incoming('{"jsonrpc":"2.0","method":"a.b"}')
    assert note.entries == (codec.Request("a.b", None, None, notification=True),)
    batch = codec.parse_incoming('[{"jsonrpc":"2.0","method":"a","id":"s"}, 5]')
    assert batch.batch
    assert batch.entries[0] == codec.Request("a", None, "s")
    assert batch.entries[1] == codec.Invalid(
        ErrorCode.INVALID_REQUEST, "invalid request: not an object"
    )


@pytest.mark.parametrize(
    ("text", "code", "request_id"),
    [
        ("{not json", ErrorCode.PARSE_ERROR, None),
        (b"\xff\xfe", ErrorCode.PARSE_ERROR, None),
        ("[]", ErrorCode.INVALID_REQUEST, None),
        ('{"jsonrpc":"1.0","method":"a","id":1}', ErrorCode.INVALID_REQUEST, 1),
        ('{"jsonrpc":"2.0","id":2}', ErrorCode.INVALID_REQUEST, 2),
        ('{"jsonrpc":"2.0","method":5,"id":3}', ErrorCode.INVALID_REQUEST, 3),
        ('{"jsonrpc":"2.0","method":"a","params":3,"id":4}', ErrorCode.INVALID_REQUEST, 4),
        ('{"jsonrpc":"2.0","method":"a","id":true}', ErrorCode.INVALID_REQUEST, None),
        ('{"jsonrpc":"2.0","method":"a","id":{}}', ErrorCode.INVALID_REQUEST, None),
        ('"just a string"', ErrorCode.INVALID_REQUEST, None),
    ],
)
def test_bad_messages_become_one_error_entry(text: str, code: ErrorCode, request_id: Any) -> None:
    incoming = codec.parse_incoming(text)
    assert not incoming.batch
    [entry] = incoming.entries
    assert isinstance(entry, codec.Invalid)
    assert (entry.code, entry.id) == (code, request_id)


def test_replies_parse_into_responses_and_notifications() -> None:
    reply = codec.parse_reply(
        '[{"jsonrpc":"2.0","id":1,"result":null},'
        '{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"m"}},'
        '{"jsonrpc":"2.0","method":"stats","params":{"seq":3}}]'
    )
    assert reply.invalid is None
    assert reply.entries == (
        codec.Response(1, result=None),
        codec.Response(2, error={"code": -32601, "message": "m"}),
        codec.Notification("stats", {"seq": 3}),
    )
    assert codec.parse_reply("nope").invalid is not None
    assert codec.parse_reply('{"x":1}').invalid == "not a JSON-RPC 2.0 response"


def test_dumps_refuses_nan() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        codec.dumps({"x": float("nan")})


REGISTRY: Registry[list[str]] = Registry()


@REGISTRY.method(
    "t.echo",
    doc="echo",
    result="{text, times}",
    params=(
        Param("text", ParamType.STRING, "what", required=True),
        Param("times", ParamType.INTEGER, "how often", default=1, minimum=1, maximum=3),
        Param("ids", ParamType.STRINGS, "ids", default=None),
    ),
)
async def _echo(ctx: list[str], text: str, times: int, ids: list[str] | None) -> dict[str, Any]:
    ctx.append(text)
    return {"text": text * times, "ids": ids}


@REGISTRY.method("t.fail", doc="fails", result="never")
async def _fail(ctx: list[str]) -> None:
    raise RpcError(ErrorCode.REPORT_NOT_FOUND, "no report 'x'", {"id": "x"})


@REGISTRY.method("t.nan", doc="not JSON", result="never")
async def _nan(ctx: list[str]) -> float:
    return float("nan")


@REGISTRY.method("t.bug", doc="a bug", result="never")
async def _bug(ctx: list[str]) -> None:
    raise ZeroDivisionError("secret detail")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "missing required parameter 'text'"),
        ({"text": 5}, "'text' must be a string, got an integer"),
        ({"text": "a", "times": True}, "'times' must be an integer, got a boolean"),
        ({"text": "a", "times": 0}, "'times' must be at least 1"),
        ({"text": "a", "times": 4}, "'times' must be at most 3"),
        ({"text": "a", "ids": ["a", 1]}, "'ids' must be an array of string"),
        ({"text": "a", "nope": 1}, "unknown parameter 'nope'"),
        (["a", 1, None, 4], "takes at most 3 parameter(s)"),
    ],
)
def test_bind_names_the_parameter(params: Any, message: str) -> None:
    with pytest.raises(RpcError) as caught:
        REGISTRY.get("t.echo").bind(params)
    assert caught.value.code == ErrorCode.INVALID_PARAMS
    assert message in caught.value.message


def test_bind_fills_defaults_and_takes_positions() -> None:
    spec = REGISTRY.get("t.echo")
    assert spec.bind({"text": "a"}) == {"text": "a", "times": 1, "ids": None}
    assert spec.bind(["a", 2]) == {"text": "a", "times": 2, "ids": None}


def test_discover_lists_params_results_and_errors() -> None:
    found = REGISTRY.discover()
    [echo] = [m for m in found["methods"] if m["name"] == "t.echo"]
    assert echo["params"][1] == {
        "name": "times",
        "type": "integer",
        "required": False,
        "default": 1,
        "minimum": 1,
        "maximum": 3,
        "doc": "how often",
    }


def ok_call(request_id: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "t.echo", "params": {"text": "a"}, "id": request_id}


async def test_dispatch_answers_each_kind_of_message() -> None:
    dispatcher = Dispatcher(REGISTRY)
    seen: list[str] = []

    async def answer(message: Any) -> Any:
        text = await dispatcher.handle(json.dumps(message), seen)
        return None if text is None else json.loads(text)

    ok = await answer({"jsonrpc": "2.0", "method": "t.echo", "params": {"text": "a"}, "id": 1})
    assert ok == {"jsonrpc": "2.0", "id": 1, "result": {"text": "a", "ids": None}}
    unknown = await answer({"jsonrpc": "2.0", "method": "t.nope", "id": 2})
    assert unknown["error"]["code"] == ErrorCode.METHOD_NOT_FOUND
    failed = await answer({"jsonrpc": "2.0", "method": "t.fail", "id": 3})
    assert failed["error"] == {"code": -32001, "message": "no report 'x'", "data": {"id": "x"}}
    bug = await answer({"jsonrpc": "2.0", "method": "t.bug", "id": 4})
    assert bug["error"]["code"] == ErrorCode.INTERNAL_ERROR
    assert "secret" not in bug["error"]["message"]
    nan = await answer([{"jsonrpc": "2.0", "method": "t.nan", "id": 9}, ok_call(10)])
    assert nan[0]["error"]["code"] == ErrorCode.INTERNAL_ERROR
    assert nan[1]["result"]["text"] == "a"
    # A notification runs but gets no answer, not even for an error.
    assert await answer({"jsonrpc": "2.0", "method": "t.echo", "params": {"text": "n"}}) is None
    assert await answer({"jsonrpc": "2.0", "method": "t.nope"}) is None
    assert seen == ["a", "a", "n"]
    # A batch answers in order, leaving notifications out; only notifications: nothing.
    batch = await answer(
        [
            {"jsonrpc": "2.0", "method": "t.echo", "params": ["b", 2], "id": 5},
            {"jsonrpc": "2.0", "method": "t.echo", "params": {"text": "c"}},
            {"bad": 1},
            {"jsonrpc": "2.0", "method": "t.echo", "params": {}, "id": 6},
        ]
    )
    assert [entry.get("id") for entry in batch] == [5, None, 6]
    assert batch[0]["result"]["text"] == "bb"
    assert batch[1]["error"]["code"] == ErrorCode.INVALID_REQUEST
    assert batch[2]["error"]["code"] == ErrorCode.INVALID_PARAMS
    assert await answer([{"jsonrpc": "2.0", "method": "t.echo", "params": ["d"]}]) is None
    parse = json.loads(await dispatcher.handle("{", seen) or "")
    assert parse == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": parse["error"]["message"]},
    }


def test_a_file_name_that_is_not_utf8_is_sent_escaped() -> None:
    # os.fsdecode(b"caf\xe9.csv") holds a lone surrogate: sent as is, the UTF-8 encoder
    # of the WebSocket would fail and the connection with it.
    name = "caf\udce9.csv"
    text = codec.dumps(codec.notification("file.rejected", {"source": name}))
    text.encode("utf-8")
    assert json.loads(text)["params"]["source"] == "caf\\xe9.csv"
    assert codec.dumps(["ü"]) == '["ü"]'
