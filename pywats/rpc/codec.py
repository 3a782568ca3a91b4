"""JSON-RPC 2.0 as data: parse what arrives, build what is sent. No I/O here.

One WebSocket message carries one JSON-RPC message: a request, a notification, a
response, or a batch (an array) of them. :func:`parse_incoming` turns a message sent to the
service into :class:`Request` entries and :class:`Invalid` entries (the ones to answer
with an error right away); :func:`parse_reply` turns a message sent to a client into
:class:`Response` and :class:`Notification` entries. Neither raises on bad input: a
connection outlives any one bad message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import attrs

from pywats import filenames
from pywats.rpc.errors import ErrorCode

__all__ = [
    "Encoded",
    "Id",
    "Incoming",
    "Invalid",
    "Notification",
    "Reply",
    "Request",
    "Response",
    "dumps",
    "error_response",
    "notification",
    "parse_incoming",
    "parse_reply",
    "request",
    "result_response",
]

Id: TypeAlias = int | str | None
"""A request id; ``None`` only when the request's own id could not be read."""

Params: TypeAlias = Mapping[str, Any] | Sequence[Any] | None

_SURROGATE = re.compile("[\ud800-\udfff]")


@attrs.frozen
class Request:
    """One call to a method. ``notification`` (no ``id`` member): no answer is sent."""

    method: str
    params: Params
    id: Id = None
    notification: bool = False


@attrs.frozen
class Invalid:
    """An entry that is not a request: answered with ``code`` and ``message`` (id ``id``)."""

    code: ErrorCode
    message: str
    id: Id = None


@attrs.frozen
class Incoming:
    """What one message to the service holds; ``batch`` says whether to answer with an array."""

    entries: tuple[Request | Invalid, ...]
    batch: bool


@attrs.frozen
class Response:
    """An answer: ``result`` or ``error`` (``code``, ``message``, ``data``)."""

    id: Id
    result: Any = None
    error: Mapping[str, Any] | None = None


@attrs.frozen
class Notification:
    """A message from the service nobody asked for (an event)."""

    method: str
    params: Mapping[str, Any]


@attrs.frozen
class Reply:
    """What one message to a client holds; ``invalid`` says why it could not be read."""

    entries: tuple[Response | Notification, ...]
    invalid: str | None = None


@attrs.frozen
class Encoded:
    """A result that is JSON text already (made by :func:`dumps`): sent as it is, so an
    answer that many calls share is encoded once."""

    text: str


def dumps(message: Any) -> str:
    """The compact JSON text of a message (``allow_nan=False``: NaN is not JSON).

    A response whose ``result`` is :class:`Encoded` has that text spliced in, alone or in
    a batch; anywhere else an :class:`Encoded` is decoded first (rare, and not worth a
    faster way).
    A lone surrogate (a file name that is not UTF-8, decoded by :func:`os.fsdecode`) is
    written as its escaped form (:func:`pywats.filenames.escape_text`): no UTF-8 encoder
    would send it, and the connection would break on it.
    """
    if type(message) is dict and type(message.get("result")) is Encoded:
        head = _dumps({"jsonrpc": "2.0", "id": message["id"]})
        return f'{head[:-1]},"result":{message["result"].text}}}'
    if type(message) is list and message:
        # A batch of status polls (RpcClient gathers concurrent ones): each answer spliced.
        return "[" + ",".join(dumps(entry) for entry in message) + "]"
    return _dumps(message)


def _dumps(message: Any) -> str:
    text = json.dumps(
        message, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_decoded
    )
    if text.isascii():
        return text
    # Surrogates can only be inside JSON strings: escaping them there keeps the JSON valid.
    return _SURROGATE.sub(lambda m: json.dumps(filenames.escape_text(m.group()))[1:-1], text)


def _decoded(value: Any) -> Any:
    if isinstance(value, Encoded):
        return json.loads(value.text)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _load(data: str | bytes) -> tuple[Any, str | None]:
    try:
        return json.loads(data), None
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"parse error: {exc}"


