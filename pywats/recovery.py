"""After an unclean stop, bring back files whose reports the queue lost.

The queue commits every report before its source file is filed (invariant 1), so a
process crash loses nothing: SQLite replays its write-ahead log at the next open. Damage
from outside is another matter: a WAL cut short (a disk that lied about a flush, a file
system repaired after a power cut, an operator's copy) silently drops the commits in its
lost part, while their source files are already in the done folder. This module finds
those files and puts them back through the normal path.

How:

* :class:`RunMarker`: a small file beside the database (``queue.db.running``), written at
  start and removed after a clean close (once the WAL has been copied into the database
  file and removed). Finding it at start means the last run did not close cleanly. It
  holds a time (wall clock): every report committed before it is in the database file
  itself, not only in the WAL. It is the start of the run, moved forward each time
  :class:`Checkpointer` copies the whole WAL into the database (every
  ``defaults.CHECKPOINT_INTERVAL_S``).
* :func:`recover`: for each folder whose post-action is ``move`` or ``archive``, the
  files in its done folder that were filed since that time (their inode change time:
  a move into the done folder, by rename or copy, sets it), that its patterns take, and
  whose content hash the queue does not know, are moved back into the watch folder. The
  pipeline then converts them like any file (report ids derived from the content make
  the second conversion give the same ids; the server overwrites on an equal id).
  Post-action ``keep`` needs nothing: the files are still in the watch folder, and the
  start-up listing sends them (the known ones are skipped by their hash). ``delete``:
  the files are gone, nothing can be brought back.

The bound: only files filed after the marker's time are read, so a crash after months of
running reads the last minute or so of the done folder, not its history. A file filed
before that time had its commit copied into the database file by a checkpoint that
completed, so a damaged WAL cannot have lost it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import attrs
import trio

from pywats import defaults, postaction
from pywats.config import PostAction
from pywats.errors import StoreError
from pywats.pipeline import steps
from pywats.pipeline.folders import FolderConfig
from pywats.store import Store
from pywats.watcher import is_temporary

__all__ = ["MARKER_SUFFIX", "Checkpointer", "RunMarker", "recover"]

log = logging.getLogger("pywats.recovery")

MARKER_SUFFIX = ".running"
"""The run marker is the database's name with this after it."""

_CTIME_SLACK_S = 2.0
# The kernel stamps inode times from a coarse clock that may lag time.time() by a tick;
# files filed this close before the marker's time are checked too.

_HASH_CHUNK = 1024 * 1024


