"""The running state of each folder entry and of each watch folder.

An :class:`Entry` is one configured entry (:class:`FolderConfig`) at run time: its
counters and whether it is enabled. A :class:`WatchGroup` is one watch folder: the one
watcher that serves every entry on it, those entries in configuration order, and the
cancel scope its watcher runs in, so the folder can be switched off and on alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import trio

from pywats.errors import PywatsError
from pywats.pipeline.folders import FolderConfig
from pywats.pipeline.statistics import FolderStatistics
from pywats.pipeline.steps import companions_quietly
from pywats.watcher import WatchConfig, Watcher

__all__ = ["Entry", "WatchGroup"]

log = logging.getLogger("pywats.pipeline")


@attrs.define(eq=False)
class Entry:
    """One folder entry at run time: its configuration, switch and counters."""

    config: FolderConfig
    group: WatchGroup
    wants: Callable[[str], bool]
    """Whether this entry's patterns take a file name (temporary names never)."""
    enabled: bool = True
    converted: int = 0
    reports: int = 0
    failed: int = 0
    duplicates: int = 0
    left: int = 0
    vanished: int = 0
    in_hand: int = 0
    last_error: str | None = None

    def statistics(self) -> FolderStatistics:
        """The counters as a frozen snapshot."""
        return FolderStatistics(
            name=self.config.name,
            enabled=self.enabled,
            files_converted=self.converted,
            reports_queued=self.reports,
            files_failed=self.failed,
            duplicates_skipped=self.duplicates,
            files_left=self.left,
            files_vanished=self.vanished,
            in_hand=self.in_hand,
            last_error=self.last_error,
            watcher=self.group.watcher.statistics(),
        )

    def relative_folder(self, path: Path) -> Path:
        """The folder of ``path`` relative to the watch folder (``.`` unless recursive)."""
        return path.parent.relative_to(self.group.watcher.folder)


@attrs.define(eq=False)
class WatchGroup:
    """One watch folder: its watcher, the entries it serves, and the scope it runs in.

    The watcher takes the union of the entries' patterns and asks :meth:`accepts` about
    every name, so a disabled entry's files are not taken while the other entries of the
    folder go on. When an entry's converter names companions (files or folders that
    belong with a file), the watcher asks :meth:`companions_of` too, and never takes a
    companion as a file of its own.
    """

    entries: list[Entry] = attrs.field(factory=list)
    watcher: Watcher = attrs.field(init=False)
    scope: trio.CancelScope | None = None
    """The cancel scope of the watcher's current run (None while it does not run)."""
    changed: trio.Event = attrs.field(factory=trio.Event)
    """Set (and replaced) when an entry is switched: the watcher restarts or stops."""
    last_refusal: str | None = None
    """What the last failed restart of the watcher logged; the same again goes to debug
    (a folder another process holds is tried every rescan period). A switch clears it.
    (A run that starts runs until a switch or the end, so no success needs clearing it.)"""

    @classmethod
    def of(cls, folders: Sequence[FolderConfig], send: trio.MemorySendChannel[Path]) -> WatchGroup:
        """The group of entries sharing one watch folder, with its watcher on ``send``."""
        group = cls()
        for folder in folders:
            group.entries.append(Entry(folder, group, folder.watch_config().wants))
        patterns = tuple(dict.fromkeys(p for f in folders for p in f.patterns))
        config: WatchConfig = attrs.evolve(folders[0].watch_config(), patterns=patterns)
        has_companions = any(callable(getattr(f.converter, "companions", None)) for f in folders)
        group.watcher = Watcher(
            config,
            send,
            accepts=group.accepts,
            companions=group.companions_of if has_companions else None,
        )
        return group

    def companions_of(self, path: Path) -> tuple[str, ...]:
        """The names of ``path``'s companions: those of every entry whose patterns take it
        (whichever of them converts it, what they name is not an input of its own).

        Called by the watcher in its worker threads; it only reads plain attributes and
        the converters' pure ``companions``. A converter whose ``companions`` fails names
        none here (the pipeline rejects the file and says why).
        """
        names: dict[str, None] = {}
        for entry in self.entries:
            if entry.wants(path.name):
                names.update(dict.fromkeys(companions_quietly(entry.config.converter, path)))
        return tuple(names)

    @property
    def label(self) -> str:
        """The entries' names, for task names and log lines."""
        return ", ".join(e.config.name for e in self.entries)

    def entry_for(self, name: str) -> Entry | None:
        """The entry a file called ``name`` belongs to: the first whose patterns match."""
        for entry in self.entries:
            if entry.wants(name):
                return entry
        return None

    def accepts(self, name: str) -> bool:
        """Whether the watcher may take ``name``: its entry is enabled.

        Read by the watcher at every event and in its scan thread; it only reads plain
        attributes, so a switch from the trio thread is seen at the next name.
        """
        entry = self.entry_for(name)
        return entry is not None and entry.enabled

    def watching(self) -> bool:
        """Whether any entry is enabled, so the watcher should run."""
        return any(entry.enabled for entry in self.entries)

    def switched(self) -> None:
        """An entry was enabled or disabled: restart the watcher's run (or end it)."""
        changed, self.changed = self.changed, trio.Event()
        self.last_refusal = None  # a switch is news: its refusal is said again
        changed.set()
        if self.scope is not None:
            self.scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the watcher while any entry is enabled, each run in a cancel scope of its
        own, and run it again (or not) whenever an entry is switched.

        Started once the first run watches (or at once if every entry is disabled); a
        watch folder that cannot be used then raises :class:`PywatsError` as the watcher
        does. Returns when the channel is closed.
        """
        first: trio.TaskStatus[None] | None = task_status
        while True:
            if not self.watching():
                if first is not None:
                    first.started()
                    first = None
                await self.changed.wait()
                continue
            changed = self.changed
            ended = False
            with trio.CancelScope() as scope:
                self.scope = scope
                try:
                    if first is not None:
                        # A folder that cannot be used at start stops the start-up.
                        status, first = first, None
                        await self.watcher.run(task_status=status)
                        ended = True
                    else:
                        ended = await self._rerun(changed)
                finally:
                    self.scope = None
            if ended and not scope.cancelled_caught:
                return  # the channel was closed: nobody takes files any more

    async def _rerun(self, changed: trio.Event) -> bool:
        """Run the watcher again after a switch; False if it could not start (it waited
        a rescan period, or for the next switch, to be tried again)."""
        try:
            await self.watcher.run()
        except PywatsError as exc:
            # The watch folder went away, an inotify limit, or another process watches it:
            # the other folders go on. Said once as an error; the same again only in debug.
            rescan_s = self.watcher.config.rescan_s
            message = f"{self.label}: {exc}; trying again in {rescan_s:g} s"
            level = logging.DEBUG if message == self.last_refusal else logging.ERROR
            self.last_refusal = message
            log.log(level, "%s", message)
            with trio.move_on_after(rescan_s):
                await changed.wait()
            return False
        return True
