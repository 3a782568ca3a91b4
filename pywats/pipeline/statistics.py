"""Frozen snapshots of the pipeline's counters (:meth:`Pipeline.statistics`)."""

from __future__ import annotations

import attrs

from pywats.watcher import WatcherStatistics

__all__ = ["FolderStatistics", "PipelineStatistics"]


@attrs.frozen
class FolderStatistics:
    """A snapshot of one watch folder entry's counters.

    Every file a worker took has ended in exactly one of ``files_converted``,
    ``duplicates_skipped``, ``files_failed``, ``files_left`` and ``files_vanished``, or
    is still ``in_hand``.
    """

    name: str
    enabled: bool
    """Whether the entry takes files now (:meth:`Pipeline.disable_folder`)."""
    files_converted: int
    """Files whose reports were queued and which the post-action then filed."""
    reports_queued: int
    """Reports queued from this entry's files (including files left after their commit)."""
    files_failed: int
    """Files that cannot be converted (moved to the error folder, if possible)."""
    duplicates_skipped: int
    """Files whose content was already queued: filed without queueing again."""
    files_left: int
    """Files left where they were: changed while read, not movable, the entry disabled,
    the pipeline stopping (before they were started, or while the store was failing), or
    an unexpected error."""
    files_vanished: int
    """Files gone before they could be read (removed or renamed by someone else)."""
    in_hand: int
    """Files a worker is working on now."""
    last_error: str | None
    """The log line of the latest file rejected, or left by an error (None if none)."""
    watcher: WatcherStatistics
    """The folder watcher's own counters (shared by every entry on that watch folder)."""


@attrs.frozen
class PipelineStatistics:
    """A snapshot of the pipeline: per folder entry (by name), and the shared channel."""

    folders: dict[str, FolderStatistics]
    waiting: int
    """Ready files in the channel, waiting for a worker."""
    workers: int
    busy: int
    """Workers working on files."""
    stopping: bool
    memory_budget: int = 0
    """The conversion memory budget, in bytes (``[convert] memory_budget_mb``)."""
    memory_held: int = 0
    """Bytes of it the files being converted hold now (estimated before they were read)."""
    files_waiting_for_memory: int = 0
    """Files a worker holds that wait for memory now (others hold the budget)."""
    files_waited_for_memory: int = 0
    """Files that had to wait for memory since the start (each counted once per wait)."""
