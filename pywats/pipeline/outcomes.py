"""How each file a worker takes ends, and the one place where that is recorded.

Every path a worker receives becomes a :class:`Job`, and every job ends in exactly one
outcome: :class:`Converted`, :class:`Duplicate`, :class:`Rejected`, :class:`Left` or
:class:`Vanished`. :meth:`Outcomes.record` is the only code that bumps the entry's
counters, writes the file's log line and publishes its events, so the three cannot
disagree:

=============  ==========================================================  ========
outcome        events                                                      level
=============  ==========================================================  ========
converted      ``ReportQueued`` per report, ``FileProcessed(converted)``   INFO
duplicate      ``FileProcessed(duplicate)``                                INFO
rejected       ``FileRejected`` (``error_file`` None if it stayed)         WARNING,
                                                                           ERROR if
                                                                           not moved
left           ``ReportQueued`` per report queued before it had to be      as the
               left, ``FileProcessed(left)``                               cause
vanished       ``FileProcessed(vanished)``                                 INFO
=============  ==========================================================  ========

``ReportQueued`` lines are logged at DEBUG: the file's line already names its reports.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import attrs

from pywats import postaction
from pywats.converters.base import name_of
from pywats.events import FileOutcome, FileProcessed, FileRejected, Recorder, ReportQueued
from pywats.pipeline.entries import Entry
from pywats.store import NewReport, SourceFile

__all__ = [
    "Converted",
    "Duplicate",
    "Job",
    "Left",
    "Outcome",
    "Outcomes",
    "Rejected",
    "Vanished",
    "describe_ids",
]

log = logging.getLogger("pywats.pipeline")


def describe_ids(ids: Sequence[str]) -> str:
    """Report ids for a log line: a file with hundreds of reports stays one short line."""
    if len(ids) <= 3:
        return ", ".join(ids) or "no reports"
    return f"{', '.join(ids[:3])} and {len(ids) - 3} more"


@attrs.frozen
class Converted:
    """Its reports are committed, and the post-action filed it."""

    reports: Sequence[NewReport]
    filed: str
    """What the post-action did (``moved to ...``, ``deleted``, ``kept in place``)."""


@attrs.frozen
class Duplicate:
    """Its content was queued before (as ``ids``): filed without queueing it again."""

    ids: tuple[str, ...]
    filed: str


@attrs.frozen
class Rejected:
    """It cannot be converted: moved to ``error_file`` with a sidecar, or left if that failed."""

    reason: str
    field: str = ""
    error_file: Path | None = None
    level: int = logging.WARNING
    sidecar: Path | None = None
    detail: str = ""
    """What happened to the file when it was not moved."""


@attrs.frozen
class Left:
    """Left where it is, for the reason in ``why`` (a later look, or a restart, takes it)."""

    why: str
    queued: Sequence[NewReport] = ()
    """Reports committed before it had to be left (their commit stands)."""
    ids: tuple[str, ...] = ()
    """The reports its content is queued as, if known."""
    level: int = logging.INFO
    error: BaseException | None = None
    """An unexpected error, logged with its traceback."""

    @classmethod
    def unexpected(cls, exc: BaseException) -> Left:
        """Left because of a bug, not a bad file: it is looked at again after a restart,
        and the other files go on. Logged at ERROR with the traceback."""
        return cls(
            f"unexpected error while handling it ({type(exc).__name__}: {exc}); it stays "
            "where it is",
            level=logging.ERROR,
            error=exc,
        )


@attrs.frozen
class Vanished:
    """Gone before it could be read (removed or renamed by someone else)."""


Outcome = Converted | Duplicate | Rejected | Left | Vanished


@attrs.define(eq=False)
class Job:
    """One file a worker took, from the channel to its outcome."""

    entry: Entry
    path: Path
    in_hand: bool = False
    """Counted in the entry's ``in_hand`` (taken to be worked on, not left at once)."""
    data: postaction.SourceData | None = None
    size: int | None = None
    """Its size when it was looked at (read, or found too big); None if not known."""
    sig: postaction.FileSig | None = None
    """What it was when read: a post-action only touches it if it still is."""
    reports: list[NewReport] = attrs.field(factory=list)
    """The reports converted from it, to be queued."""
    ids: tuple[str, ...] = ()
    """Its reports as queued: now, or earlier if ``duplicate``."""
    duplicate: bool = False
    problem: Rejected | None = None
    """Why it cannot be converted, once known: it goes to the error folder."""
    ended: str = ""
    """The name of its outcome once recorded (``Converted``, ...); empty until then."""
    gone: bool = False
    """The pipeline moved or deleted it: its watcher need not look (see Watcher.release)."""
    retake: bool = False
    """Left untouched for later (its entry is disabled): its watcher must not remember
    it as handled."""

    def let_go(self) -> None:
        """Drop the file's bytes and reports once it has its outcome (memory: a batch
        holds about one read budget at a time, not every file it took)."""
        self.data = None
        self.reports = []

    def source(self) -> SourceFile:
        """What the store records of the file, in the transaction of its reports."""
        got = self.data
        assert got is not None, "a file is only queued after it was read"
        return SourceFile(hash=got.sha256, path=str(self.path), size=got.size, mtime=got.mtime)