@attrs.frozen
class RunMarker:
    """The "a run is going on" file beside the queue database (see the module doc)."""

    path: Path

    @classmethod
    def of(cls, db_path: Path) -> RunMarker:
        """The marker of the database at ``db_path``."""
        return cls(db_path.with_name(db_path.name + MARKER_SUFFIX))

    def read(self) -> float | None:
        """``None`` after a clean stop (no marker); else the time since which filed files
        may be missing from the queue (0.0 if the marker cannot be read: check all)."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read %s (%s); checking every done file", self.path, exc)
            return 0.0
        try:
            since = json.loads(text)["durable_before"]
        except (ValueError, KeyError, TypeError):
            since = None
        if not isinstance(since, int | float) or not math.isfinite(since):
            log.warning("%s holds no time; checking every done file", self.path)
            return 0.0
        return float(since)

    def write(self, durable_before: float) -> None:
        """Say a run is going on, and that every commit before ``durable_before`` (epoch
        s) is in the database file. Atomic and durable (temporary file, rename, fsync)."""
        temp = self.path.with_name(f".{self.path.name}.tmp")
        data = json.dumps({"durable_before": durable_before, "pid": os.getpid()})
        with open(temp, "w") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, self.path)
        postaction.fsync_dir(self.path.parent)

    def remove(self) -> None:
        """The run ended cleanly."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class Checkpointer:
    """Copies the WAL into the database file every ``interval_s`` and moves the run
    marker's time forward when all of it was copied (which bounds :func:`recover`)."""

    def __init__(
        self,
        store: Store,
        marker: RunMarker,
        *,
        interval_s: float = defaults.CHECKPOINT_INTERVAL_S,
    ) -> None:
        self._store = store
        self._marker = marker
        self._interval_s = interval_s

    async def checkpoint(self) -> bool:
        """One checkpoint; True if the marker now says everything so far is durable."""
        before = self._store.clock()
        if not await self._store.checkpoint():
            return False
        try:
            await trio.to_thread.run_sync(self._marker.write, before)
        except OSError as exc:
            log.warning("cannot update %s: %s", self._marker.path, exc)
            return False
        return True

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Checkpoint every ``interval_s`` until cancelled."""
        task_status.started()
        while True:
            await trio.sleep(self._interval_s)
            await self.checkpoint()


@attrs.frozen
class _Candidate:
    path: Path
    """In the done folder."""
    back_to: Path
    """The folder in the watch folder it came from."""
    sha256: str


def _wants(folder: FolderConfig, name: str) -> bool:
    lowered = name.lower()
    return not is_temporary(name) and any(
        fnmatch.fnmatchcase(lowered, p.lower()) for p in folder.patterns
    )


def _candidates(folder: FolderConfig, since: float) -> tuple[list[_Candidate], int]:
    """Files in ``folder``'s done folder filed at or after ``since``, with their hashes;
    and how many could not be read."""
    done = folder.done_dir
    if not done.is_dir():
        return [], 0
    found: list[_Candidate] = []
    unreadable = 0
    archive = folder.post_action is PostAction.ARCHIVE
    for top, dirs, files in os.walk(done):
        dirs[:] = [d for d in dirs if not is_temporary(d)]
        rel = Path(top).relative_to(done)
        if archive:
            if not rel.parts:
                continue  # archived files live in dated subfolders
            rel = Path(*rel.parts[1:])
        if rel.parts and not folder.recursive:
            dirs[:] = []
            continue
        for name in files:
            if not _wants(folder, name):
                continue
            path = Path(top) / name
            try:
                st = os.lstat(path)
                if st.st_ctime < since or not os.path.isfile(path):
                    continue
                if st.st_size > folder.max_file_bytes:
                    continue  # the pipeline would not have queued it
                digest = hashlib.sha256()
                with open(path, "rb") as src:
                    while chunk := src.read(_HASH_CHUNK):
                        digest.update(chunk)
            except OSError:
                unreadable += 1
                continue
            found.append(_Candidate(path, folder.watch / rel, digest.hexdigest()))
    return found, unreadable


def _move_back(folder: FolderConfig, missing: Sequence[_Candidate]) -> list[Path]:
    moved: list[Path] = []
    for item in missing:
        names = steps.companions_quietly(folder.converter, item.path)
        present = [n for n in names if os.path.lexists(item.path.parent / n)]
        try:
            if present:
                moved.append(postaction.move_group(item.path, item.back_to, present))
            else:
                moved.append(postaction.move_file(item.path, item.back_to))
        except OSError as exc:
            log.error(  # noqa: TRY400 - one line; the file stays where it is
                "cannot move %s back to %s to be queued again: %s", item.path, item.back_to, exc
            )
    return moved


async def recover(store: Store, folders: Sequence[FolderConfig], since: float) -> int:
    """Move files filed since ``since`` whose content the queue does not know back into
    their watch folders; one log line per done folder looked at. Returns how many.

    Call it after an unclean stop (:meth:`RunMarker.read` gave a time), before the
    watchers start, so their start-up listing takes the files.
    """
    total = 0
    seen: set[tuple[Path, Path]] = set()
    for folder in folders:
        if folder.post_action not in (PostAction.MOVE, PostAction.ARCHIVE):
            continue
        key = (folder.done_dir, folder.watch)
        if key in seen:
            continue  # two entries sharing both folders: one look
        seen.add(key)
        found, unreadable = await trio.to_thread.run_sync(
            _candidates, folder, since - _CTIME_SLACK_S
        )
        if not found and not unreadable:
            continue
        try:
            known = await store.lookup_sources(sorted({c.sha256 for c in found}))
        except StoreError as exc:
            log.error("cannot check %s against the queue: %s", folder.done_dir, exc)  # noqa: TRY400
            continue
        missing = [c for c in found if c.sha256 not in known]
        moved = await trio.to_thread.run_sync(_move_back, folder, missing) if missing else []
        total += len(moved)
        problems = f"; {unreadable} could not be read" if unreadable else ""
        if missing:
            log.warning(
                "after an unclean stop, %d of %d file(s) filed in %s since the last checkpoint"
                " were not in the queue (its database lost them); recovered %d: moved back to"
                " %s to be queued again%s",
                len(missing),
                len(found),
                folder.done_dir,
                len(moved),
                folder.watch,
                problems,
            )
        else:
            log.info(
                "after an unclean stop, checked %d file(s) filed in %s since the last"
                " checkpoint: all are in the queue%s",
                len(found),
                folder.done_dir,
                problems,
            )
    return total
