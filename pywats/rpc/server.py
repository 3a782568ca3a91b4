"""The control socket: :class:`RpcServer` serves JSON-RPC 2.0 over WebSocket on a Unix socket.

Per connection, in this order:

1. The peer is checked (``SO_PEERCRED``, ``SO_PEERGROUPS``) before a byte is read: the
   service's own uid, root, or a member of ``[rpc] allowed_group``. Anyone else is closed
   without a byte; the refusal is logged once per uid.
2. The WebSocket handshake (trio-websocket ``wrap_server_stream``) must end within
   :data:`HANDSHAKE_TIMEOUT_S`.
3. Each message is answered by the :class:`~pywats.rpc.dispatch.Dispatcher`, up to
   :data:`CALLS_PER_CONNECTION` at once (a slow ``server.test`` does not hold up a
   ``service.status``). Inline methods (``service.status``, ``queue.stats``: answered from
   memory) are answered on the reader's task, in order, without a task per call. A
   message over :data:`MAX_MESSAGE_SIZE` closes the connection with code 1009; the
   service and the other connections go on.
4. ``events.subscribe`` gives the connection its own bounded hub
   :class:`~pywats.events.Subscription`, drained by the connection's sender task: a client
   that does not read fills its own buffer (and is told of the gap), never the service's.
5. On the way out the closing handshake gets :data:`CLOSE_TIMEOUT_S`, then the stream is cut.

Every task lives in :meth:`RpcServer.run`'s nursery or below it; nothing runs in the
background after it returns, and the socket file is removed on the way out.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import logging
import os
import socket
import stat
import struct
import time
from pathlib import Path
from typing import Any

import attrs
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_server_stream

from pywats.errors import ConfigError, PywatsError
from pywats.events import DEFAULT_BUFFER, Event, EventHub, Gap, Subscription
from pywats.paths import make_private_dir
from pywats.rpc import codec, wire
from pywats.rpc.api import REGISTRY, Context
from pywats.rpc.dispatch import Dispatcher
from pywats.rpc.limits import CLOSE_TIMEOUT_S, HANDSHAKE_TIMEOUT_S, MAX_MESSAGE_SIZE
from pywats.rpc.snapshots import StatusCache
from pywats.view import ServiceView

__all__ = [
    "CALLS_PER_CONNECTION",
    "CLOSE_TIMEOUT_S",
    "HANDSHAKE_TIMEOUT_S",
    "MAX_MESSAGE_SIZE",
    "SO_PEERGROUPS",
    "PeerCredentials",
    "PeerPolicy",
    "RpcServer",
    "RpcSettings",
    "peer_credentials",
]

log = logging.getLogger("pywats.rpc")

CALLS_PER_CONNECTION = 16
"""Calls of one connection answered at once; more wait (the connection stops reading)."""
SOCKET_MODE = 0o660
"""The socket file's mode: the service's user and group (the peer check does the rest)."""
SO_PEERGROUPS = 59
"""Linux's ``SO_PEERGROUPS`` (the peer's supplementary groups); not in :mod:`socket`."""
_MAX_GROUPS = 65536


@attrs.frozen
class RpcSettings:
    """Where the control socket is and who may use it (from the config)."""

    path: Path
    allowed_group: str | None = None
    """``[rpc] allowed_group``: a group name (or gid) whose members may connect."""
    mode: int = SOCKET_MODE


@attrs.frozen
class PeerCredentials:
    """Who is at the other end of a Unix connection (from the kernel, not from the peer)."""

    pid: int
    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    """Supplementary groups (empty where ``SO_PEERGROUPS`` is not supported)."""


def peer_credentials(sock: Any) -> PeerCredentials:
    """The credentials of a connected ``AF_UNIX`` socket's peer (a stdlib or trio socket)."""
    ucred = struct.Struct("3i")
    pid, uid, gid = ucred.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, ucred.size))
    groups: tuple[int, ...] = ()
    size = 64 * 4
    while True:
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, size)
        except OSError as exc:
            # ERANGE: more groups than fit; anything else (an old kernel): primary gid only.
            if exc.errno == errno.ERANGE and size < _MAX_GROUPS * 4:
                size *= 4
                continue
            break
        count = len(raw) // 4
        groups = struct.unpack(f"{count}I", raw[: count * 4])
        break
    return PeerCredentials(pid, uid, gid, groups)


def _group_id(name: str | None) -> int | None:
    if name is None:
        return None
    if name.isascii() and name.isdigit():  # isdigit alone takes "²", int() does not
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise ConfigError("rpc.allowed_group", f"no group named {name!r} on this machine") from None


@attrs.frozen
class PeerPolicy:
    """Who may use the socket: ``uid`` (the service's), root, and members of ``gid``."""

    uid: int
    gid: int | None = None

    def allows(self, peer: PeerCredentials) -> bool:
        """Whether ``peer`` may talk to the service."""
        if peer.uid in (0, self.uid):
            return True
        return self.gid is not None and (peer.gid == self.gid or self.gid in peer.groups)


