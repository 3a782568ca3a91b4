"""Watch one folder for result files that are ready, and hand their paths to the pipeline.

A file is *ready* when

* its writer closed it (inotify ``IN_CLOSE_WRITE``) or it was renamed into the folder
  (``IN_MOVED_TO``), and its name matches the patterns and is not a temporary name
  (``.*``, ``*.tmp``, ``~*`` are always ignored); or
* it was present when the watcher started (with inotify on); or
* a rescan saw it with the same size and mtime for ``settle_s`` seconds (and, with
  ``settle_after_close``, a closed or renamed-in file too: for writers that close a file
  more than once). Rescans run every
  ``rescan_s`` seconds and at once after an inotify queue overflow. They are the only
  source of files when inotify is off (network shares, whose server-side changes send no
  events): events are hints, the periodic scan is the truth.

Ready paths go into a bounded :class:`trio.MemorySendChannel` owned by the caller. When
it is full the watcher waits (files stay where they are, and inotify events queue in the
kernel; if that queue overflows, the rescan that follows finds every file again).

A path is sent once and is then *in flight* until the pipeline calls
:meth:`Watcher.release` (after moving, deleting or keeping the file, or after a failure).
A released file that is still there with the size and mtime it had when it was sent
(post-action ``keep``) is remembered and not sent again; new content (another size or
mtime) is sent again. All bookkeeping is per file currently in the folder (plus those in
flight): entries of files that are gone are forgotten at release and at each rescan.

A watcher may be stopped (cancelled) and run again, with another ``accepts`` answer for
some names (the pipeline does this when a folder entry is switched off or on). The
bookkeeping carries over, so a path in flight across the restart is not sent twice; the
files a later run finds at its start settle like files a rescan finds.

Companions: a file may have companions, files or folders beside it that belong with
it (a Klippel header and its result folder), named by the ``companions`` callable the
watcher is given. They are the pipeline's to read and file with their file, never inputs
of their own: a companion (and, in a recursive watch, everything inside a companion
folder) is not sent, not settled and not descended into while the file it belongs with
is in its folder; every scan listing, event batch and settled file is checked against
the files beside it. Without ``recursive`` a folder is never an input anyway. (A file
inside a folder written and closed before the file that claims the folder appears is a
file like any other until then: give such a folder's contents names no entry takes.)

Directory listings and every ``stat`` (of scans, of inotify events and at release) run
in worker threads, so a hung network mount stalls this watcher only, not the service's
event loop.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import functools
import logging
import math
import os
import stat
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import NamedTuple

import attrs
import trio

from pywats import checks, defaults
from pywats.errors import PywatsError
from pywats.folderlock import FolderLock, lock_folder
from pywats.inotify import Event, Inotify, InotifyError, Mask

__all__ = [
    "TEMPORARY_PATTERNS",
    "WatchConfig",
    "Watcher",
    "WatcherStatistics",
    "is_temporary",
    "matches",
]

log = logging.getLogger("pywats.watcher")

TEMPORARY_PATTERNS = (".*", "*.tmp", "~*")
"""Names that are never ready: hidden files, ``*.tmp`` and Office-style ``~lock`` files.
Writers that write under such a name and rename into place are the safest kind."""


def _to_patterns(value: str | Iterable[str]) -> tuple[str, ...]:
    # A lone string is one pattern, not a sequence of one-character patterns.
    return (value,) if isinstance(value, str) else tuple(value)


def _check_patterns(_inst: object, _attr: object, value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError("patterns must name at least one glob (use '*' for every file)")
    if any(not isinstance(p, str) or not p or "/" in p for p in value):
        raise ValueError(f"patterns must be non-empty file-name globs without '/': {value!r}")


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether the file name ``name`` matches one of the globs ``patterns``."""
    # Case-insensitive like the converters' patterns: test equipment writes .XML and .xml.
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, p.lower()) for p in patterns)


