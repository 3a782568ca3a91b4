"""The conversion pipeline: watch folders, convert ready files, queue reports, file them away.

::

    Watcher (one per watch folder) --paths--> [one bounded channel] --> N converter workers
    worker, per file: stat -> read + sha256 -> already queued? -> convert (thread)
                      -> one store transaction: reports + source hash
                      -> post-action: move to done | delete | archive | keep
                      (or: error folder with <name>.error.txt)

Ordering is the safety argument. A file is moved or deleted only after the store has
committed its reports together with the file's content hash. A crash (or cancellation)
between the commit and the post-action leaves the file where it was; the next time it is
seen, its hash is found in the store, so it is filed away without being queued again. A
file that fails goes to the error folder with a sidecar that says why; nothing is ever
deleted unconverted.

Under load a worker takes the files already waiting in the channel along with the one
it receives (up to 16, and 4 MiB read at a time) and does each step once for all of them:
one thread hand-off to read, one look-up, one to convert, one store commit, one to file
them away. Each file still gets its own outcome; anything off the common path (a bad
file, a duplicate, a failing store) is handled file by file. A file that arrives alone
is handled alone, at once. A graceful stop finishes the files converted so far, not the
rest of the batch.

Several entries (:class:`FolderConfig`) may share a watch folder: one watcher serves them
all, and each file goes to the first entry (in configuration order) whose patterns match
its name.

Backpressure: the workers are fed by one bounded channel from every watcher. When the
workers are busy the channel fills, the watchers wait in ``send``, and files stay in their
watch folders. When the store fails (disk full, database locked) the worker holding the
file retries with backoff and the same thing happens.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import attrs
import trio

from pywats import postaction
from pywats.config import PostAction
from pywats.converters.base import (
    ConversionContext,
    Converter,
    Source,
    StationDefaults,
    name_of,
    patterns_of,
    run_converter,
)
from pywats.converters.registry import LoadedConverter
from pywats.errors import (
    ConversionError,
    MalformedInputError,
    NotFoundError,
    PywatsError,
    StoreError,
)
from pywats.report import wsjf
from pywats.report.validate import check as check_report
from pywats.store import EnqueueResult, NewReport, SourceFile, Store
from pywats.watcher import WatchConfig, Watcher, WatcherStatistics, is_temporary

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "FolderConfig",
    "FolderStatistics",
    "Pipeline",
    "PipelineStatistics",
    "PostAction",
]

log = logging.getLogger("pywats.pipeline")

T = TypeVar("T")

DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024
"""Files larger than this (50 MiB) go to the error folder unread."""


def _absolute(value: str | os.PathLike[str]) -> Path:
    # Normalised but not resolved: the paths in logs and sidecars are the ones configured.
    return Path(os.path.abspath(value))


def _to_patterns(value: str | Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _to_post_action(value: str | PostAction) -> PostAction:
    try:
        return PostAction(value)
    except ValueError:
        words = ", ".join(a.value for a in PostAction)
        raise ValueError(f"post_action must be one of {words}; got {value!r}") from None


def _check_converter(_inst: object, _attr: object, value: Any) -> None:
    if isinstance(value, LoadedConverter):
        raise TypeError(
            "converter must be the converter instance: pass loaded.converter, and "
            "loaded.arguments as arguments"
        )
    if not isinstance(value, Converter):
        raise TypeError(f"converter must be a converter instance, got {type(value).__name__}")


def _check_name(_inst: object, _attr: object, value: str) -> None:
    if not value or value != value.strip():
        raise ValueError(f"a folder needs a name without surrounding blanks, got {value!r}")


def _inside(folder: Path, root: Path) -> tuple[str, ...] | None:
    """The parts of ``folder`` below ``root`` (symlinks resolved), or None if not under it."""
    resolved, base = Path(os.path.realpath(folder)), Path(os.path.realpath(root))
    if resolved == base:
        return ()
    if base not in resolved.parents:
        return None
    return resolved.relative_to(base).parts


def _watched_by(folder: Path, watch: Path, recursive: bool) -> bool:
    """Whether a watcher on ``watch`` would take files put into ``folder``."""
    parts = _inside(folder, watch)
    if parts is None:
        return False
    if not parts:
        return True
    # The watcher skips subfolders with temporary names (.done, ~old) at any depth.
    return recursive and not any(is_temporary(part) for part in parts)


@attrs.frozen(kw_only=True)
class FolderConfig:
    """One watch folder entry: what to watch, which converter reads it, where files go.

    ``done_dir`` and ``error_dir`` are required here (the config layer picks defaults in
    the state directory). Neither may be the watch folder itself, nor a folder a recursive
    watch would descend into (a subfolder whose path below the watch folder has a hidden
    or temporary name, such as ``in/.done``, is not descended into and is allowed);
    ``done_dir`` is only checked for ``move`` and ``archive``, which use it.

    Entries may share a watch folder if they agree on ``recursive``, ``settle_s``,
    ``rescan_s`` and ``use_inotify`` (checked by :class:`Pipeline`).

    Raises ValueError (or TypeError) naming the problem when a value does not fit.
    """

    name: str = attrs.field(validator=_check_name)
    """Label of the folder in logs, statistics and sidecars."""
    converter: Converter = attrs.field(validator=_check_converter)
    """The converter instance that reads this folder's files."""
    arguments: Any = attrs.field(factory=dict)
    """The converter's structured arguments, handed over in the ConversionContext."""
    watch: Path = attrs.field(converter=_absolute)
    """The watch folder (created at start if missing)."""
    patterns: tuple[str, ...] = attrs.field(
        default=attrs.Factory(lambda self: tuple(patterns_of(self.converter)), takes_self=True),
        converter=_to_patterns,
    )
    """File-name globs to take (default: the converter's)."""
    recursive: bool = False
    """Watch subfolders too (their structure is kept under done_dir and error_dir)."""
    post_action: PostAction = attrs.field(default=PostAction.MOVE, converter=_to_post_action)
    """What to do with a file once its reports are queued."""
    done_dir: Path = attrs.field(converter=_absolute)
    """Where ``move`` and ``archive`` put converted files."""
    error_dir: Path = attrs.field(converter=_absolute)
    """Where files that cannot be converted go, each with ``<name>.error.txt``."""
    settle_s: float = attrs.field(default=2.0, validator=attrs.validators.ge(0))
    """See :attr:`pywats.watcher.WatchConfig.settle_s`."""
    rescan_s: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    """See :attr:`pywats.watcher.WatchConfig.rescan_s`."""
    use_inotify: bool = True
    """See :attr:`pywats.watcher.WatchConfig.use_inotify`."""
    max_file_bytes: int = attrs.field(
        default=DEFAULT_MAX_FILE_BYTES, validator=attrs.validators.gt(0)
    )
    """Larger files go to the error folder unread."""

    def __attrs_post_init__(self) -> None:
        # Builds (and so checks) the patterns the watcher will use.
        self.watch_config()
        for attribute, folder in self.filing_dirs():
            if _watched_by(folder, self.watch, self.recursive):
                raise ValueError(_watched_message(self.name, attribute, folder, self))

    def filing_dirs(self) -> list[tuple[str, Path]]:
        """The folders files are filed into, by attribute name (done_dir only if used)."""
        used = self.post_action in (PostAction.MOVE, PostAction.ARCHIVE)
        if used and _inside(self.done_dir, self.error_dir) == ():
            raise ValueError(
                f"folder {self.name!r}: done_dir and error_dir are the same folder "
                f"({self.done_dir}); converted and rejected files would be mixed"
            )
        return [("done_dir", self.done_dir)] * used + [("error_dir", self.error_dir)]

    def watch_config(self) -> WatchConfig:
        """The watcher's configuration for this folder."""
        return WatchConfig(
            self.watch,
            patterns=self.patterns,
            recursive=self.recursive,
            rescan_s=self.rescan_s,
            settle_s=self.settle_s,
            use_inotify=self.use_inotify,
        )