class _Connection:
    """One accepted client: its calls and its event subscription (the :class:`Session`)."""

    def __init__(self, server: RpcServer, ws: WebSocketConnection, nursery: trio.Nursery) -> None:
        self._server = server
        self._ws = ws
        self._nursery = nursery
        self._calls = trio.Semaphore(CALLS_PER_CONNECTION)
        self._subscription: Subscription | None = None
        self._context = Context(server.view, self, server.db_path, server.status_cache)

    async def serve(self) -> None:
        """Answer messages until the peer closes (or sends too much)."""
        while True:
            try:
                message = await self._ws.get_message()
            except ConnectionClosed as exc:
                if exc.reason is not None and exc.reason.code == 1009:
                    log.warning("control socket: closed a connection that sent over 1 MiB")
                return
            dispatcher = self._server.dispatcher
            incoming = codec.parse_incoming(message)
            if dispatcher.inline(incoming):
                # A status poll answers from memory: a task of its own would cost more
                # than the answer (most of a round trip at thousands of calls a second).
                text = await dispatcher.answer(incoming, self._context)
                if text is not None:
                    await self._send(text)
                continue
            await self._calls.acquire()
            self._nursery.start_soon(self._answer, incoming)

    async def _answer(self, incoming: codec.Incoming) -> None:
        try:
            text = await self._server.dispatcher.answer(incoming, self._context)
            # It may have changed what the status says without an event (a pause).
            self._server.status_cache.clear()
            if text is not None:
                await self._send(text)
        finally:
            self._calls.release()

    async def _send(self, text: str) -> None:
        # The peer left: its side of the reader ends the connection.
        with contextlib.suppress(
            ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError
        ):
            await self._ws.send_message(text)

    # --- Session -------------------------------------------------------------------------

    def subscribe(self, since: int | None) -> dict[str, Any]:
        """See :class:`pywats.rpc.api.Session`."""
        hub = self._server.view.hub
        if self._subscription is None:
            missed = hub.last_seq - since if since is not None and since < hub.last_seq else 0
            self._subscription = hub.subscribe(buffer=self._server.subscription_buffer)
            self._nursery.start_soon(self._push, self._subscription, missed)
        return {"stream": hub.stream_id, "seq": hub.last_seq}

    def unsubscribe(self) -> bool:
        """See :class:`pywats.rpc.api.Session`."""
        subscription, self._subscription = self._subscription, None
        if subscription is None:
            return False
        # Not cancelled: a send cut in the middle would corrupt the connection's framing.
        # The sender finishes the message in hand and sends no more.
        subscription.close()
        return True

    async def _push(self, subscription: Subscription, missed: int) -> None:
        hub = self._server.view.hub
        with subscription:
            if missed:
                # The hub keeps no history: what the client missed before it came is a gap.
                params = {
                    "stream": hub.stream_id,
                    "seq": hub.last_seq,
                    "at": time.time(),
                    "dropped": missed,
                }
                await self._send(codec.dumps(codec.notification(wire.GAP, params)))
            async for event in subscription:
                if self._subscription is not subscription:
                    return  # unsubscribed: the backlog is not wanted any more
                await self._send(self._server.notifications.text(event, hub))


class _Notifications:
    """Notification texts by sequence number, so that an event is encoded once and not
    once per subscriber (ten subscribers during a burst would otherwise spend the event
    loop's time on JSON). Holds the latest ``keep`` texts."""

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._texts: dict[int, str] = {}

    def text(self, event: Event, hub: EventHub) -> str:
        """The notification for ``event`` as sent on the wire."""
        if isinstance(event, Gap):  # per subscriber: its own count, no seq of its own
            method, params = wire.notification_of(event, hub.stream_id, hub.last_seq)
            return codec.dumps(codec.notification(method, params))
        text = self._texts.get(event.seq)
        if text is None:
            method, params = wire.notification_of(event, hub.stream_id, hub.last_seq)
            text = self._texts[event.seq] = codec.dumps(codec.notification(method, params))
            if len(self._texts) > self._keep:
                del self._texts[next(iter(self._texts))]  # the oldest: dicts keep order
        return text