def _valid_id(value: Any) -> bool:
    # bool is an int to Python, not to JSON-RPC; floats are allowed by the spec but
    # discouraged, and nothing of ours sends them.
    return value is None or (isinstance(value, int | str) and not isinstance(value, bool))


def _entry(obj: Any) -> Request | Invalid:
    if not isinstance(obj, dict):
        return Invalid(ErrorCode.INVALID_REQUEST, "invalid request: not an object")
    has_id = "id" in obj
    raw_id = obj.get("id")
    request_id: Id = raw_id if _valid_id(raw_id) else None
    if has_id and not _valid_id(raw_id):
        return Invalid(
            ErrorCode.INVALID_REQUEST, "invalid request: id must be a string or an integer"
        )
    if obj.get("jsonrpc") != "2.0":
        return Invalid(
            ErrorCode.INVALID_REQUEST, 'invalid request: "jsonrpc" must be "2.0"', request_id
        )
    method = obj.get("method")
    if not isinstance(method, str) or not method:
        return Invalid(
            ErrorCode.INVALID_REQUEST, 'invalid request: "method" must be a string', request_id
        )
    params = obj.get("params")
    if "params" in obj and not isinstance(params, dict | list):
        return Invalid(
            ErrorCode.INVALID_REQUEST,
            'invalid request: "params" must be an object or an array',
            request_id,
        )
    return Request(method, params, request_id, notification=not has_id)


def parse_incoming(data: str | bytes) -> Incoming:
    """Parse one message sent to the service. Never raises.

    Not JSON: one :class:`Invalid` with ``PARSE_ERROR``. An empty array: one
    ``INVALID_REQUEST`` (answered as a single response, as the spec says). A batch: one
    entry per element, in order.
    """
    obj, error = _load(data)
    if error is not None:
        return Incoming((Invalid(ErrorCode.PARSE_ERROR, error),), batch=False)
    if isinstance(obj, list):
        if not obj:
            return Incoming(
                (Invalid(ErrorCode.INVALID_REQUEST, "invalid request: empty batch"),), False
            )
        return Incoming(tuple(_entry(item) for item in obj), batch=True)
    return Incoming((_entry(obj),), batch=False)


def _reply_entry(obj: Any) -> Response | Notification | None:
    if not isinstance(obj, dict) or obj.get("jsonrpc") != "2.0":
        return None
    if "method" in obj and "id" not in obj:
        params = obj.get("params")
        return Notification(str(obj["method"]), params if isinstance(params, dict) else {})
    if "result" in obj:
        return Response(obj.get("id"), result=obj["result"])
    error = obj.get("error")
    if isinstance(error, dict):
        return Response(obj.get("id"), error=error)
    return None


def parse_reply(data: str | bytes) -> Reply:
    """Parse one message sent to a client (responses, notifications, or a batch). Never raises."""
    obj, error = _load(data)
    if error is not None:
        return Reply((), invalid=error)
    items = obj if isinstance(obj, list) else [obj]
    entries = [_reply_entry(item) for item in items]
    good = tuple(entry for entry in entries if entry is not None)
    invalid = None if len(good) == len(entries) else "not a JSON-RPC 2.0 response"
    return Reply(good, invalid=invalid)


def result_response(request_id: Id, result: Any) -> dict[str, Any]:
    """A success response object."""
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_response(request_id: Id, code: int, message: str, data: Any = None) -> dict[str, Any]:
    """An error response object (``data`` only when given)."""
    error: dict[str, Any] = {"code": int(code), "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def request(method: str, params: Mapping[str, Any] | None, request_id: Id) -> dict[str, Any]:
    """A request object (``params`` left out when ``None``)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        message["params"] = dict(params)
    return message


def notification(method: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """A notification object."""
    return {"jsonrpc": "2.0", "method": method, "params": dict(params)}
