"""The daemon: the nursery tree of ``pywats serve``.

Components start in dependency order with ``nursery.start`` (store, uploader, pipeline:
converters and watchers), then ``READY=1`` goes to systemd. A stop request (SIGTERM,
SIGINT) runs the graceful stop in the opposite order: ``STOPPING=1``; watchers stop and
converters finish the file in hand; uploads in flight get ``upload.shutdown_deadline_s``;
the store closes last. A second SIGINT cancels everything at once (the store still closes:
SQLite with WAL needs no more than that to stay consistent).

:func:`plan` turns a checked :class:`~pywats.config.Config` into the components'
configurations, so every error a bad config can cause is raised before anything opens.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import attrs
import trio

from pywats import paths
from pywats.config import Config, ConfigCheckError, ConverterConfig, load_converters
from pywats.converters.base import StationDefaults
from pywats.errors import ConfigError
from pywats.pipeline import FolderConfig, Pipeline
from pywats.sdnotify import Notifier, Watchdog
from pywats.store import QueueStats, Store
from pywats.upload import Uploader, UploaderConfig, UploaderState

log = logging.getLogger("pywats.service")

DAY_S = 24 * 3600.0
STATUS_INTERVAL_S = 5.0
"""Longest time between two looks at the queue counts for ``STATUS=``."""
STATUS_MIN_INTERVAL_S = 1.0
"""Shortest time between two ``STATUS=`` messages (the journal keeps none of them, but
systemd wakes up for each)."""


@attrs.frozen
class Plan:
    """What the service runs, derived from a config: ready to start, already checked."""

    instance: str
    db_path: Path
    retention_s: float
    uploader: UploaderConfig
    folders: tuple[FolderConfig, ...]
    station: StationDefaults
    convert_workers: int


def _folder_names(entries: Sequence[ConverterConfig]) -> list[str]:
    # Labels must be unique (logs, statistics, default done/error folders): the second
    # "csv" entry becomes "csv-2".
    names: list[str] = []
    seen: dict[str, int] = {}
    for entry in entries:
        label = entry.label
        seen[label] = seen.get(label, 0) + 1
        names.append(label if seen[label] == 1 else f"{label}-{seen[label]}")
    return names


def plan(instance: str, config: Config, *, token: str | None) -> Plan:
    """Check that ``config`` can run as ``instance`` and derive every component's config.

    Loads the converters (checking their arguments) and builds the folder and uploader
    configurations.

    Raises:
        ConfigCheckError: naming the key path of every problem found.
    """
    where = str(config.source) if config.source is not None else ""
    loaded = load_converters(config)
    enabled = [entry for entry in config.converters if entry.enabled]
    names = _folder_names(enabled)
    index_of = {id(entry): i for i, entry in enumerate(config.converters)}
    errors: list[ConfigError] = []
    folders: list[FolderConfig] = []
    for name, (entry, converter) in zip(names, loaded, strict=True):
        key = f"converters[{index_of[id(entry)]}]"
        try:
            folder_kwargs = {}
            if entry.patterns is not None:
                folder_kwargs["patterns"] = entry.patterns
            folders.append(
                FolderConfig(
                    name=name,
                    converter=converter.converter,
                    arguments=converter.arguments,
                    watch=entry.watch,
                    recursive=entry.recursive,
                    post_action=entry.post_action.value,
                    done_dir=entry.done_dir or paths.default_done_dir(instance, name),
                    error_dir=entry.error_dir or paths.default_error_dir(instance, name),
                    settle_s=entry.settle_s,
                    rescan_s=entry.rescan_s,
                    use_inotify=entry.use_inotify,
                    max_file_bytes=entry.max_file_bytes,
                    **folder_kwargs,
                )
            )
        except (ValueError, TypeError) as exc:
            errors.append(ConfigError(key, str(exc), file=where))
    if folders and not errors:
        try:
            # The pipeline checks the set as a whole (no two entries taking the same files).
            Pipeline.check_folders(folders)
        except ValueError as exc:
            errors.append(ConfigError("converters", str(exc), file=where))
    server = config.server
    try:
        uploader = UploaderConfig(
            url=server.url,
            token=token,
            workers=config.upload.workers,
            connect_timeout_s=server.connect_timeout_s,
            read_timeout_s=server.read_timeout_s,
            write_timeout_s=server.write_timeout_s,
            pool_timeout_s=server.pool_timeout_s,
            verify_tls=server.verify_tls,
            ca_file=server.ca_file,
            proxy=server.proxy,
            retry_base_s=config.upload.retry_base_s,
            retry_max_s=config.upload.retry_max_s,
            shutdown_deadline_s=config.upload.shutdown_deadline_s,
        )
    except ConfigError as exc:
        errors.append(
            ConfigError(f"server.{exc.key}" if exc.key else "server", exc.reason, file=where)
        )
        uploader = UploaderConfig()
    if errors:
        raise ConfigCheckError(errors)
    return Plan(
        instance=instance,
        db_path=config.queue.path or paths.default_db_path(instance),
        retention_s=config.queue.retention_days * DAY_S,
        uploader=uploader,
        folders=tuple(folders),
        station=StationDefaults(
            machine_name=config.station.name,
            location=config.station.location,
            purpose=config.station.purpose,
        ),
        convert_workers=config.convert.workers,
    )


def describe(stats: QueueStats, uploader: Uploader) -> str:
    """The one-line ``STATUS=`` text: upload state and queue counts."""
    status = uploader.status()
    if status.state is UploaderState.ONLINE:
        server = "online"
    elif status.state is UploaderState.DISABLED:
        server = "no server set"
    else:
        server = f"{status.state.value}: {status.reason}"
    return (
        f"{stats.pending} pending, {stats.uploading} uploading, {stats.failed} failed, "
        f"{status.uploaded} uploaded since start; {server}"
    )


class Service:
    """One running instance: store, uploader, pipeline, watchdog, status.

    Start it with ``await nursery.start(service.run)`` or just ``await service.run()``;
    :meth:`request_stop` (or the signals :meth:`run` handles when ``handle_signals``)
    stops it gracefully, and :meth:`run` returns once the store is closed.
    """

    def __init__(
        self,
        plan: Plan,
        *,
        notifier: Notifier | None = None,
        watchdog: Watchdog | None = None,
        handle_signals: bool = True,
    ) -> None:
        self.plan = plan
        self.notifier = notifier if notifier is not None else Notifier(None)
        self.watchdog = watchdog if watchdog is not None else Watchdog(self.notifier, None)
        self._handle_signals = handle_signals
        self._stop = trio.Event()
        self._forced = False
        self.store: Store | None = None
        self.uploader: Uploader | None = None
        self.pipeline: Pipeline | None = None

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
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
            task_status.started()
            async for signum in received:
                name = signal.Signals(signum).name
                if not self._stop.is_set():
                    log.info("%s: stopping gracefully (send SIGINT again to stop at once)", name)
                    self.request_stop()
                elif signum == signal.SIGINT:
                    log.warning("second SIGINT: stopping at once")
                    self._forced = True
                    scope.cancel()

    async def _run(self, task_status: trio.TaskStatus[None]) -> None:
        plan = self.plan
        await self.notifier.status("opening the queue")
        store = await Store.open(plan.db_path, retention_s=plan.retention_s)
        self.store = store
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(store.run)
                await nursery.start(self.watchdog.run)
                uploader = Uploader(store, plan.uploader)
                self.uploader = uploader
                uploader_done = await _start(nursery, uploader.run)
                pipeline = Pipeline(
                    store,
                    plan.folders,
                    station=plan.station,
                    workers=plan.convert_workers,
                )
                self.pipeline = pipeline
                await self.notifier.status("starting watchers")
                pipeline_done = await _start(nursery, pipeline.run)
                stats = await store.stats()
                await self.notifier.ready(describe(stats, uploader))
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
            log.info("instance %r stopped", plan.instance)

    async def _report_status(self, store: Store, uploader: Uploader) -> None:
        last = ""
        while True:
            seen = uploader.status_generation
            text = describe(await store.stats(), uploader)
            if text != last:
                await self.notifier.status(text)
                last = text
            # At most one STATUS= per STATUS_MIN_INTERVAL_S however busy; at least one
            # look per STATUS_INTERVAL_S (queue counts change without the uploader).
            await trio.sleep(STATUS_MIN_INTERVAL_S)
            with trio.move_on_after(STATUS_INTERVAL_S):
                await uploader.wait_status_changed(seen)


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
