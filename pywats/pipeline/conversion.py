"""The one path every file takes, for a batch of files at a time.

::

    read (thread) -> look up hashes (store) -> convert (thread) -> queue (one commit)
        -> file away (thread): converted and duplicate files
        -> reject (thread): files that cannot be converted, to the error folder

A file that arrives alone is a batch of one: there is no other path. A file leaves the
path where its outcome is decided (vanished, duplicate, cannot be converted, a failing
store that outlasts the service) and its outcome is recorded there, once
(:class:`~pywats.pipeline.outcomes.Outcomes`). What goes wrong for one file is handled
for that file alone by the same steps: a commit that fails for a batch is retried file
by file, which tells a report id clash (that file is rejected) from a failing database
(retried with backoff while the file stays in its folder). The common path costs one
thread hand-off per step and one commit for the whole batch.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import attrs
import trio

from pywats import postaction
from pywats.config import PostAction
from pywats.converters.base import ConversionContext, StationDefaults
from pywats.errors import NotFoundError, StoreError
from pywats.pipeline import steps
from pywats.pipeline.outcomes import (
    Converted,
    Duplicate,
    Job,
    Left,
    Outcome,
    Outcomes,
    Rejected,
    Vanished,
    describe_ids,
)
from pywats.store import EnqueueResult, Store

__all__ = ["STOPPED", "Conversion", "Stop"]

log = logging.getLogger("pywats.pipeline")

T = TypeVar("T")

_BATCH_BYTES = 4 * 1024 * 1024
"""A batch reads files until it holds this many bytes (at least one file, whatever size)."""

STOPPED = Left("the service is stopping before it was converted; it stays for the next start")
_STORE_GAVE_UP = Left(
    "the service is stopping while the queue database fails; it was not queued and stays "
    "where it is",
    level=logging.WARNING,
)


@attrs.define(eq=False)
class Stop:
    """The pipeline's graceful stop, as the path sees it: a flag and an event."""

    stopping: bool = False
    event: trio.Event = attrs.field(factory=trio.Event)

    def set(self) -> None:
        """Stop: steps finish the file in hand, waits for a retry end now."""
        self.stopping = True
        self.event.set()

    def is_set(self) -> bool:
        """Whether the stop came (read from worker threads: a plain attribute read)."""
        return self.stopping


class _GaveUp:
    """Marker: a store call was abandoned because the pipeline is stopping."""


_GAVE_UP = _GaveUp()


def _files(jobs: Sequence[Job]) -> str:
    """The files of a batch for a log line: the first, and how many more."""
    more = f" and {len(jobs) - 1} more file(s)" if len(jobs) > 1 else ""
    return f"{jobs[0].path}{more}"


def _entries(jobs: Sequence[Job]) -> str:
    return ", ".join(dict.fromkeys(job.entry.config.name for job in jobs))


