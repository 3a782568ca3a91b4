"""What the uploader tells the rest of the service: its state and a status snapshot."""

from __future__ import annotations

import enum
import logging
import math
from email.utils import parsedate_to_datetime

import attrs

from pywats import defaults


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


@attrs.frozen
class OutageLine:
    """How to log one offline/online change: at ``level``, with ``note`` appended."""

    level: int
    note: str = ""


class OutageLog:
    """Which offline/online changes of the uploader get a line in the log (sans-IO).

    An outage is one WARNING line when it starts (with its cause) and one INFO line when
    it ends (with how long it lasted). The rule that keeps it so: a server or proxy that
    loses the answer to one upload makes the uploader go offline until the probe answers,
    often a few milliseconds later, and one that keeps doing it would write a pair of
    lines per report. So for ``quiet_s`` after an outage's end line, going offline again
    is the same trouble going on: logged at DEBUG and counted, and the count is in the
    next start line. Such a relapse is logged at once after all when the probe fails too
    (the server is really gone, not an answer lost). Five uploads failing together are
    one change already (:class:`~pywats.upload.health.UploadHealth` counts rounds).
    """

    def __init__(self, quiet_s: float = defaults.OUTAGE_QUIET_S) -> None:
        self._quiet_s = quiet_s
        self._in = False  # offline for a cause now
        self._logged = False  # the running outage's start line was written
        self._since = 0.0
        self._ended_at = -math.inf  # end of the last outage that was logged
        self._unlogged = 0  # outages since the last start line that got no line

    def offline(self, now: float, *, confirmed: bool) -> OutageLine:
        """The uploader is offline for a cause (called on every change while it is);
        ``confirmed``: the probe failed too in this outage."""
        if not self._in:
            self._in, self._since, self._logged = True, now, False
            if now - self._ended_at >= self._quiet_s:
                return self._start()
            self._unlogged += 1
            return OutageLine(logging.DEBUG)
        if not self._logged and confirmed:
            self._unlogged -= 1  # this one gets its line after all
            return self._start()
        return OutageLine(logging.DEBUG)

    def online(self, now: float) -> OutageLine | None:
        """The uploader is online again: the end line (INFO, how long it was out), DEBUG
        for an outage that got no start line, or None when no outage was running."""
        if not self._in:
            return None
        self._in = False
        if not self._logged:
            return OutageLine(logging.DEBUG)
        self._ended_at = now
        return OutageLine(logging.INFO, f"; was offline {now - self._since:.1f} s")

    @property
    def last_logged(self) -> bool:
        """Whether the latest outage got its lines (its aftermath is worth INFO too)."""
        return self._logged

    def _start(self) -> OutageLine:
        self._logged = True
        note = ""
        if self._unlogged:
            note = (
                f" (and {self._unlogged} short outage(s) in the {self._quiet_s:g} s before,"
                " each over at once)"
            )
        self._unlogged = 0
        return OutageLine(logging.WARNING, note)