def _watched_message(name: str, attribute: str, folder: Path, by: FolderConfig) -> str:
    if _inside(folder, by.watch) == ():
        return (
            f"folder {name!r}: {attribute} {folder} is the watch folder of {by.name!r}; "
            "its files would be converted again"
        )
    return (
        f"folder {name!r}: {attribute} {folder} lies inside {by.watch}, which {by.name!r} "
        "watches recursively, so its files would be converted again; put it outside, or "
        f"give it a name starting with '.' (such as {by.watch / ('.' + folder.name)})"
    )


_SHARED_WATCH_SETTINGS = ("recursive", "settle_s", "rescan_s", "use_inotify")


def _watch_groups(folders: Sequence[FolderConfig]) -> list[list[FolderConfig]]:
    """The folders grouped by watch folder (symlinks resolved), in config order."""
    groups: dict[str, list[FolderConfig]] = {}
    for folder in folders:
        groups.setdefault(os.path.realpath(folder.watch), []).append(folder)
    return list(groups.values())


def _check_folders(folders: Sequence[FolderConfig]) -> list[list[FolderConfig]]:
    """Refuse folder sets that would take one file twice or take filed files again.

    Entries may share a watch folder (one watcher serves them; each file goes to the
    first entry whose patterns match) if they agree on how it is watched. Returns the
    entries grouped by watch folder.
    """
    names = [f.name for f in folders]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"two watch folders are named {name!r}; names must be unique")
    groups = _watch_groups(folders)
    for group in groups:
        first = group[0]
        for other in group[1:]:
            for setting in _SHARED_WATCH_SETTINGS:
                if getattr(other, setting) != getattr(first, setting):
                    raise ValueError(
                        f"folders {first.name!r} and {other.name!r} watch the same folder "
                        f"{first.watch} with different {setting} ({getattr(first, setting)!r} "
                        f"and {getattr(other, setting)!r}); one watcher serves both, so give "
                        "them the same"
                    )
    for group in groups:
        for other_group in groups:
            if other_group is group:
                continue
            folder, other = group[0], other_group[0]
            if _watched_by(folder.watch, other.watch, other.recursive):
                raise ValueError(
                    f"folder {folder.name!r} watches {folder.watch}, which {other.name!r} "
                    f"already watches recursively ({other.watch})"
                )
    for folder in folders:
        for group in groups:
            other = group[0]
            for attribute, target in folder.filing_dirs():
                if _watched_by(target, other.watch, other.recursive):
                    raise ValueError(_watched_message(folder.name, attribute, target, other))
    return groups


