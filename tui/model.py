"""What the TUI knows about the service, as plain data: :class:`StationModel`.

The app feeds it what the backend reports (a status, notifications) and redraws from it
at most every ``--refresh`` seconds; nothing here draws or does I/O, and every rule that
depends on time takes the time as an argument (so tests give it one).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = [
    "ERRORS_KEPT",
    "EVENTS_KEPT",
    "ErrorLine",
    "EventLine",
    "StationModel",
    "Throughput",
    "clock_text",
    "describe_note",
    "duration_text",
    "spark_text",
]

EVENTS_KEPT = 2000
"""Notifications the events screen keeps (the oldest go first)."""
ERRORS_KEPT = 50
"""Errors the dashboard keeps."""
CLOCK_AHEAD_WARN_S = 5.0
"""How far ahead of the server the station's clock may be before the header warns."""


_BARS = "▁▂▃▄▅▆▇█"


def spark_text(series: list[int]) -> str:
    """``series`` as a row of bars (one character each, the highest one full)."""
    top = max(series, default=0)
    if top <= 0:
        return _BARS[0] * len(series)
    return "".join(_BARS[min(7, round(value / top * 7))] for value in series)


def duration_text(seconds: float | None) -> str:
    """``3d 4h``, ``2h 5m``, ``4m 10s``, ``12s``; ``-`` for ``None``."""
    if seconds is None:
        return "-"
    seconds = int(max(0, seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def clock_text(at: float | None) -> str:
    """Local ``HH:MM:SS`` of an epoch time (``-`` for ``None``)."""
    if not at:
        return "-"
    return time.strftime("%H:%M:%S", time.localtime(at))


def _short(report_id: object) -> str:
    text = str(report_id or "")
    return text[:8]


def describe_note(method: str, params: Mapping[str, Any]) -> str:
    """One line for a person about a notification (what the service's log says)."""
    return " ".join(_describe(method, params).split())  # a reason may span lines


def _describe(method: str, params: Mapping[str, Any]) -> str:
    p = params
    if method == "report.queued":
        return (
            f"{p.get('folder')}: queued {p.get('pn')} {p.get('sn')} {p.get('result')}"
            f" ({_short(p.get('report_id'))}) from {p.get('source')}"
        )
    if method == "report.uploaded":
        return (
            f"uploaded {p.get('pn', '')} {p.get('sn', '')} ({_short(p.get('report_id'))}),"
            f" HTTP {p.get('status')}, attempt {p.get('attempt')}"
        )
    if method == "report.retrying":
        return (
            f"retrying {p.get('sn', '')} ({_short(p.get('report_id'))}): {p.get('message')};"
            f" attempt {p.get('attempt')}, next at {clock_text(p.get('next_attempt_at'))}"
        )
    if method == "report.failed":
        return (
            f"rejected {p.get('sn', '')} ({_short(p.get('report_id'))}) by the server:"
            f" {p.get('message')}"
        )
    if method == "report.deleted":
        return f"deleted {_short(p.get('report_id'))}: {p.get('reason')}"
    if method == "report.requeued":
        ids = p.get("report_ids") or ()
        return f"{len(ids)} report(s) due again: {p.get('reason')}"
    if method == "file.processed":
        return f"{p.get('folder')}: {p.get('outcome')} {p.get('source')}; {p.get('detail')}"
    if method == "file.rejected":
        where = f" at {p.get('field')}" if p.get("field") else ""
        return (
            f"{p.get('folder')}: could not convert {p.get('source')} with"
            f" {p.get('converter')}: {p.get('reason')}{where}"
        )
    if method == "status.changed":
        reason = f": {p.get('reason')}" if p.get("reason") else ""
        return f"{p.get('component')} {p.get('state')}{reason}"
    if method == "stats":
        queue = p.get("queue") or {}
        counts = ", ".join(f"{k} {v}" for k, v in queue.items() if k != "oldest_pending_age_s")
        return f"stats: {counts}"
    if method == "events.gap":
        return f"{p.get('dropped')} event(s) dropped (the TUI was too slow)"
    fields = {k: v for k, v in p.items() if k not in ("stream", "seq", "at")}
    return f"{fields}"


@attrs.frozen
class EventLine:
    """One notification as the events screen shows it."""

    at: float
    method: str
    text: str
    seq: int
    n: int = 0
    """Its place among every notification the TUI received (1, 2, ...)."""


@attrs.frozen
class ErrorLine:
    """One thing that went wrong, for the dashboard."""

    at: float
    text: str


class Throughput:
    """Uploads per minute, from the times of ``report.uploaded``.

    ``add(at)`` counts one upload at epoch time ``at``; ``series(now, minutes)`` is the
    count of each of the last ``minutes`` whole minutes up to ``now``, oldest first.
    Counts older than :attr:`keep_minutes` are dropped.
    """

    def __init__(self, keep_minutes: int = 120) -> None:
        self.keep_minutes = keep_minutes
        self._per_minute: dict[int, int] = {}

    def add(self, at: float) -> None:
        minute = int(at // 60)
        self._per_minute[minute] = self._per_minute.get(minute, 0) + 1
        if len(self._per_minute) > self.keep_minutes:
            for old in sorted(self._per_minute)[: -self.keep_minutes]:
                del self._per_minute[old]

    def series(self, now: float, minutes: int) -> list[int]:
        last = int(now // 60)
        return [self._per_minute.get(m, 0) for m in range(last - minutes + 1, last + 1)]

    def per_minute(self, now: float, window_s: float = 60.0) -> float:
        """The rate over the last ``window_s`` seconds, as uploads per minute."""
        series = self.series(now, 2)
        # The current minute is partly over: weigh the previous one for the rest.
        into = (now % 60) / 60
        return series[1] + series[0] * (1 - into) if window_s >= 60 else float(series[1])


def _local_day(at: float) -> tuple[int, int, int]:
    t = time.localtime(at)
    return (t.tm_year, t.tm_mon, t.tm_mday)


@attrs.define
class Today:
    """Counts since local midnight (reset when the day changes)."""

    day: tuple[int, int, int] = (0, 0, 0)
    queued: int = 0
    uploaded: int = 0
    failed: int = 0
    rejected: int = 0

    def roll(self, at: float) -> None:
        day = _local_day(at)
        if day != self.day:
            self.day = day
            self.queued = self.uploaded = self.failed = self.rejected = 0


class StationModel:
    """The service as last heard of. ``changed`` names what changed since the last
    :meth:`take_changes` (``header``, ``counts``, ``folders``, ``events``, ``errors``,
    ``queue``, ``files``), so the app redraws only that."""

    def __init__(self, instance: str, socket: str) -> None:
        self.instance = instance
        self.socket = socket
        self.connection = "connecting"
        """``connecting``, ``connected``, ``not_running``, ``refused`` or ``lost``."""
        self.disconnect_message = ""
        self.status: dict[str, Any] | None = None
        self.stream: str | None = None
        self.queue: dict[str, Any] = {}
        self.uploads: dict[str, int] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.retrying: set[str] = set()
        """Reports waiting for a retry after a transient failure (as far as we saw)."""
        self.throughput = Throughput()
        self.today = Today()
        self.events: collections.deque[EventLine] = collections.deque(maxlen=EVENTS_KEPT)
        self.errors: collections.deque[ErrorLine] = collections.deque(maxlen=ERRORS_KEPT)
        self.dropped = 0
        self.received = 0
        """Notifications received (the ``n`` of the newest :class:`EventLine`)."""
        self.changed: set[str] = set()
        self.received_at = 0.0
        """Our own clock when the last status came (for its clock)."""

    def take_changes(self) -> set[str]:
        """What changed since the last call (and forget it)."""
        changed, self.changed = self.changed, set()
        return changed

    # --- connection -------------------------------------------------------------------

    def connected(self, status: Mapping[str, Any], socket: str, stream: str, now: float) -> bool:
        """A connection is up. Returns whether it is another stream than before (the
        service restarted or is another one): then everything is rebuilt."""
        fresh = stream != self.stream
        self.connection = "connected"
        self.disconnect_message = ""
        self.socket = socket
        if fresh:
            self.stream = stream
            self.retrying.clear()
            self.throughput = Throughput()
            self.errors.clear()
        self.apply_status(status, now)
        self.changed |= {"header", "counts", "folders", "queue", "files", "errors", "connection"}
        return fresh

    def disconnected(self, kind: str, socket: str, message: str) -> None:
        self.connection = kind
        self.socket = socket
        self.disconnect_message = message
        self.changed |= {"header", "connection"}

    # --- what the service said --------------------------------------------------------

    def apply_status(self, status: Mapping[str, Any], now: float) -> None:
        self.status = dict(status)
        self.received_at = now
        if status.get("queue") is not None:
            self.queue = dict(status["queue"])
        server = status.get("server") or {}
        self.uploads = {
            k: int(server.get(k) or 0) for k in ("uploaded", "failed", "retried", "in_flight")
        }
        self.folders = {f["name"]: dict(f) for f in status.get("folders") or []}
        self.changed |= {"header", "counts", "folders"}

    def apply_notes(self, notes: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        for method, params in notes:
            self.apply_note(method, params)

    def apply_note(self, method: str, params: Mapping[str, Any]) -> None:
        at = float(params.get("at") or time.time())
        self.received += 1
        self.events.append(
            EventLine(
                at,
                method,
                describe_note(method, params),
                int(params.get("seq") or 0),
                self.received,
            )
        )
        self.changed.add("events")
        self.today.roll(at)
        report_id = str(params.get("report_id") or "")
        if method == "report.queued":
            self.today.queued += 1
            self._bump_queue("pending", 1)
            self.changed |= {"queue"}
        elif method == "report.uploaded":
            self.throughput.add(at)
            self.today.uploaded += 1
            self.retrying.discard(report_id)
            self.changed |= {"counts", "queue"}
        elif method == "report.retrying":
            self.retrying.add(report_id)
            self._error(at, describe_note(method, params))
            self.changed |= {"counts", "queue"}
        elif method == "report.failed":
            self.today.failed += 1
            self.retrying.discard(report_id)
            self._error(at, describe_note(method, params))
            self.changed |= {"counts", "queue"}
        elif method == "report.deleted":
            self.retrying.discard(report_id)
            self.changed |= {"counts", "queue"}
        elif method == "report.requeued":
            for rid in params.get("report_ids") or ():
                self.retrying.discard(str(rid))
            self.changed |= {"counts", "queue"}
        elif method == "file.rejected":
            self.today.rejected += 1
            self._error(at, describe_note(method, params))
            folder = self.folders.get(str(params.get("folder")))
            if folder is not None:
                folder["last_error"] = params.get("reason")
            self.changed |= {"counts", "files", "folders"}
        elif method == "file.processed":
            self.changed |= {"folders"}
        elif method == "status.changed":
            self._status_changed(params)
        elif method == "stats":
            self._stats(params)
        elif method == "events.gap":
            self.dropped += int(params.get("dropped") or 0)
            self.changed |= {"header"}

    def _bump_queue(self, state: str, by: int) -> None:
        # Counts are exact again at the next stats event (at most a second later); this
        # keeps the dashboard moving in between.
        if isinstance(self.queue.get(state), int):
            self.queue[state] += by
            self.changed.add("counts")

    def _error(self, at: float, text: str) -> None:
        self.errors.append(ErrorLine(at, text))
        self.changed.add("errors")

    def _status_changed(self, params: Mapping[str, Any]) -> None:
        component = str(params.get("component") or "")
        state = str(params.get("state") or "")
        status = self.status
        if status is None:
            return
        if component == "uploader":
            server = status.setdefault("server", {})
            server["state"] = "none" if state == "disabled" else state
            server["reason"] = params.get("reason") or ""
        elif component == "service":
            status["state"] = state
        elif component.startswith("folder:"):
            folder = self.folders.get(component.partition(":")[2])
            if folder is not None:
                folder["enabled"] = state == "enabled"
                self.changed.add("folders")
        self.changed.add("header")

    def _stats(self, params: Mapping[str, Any]) -> None:
        queue = params.get("queue") or {}
        if queue:
            self.queue.update(queue)
        for key, value in (params.get("uploads") or {}).items():
            self.uploads[key] = int(value or 0)
        for name, counts in (params.get("folders") or {}).items():
            folder = self.folders.get(name)
            if folder is not None:
                folder.update({k: v for k, v in counts.items() if k in ("processed", "rejected")})
        self.changed |= {"header", "counts", "folders"}

    # --- derived ----------------------------------------------------------------------

    @property
    def service_state(self) -> str:
        if self.connection != "connected" or self.status is None:
            return {"not_running": "not running", "refused": "refused"}.get(
                self.connection, self.connection
            )
        return str(self.status.get("state") or "?")

    @property
    def server(self) -> dict[str, Any]:
        return dict((self.status or {}).get("server") or {})

    @property
    def rejected_since_start(self) -> int:
        return sum(int(f.get("rejected") or 0) for f in self.folders.values())

    @property
    def processed_since_start(self) -> int:
        return sum(int(f.get("processed") or 0) for f in self.folders.values())

    def clock_ahead_s(self) -> float | None:
        """How far the station's clock is ahead of the server's, when the service knows
        (``server.clock_ahead_s``); ``None`` when it does not."""
        value = self.server.get("clock_ahead_s")
        return None if value is None else float(value)

    def clock_warning(self) -> str | None:
        ahead = self.clock_ahead_s()
        if ahead is None or ahead < CLOCK_AHEAD_WARN_S:
            return None
        return (
            f"the station's clock is {duration_text(ahead)} ahead of the server's:"
            " report times will be wrong (check NTP)"
        )
