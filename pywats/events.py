"""What the service does, as data: the event types and the hub that fans them out.

Every component records each outcome once (:class:`Recorder`): the log line and the
event come from the same call, and the component's counters are bumped next to it. The
event goes to one :class:`EventHub`; the control protocol, the TUI (through it) and tests
subscribe. No component knows who listens.

The hub's promises:

- :meth:`EventHub.publish` is synchronous, never blocks and never raises into the
  publisher. It stamps the event with the next sequence number and the wall-clock time.
- Each subscriber has its own bounded buffer. When it is full the oldest event is
  dropped and counted; the subscriber's next :meth:`Subscription.receive` returns a
  :class:`Gap` saying how many it missed. A slow subscriber therefore costs the
  publisher one ``deque.append``, never a wait.
- Status-like events (:attr:`Event.coalesce`) keep only the latest per key in a buffer:
  a client that reads slowly sees the current state, not a backlog of old ones.
- Sequence numbers start at 1 for every hub, and every hub (one per service start) has
  its own :attr:`EventHub.stream_id`. A client that sees the stream id change knows the
  service restarted; a jump in ``seq`` within one stream is a gap.

Events are published from the trio thread (components record outcomes in their trio
tasks, not in worker threads); a subscriber is read from trio.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Hashable, Mapping
from typing import Any, ClassVar, Self, TypeVar

import attrs
import trio

__all__ = [
    "DEFAULT_BUFFER",
    "PUBLISHED",
    "ComponentStatus",
    "Event",
    "EventHub",
    "FileOutcome",
    "FileProcessed",
    "FileRejected",
    "Gap",
    "Recorder",
    "ReportDeleted",
    "ReportFailed",
    "ReportQueued",
    "ReportRequeued",
    "ReportRetrying",
    "ReportUploaded",
    "Stats",
    "Subscription",
]

log = logging.getLogger("pywats.events")

DEFAULT_BUFFER = 1000
"""Events a subscriber may fall behind by before the oldest are dropped."""

E = TypeVar("E", bound="Event")


@attrs.frozen(kw_only=True)
class Event:
    """Base of every event. ``seq`` and ``at`` are set by :meth:`EventHub.publish`."""

    kind: ClassVar[str] = "event"
    """The event's name on the wire (``report.queued``), as the control protocol sends it."""
    coalesce: ClassVar[bool] = False
    """Status-like: a buffer keeps only the latest event with the same :meth:`key`."""

    seq: int = 0
    """Position in the hub's stream, from 1; 0 until published (and for :class:`Gap`)."""
    at: float = 0.0
    """Wall-clock time of publishing, epoch seconds."""

    def key(self) -> Hashable:
        """What coalescing events are grouped by (only the latest per key is kept)."""
        return self.kind

    def text(self) -> str:
        """One line for a person: the log line of this outcome."""
        return self.kind


# --- reports --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ReportQueued(Event):
    """A report made from a source file is committed to the queue."""

    kind: ClassVar[str] = "report.queued"
    report_id: str
    folder: str
    source: str
    converter: str
    pn: str
    sn: str
    result: str

    def text(self) -> str:
        return (
            f"{self.folder}: queued report {self.report_id} ({self.pn} {self.sn} "
            f"{self.result}) from {self.source}"
        )


@attrs.frozen(kw_only=True)
class ReportUploaded(Event):
    """The server accepted a report (2xx)."""

    kind: ClassVar[str] = "report.uploaded"
    report_id: str
    attempt: int
    status: int | None
    pn: str = ""
    sn: str = ""

    def text(self) -> str:
        return f"report {self.report_id} uploaded ({self.status}, attempt {self.attempt})"


@attrs.frozen(kw_only=True)
class ReportRetrying(Event):
    """A transient failure: the report stays pending and is tried again later."""

    kind: ClassVar[str] = "report.retrying"
    report_id: str
    attempt: int
    next_attempt_at: float
    """Wall-clock time (epoch seconds) of the next attempt."""
    status: int | None
    """The HTTP status, ``None`` when no answer came."""
    message: str
    pn: str = ""
    sn: str = ""

    def text(self) -> str:
        delay = max(0.0, self.next_attempt_at - (self.at or time.time()))
        return (
            f"report {self.report_id}: {self.message}; attempt {self.attempt}, "
            f"next in {delay:.1f} s"
        )


@attrs.frozen(kw_only=True)
class ReportFailed(Event):
    """The server rejected a report for good: it is ``failed`` with the server's message."""

    kind: ClassVar[str] = "report.failed"
    report_id: str
    attempt: int
    status: int | None
    message: str
    pn: str = ""
    sn: str = ""

    def text(self) -> str:
        return f"report {self.report_id} rejected by the server: {self.message}"


@attrs.frozen(kw_only=True)
class ReportDeleted(Event):
    """A report left the queue without being uploaded (the operator deleted it)."""

    kind: ClassVar[str] = "report.deleted"
    report_id: str
    reason: str = "deleted by the operator"

    def text(self) -> str:
        return f"report {self.report_id}: {self.reason}"