class Conversion:
    """Takes batches of files down the path, recording each file's outcome.

    Args:
        store: the queue the reports go to.
        station: header defaults for converters.
        outcomes: where each file's outcome is recorded.
        stop: the graceful stop (conversion stops early, store retries give up).
        wall_clock: the local time, aware (archive dates, sidecar times).
        store_retry_s: first and longest delay between attempts when the store fails.
    """

    def __init__(
        self,
        store: Store,
        *,
        station: StationDefaults,
        outcomes: Outcomes,
        stop: Stop,
        wall_clock: Callable[[], datetime],
        store_retry_s: tuple[float, float],
    ) -> None:
        self._store = store
        self._station = station
        self._outcomes = outcomes
        self._stop = stop
        self._wall_clock = wall_clock
        self._retry_first_s, self._retry_max_s = store_retry_s

    async def process(self, jobs: list[Job]) -> None:
        """Run ``jobs`` down the path, a byte budget's worth of files at a time.

        Every job ends in an outcome (recorded through ``outcomes``), except when this
        is cancelled or raises (a bug): the caller ends the jobs left without one.
        """
        while jobs:
            if self._stop.stopping:
                for job in jobs:
                    self._outcomes.record(job, STOPPED)
                return
            reads = await trio.to_thread.run_sync(
                steps.read_many,
                [(job.path, job.entry.config.max_file_bytes) for job in jobs],
                _BATCH_BYTES,
                self._stop.is_set,
                abandon_on_cancel=True,
            )
            chunk, jobs = jobs[: len(reads)], jobs[len(reads) :]
            read = self._read(chunk, reads)
            fresh = await self._look_up(read)
            converted = await self._convert(fresh)
            if converted:
                await self._queue(converted)
            await self._file_away([j for j in read if not j.ended and j.ids])
            await self._reject([j for j in chunk if not j.ended and j.problem])
            for job in chunk:
                job.let_go()

    def _read(self, jobs: list[Job], reads: list[steps.Read]) -> list[Job]:
        """Take in what reading gave; return the jobs that have their data."""
        read: list[Job] = []
        for job, got in zip(jobs, reads, strict=True):
            if isinstance(got, postaction.SourceData):
                job.data, job.size, job.sig = got, got.size, got.sig
                read.append(job)
            elif isinstance(got, postaction.TooBig):
                job.size, job.sig = got.size, got.sig
                limit = job.entry.config.max_file_bytes
                job.problem = Rejected(
                    f"the file has {got.size} bytes, more than max_file_bytes ({limit})"
                )
            elif isinstance(got, OSError):
                job.problem = Rejected(f"cannot read the file: {got.strerror or got}")
            else:
                self._outcomes.record(job, Vanished())
        return read

    async def _look_up(self, jobs: list[Job]) -> list[Job]:
        """Mark the jobs whose content is queued already; return the others."""
        if not jobs:
            return []
        hashes = [job.data.sha256 for job in jobs if job.data is not None]
        known = await self._retrying(
            jobs, "cannot look up", "in the queue", lambda: self._store.lookup_sources(hashes)
        )
        if isinstance(known, _GaveUp):
            return []
        fresh: list[Job] = []
        for job in jobs:
            assert job.data is not None
            ids = known.get(job.data.sha256)
            if ids is None:
                fresh.append(job)
            else:
                job.ids, job.duplicate = ids, True
        return fresh

    async def _convert(self, jobs: list[Job]) -> list[Job]:
        """Convert the jobs (one thread hand-off); return those that have their reports."""
        if not jobs:
            return []
        work = [
            (
                job.entry.config.converter,
                ConversionContext(self._station, job.entry.config.arguments),
                job.path,
                job.data.data if job.data is not None else b"",
            )
            for job in jobs
        ]
        results = await trio.to_thread.run_sync(
            steps.convert_many, work, self._stop.is_set, abandon_on_cancel=True
        )
        converted: list[Job] = []
        for job, result in zip(jobs, results, strict=False):
            if isinstance(result, steps.Rejection):
                job.problem = Rejected(result.reason, result.field)
            elif isinstance(result, Exception):
                self._outcomes.record(job, Left.unexpected(result))
            else:
                job.reports = result
                converted.append(job)
        for job in jobs[len(results) :]:
            self._outcomes.record(job, STOPPED)  # a stop came before its turn
        return converted

    async def _queue(self, jobs: list[Job]) -> None:
        """Commit the reports of ``jobs`` with their sources, in one transaction.

        Sets each job's ids (``duplicate`` if its content was queued meanwhile), or its
        problem (a report id already queued from another file). A batch that cannot be
        committed is committed file by file, which tells the two apart.
        """
        if len(jobs) > 1:
            try:
                results = await self._store.enqueue_batch([(j.reports, j.source()) for j in jobs])
            except StoreError:
                # A report id clash fails the whole batch; so does a failing database.
                for job in jobs:
                    await self._queue([job])
                return
        else:
            [job] = jobs
            try:
                result = await self._retrying(
                    jobs, "cannot queue the reports of", "", lambda: self._commit(job)
                )
            except steps.Rejection as exc:
                job.problem = Rejected(exc.reason, exc.field)
                return
            if isinstance(result, _GaveUp):
                return
            results = [result]
        for job, result in zip(jobs, results, strict=True):
            job.ids, job.duplicate = result.ids, result.duplicate

    async def _commit(self, job: Job) -> EnqueueResult:
        """Commit one file's reports; a report id clash raises :class:`steps.Rejection`."""
        try:
            [result] = await self._store.enqueue_batch([(job.reports, job.source())])
        except StoreError:
            taken = await self._queued_ids([r.id for r in job.reports])
            if taken:
                # Not the database failing: the file's report ids are already used by
                # reports from another file. Retrying cannot help.
                raise steps.Rejection(
                    f"report id {taken[0]} is already queued (from another file); "
                    "every report needs its own id",
                    field="id",
                ) from None
            raise
        return result

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

    async def _retrying(
        self, jobs: Sequence[Job], doing: str, where: str, call: Callable[[], Awaitable[T]]
    ) -> T | _GaveUp:
        """``await call()``, retried with backoff while the store fails.

        When the pipeline stops while waiting to retry, every job is left (recorded) and
        ``_GAVE_UP`` returned.
        """
        delay = self._retry_first_s
        while True:
            try:
                return await call()
            except StoreError as exc:
                log.error(  # noqa: TRY400 - a known failure, the message says it all
                    "%s: %s %s%s: %s; trying again in %g s (the file stays where it is)",
                    _entries(jobs),
                    doing,
                    _files(jobs),
                    f" {where}" if where else "",
                    exc,
                    delay,
                )
            with trio.move_on_after(delay):
                await self._stop.event.wait()
            if self._stop.stopping:
                for job in jobs:
                    self._outcomes.record(job, _STORE_GAVE_UP)
                return _GAVE_UP
            delay = min(delay * 2, self._retry_max_s)

    async def _file_away(self, jobs: list[Job]) -> None:
        """Apply the post-action to every queued file (one thread hand-off); record each."""
        if not jobs:
            return
        today = self._wall_clock().strftime("%Y-%m-%d")
        work: list[tuple[PostAction, Path, Path, postaction.FileSig]] = []
        for job in jobs:
            cfg, sig = job.entry.config, job.sig
            assert sig is not None, "only files that were read are filed away"
            directory = cfg.done_dir
            if cfg.post_action is PostAction.ARCHIVE:
                directory = directory / today
            where = directory / job.entry.relative_folder(job.path)
            work.append((cfg.post_action, job.path, where, sig))
        if all(action is PostAction.KEEP for action, *_ in work):
            results: list[Path | Exception | None] = [None] * len(work)
        else:
            # Not abandoned on cancel: a move finishes (or never starts) before we return.
            results = await trio.to_thread.run_sync(steps.file_away_many, work)
        for job, result in zip(jobs, results, strict=True):
            # Moved (a new path) or deleted (None for a delete): no longer in the folder.
            moved = isinstance(result, Path)
            job.gone = moved or (
                result is None and job.entry.config.post_action is PostAction.DELETE
            )
            self._outcomes.record(job, _filed(job, result))

    async def _reject(self, jobs: list[Job]) -> None:
        """Move every file that cannot be converted to its error folder (one hand-off)."""
        if not jobs:
            return
        when = self._wall_clock()
        work: list[tuple[Path, Path, str, postaction.FileSig | None]] = []
        for job in jobs:
            cfg, problem = job.entry.config, job.problem
            assert problem is not None
            text = steps.sidecar_text(
                folder=cfg.name,
                watch=cfg.watch,
                converter=cfg.converter,
                source=job.path,
                size=job.size,
                reason=problem.reason,
                field=problem.field,
                when=when,
            )
            directory = cfg.error_dir / job.entry.relative_folder(job.path)
            work.append((job.path, directory, text, job.sig))
        # Not abandoned on cancel, like filing: the sidecar and the move finish together.
        results = await trio.to_thread.run_sync(steps.reject_many, work)
        for job, result in zip(jobs, results, strict=True):
            job.gone = isinstance(result, postaction.Placed)
            self._outcomes.record(job, _rejected(job, result))


