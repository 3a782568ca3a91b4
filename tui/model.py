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
    """What happened since local midnight (reset when the day changes), kept as the ids of
    what it happened to: a report learnt of twice, from the service's lists after a
    (re)connection and from its event, counts once. So merging a fresh read of the queue
    into what the events made loses nothing and counts nothing twice.

    ``loaded``: the service's lists were read for this day (else the counts hold only what
    this TUI saw since it connected). ``complete``: those lists were read to the end.
    """

    day: tuple[int, int, int] = (0, 0, 0)
    queued_ids: set[str] = attrs.field(factory=set)
    uploaded_ids: set[str] = attrs.field(factory=set)
    failed_ids: set[str] = attrs.field(factory=set)
    rejected_files: set[str] = attrs.field(factory=set)
    loaded: bool = False
    complete: bool = True

    @property
    def queued(self) -> int:
        """Reports queued since midnight."""
        return len(self.queued_ids)

    @property
    def uploaded(self) -> int:
        """Reports the server accepted since midnight."""
        return len(self.uploaded_ids)

    @property
    def failed(self) -> int:
        """Reports the server refused for good since midnight."""
        return len(self.failed_ids)

    @property
    def rejected(self) -> int:
        """Files that did not convert since midnight."""
        return len(self.rejected_files)

    def roll(self, at: float, seen_since: float | None = None) -> None:
        """Start a new day if ``at`` is in another one than the counts. ``seen_since``:
        since when the TUI has seen every event (its connection's start), if it has."""
        day = _local_day(at)
        if day != self.day:
            self.day = day
            for ids in (self.queued_ids, self.uploaded_ids, self.failed_ids, self.rejected_files):
                ids.clear()
            # A TUI connected since before midnight saw the new day whole; any other
            # reads the lists (at its next connection).
            self.loaded = seen_since is not None and seen_since <= self.day_start_at
            self.complete = True

    def merge(self, read: Today) -> None:
        """Add what a read of the service's lists found (for the same day)."""
        if read.day > self.day:
            self.roll(read.day_start_at)
        if read.day != self.day:
            return  # read before midnight, merged after: the events know the new day
        self.queued_ids |= read.queued_ids
        self.uploaded_ids |= read.uploaded_ids
        self.failed_ids |= read.failed_ids
        self.rejected_files |= read.rejected_files
        self.loaded = True
        self.complete = read.complete

    @property
    def day_start_at(self) -> float:
        """The epoch time of this day's local midnight."""
        y, m, d = self.day
        return time.mktime((y, m, d, 0, 0, 0, 0, 0, -1))


def rejected_key(folder: object, path: object) -> str:
    """One refused file, the same from ``files.errors`` and from ``file.rejected``."""
    return f"{folder}\0{path}"


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
        self.connected_at: float | None = None
        """Our own clock when the current connection came up."""
        self.journal: list[tuple[str, Mapping[str, Any]]] | None = None
        """The report events since :meth:`begin_read` (``None``: no read going on)."""

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
        self.connected_at = now
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
        self.roll_today(at)
        report_id = str(params.get("report_id") or "")
        if self.journal is not None and method.startswith("report."):
            self.journal.append((method, params))
        if method == "report.queued":
            self.today.queued_ids.add(report_id)
            self._bump_queue("pending", 1)
            self.changed |= {"queue"}
        elif method == "report.uploaded":
            self.throughput.add(at)
            self.today.uploaded_ids.add(report_id)
            self.retrying.discard(report_id)
            self.changed |= {"counts", "queue"}
        elif method == "report.retrying":
            self.retrying.add(report_id)
            self._error(at, describe_note(method, params))
            self.changed |= {"counts", "queue"}
        elif method == "report.failed":
            self.today.failed_ids.add(report_id)
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
            moved = params.get("error_file")
            self.today.rejected_files.add(
                rejected_key(params.get("folder"), moved or f"(not moved) {params.get('source')}")
            )
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

    # --- counts read from the service ------------------------------------------------

    def roll_today(self, at: float) -> None:
        """Start today's counts again if ``at`` is in another day (see :meth:`Today.roll`)."""
        seen = self.connected_at if self.connection == "connected" else None
        self.today.roll(at, seen)

    def begin_read(self) -> list[tuple[str, Mapping[str, Any]]]:
        """A read of the service's lists starts: keep the report events from now on.
        Returns the journal to hand to :meth:`end_read` (a newer read replaces it)."""
        self.journal = []
        return self.journal

    def end_read(
        self,
        journal: list[tuple[str, Mapping[str, Any]]],
        today: Today | None,
        retrying: set[str] | None,
    ) -> None:
        """The read of ``journal`` is over (``None``: it failed). ``today`` is merged into
        the counts; ``retrying`` replaces the reports waiting for a retry, with every
        report event since :meth:`begin_read` applied again on top: whatever the read saw
        of them (before or after the event), the event has the last word."""
        if self.journal is journal:
            self.journal = None
        if today is not None:
            self.today.merge(today)
        if retrying is not None:
            self.retrying = set(retrying)
            for method, params in journal:
                report_id = str(params.get("report_id") or "")
                if method == "report.retrying":
                    self.retrying.add(report_id)
                elif method in ("report.uploaded", "report.failed", "report.deleted"):
                    self.retrying.discard(report_id)
                elif method == "report.requeued":
                    self.retrying -= {str(rid) for rid in params.get("report_ids") or ()}
        self.changed.add("counts")

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