def is_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary name that is never ready (see TEMPORARY_PATTERNS)."""
    return matches(name, TEMPORARY_PATTERNS)


@attrs.frozen
class WatchConfig:
    """What one watcher watches and how."""

    folder: Path = attrs.field(converter=Path)
    """The watch folder. Created (with parents) at start if it is missing."""

    patterns: tuple[str, ...] = attrs.field(
        default=("*",), converter=_to_patterns, validator=_check_patterns
    )
    """File-name globs (matched case-insensitively against the name only) a file must
    match. Temporary names (:data:`TEMPORARY_PATTERNS`) are ignored whatever these say."""

    recursive: bool = False
    """Also watch subfolders, including ones created later (one inotify watch each).
    Subfolders with temporary names (``.git``, ``~old``) and symlinked folders are skipped."""

    rescan_s: float = attrs.field(
        default=defaults.RESCAN_S, validator=checks.validator(checks.positive)
    )
    """Seconds between rescans of the whole folder."""

    settle_s: float = attrs.field(
        default=defaults.SETTLE_S, validator=checks.validator(checks.non_negative)
    )
    """A file a rescan finds (rather than an event) is ready once its size and mtime have
    not changed for this many seconds. Must be longer than the longest pause of a writer
    that keeps the file open under its final name."""

    settle_after_close: bool = False
    """Take a closed (or renamed-in) file only once it has not changed for ``settle_s``,
    as a rescan would, rather than at once. For testers that write a file in several
    sessions (open, append, close; again), whose first close is not the end; it costs
    ``settle_s`` of latency per file."""

    use_inotify: bool = True
    """Use inotify events. Set it to false for network shares (NFS, SMB), which report no
    changes made by other machines: the folder is then found by rescans alone, so a file
    is ready ``settle_s`` after the first rescan that sees it, and files present at start
    wait ``settle_s`` too (nothing says their writers are done)."""

    def wants(self, name: str) -> bool:
        """Whether a file called ``name`` may be ready: matches a pattern, not temporary."""
        return not is_temporary(name) and matches(name, self.patterns)


@attrs.frozen
class WatcherStatistics:
    """A snapshot of one watcher's counters and bookkeeping sizes."""

    files_sent: int
    """Paths sent into the channel since start (including one the watcher is waiting
    to send while the channel is full)."""
    rescans: int
    """Rescans of the whole folder since start (periodic and after overflows)."""
    overflows: int
    """inotify queue overflows seen (each was followed by a rescan)."""
    in_flight: int
    """Paths sent and not yet released (including one waiting to be sent)."""
    settling: int
    """Files a scan found, waiting for their size and mtime to settle."""
    remembered: int
    """Released files still in the folder unchanged, which are not sent again."""
    watches: int
    """inotify watches held (folders watched)."""


class _Sig(NamedTuple):
    """What "the same file content" means here: size and mtime."""

    size: int
    mtime_ns: int


@attrs.frozen
class _Scan:
    files: list[tuple[Path, _Sig]]
    dirs: list[Path]
    unreadable: int
    created: bool


def _stat(path: Path) -> _Sig | None:
    """The signature of a regular file, or None if it is gone or not a regular file."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return _Sig(st.st_size, st.st_mtime_ns)


def _stat_many(paths: list[Path]) -> list[_Sig | None]:
    """:func:`_stat` of each path, for one worker-thread hand-off."""
    return [_stat(p) for p in paths]


Companions = Callable[[Path], Collection[str]]
"""The names of a file's companions beside it (see the module docstring)."""


def _owned(
    entries: Iterable[os.DirEntry[str]], wants: Callable[[str], bool], companions: Companions
) -> frozenset[str]:
    """The names that are companions of the files among ``entries`` that ``wants`` takes."""
    claimed: set[str] = set()
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False) and wants(entry.name):
                claimed.update(companions(Path(entry.path)))
        except OSError:
            continue  # removed while we looked
        except Exception:  # a converter's bug must not stop the watch; the pipeline tells it
            log.debug("cannot name the companions of %s", entry.path, exc_info=True)
    return frozenset(claimed)


def _claimed_in(
    folder: Path, wants: Callable[[str], bool], companions: Companions
) -> frozenset[str]:
    """The names in ``folder`` that are companions of a file there that ``wants`` takes."""
    try:
        with os.scandir(folder) as entries:
            return _owned(list(entries), wants, companions)
    except OSError:
        return frozenset()


