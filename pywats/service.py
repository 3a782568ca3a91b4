"""The daemon: the nursery tree of ``pywats serve``.

The components are made as soon as the queue is open, before any of them starts, and
handed to the :class:`~pywats.view.ServiceView` (the one way in for the control
protocol) together. They then start in dependency order with ``nursery.start`` (store
housekeeping, watchdog, uploader, pipeline: converters and watchers), and ``READY=1``
goes to systemd only after the last one reported itself started.

A stop request (SIGTERM, SIGINT, :meth:`Service.request_stop`, ``service.stop``) runs the
graceful stop in the opposite order: ``STOPPING=1``; watchers stop and converters finish
the file in hand; uploads in flight get ``upload.shutdown_deadline_s``; the store closes
last. A second SIGINT cancels everything at once (the store still closes: SQLite with WAL
needs no more than that to stay consistent).

:func:`pywats.plan.prepare` turns the configuration into a :class:`~pywats.plan.Plan`
before anything here runs, so every error a bad config can cause is raised before
anything opens.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from pywats import recovery
from pywats.errors import PywatsError
from pywats.events import EventHub, Stats
from pywats.pipeline import Pipeline
from pywats.plan import Plan
from pywats.recovery import Checkpointer, RunMarker
from pywats.rpc.server import RpcServer, RpcSettings
from pywats.sdnotify import Notifier, Watchdog
from pywats.store import QueueStats, Store
from pywats.upload import Uploader, UploaderState
from pywats.view import ServiceSnapshot, ServiceState, ServiceView

__all__ = ["STATUS_INTERVAL_S", "STATUS_MIN_INTERVAL_S", "Service", "describe"]

log = logging.getLogger("pywats.service")

STATUS_INTERVAL_S = 5.0
"""Longest time between two looks at the queue counts (``STATUS=``, the stats event)."""
STATUS_MIN_INTERVAL_S = 1.0
"""Shortest time between two ``STATUS=`` messages and stats events (systemd and every
subscriber wake up for each)."""


def describe(stats: QueueStats, uploader: Uploader, disk_full: str | None = None) -> str:
    """The one-line ``STATUS=`` text: upload state and queue counts, after ``disk full:
    <where>`` while a disk is full (:meth:`pywats.diskfull.DiskFull.describe`)."""
    status = uploader.status()
    if status.state is UploaderState.ONLINE:
        server = "online"
    elif status.state is UploaderState.DISABLED:
        server = "no server set"
    else:
        server = f"{status.state.value}: {status.reason}"
    full = f"{disk_full}; " if disk_full else ""
    return (
        f"{full}{stats.pending} pending, {stats.uploading} uploading, {stats.failed} failed, "
        f"{status.uploaded} uploaded since start; {server}"
    )


def stats_event(snapshot: ServiceSnapshot) -> Stats:
    """The ``stats`` event of a status snapshot (queue, uploads, folders)."""
    queue = snapshot.queue
    server = snapshot.server
    return Stats(
        queue={}
        if queue is None
        else {
            "pending": queue.pending,
            "uploading": queue.uploading,
            "done": queue.done,
            "failed": queue.failed,
            "oldest_pending_age_s": queue.oldest_pending_age_s,
        },
        uploads={
            "uploaded": server.uploaded,
            "failed": server.failed,
            "retried": server.retried,
            "in_flight": server.in_flight,
        },
        folders={
            f.name: {"processed": f.processed, "rejected": f.rejected} for f in snapshot.folders
        },
    )


class Service:
    """One running instance: store, uploader, pipeline, watchdog, status.

    Start it with ``await nursery.start(service.run)`` or just ``await service.run()``;
    :meth:`request_stop` (or the signals :meth:`run` handles when ``handle_signals``)
    stops it gracefully, and :meth:`run` returns once the store is closed.

    :attr:`hub` and :attr:`view` exist from construction on, before anything starts.
    """

    def __init__(
        self,
        plan: Plan,
        *,
        notifier: Notifier | None = None,
        watchdog: Watchdog | None = None,
        handle_signals: bool = True,
        hub: EventHub | None = None,
        rpc: RpcSettings | None = None,
    ) -> None:
        self.plan = plan
        self._rpc = rpc
        """The control socket to serve (``None``: none, as in most tests)."""
        self.notifier = notifier if notifier is not None else Notifier(None)
        self.watchdog = watchdog if watchdog is not None else Watchdog(self.notifier, None)
        self._handle_signals = handle_signals
        self._stop = trio.Event()
        self._forced = False
        self.hub = hub if hub is not None else EventHub()
        """Every outcome of this run goes here; a new stream id per start."""
        self.view = ServiceView(plan.instance, self.hub, request_stop=self.request_stop, plan=plan)
        """What the control protocol reads and steers."""

    @property
    def forced(self) -> bool:
        """Whether the last stop was forced (a second SIGINT) rather than graceful."""
        return self._forced

    def request_stop(self) -> None:
        """Begin the graceful stop (idempotent)."""
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until stopped; ``started()`` after READY=1 was sent."""
        async with trio.open_nursery() as outer:
            if self._handle_signals:
                await outer.start(self._signals, outer.cancel_scope)
            try:
                await self._run(task_status)
            finally:
                outer.cancel_scope.cancel()

    async def _signals(
        self,
        scope: trio.CancelScope,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async def reload() -> None:
            # The view logs each change and error; a reload never stops the service.
            log.info("SIGHUP: reading the configuration again")
            try:
                await self.view.reload_config()
            except PywatsError as exc:  # still starting, or no config to read again
                log.warning("SIGHUP: configuration not reloaded: %s", exc)
            except Exception:  # a bug in a reload must not take the station down
                log.exception("SIGHUP: configuration reload failed")

        # SIGHUP reloads the configuration (systemctl reload, ExecReload=). Each reload runs
        # beside this loop, so a SIGTERM during a slow one still stops the service; the
        # nursery ends with this task (cancelled by run()), a reload then left unfinished.
        signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        async with trio.open_nursery() as reloads:
            with trio.open_signal_receiver(*signals) as received:
                task_status.started()
                async for signum in received:
                    name = signal.Signals(signum).name
                    if signum == signal.SIGHUP:
                        if not self._stop.is_set():
                            reloads.start_soon(reload)
                    elif not self._stop.is_set():
                        log.info(
                            "%s: stopping gracefully (send SIGINT again to stop at once)", name
                        )
                        self.request_stop()
                    elif signum == signal.SIGINT:
                        log.warning("second SIGINT: stopping at once")
                        self._forced = True
                        scope.cancel()

    async def _run(self, task_status: trio.TaskStatus[None]) -> None:
        plan = self.plan
        self.view.begin()
        await self.notifier.status("opening the queue")
        marker = RunMarker.of(plan.db_path)
        # Read before the store opens: the marker says whether the last run stopped cleanly.
        unclean_since = await trio.to_thread.run_sync(marker.read)
        store = await Store.open(plan.db_path, retention_s=plan.retention_s)
        try:
            if unclean_since is not None:
                # Before the watchers start: their start-up listing takes what comes back.
                await recovery.recover(store, plan.folders, unclean_since)
            checkpointer = Checkpointer(store, marker)
            if not await checkpointer.checkpoint():
                # Could not note a fresh time: keep the older one, so a later recovery
                # still looks far enough back.
                await trio.to_thread.run_sync(marker.write, unclean_since or store.clock())
            # Every component is made before any starts, so the view is whole from here on.
            uploader = Uploader(store, plan.uploader, hub=self.hub)
            pipeline = Pipeline(
                store,
                plan.folders,
                station=plan.station,
                workers=plan.convert_workers,
                memory_budget_bytes=plan.convert_memory_budget_bytes,
                hub=self.hub,
            )
            self.view.attach(store, uploader, pipeline, plan.folders)
            async with trio.open_nursery() as nursery:
                if self._rpc is not None:
                    # Listening before anything starts, so a client can watch start-up.
                    rpc = RpcServer(self.view, self._rpc, db_path=plan.db_path)
                    await nursery.start(rpc.run)
                await nursery.start(store.run)
                await nursery.start(checkpointer.run)
                await nursery.start(self.watchdog.run)
                uploader_done = await _start(nursery, uploader.run)
                await self.notifier.status("starting watchers")
                pipeline_done = await _start(nursery, pipeline.run)
                stats = await store.stats()
                await self.notifier.ready(describe(stats, uploader, store.disk_full.describe()))
                self.view.set_state(ServiceState.RUNNING, "every component started")
                log.info(
                    "instance %r ready: %d watch folder(s), queue %s, server %s",
                    plan.instance,
                    len(plan.folders),
                    plan.db_path,
                    uploader.status().server_url or "none",
                )
                task_status.started()
                nursery.start_soon(self._report_status, store, uploader)

                await self._stop.wait()
                self.view.set_state(ServiceState.STOPPING, "finishing files in hand")
                # systemd may be too busy to read; the stop must not wait on it.
                with trio.move_on_after(1.0):
                    await self.notifier.stopping("stopping: finishing files in hand")
                pipeline.begin_shutdown()
                await pipeline_done.wait()
                await self.notifier.status("stopping: finishing uploads in flight")
                uploader.begin_shutdown(plan.uploader.shutdown_deadline_s)
                await uploader_done.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await store.aclose()
                # Clean only if closing copied the WAL into the database and removed it;
                # a WAL left behind (a failed checkpoint, a full disk) keeps the marker,
                # so the next start checks the done folders.
                if not await trio.to_thread.run_sync(_wal_left, plan.db_path):
                    await trio.to_thread.run_sync(marker.remove)
            log.info("instance %r stopped", plan.instance)

    async def _report_status(self, store: Store, uploader: Uploader) -> None:
        """``STATUS=`` for systemd and the ``stats`` event, from one snapshot."""
        last = ""
        last_stats: Stats | None = None
        while True:
            seen = uploader.status_generation
            snapshot = await self.view.status()
            assert snapshot.queue is not None  # the store is open
            text = describe(snapshot.queue, uploader, snapshot.disk_full)
            if text != last:
                await self.notifier.status(text)
                last = text
            event = stats_event(snapshot)
            if last_stats is None or (event.queue, event.uploads, event.folders) != (
                last_stats.queue,
                last_stats.uploads,
                last_stats.folders,
            ):
                last_stats = self.hub.publish(event)
            # At most one of each per STATUS_MIN_INTERVAL_S however busy; at least one
            # look per STATUS_INTERVAL_S (queue counts change without the uploader).
            await trio.sleep(STATUS_MIN_INTERVAL_S)
            with trio.move_on_after(STATUS_INTERVAL_S):
                await uploader.wait_status_changed(seen)


def _wal_left(db_path: Path) -> bool:
    return os.path.lexists(f"{db_path}-wal")


async def _start(nursery: trio.Nursery, run: Callable[..., Awaitable[None]]) -> trio.Event:
    """Start ``run`` in ``nursery``; the event is set when it returns."""
    done = trio.Event()

    async def wrapper(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await run(task_status=task_status)
        finally:
            done.set()

    await nursery.start(wrapper)
    return done
