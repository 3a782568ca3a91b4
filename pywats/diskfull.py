"""Disk full, as one condition the whole service shares: :class:`DiskFull`.

A full disk is seen by many tasks at once (every converter worker committing, every
uploader round, every file that cannot be copied into its done folder). It is one fact
about one place, so it is told once: one ERROR line when it starts at a place (the queue
database, a done folder), one line when that place takes writes again, and, in between,
a short text for ``STATUS=`` and ``service.status``. The tasks that meet it keep their
own per-attempt lines at DEBUG.

The class is plain bookkeeping (the caller passes the time), so it is tested without a
full disk; :func:`is_disk_full` tells the error apart.
"""

from __future__ import annotations

import errno
import logging

import apsw
import attrs

__all__ = ["DiskFull", "is_disk_full"]

log = logging.getLogger("pywats.diskfull")

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the disk is full.

    SQLite says ``SQLITE_FULL`` (:class:`apsw.FullError`); the file system says
    ``ENOSPC`` (or ``EDQUOT``: out of quota is full, for this service).
    """
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, apsw.FullError):
            return True
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


@attrs.define
class DiskFull:
    """Which places are out of space now, and since when (trio time).

    A *place* is a short text naming what cannot be written: ``queue database
    /var/lib/pywats/ict/queue.db`` or ``done folder /data/done``.
    """

    _since: dict[str, float] = attrs.field(factory=dict)
    episodes: int = 0
    """How many times a place became full (each counted once, whoever saw it)."""

    def full(self, place: str, error: object, now: float) -> bool:
        """``place`` could not be written for lack of space; True if that is news."""
        if place in self._since:
            return False
        self._since[place] = now
        self.episodes += 1
        log.error(
            "disk full: %s cannot be written (%s); nothing is lost: files stay in their "
            "folders and reports in the queue until there is space again",
            place,
            error,
        )
        return True

    def space(self, place: str, now: float) -> bool:
        """``place`` took a write again; True if it was full until now."""
        since = self._since.pop(place, None)
        if since is None:
            return False
        log.warning(
            "disk space is back: %s can be written again (it was full for %.0f s)",
            place,
            now - since,
        )
        return True

    def is_full(self, place: str) -> bool:
        """Whether ``place`` is out of space now."""
        return place in self._since

    @property
    def active(self) -> bool:
        """Whether any place is out of space now."""
        return bool(self._since)

    def describe(self) -> str | None:
        """``disk full: <place>, <place>`` while any place is full, else ``None``."""
        if not self._since:
            return None
        return "disk full: " + ", ".join(self._since)
