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

import datetime as dt
import enum
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs
import trio

from pywats import __version__, logs, paths
from pywats.config import Config, ConfigCheckError, ConverterConfig
from pywats.converters.base import name_of
from pywats.errorfiles import (
    ErrorFile,
    Restored,
    companions_of,
    list_error_files,
    restore_error_file,
)
from pywats.errors import ConfigError, PywatsError
from pywats.events import (
    ComponentStatus,
    EventHub,
    Recorder,
    ReportDeleted,
    ReportFailed,
    ReportRequeued,
    ReportRetrying,
    ReportUploaded,
)
from pywats.pipeline import FolderConfig, Pipeline
from pywats.plan import Plan, prepare
from pywats.report import wsjf
from pywats.store import NewReport, QueueStats, Store
from pywats.upload import Uploader, UploaderState, UploaderStatus

__all__ = [
    "BUILT_IN_DEFAULTS",
    "ConfigIssue",
    "FolderView",
    "NoConfigError",
    "ReloadResult",
    "SentTestReport",
    "ServerView",
    "ServiceSnapshot",
    "ServiceStartingError",
    "ServiceState",
    "ServiceView",
    "make_test_report",
]

log = logging.getLogger("pywats.service")

TEST_TIMEOUT_S = 15.0
"""Longest :meth:`ServiceView.test_server` waits for the probe's answer."""

TEST_REPORT_TIMEOUT_S = 30.0
"""Longest :meth:`ServiceView.send_test_report` waits for the server's answer."""

TEST_REPORT_PN = "PYWATS-TEST"
"""The part number of the report ``server.test`` with ``send_report`` submits."""

DAY_S = 86400.0


BUILT_IN_DEFAULTS = "built-in defaults"
"""What :meth:`ServiceView.effective_config` names as the file when there is none."""


class ServiceStartingError(PywatsError):
    """The verb needs a component that does not exist yet (the service is starting)."""


class NoConfigError(PywatsError):
    """The service was not started from a configuration (:func:`pywats.plan.prepare`), so
    it has none to show or to read again (only tests build a service that way)."""


@attrs.frozen
class ConfigIssue:
    """One problem :meth:`ServiceView.reload_config` found in the file."""

    key: str
    """The key path (``converters[1].post_action``), or the source (``PYWATS_TOKEN``)."""
    reason: str
    file: str
    """The file, or ``""`` when the problem is not in it (an option, the environment)."""
    text: str
    """The line ``pywats config check`` prints for it (after its ``pywats config check: ``)."""

    @classmethod
    def of(cls, error: ConfigError) -> ConfigIssue:
        """The issue of a :class:`~pywats.errors.ConfigError`."""
        return cls(key=error.key, reason=error.reason, file=error.file, text=str(error))


@attrs.frozen
class ReloadResult:
    """What :meth:`ServiceView.reload_config` did.

    Keys are TOML key paths (``server.url``, ``converters[0].enabled``); a token whose
    value changed without its key changing (the same file, new content) is named by its
    source (``server.token_file``, ``CREDENTIALS_DIRECTORY/token``, ``PYWATS_TOKEN``).
    Values are never part of the answer.
    """

    file: str
    """The file read (or :data:`BUILT_IN_DEFAULTS`)."""
    applied: tuple[str, ...] = ()
    """Keys that changed and are in effect now."""
    needs_restart: tuple[str, ...] = ()
    """Keys that changed and take effect only after a restart (not applied)."""
    errors: tuple[ConfigIssue, ...] = ()
    """The file failed the check; then nothing changed and the two lists are empty."""

    @property
    def ok(self) -> bool:
        """Whether the file passed the check (it may still have changed nothing)."""
        return not self.errors

    def lines(self) -> list[str]:
        """One line per change and per error, as the service logs them."""
        if self.errors:
            return [f"config reload refused, nothing changed: {e.text}" for e in self.errors]
        out = [f"config reload: {key} changed, applied" for key in self.applied]
        out += [
            f"config reload: {key} changed, takes effect after a restart"
            for key in self.needs_restart
        ]
        return out or [f"config reload: {self.file}: nothing changed"]

    def summary(self) -> str:
        """One line: how many changes were applied, how many wait for a restart."""
        if self.errors:
            return f"{self.file}: refused ({len(self.errors)} error(s)); nothing changed"
        return (
            f"{self.file}: {len(self.applied)} change(s) applied, "
            f"{len(self.needs_restart)} need a restart"
        )


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
    clock_ahead_s: float | None = None
    """How far the station's clock is ahead of the server's, from its last probe."""


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
    patterns: tuple[str, ...] = ()
    """The file-name globs the entry takes (matched case-insensitively)."""
    recursive: bool = False
    """Whether the entry also takes files in subfolders."""


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
    disk_full: str | None = None
    """``disk full: <where>`` while the queue database or a done folder cannot be written
    for lack of space (nothing is lost meanwhile), else ``None``."""


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
        clock_ahead_s=status.clock_ahead_s,
    )


