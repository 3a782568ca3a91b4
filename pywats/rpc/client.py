"""The one client of the control socket: :class:`RpcClient` (the CLI, the TUI, tests).

::

    async with RpcClient(find_socket("ict")) as client:
        status = await client.call("service.status")
        async for note in await client.subscribe():
            print(note.method, note.params)

Errors (:mod:`pywats.rpc.errors`): :class:`ServiceNotRunningError` when nothing listens
(the message names the socket path), :class:`PermissionRefusedError` when the socket's
mode or the service's peer check refuses us, :class:`ConnectionLostError` when the
connection ends before an answer, :class:`RpcError` for an error answer.

Notifications are buffered (:data:`NOTIFICATION_BUFFER`); when the buffer is full the
client stops reading, so answers to calls wait behind unread notifications: read them.

Calls that several tasks make at the same moment to methods the service answers from
memory (:data:`GATHERED`: status polls) leave as one batch message: one frame, one write
and one answer instead of one of each per call, which on a small machine is most of a
call's cost. A lone call is sent as it is, without waiting; other methods are never
gathered, so a poll never waits behind a slow call.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import trio
from trio_websocket import (
    ConnectionClosed,
    HandshakeError,
    WebSocketConnection,
    wrap_client_stream,
)

from pywats.rpc import codec
from pywats.rpc.errors import (
    ConnectionLostError,
    PermissionRefusedError,
    RpcError,
    ServiceNotRunningError,
)
from pywats.rpc.limits import CLOSE_TIMEOUT_S, HANDSHAKE_TIMEOUT_S, MAX_MESSAGE_SIZE
from pywats.rpc.methods import INLINE

__all__ = ["GATHERED", "NOTIFICATION_BUFFER", "Notifications", "RpcClient"]

NOTIFICATION_BUFFER = 1000
"""Notifications the client holds before it stops reading the socket."""

GATHERED = INLINE
"""Methods whose concurrent calls share one batch message: those the service answers at
once from memory (:attr:`~pywats.rpc.methods.MethodSpec.inline`). They only read, so
sending one twice (after a send that failed half-way) is harmless."""


class _EofWatch(trio.abc.HalfCloseableStream):
    """A stream that says when the peer closed: a refused peer gets EOF before a byte."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.socket = stream.socket
        self.received = 0
        self.eof = trio.Event()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self.stream.send_all(data)
        except trio.BrokenResourceError:
            # Closed before our handshake could even be sent: refused just the same.
            self.eof.set()
            raise

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        try:
            data = await self.stream.receive_some(max_bytes)
        except trio.BrokenResourceError:
            self.eof.set()
            raise
        self.received += len(data)
        if not data:
            self.eof.set()
        return data

    async def send_eof(self) -> None:
        await self.stream.send_eof()

    async def aclose(self) -> None:
        await self.stream.aclose()


class Notifications:
    """The notifications of a subscription, as an async iterator of
    :class:`~pywats.rpc.codec.Notification`; it ends when the connection does.

    ``stream`` and ``seq`` are what ``events.subscribe`` answered.
    """

    def __init__(
        self, receive: trio.MemoryReceiveChannel[codec.Notification], stream: str, seq: int
    ) -> None:
        self._receive = receive
        self.stream = stream
        self.seq = seq

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> codec.Notification:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None


