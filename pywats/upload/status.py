"""What the uploader tells the rest of the service: its state and a status snapshot."""

from __future__ import annotations

import enum
from email.utils import parsedate_to_datetime

import attrs


class UploaderState(enum.StrEnum):
    """What the uploader is doing, as a whole."""

    DISABLED = "disabled"
    """No server URL configured: nothing is sent, reports stay pending."""
    ONLINE = "online"
    """The server answers; reports are uploaded."""
    OFFLINE = "offline"
    """Connecting, or the server cannot be reached; one probe checks it with backoff."""
    PAUSED = "paused"
    """Stopped until :meth:`Uploader.resume` or :meth:`Uploader.reconfigure` (``reason``
    says why: token refused, URL wrong, bad TLS setup, or the operator)."""


@attrs.frozen
class UploaderStatus:
    """A snapshot of the uploader for ``pywats status``, the TUI and logs. Never holds
    the token."""

    state: UploaderState
    reason: str
    """One line for a person: what the state means right now and what to do."""
    server_url: str | None
    """The configured server (without user or password), ``None`` when disabled."""
    server_version: str | None
    """What the server's ``/api/App/Version`` answered last, ``None`` until it has."""
    latency_ms: float | None
    """Round trip of the last successful probe; ``None`` while offline or disabled."""
    last_error: str | None
    """The latest failure (upload or probe), one line."""
    uploaded: int
    """Reports the server accepted (2xx) since the uploader was made."""
    failed: int
    """Reports the server rejected for good (moved to ``failed``)."""
    retried: int
    """Transient failures that scheduled a retry."""
    in_flight: int
    """Uploads running now."""
    clock_ahead_s: float | None = None
    """How far this station's clock is ahead of the server's (negative: behind), from the
    ``Date`` of the last successful probe (to the second); ``None`` until one came."""


def clock_ahead(date: str | None, now: float) -> float | None:
    """How far ``now`` (epoch seconds) is ahead of an HTTP ``Date`` header's time;
    ``None`` without a readable one. The header has whole seconds, so the answer is good
    to about one second (plus half the round trip)."""
    if not date:
        return None
    try:
        when = parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return round(now - when.timestamp(), 3)