@attrs.frozen
class SentTestReport:
    """What became of the test report :meth:`ServiceView.send_test_report` queued."""

    report_id: str
    pn: str
    sn: str
    outcome: str
    """``uploaded`` (the server accepted it), ``failed`` (rejected for good), ``retrying``
    (a transient failure: it stays queued and is tried again), or ``pending`` (no answer
    within the wait: it stays queued)."""
    status: int | None
    """The HTTP status the server answered (``None``: none came)."""
    message: str
    """What the server said (its error), or a sentence about the outcome."""


def make_test_report(
    *, station: str | None = None, clock: Callable[[], float] = time.time
) -> tuple[dict[str, Any], bytes]:
    """A small, clearly labelled, valid UUT report and its WSJF bytes.

    Part number :data:`TEST_REPORT_PN`, serial ``pywats-test-<host>-<time>``, operator
    ``pywats``, one passed step. It passes :func:`pywats.report.wsjf.loads_obj` (shape and
    rules), so what the server answers is about the server, not about the report.
    """
    host = station or socket.gethostname() or "station"
    now = dt.datetime.fromtimestamp(clock(), dt.UTC)
    local = now.astimezone()
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    machine = host[:100]
    doc: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "type": "T",
        "pn": TEST_REPORT_PN,
        "sn": f"pywats-test-{host}-{stamp}"[:100],
        "rev": "1",
        "processCode": 10,
        "result": "P",
        "machineName": machine,
        "location": "pywats",
        "purpose": "pywats server test",
        "start": local.isoformat(timespec="milliseconds"),
        "startUTC": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "uut": {"user": "pywats", "execTime": 0.0},
        "miscInfos": [{"description": "pywats", "text": f"server test, pywats {__version__}"}],
        "subUnits": [],
        "root": {
            "id": 1,
            "group": "M",
            "stepType": "SequenceCall",
            "name": "pywats server test",
            "status": "P",
            "totTime": 0.0,
            "seqCall": {"path": "pywats", "name": "pywats server test", "version": __version__},
            "steps": [
                {
                    "id": 2,
                    "group": "M",
                    "stepType": "ET_PFT",
                    "name": "pywats test step",
                    "status": "P",
                    "booleanMeas": [{"status": "P"}],
                }
            ],
        },
    }
    body = wsjf.dumps(wsjf.loads_obj(doc))
    return doc, body


