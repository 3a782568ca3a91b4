"""The service as the control protocol sees it: :class:`ServiceView`.

One object, made before any component starts, through which a client reads and steers
a running instance: a status snapshot (:meth:`ServiceView.status`), the event hub
(:attr:`ServiceView.hub`), and the control verbs (pause and resume uploads, stop,
requeue and delete reports, enable and disable one watch folder, test the server now).
The control socket and the TUI (through it) use nothing else, so what they can do is
listed here and nowhere else.

The components are attached once they exist (:meth:`ServiceView.attach`, right after the
queue opens and before anything starts); until then the snapshot says ``starting`` and
the verbs that need a component raise :class:`ServiceStartingError`.
"""

from __future__ import annotations

import enum
import logging
import os
import time
from collections.abc import Callable, Sequence

import attrs
import trio

from pywats import __version__
from pywats.converters.base import name_of
from pywats.errors import NotFoundError, PywatsError
from pywats.events import ComponentStatus, EventHub, Recorder, ReportDeleted, ReportRequeued
from pywats.pipeline import FolderConfig, Pipeline
from pywats.store import QueueStats, Store
from pywats.upload import Uploader, UploaderState, UploaderStatus

__all__ = [
    "FolderView",
    "ServerView",
    "ServiceSnapshot",
    "ServiceStartingError",
    "ServiceState",
    "ServiceView",
]

log = logging.getLogger("pywats.service")

TEST_TIMEOUT_S = 15.0
"""Longest :meth:`ServiceView.test_server` waits for the probe's answer."""


class ServiceStartingError(PywatsError):
    """The verb needs a component that does not exist yet (the service is starting)."""


class ServiceState(enum.StrEnum):
    """The service as a whole."""

    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    """Running, with uploads paused by the operator."""
    STOPPING = "stopping"


@attrs.frozen
class ServerView:
    """The WATS server as the uploader sees it."""

    url: str | None
    state: str
    """``online``, ``offline``, ``paused`` or ``none`` (no server configured)."""
    version: str | None
    latency_ms: float | None
    reason: str
    uploaded: int
    failed: int
    retried: int
    in_flight: int
    last_error: str | None


@attrs.frozen
class FolderView:
    """One watch folder entry."""

    name: str
    path: str
    converter: str
    enabled: bool
    processed: int
    """Files whose reports were queued (converted) or that were already queued."""
    rejected: int
    """Files moved to the error folder."""
    last_error: str | None


@attrs.frozen
class ServiceSnapshot:
    """Everything ``service.status`` answers."""

    instance: str
    version: str
    state: ServiceState
    uptime_s: float
    pid: int
    server: ServerView
    queue: QueueStats | None
    """``None`` until the queue is open."""
    folders: tuple[FolderView, ...]
    clock: float
    """The station's wall-clock time (epoch seconds): a client can warn about skew."""


def _server(status: UploaderStatus) -> ServerView:
    state = "none" if status.state is UploaderState.DISABLED else status.state.value
    return ServerView(
        url=status.server_url,
        state=state,
        version=status.server_version,
        latency_ms=status.latency_ms,
        reason=status.reason,
        uploaded=status.uploaded,
        failed=status.failed,
        retried=status.retried,
        in_flight=status.in_flight,
        last_error=status.last_error,
    )


