"""What the app needs from whatever talks to the service: :class:`Backend`.

:class:`tui.bridge.TrioBridge` is the real one (the trio ``RpcClient`` in a guest run);
tests of screens use a double with canned answers. Nothing here imports trio.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from textual.message import Message

from pywats.rpc.errors import RpcClientError

__all__ = ["MUTATING_METHODS", "Backend", "NotConnectedError", "ReadOnlyError"]

MUTATING_METHODS = frozenset(
    {
        "service.pause",
        "service.resume",
        "service.stop",
        "queue.retry",
        "queue.delete",
        "queue.clean",
        "converters.enable",
        "converters.disable",
        "config.reload",
        "files.restore",
    }
)
"""Methods that change something; ``--read-only`` never calls them. (``server.test``
with ``send_report`` queues a report, so the app treats that call as changing too.)"""


class NotConnectedError(RpcClientError):
    """The call was not sent: there is no connection to the service right now."""


class ReadOnlyError(RpcClientError):
    """The call would change something, and the TUI runs with ``--read-only``."""


class Backend(Protocol):
    """The service as the app sees it: calls, and messages posted to the app.

    Messages (:mod:`tui.messages`): ``Connected`` when a connection is up,
    ``Disconnected`` when it is not (the backend retries on its own), ``Notified`` with
    the events, ``StatusPolled`` every few seconds.
    """

    instance: str
    socket: Path

    def start(self, post: Callable[[Message], object]) -> None:
        """Begin connecting; ``post`` delivers a message to the app. Call from its loop."""

    async def stop(self) -> None:
        """Stop everything and return only when it has stopped (idempotent)."""

    @property
    def finished(self) -> bool:
        """Whether it has stopped for good (after :meth:`stop`, or a failure)."""

    async def call(self, method: str, /, **params: Any) -> Any:
        """Call ``method`` on the service; raises as :class:`pywats.rpc.client.RpcClient`
        does, or :class:`NotConnectedError`."""

    def reconnect_now(self) -> None:
        """Skip the wait before the next connection attempt."""

    def switch(self, instance: str, socket: Path) -> None:
        """Drop the connection and connect to another instance's socket."""