class ServiceView:
    """Read and steer one running instance (see the module docstring).

    Args:
        instance: the instance name.
        hub: the instance's event hub.
        request_stop: begins the graceful stop (``Service.request_stop``).
        clock: wall-clock time (tests inject one).
        plan: what the service was started with; its config and how
            :func:`~pywats.plan.prepare` made it are what :meth:`effective_config` shows
            and :meth:`reload_config` reads again (``None``: neither is available).
    """

    def __init__(
        self,
        instance: str,
        hub: EventHub,
        *,
        request_stop: Callable[[], None],
        clock: Callable[[], float] = time.time,
        plan: Plan | None = None,
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
        self._plan = plan
        """The plan as it runs now: the start's, with what reloads applied."""
        self._reloading = trio.Lock()  # a SIGHUP during an RPC reload waits its turn
        # [[converters]] index -> folder name, for the entries running since the start (the
        # only ones a reload can switch on and off; the plan keeps the enabled entries in
        # file order).
        self._entry_folders: dict[int, str] = {}
        if plan is not None and plan.config is not None:
            enabled = [i for i, e in enumerate(plan.config.converters) if e.enabled]
            if len(enabled) == len(plan.folders):
                self._entry_folders = {
                    i: f.name for i, f in zip(enabled, plan.folders, strict=True)
                }

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
        return self._state_with(None if uploader is None else uploader.status())

    def _state_with(self, uploads: UploaderStatus | None) -> ServiceState:
        if (
            self._state is ServiceState.RUNNING
            and uploads is not None
            and uploads.state is UploaderState.PAUSED
            and self._uploader is not None
            and self._uploader.operator_paused
        ):
            return ServiceState.PAUSED
        return self._state

    async def status(self) -> ServiceSnapshot:
        """A snapshot of the whole service (one store read)."""
        store, uploader, pipeline = self._store, self._uploader, self._pipeline
        queue = await store.stats() if store is not None else None
        uploads = None if uploader is None else uploader.status()
        if uploads is not None:
            server = _server(uploads)
        else:
            server = ServerView(None, "none", None, None, "starting", 0, 0, 0, 0, None)
        return ServiceSnapshot(
            instance=self.instance,
            version=__version__,
            state=self._state_with(uploads),
            uptime_s=0.0 if self._started_at is None else trio.current_time() - self._started_at,
            pid=os.getpid(),
            server=server,
            queue=queue,
            folders=self._folder_views(pipeline),
            clock=self._clock(),
            disk_full=None if store is None else store.disk_full.describe(),
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
                    patterns=folder.patterns,
                    recursive=folder.recursive,
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
        missing = await self._parts()[0].requeue_many(report_ids)
        done = [report_id for report_id in report_ids if report_id not in missing]
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
        missing = await self._parts()[0].delete_many(report_ids)
        for report_id in report_ids:
            if report_id not in missing:
                self._record(ReportDeleted(report_id=report_id))
        return missing

    async def clean_done(self, older_than_days: float) -> int:
        """Delete ``done`` reports finished more than ``older_than_days`` ago; returns how many.

        Raises:
            ValueError: ``older_than_days`` is negative.
        """
        if older_than_days < 0:
            raise ValueError(f"older_than_days must be >= 0, got {older_than_days}")
        count = await self._parts()[0].purge_done(older_than_s=older_than_days * DAY_S)
        log.info(
            "queue clean: %d done report(s) older than %g day(s) deleted", count, older_than_days
        )
        return count

    async def send_test_report(self, timeout_s: float = TEST_REPORT_TIMEOUT_S) -> SentTestReport:
        """Queue a test report (:func:`test_report`) like any other, and wait for its fate.

        It goes through the store and the uploader, so it tests what real reports go
        through. Waits at most ``timeout_s`` for its ``report.uploaded``,
        ``report.failed`` or first ``report.retrying``; otherwise the outcome is
        ``pending`` (it stays queued and is uploaded when the server answers).
        """
        store = self._parts()[0]
        station = None
        if self._plan is not None and self._plan.config is not None:
            station = self._plan.config.station.name
        doc, body = make_test_report(station=station, clock=self._clock)
        report = NewReport(
            id=doc["id"],
            body=body,
            pn=doc["pn"],
            sn=doc["sn"],
            result=doc["result"],
            start=doc["start"],
            converter="pywats-test",
        )
        report_id = report.id
        with self.hub.subscribe() as events:
            # Subscribed before the enqueue, so the answer cannot slip past.
            await store.enqueue([report])
            log.info("server test: test report %s (sn %s) queued", report_id, report.sn)
            with trio.move_on_after(timeout_s):
                async for event in events:
                    if isinstance(event, ReportUploaded) and event.report_id == report_id:
                        return SentTestReport(
                            report_id,
                            report.pn,
                            report.sn,
                            "uploaded",
                            event.status,
                            "the server accepted the test report",
                        )
                    if isinstance(event, ReportFailed) and event.report_id == report_id:
                        return SentTestReport(
                            report_id,
                            report.pn,
                            report.sn,
                            "failed",
                            event.status,
                            event.message,
                        )
                    if isinstance(event, ReportRetrying) and event.report_id == report_id:
                        return SentTestReport(
                            report_id,
                            report.pn,
                            report.sn,
                            "retrying",
                            event.status,
                            event.message,
                        )
        return SentTestReport(
            report_id,
            report.pn,
            report.sn,
            "pending",
            None,
            f"no answer within {timeout_s:g} s; the report stays queued",
        )

    def enable_folder(self, name: str) -> None:
        """Take files from watch folder ``name`` again (raises KeyError if unknown)."""
        self._parts()[2].enable_folder(name)

    def disable_folder(self, name: str) -> None:
        """Stop taking files from watch folder ``name``; the others go on."""
        self._parts()[2].disable_folder(name)

    # --- files that did not convert -------------------------------------------------------

    def _folder(self, name: str) -> FolderConfig:
        self._parts()
        for folder in self._folders:
            if folder.name == name:
                return folder
        raise KeyError(name)

    async def error_files(
        self, folder: str | None = None, limit: int = 200
    ) -> tuple[list[tuple[str, ErrorFile]], bool]:
        """The files of the error folders (of ``folder`` only, if given), newest first.

        Returns ``(folder name, file)`` pairs, at most ``limit``, and whether there were
        more. Two entries that share an error folder both list its files.

        Raises:
            ServiceStartingError: the folders are not known yet.
            KeyError: no watch folder entry named ``folder``.
        """
        if folder is not None:
            chosen = [self._folder(folder)]
        else:
            self._parts()
            chosen = list(self._folders)

        def scan() -> tuple[list[tuple[str, ErrorFile]], bool]:
            found: list[tuple[str, ErrorFile]] = []
            more = False
            for entry in chosen:
                files, cut = list_error_files(
                    entry.error_dir,
                    recursive=entry.recursive,
                    limit=limit,
                    companions=companions_of(entry),
                )
                more = more or cut
                found.extend((entry.name, f) for f in files)
            found.sort(key=lambda item: item[1].mtime, reverse=True)
            return found[:limit], more or len(found) > limit

        # In a thread: an error folder may be on a slow share.
        return await trio.to_thread.run_sync(scan)

    async def restore_error_file(self, folder: str, name: str) -> Restored:
        """Move ``name`` from ``folder``'s error folder back into its watch folder, with
        the companions its converter names.

        Returns the file's and its companions' paths in the watch folder. See
        :func:`pywats.errorfiles.restore_error_file` for what is refused.

        Raises:
            ServiceStartingError: the folders are not known yet.
            KeyError: no watch folder entry named ``folder``.
            RestoreRefusedError, ErrorFileNotFoundError, NameTakenError,
                RestoreIncompleteError, OSError: as
                :func:`~pywats.errorfiles.restore_error_file`.
        """
        entry = self._folder(folder)
        restored = await trio.to_thread.run_sync(
            lambda: restore_error_file(
                entry.error_dir,
                entry.watch,
                name,
                recursive=entry.recursive,
                companions=companions_of(entry),
            )
        )
        more = f" (and {len(restored.companions)} companions)" if restored.companions else ""
        log.info(
            "%s: %s%s moved back from the error folder to %s by the operator",
            folder,
            name,
            more,
            restored.path,
        )
        return restored

    async def test_server(self, timeout_s: float = TEST_TIMEOUT_S) -> ServerView:
        """Probe the server now and return what it answered (or the state at the timeout)."""
        uploader = self._parts()[1]
        seen = uploader.probes
        uploader.probe_now()
        with trio.move_on_after(timeout_s):
            await uploader.wait_probed(seen)
        return _server(uploader.status())

    # --- configuration -------------------------------------------------------------------

    def _running_config(self) -> tuple[Plan, Config]:
        plan = self._plan
        if plan is None or plan.config is None:
            raise NoConfigError("this service was not started from a configuration")
        return plan, plan.config

    def effective_config(self) -> dict[str, Any]:
        """The configuration as the service runs it, as a JSON-able mapping (``config.get``).

        Every section and key with the defaults filled in and paths absolute, after what
        reloads applied (changes that wait for a restart are not in it). Each
        ``[[converters]]`` entry also names its ``folder`` (``None`` while not loaded) and,
        when loaded, has the patterns, done and error folders it runs with. ``file`` is the
        config file (or :data:`BUILT_IN_DEFAULTS`), ``server_url_option`` the
        ``--server-url`` that overrides ``server.url`` (or ``None``), ``file_keys`` every
        key path the file sets (what is not there is a default), ``state_dir_from`` what
        chose the state directory the default paths are under (``$STATE_DIRECTORY``,
        ``$XDG_DATA_HOME`` or ``~/.local/share``).

        The token itself is never in it, whatever its source: ``server.token`` is replaced
        by ``{"source": ..., "path": ...}`` (``server.token``, ``server.token_file``,
        ``CREDENTIALS_DIRECTORY/token`` or ``PYWATS_TOKEN``; ``None``: no token), and a
        password in ``server.proxy`` is shown as ``***``.

        Raises:
            NoConfigError: the service was not started from a configuration.
        """
        plan, config = self._running_config()
        token_source = plan.token_source
        server = _jsonable(attrs.asdict(config.server, recurse=False))
        server["token"] = (
            None
            if token_source is None
            else {"source": token_source.key, "path": _jsonable(token_source.path)}
        )
        server["proxy"] = _masked_proxy(config.server.proxy)
        server["url"] = plan.uploader.url  # with --server-url applied, as the uploader uses it
        folders = {f.name: f for f in plan.folders}
        entries = []
        for index, entry in enumerate(config.converters):
            shown = _jsonable(attrs.asdict(entry, recurse=False))
            name = self._entry_folders.get(index)
            folder = folders.get(name) if name is not None else None
            shown["folder"] = name
            if folder is not None:
                shown.update(
                    converter=name_of(folder.converter),
                    converter_version=getattr(folder.converter, "version", None),
                    watch=str(folder.watch),
                    patterns=list(folder.patterns),
                    done_dir=str(folder.done_dir),
                    error_dir=str(folder.error_dir),
                )
            entries.append(shown)
        result: dict[str, Any] = {
            "instance": self.instance,
            "file": BUILT_IN_DEFAULTS if config.source is None else str(config.source),
            "server_url_option": None if plan.prepared is None else plan.prepared.server_url,
            # Where each value came from: a key path in file_keys is the file's; a path
            # the file leaves out under the state directory is that directory's, which
            # state_dir_from names; anything else is a default.
            "file_keys": sorted(config.given),
            "state_dir_from": paths.state_dir_source(),
            "station": _jsonable(attrs.asdict(config.station)),
            "server": server,
            "upload": _jsonable(attrs.asdict(config.upload)),
            "convert": _jsonable(attrs.asdict(config.convert)),
            "queue": {"path": str(plan.db_path), "retention_days": config.queue.retention_days},
            "rpc": _jsonable(attrs.asdict(config.rpc)),
            "log": _jsonable(attrs.asdict(config.log)),
            "converters": entries,
        }
        # Belt and braces: the token may also have been written into a value that is not
        # its key (an argument, a proxy URL); it must not leave the service that way either.
        scrubbed: dict[str, Any] = _scrubbed(result, plan.uploader.token)
        return scrubbed

    async def reload_config(self) -> ReloadResult:
        """Read the config file again and apply what can change without a restart.

        The file is checked by the same :func:`~pywats.plan.prepare` as at start (same
        instance, file and ``--server-url``). A file that fails the check changes nothing,
        and the result carries every error as ``pywats config check`` prints it.
        Otherwise every changed key is either applied or listed as needing a restart:

        - applied: ``[server]`` (url, token from whichever source, timeouts, TLS, proxy)
          and ``[upload]``, given to the uploader at once (:meth:`Uploader.reconfigure`:
          uploads in flight get the old ``shutdown_deadline_s``; a pause for a refused
          token, a wrong URL or a TLS setup ends, an operator's pause stays), and
          ``converters[i].enabled`` of an entry running since the start (its folder is
          switched on or off);
        - needs a restart: everything else (``[station]``, ``[convert]``, ``[queue]``,
          ``[rpc]``, ``[log]``, any other key of a ``[[converters]]`` entry, entries
          added or removed, an entry enabled that was disabled at start).

        The outcome is logged (one line per change or error) and published as
        ``ComponentStatus(component="config")``.

        Raises:
            ServiceStartingError: the components do not exist yet.
            NoConfigError: the service was not started from a configuration file check.
        """
        _, uploader, pipeline = self._parts()
        async with self._reloading:
            plan, old = self._running_config()
            prepared = plan.prepared
            if prepared is None:
                raise NoConfigError("this service was not started through pywats.plan.prepare")
            file = BUILT_IN_DEFAULTS if old.source is None else str(old.source)
            try:
                # In a thread: the check looks at folders, which may be on a slow share.
                new, token, new_plan = await trio.to_thread.run_sync(
                    lambda: prepare(
                        prepared.instance,
                        prepared.config_path,
                        server_url=prepared.server_url,
                        environ=prepared.environ,
                    )
                )
            except ConfigCheckError as exc:
                result = ReloadResult(file=file, errors=tuple(map(ConfigIssue.of, exc.errors)))
            except ConfigError as exc:
                result = ReloadResult(file=file, errors=(ConfigIssue.of(exc),))
            else:
                if token:
                    logs.redact(token)
                result = self._apply(plan, old, new, new_plan, uploader, pipeline)
            for line in result.lines():
                log.log(logging.WARNING if result.errors else logging.INFO, "%s", line)
            state = "refused" if result.errors else "reloaded"
            # The lines above said it all; the event's own line is for the debug log
            # (a SIGHUP that changed nothing costs two lines, not three).
            self._record(
                ComponentStatus(component="config", state=state, reason=result.summary()),
                logging.DEBUG,
            )
            return result

    def _apply(
        self,
        plan: Plan,
        old: Config,
        new: Config,
        new_plan: Plan,
        uploader: Uploader,
        pipeline: Pipeline,
    ) -> ReloadResult:
        """Apply what ``new`` changes that can change now; the rest waits for a restart."""
        applied: list[str] = []
        restart: list[str] = []
        for key in _changed_keys(old, new):
            if key.startswith(("server.", "upload.")):
                applied.append(key)
            else:
                restart.append(key)
        switches: dict[int, bool] = {}
        if len(old.converters) == len(new.converters):
            for index, (before, after) in enumerate(
                zip(old.converters, new.converters, strict=True)
            ):
                key = f"converters[{index}].enabled"
                if before.enabled != after.enabled and index in self._entry_folders:
                    switches[index] = after.enabled
                    restart.remove(key)
                    applied.append(key)
        # The same token key with new content (the file or the credential was fixed).
        old_token, new_token = plan.uploader.token, new_plan.uploader.token
        source = new_plan.token_source or plan.token_source
        if (old_token != new_token or plan.token_source != new_plan.token_source) and not any(
            k in applied for k in ("server.token", "server.token_file")
        ):
            applied.append(source.key if source is not None else "server.token")
        uploader_config = attrs.evolve(
            new_plan.uploader,
            # Not in the file: keep whatever the service was started with.
            probe_max_s=plan.uploader.probe_max_s,
            health_interval_s=plan.uploader.health_interval_s,
        )
        if uploader_config != plan.uploader:
            uploader.reconfigure(uploader_config)
        for index, enabled in switches.items():
            name = self._entry_folders[index]
            if enabled:
                pipeline.enable_folder(name, reason="enabled in the configuration file")
            else:
                pipeline.disable_folder(name, reason="disabled in the configuration file")
        entries = tuple(
            attrs.evolve(entry, enabled=switches[index]) if index in switches else entry
            for index, entry in enumerate(old.converters)
        )
        running = attrs.evolve(old, server=new.server, upload=new.upload, converters=entries)
        self._plan = attrs.evolve(
            plan, uploader=uploader_config, token_source=new_plan.token_source, config=running
        )
        return ReloadResult(
            file=BUILT_IN_DEFAULTS if new.source is None else str(new.source),
            applied=tuple(applied),
            needs_restart=tuple(restart),
        )


def _flat(config: Config) -> dict[str, object]:
    """Every key of ``config`` by its key path (``converters[0].watch``)."""
    out: dict[str, object] = {}
    for field in attrs.fields(Config):
        value = getattr(config, field.name)
        if field.name in ("source", "given"):  # where it was read from, not a setting
            continue
        if field.name == "converters":
            for index, entry in enumerate(value):
                for sub in attrs.fields(ConverterConfig):
                    out[f"converters[{index}].{sub.name}"] = getattr(entry, sub.name)
            continue
        for sub in attrs.fields(type(value)):
            out[f"{field.name}.{sub.name}"] = getattr(value, sub.name)
    return out


def _changed_keys(old: Config, new: Config) -> list[str]:
    """The key paths whose values differ, in file order; entries added or removed are
    ``converters`` as a whole (their index no longer names the same entry)."""
    if len(old.converters) != len(new.converters):
        old = attrs.evolve(old, converters=())
        new = attrs.evolve(new, converters=())
        head = ["converters"]
    else:
        head = []
    before, after = _flat(old), _flat(new)
    return [key for key in before if before[key] != after[key]] + head


def _masked_proxy(proxy: str | None) -> str | None:
    if proxy is None:
        return None
    parts = urlsplit(proxy)
    if parts.password is None:
        return proxy
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _jsonable(value: object) -> Any:
    """``value`` with paths, enums, tuples and TOML dates made plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(Path(os.path.abspath(value)))
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return value


def _scrubbed(value: Any, secret: str | None) -> Any:
    if not secret:
        return value
    if isinstance(value, str):
        return value.replace(secret, logs.REDACTED)
    if isinstance(value, dict):
        return {k: _scrubbed(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, secret) for v in value]
    return value