class Outcomes:
    """Records each job's outcome: counters, one log line, the events (:class:`Recorder`)."""

    def __init__(self, recorder: Recorder) -> None:
        self._record = recorder

    def record(self, job: Job, outcome: Outcome) -> None:
        """End ``job`` with ``outcome``: bump its entry's counters, log, publish.

        A job ends once; a second outcome is a bug, logged and otherwise ignored so the
        counters keep adding up.
        """
        if job.ended:
            log.error(
                "bug: %s already ended as %s; ignoring a second outcome %s",
                job.path,
                job.ended,
                type(outcome).__name__,
            )
            return
        job.ended = type(outcome).__name__
        entry = job.entry
        if job.in_hand:
            entry.in_hand -= 1
        folder, source = entry.config.name, str(job.path)
        match outcome:
            case Converted(reports=reports, filed=filed):
                self._queued(entry, source, reports)
                entry.converted += 1
                self._record(
                    FileProcessed(
                        folder=folder,
                        source=source,
                        outcome=FileOutcome.CONVERTED,
                        report_ids=tuple(r.id for r in reports),
                        detail=filed,
                    )
                )
            case Duplicate(ids=ids, filed=filed):
                entry.duplicates += 1
                self._record(
                    FileProcessed(
                        folder=folder,
                        source=source,
                        outcome=FileOutcome.DUPLICATE,
                        report_ids=ids,
                        detail=filed,
                    )
                )
            case Rejected(reason=reason, field=field, error_file=error_file, level=level):
                entry.failed += 1
                rejected = self._record(
                    FileRejected(
                        folder=folder,
                        source=source,
                        converter=name_of(entry.config.converter),
                        reason=reason,
                        field=field,
                        error_file=None if error_file is None else str(error_file),
                        sidecar=None if outcome.sidecar is None else str(outcome.sidecar),
                        detail=outcome.detail,
                    ),
                    level,
                )
                entry.last_error = rejected.text()
            case Left(why=why, queued=queued, ids=ids, level=level, error=error):
                self._queued(entry, source, queued)
                entry.left += 1
                left = self._record(
                    FileProcessed(
                        folder=folder,
                        source=source,
                        outcome=FileOutcome.LEFT,
                        report_ids=ids or tuple(r.id for r in queued),
                        detail=why,
                    ),
                    level,
                    exc_info=error,
                )
                if level >= logging.ERROR:
                    entry.last_error = left.text()
            case Vanished():
                entry.vanished += 1
                self._record(
                    FileProcessed(folder=folder, source=source, outcome=FileOutcome.VANISHED)
                )

    def _queued(self, entry: Entry, source: str, reports: Sequence[NewReport]) -> None:
        entry.reports += len(reports)
        for report in reports:
            self._record(
                ReportQueued(
                    report_id=report.id,
                    folder=entry.config.name,
                    source=source,
                    converter=report.converter,
                    pn=report.pn,
                    sn=report.sn,
                    result=report.result,
                ),
                logging.DEBUG,
            )