@attrs.frozen
class FolderStatistics:
    """A snapshot of one watch folder's counters."""

    name: str
    files_converted: int
    """Files whose reports were queued (and then filed by the post-action)."""
    reports_queued: int
    """Reports queued from those files."""
    files_failed: int
    """Files that could not be converted (moved to the error folder, if possible)."""
    duplicates_skipped: int
    """Files whose content was already queued: filed without queueing again."""
    files_left: int
    """Files left where they were: changed during conversion, not movable, not queued
    because the pipeline stopped while the store was failing, or an unexpected error."""
    files_vanished: int
    """Files gone before they could be read (removed or renamed by someone else)."""
    in_hand: int
    """Files a worker is working on now."""
    watcher: WatcherStatistics
    """The folder watcher's own counters."""


@attrs.frozen
class PipelineStatistics:
    """A snapshot of the pipeline: per folder (by name), and the shared channel."""

    folders: dict[str, FolderStatistics]
    waiting: int
    """Ready files in the channel, waiting for a worker."""
    workers: int
    busy: int
    """Workers working on a file."""
    stopping: bool


@attrs.define(eq=False)
class _Folder:
    config: FolderConfig
    watcher: Watcher
    """The watcher of its watch folder (shared by every entry on that folder)."""
    wants: Callable[[str], bool]
    """Whether this entry's patterns take a file name."""
    converted: int = 0
    reports: int = 0
    failed: int = 0
    duplicates: int = 0
    left: int = 0
    vanished: int = 0
    in_hand: int = 0

    def statistics(self) -> FolderStatistics:
        return FolderStatistics(
            name=self.config.name,
            files_converted=self.converted,
            reports_queued=self.reports,
            files_failed=self.failed,
            duplicates_skipped=self.duplicates,
            files_left=self.left,
            files_vanished=self.vanished,
            in_hand=self.in_hand,
            watcher=self.watcher.statistics(),
        )

    def relative_folder(self, path: Path) -> Path:
        """The folder of ``path`` relative to the watch folder (``.`` unless recursive)."""
        return path.parent.relative_to(self.watcher.folder)


class _Rejected(Exception):
    """The file cannot become reports; the message and ``field`` go into the sidecar."""

    def __init__(self, reason: str, *, field: str = "") -> None:
        self.reason = reason
        self.field = field
        super().__init__(reason)


def _single(group: BaseException) -> BaseException:
    """The one exception inside nested single-member exception groups (else the group)."""
    while isinstance(group, BaseExceptionGroup) and len(group.exceptions) == 1:
        group = group.exceptions[0]
    return group


def _ids(ids: Sequence[str]) -> str:
    """Report ids for a log line: a file with hundreds of reports stays one short line."""
    if len(ids) <= 3:
        return ", ".join(ids) or "(no reports)"
    return f"{', '.join(ids[:3])} and {len(ids) - 3} more"


_BATCH_FILES = 16
"""At most this many waiting files are taken by one worker at a time."""

_BATCH_BYTES = 4 * 1024 * 1024
"""A batch reads files until it holds this many bytes (at least one file, whatever size)."""


@attrs.define(eq=False)
class _Converted:
    """A file whose reports are made and not yet queued."""

    folder: _Folder
    path: Path
    got: postaction.SourceData
    reports: list[NewReport]
    source: SourceFile


def _read_many(
    jobs: Sequence[tuple[Path, int]], budget: int, stopping: Callable[[], bool]
) -> list[postaction.SourceData | postaction.TooBig | OSError | None]:
    """Read files in order until ``budget`` bytes are held or ``stopping()`` (worker thread).

    Returns an outcome for a prefix of ``jobs`` (at least one): the data, or what stopped
    it (too big, unreadable, ``None`` for gone).
    """
    out: list[postaction.SourceData | postaction.TooBig | OSError | None] = []
    held = 0
    for path, max_bytes in jobs:
        if out and (held >= budget or stopping()):
            break
        try:
            got = postaction.read_source(path, max_bytes)
        except (postaction.TooBig, OSError) as exc:
            out.append(exc)
            continue
        if got is not None:
            held += got.size
        out.append(got)
    return out


def _convert_many(
    jobs: Sequence[tuple[Converter, ConversionContext, Path, bytes]],
    stopping: Callable[[], bool],
) -> list[list[NewReport] | _Rejected | Exception]:
    """Convert files in order (worker thread): reports, why refused, or a bug, for each.

    Stops early once ``stopping()`` (after at least one): a graceful stop finishes the
    file in hand, not the whole batch.
    """
    out: list[list[NewReport] | _Rejected | Exception] = []
    for converter, context, path, data in jobs:
        if out and stopping():
            break
        try:
            out.append(_convert(converter, context, path, data))
        except Exception as exc:  # _Rejected, or a bug kept for the one file's log line
            out.append(exc)
    return out


