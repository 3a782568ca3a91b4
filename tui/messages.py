"""Every message the TUI's backend posts to the app, in one module.

The backend (:class:`tui.bridge.TrioBridge`, or a test double) runs beside the app and
says what happened on the control socket with these; the app turns them into its model
(:class:`tui.model.StationModel`) and redraws at most every ``--refresh`` seconds. They
are posted to the app itself and do not bubble.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.message import Message

__all__ = [
    "BackendFailed",
    "Connected",
    "Disconnected",
    "InputEnded",
    "Notified",
    "StatusPolled",
]


class Connected(Message, bubble=False):
    """A connection to the service is up: its status and event stream, fresh."""

    def __init__(self, status: Mapping[str, Any], socket: str, stream: str) -> None:
        super().__init__()
        self.status = dict(status)
        self.socket = socket
        self.stream = stream
        """The service's event stream id; a new one means the service restarted."""


class Disconnected(Message, bubble=False):
    """No connection (any more), and why; the backend tries again on its own.

    ``kind`` is ``not_running`` (nothing listens on the socket), ``refused`` (permission:
    the socket's mode or the service's peer check) or ``lost`` (it broke, or the service
    stopped).
    """

    def __init__(self, kind: str, socket: str, message: str, retry_in_s: float) -> None:
        super().__init__()
        self.kind = kind
        self.socket = socket
        self.message = message
        self.retry_in_s = retry_in_s


class Notified(Message, bubble=False):
    """Notifications from the service (events), oldest first, as ``(method, params)``."""

    def __init__(self, notes: tuple[tuple[str, Mapping[str, Any]], ...]) -> None:
        super().__init__()
        self.notes = notes


class StatusPolled(Message, bubble=False):
    """A fresh ``service.status`` (asked for every few seconds while connected)."""

    def __init__(self, status: Mapping[str, Any]) -> None:
        super().__init__()
        self.status = dict(status)

    def can_replace(self, message: Message) -> bool:
        # Only the newest status matters to an app that is behind.
        return isinstance(message, StatusPolled)


class BackendFailed(Message, bubble=False):
    """The backend itself failed (a bug): the app shows it and exits."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class InputEnded(Message, bubble=False):
    """The terminal's input reached its end (the SSH session or the terminal went away):
    the app quits, instead of reading an endless end of file."""