@attrs.frozen(kw_only=True)
class ReportRequeued(Event):
    """Reports were made due now again (the operator's retry, or recovery after an outage)."""

    kind: ClassVar[str] = "report.requeued"
    report_ids: tuple[str, ...]
    reason: str

    def text(self) -> str:
        return f"{len(self.report_ids)} report(s) due again: {self.reason}"


# --- files ----------------------------------------------------------------------------


class FileOutcome:
    """How a file that was taken from a watch folder ended (besides being rejected)."""

    CONVERTED = "converted"
    """Its reports are queued, and the post-action filed it."""
    DUPLICATE = "duplicate"
    """Its content was queued before: filed without queueing again."""
    LEFT = "left"
    """Left where it is: changed while read, not movable, or the service stopped first."""
    VANISHED = "vanished"
    """Gone before it could be read."""


@attrs.frozen(kw_only=True)
class FileProcessed(Event):
    """A file from a watch folder reached its outcome (:class:`FileOutcome`)."""

    kind: ClassVar[str] = "file.processed"
    folder: str
    source: str
    outcome: str
    report_ids: tuple[str, ...] = ()
    detail: str = ""
    """What happened to the file itself (moved to ..., kept, left because ...)."""

    def text(self) -> str:
        ids = _ids(self.report_ids)
        if self.outcome == FileOutcome.CONVERTED:
            return (
                f"{self.folder}: converted {self.source} into {len(self.report_ids)} "
                f"report(s) ({ids}); {self.detail}"
            )
        if self.outcome == FileOutcome.DUPLICATE:
            return (
                f"{self.folder}: {self.source} was already queued as {ids}; not queued "
                f"again; {self.detail}"
            )
        if self.outcome == FileOutcome.VANISHED:
            return f"{self.folder}: {self.source} vanished before it could be read"
        return f"{self.folder}: {self.source}: {self.detail}"


@attrs.frozen(kw_only=True)
class FileRejected(Event):
    """A file no converter could read: moved to the error folder with a sidecar."""

    kind: ClassVar[str] = "file.rejected"
    folder: str
    source: str
    converter: str
    reason: str
    field: str = ""
    """Where in the file (a field path, line or element), empty if not known."""
    error_file: str | None = None
    """The file's new path in the error folder; ``None`` if it could not be moved."""
    sidecar: str | None = None
    """The ``<name>.error.txt`` beside it that says why."""
    detail: str = ""
    """What happened to the file when it was not moved (gone, cannot be moved: why)."""

    def text(self) -> str:
        where = f" at {self.field}" if self.field and self.field not in self.reason else ""
        if self.error_file:
            see = f" (see {os.path.basename(self.sidecar)})" if self.sidecar else ""
            moved = f"; moved to {self.error_file}{see}"
        else:
            moved = f"; {self.detail}" if self.detail else ""
        return (
            f"{self.folder}: could not convert {self.source} with {self.converter}: "
            f"{self.reason}{where}{moved}"
        )


# --- state ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ComponentStatus(Event):
    """A component's state changed (``uploader``: online/offline/paused/disabled;
    ``service``: starting/running/stopping; ``folder:<name>``: enabled/disabled)."""

    kind: ClassVar[str] = "status.changed"
    coalesce: ClassVar[bool] = True
    component: str
    state: str
    reason: str = ""

    def key(self) -> Hashable:
        return (self.kind, self.component)

    def text(self) -> str:
        return f"{self.component} {self.state}: {self.reason}" if self.reason else self.state


@attrs.frozen(kw_only=True)
class Stats(Event):
    """A snapshot of the counters (queue by state, uploads and files since start)."""

    kind: ClassVar[str] = "stats"
    coalesce: ClassVar[bool] = True
    queue: Mapping[str, int | float | None] = attrs.field(factory=dict)
    uploads: Mapping[str, int] = attrs.field(factory=dict)
    folders: Mapping[str, Mapping[str, int]] = attrs.field(factory=dict)

    def text(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.queue.items())
        return f"stats: {counts}"


@attrs.frozen(kw_only=True)
class Gap(Event):
    """Not published: a subscriber's buffer overflowed and ``dropped`` events were lost."""

    kind: ClassVar[str] = "gap"
    dropped: int

    def text(self) -> str:
        return f"{self.dropped} event(s) dropped (the reader was too slow)"


PUBLISHED: tuple[type[Event], ...] = (
    ReportQueued,
    ReportUploaded,
    ReportRetrying,
    ReportFailed,
    ReportDeleted,
    ReportRequeued,
    FileProcessed,
    FileRejected,
    ComponentStatus,
    Stats,
)
"""Every event type the hub carries (:class:`Gap` is made by a subscription, not published)."""


def _ids(ids: tuple[str, ...]) -> str:
    # A file with hundreds of reports stays one short line.
    if len(ids) <= 3:
        return ", ".join(ids) or "no reports"
    return f"{', '.join(ids[:3])} and {len(ids) - 3} more"


# --- the hub --------------------------------------------------------------------------