def _file_away_many(
    jobs: Sequence[tuple[PostAction, Path, Path, postaction.FileSig]],
) -> list[Path | Exception | None]:
    """Apply each post-action (worker thread): the new path, ``None``, or the failure.

    Moves share their folder fsyncs (:func:`postaction.move_files`).
    """
    out: list[Path | Exception | None] = [None] * len(jobs)
    moves: list[int] = []
    for index, (action, path, _, sig) in enumerate(jobs):
        if action is PostAction.DELETE:
            try:
                postaction.delete_file(path, expect=sig)
            except Exception as exc:  # SourceChanged, OSError, or a bug: reported per file
                out[index] = exc
        elif action is not PostAction.KEEP:
            moves.append(index)
    if moves:
        moved = postaction.move_files([(jobs[i][1], jobs[i][2], jobs[i][3]) for i in moves])
        for index, result in zip(moves, moved, strict=True):
            out[index] = result
    return out


def _local_now() -> datetime:
    return datetime.now().astimezone()


def _convert(
    converter: Converter, context: ConversionContext, path: Path, data: bytes
) -> list[NewReport]:
    """Run the converter and turn its reports into what the store keeps (worker thread)."""
    name = name_of(converter)
    try:
        reports = run_converter(converter, Source(path, data), context)
    except ConversionError as exc:
        raise _Rejected(exc.reason, field=exc.path) from exc
    out: list[NewReport] = []
    many = len(reports) > 1
    for index, report in enumerate(reports):
        # A plugin may skip validate(); the server would refuse the report for good, so
        # refuse it here, where the station engineer sees the file and the field.
        try:
            errors = check_report(report)
        except Exception as exc:
            # Fields of the wrong type (attrs does not check types): a converter bug.
            raise _Rejected(
                f"the converter made a report that cannot be checked: {type(exc).__name__}: {exc}"
            ) from exc
        if errors:
            first = errors[0]
            where = f"[{index}].{first.path}".rstrip(".") if many else first.path
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise _Rejected(f"the report breaks a WSJF rule: {first.message}{more}", field=where)
        try:
            body = wsjf.dumps(report)
        except MalformedInputError as exc:
            raise _Rejected(str(exc)) from exc
        except Exception as exc:
            raise _Rejected(
                f"the converter made a report that cannot be written as WSJF: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        out.append(
            NewReport(
                id=report.id,
                body=body,
                pn=report.pn,
                sn=report.sn,
                result=str(report.result),
                start=report.start,
                converter=name,
            )
        )
    seen: set[str] = set()
    for index, new in enumerate(out):
        if new.id in seen:
            raise _Rejected(
                f"report id {new.id} appears twice in this file",
                field=f"[{index}].id" if many else "id",
            )
        seen.add(new.id)
    return out


def _sidecar_text(
    *,
    folder: FolderConfig,
    source: Path,
    size: int | None,
    reason: str,
    field: str,
    when: datetime,
) -> str:
    converter = folder.converter
    indented_reason = "\n           ".join(reason.splitlines() or [""])
    lines = [
        "pywats could not convert this file; it was moved here unchanged.",
        "",
        f"file:      {source}",
        f"size:      {'unknown' if size is None else f'{size} bytes'}",
        f"folder:    {folder.name} (watching {folder.watch})",
        f"converter: {name_of(converter)} {converter.version}",
        f"time:      {when.isoformat(timespec='seconds')}",
        f"reason:    {indented_reason}",
        f"field:     {field or '-'}",
        "",
        f"To try again, remove the cause and move the file back into {source.parent}.",
        "",
    ]
    return "\n".join(lines)


class _GaveUp:
    """Marker: a store call was abandoned because the pipeline is stopping."""


_GAVE_UP = _GaveUp()