def _filed(job: Job, result: Path | Exception | None) -> Outcome:
    """The outcome of a queued (or duplicate) file from what its post-action did."""
    cfg = job.entry.config
    action = cfg.post_action
    queued = () if job.duplicate else tuple(job.reports)
    if job.duplicate:
        before = f"it was already queued as {describe_ids(job.ids)}"
    else:
        before = f"its reports are queued ({describe_ids(job.ids)})"
    if isinstance(result, postaction.SourceChanged):
        if not result.gone:
            return Left(
                f"{before}, but it changed after it was read: left in place, and looked at again",
                queued=queued,
                ids=job.ids,
            )
        filed = "it was gone already (removed by someone else)"
    elif isinstance(result, OSError):
        return Left(
            f"{before}, but it cannot be "
            f"{'deleted' if action is PostAction.DELETE else f'moved to {cfg.done_dir}'}: "
            f"{result}; it stays where it is and is recognised as already queued next time",
            queued=queued,
            ids=job.ids,
            level=logging.ERROR,
        )
    elif isinstance(result, Exception):
        unexpected = Left.unexpected(result)
        return Left(f"{before}, but {unexpected.why}", queued, job.ids, logging.ERROR, result)
    elif action is PostAction.KEEP:
        filed = "kept in place"
    elif action is PostAction.DELETE:
        filed = "deleted"
    else:
        filed = f"{'archived' if action is PostAction.ARCHIVE else 'moved'} to {result}"
    if job.duplicate:
        return Duplicate(job.ids, filed)
    return Converted(tuple(job.reports), filed)


def _rejected(job: Job, result: postaction.Placed | Exception) -> Outcome:
    """The outcome of a file that cannot be converted from what moving it did."""
    problem = job.problem
    assert problem is not None
    if isinstance(result, postaction.Placed):
        return Rejected(problem.reason, problem.field, result.path, sidecar=result.sidecar)
    where = f" at {problem.field}" if problem.field and problem.field not in problem.reason else ""
    if isinstance(result, postaction.SourceChanged):
        if not result.gone:
            return Left(
                f"could not convert it ({problem.reason}{where}), but it changed since it "
                "was read; it is looked at again"
            )
        return Rejected(problem.reason, problem.field, detail="it is gone now")
    if isinstance(result, OSError):
        error_dir = job.entry.config.error_dir
        return Rejected(
            problem.reason,
            problem.field,
            detail=f"and it cannot be moved to {error_dir}: {result}; it stays where it is",
            level=logging.ERROR,
        )
    unexpected = Left.unexpected(result)
    return Left(
        f"could not convert it ({problem.reason}{where}), but {unexpected.why}",
        level=logging.ERROR,
        error=result,
    )