class RpcServer:
    """The control socket of one service.

    Args:
        view: the service's view (the one way in).
        settings: the socket's path, mode and allowed group.
        db_path: the queue database, for the read-only queue methods (``None``: they
            answer ``NOT_IMPLEMENTED``).
        subscription_buffer: events a subscriber may fall behind by before it loses some.
        send_buffer: the kernel send buffer per connection (``SO_SNDBUF``), ``None`` for the
            system's default; bounds what a client that does not read holds in the kernel.

    Raises (from :meth:`run`, before ``started``):
        ConfigError: ``allowed_group`` names no group.
        PywatsError: another process listens on the socket, or something that is not a
            socket is in the way.
    """

    def __init__(
        self,
        view: ServiceView,
        settings: RpcSettings,
        *,
        db_path: Path | None = None,
        subscription_buffer: int = DEFAULT_BUFFER,
        send_buffer: int | None = None,
    ) -> None:
        self.view = view
        self.settings = settings
        self.db_path = db_path
        self.subscription_buffer = subscription_buffer
        self.send_buffer = send_buffer
        self.dispatcher = Dispatcher(REGISTRY)
        self.notifications = _Notifications(keep=max(subscription_buffer, 1))
        self.status_cache = StatusCache()
        self.policy = PeerPolicy(os.geteuid(), _group_id(settings.allowed_group))
        self._refused: set[int] = set()
        self.connections = 0
        """Connections open now."""

    @property
    def path(self) -> Path:
        """The socket's path."""
        return self.settings.path

    async def run(
        self,
        *,
        handler_nursery: trio.Nursery | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Bind the socket, then serve until cancelled; ``started()`` once it listens.

        Connection tasks run in ``handler_nursery`` if given, else in a nursery of this
        call. The socket file is removed when this returns (if it is still ours).
        """
        sock, identity = await self._bind()
        try:
            listener = trio.SocketListener(sock)
            async with trio.open_nursery() as nursery:
                await nursery.start(_serve, self._handle, listener, handler_nursery or nursery)
                log.info("control socket listening on %s", self.path)
                task_status.started()
        finally:
            sock.close()
            self._unlink_if_ours(identity)

    def _unlink_if_ours(self, identity: os.stat_result) -> None:
        # A second service that found our socket dead and bound its own must keep it.
        try:
            now = os.stat(self.path)
            if (now.st_dev, now.st_ino) == (identity.st_dev, identity.st_ino):
                os.unlink(self.path)
        except FileNotFoundError:
            pass

    async def _bind(self) -> tuple[trio.socket.SocketType, os.stat_result]:
        path = self.path
        await trio.to_thread.run_sync(make_private_dir, path.parent)
        await self._remove_leftover(path)
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await sock.bind(str(path))
            # The directory is private (0700) or systemd's, so nobody can connect between
            # bind and chmod with the wider mode.
            os.chmod(path, self.settings.mode)
            sock.listen(128)
            return sock, os.stat(path)
        except BaseException:
            sock.close()
            raise

    async def _remove_leftover(self, path: Path) -> None:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(info.st_mode):
            raise PywatsError(
                f"{path} exists and is not a socket: remove it (the control socket goes there)"
            )
        probe = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            # A socket nobody listens on: left behind by a service that was killed.
            log.info("removing the stale control socket %s", path)
            path.unlink(missing_ok=True)
            return
        finally:
            probe.close()
        raise PywatsError(
            f"another process is listening on the control socket {path}: is this instance"
            " already running (with another state directory)?"
        )

    async def _handle(self, stream: trio.SocketStream) -> None:
        try:
            peer = peer_credentials(stream.socket)
            if not self.policy.allows(peer):
                if peer.uid not in self._refused:
                    self._refused.add(peer.uid)
                    log.warning(
                        "control socket: refused uid %d (pid %d): not the service's user, root"
                        " or a member of [rpc] allowed_group (further refusals of this uid are"
                        " not logged)",
                        peer.uid,
                        peer.pid,
                    )
                return
            if self.send_buffer is not None:
                stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
            self.connections += 1
            try:
                await self._converse(stream)
            finally:
                self.connections -= 1
        except Exception:
            # One connection's failure must never take the service down.
            log.exception("control socket: a connection failed")
        finally:
            await trio.aclose_forcefully(stream)

    async def _converse(self, stream: trio.SocketStream) -> None:
        async with trio.open_nursery() as nursery:
            ws: WebSocketConnection | None = None
            with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
                try:
                    request = await wrap_server_stream(
                        nursery, stream, max_message_size=MAX_MESSAGE_SIZE
                    )
                    ws = await request.accept()
                except ConnectionClosed:
                    pass
            if ws is None:
                nursery.cancel_scope.cancel()
                return
            try:
                async with trio.open_nursery() as calls:
                    connection = _Connection(self, ws, calls)
                    try:
                        await connection.serve()
                    finally:
                        connection.unsubscribe()
                        calls.cancel_scope.cancel()
            finally:
                # Shielded: on the service's stop this runs cancelled, and the client
                # should still hear "going away" if it reads within the second.
                with trio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
                    await ws.aclose(1001 if ws.closed is None else 1000, "closing")
                nursery.cancel_scope.cancel()


async def _serve(
    handler: Any,
    listener: trio.SocketListener,
    handler_nursery: trio.Nursery,
    *,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept connections for ever (``trio.serve_listeners`` keeps EMFILE from killing it)."""
    await trio.serve_listeners(
        handler, [listener], handler_nursery=handler_nursery, task_status=task_status
    )