class Pipeline:
    """Watches folders, converts their ready files and queues the reports.

    Start it with ``await nursery.start(pipeline.run)``; it is started when every watcher
    is watching. Stop it gracefully with :meth:`begin_shutdown` (watchers stop at once,
    each worker finishes the file in hand, then :meth:`run` returns), or by cancelling.
    A Pipeline runs once.

    Error handling:
        :meth:`run` raises :class:`~pywats.errors.PywatsError` before ``started()`` if a
        watch, done or error folder cannot be created or used. Per file, nothing raises:
        bad files go to the error folder, file-system trouble is logged and the file left
        where it is, and store failures are retried with backoff (the file stays in its
        folder meanwhile) until they succeed or the pipeline stops.

    Cancellation:
        Never loses a file. Conversion threads are abandoned on cancel (converters are
        pure); file moves and store commits either happen completely or not at all, and a
        file is only filed away after its reports are committed. A commit that landed
        just before a cancellation is recognised by the file's hash next time.

    Resource handling:
        Everything (watchers, workers) runs in a nursery inside :meth:`run`.
    """

    def __init__(
        self,
        store: Store,
        folders: Sequence[FolderConfig],
        *,
        station: StationDefaults,
        workers: int = 4,
        channel_size: int = 8,
        wall_clock: Callable[[], datetime] = _local_now,
        store_retry_s: tuple[float, float] = (1.0, 30.0),
    ) -> None:
        """Set up (nothing runs until :meth:`run`).

        Args:
            store: the queue the reports go to.
            folders: the watch folders; names unique, no two taking the same files, and
                no done or error folder inside another folder's watch.
            station: header defaults for converters.
            workers: how many files are converted at once (each in a worker thread).
            channel_size: how many ready files wait for a worker before watchers wait.
            wall_clock: the local time, aware (archive dates, sidecar times).
            store_retry_s: first and longest delay between attempts when the store fails.

        Raises:
            ValueError: the folder set does not fit together (the message says why).
        """
        if workers < 1:
            raise ValueError(f"workers must be 1 or more, got {workers}")
        if channel_size < 0:
            raise ValueError(f"channel_size must be 0 or more, got {channel_size}")
        groups = _check_folders(folders)
        self._store = store
        self._station = station
        self._workers = workers
        self._wall_clock = wall_clock
        self._retry_first_s, self._retry_max_s = store_retry_s
        self._send, self._receive = trio.open_memory_channel[Path](channel_size)
        # One watcher per watch folder, taking the union of its entries' patterns.
        self._watchers: list[tuple[Watcher, list[_Folder]]] = []
        for group in groups:
            patterns = tuple(dict.fromkeys(p for f in group for p in f.patterns))
            config = attrs.evolve(group[0].watch_config(), patterns=patterns)
            watcher = Watcher(config, self._send)
            entries = [_Folder(f, watcher, f.watch_config().wants) for f in group]
            self._watchers.append((watcher, entries))
        by_name = {f.config.name: f for _, entries in self._watchers for f in entries}
        self._folders = [by_name[f.name] for f in folders]  # in config order
        # Most specific first, so a path goes to the deepest watch folder that holds it.
        self._by_depth = sorted(self._watchers, key=lambda w: len(w[0].folder.parts))
        self._by_depth.reverse()
        self._watch_scope = trio.CancelScope()
        self._stop = trio.Event()
        self._stopping = False
        self._started = False
        self._busy = 0

    # -- public -------------------------------------------------------------------------

    @staticmethod
    def check_folders(folders: Sequence[FolderConfig]) -> None:
        """Check that ``folders`` fit together, as the constructor does (for config checks).

        Names must be unique; entries sharing a watch folder must agree on how it is
        watched; no watch folder may lie in another's recursive watch; no done or error
        folder may be watched. Raises ValueError saying which entries and folders clash.
        """
        _check_folders(folders)

    def statistics(self) -> PipelineStatistics:
        """Counters per folder and of the shared channel, as a frozen snapshot."""
        return PipelineStatistics(
            folders={f.config.name: f.statistics() for f in self._folders},
            waiting=self._send.statistics().current_buffer_used,
            workers=self._workers,
            busy=self._busy,
            stopping=self._stopping,
        )

    def begin_shutdown(self) -> None:
        """Stop gracefully: watchers stop now, workers finish the file in hand.

        Files waiting in the channel are left in their folders. :meth:`run` returns once
        every worker is done. A worker waiting to retry a failing store gives up (the file
        stays). Safe to call more than once, and before :meth:`run`.
        """
        if self._stopping:
            return
        self._stopping = True
        self._stop.set()
        self._watch_scope.cancel()
        in_hand = sum(f.in_hand for f in self._folders)
        log.info("stopping: watchers stop now; %d file(s) in hand are finished first", in_hand)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run watchers and workers until :meth:`begin_shutdown` or cancellation."""
        if self._started:
            raise RuntimeError("a Pipeline runs once; make a new one")
        self._started = True
        await self._prepare_folders()
        started = False
        try:
            async with trio.open_nursery() as nursery:
                # Workers first: files the watchers find at start have somewhere to go.
                with self._receive:
                    for n in range(self._workers):
                        nursery.start_soon(
                            self._worker, self._receive.clone(), name=f"pipeline worker {n}"
                        )
                await nursery.start(self._run_watchers)
                log.info(
                    "pipeline running: %d folder(s), %d worker(s)",
                    len(self._folders),
                    self._workers,
                )
                started = True
                task_status.started()
        except BaseExceptionGroup as group:
            # A watch folder that cannot be used is a start-up error like any other: hand
            # it over as itself, not wrapped in the nurseries it was raised through.
            leaf = _single(group)
            if not started and isinstance(leaf, PywatsError):
                raise leaf from leaf.__cause__
            raise
        log.info("pipeline stopped")

    # -- tasks ----------------------------------------------------------------------------

    async def _prepare_folders(self) -> None:
        # Done and error folders are made at start, so a typo in the config stops the
        # service at once rather than at the first file.
        needed = [d for folder in self._folders for _, d in folder.config.filing_dirs()]
        for directory in needed:
            try:
                await trio.to_thread.run_sync(postaction.ensure_dir, directory)
            except OSError as exc:
                raise PywatsError(f"cannot use folder {directory}: {exc.strerror or exc}") from exc

    async def _run_watchers(self, *, task_status: trio.TaskStatus[None]) -> None:
        started = False
        # Closing the send side when the watchers are gone ends the workers' loops once
        # they have drained the channel.
        with self._send:
            with self._watch_scope:
                async with trio.open_nursery() as nursery:
                    for watcher, entries in self._watchers:
                        label = ", ".join(f.config.name for f in entries)
                        await nursery.start(watcher.run, name=f"watcher ({label})")
                    started = True
                    task_status.started()
            if not started:
                task_status.started()  # shut down before every watcher was up

    async def _worker(self, receive: trio.MemoryReceiveChannel[Path]) -> None:
        with receive:
            async for first in receive:
                batch = [first]
                # Files already waiting are taken along: each step then costs one thread
                # hand-off and one commit for all of them. A file that arrives alone is
                # handled alone, at once.
                while len(batch) < _BATCH_FILES:
                    try:
                        batch.append(receive.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                items = [(self._folder_of(path), path) for path in batch]
                try:
                    if self._stopping:
                        self._leave(items)  # not in hand yet
                        continue
                    for folder, _ in items:
                        folder.in_hand += 1
                    self._busy += 1
                    try:
                        await self._process_batch(items)
                    finally:
                        for folder, _ in items:
                            folder.in_hand -= 1
                        self._busy -= 1
                finally:
                    # Every path sent is released once, whatever happened to it.
                    for folder, path in items:
                        folder.watcher.release(path)

    def _folder_of(self, path: Path) -> _Folder:
        """The entry a sent path belongs to: its watch folder's first matching entry."""
        for watcher, entries in self._by_depth:
            root = watcher.folder
            if path.parent == root or (watcher.config.recursive and root in path.parents):
                for entry in entries:
                    if entry.wants(path.name):
                        return entry
                return entries[0]  # pragma: no cover - the watcher sends only wanted names
        raise AssertionError(f"{path} is in no watch folder")  # pragma: no cover

    # -- one file -------------------------------------------------------------------------

    async def _process_batch(self, items: list[tuple[_Folder, Path]]) -> None:
        """Handle files a worker took together; the result for each is as if alone.

        The common path does each step once for the batch: read, look up, convert (one
        thread hand-off each), queue (one commit) and file away (one hand-off). Every
        other outcome (too big, unreadable, vanished, duplicate, rejected, a failing
        store) goes through the one-file handlers, file by file.
        """
        while items:
            if self._stopping:
                self._leave(items)
                return
            jobs = [(path, folder.config.max_file_bytes) for folder, path in items]
            reads = await trio.to_thread.run_sync(
                _read_many, jobs, _BATCH_BYTES, self._is_stopping, abandon_on_cancel=True
            )
            taken, items = items[: len(reads)], items[len(reads) :]
            ready: list[tuple[_Folder, Path, postaction.SourceData]] = []
            for (folder, path), got in zip(taken, reads, strict=True):
                if isinstance(got, postaction.SourceData):
                    ready.append((folder, path, got))
                else:
                    await self._guarded(folder, path, self._unread(folder, path, got))
            if ready:
                await self._look_up_and_convert(ready)

    async def _look_up_and_convert(
        self, ready: list[tuple[_Folder, Path, postaction.SourceData]]
    ) -> None:
        try:
            known = await self._store.lookup_sources([got.sha256 for _, _, got in ready])
        except StoreError:
            # The one-file path retries with backoff and says which file waits.
            for folder, path, got in ready:
                await self._guarded(folder, path, self._after_read(folder, path, got))
            return
        fresh: list[tuple[_Folder, Path, postaction.SourceData]] = []
        for folder, path, got in ready:
            ids = known.get(got.sha256)
            if ids is None:
                fresh.append((folder, path, got))
            else:
                await self._guarded(folder, path, self._duplicate(folder, path, ids, got))
        if not fresh:
            return
        jobs = [
            (folder.config.converter, self._context(folder), path, got.data)
            for folder, path, got in fresh
        ]
        outcomes = await trio.to_thread.run_sync(
            _convert_many, jobs, self._is_stopping, abandon_on_cancel=True
        )
        self._leave([(folder, path) for folder, path, _ in fresh[len(outcomes) :]])
        converted: list[_Converted] = []
        for (folder, path, got), outcome in zip(fresh, outcomes, strict=False):
            if isinstance(outcome, _Rejected):
                reject = self._reject(folder, path, outcome, size=got.size, expect=got.sig)
                await self._guarded(folder, path, reject)
            elif isinstance(outcome, BaseException):
                self._unexpected(folder, path, outcome)
            else:
                source = SourceFile(hash=got.sha256, path=str(path), size=got.size, mtime=got.mtime)
                converted.append(_Converted(folder, path, got, outcome, source))
        if converted:
            await self._queue_and_file_many(converted)

    async def _queue_and_file_many(self, converted: list[_Converted]) -> None:
        try:
            results = await self._store.enqueue_batch([(c.reports, c.source) for c in converted])
        except StoreError:
            # A report id clash fails the whole batch; so does a failing database. The
            # one-file path tells them apart, file by file.
            for c in converted:
                await self._guarded(c.folder, c.path, self._queue_and_file(c))
            return
        queued: list[tuple[_Converted, tuple[str, ...]]] = []
        for c, result in zip(converted, results, strict=True):
            if result.duplicate:
                # The same content in two files of this batch, or queued meanwhile.
                await self._guarded(
                    c.folder, c.path, self._duplicate(c.folder, c.path, result.ids, c.got)
                )
            else:
                c.folder.converted += 1
                c.folder.reports += len(result.ids)
                queued.append((c, result.ids))
        if not queued:
            return
        dones = await self._file_away([(c.folder, c.path, c.got.sig) for c, _ in queued])
        for (c, ids), done in zip(queued, dones, strict=True):
            self._log_converted(c.folder, c.path, ids, done)

    def _is_stopping(self) -> bool:
        # Read from worker threads: a plain attribute read, set once by begin_shutdown.
        return self._stopping

    def _leave(self, items: Sequence[tuple[_Folder, Path]]) -> None:
        """Files of a batch not started when the stop came: they stay for the next start."""
        for folder, path in items:
            log.debug("%s: leaving %s for the next start", folder.config.name, path)

    def _context(self, folder: _Folder) -> ConversionContext:
        return ConversionContext(self._station, folder.config.arguments)

    async def _guarded(self, folder: _Folder, path: Path, work: Awaitable[None]) -> None:
        """``await work`` for one file; a bug there leaves that file, not the others."""
        try:
            await work
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise  # the store was closed under us: a shutdown-order bug
        except Exception as exc:
            self._unexpected(folder, path, exc)

    def _unexpected(self, folder: _Folder, path: Path, exc: BaseException) -> None:
        # A bug, not a bad file: the file is left where it is (it is looked at again
        # after a restart), and the other files go on.
        folder.left += 1
        log.error(
            "%s: unexpected error while handling %s; it stays where it is",
            folder.config.name,
            path,
            exc_info=exc,
        )

    async def _unread(
        self, folder: _Folder, path: Path, got: postaction.TooBig | OSError | None
    ) -> None:
        """A file that could not be read: too big or unreadable (error folder), or gone."""
        cfg = folder.config
        if isinstance(got, postaction.TooBig):
            reason = (
                f"the file has {got.size} bytes, more than max_file_bytes ({cfg.max_file_bytes})"
            )
            await self._reject(folder, path, _Rejected(reason), size=got.size, expect=got.sig)
        elif isinstance(got, OSError):
            reason = f"cannot read the file: {got.strerror or got}"
            await self._reject(folder, path, _Rejected(reason), size=None, expect=None)
        else:
            folder.vanished += 1
            log.info("%s: %s vanished before it could be read", cfg.name, path)

    async def _after_read(self, folder: _Folder, path: Path, got: postaction.SourceData) -> None:
        """One file from its look-up on, retrying while the store fails."""
        known = await self._store_call(
            folder,
            path,
            f"cannot look up {path} in the queue",
            functools.partial(self._store.lookup_source, got.sha256),
        )
        if isinstance(known, _GaveUp):
            return
        if known is not None:
            await self._duplicate(folder, path, known, got)
            return
        [outcome] = await trio.to_thread.run_sync(
            _convert_many,
            [(folder.config.converter, self._context(folder), path, got.data)],
            self._is_stopping,
            abandon_on_cancel=True,
        )
        if isinstance(outcome, _Rejected):
            await self._reject(folder, path, outcome, size=got.size, expect=got.sig)
            return
        if isinstance(outcome, BaseException):
            raise outcome
        source = SourceFile(hash=got.sha256, path=str(path), size=got.size, mtime=got.mtime)
        await self._queue_and_file(_Converted(folder, path, got, outcome, source))

    async def _queue_and_file(self, c: _Converted) -> None:
        """One converted file from its commit on, retrying while the store fails."""
        folder, path, got = c.folder, c.path, c.got
        try:
            result = await self._enqueue(folder, path, c.reports, c.source)
        except _Rejected as exc:
            await self._reject(folder, path, exc, size=got.size, expect=got.sig)
            return
        if result is None:
            return
        if result.duplicate:
            # Another worker queued the same content between our look-up and commit.
            await self._duplicate(folder, path, result.ids, got)
            return
        folder.converted += 1
        folder.reports += len(result.ids)
        done = await self._post_action(folder, path, got.sig)
        self._log_converted(folder, path, result.ids, done)

    def _log_converted(self, folder: _Folder, path: Path, ids: Sequence[str], done: str) -> None:
        log.info(
            "%s: converted %s into %d report(s) (%s); %s",
            folder.config.name,
            path,
            len(ids),
            _ids(ids),
            done,
        )

    async def _duplicate(
        self, folder: _Folder, path: Path, ids: tuple[str, ...], got: postaction.SourceData
    ) -> None:
        folder.duplicates += 1
        done = await self._post_action(folder, path, got.sig)
        log.info(
            "%s: %s was already queued as %s; not queued again; %s",
            folder.config.name,
            path,
            _ids(ids),
            done,
        )

    async def _store_call(
        self, folder: _Folder, path: Path, what: str, fn: Callable[[], Awaitable[T]]
    ) -> T | _GaveUp:
        """``await fn()``, retried with backoff while the store fails.

        Returns ``_GAVE_UP`` when the pipeline stops while waiting to retry.
        """
        delay = self._retry_first_s
        while True:
            try:
                return await fn()
            except StoreError as exc:
                log.error(  # noqa: TRY400 - a known failure, the message says it all
                    "%s: %s: %s; trying again in %g s (the file stays where it is)",
                    folder.config.name,
                    what,
                    exc,
                    delay,
                )
            with trio.move_on_after(delay):
                await self._stop.wait()
            if self._stopping:
                folder.left += 1
                log.warning(
                    "%s: stopping; %s was not queued and stays where it is",
                    folder.config.name,
                    path,
                )
                return _GAVE_UP
            delay = min(delay * 2, self._retry_max_s)

    async def _enqueue(
        self, folder: _Folder, path: Path, reports: list[NewReport], source: SourceFile
    ) -> EnqueueResult | None:
        async def attempt() -> EnqueueResult:
            try:
                [result] = await self._store.enqueue_batch([(reports, source)])
            except StoreError:
                taken = await self._queued_ids([r.id for r in reports])
                if taken:
                    # Not the database failing: the file's report ids are already used
                    # by reports from another file. Retrying cannot help.
                    raise _Rejected(
                        f"report id {taken[0]} is already queued (from another file); "
                        "every report needs its own id",
                        field="id",
                    ) from None
                raise
            return result

        result = await self._store_call(
            folder, path, f"cannot queue the reports of {path}", attempt
        )
        return None if isinstance(result, _GaveUp) else result

    async def _queued_ids(self, ids: list[str]) -> list[str]:
        taken: list[str] = []
        for report_id in ids:
            try:
                await self._store.get(report_id)
            except NotFoundError:
                continue
            except StoreError:
                return []  # cannot tell: treat the failure as the store's
            taken.append(report_id)
        return taken

    async def _post_action(self, folder: _Folder, path: Path, sig: postaction.FileSig) -> str:
        """File ``path`` away after its reports are committed; say what happened."""
        [done] = await self._file_away([(folder, path, sig)])
        return done

    async def _file_away(
        self, files: Sequence[tuple[_Folder, Path, postaction.FileSig]]
    ) -> list[str]:
        """File each committed source away (one thread hand-off); say what happened to each."""
        today = self._wall_clock().strftime("%Y-%m-%d")
        jobs: list[tuple[PostAction, Path, Path, postaction.FileSig]] = []
        for folder, path, sig in files:
            cfg = folder.config
            directory = cfg.done_dir
            if cfg.post_action is PostAction.ARCHIVE:
                directory = directory / today
            jobs.append((cfg.post_action, path, directory / folder.relative_folder(path), sig))
        if all(action is PostAction.KEEP for action, *_ in jobs):
            outcomes: list[Path | Exception | None] = [None] * len(jobs)
        else:
            # Not abandoned on cancel: a move finishes (or never starts) before we return.
            outcomes = await trio.to_thread.run_sync(_file_away_many, jobs)
        return [
            self._filed(folder, path, outcome)
            for (folder, path, _), outcome in zip(files, outcomes, strict=True)
        ]

    def _filed(self, folder: _Folder, path: Path, outcome: Path | Exception | None) -> str:
        cfg = folder.config
        action = cfg.post_action
        if isinstance(outcome, postaction.SourceChanged):
            if outcome.gone:
                return "it was gone already (removed by someone else)"
            folder.left += 1
            return "left in place: it changed after it was read, so it is looked at again"
        if isinstance(outcome, OSError):
            log.error(
                "%s: the reports of %s are queued, but the file cannot be %s: %s; it stays "
                "where it is and is recognised as already queued next time",
                cfg.name,
                path,
                "deleted" if action is PostAction.DELETE else f"moved to {cfg.done_dir}",
                outcome,
            )
            folder.left += 1
            return "left in place (see the error above)"
        if isinstance(outcome, Exception):
            self._unexpected(folder, path, outcome)
            return "left in place (see the error above)"
        if action is PostAction.KEEP:
            return "kept in place"
        if action is PostAction.DELETE:
            return "deleted"
        return f"{'archived' if action is PostAction.ARCHIVE else 'moved'} to {outcome}"

    async def _reject(
        self,
        folder: _Folder,
        path: Path,
        problem: _Rejected,
        *,
        size: int | None,
        expect: postaction.FileSig | None,
    ) -> None:
        cfg = folder.config
        folder.failed += 1
        text = _sidecar_text(
            folder=cfg,
            source=path,
            size=size,
            reason=problem.reason,
            field=problem.field,
            when=self._wall_clock(),
        )
        directory = cfg.error_dir / folder.relative_folder(path)
        # Validation messages start with the field path already.
        where = f" at {problem.field}" if problem.field not in problem.reason else ""
        try:
            placed = await trio.to_thread.run_sync(
                functools.partial(postaction.reject_file, path, directory, text, expect=expect)
            )
        except postaction.SourceChanged as exc:
            log.warning(
                "%s: could not convert %s (%s%s), but %s",
                cfg.name,
                path,
                problem.reason,
                where,
                "it is gone now"
                if exc.gone
                else "it changed since it was read; it is looked at again",
            )
            return
        except OSError as exc:
            log.error(  # noqa: TRY400 - the OSError names the file and the cause
                "%s: could not convert %s (%s%s), and cannot move it to %s: %s; it stays "
                "where it is",
                cfg.name,
                path,
                problem.reason,
                where,
                cfg.error_dir,
                exc,
            )
            return
        log.warning(
            "%s: could not convert %s with %s: %s%s; moved to %s (see %s)",
            cfg.name,
            path,
            name_of(cfg.converter),
            problem.reason,
            where,
            placed.path,
            placed.sidecar.name if placed.sidecar else "",
        )
