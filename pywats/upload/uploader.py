"""Upload queued reports to the WATS server: :class:`Uploader`.

One :class:`httpx.AsyncClient` (keep-alive pool sized to the workers, plus one for the
health probe) sends each report claimed from the :class:`~pywats.store.Store` as
``POST {url}/api/Report/WSJF`` with the exact bytes from the queue, and records the answer.
``docs/uploader.md`` is the station engineer's page; this docstring is the contract.

What an answer does is decided by :class:`~pywats.upload.health.UploadHealth` (pure, no
I/O; its docstring has the rules); this module carries the decisions out::

    2xx                      -> done
    400, 413, 422, other 4xx -> failed, with the server's message (one line, bounded)
    401, 403                 -> all uploading pauses ("token refused"); the report goes
                                back to pending untouched (Store.release)
    404                      -> all uploading pauses ("the server URL looks wrong")
    408, 429, 5xx, 1xx, 3xx  -> retried later (full-jitter backoff, Retry-After honoured);
                                new uploads are held for one round, then one trial
                                upload goes first
    no answer (connection refused/reset, timeout, not HTTP)
                             -> retried later, and the uploader goes offline
    the outage ends          -> reports that failed in it are due at once

Every outcome is recorded once (:class:`~pywats.events.Recorder`): the counter, the log
line and the event (report.uploaded / retrying / failed / requeued, status.changed)
come from the same call.

The shape of a running uploader::

    Uploader.run
     └─ session (one per configuration; reconfigure() starts a new one)
         ├─ probe       GET {url}/api/App/Version: online/offline, version, latency.
         │              Offline: the only request that goes out, with backoff.
         │              Online: repeated every health_interval_s.
         └─ uploads     nursery of per-report tasks, at most ``workers`` at a time
             └─ dispatcher (the nursery body): claims as many due reports as there are
                free workers, only while online; otherwise sleeps until a report is
                queued (Store.wait_enqueued), the next one is due (Store.next_due_at), a
                worker is free, or the state changes. It never polls.

States (:class:`UploaderState`): ``disabled`` (no URL configured: nothing is sent,
reports stay pending), ``offline`` (connecting, or the server cannot be reached: the
probe decides when it is back), ``online`` (uploading), ``paused`` (the server refused
the token or the URL looks wrong, the HTTP client could not be set up, or the operator
paused: only :meth:`Uploader.resume` or :meth:`Uploader.reconfigure` end it).

Every claimed report ends in exactly one of: done, failed, retried later, or released
(back to pending with its attempt not counted: pause, shutdown, reconfigure, cancellation).
Releasing happens in a shielded scope, so no report is left ``uploading`` when ``run``
returns or is cancelled (a process killed outright leaves them to Store.open).

The token is never logged, never part of a status, and scrubbed from server messages
that echo it. Times come from trio's clock (``trio.current_time``), except the wall-clock
times the store records.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import trio

from pywats import defaults, retry
from pywats.errors import NotFoundError, StoreError
from pywats.events import (
    ComponentStatus,
    EventHub,
    Recorder,
    ReportFailed,
    ReportRequeued,
    ReportRetrying,
    ReportUploaded,
)
from pywats.store import Claim, Store
from pywats.upload.answers import describe, one_line, server_message, version_text
from pywats.upload.client import display_url, headers, make_client, timeout
from pywats.upload.config import SUBMIT_PATH, VERSION_PATH, UploaderConfig, api_base
from pywats.upload.health import (
    Answer,
    Done,
    Fail,
    Fate,
    HealthState,
    Idle,
    PauseKind,
    Release,
    RetryIn,
    Ticket,
    UploadHealth,
    UploadNow,
    WaitUntil,
)
from pywats.upload.status import (
    OutageLine,
    OutageLog,
    UploaderState,
    UploaderStatus,
    clock_ahead,
)
from pywats.upload.wakeup import Wakeup

__all__ = ["Uploader"]

log = logging.getLogger("pywats.uploader")

# Release and close run shielded after a cancellation; if the store or a socket hangs,
# these bound how long run() can take to return anyway.
_RELEASE_TIMEOUT_S = 10.0
_CLOSE_TIMEOUT_S = 2.0

_STATES = {
    HealthState.ONLINE: UploaderState.ONLINE,
    HealthState.OFFLINE: UploaderState.OFFLINE,
    HealthState.PAUSED: UploaderState.PAUSED,
}

_LEVELS = {
    UploaderState.ONLINE: logging.INFO,
    UploaderState.DISABLED: logging.INFO,
    UploaderState.OFFLINE: logging.WARNING,
    UploaderState.PAUSED: logging.ERROR,
}


class Uploader:
    """Upload the store's due reports to the configured WATS server until stopped.

    Start it with ``await nursery.start(uploader.run)``. Control it from the same trio
    run with :meth:`reconfigure`, :meth:`pause`, :meth:`resume`, :meth:`probe_now`,
    :meth:`begin_shutdown` or :meth:`shutdown`, and read it with :meth:`status`.

    Args:
        store: the open queue; the uploader never closes it.
        config: where and how to upload; ``None`` (or no ``url``) means disabled.
        hub: where its events go (its own hub if ``None``).
        rng: the source of jitter (tests seed it).
        transport: an httpx transport to use instead of a network one (tests); TLS,
            proxy and pool settings are then the transport's business.
    """

    def __init__(
        self,
        store: Store,
        config: UploaderConfig | None = None,
        *,
        hub: EventHub | None = None,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._store = store
        self._config = config if config is not None else UploaderConfig()
        self._rng = rng if rng is not None else random.Random()
        self._record = Recorder(hub, log)
        self._transport = transport
        self._health = self._new_health(self._config, None)
        self._shown: tuple[UploaderState, str] | None = None
        self._outages = OutageLog()
        self._hold_shown = -math.inf
        self._server_version: str | None = None
        self._latency_ms: float | None = None
        self._clock_ahead_s: float | None = None
        self._last_error: str | None = None
        self._uploaded = 0
        self._failed = 0
        self._retried = 0
        self._in_flight = 0
        # Ids claimed and not yet recorded; released (shielded) when a session ends.
        self._claimed: set[str] = set()
        # Uploads the server accepted, to be marked done by the dispatcher's next store
        # call (together with its next claim: one commit for both).
        self._finished: list[tuple[Claim, int | None]] = []
        # Session state (reset per session, see _session).
        self._display = ""
        self._submit_url = httpx.URL()
        self._version_url = httpx.URL()
        self._upload_transport: httpx.AsyncBaseTransport | None = None
        self._upload_headers = httpx.Headers()
        self._upload_extensions: dict[str, Any] = {}
        # Control.
        self._running = False
        self._stopping = False
        self._ending = False
        self._session_deadline = math.inf
        self._uploads_scope: trio.CancelScope | None = None
        self._stopped = trio.Event()
        self._dispatch_wake = Wakeup()
        self._probe_wake = Wakeup()
        self._control_wake = Wakeup()
        self._generation = 0
        self._changed = trio.Event()
        self._probes = 0
        self._shown_url = ("", "")

    # --- public API ---

    @property
    def config(self) -> UploaderConfig:
        """The configuration in use (the latest one given to :meth:`reconfigure`)."""
        return self._config

    @property
    def hub(self) -> EventHub:
        """Where the uploader's events go."""
        return self._record.hub

    def status(self) -> UploaderStatus:
        """A snapshot of the state, the server's health and the counters."""
        state = self._state()
        if state is UploaderState.DISABLED:
            reason = self._disabled_reason()
        elif not self._running:
            reason = "paused by the operator" if self._operator_paused() else "not started"
            if self._shown is not None and self._shown[1] == "stopped":
                reason = "stopped"
        elif self._ending and state is UploaderState.OFFLINE:
            reason = self._health.reason
        else:
            reason = self._health.describe(trio.current_time())
        return UploaderStatus(
            state=state,
            reason=self._scrub(reason),
            server_url=self._server_url(),
            server_version=self._server_version,
            latency_ms=self._latency_ms,
            clock_ahead_s=self._clock_ahead_s,
            last_error=None if self._last_error is None else self._scrub(self._last_error),
            uploaded=self._uploaded,
            failed=self._failed,
            retried=self._retried,
            in_flight=self._in_flight,
        )

    @property
    def status_generation(self) -> int:
        """A counter that grows whenever :meth:`status` would answer differently."""
        return self._generation

    async def wait_status_changed(self, seen: int) -> int:
        """Wait until :attr:`status_generation` differs from ``seen``; return it.

        Read the generation, then the status, then wait with that generation, so no
        change is missed.
        """
        while self._generation == seen:
            await self._changed.wait()
        return self._generation

    @property
    def operator_paused(self) -> bool:
        """Whether the operator paused uploading (:meth:`pause`)."""
        return self._operator_paused()

    @property
    def probes(self) -> int:
        """How many probes have been answered (or failed) so far."""
        return self._probes

    async def wait_probed(self, seen: int) -> int:
        """Wait until :attr:`probes` differs from ``seen`` (read it first); return it."""
        while self._probes == seen:
            await self._changed.wait()
        return self._probes

    def reconfigure(self, config: UploaderConfig) -> None:
        """Use ``config`` from now on (a configuration reload).

        Uploads in flight get the old configuration's ``shutdown_deadline_s`` to finish
        (then they are cancelled and their reports released); then a new client is
        built and the server probed again. A pause for a refused token, a wrong URL or
        a bad TLS setup ends here; an operator's :meth:`pause` stays. A URL of ``None``
        disables uploading; setting one starts it.
        """
        old = self._config
        self._config = config
        self._health = self._new_health(config, self._health)
        if not self._running:
            self._sync()
            return
        log.info(
            "configuration changed; restarting uploads (server %s)",
            "none" if config.url is None else display_url(config.url),
        )
        # Say so at once (a "token refused" pause must not show while the new token is
        # being tried), and stop dispatching; uploads in flight go on to the deadline.
        if not self._operator_paused():
            self._health.connect(trio.current_time(), self._display or "the server")
            self._health.reason = "restarting with the new configuration"
        self._sync()
        self._end_session(old.shutdown_deadline_s)

    def pause(self, reason: str = "paused by the operator") -> None:
        """Stop starting uploads until :meth:`resume` (uploads in flight finish)."""
        if self._running and self._state() is not UploaderState.DISABLED:
            log.info("uploading paused by the operator")
        self._health.pause(PauseKind.OPERATOR, one_line(reason))
        self._sync()

    def resume(self) -> None:
        """End a pause (any kind) and check the server now; when offline, probe now.

        After a refused token or a wrong URL this is "I fixed it on the server side";
        the probe and the next upload tell whether that is so (and pause again if not).
        """
        if not self._running:
            self._health.pause_kind = None
            if self._health.state is HealthState.PAUSED:
                self._health.state = HealthState.OFFLINE
            self._sync()
            return
        was_paused = self._health.state is HealthState.PAUSED
        kind = self._health.resume(trio.current_time())
        if was_paused and kind is PauseKind.SETUP:
            self._end_session(0.0)  # build the client again
        elif was_paused:
            log.info("uploading resumed; checking the server")
        self._sync()
        self._wake_all()

    def probe_now(self) -> None:
        """Check the server at once (``server.test``), whatever the probe's schedule."""
        self._health.probe_now(trio.current_time())
        self._probe_wake.fire()

    def begin_shutdown(self, deadline_s: float | None = None) -> None:
        """Start a graceful stop; returns at once. :meth:`run` returns when it is done.

        Contract (what ``pywats serve`` relies on at SIGTERM):

        1. From this call on, no report is claimed and no new upload starts; the probe
           stops.
        2. Uploads in flight get ``deadline_s`` seconds (default: the configuration's
           ``shutdown_deadline_s``, 10 s) to get their answer and record it.
        3. At the deadline the rest are cancelled, and their reports are released back
           to ``pending`` with the attempt not counted (the server may have stored one of
           them; resending the same id is harmless).
        4. The HTTP client is closed and :meth:`run` returns normally, within about
           ``deadline_s`` plus one store commit. The store stays open (its owner closes it
           after ``run`` has returned).

        Calling it again only ever shortens the deadline. Before :meth:`run` started,
        it makes :meth:`run` return at once.
        """
        deadline = self._config.shutdown_deadline_s if deadline_s is None else deadline_s
        if not deadline >= 0:
            raise ValueError(f"deadline_s must be >= 0, got {deadline_s}")
        if not self._stopping:
            log.info("stopping uploads (%d in flight, deadline %g s)", self._in_flight, deadline)
        self._stopping = True
        if self._running:
            self._end_session(deadline)

    async def shutdown(self, deadline_s: float | None = None) -> None:
        """:meth:`begin_shutdown`, then wait until :meth:`run` has returned."""
        self.begin_shutdown(deadline_s)
        if self._running:
            await self._stopped.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Upload until :meth:`begin_shutdown` (then return) or cancellation.

        Reports itself started at once: an unreachable server or bad TLS files are
        states (offline, paused), not start-up errors. An uploader runs once: after a
        shutdown, calling ``run`` again returns at once.

        Resource handling:
            The HTTP client, the probe and every upload live in nurseries inside this
            call. Whether it returns or is cancelled, reports it claimed and has not
            recorded are released to ``pending`` in a shielded scope first.

        Error handling:
            Server and network failures never raise; they change the state or the
            report's schedule. A :class:`~pywats.errors.StoreError` is logged and retried
            with backoff. Using a closed store raises ``trio.ClosedResourceError`` (the
            store must outlive the uploader).
        """
        if self._running:
            raise RuntimeError("this Uploader is already running")
        self._running = True
        self._stopped = trio.Event()
        try:
            task_status.started()
            while not self._stopping:
                config = self._config
                self._ending = False
                self._session_deadline = math.inf
                if config.url is None:
                    self._sync()
                    while not self._ending:
                        await self._control_wake.wait()
                    continue
                await self._session(config, config.url)
        finally:
            with trio.CancelScope(shield=True):
                await self._flush_finished()
                await self._release_claimed()
            self._running = False
            if self._config.url is not None and not self._operator_paused():
                self._health.state, self._health.reason = HealthState.OFFLINE, "stopped"
            self._latency_ms = None
            self._sync()
            self._stopped.set()
            self._touch()

    # --- state ---

    def _new_health(self, config: UploaderConfig, old: UploadHealth | None) -> UploadHealth:
        health = UploadHealth(
            base_s=config.retry_base_s,
            report_cap_s=config.retry_max_s,
            probe_max_s=config.probe_max_s,
            health_interval_s=config.health_interval_s,
            rng=self._rng,
        )
        if old is not None and old.pause_kind is PauseKind.OPERATOR:
            health.pause(PauseKind.OPERATOR, old.reason)
        return health

    def _operator_paused(self) -> bool:
        return self._health.pause_kind is PauseKind.OPERATOR

    def _state(self) -> UploaderState:
        if self._config.url is None:
            return UploaderState.DISABLED
        if not self._running:
            return UploaderState.PAUSED if self._operator_paused() else UploaderState.OFFLINE
        return _STATES[self._health.state]

    def _disabled_reason(self) -> str:
        return "no server URL configured; reports stay queued"

    def _sync(self) -> None:
        """Carry a state change of the health machine out: log, event, wake-ups.

        Called after every input to the machine; does nothing if nothing changed.
        """
        state = self._state()
        reason = self._disabled_reason() if state is UploaderState.DISABLED else self._health.reason
        if not self._running and state is not UploaderState.DISABLED:
            reason = "stopped" if self._shown is not None else reason
        hold = self._health.hold_until
        if hold > self._hold_shown and self._running:
            now = trio.current_time()
            if hold > now:
                log.info(
                    "%s; new uploads wait %.1f s", self._scrub(self._health.hold_reason), hold - now
                )
        self._hold_shown = hold
        # One line when an outage starts and one when it ends, however many uploads saw
        # it and however often answers get lost (OutageLog has the rule).
        line = self._outage_line(state)
        if self._shown == (state, reason) and (line is None or line.level < logging.WARNING):
            return
        changed = self._shown is None or self._shown[0] is not state
        self._shown = (state, reason)
        level = _LEVELS[state] if changed or state is UploaderState.PAUSED else logging.DEBUG
        if reason.startswith(("stopped", "connecting", "resumed", "restarting", "paused by")):
            level = min(level, logging.INFO)  # expected steps, not trouble
        elif line is not None:
            level = line.level if changed or line.level >= logging.WARNING else logging.DEBUG
            reason += line.note
        self._record(
            ComponentStatus(component="uploader", state=state.value, reason=self._scrub(reason)),
            level,
        )
        self._wake_all()
        self._touch()

    def _outage_line(self, state: UploaderState) -> OutageLine | None:
        """How to log this state in the outage log's terms (None: not an outage matter)."""
        if not self._running or self._ending:
            return None
        now = trio.current_time()
        if state is UploaderState.OFFLINE and self._health.outage_since is not None:
            return self._outages.offline(now, confirmed=self._health.probe_failed)
        if state is UploaderState.ONLINE:
            return self._outages.online(now)
        return None

    def _wake_all(self) -> None:
        self._dispatch_wake.fire()
        self._probe_wake.fire()
        self._control_wake.fire()

    def _touch(self) -> None:
        self._generation += 1
        self._changed.set()
        self._changed = trio.Event()

    def _scrub(self, text: str) -> str:
        # A proxy or server that echoes request headers must not carry the token into
        # the queue, the status or the log.
        token = self._config.token
        return text.replace(token, "***") if token and token in text else text

    def _server_url(self) -> str | None:
        # Cached per configuration: status() is called on every change by followers.
        url = self._config.url
        if url is None:
            return None
        if self._shown_url[0] != url:
            self._shown_url = (url, display_url(url))
        return self._shown_url[1]

    # --- sessions ---

    def _end_session(self, deadline_s: float) -> None:
        self._ending = True
        deadline = trio.current_time() + deadline_s
        self._session_deadline = min(self._session_deadline, deadline)
        if self._uploads_scope is not None:
            self._uploads_scope.deadline = min(self._uploads_scope.deadline, deadline)
        self._wake_all()

    async def _session(self, config: UploaderConfig, url: str) -> None:
        base = api_base(url)
        self._display = display_url(url)
        # Parsed once: httpx would parse a str on every request.
        self._submit_url = httpx.URL(base + SUBMIT_PATH)
        self._version_url = httpx.URL(base + VERSION_PATH)
        self._latency_ms = None
        self._server_version = None
        self._health.connect(
            trio.current_time(),
            self._display,
            submit_url=str(self._submit_url),
            version_url=str(self._version_url),
        )
        self._sync()
        try:
            client, transport = await trio.to_thread.run_sync(make_client, config, self._transport)
        except Exception as exc:  # any setup failure is a state the operator can fix
            log.debug("building the HTTP client failed", exc_info=True)
            self._last_error = one_line(f"cannot set up the connection: {exc}")
            self._health.pause(PauseKind.SETUP, self._last_error)
            self._sync()
            while not self._ending:
                await self._control_wake.wait()
            return
        self._upload_transport = transport
        self._upload_headers = httpx.Headers(
            {**headers(config), "Content-Type": "application/json"}
        )
        self._upload_extensions = {"timeout": timeout(config).as_dict()}
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._probe_loop, client, config)
                async with trio.open_nursery() as uploads:
                    uploads.cancel_scope.deadline = self._session_deadline
                    self._uploads_scope = uploads.cancel_scope
                    await self._dispatch(config, uploads)
                self._uploads_scope = None
                nursery.cancel_scope.cancel()
        finally:
            self._uploads_scope = None
            with trio.CancelScope(shield=True):
                await self._flush_finished()
                await self._release_claimed()
                with trio.move_on_after(_CLOSE_TIMEOUT_S):
                    await client.aclose()

    async def _release_claimed(self) -> None:
        ids = sorted(self._claimed)
        if not ids:
            return
        try:
            with trio.move_on_after(_RELEASE_TIMEOUT_S):
                count = await self._store.release(ids)
                self._claimed.difference_update(ids)
                log.info("released %d unfinished upload(s) back to pending", count)
                return
            log.error("releasing %d report(s) timed out; they return at the next start", len(ids))
        except (StoreError, trio.ClosedResourceError) as exc:
            log.error(  # noqa: TRY400 - one line; the reports are safe, no traceback needed
                "cannot release %d report(s) to pending (%s); they return at the next start",
                len(ids),
                exc,
            )

    # --- dispatching ---

    async def _dispatch(self, config: UploaderConfig, uploads: trio.Nursery) -> None:
        store = self._store
        store_failures = 0
        while not self._ending:
            mark = self._dispatch_wake.mark()
            recovered = self._health.take_recovered()
            if recovered:
                await self._make_due(recovered)
                continue
            now = trio.current_time()
            decision = self._health.dispatch(now, config.workers - self._in_flight)
            limit = decision.slots if isinstance(decision, UploadNow) else 0
            if limit == 0 and not self._finished:
                if isinstance(decision, WaitUntil):
                    await self._dispatch_wake.wait(decision.at - now, since=mark)
                else:  # Idle: a state change or an upload finishing fires the wake-up
                    await self._dispatch_wake.wait(since=mark)
                continue
            # Read before claiming: a report queued after the claim still wakes us.
            seen = store.generation
            try:
                claims, due = await self._finish_and_claim(limit)
            except StoreError as exc:
                store_failures += 1
                # The database's own backoff, not the server's: a try is one local call,
                # and uploads must go on within seconds of the database working again.
                wait = retry.backoff_delay(
                    store_failures,
                    self._rng,
                    base_s=defaults.STORE_RETRY_FIRST_S,
                    cap_s=defaults.STORE_RETRY_MAX_S,
                )
                # One ERROR when the trouble starts, then detail (a try every 2 s would
                # fill the log); a full disk is told by the store itself.
                first = store_failures == 1 and not store.disk_full.active
                level = logging.ERROR if first else logging.DEBUG
                log.log(level, "queue database error (%s); trying again in %.1f s", exc, wait)
                # A write that works again (a converter's commit) bumps the generation
                # and ends the wait at once.
                await self._dispatch_wake.wait(
                    wait, functools.partial(store.wait_enqueued, seen), since=mark
                )
                continue
            if store_failures:
                log.info("the queue database works again (after %d failed tries)", store_failures)
            store_failures = 0
            trial = isinstance(decision, UploadNow) and decision.trial
            for claim in claims:
                ticket = self._health.started(trial)
                self._in_flight += 1
                uploads.start_soon(self._upload, config, claim, ticket, name=f"upload {claim.id}")
            if claims:
                self._touch()
                continue
            if limit == 0:
                continue
            wait = math.inf if due is None else due - store.clock()
            # The store call was a checkpoint: a stop or state change that came meanwhile
            # shows in the mark.
            await self._dispatch_wake.wait(
                wait, functools.partial(store.wait_enqueued, seen), since=mark
            )

    async def _make_due(self, ids: list[str]) -> None:
        """The outage is over: reports that waited it out are due now."""
        try:
            count = await self._store.make_due(ids)
        except StoreError as exc:
            log.error("cannot make %d report(s) due again: %s", len(ids), exc)  # noqa: TRY400
            return
        if count:
            self._record(
                ReportRequeued(
                    report_ids=tuple(ids), reason="the server answers again after an outage"
                ),
                # Part of the outage's end: as quiet as the outage was.
                logging.INFO if self._outages.last_logged else logging.DEBUG,
            )

    async def _finish_and_claim(self, limit: int) -> tuple[list[Claim], float | None]:
        """Record the finished uploads and claim up to ``limit``: one store call.

        Shielded, so a cancellation cannot land between the commit and our knowing what
        it did; ``_claimed`` is how claims are released later.
        """
        with trio.CancelScope(shield=True):
            finished, self._finished = self._finished, []
            try:
                missed, claims, due = await self._store.finish_and_claim(
                    [(claim.id, status) for claim, status in finished], limit
                )
            except BaseException:
                self._finished[:0] = finished  # recorded with the next call
                raise
            self._claimed.update(c.id for c in claims)
            self._recorded(finished, missed)
            if claims and not isinstance(
                self._health.dispatch(trio.current_time(), limit), UploadNow
            ):
                # The state changed while claiming (offline, paused, held).
                await self._store.release([c.id for c in claims])
                self._claimed.difference_update(c.id for c in claims)
                return [], None
        return claims, due

    def _recorded(self, finished: list[tuple[Claim, int | None]], missed: list[str]) -> None:
        if not finished:
            return
        gone = set(missed)
        for claim, status in finished:
            self._claimed.discard(claim.id)
            if claim.id in gone:
                log.info("report %s was deleted from the queue while it was uploading", claim.id)
            else:
                self._uploaded += 1
                self._record(
                    ReportUploaded(
                        report_id=claim.id,
                        attempt=claim.attempts,
                        status=status,
                        pn=claim.pn,
                        sn=claim.sn,
                    ),
                    logging.DEBUG,
                )
        self._touch()

    async def _flush_finished(self) -> None:
        """Record what the server accepted before a session's claims are released (which
        would send those reports again)."""
        if not self._finished:
            return
        try:
            with trio.move_on_after(_RELEASE_TIMEOUT_S):
                await self._finish_and_claim(0)
        except (StoreError, trio.ClosedResourceError) as exc:
            log.error(  # noqa: TRY400 - one line; the reports are sent again, same ids
                "cannot record %d finished upload(s) (%s); they are sent again later",
                len(self._finished),
                exc,
            )
            self._finished.clear()

    # --- one upload ---

    async def _upload(self, config: UploaderConfig, claim: Claim, ticket: Ticket) -> None:
        try:
            answer = await self._post(config, claim)
            await self._record_answer(claim, ticket, answer)
        finally:
            self._in_flight -= 1
            self._dispatch_wake.fire()
            self._touch()

    def _answer(self, response: httpx.Response) -> Answer:
        if 200 <= response.status_code <= 299:
            return Answer(response.status_code)
        now = datetime.fromtimestamp(self._store.clock(), UTC)
        return Answer(
            response.status_code,
            self._scrub(server_message(response)),
            retry.parse_retry_after(response.headers.get("retry-after"), now=now),
        )

    async def _post(self, config: UploaderConfig, claim: Claim) -> Answer:
        # Straight to the transport: the client's layers (auth, redirects, cookies, event
        # hooks, header merging) do nothing for this request but cost about a third of
        # httpx's CPU per upload. Headers and timeouts are the client's own.
        request = httpx.Request(
            "POST",
            self._submit_url,
            content=claim.body,
            headers=self._upload_headers,
            extensions=self._upload_extensions,
        )
        try:
            assert self._upload_transport is not None  # set before any upload starts
            response = await self._upload_transport.handle_async_request(request)
            try:
                response.request = request
                await response.aread()
            finally:
                await response.aclose()
        except httpx.RequestError as exc:
            return Answer(None, describe(exc, config))
        except Exception as exc:
            # A reply odd enough to break the HTTP stack must not stop the uploader: it
            # is the server's fault, so treat it as no answer, and keep the traceback.
            log.warning("upload of %s failed unexpectedly", claim.id, exc_info=True)
            return Answer(None, describe(exc, config))
        return self._answer(response)

    async def _record_answer(self, claim: Claim, ticket: Ticket, answer: Answer) -> None:
        """Act on the answer: the health machine first (so the dispatcher stops at once),
        then the report's row, then the record of what happened."""
        fate = self._health.answered(trio.current_time(), ticket, claim.id, claim.attempts, answer)
        if not isinstance(fate, Done):
            self._last_error = f"report {claim.id}: {answer.error}"
        self._sync()
        if isinstance(fate, Done):
            # Marked done by the dispatcher's next store call; it stays claimed (and so
            # is released, and sent again, if that never happens).
            self._finished.append((claim, answer.status))
            return
        store = self._store
        try:
            await self._apply(fate, claim, answer)
            self._claimed.discard(claim.id)
        except NotFoundError:
            self._claimed.discard(claim.id)
            log.info("report %s was deleted from the queue while it was uploading", claim.id)
        except StoreError as exc:
            log.error("cannot record the answer for report %s: %s", claim.id, exc)  # noqa: TRY400
            try:
                await store.release([claim.id])
                self._claimed.discard(claim.id)
            except StoreError:
                pass  # still in _claimed: the end of the session tries again

    async def _apply(self, fate: Fate, claim: Claim, answer: Answer) -> None:
        """Write one report's fate to the queue and record it (counter, log, event)."""
        store = self._store
        if isinstance(fate, Fail):
            await store.mark_failed(claim.id, error=fate.message, status=answer.status)
            self._failed += 1
            self._record(
                ReportFailed(
                    report_id=claim.id,
                    attempt=claim.attempts,
                    status=answer.status,
                    message=fate.message,
                    pn=claim.pn,
                    sn=claim.sn,
                ),
                logging.WARNING,
            )
        elif isinstance(fate, RetryIn):
            await store.retry_later(
                claim.id, delay_s=fate.delay_s, error=answer.error, status=answer.status
            )
            self._retried += 1
            self._record(
                ReportRetrying(
                    report_id=claim.id,
                    attempt=claim.attempts,
                    next_attempt_at=time.time() + fate.delay_s,
                    status=answer.status,
                    message=answer.error,
                    pn=claim.pn,
                    sn=claim.sn,
                ),
                logging.DEBUG,
            )
        elif isinstance(fate, Release):
            await store.release([claim.id])

    # --- health probe ---

    async def _probe_loop(self, client: httpx.AsyncClient, config: UploaderConfig) -> None:
        while True:
            mark = self._probe_wake.mark()
            decision = self._health.next_probe()
            if self._ending or isinstance(decision, Idle):
                await self._probe_wake.wait(since=mark)
                continue
            now = trio.current_time()
            if now < decision.at:
                await self._probe_wake.wait(decision.at - now, since=mark)
                continue
            await self._probe(client, config)

    async def _probe(self, client: httpx.AsyncClient, config: UploaderConfig) -> None:
        started = trio.current_time()
        version: str | None = None
        try:
            response = await client.get(self._version_url)
        except httpx.RequestError as exc:
            answer = Answer(None, describe(exc, config))
        except Exception as exc:
            log.warning("health probe failed unexpectedly", exc_info=True)
            answer = Answer(None, describe(exc, config))
        else:
            answer = self._answer(response)
            if answer.status is not None and 200 <= answer.status <= 299:
                version = version_text(response)
                # The station's clock against the server's: a station clock that runs
                # ahead puts wrong times on every report (the TUI warns about it).
                self._clock_ahead_s = clock_ahead(response.headers.get("date"), self._store.clock())
        now = trio.current_time()
        if self._ending:
            return
        was_paused = self._health.state is HealthState.PAUSED
        self._health.probe_answered(now, answer, version)
        self._probes += 1
        if not was_paused or self._health.state is not HealthState.PAUSED:
            if version is not None:
                self._server_version = version
                self._latency_ms = round((now - started) * 1000, 3)
            else:
                self._latency_ms = None
                self._last_error = f"health probe: {answer.error}"
        self._sync()
        self._touch()
