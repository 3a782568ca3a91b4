"""The one path every file takes, for a batch of files at a time.

::

    read (thread) -> look up hashes (store) -> companions (thread) -> convert (thread)
        -> queue (one commit)
        -> file away (thread): converted and duplicate files, with their companions
        -> reject (thread): files that cannot be converted, to the error folder (with theirs)

A file that arrives alone is a batch of one: there is no other path. A file leaves the
path where its outcome is decided (vanished, duplicate, cannot be converted, a failing
store that outlasts the service) and its outcome is recorded there, once
(:class:`~pywats.pipeline.outcomes.Outcomes`). What goes wrong for one file is handled
for that file alone by the same steps: a commit that fails for a batch is retried file
by file, which tells a report id clash (that file is rejected) from a failing database
(retried with backoff while the file stays in its folder). The common path costs one
thread hand-off per step and one commit for the whole batch.

Companions (:meth:`Converter.companions <pywats.converters.base.Converter>`: Klippel's
result folder beside its header) are read for a file that is not queued yet, after the
look-up (a duplicate's companions may be half filed by an interrupted move; they are not
needed). While a companion is missing or still changing, the file is left and taken
again after ``settle_s`` (its watcher is told to retake it); when that has gone on for
``defaults.COMPANION_WAIT_S`` (at once when ``settle_s`` is 0), it goes to the error
folder saying which companion and why. Its identity in the queue stays its own content
hash: the file is what marks the group as queued, and it is filed away last.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import attrs
import trio

from pywats import defaults, postaction
from pywats.config import PostAction
from pywats.converters.base import ConversionContext, StationDefaults
from pywats.diskfull import is_disk_full
from pywats.errors import NotFoundError, StoreError
from pywats.pipeline import budget, steps
from pywats.pipeline.memory import Hold, MemoryGate, measure
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

_UNLIMITED = 1 << 62
"""The budget of a conversion given none (tests, tools): in effect no limit."""

_COMPANION_BYTES = _BATCH_BYTES
"""A batch reads companions until it holds this many bytes (at least one file's); the
files whose companions are not read then go round again."""

_UNFILED_HORIZON_S = 3600.0
"""A file whose filing failed and that has not come back for this long is forgotten."""

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


_NO_COMPANIONS: dict[str, bytes] = {}


@attrs.define(eq=False)
class _Companions:
    """The companions of one chunk's files: what to file with each, and what was read."""

    groups: dict[Job, steps.Group] = attrs.field(factory=dict)
    data: dict[Job, dict[str, bytes]] = attrs.field(factory=dict)

    def groups_of(self, jobs: Sequence[Job]) -> list[steps.Group | None] | None:
        """Each job's group: as read, else named now (a duplicate, or a file rejected
        before its companions were read); None when no job has companions."""
        out: list[steps.Group | None] = []
        for job in jobs:
            group = self.groups.get(job)
            if group is None:
                names = steps.companions_quietly(job.entry.config.converter, job.path)
                group = steps.Group(names) if names else None
            out.append(group)
        return out if any(g is not None for g in out) else None


class Conversion:
    """Takes batches of files down the path, recording each file's outcome.

    Args:
        store: the queue the reports go to.
        station: header defaults for converters.
        outcomes: where each file's outcome is recorded.
        stop: the graceful stop (conversion stops early, store retries give up).
        wall_clock: the local time, aware (archive dates, sidecar times).
        store_retry_s: first and longest delay between attempts when the store fails.
        memory: the conversion memory budget the workers share (:mod:`~pywats.pipeline.budget`);
            None for no limit.
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
        memory: MemoryGate | None = None,
    ) -> None:
        self._store = store
        self._station = station
        self._outcomes = outcomes
        self._stop = stop
        self._memory = memory if memory is not None else MemoryGate(_UNLIMITED)
        self._wall_clock = wall_clock
        self._retry_first_s, self._retry_max_s = store_retry_s
        # Files waiting for their companions: path -> (trio time of the first look, what
        # the last look saw). Kept across batches: the file comes back after settle_s.
        self._waiting: dict[Path, tuple[float, postaction.Companions | None]] = {}
        # Queued files whose post-action failed (a full done folder): path -> trio time
        # of the last failed try. They stay in their folder and are tried again.
        self._unfiled: dict[Path, float] = {}

    async def process(self, jobs: list[Job]) -> None:
        """Run ``jobs`` down the path, a byte budget's worth of files at a time.

        Before a chunk of files is read, its estimated memory cost is taken from the
        shared budget (waiting while other workers hold it), and given back when its
        files are done; a file that needs more than the whole budget goes to the error
        folder unread. Every job ends in an outcome (recorded through ``outcomes``),
        except when this is cancelled or raises (a bug): the caller ends the jobs left
        without one.
        """
        while jobs:
            if self._stop.stopping:
                for job in jobs:
                    self._outcomes.record(job, STOPPED)
                return
            looked = await trio.to_thread.run_sync(
                measure,
                [(job.path, job.entry.config.converter) for job in jobs],
                abandon_on_cancel=True,
            )
            found = [sig for sig, _ in looked]
            costs = [
                self._cost(job, sig, extra) for job, (sig, extra) in zip(jobs, looked, strict=True)
            ]
            # A file that can never fit costs nothing here: it is not read.
            needs = [cost if self._memory.fits(cost) else 0 for cost in costs]
            sizes = [sig.size if sig is not None else 0 for sig in found]
            count = budget.chunk_size(sizes, needs, _BATCH_BYTES, self._memory.total)
            chunk, jobs = jobs[:count], jobs[count:]
            for job, sig, cost in zip(chunk, found, costs, strict=False):
                if not self._memory.fits(cost):
                    job.size, job.sig = (sig.size, sig) if sig is not None else (None, None)
                    job.problem = Rejected(budget.too_big_reason(cost, self._memory.total))
            to_read = [job for job in chunk if not job.problem]
            hold = await self._hold(to_read, sum(needs[:count]))
            if hold is None:  # the pipeline stopped while this waited for memory
                for job in chunk + jobs:
                    self._outcomes.record(job, STOPPED)
                return
            try:
                unread = await self._chunk(chunk, to_read)
            finally:
                self._memory.give_back(hold)
            # Files a stop kept from being read, and files whose companions did not fit
            # this batch's byte budget, come back first in the next round (read again then).
            jobs = unread + jobs

    async def _hold(self, jobs: list[Job], cost: int) -> Hold | None:
        """Take ``cost`` bytes of the memory budget for reading ``jobs`` (one log line if
        they must wait); None when the pipeline stops first."""
        if not jobs or not cost:
            return Hold(0)
        if self._memory.waits_now(cost):
            log.info(
                "%s: %s wait(s) for conversion memory: needs about %s, %s of %s in use",
                _entries(jobs),
                _files(jobs),
                budget.describe_bytes(cost),
                budget.describe_bytes(self._memory.held),
                budget.describe_bytes(self._memory.total),
            )
        return await self._memory.take(cost, len(jobs))

    def _cost(self, job: Job, sig: postaction.FileSig | None, companions: int = 0) -> int:
        """The estimated memory cost of converting ``job``'s file with its ``companions``
        bytes; 0 when it will not be read (gone, or more than ``max_file_bytes``: reading
        it says so)."""
        if sig is None or sig.size > job.entry.config.max_file_bytes:
            return 0
        return budget.estimate(job.entry.config.converter, sig.size + companions)

    async def _chunk(self, chunk: list[Job], to_read: list[Job]) -> list[Job]:
        """Read, convert, queue and file the files of one chunk (``to_read`` are those
        not rejected already); return the jobs to take again in the next round."""
        reads: list[steps.Read] = []
        if to_read:
            reads = await trio.to_thread.run_sync(
                steps.read_many,
                [(job.path, job.entry.config.max_file_bytes) for job in to_read],
                _UNLIMITED,
                self._stop.is_set,
                abandon_on_cancel=True,
            )
        unread = to_read[len(reads) :]
        done = [job for job in chunk if job not in unread]
        read = self._read(to_read[: len(reads)], reads)
        fresh = await self._look_up(read)
        book = _Companions()
        ready, later = await self._companions(fresh, book)
        converted = await self._convert(ready, book)
        if converted:
            await self._queue(converted)
        await self._file_away([j for j in read if not j.ended and j.ids], book)
        await self._reject([j for j in done if not j.ended and j.problem], book)
        for job in done:
            job.let_go()
        return later + unread

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

    async def _companions(self, jobs: list[Job], book: _Companions) -> tuple[list[Job], list[Job]]:
        """Read the companions of the jobs that have some (one thread hand-off).

        Returns the jobs ready to convert (those without companions, and those whose
        companions were read), and the jobs whose companions were not read because the
        batch holds enough bytes already (to go round again). The others wait (left,
        taken again) or are rejected.
        """
        now = trio.current_time()
        horizon = 2 * defaults.COMPANION_WAIT_S
        for path in [p for p, (first, _) in self._waiting.items() if now - first > horizon]:
            del self._waiting[path]  # its file went away while it waited
        work: list[tuple[Path, tuple[str, ...], postaction.Companions | None, float]] = []
        gathering: list[Job] = []
        later: list[Job] = []
        for job in jobs:
            try:
                names = steps.companion_names(job.entry.config.converter, job.path)
            except steps.Rejection as exc:
                job.problem = Rejected(exc.reason, exc.field)
                continue
            if not names:
                continue
            book.groups[job] = steps.Group(names)
            previous = self._waiting.get(job.path)
            work.append(
                (
                    job.path,
                    names,
                    previous[1] if previous is not None else None,
                    job.entry.config.settle_s,
                )
            )
            gathering.append(job)
        if work:
            results = await trio.to_thread.run_sync(
                steps.gather_many, work, _COMPANION_BYTES, abandon_on_cancel=True
            )
            now = trio.current_time()
            for job, result in zip(gathering, results, strict=True):
                if result is None:
                    later.append(job)
                    book.groups.pop(job, None)
                    continue
                if isinstance(result, steps.Waiting):
                    self._wait(job, result, now)
                    continue
                self._waiting.pop(job.path, None)
                if isinstance(result, steps.CompanionData):
                    book.groups[job] = steps.Group(book.groups[job].names, result.state)
                    book.data[job] = result.data
                elif isinstance(result, steps.Rejection):
                    job.problem = Rejected(result.reason, result.field)
                else:
                    self._outcomes.record(job, Left.unexpected(result))
        waiting = set(later)
        ready = [j for j in jobs if not j.ended and not j.problem and j not in waiting]
        return ready, later

    def _wait(self, job: Job, waiting: steps.Waiting, now: float) -> None:
        """Leave a file whose companions are not ready (to be taken again), or reject it
        once it has waited long enough."""
        first = self._waiting[job.path][0] if job.path in self._waiting else now
        settle_s = job.entry.config.settle_s
        limit = defaults.COMPANION_WAIT_S if settle_s > 0 else 0.0
        waited = now - first
        if waited >= limit:
            self._waiting.pop(job.path, None)
            after = f"; gave up after {waited:.0f} s" if waited else ""
            job.problem = Rejected(f"{waiting.why}{after}")
            return
        self._waiting[job.path] = (first, waiting.state)
        job.retake = True  # its watcher sends it again once it has settled (settle_s)
        self._outcomes.record(
            job,
            Left(
                f"{waiting.why}; it waits, looked at again in {settle_s:g} s (for up to "
                f"{limit:g} s, then it goes to the error folder)"
            ),
        )

    async def _convert(self, jobs: list[Job], book: _Companions) -> list[Job]:
        """Convert the jobs (one thread hand-off); return those that have their reports."""
        if not jobs:
            return []
        work = [
            (
                job.entry.config.converter,
                ConversionContext(self._station, job.entry.config.arguments),
                job.path,
                job.data.data if job.data is not None else b"",
                book.data.get(job, _NO_COMPANIONS),
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
        tries = 0
        while True:
            seen = self._store.generation
            try:
                result = await call()
            except StoreError as exc:
                tries += 1
                # One ERROR when the trouble starts, then detail: a try every 2 s would
                # fill the log. A full disk is told once, by pywats.diskfull.
                first = tries == 1 and not is_disk_full(exc)
                level = logging.ERROR if first else logging.DEBUG
                log.log(
                    level,
                    "%s: %s %s%s: %s; trying again in %g s (the file stays where it is)",
                    _entries(jobs),
                    doing,
                    _files(jobs),
                    f" {where}" if where else "",
                    exc,
                    delay,
                )
            else:
                if tries:
                    log.info(
                        "%s: %s %s%s worked after %d failed tries",
                        _entries(jobs),
                        doing,
                        _files(jobs),
                        f" {where}" if where else "",
                        tries,
                    )
                return result
            await self._pause(delay, seen)
            if self._stop.stopping:
                for job in jobs:
                    self._outcomes.record(job, _STORE_GAVE_UP)
                return _GAVE_UP
            delay = min(delay * 2, self._retry_max_s)

    async def _pause(self, delay: float, seen: int) -> None:
        """Wait ``delay`` s, or until the stop, or until a write to the store worked again
        (its generation moved past ``seen``: another worker's commit, an upload)."""
        with trio.move_on_after(delay):
            async with trio.open_nursery() as nursery:

                async def until(wait: Callable[[], Awaitable[object]]) -> None:
                    await wait()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(until, self._stop.event.wait)
                nursery.start_soon(until, lambda: self._store.wait_enqueued(seen))

    async def _file_away(self, jobs: list[Job], book: _Companions) -> None:
        """Apply the post-action to every queued file and its companions (one thread
        hand-off); record each."""
        if not jobs:
            return
        await self._space_out([job.path for job in jobs])
        groups = book.groups_of(jobs)
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
            results = await trio.to_thread.run_sync(steps.file_away_many, work, groups)
        now = trio.current_time()
        disk = self._store.disk_full
        for job, result in zip(jobs, results, strict=True):
            if isinstance(result, postaction.SourceChanged) and result.path != job.path:
                # A companion changed after it was read: the file itself is unchanged, so
                # its watcher must send it again rather than remember it as handled.
                job.retake = True
            # Moved (a new path) or deleted (None for a delete): no longer in the folder.
            moved = isinstance(result, Path)
            job.gone = moved or (
                result is None and job.entry.config.post_action is PostAction.DELETE
            )
            place = f"done folder {job.entry.config.done_dir}"
            level = logging.ERROR
            if isinstance(result, OSError):
                # Queued, but not filed: it must be filed once that works (a full done
                # folder gets space), not remembered as handled until a restart.
                job.retake = True
                told = job.path in self._unfiled
                self._unfiled[job.path] = now
                if is_disk_full(result):
                    disk.full(place, result, now)
                    level = logging.WARNING
                if told:
                    level = logging.DEBUG  # said at its first try
            elif not isinstance(result, Exception):
                self._unfiled.pop(job.path, None)
                if moved:
                    disk.space(place, now)
            self._outcomes.record(job, _filed(job, result, level))

    async def _space_out(self, paths: list[Path]) -> None:
        """Wait until ``FILE_AWAY_RETRY_S`` has passed since the last failed try to file
        any of ``paths`` (its watcher sends it again after ``settle_s``, which may be 0)."""
        now = trio.current_time()
        for path in [p for p, at in self._unfiled.items() if now - at > _UNFILED_HORIZON_S]:
            del self._unfiled[path]  # gone from its folder meanwhile
        last = max((self._unfiled.get(p, -math.inf) for p in paths), default=-math.inf)
        wait = last + defaults.FILE_AWAY_RETRY_S - now
        if wait > 0:
            with trio.move_on_after(wait):
                await self._stop.event.wait()

    async def _reject(self, jobs: list[Job], book: _Companions) -> None:
        """Move every file that cannot be converted to its error folder, with its
        companions (one hand-off)."""
        if not jobs:
            return
        groups = book.groups_of(jobs)
        when = self._wall_clock()
        work: list[tuple[Path, Path, str, postaction.FileSig | None]] = []
        for index, job in enumerate(jobs):
            cfg, problem = job.entry.config, job.problem
            assert problem is not None
            group = groups[index] if groups is not None else None
            text = steps.sidecar_text(
                folder=cfg.name,
                watch=cfg.watch,
                converter=cfg.converter,
                source=job.path,
                size=job.size,
                reason=problem.reason,
                field=problem.field,
                when=when,
                companions=group.names if group is not None else (),
            )
            directory = cfg.error_dir / job.entry.relative_folder(job.path)
            work.append((job.path, directory, text, job.sig))
        # Not abandoned on cancel, like filing: the sidecar and the move finish together.
        results = await trio.to_thread.run_sync(steps.reject_many, work, groups)
        for job, result in zip(jobs, results, strict=True):
            if isinstance(result, postaction.SourceChanged) and result.path != job.path:
                job.retake = True  # a companion changed: convert the file again
            job.gone = isinstance(result, postaction.Placed)
            self._outcomes.record(job, _rejected(job, result))


def _filed(job: Job, result: Path | Exception | None, level: int = logging.ERROR) -> Outcome:
    """The outcome of a queued (or duplicate) file from what its post-action did
    (``level``: of the line when the post-action failed)."""
    cfg = job.entry.config
    action = cfg.post_action
    queued = () if job.duplicate else tuple(job.reports)
    if job.duplicate:
        before = f"it was already queued as {describe_ids(job.ids)}"
    else:
        before = f"its reports are queued ({describe_ids(job.ids)})"
    if isinstance(result, postaction.SourceChanged):
        if not result.gone:
            changed = "it" if result.path == job.path else f"its companion {result.path}"
            return Left(
                f"{before}, but {changed} changed after it was read: left in place, and "
                "looked at again",
                queued=queued,
                ids=job.ids,
            )
        filed = "it was gone already (removed by someone else)"
    elif isinstance(result, OSError):
        return Left(
            f"{before}, but it cannot be "
            f"{'deleted' if action is PostAction.DELETE else f'moved to {cfg.done_dir}'}: "
            f"{result}; it stays where it is, and is tried again (at least "
            f"{defaults.FILE_AWAY_RETRY_S:g} s apart) until that works",
            queued=queued,
            ids=job.ids,
            level=level,
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
            changed = "it" if result.path == job.path else f"its companion {result.path}"
            return Left(
                f"could not convert it ({problem.reason}{where}), but {changed} changed "
                "since it was read; it is looked at again"
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