class Subscription:
    """One subscriber's bounded view of the stream. Get one from :meth:`EventHub.subscribe`.

    Use as a context manager (or call :meth:`close`) so the hub stops buffering for it.
    Iterating (``async for event in subscription``) ends when it is closed.
    """

    def __init__(self, hub: EventHub, buffer: int) -> None:
        if buffer < 1:
            raise ValueError(f"buffer must be 1 or more, got {buffer}")
        self._hub = hub
        self._buffer = buffer
        self._queue: collections.deque[Event] = collections.deque()
        self._latest: dict[Hashable, Event] = {}
        self._missed = 0
        self._wake = trio.Event()
        self._closed = False
        self.dropped = 0
        """Events dropped for this subscriber since it subscribed."""

    @property
    def pending(self) -> int:
        """Events waiting to be received (a pending gap counts as one)."""
        return len(self._queue) + (self._missed > 0)

    def _put(self, event: Event) -> None:
        if event.coalesce:
            key = event.key()
            old = self._latest.get(key)
            if old is not None:
                # Only the latest state matters to a reader that is behind.
                for index, queued in enumerate(self._queue):
                    if queued is old:
                        del self._queue[index]
                        break
            self._latest[key] = event
        if len(self._queue) >= self._buffer:
            oldest = self._queue.popleft()
            if oldest.coalesce and self._latest.get(oldest.key()) is oldest:
                del self._latest[oldest.key()]
            self._missed += 1
            self.dropped += 1
        self._queue.append(event)
        self._wake.set()

    def receive_nowait(self) -> Event:
        """The next event (a :class:`Gap` first if some were dropped).

        Raises:
            trio.WouldBlock: nothing is waiting.
            trio.EndOfChannel: the subscription is closed and drained.
        """
        if self._missed:
            missed, self._missed = self._missed, 0
            return Gap(dropped=missed, at=time.time())
        if self._queue:
            event = self._queue.popleft()
            if event.coalesce and self._latest.get(event.key()) is event:
                del self._latest[event.key()]
            return event
        if self._closed:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> Event:
        """Wait for the next event.

        Raises:
            trio.EndOfChannel: the subscription was closed (pending events are
                delivered first).
        """
        while True:
            try:
                event = self.receive_nowait()
            except trio.WouldBlock:
                await self._wake.wait()
                self._wake = trio.Event()
                continue
            await trio.lowlevel.checkpoint()
            return event

    def close(self) -> None:
        """Stop receiving new events; a waiting :meth:`receive` ends after the backlog."""
        if not self._closed:
            self._closed = True
            self._hub._unsubscribe(self)
            self._wake.set()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None


class EventHub:
    """The one place every outcome goes: stamps it and hands it to every subscriber.

    Args:
        clock: wall-clock time for :attr:`Event.at` (tests inject one).
        stream_id: this stream's id; a new random one by default (one hub per start).
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.time, stream_id: str | None = None
    ) -> None:
        self.stream_id = stream_id if stream_id is not None else uuid.uuid4().hex
        """Changes at every start: a client seeing a new one knows the service restarted."""
        self._clock = clock
        self._seq = 0
        self._subscribers: list[Subscription] = []
        self._failed_once = False

    @property
    def last_seq(self) -> int:
        """The sequence number of the latest published event (0 before the first)."""
        return self._seq

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscribers)

    def subscribe(self, *, buffer: int = DEFAULT_BUFFER) -> Subscription:
        """A new subscription that receives every event published from now on."""
        subscription = Subscription(self, buffer)
        self._subscribers.append(subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        with contextlib.suppress(ValueError):  # closed twice, or never subscribed
            self._subscribers.remove(subscription)

    def publish(self, event: E) -> E:
        """Stamp ``event`` (``seq``, ``at``) and buffer it for every subscriber.

        Never blocks and never raises: an outcome has happened whether or not anyone can
        be told. Returns the stamped event (the input unchanged if stamping failed).
        """
        try:
            self._seq += 1
            stamped = attrs.evolve(event, seq=self._seq, at=self._clock())
        except Exception:
            self._failed(event)
            return event
        for subscription in self._subscribers:
            try:
                subscription._put(stamped)
            except Exception:
                self._failed(stamped)
        return stamped

    def _failed(self, event: Event) -> None:
        # Logged once: a bug here must neither stop the publisher nor flood the journal.
        if not self._failed_once:
            self._failed_once = True
            log.exception("cannot deliver event %s (further failures are not logged)", event.kind)


class Recorder:
    """Where a component records an outcome: one call gives its log line and its event.

    ``record(event)`` logs ``event.text()`` at ``level`` on ``logger`` and publishes the
    event. Components bump their counters in the same method that calls it, so counters,
    log and events cannot disagree.
    """

    def __init__(self, hub: EventHub | None, logger: logging.Logger) -> None:
        self.hub = hub if hub is not None else EventHub()
        self._log = logger

    def __call__(self, event: E, level: int = logging.INFO, **log_kwargs: Any) -> E:
        stamped = self.hub.publish(event)
        if self._log.isEnabledFor(level):
            # stacklevel: the record names the component's line that recorded it.
            self._log.log(level, "%s", stamped.text(), stacklevel=2, **log_kwargs)
        return stamped