class ServiceView:
    """Read and steer one running instance (see the module docstring).

    Args:
        instance: the instance name.
        hub: the instance's event hub.
        request_stop: begins the graceful stop (``Service.request_stop``).
        clock: wall-clock time (tests inject one).
    """

    def __init__(
        self,
        instance: str,
        hub: EventHub,
        *,
        request_stop: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.instance = instance
        self.hub = hub
        self._record = Recorder(hub, log)
        self._request_stop = request_stop
        self._clock = clock
        self._started_at: float | None = None
        self._state = ServiceState.STARTING
        self._store: Store | None = None
        self._uploader: Uploader | None = None
        self._pipeline: Pipeline | None = None
        self._folders: tuple[FolderConfig, ...] = ()

    # --- the service's side --------------------------------------------------------------

    def begin(self) -> None:
        """The service starts now (uptime counts from here); call from its trio run."""
        self._started_at = trio.current_time()
        self._record(ComponentStatus(component="service", state="starting", reason="opening"))

    def attach(
        self,
        store: Store,
        uploader: Uploader,
        pipeline: Pipeline,
        folders: Sequence[FolderConfig],
    ) -> None:
        """Give the view the components, once made and before they start."""
        self._store, self._uploader, self._pipeline = store, uploader, pipeline
        self._folders = tuple(folders)

    def set_state(self, state: ServiceState, reason: str = "") -> None:
        """The service moved on (starting -> running -> stopping)."""
        if state is self._state:
            return
        self._state = state
        self._record(ComponentStatus(component="service", state=state.value, reason=reason))

    # --- reading -------------------------------------------------------------------------

    @property
    def state(self) -> ServiceState:
        """The service's state; ``paused`` while running with uploads paused by the operator."""
        uploader = self._uploader
        if (
            self._state is ServiceState.RUNNING
            and uploader is not None
            and uploader.status().state is UploaderState.PAUSED
            and uploader.operator_paused
        ):
            return ServiceState.PAUSED
        return self._state

    async def status(self) -> ServiceSnapshot:
        """A snapshot of the whole service (one store read)."""
        store, uploader, pipeline = self._store, self._uploader, self._pipeline
        queue = await store.stats() if store is not None else None
        if uploader is not None:
            server = _server(uploader.status())
        else:
            server = ServerView(None, "none", None, None, "starting", 0, 0, 0, 0, None)
        return ServiceSnapshot(
            instance=self.instance,
            version=__version__,
            state=self.state,
            uptime_s=0.0 if self._started_at is None else trio.current_time() - self._started_at,
            pid=os.getpid(),
            server=server,
            queue=queue,
            folders=self._folder_views(pipeline),
            clock=self._clock(),
        )

    def _folder_views(self, pipeline: Pipeline | None) -> tuple[FolderView, ...]:
        if pipeline is None:
            return ()
        stats = pipeline.statistics().folders
        views = []
        for folder in self._folders:
            got = stats[folder.name]
            views.append(
                FolderView(
                    name=folder.name,
                    path=str(folder.watch),
                    converter=name_of(folder.converter),
                    enabled=got.enabled,
                    processed=got.files_converted + got.duplicates_skipped,
                    rejected=got.files_failed,
                    last_error=got.last_error,
                )
            )
        return tuple(views)

    # --- control verbs -------------------------------------------------------------------

    def _parts(self) -> tuple[Store, Uploader, Pipeline]:
        if self._store is None or self._uploader is None or self._pipeline is None:
            raise ServiceStartingError("the service is starting; try again in a moment")
        return self._store, self._uploader, self._pipeline

    def pause_uploads(self) -> None:
        """Stop starting uploads until :meth:`resume_uploads` (those in flight finish)."""
        self._parts()[1].pause()

    def resume_uploads(self) -> None:
        """End any pause (operator, refused token, wrong URL) and check the server now."""
        self._parts()[1].resume()

    def stop(self) -> None:
        """The graceful stop, as SIGTERM."""
        self._request_stop()

    async def requeue(self, report_ids: Sequence[str]) -> list[str]:
        """Make ``failed`` or waiting reports due now; returns the ids not found.

        Raises:
            StoreError: a report is ``uploading`` or ``done`` (nothing after it is done).
        """
        store = self._parts()[0]
        missing: list[str] = []
        done: list[str] = []
        for report_id in report_ids:
            try:
                await store.requeue(report_id)
            except NotFoundError:
                missing.append(report_id)
            else:
                done.append(report_id)
        if done:
            self._record(ReportRequeued(report_ids=tuple(done), reason="requeued by the operator"))
        return missing

    async def requeue_failed(self) -> int:
        """Make every ``failed`` report due now; returns how many."""
        count = await self._parts()[0].requeue_failed()
        if count:
            self._record(ReportRequeued(report_ids=(), reason=f"{count} failed report(s) requeued"))
        return count

    async def delete(self, report_ids: Sequence[str]) -> list[str]:
        """Delete reports in any state; returns the ids not found."""
        store = self._parts()[0]
        missing: list[str] = []
        for report_id in report_ids:
            try:
                await store.delete(report_id)
            except NotFoundError:
                missing.append(report_id)
            else:
                self._record(ReportDeleted(report_id=report_id))
        return missing

    def enable_folder(self, name: str) -> None:
        """Take files from watch folder ``name`` again (raises KeyError if unknown)."""
        self._parts()[2].enable_folder(name)

    def disable_folder(self, name: str) -> None:
        """Stop taking files from watch folder ``name``; the others go on."""
        self._parts()[2].disable_folder(name)

    async def test_server(self, timeout_s: float = TEST_TIMEOUT_S) -> ServerView:
        """Probe the server now and return what it answered (or the state at the timeout)."""
        uploader = self._parts()[1]
        seen = uploader.probes
        uploader.probe_now()
        with trio.move_on_after(timeout_s):
            await uploader.wait_probed(seen)
        return _server(uploader.status())