def _is_claimed(
    path: Path,
    root: Path,
    wants: Callable[[str], bool],
    companions: Companions,
    cache: dict[Path, frozenset[str]],
) -> bool:
    """Whether ``path``, or a folder it is in below ``root``, is a companion of a file."""
    current = path
    while current != root and root in current.parents:
        folder = current.parent
        claimed = cache.get(folder)
        if claimed is None:
            claimed = cache[folder] = _claimed_in(folder, wants, companions)
        if current.name in claimed:
            return True
        current = folder
    return False


def _stat_unclaimed(
    paths: list[Path],
    root: Path,
    wants: Callable[[str], bool],
    companions: Companions | None,
) -> list[_Sig | None]:
    """:func:`_stat` of each path, None for a companion (which is not an input)."""
    if companions is None:
        return _stat_many(paths)
    cache: dict[Path, frozenset[str]] = {}
    return [None if _is_claimed(p, root, wants, companions, cache) else _stat(p) for p in paths]


def _everything(name: str) -> bool:
    return True


def _prepare_folder(folder: Path) -> bool:
    """Create ``folder`` (and parents) if missing and check it can be listed.

    Returns whether it was created. Raises :class:`OSError` naming the folder otherwise.
    """
    created = False
    if not folder.is_dir():
        try:
            folder.mkdir(parents=True)
            created = True
        except FileExistsError:
            if not folder.is_dir():
                raise NotADirectoryError(
                    errno.ENOTDIR, "exists and is not a folder", str(folder)
                ) from None
            # Someone else created it between the check and mkdir: fine.
    # Opening the listing checks read and search permission without reading it all.
    with os.scandir(folder):
        pass
    return created


def _scan(
    root: Path,
    *,
    recursive: bool,
    wants: Callable[[str], bool],
    create: bool,
    companions: Companions | None = None,
) -> _Scan:
    """List the files under ``root`` that ``wants`` accepts, and its folders (root first).

    Runs in a worker thread. With ``create``, a missing ``root`` is created first. Errors
    on ``root`` itself propagate; entries and subfolders that vanish or cannot be read
    while we look are skipped (and counted). With ``companions``, the companions of the
    files in each folder are left out (and companion folders not descended into).
    """
    created = _prepare_folder(root) if create else False
    files: list[tuple[Path, _Sig]] = []
    dirs = [root]
    stack = [root]
    unreadable = 0
    while stack:
        folder = stack.pop()
        try:
            entries = os.scandir(folder)
        except OSError:
            if folder == root:
                raise
            unreadable += 1
            continue
        with entries:
            listed: Iterable[os.DirEntry[str]] = entries
            claimed: frozenset[str] = frozenset()
            if companions is not None:
                # Two passes: the files that claim companions may come after them.
                listed = list(entries)
                claimed = _owned(listed, wants, companions)
            for entry in listed:
                if entry.name in claimed:
                    continue  # the pipeline's, with the file it belongs with
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if recursive and not is_temporary(entry.name):
                            sub = Path(entry.path)
                            dirs.append(sub)
                            stack.append(sub)
                    elif entry.is_file(follow_symlinks=False) and wants(entry.name):
                        st = entry.stat(follow_symlinks=False)
                        files.append((Path(entry.path), _Sig(st.st_size, st.st_mtime_ns)))
                except OSError:
                    continue  # removed while we looked; a later scan or event will tell
    return _Scan(files=files, dirs=dirs, unreadable=unreadable, created=created)


def _oldest_first(files: list[tuple[Path, _Sig]]) -> list[tuple[Path, _Sig]]:
    # Results are converted in the order the equipment produced them, as far as we know.
    return sorted(files, key=lambda item: (item[1].mtime_ns, item[0]))


class _ChannelGone(Exception):
    """The channel we send into was closed; nobody will take files any more."""