class RpcClient:
    """A connection to a service's control socket (an async context manager).

    Args:
        path: the socket (:func:`pywats.paths.find_socket`).
        timeout_s: longest :meth:`call` waits for its answer (``math.inf``: no limit).
        notification_buffer: notifications held before the client stops reading.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        timeout_s: float = 30.0,
        notification_buffer: int = NOTIFICATION_BUFFER,
    ) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._waiting: dict[int, trio.Event] = {}
        self._answers: dict[int, codec.Response] = {}
        self._unsent: dict[int, dict[str, Any]] = {}  # gathered calls not yet sent
        self._gather_lock = trio.Lock()
        self._send_notes, self._receive_notes = trio.open_memory_channel[codec.Notification](
            notification_buffer
        )
        self._ws: WebSocketConnection | None = None
        self._stream: trio.SocketStream | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._closed: str | None = None

    async def __aenter__(self) -> Self:
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(self._session())
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)
        return None

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[None]:
        failed: Exception | None = None
        async with trio.open_nursery() as nursery:
            try:
                self._ws = await self._connect(nursery)
                nursery.start_soon(self._read, self._ws)
                yield
            except Exception as exc:
                # Raised after the nursery, so the caller gets the exception itself and
                # not an exception group around it (the nursery holds only our tasks).
                failed = exc
            finally:
                if self._ws is not None:
                    with trio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
                        await self._ws.aclose()
                if self._stream is not None:
                    # aclose() leaves the stream open when the peer closed first (1009).
                    await trio.aclose_forcefully(self._stream)
                nursery.cancel_scope.cancel()
        if failed is not None:
            raise failed

    async def _connect(self, nursery: trio.Nursery) -> WebSocketConnection:
        path = self.path
        try:
            stream = await trio.open_unix_socket(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise ServiceNotRunningError(
                f"the service is not running: nothing listens on {path}", path
            ) from None
        except PermissionError:
            raise PermissionRefusedError(
                f"permission refused: cannot connect to {path} (ask for [rpc] allowed_group"
                " membership, or run as the service's user)",
                path,
            ) from None
        self._stream = stream
        watched = _EofWatch(stream)
        ws: WebSocketConnection | None = None
        refused = False
        with trio.move_on_after(HANDSHAKE_TIMEOUT_S) as timeout:
            async with trio.open_nursery() as race:

                async def handshake() -> None:
                    nonlocal ws
                    with contextlib.suppress(ConnectionClosed, HandshakeError):
                        ws = await wrap_client_stream(
                            nursery,
                            watched,  # type: ignore[arg-type]  # any stream works
                            "localhost",
                            "/rpc",
                            max_message_size=MAX_MESSAGE_SIZE,
                        )
                        race.cancel_scope.cancel()

                async def closed() -> None:
                    nonlocal refused
                    await watched.eof.wait()
                    refused = watched.received == 0
                    race.cancel_scope.cancel()

                race.start_soon(handshake)
                race.start_soon(closed)
        if ws is not None:
            return ws
        await trio.aclose_forcefully(stream)
        if refused:
            raise PermissionRefusedError(
                f"permission refused: the service at {path} closed the connection before"
                " answering (this user is not its user, root, or in [rpc] allowed_group)",
                path,
            )
        why = "no handshake within 5 s" if timeout.cancelled_caught else "closed in the handshake"
        raise ConnectionLostError(f"cannot talk to the service at {path}: {why}", path)

    async def _read(self, ws: WebSocketConnection) -> None:
        async with self._send_notes:
            while True:
                try:
                    message = await ws.get_message()
                except ConnectionClosed as exc:
                    reason = exc.reason
                    self._closed = (
                        f"the service closed the connection ({reason.code} {reason.reason or ''})"
                        if reason is not None
                        else "the connection closed"
                    ).strip()
                    break
                reply = codec.parse_reply(message)
                for entry in reply.entries:
                    if isinstance(entry, codec.Notification):
                        await self._send_notes.send(entry)
                    elif isinstance(entry.id, int) and entry.id in self._waiting:
                        self._answers[entry.id] = entry
                        self._waiting.pop(entry.id).set()
        for event in self._waiting.values():
            event.set()  # they find no answer and raise ConnectionLostError

    def _connection(self) -> WebSocketConnection:
        if self._ws is None:
            raise RuntimeError("RpcClient is used outside its async with block")
        return self._ws

    async def _send(self, text: str) -> None:
        ws = self._connection()
        if self._closed is not None:
            raise ConnectionLostError(self._closed, self.path)
        try:
            await ws.send_message(text)
        except ConnectionClosed:
            raise ConnectionLostError(self._closed or "the connection closed", self.path) from None

    async def _wait(self, request_id: int, done: trio.Event) -> codec.Response:
        try:
            with trio.fail_after(self.timeout_s):
                await done.wait()
        except trio.TooSlowError:
            raise ConnectionLostError(
                f"no answer from the service at {self.path} within {self.timeout_s:g} s",
                self.path,
            ) from None
        finally:
            self._waiting.pop(request_id, None)
        answer = self._answers.pop(request_id, None)
        if answer is None:
            raise ConnectionLostError(self._closed or "the connection closed", self.path)
        return answer

    @staticmethod
    def _result(answer: codec.Response) -> Any:
        if answer.error is not None:
            error = answer.error
            raise RpcError(
                int(error.get("code", 0)), str(error.get("message", "")), error.get("data")
            )
        return answer.result

    def _register(self) -> tuple[int, trio.Event]:
        request_id = next(self._ids)
        done = trio.Event()
        self._waiting[request_id] = done
        return request_id, done

    async def call(self, method: str, /, **params: Any) -> Any:
        """Call ``method`` with named ``params``; returns its result.

        Raises:
            RpcError: the service answered with an error.
            ConnectionLostError: the connection ended, or no answer within ``timeout_s``.
        """
        request_id, done = self._register()
        request = codec.request(method, params or None, request_id)
        if method in GATHERED:
            await self._send_gathered(request_id, request)
        else:
            await self._send(codec.dumps(request))
        return self._result(await self._wait(request_id, done))

    async def _send_gathered(self, request_id: int, request: dict[str, Any]) -> None:
        """Send ``request`` with every gathered call not sent yet (see the module doc).

        The first caller takes the lock and sends what has gathered by then; a caller
        whose request went with an earlier one finds it sent and returns.
        """
        self._unsent[request_id] = request
        try:
            async with self._gather_lock:
                if request_id not in self._unsent:
                    return
                batch = list(self._unsent.values())
                self._unsent.clear()
                try:
                    await self._send(codec.dumps(batch[0] if len(batch) == 1 else batch))
                except BaseException:
                    # Perhaps not sent: the other callers' requests go with the next
                    # sender (this one's caller gets the exception).
                    self._unsent = {
                        entry["id"]: entry for entry in batch if entry["id"] != request_id
                    } | self._unsent
                    raise
        finally:
            self._unsent.pop(request_id, None)

    async def notify(self, method: str, /, **params: Any) -> None:
        """Send ``method`` as a notification (no answer comes, not even an error)."""
        message = codec.request(method, params or None, None)
        del message["id"]
        await self._send(codec.dumps(message))

    async def batch(self, calls: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Any]:
        """Send ``calls`` as one batch; returns each result or :class:`RpcError`, in order."""
        registered = [self._register() for _ in calls]
        messages = [
            codec.request(method, dict(params) or None, request_id)
            for (method, params), (request_id, _) in zip(calls, registered, strict=True)
        ]
        await self._send(codec.dumps(messages))
        results: list[Any] = []
        for request_id, done in registered:
            answer = await self._wait(request_id, done)
            try:
                results.append(self._result(answer))
            except RpcError as exc:
                results.append(exc)
        return results

    async def subscribe(self, since: int | None = None) -> Notifications:
        """``events.subscribe``; returns the notifications from here on."""
        params = {} if since is None else {"since": since}
        answer = await self.call("events.subscribe", **params)
        return Notifications(self._receive_notes, str(answer["stream"]), int(answer["seq"]))
