"""The trio side of the pipeline: watchers, the channel, converter workers, switches.

One watcher per watch folder, each in a cancel scope of its own (restarted or stopped
when an entry on it is switched), feeds one bounded channel. A worker takes the path it
receives and the paths already waiting (a batch, up to 16; a file that arrives alone is
a batch of one), hands the batch to :class:`~pywats.pipeline.conversion.Conversion`,
and gives every path back to its watcher when the batch is done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import attrs
import trio

from pywats import checks, defaults, postaction
from pywats.converters.base import StationDefaults
from pywats.converters.sniffing import NoChoice
from pywats.errors import PywatsError
from pywats.events import ComponentStatus, EventHub, Recorder
from pywats.pipeline import folders as routing
from pywats.pipeline import steps
from pywats.pipeline.conversion import Conversion, Stop
from pywats.pipeline.entries import Entry, WatchGroup
from pywats.pipeline.folders import FolderConfig, check_folders
from pywats.pipeline.memory import MemoryGate
from pywats.pipeline.outcomes import Job, Left, Outcome, Outcomes, Rejected
from pywats.pipeline.statistics import PipelineStatistics
from pywats.store import Store

__all__ = ["Pipeline"]

log = logging.getLogger("pywats.pipeline")

_BATCH_FILES = 16
"""At most this many waiting files are taken by one worker at a time."""

_STORE_RETRY_S = (defaults.STORE_RETRY_FIRST_S, defaults.STORE_RETRY_MAX_S)
"""First and longest delay between attempts while the store fails (not configurable):
short, so files flow within seconds of the database working again (a full disk freed)."""


def _local_now() -> datetime:
    return datetime.now().astimezone()


def _single(group: BaseException) -> BaseException:
    """The one exception inside nested single-member exception groups (else the group)."""
    while isinstance(group, BaseExceptionGroup) and len(group.exceptions) == 1:
        group = group.exceptions[0]
    return group


@attrs.frozen
class _Unclaimed:
    """A file none of its candidate entries takes: who was asked, and what they said."""

    candidates: list[FolderConfig]
    decision: NoChoice


_NOT_STARTED = Left(
    "the service is stopping; it was not started and stays for the next start",
    level=logging.DEBUG,
)
_DISABLED = Left("its folder entry is disabled; it stays where it is until it is enabled")
_CANCELLED = Left("the pipeline was cancelled while it was in hand; it stays where it is")


class Pipeline:
    """Watches folders, converts their ready files and queues the reports.

    Start it with ``await nursery.start(pipeline.run)``; it is started when every watcher
    is watching. Stop it gracefully with :meth:`begin_shutdown` (watchers stop at once,
    each worker finishes the files in hand, then :meth:`run` returns), or by cancelling.
    A Pipeline runs once. Folder entries can be switched off and on while it runs
    (:meth:`disable_folder`, :meth:`enable_folder`).

    Every file a worker takes ends in one outcome, published on :attr:`hub`
    (``ReportQueued`` per report queued, then ``FileProcessed`` or ``FileRejected``) and
    logged on ``pywats.pipeline`` from the same record.

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
        Everything (watchers, workers) runs in a nursery inside :meth:`run`; each watch
        folder's watcher runs in a cancel scope of its own.
    """

    def __init__(
        self,
        store: Store,
        folders: Sequence[FolderConfig],
        *,
        station: StationDefaults,
        workers: int = defaults.CONVERT_WORKERS,
        channel_size: int = 8,
        memory_budget_bytes: int = defaults.CONVERT_MEMORY_BUDGET_MB * defaults.MiB,
        wall_clock: Callable[[], datetime] = _local_now,
        store_retry_s: tuple[float, float] = _STORE_RETRY_S,
        hub: EventHub | None = None,
    ) -> None:
        """Set up (nothing runs until :meth:`run`).

        Args:
            store: the queue the reports go to.
            folders: the watch folder entries; names unique, no two taking the same
                files, and no done or error folder inside another entry's watch.
            station: header defaults for converters.
            workers: how many batches of files are converted at once (each in a thread).
            channel_size: how many ready files wait for a worker before watchers wait.
            memory_budget_bytes: the memory the workers may take together for the files
                they convert, estimated per file before it is read
                (:mod:`pywats.pipeline.budget`); a file needing more goes to the error
                folder.
            wall_clock: the local time, aware (archive dates, sidecar times).
            store_retry_s: first and longest delay between attempts when the store fails.
            hub: where outcomes are published (a new hub of its own if None).

        Raises:
            ValueError: a number is out of range, or the folder set does not fit together
                (the message says why).
        """
        for what, check, value in (
            ("workers", checks.between(1, defaults.CONVERT_WORKERS_MAX), workers),
            ("channel_size", checks.non_negative, channel_size),
            ("memory_budget_bytes", checks.positive, memory_budget_bytes),
        ):
            try:
                check(value)
            except ValueError as exc:
                raise ValueError(f"{what} {exc}") from None
        groups = check_folders(folders)
        self._workers = workers
        self._wall_clock = wall_clock
        self._recorder = Recorder(hub, log)
        self._outcomes = Outcomes(self._recorder)
        self._stop = Stop()
        self._memory = MemoryGate(memory_budget_bytes)
        self._conversion = Conversion(
            store,
            station=station,
            outcomes=self._outcomes,
            stop=self._stop,
            wall_clock=wall_clock,
            store_retry_s=store_retry_s,
            memory=self._memory,
        )
        self._send, self._receive = trio.open_memory_channel[Path](channel_size)
        # One watcher per watch folder, taking the union of its entries' patterns.
        self._groups = [WatchGroup.of(group, self._send) for group in groups]
        by_name = {e.config.name: e for g in self._groups for e in g.entries}
        self._entries = [by_name[f.name] for f in folders]  # in config order
        # Most specific first, so a path goes to the deepest watch folder that holds it.
        self._by_depth = sorted(self._groups, key=lambda g: len(g.watcher.folder.parts))
        self._by_depth.reverse()
        self._watch_scope = trio.CancelScope()
        self._started = False
        self._busy = 0

    @staticmethod
    def check_folders(folders: Sequence[FolderConfig]) -> None:
        """Check that ``folders`` fit together, as the constructor does (for config checks).

        See :func:`pywats.pipeline.folders.check_folders`. Raises ValueError saying which
        entries and folders clash.
        """
        check_folders(folders)

    @property
    def hub(self) -> EventHub:
        """The event hub the pipeline publishes every outcome and switch on."""
        return self._recorder.hub

    def statistics(self) -> PipelineStatistics:
        """Counters per folder entry and of the shared channel, as a frozen snapshot."""
        return PipelineStatistics(
            folders={e.config.name: e.statistics() for e in self._entries},
            waiting=self._send.statistics().current_buffer_used,
            workers=self._workers,
            busy=self._busy,
            stopping=self._stop.stopping,
            memory_budget=self._memory.total,
            memory_held=self._memory.held,
            files_waiting_for_memory=self._memory.files_waiting,
            files_waited_for_memory=self._memory.files_waited,
        )

    def disable_folder(self, name: str, *, reason: str = "disabled by the operator") -> bool:
        """Stop taking the files of entry ``name``; the other entries go on.

        Its files stay where they are (neither moved nor rejected); files of it already
        in hand are finished, and files of it waiting in the channel are left in place.
        Other entries on the same watch folder go on (their watcher restarts without
        this entry's files); a watch folder whose entries are all disabled is not
        watched at all. Publishes ``ComponentStatus(component="folder:<name>",
        state="disabled")``. Call it from the trio thread, before, during or after
        :meth:`run`.

        Returns:
            Whether this changed anything (False if it was disabled already).

        Raises:
            KeyError: no entry is called ``name``.
        """
        return self._switch(name, enabled=False, reason=reason)

    def enable_folder(self, name: str, *, reason: str = "enabled by the operator") -> bool:
        """Take the files of entry ``name`` again, including those that arrived meanwhile.

        Its watch folder's watcher restarts; files that arrived while the entry was
        disabled are taken once they have settled (``settle_s``), as a rescan would;
        files written after the restart are taken as they are closed. Publishes
        ``ComponentStatus(component="folder:<name>", state="enabled")``.

        Returns:
            Whether this changed anything (False if it was enabled already).

        Raises:
            KeyError: no entry is called ``name``.
        """
        return self._switch(name, enabled=True, reason=reason)

    def begin_shutdown(self) -> None:
        """Stop gracefully: watchers stop now, workers finish the files in hand.

        Files waiting in the channel are left in their folders. :meth:`run` returns once
        every worker is done. A worker waiting to retry a failing store gives up (the file
        stays). Safe to call more than once, and before :meth:`run`.
        """
        if self._stop.stopping:
            return
        self._stop.set()
        self._memory.close()  # files waiting for memory are not started: they stay
        self._watch_scope.cancel()
        in_hand = sum(e.in_hand for e in self._entries)
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
                    len(self._entries),
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

    def _switch(self, name: str, *, enabled: bool, reason: str) -> bool:
        entry = next((e for e in self._entries if e.config.name == name), None)
        if entry is None:
            known = ", ".join(repr(e.config.name) for e in self._entries)
            raise KeyError(f"no watch folder entry is called {name!r} (there are {known})")
        if entry.enabled == enabled:
            return False
        entry.enabled = enabled
        entry.group.switched()
        self._recorder(
            ComponentStatus(
                component=f"folder:{name}",
                state="enabled" if enabled else "disabled",
                reason=reason,
            )
        )
        return True

    async def _prepare_folders(self) -> None:
        # Done and error folders are made at start, so a typo in the config stops the
        # service at once rather than at the first file.
        needed = [d for entry in self._entries for _, d in entry.config.filing_dirs()]
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
                    for group in self._groups:
                        await nursery.start(group.run, name=f"watcher ({group.label})")
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
                jobs, unclaimed = await self._route(batch)
                await self._take(jobs, unclaimed)

    def _group_of(self, path: Path) -> WatchGroup:
        """The watch folder a sent path belongs to (the deepest that holds it)."""
        for group in self._by_depth:
            root = group.watcher.folder
            if path.parent == root or (group.watcher.config.recursive and root in path.parents):
                return group
        raise AssertionError(f"{path} is in no watch folder")  # pragma: no cover

    async def _route(self, paths: list[Path]) -> tuple[list[Job], dict[Job, _Unclaimed]]:
        """A job per path, for the entry that takes it (:mod:`pywats.pipeline.folders`).

        The name decides when one entry's patterns take it (or an unambiguous extension);
        files that several entries may take have their heads read and sniffed, all in one
        worker thread. Files none of them claims are returned as ``unclaimed`` (their job
        is on the first candidate entry, whose error folder they go to).
        """
        jobs: list[Job] = []
        sniff: list[tuple[int, list[Entry]]] = []
        for path in paths:
            group = self._group_of(path)
            # Never empty: the watcher sends only names one of its entries wants.
            wanted = [e for e in group.entries if e.wants(path.name)] or group.entries[:1]
            route = routing.route_by_name([e.config for e in wanted], path.name)
            if route is None and not self._stop.stopping:
                sniff.append((len(jobs), wanted))
            index = route.index if route is not None and route.index is not None else 0
            jobs.append(Job(wanted[index], path))
        unclaimed: dict[Job, _Unclaimed] = {}
        if not sniff:
            return jobs, unclaimed
        work = [(jobs[i].path, [e.config for e in wanted]) for i, wanted in sniff]
        routes = await routing.route_files(work)
        for (i, wanted), got in zip(sniff, routes, strict=True):
            # A file that vanished or cannot be read stays with the first candidate, whose
            # read of it ends it (vanished, or rejected with the read error).
            if not isinstance(got, routing.Route):
                continue
            if got.index is not None:
                jobs[i] = Job(wanted[got.index], jobs[i].path)
            elif isinstance(got.decision, NoChoice):
                job = jobs[i]
                job.sig = got.sig
                job.size = None if got.sig is None else got.sig.size
                job.problem = Rejected(got.decision.reason)
                unclaimed[job] = _Unclaimed([e.config for e in wanted], got.decision)
        return jobs, unclaimed

    async def _take(self, jobs: list[Job], unclaimed: dict[Job, _Unclaimed] | None = None) -> None:
        """Work on the files a worker took; every one ends in one outcome, and is released."""
        unclaimed = unclaimed or {}
        work: list[Job] = []
        rejects: list[Job] = []
        for job in jobs:
            if self._stop.stopping:
                self._outcomes.record(job, _NOT_STARTED)
            elif not job.entry.enabled:
                job.retake = True
                self._outcomes.record(job, _DISABLED)
            else:
                job.in_hand = True
                job.entry.in_hand += 1
                (rejects if job in unclaimed else work).append(job)
        taken = rejects + work
        try:
            if taken:
                self._busy += 1
                try:
                    if rejects:
                        await self._reject_unclaimed(rejects, unclaimed)
                    if work:
                        await self._conversion.process(work)
                    # Every step records the outcomes it decides; none missing is a bug.
                    missing = RuntimeError("no outcome reached")
                    self._end_unfinished(taken, Left.unexpected(missing))
                except Exception as exc:
                    # A bug, not a bad file: the files are left where they are (looked
                    # at again after a restart), and the other batches go on.
                    self._end_unfinished(taken, Left.unexpected(exc))
                except BaseException:
                    self._end_unfinished(taken, _CANCELLED)  # the pipeline goes away
                    raise
                finally:
                    self._busy -= 1
        finally:
            await self._release(jobs)

    async def _reject_unclaimed(self, jobs: list[Job], unclaimed: dict[Job, _Unclaimed]) -> None:
        """Move files no entry of their shared folder takes to the first candidate's error
        folder, with a sidecar naming every candidate and its answer."""
        when = self._wall_clock()
        work: list[tuple[Path, Path, str, postaction.FileSig | None]] = []
        for job in jobs:
            about = unclaimed[job]
            text = routing.unclaimed_sidecar_text(
                candidates=about.candidates,
                source=job.path,
                size=job.size,
                decision=about.decision,
                when=when,
            )
            directory = job.entry.config.error_dir / job.entry.relative_folder(job.path)
            work.append((job.path, directory, text, job.sig))
        # Not abandoned on cancel: the sidecar and the move finish together.
        results = await trio.to_thread.run_sync(steps.reject_many, work)
        for job, result in zip(jobs, results, strict=True):
            reason = unclaimed[job].decision.reason
            outcome: Outcome
            if isinstance(result, postaction.Placed):
                job.gone = True
                outcome = Rejected(reason, error_file=result.path, sidecar=result.sidecar)
            elif isinstance(result, postaction.SourceChanged) and not result.gone:
                outcome = Left(f"{reason}; but it changed since it was sniffed: looked at again")
            elif isinstance(result, postaction.SourceChanged):
                outcome = Rejected(reason, detail="it is gone now")
            elif isinstance(result, OSError):
                error_dir = job.entry.config.error_dir
                outcome = Rejected(
                    reason,
                    detail=f"and it cannot be moved to {error_dir}: {result}; it stays where it is",
                    level=logging.ERROR,
                )
            else:
                outcome = Left.unexpected(result)
            self._outcomes.record(job, outcome)

    def _end_unfinished(self, jobs: Sequence[Job], outcome: Outcome) -> None:
        for job in jobs:
            if not job.ended:
                self._outcomes.record(job, outcome)

    async def _release(self, jobs: Sequence[Job]) -> None:
        """Hand every path back to the watcher that sent it; files this pipeline moved or
        deleted need no look (in a burst, where every file is moved, none is needed)."""
        by_group: dict[WatchGroup, tuple[list[Path], list[Path]]] = {}
        for job in jobs:
            done, retake = by_group.setdefault(job.entry.group, ([], []))
            # A file left because its entry is disabled was not handled: it must not be
            # remembered as such, or it would not be taken once the entry is enabled.
            (retake if job.retake else done).append(job.path)
        gone = {job.path for job in jobs if job.gone}
        for group, (done, retake) in by_group.items():
            if retake:
                await group.watcher.release(retake, retake=True)
            if done:
                await group.watcher.release(done, gone=gone)
