"""The bridge between Textual's asyncio loop and trio: :class:`TrioBridge`.

This is the only module of the TUI that imports trio. The TUI talks to the service with
the same trio :class:`~pywats.rpc.client.RpcClient` as the CLI and the tests, run as a
*trio guest run* on Textual's asyncio loop (:func:`trio.lowlevel.start_guest_run`, with
``loop.call_soon_threadsafe`` and ``host_uses_signal_set_wakeup_fd=True``; the host owns
the process's signal handlers, see :mod:`tui.run`). Both run on the app's thread: trio
moves only its wait for I/O to a worker thread.

How the two sides meet:

- asyncio -> trio: :meth:`TrioBridge.call` hands the request to trio with the trio
  token's ``run_sync_soon``; a trio task makes the call and resolves an asyncio future
  with the answer (or the exception).
- trio -> asyncio: trio tasks post Textual messages (:mod:`tui.messages`) to the app.
- Lifetimes (qtrio's rule): every trio task runs inside one outer cancel scope.
  :meth:`TrioBridge.stop` cancels it through the token and waits for the run's outcome,
  so no way out of the app (quit key, palette, Ctrl-C, SIGTERM, SIGHUP, an exception;
  the app calls :meth:`stop` on all of them) returns while trio still runs, and trio never
  warns that its guest run was abandoned.

Connection handling (trio side): connect, read ``service.status``, subscribe, post
``Connected``; then pump notifications (batched, so a burst of events costs the app a few
messages, not thousands) and poll ``service.status`` every :data:`POLL_S` seconds. When
the connection fails or ends, post ``Disconnected`` and try again after
:data:`RETRY_S` (at once on :meth:`reconnect_now`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import outcome
import trio
from textual.message import Message

from pywats.rpc.client import Notifications, RpcClient
from pywats.rpc.errors import (
    PermissionRefusedError,
    RpcClientError,
    RpcError,
    ServiceNotRunningError,
)
from tui.backend import NotConnectedError
from tui.messages import BackendFailed, Connected, Disconnected, Notified, StatusPolled

__all__ = ["BATCH_S", "CALL_TIMEOUT_S", "POLL_S", "RETRY_S", "TrioBridge"]

log = logging.getLogger("tui.bridge")

POLL_S = 2.0
"""Seconds between two ``service.status`` while connected (latency, server, clock)."""
RETRY_S = (0.5, 1.0, 2.0, 3.0)
"""Waits before the 1st, 2nd, ... connection attempt after a failure (the last repeats)."""
BATCH_S = 0.05
"""Notifications that arrive within this long after one another go to the app together."""
CALL_TIMEOUT_S = 60.0
"""Longest a call waits for its answer (``server.test`` with a report takes up to 45 s)."""

Note = tuple[str, Mapping[str, Any]]


def _settle(future: asyncio.Future[Any], result: outcome.Outcome[Any]) -> None:
    """Resolve ``future`` with ``result`` unless the asyncio side gave up on it."""
    if future.done():
        return
    if isinstance(result, outcome.Error):
        future.set_exception(result.error)
    else:
        future.set_result(result.unwrap())


class TrioBridge:
    """The app's :class:`~tui.backend.Backend`: an ``RpcClient`` in a trio guest run.

    Args:
        instance: the instance's name (shown, and used by :meth:`switch`).
        socket: its control socket (:func:`pywats.paths.find_socket`).
        poll_s: seconds between two status polls.
        retry_s: waits between connection attempts (:data:`RETRY_S`).
    """

    def __init__(
        self,
        instance: str,
        socket: Path,
        *,
        poll_s: float = POLL_S,
        retry_s: tuple[float, ...] = RETRY_S,
    ) -> None:
        self.instance = instance
        self.socket = socket
        self.poll_s = poll_s
        self.retry_s = retry_s
        # Made here, not in the run: stop() may come before the run's first step, and a
        # scope cancelled before it is entered cancels what runs inside it at once.
        self._scope = trio.CancelScope()
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._client: RpcClient | None = None
        self._session: trio.CancelScope | None = None
        self._wake: trio.Event | None = None
        self._post: Callable[[Message], object] = lambda message: None
        self._done: asyncio.Future[outcome.Outcome[None]] | None = None
        self._stopping = False

    # --- the asyncio side -------------------------------------------------------------

    def start(self, post: Callable[[Message], object]) -> None:
        """Start the guest run on the running asyncio loop; ``post`` reaches the app.

        The process's signal handlers must be on the asyncio loop already (the host owns
        them: ``host_uses_signal_set_wakeup_fd=True``).
        """
        if self._done is not None:
            raise RuntimeError("TrioBridge.start() was called twice")
        loop = asyncio.get_running_loop()
        self._post = post
        self._done = loop.create_future()
        trio.lowlevel.start_guest_run(
            self._main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            run_sync_soon_not_threadsafe=loop.call_soon,
            done_callback=self._finished,
            host_uses_signal_set_wakeup_fd=True,
        )

    @property
    def started(self) -> bool:
        """Whether :meth:`start` ran."""
        return self._done is not None

    @property
    def finished(self) -> bool:
        """Whether the trio run is over (its outcome is in)."""
        return self._done is not None and self._done.done()

    def _finished(self, result: outcome.Outcome[None]) -> None:
        # Trio calls this on the host loop once the run is over, whatever ended it.
        done = self._done
        if done is not None and not done.done():
            done.set_result(result)
        if isinstance(result, outcome.Error):
            log.error("the trio side failed", exc_info=result.error)
            if not self._stopping:
                self._post(BackendFailed(f"{type(result.error).__name__}: {result.error}"))

    def _in_trio(self, function: Callable[[], object]) -> None:
        """Run ``function`` in the trio run soon (dropped if there is none any more)."""
        token = self._token
        if token is None:
            function()  # the run has not taken its first step: nothing of it runs yet
            return
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(function)

    async def stop(self) -> None:
        """Cancel everything trio runs and wait for the run's outcome (idempotent).

        Raises whatever the trio side raised, if it failed (after it has ended).
        """
        done = self._done
        if done is None:
            return
        self._stopping = True
        if not done.done():
            self._in_trio(self._scope.cancel)
        # Shielded: if our caller is cancelled the run still ends, and the next stop()
        # waits for the same outcome.
        result = await asyncio.shield(done)
        if isinstance(result, outcome.Error):
            log.debug("trio side ended with %r", result.error)

    async def call(self, method: str, /, **params: Any) -> Any:
        """Call ``method`` on the service through trio; returns its result.

        Raises:
            NotConnectedError: no connection right now (nothing was sent).
            RpcError, ConnectionLostError, PermissionRefusedError: as ``RpcClient.call``.
        """
        if self._token is None or self._client is None or self.finished:
            raise NotConnectedError(f"not connected to the service at {self.socket}", self.socket)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._in_trio(lambda: self._start_call(future, method, params))
        return await future

    def reconnect_now(self) -> None:
        """Try to connect at once instead of after the current wait."""
        self._in_trio(self._wake_up)

    def switch(self, instance: str, socket: Path) -> None:
        """Drop the connection (if any) and connect to ``socket`` from now on."""

        def switch() -> None:
            self.instance, self.socket = instance, socket
            if self._session is not None:
                self._session.cancel()
            self._wake_up()

        self._in_trio(switch)

    # --- the trio side ----------------------------------------------------------------

    def _start_call(self, future: asyncio.Future[Any], method: str, params: dict[str, Any]) -> None:
        if self._nursery is None:  # the run is ending: nothing may wait for an answer
            _settle(future, outcome.Error(NotConnectedError("not connected", self.socket)))
            return
        self._nursery.start_soon(self._do_call, future, method, params)

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._connect_forever)
        finally:
            self._nursery = None

    async def _do_call(
        self, future: asyncio.Future[Any], method: str, params: dict[str, Any]
    ) -> None:
        client = self._client
        if client is None:
            _settle(future, outcome.Error(NotConnectedError("not connected", self.socket)))
            return
        try:
            with trio.CancelScope() as scope:
                # The asyncio side gave up (its worker was cancelled): so does the call.
                future.add_done_callback(
                    lambda f: self._in_trio(scope.cancel) if f.cancelled() else None
                )
                try:
                    result = await client.call(method, **params)
                except Exception as exc:
                    _settle(future, outcome.Error(exc))
                else:
                    _settle(future, outcome.Value(result))
        finally:
            # Cancelled (the bridge stops): whoever waits must not wait for ever.
            if not future.done():
                future.cancel()

    async def _connect_forever(self) -> None:
        failures = 0
        while True:
            self._wake = trio.Event()
            socket = self.socket
            kind, message = await self._session_once(socket)
            if kind == "connected":
                failures = 0
                kind, message = "lost", f"the connection to {socket} ended"
            delay = self.retry_s[min(failures, len(self.retry_s) - 1)]
            failures += 1
            log.info("not connected to %s (%s): %s; again in %g s", socket, kind, message, delay)
            self._post(Disconnected(kind, str(socket), message, delay))
            with trio.move_on_after(delay):
                await self._wake.wait()

    async def _session_once(self, socket: Path) -> tuple[str, str]:
        """One connection, for as long as it lasts; returns why it ended."""
        try:
            with trio.CancelScope() as self._session:
                async with RpcClient(socket, timeout_s=CALL_TIMEOUT_S) as client:
                    status = await client.call("service.status")
                    notes = await client.subscribe()
                    self._client = client
                    log.info("connected to %s (stream %s)", socket, notes.stream)
                    self._post(Connected(status, str(socket), notes.stream))
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._poll, client, nursery.cancel_scope)
                        await self._pump(notes)
                        nursery.cancel_scope.cancel()
        except ServiceNotRunningError as exc:
            return "not_running", str(exc)
        except PermissionRefusedError as exc:
            return "refused", str(exc)
        except (RpcClientError, RpcError, OSError) as exc:
            return "lost", str(exc)
        finally:
            self._client = None
            self._session = None
        return "connected", ""

    async def _pump(self, notes: Notifications) -> None:
        """Hand notifications to the app in batches until the connection ends."""
        send, receive = trio.open_memory_channel[Note](math.inf)

        async def read() -> None:
            async with send:
                async for note in notes:
                    send.send_nowait((note.method, note.params))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            async with receive:
                async for first in receive:
                    # A burst arrives within moments: let it gather, then post it whole.
                    await trio.sleep(BATCH_S)
                    batch = [first]
                    while True:
                        try:
                            batch.append(receive.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    self._post(Notified(tuple(batch)))

    async def _poll(self, client: RpcClient, session: trio.CancelScope) -> None:
        while True:
            await trio.sleep(self.poll_s)
            try:
                status = await client.call("service.status")
            except RpcError:
                continue
            except RpcClientError:
                session.cancel()
                return
            self._post(StatusPolled(status))