@attrs.define(eq=False)
class Watcher:
    """Watches one folder and sends the paths of ready files into ``send_channel``.

    ``send_channel`` belongs to the caller: the watcher never closes it. Start the watcher
    with ``await nursery.start(watcher.run)``; it runs until cancelled. It may be run
    again once a run has ended (never two runs at once); see the module docstring.

    Error handling:
        :meth:`run` raises :class:`~pywats.errors.PywatsError` before ``started()`` when
        the folder cannot be created or read, or inotify cannot watch it (the message
        names the folder, and the sysctl to raise when an inotify limit is hit). Later
        problems (a subfolder that cannot be watched, a rescan that fails) are logged,
        and rescans keep going. If the receiving side of the channel is closed,
        :meth:`run` logs it and returns.

    Resource handling:
        The inotify instance lives inside :meth:`run` and is closed when it ends.
    """

    config: WatchConfig
    send_channel: trio.MemorySendChannel[Path]
    accepts: Callable[[str], bool] = attrs.field(default=_everything, kw_only=True)
    """A further say on file names, besides ``config.wants``, asked on the Trio thread
    whenever a file could be sent or settle, so its answer may change while the watcher
    runs: a refused file is left alone (and what was remembered of it is kept while it is
    there unchanged). Run the watcher again to take the files of names it accepts again."""
    companions: Companions | None = attrs.field(default=None, kw_only=True)
    """The names of the companions of a file (files or folders beside it that the pipeline
    reads and files with it), called in worker threads; those are never sent (see the
    module docstring). None: no file here has companions."""

    _root: Path = attrs.field(init=False)
    _ino: Inotify | None = attrs.field(init=False, default=None)
    _mask: Mask = attrs.field(init=False)
    _watches: dict[int, Path] = attrs.field(init=False, factory=dict)
    # path -> signature when sent; removed by release().
    _in_flight: dict[Path, _Sig] = attrs.field(init=False, factory=dict)
    # In-flight paths that got a ready event while in flight (rewritten and closed again).
    _dirty: set[Path] = attrs.field(init=False, factory=set)
    # Released files still present unchanged: path -> signature when sent.
    _handled: dict[Path, _Sig] = attrs.field(init=False, factory=dict)
    # Files found by a scan: path -> (signature, trio time it was first seen with it).
    _settling: dict[Path, tuple[_Sig, float]] = attrs.field(init=False, factory=dict)
    _settle_due: float = attrs.field(init=False, default=math.inf)
    _wait_scope: trio.CancelScope | None = attrs.field(init=False, default=None)
    _running: bool = attrs.field(init=False, default=False)
    _lock: FolderLock | None = attrs.field(init=False, default=None)
    _runs: int = attrs.field(init=False, default=0)
    _files_sent: int = attrs.field(init=False, default=0)
    _rescans: int = attrs.field(init=False, default=0)
    _overflows: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        self._root = self.config.folder.absolute()
        mask = Mask.CLOSE_WRITE | Mask.MOVED_TO | Mask.ONLYDIR | Mask.DONT_FOLLOW
        # EXCL_UNLINK: no events from files already unlinked but still open for writing.
        mask |= Mask.EXCL_UNLINK
        if self.config.recursive:
            # New subfolders arrive as CREATE|ISDIR. CREATE also fires for every file,
            # which is why it is only asked for in recursive mode.
            mask |= Mask.CREATE
        self._mask = mask

    @property
    def folder(self) -> Path:
        """The watch folder as an absolute path (paths sent are under it)."""
        return self._root

    def statistics(self) -> WatcherStatistics:
        """Counters and bookkeeping sizes, as a frozen snapshot."""
        return WatcherStatistics(
            files_sent=self._files_sent,
            rescans=self._rescans,
            overflows=self._overflows,
            in_flight=len(self._in_flight),
            settling=len(self._settling),
            remembered=len(self._handled),
            watches=len(self._watches),
        )

    def _wants(self, name: str) -> bool:
        return self.config.wants(name) and self.accepts(name)

    async def release(
        self, paths: Iterable[Path], *, retake: bool = False, gone: Collection[Path] = ()
    ) -> None:
        """Say the pipeline is done with ``paths`` (moved, deleted, kept or failed).

        Each file still there unchanged since it was sent is remembered and not sent
        again; one that changed is sent again once it is ready (at once if a close or
        rename was seen while it was in flight, else once it has settled). With
        ``retake``, the pipeline did not handle the files (it left them untouched): they
        are not remembered, and are taken again once they have settled, if wanted then.

        The files are looked at in one worker-thread hand-off, and stay in flight until
        then (so nothing sends them meanwhile). Paths in ``gone`` are ones the caller
        moved or deleted itself: they are not looked at, unless a close or rename of that
        name was seen while in flight (a new file by the same name). Paths not in flight
        are ignored. Call it
        from the Trio thread; every path sent must be released once, or its bookkeeping
        stays. If cancelled, the paths stay in flight.
        """
        mine = [path for path in dict.fromkeys(paths) if path in self._in_flight]
        if not mine:
            return
        look = [path for path in mine if path not in gone or path in self._dirty]
        found: dict[Path, _Sig | None] = {}
        if look:
            # Off the event loop: a stat on a hung network mount must stall this folder only.
            sigs = await trio.to_thread.run_sync(_stat_many, look, abandon_on_cancel=True)
            found = dict(zip(look, sigs, strict=True))
        current = [found.get(path) for path in mine]
        now = trio.current_time()
        settle_s = self.config.settle_s
        for path, sig in zip(mine, current, strict=True):
            sent = self._in_flight.pop(path, None)
            if sent is None:
                continue  # released by another call while we looked
            rewritten = path in self._dirty
            self._dirty.discard(path)
            self._handled.pop(path, None)
            if sig is None:
                continue  # gone: nothing to remember
            if sig == sent and not retake:
                self._handled[path] = sent
                continue
            if not self._wants(path.name):
                continue  # refused now; a later run or rescan finds it if that changes
            # A close/rename seen while in flight says the new content is complete; an
            # otherwise changed (or untouched, retaken) file settles like any a scan finds.
            since = now - settle_s if rewritten and sig != sent else now
            self._settling[path] = (sig, since)
            self._wake_by(since + settle_s)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Watch until cancelled; call ``task_status.started()`` once the watch is in place.

        With inotify, the folder is listed before ``started()`` and the files present
        then are sent right after it; a file written after ``started()`` is ready by its
        events (or by settling). Without inotify, the first listing runs after
        ``started()`` and its files settle like all others. Sends wait on a full channel
        after ``started()``, so a backlog never delays the service's start-up.
        """
        if self._running:
            raise RuntimeError("this Watcher is running already; a watcher runs once at a time")
        self._running = True
        try:
            with Inotify() if self.config.use_inotify else contextlib.nullcontext() as ino:
                self._ino = ino
                try:
                    await self._run(ino, task_status)
                finally:
                    self._ino = None
                    self._watches.clear()
                    self._wait_scope = None
        except _ChannelGone:
            log.info("the channel for %s was closed; the watcher stops", self._root)
        finally:
            self._running = False
            self._runs += 1

    async def _run(self, ino: Inotify | None, task_status: trio.TaskStatus[None]) -> None:
        # The folder's lock first: no file is listed or read unless this process is the
        # only one taking files from it. Held for the whole run, dropped at its end.
        try:
            created = await trio.to_thread.run_sync(
                _prepare_folder, self._root, abandon_on_cancel=True
            )
            # Not abandoned on cancel: an abandoned thread would take the lock after all
            # and hold it, unreleased, until the process ends. The folder has just been
            # listed, so its open here does not hang.
            self._lock = await trio.to_thread.run_sync(lock_folder, self._root)
        except OSError as exc:
            raise PywatsError(
                f"cannot use watch folder {self._root}: {exc.strerror or exc}"
            ) from exc
        try:
            await self._run_locked(ino, task_status, created=created)
        finally:
            lock, self._lock = self._lock, None
            if lock is not None:
                lock.release()

    async def _run_locked(
        self, ino: Inotify | None, task_status: trio.TaskStatus[None], *, created: bool
    ) -> None:
        cfg = self.config
        if created:
            log.info("created watch folder %s", self._root)
        scan: _Scan | None = None
        if ino is not None:
            # The watch exists before the listing, so a file closed in between is seen
            # by one or the other. InotifyError names the folder and any limit hit.
            self._watches[ino.add_watch(self._root, self._mask)] = self._root
            # Files listed now are taken as they are, so the listing must come before
            # started(): a file written after that is judged by its events, not taken
            # half-written. It also puts the watches on subfolders in place.
            scan = await self._scan_root()
        log.info(
            "watching %s for %s%s (%s, rescan every %g s)",
            self._root,
            ", ".join(cfg.patterns),
            " in subfolders too" if cfg.recursive else "",
            "inotify" if ino is not None else "no inotify: rescans only",
            cfg.rescan_s,
        )
        task_status.started()
        if scan is None:
            # Without inotify every file has to settle anyway, so this listing (maybe
            # long, on a slow share) comes after started() and does not delay start-up.
            scan = await self._scan_root()
        if scan is not None and self._runs:
            # A run after a restart: what is in flight or was handled is known, and what
            # came meanwhile (a name refused until now) may still be being written, so
            # its files settle like a rescan's.
            await self._take_scan(scan)
            scan = None
        files = _oldest_first(scan.files) if scan is not None else []
        del scan
        if ino is not None:
            # Present at start with inotify on: their writers' closes may have happened
            # while we were not watching, so they are taken as they are.
            for path, sig in files:
                await self._offer(path, sig)
        else:
            now = trio.current_time()
            for path, sig in files:
                self._observe(path, sig, now)
        del files
        await self._loop(ino)

    async def _loop(self, ino: Inotify | None) -> None:
        next_rescan = trio.current_time() + self.config.rescan_s
        while True:
            events: list[Event] = []
            with trio.CancelScope(deadline=min(next_rescan, self._settle_due)) as scope:
                self._wait_scope = scope
                try:
                    if ino is not None:
                        events = await ino.read()
                    else:
                        await trio.sleep_forever()
                finally:
                    self._wait_scope = None
            overflowed = await self._handle(events) if events else False
            now = trio.current_time()
            if overflowed or now >= next_rescan:
                await self._rescan()
                next_rescan = trio.current_time() + self.config.rescan_s
            elif now >= self._settle_due:
                await self._check_settling()

    async def _handle(self, events: list[Event]) -> bool:
        """Act on a batch of events; return whether the kernel queue overflowed."""
        overflowed = False
        ready: dict[Path, None] = {}  # in event order, each path once
        for event in events:
            if event.overflow:
                overflowed = True
                self._overflows += 1
                log.warning(
                    "inotify queue overflowed while watching %s (events were dropped); "
                    "rescanning now",
                    self._root,
                )
                continue
            if event.mask & Mask.IGNORED:
                self._forget_watch(event.wd)
                continue
            folder = self._watches.get(event.wd)
            if folder is None or not event.name:
                continue
            path = folder / event.name
            if event.mask & Mask.ISDIR:
                if (
                    self.config.recursive
                    and event.mask & (Mask.CREATE | Mask.MOVED_TO)
                    and not is_temporary(event.name)
                ):
                    await self._add_subtree(path)
                continue
            if not event.mask & (Mask.CLOSE_WRITE | Mask.MOVED_TO):
                continue
            if not self._wants(event.name):
                continue
            ready[path] = None
        if ready:
            # One hand-off for the batch: the loop never waits on the disk itself.
            paths = list(ready)
            sigs = await self._stat_unclaimed(paths)
            if self.config.settle_after_close:
                self._settle_closed(paths, sigs)
                return overflowed
            for path, sig in zip(paths, sigs, strict=True):
                if sig is not None:
                    await self._offer(path, sig)
        return overflowed

    def _settle_closed(self, paths: list[Path], sigs: list[_Sig | None]) -> None:
        """Closed files start (or restart: another session wrote more) settling, as if a
        rescan saw them now; the loop sends each once unchanged for ``settle_s``."""
        now = trio.current_time()
        for path, sig in zip(paths, sigs, strict=True):
            if sig is None:
                continue
            if path in self._in_flight:
                self._dirty.add(path)  # sent again after its release, as any change
            elif self._wanted_by_scan(path, sig):
                self._observe(path, sig, now)
        self._wake_by(self._settle_due)

    async def _stat_unclaimed(self, paths: list[Path]) -> list[_Sig | None]:
        """Each path's signature (one thread hand-off); None if gone or a companion."""
        look = functools.partial(
            _stat_unclaimed, paths, self._root, self.config.wants, self.companions
        )
        return await trio.to_thread.run_sync(look, abandon_on_cancel=True)

    async def _offer(self, path: Path, sig: _Sig) -> None:
        """Send a file that is ready now, unless it is in flight or was handled as is."""
        if path in self._in_flight:
            self._dirty.add(path)
            return
        if self._handled.get(path) == sig:
            return
        self._handled.pop(path, None)
        await self._send(path, sig)

    async def _send(self, path: Path, sig: _Sig) -> None:
        self._settling.pop(path, None)
        # Counted before the await: the receiver may act on the path before this task
        # runs again, and the statistics must already include it by then.
        self._in_flight[path] = sig
        self._files_sent += 1
        try:
            await self.send_channel.send(path)
        except BaseException as exc:
            # Not delivered (cancelled, or nobody receives): neither sent nor in flight.
            del self._in_flight[path]
            self._files_sent -= 1
            if isinstance(exc, trio.BrokenResourceError | trio.ClosedResourceError):
                raise _ChannelGone from exc
            raise

    def _observe(self, path: Path, sig: _Sig, now: float) -> bool:
        """Record a scan's sighting of ``path``; return whether it has now settled."""
        previous = self._settling.get(path)
        if previous is not None and previous[0] == sig:
            # The same expression as _settle_due and the check in _check_settling, so
            # float rounding cannot make the loop wake for a file it then finds not due.
            return now >= previous[1] + self.config.settle_s
        self._settling[path] = (sig, now)
        self._settle_due = min(self._settle_due, now + self.config.settle_s)
        return False

    def _wanted_by_scan(self, path: Path, sig: _Sig) -> bool:
        if path in self._in_flight:
            return False
        if not self._wants(path.name):
            return False  # refused since it was seen (the settling entry is dropped)
        if self._handled.get(path) == sig:
            return False
        self._handled.pop(path, None)
        return True

    def _recompute_settle_due(self) -> None:
        oldest = min((since for _, since in self._settling.values()), default=math.inf)
        self._settle_due = oldest + self.config.settle_s

    def _wake_by(self, when: float) -> None:
        """Make the loop look at settling files no later than ``when``."""
        self._settle_due = min(self._settle_due, when)
        if self._wait_scope is not None:
            self._wait_scope.deadline = min(self._wait_scope.deadline, when)

    async def _send_settled(self, ready: list[tuple[Path, _Sig]]) -> None:
        for path, sig in _oldest_first(ready):
            # The sends before this one may have taken long; the file may have been
            # released and remembered, or be in flight again, by now.
            if self._wanted_by_scan(path, sig):
                await self._send(path, sig)
            else:
                self._settling.pop(path, None)

    async def _scan_root(self) -> _Scan | None:
        """List the whole watch folder (re-creating it if needed) and sync the watches."""
        try:
            scan = await self._scan_thread(self._root, create=True)
        except OSError as exc:
            log.warning("cannot scan watch folder %s: %s", self._root, exc.strerror or exc)
            return None
        if scan.created:
            log.info("created watch folder %s (it had disappeared)", self._root)
            await self._relock()
        if scan.unreadable:
            log.warning("%d subfolder(s) of %s cannot be read", scan.unreadable, self._root)
        self._sync_watches(scan.dirs, full=True)
        return scan

    async def _relock(self) -> None:
        """Lock the watch folder made anew: the lock held is on the folder that is gone."""
        if self._lock is not None:
            self._lock.release()
        try:
            self._lock = await trio.to_thread.run_sync(lock_folder, self._root)
        except (PywatsError, OSError) as exc:
            self._lock = None
            log.error("%s", exc)  # noqa: TRY400 - one line; the next re-creation tries again

    async def _rescan(self) -> None:
        self._rescans += 1
        scan = await self._scan_root()
        if scan is not None:
            await self._take_scan(scan)

    async def _take_scan(self, scan: _Scan) -> None:
        """Bring the bookkeeping in line with a listing of the whole folder; send what settled."""
        now = trio.current_time()
        present: set[Path] = set()
        ready: list[tuple[Path, _Sig]] = []
        new = 0
        for path, sig in scan.files:
            present.add(path)
            if not self._wanted_by_scan(path, sig):
                continue
            if path not in self._settling:
                new += 1
            if self._observe(path, sig, now):
                ready.append((path, sig))
        del scan
        # Forget files that are gone: the bookkeeping follows the folder's contents.
        for table in (self._handled, self._settling):
            for path in [p for p in table if p not in present]:
                del table[path]
        self._recompute_settle_due()
        del present
        if new or ready:
            log.info(
                "rescan of %s found %d new file(s) (%d settled and ready, %d settling)",
                self._root,
                new,
                len(ready),
                len(self._settling) - len(ready),
            )
        await self._send_settled(ready)

    async def _check_settling(self) -> None:
        settle_s = self.config.settle_s
        now = trio.current_time()
        paths = [p for p, (_, since) in self._settling.items() if now >= since + settle_s]
        # A file that settled may have been claimed as a companion meanwhile.
        sigs = await self._stat_unclaimed(paths)
        now = trio.current_time()
        ready: list[tuple[Path, _Sig]] = []
        for path, sig in zip(paths, sigs, strict=True):
            if path not in self._settling:
                continue  # sent or forgotten while we were stat-ing
            if sig is None or not self._wanted_by_scan(path, sig):
                del self._settling[path]
            elif self._observe(path, sig, now):
                ready.append((path, sig))
        self._recompute_settle_due()
        await self._send_settled(ready)

    async def _add_subtree(self, folder: Path) -> None:
        """Watch a folder that appeared under the root, and everything under it."""
        if self.companions is not None:
            claimed = await trio.to_thread.run_sync(
                functools.partial(
                    _is_claimed, folder, self._root, self.config.wants, self.companions, {}
                ),
                abandon_on_cancel=True,
            )
            if claimed:
                return  # a companion folder: the pipeline's, with its file
        # Watch first, then list: a file closed in between is seen by one or the other.
        self._sync_watches([folder])
        try:
            scan = await self._scan_thread(folder, create=False)
        except OSError:
            return  # gone again, or unreadable; the next rescan tells
        self._sync_watches(scan.dirs[1:])
        now = trio.current_time()
        # Writers inside it may still be busy: these settle like any file a scan finds.
        for path, sig in scan.files:
            if self._wanted_by_scan(path, sig):
                self._observe(path, sig, now)

    async def _scan_thread(self, folder: Path, *, create: bool) -> _Scan:
        scan = functools.partial(
            _scan,
            folder,
            recursive=self.config.recursive,
            wants=self.config.wants,
            create=create,
            companions=self.companions,
        )
        # Abandon on cancel: a scan stuck on a dead network mount must not block shutdown.
        return await trio.to_thread.run_sync(scan, abandon_on_cancel=True)

    def _sync_watches(self, folders: list[Path], *, full: bool = False) -> None:
        """Watch ``folders``; with ``full``, they are all folders, so drop other watches.

        Re-adding an existing watch is cheap and returns the same descriptor, which also
        maps a folder that was renamed inside the tree to its new path.
        """
        ino = self._ino
        if ino is None:
            return
        seen: dict[int, Path] = {}
        failed: list[InotifyError] = []
        for folder in folders:
            try:
                seen[ino.add_watch(folder, self._mask)] = folder
            except InotifyError as exc:
                if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                    failed.append(exc)
        if full:
            for wd in [wd for wd in self._watches if wd not in seen]:
                # Folder gone or moved out of the tree; it may still be watched.
                del self._watches[wd]
                try:
                    ino.rm_watch(wd)
                except InotifyError as exc:
                    log.debug("cannot remove watch %d: %s", wd, exc)
        self._watches.update(seen)
        if failed:
            log.warning(
                "%d folder(s) under %s are not watched, rescans still find their files: %s",
                len(failed),
                self._root,
                failed[0],
            )

    def _forget_watch(self, wd: int) -> None:
        folder = self._watches.pop(wd, None)
        if folder == self._root:
            log.warning(
                "the watch on %s is gone (folder deleted, moved or unmounted); "
                "the next rescan watches it again",
                self._root,
            )
