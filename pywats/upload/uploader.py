"""Upload queued reports to the WATS server: :class:`Uploader`.

One :class:`httpx.AsyncClient` (keep-alive pool sized to the workers, plus one for the
health probe) sends each report claimed from the :class:`~pywats.store.Store` as
``POST {url}/api/Report/WSJF`` with the exact bytes from the queue, and records the answer.
``docs/uploader.md`` is the station engineer's page; this docstring is the contract.

What an answer does (``pywats.retry.classify``)::

    2xx                      -> done
    400, 413, 422, other 4xx -> failed, with the server's message (one line, bounded)
    401, 403                 -> all uploading pauses ("token refused"); the report goes
                                back to pending untouched (Store.release)
    404                      -> all uploading pauses ("the server URL looks wrong")
    408, 429, 5xx, 1xx, 3xx  -> retried later (full-jitter backoff, Retry-After honoured);
                                new uploads are held back for that long too
    no answer (connection refused/reset, timeout, not HTTP)
                             -> retried later, and the uploader goes offline

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

import enum
import functools
import logging
import math
import random
from datetime import UTC, datetime
from typing import Any

import attrs
import httpx
import trio

from pywats import retry
from pywats.errors import NotFoundError, StoreError
from pywats.retry import Outcome
from pywats.store import Claim, Store
from pywats.upload.answers import describe, one_line, server_message, version_text
from pywats.upload.client import display_url, headers, make_client, timeout
from pywats.upload.config import SUBMIT_PATH, VERSION_PATH, UploaderConfig, api_base
from pywats.upload.status import UploaderState, UploaderStatus
from pywats.upload.wakeup import Wakeup

__all__ = ["Uploader"]

log = logging.getLogger("pywats.uploader")

# Release and close run shielded after a cancellation; if the store or a socket hangs,
# these bound how long run() can take to return anyway.
_RELEASE_TIMEOUT_S = 10.0
_CLOSE_TIMEOUT_S = 2.0


class _PauseKind(enum.Enum):
    AUTH = enum.auto()
    URL = enum.auto()
    SETUP = enum.auto()
    OPERATOR = enum.auto()


@attrs.frozen
class _Answer:
    """What one request got: an HTTP status, or ``None`` when no answer came."""

    status: int | None
    error: str
    """One line for the queue's last_error and the log (empty for 2xx)."""
    retry_after: str | None = None


class Uploader:
    """Upload the store's due reports to the configured WATS server until stopped.

    Start it with ``await nursery.start(uploader.run)``. Control it from the same trio
    run with :meth:`reconfigure`, :meth:`pause`, :meth:`resume`, :meth:`begin_shutdown`
    or :meth:`shutdown`, and read it with :meth:`status`.

    Args:
        store: the open queue; the uploader never closes it.
        config: where and how to upload; ``None`` (or no ``url``) means disabled.
        rng: the source of jitter (tests seed it).
        transport: an httpx transport to use instead of a network one (tests); TLS,
            proxy and pool settings are then the transport's business.
    """

    def __init__(
        self,
        store: Store,
        config: UploaderConfig | None = None,
        *,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._store = store
        self._config = config if config is not None else UploaderConfig()
        self._rng = rng if rng is not None else random.Random()
        self._transport = transport
        self._pause_kind: _PauseKind | None = None
        self._state = self._idle_state()
        self._reason = self._idle_reason()
        self._server_version: str | None = None
        self._latency_ms: float | None = None
        self._last_error: str | None = None
        self._uploaded = 0
        self._failed = 0
        self._retried = 0
        self._in_flight = 0
        # Ids claimed and not yet recorded; released (shielded) when a session ends.
        self._claimed: set[str] = set()
        # Uploads the server accepted, to be marked done by the dispatcher's next store
        # call (together with its next claim: one commit for both).
        self._finished: list[tuple[str, int | None]] = []
        # Session state (reset per session, see _session).
        self._display = ""
        self._submit_url = httpx.URL()
        self._version_url = httpx.URL()
        self._upload_transport: httpx.AsyncBaseTransport | None = None
        self._upload_headers = httpx.Headers()
        self._upload_extensions: dict[str, Any] = {}
        self._next_probe_at = -math.inf
        self._probe_failures = 0
        self._strikes = 0
        self._hold_until = -math.inf
        self._hold_failures = 0
        self._hold_reason = ""
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
        self._shown_url = ("", "")

    # --- public API ---

    @property
    def config(self) -> UploaderConfig:
        """The configuration in use (the latest one given to :meth:`reconfigure`)."""
        return self._config

    def status(self) -> UploaderStatus:
        """A snapshot of the state, the server's health and the counters."""
        reason = self._reason
        if self._running and self._state is not UploaderState.DISABLED:
            now = trio.current_time()
            if self._state is UploaderState.ONLINE and now < self._hold_until:
                reason = f"{self._hold_reason}; new uploads wait {self._hold_until - now:.0f} s"
            elif (
                self._state is UploaderState.OFFLINE
                and not self._ending
                and now < self._next_probe_at
            ):
                reason = f"{reason}; next check in {self._next_probe_at - now:.0f} s"
        return UploaderStatus(
            state=self._state,
            reason=self._scrub(reason),
            server_url=self._server_url(),
            server_version=self._server_version,
            latency_ms=self._latency_ms,
            last_error=None if self._last_error is None else self._scrub(self._last_error),
            uploaded=self._uploaded,
            failed=self._failed,
            retried=self._retried,
            in_flight=self._in_flight,
        )

    def _server_url(self) -> str | None:
        # Cached per configuration: status() is called on every change by followers.
        url = self._config.url
        if url is None:
            return None
        if self._shown_url[0] != url:
            self._shown_url = (url, display_url(url))
        return self._shown_url[1]

    @property
    def status_generation(self) -> int:
        """A counter that grows whenever :meth:`status` would answer differently."""
        return self._generation

    async def wait_status_changed(self, seen: int) -> int:
        """Wait until :attr:`status_generation` differs from ``seen``; return it.

        Read the generation, then the status, then wait with that generation, so no
        change is missed (the service's ``status.changed`` events).
        """
        while self._generation == seen:
            await self._changed.wait()
        return self._generation

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
        if self._pause_kind is not _PauseKind.OPERATOR:
            self._pause_kind = None
        if not self._running:
            self._state = self._idle_state()
            self._reason = self._idle_reason()
            self._touch()
            return
        log.info(
            "configuration changed; restarting uploads (server %s)",
            "none" if config.url is None else display_url(config.url),
        )
        # Say so at once (a "token refused" pause must not show while the new token is
        # being tried), and stop dispatching; uploads in flight go on to the deadline.
        if self._pause_kind is not _PauseKind.OPERATOR:
            self._set_state(UploaderState.OFFLINE, "restarting with the new configuration")
        self._end_session(old.shutdown_deadline_s)

    def pause(self, reason: str = "paused by the operator") -> None:
        """Stop starting uploads until :meth:`resume` (uploads in flight finish)."""
        self._pause_kind = _PauseKind.OPERATOR
        if not self._running:
            self._state, self._reason = self._idle_state(), self._idle_reason()
            self._touch()
        elif self._state is not UploaderState.DISABLED:
            log.info("uploading paused by the operator")
            self._set_state(UploaderState.PAUSED, one_line(reason))

    def resume(self) -> None:
        """End a pause (any kind) and check the server now; when offline, probe now.

        After a refused token or a wrong URL this is "I fixed it on the server side";
        the probe and the next upload tell whether that is so (and pause again if not).
        """
        kind, self._pause_kind = self._pause_kind, None
        if not self._running:
            if self._state is UploaderState.PAUSED:
                self._state, self._reason = self._idle_state(), self._idle_reason()
                self._touch()
            return
        if self._state is UploaderState.PAUSED:
            if kind is _PauseKind.SETUP:
                self._end_session(0.0)  # build the client again
                return
            log.info("uploading resumed; checking the server")
            self._next_probe_at = trio.current_time()
            self._set_state(UploaderState.OFFLINE, f"resumed; checking {self._display}")
        elif self._state is UploaderState.OFFLINE:
            self._next_probe_at = trio.current_time()
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
                    self._set_state(UploaderState.DISABLED, self._idle_reason())
                    while not self._ending:
                        await self._control_wake.wait()
                    continue
                await self._session(config, config.url)
        finally:
            with trio.CancelScope(shield=True):
                await self._flush_finished()
                await self._release_claimed()
            self._running = False
            if self._state is not UploaderState.DISABLED:
                self._set_state(UploaderState.OFFLINE, "stopped")
            self._latency_ms = None
            self._stopped.set()
            self._touch()

    # --- sessions ---

    def _idle_state(self) -> UploaderState:
        if self._config.url is None:
            return UploaderState.DISABLED
        return (
            UploaderState.PAUSED
            if self._pause_kind is _PauseKind.OPERATOR
            else UploaderState.OFFLINE
        )

    def _idle_reason(self) -> str:
        if self._config.url is None:
            return "no server URL configured; reports stay queued"
        return (
            "paused by the operator" if self._pause_kind is _PauseKind.OPERATOR else "not started"
        )

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
        self._next_probe_at = trio.current_time()
        self._probe_failures = self._strikes = self._hold_failures = 0
        self._hold_until = -math.inf
        self._latency_ms = None
        self._server_version = None
        if self._pause_kind is _PauseKind.OPERATOR:
            self._set_state(UploaderState.PAUSED, "paused by the operator")
        else:
            self._set_state(UploaderState.OFFLINE, f"connecting to {self._display}")
        try:
            client, transport = await trio.to_thread.run_sync(make_client, config, self._transport)
        except Exception as exc:  # any setup failure is a state the operator can fix
            log.debug("building the HTTP client failed", exc_info=True)
            self._pause_kind = _PauseKind.SETUP
            self._last_error = one_line(f"cannot set up the connection: {exc}")
            self._set_state(UploaderState.PAUSED, self._last_error)
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
                    await self._dispatch(client, config, uploads)
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

    def _may_dispatch(self) -> bool:
        return (
            not self._ending
            and self._state is UploaderState.ONLINE
            and trio.current_time() >= self._hold_until
        )

    async def _dispatch(
        self, client: httpx.AsyncClient, config: UploaderConfig, uploads: trio.Nursery
    ) -> None:
        store = self._store
        store_failures = 0
        while not self._ending:
            mark = self._dispatch_wake.mark()
            now = trio.current_time()
            free = config.workers - self._in_flight
            limit = free if free > 0 and self._may_dispatch() else 0
            if limit == 0 and not self._finished:
                if self._state is not UploaderState.ONLINE:
                    await self._dispatch_wake.wait(since=mark)
                elif now < self._hold_until:
                    await self._dispatch_wake.wait(self._hold_until - now, since=mark)
                else:
                    await self._dispatch_wake.wait(since=mark)  # an upload finishing fires it
                continue
            # Read before claiming: a report queued after the claim still wakes us.
            seen = store.generation
            try:
                claims, due = await self._finish_and_claim(limit)
            except StoreError as exc:
                store_failures += 1
                delay = retry.backoff_delay(
                    store_failures, self._rng, base_s=config.retry_base_s, cap_s=config.retry_max_s
                )
                log.error("queue database error (%s); trying again in %.1f s", exc, delay)  # noqa: TRY400
                await self._dispatch_wake.wait(delay, since=mark)
                continue
            store_failures = 0
            for claim in claims:
                self._in_flight += 1
                uploads.start_soon(self._upload, client, config, claim, name=f"upload {claim.id}")
            if claims:
                self._touch()
                continue
            if limit == 0:
                continue
            timeout = math.inf if due is None else due - store.clock()
            # The store call was a checkpoint: a stop or state change that came meanwhile
            # shows in the mark.
            await self._dispatch_wake.wait(
                timeout, functools.partial(store.wait_enqueued, seen), since=mark
            )

    async def _finish_and_claim(self, limit: int) -> tuple[list[Claim], float | None]:
        """Record the finished uploads and claim up to ``limit``: one store call.

        Shielded, so a cancellation cannot land between the commit and our knowing what
        it did; ``_claimed`` is how claims are released later.
        """
        with trio.CancelScope(shield=True):
            finished, self._finished = self._finished, []
            try:
                missed, claims, due = await self._store.finish_and_claim(finished, limit)
            except BaseException:
                self._finished[:0] = finished  # recorded with the next call
                raise
            self._claimed.update(c.id for c in claims)
            self._recorded(finished, missed)
            if claims and not self._may_dispatch():
                # The state changed while claiming (offline, paused, held).
                await self._store.release([c.id for c in claims])
                self._claimed.difference_update(c.id for c in claims)
                return [], None
        return claims, due

    def _recorded(self, finished: list[tuple[str, int | None]], missed: list[str]) -> None:
        if not finished:
            return
        gone = set(missed)
        for report_id, status in finished:
            self._claimed.discard(report_id)
            if report_id in gone:
                log.info("report %s was deleted from the queue while it was uploading", report_id)
            else:
                self._uploaded += 1
                log.debug("report %s uploaded (%s)", report_id, status)
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

    async def _upload(
        self, client: httpx.AsyncClient, config: UploaderConfig, claim: Claim
    ) -> None:
        try:
            answer = await self._post(client, config, claim)
            await self._record(config, claim, answer)
        finally:
            self._in_flight -= 1
            self._dispatch_wake.fire()
            self._touch()

    async def _post(
        self, client: httpx.AsyncClient, config: UploaderConfig, claim: Claim
    ) -> _Answer:
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
            return _Answer(None, describe(exc, config))
        except Exception as exc:
            # A reply odd enough to break the HTTP stack must not stop the uploader: it
            # is the server's fault, so treat it as no answer, and keep the traceback.
            log.warning("upload of %s failed unexpectedly", claim.id, exc_info=True)
            return _Answer(None, describe(exc, config))
        if 200 <= response.status_code <= 299:
            return _Answer(response.status_code, "")
        return _Answer(
            response.status_code,
            self._scrub(server_message(response)),
            response.headers.get("retry-after"),
        )

    async def _record(self, config: UploaderConfig, claim: Claim, answer: _Answer) -> None:
        """Act on the answer: the uploader's state first (so the dispatcher stops at
        once), then the report's row."""
        store = self._store
        outcome = retry.classify(answer.status)
        try:
            if outcome is Outcome.DONE:
                self._succeeded()
                # Marked done by the dispatcher's next store call; it stays claimed (and
                # so is released, and sent again, if that never happens).
                self._finished.append((claim.id, answer.status))
                return
            if outcome is Outcome.PERMANENT:
                self._last_error = f"report {claim.id}: {answer.error}"
                log.warning("report %s rejected by the server: %s", claim.id, answer.error)
                await store.mark_failed(claim.id, error=answer.error, status=answer.status)
                self._failed += 1
            elif outcome is Outcome.AUTH:
                self._last_error = f"report {claim.id}: {answer.error}"
                self._pause(
                    _PauseKind.AUTH,
                    f"the server refused the token ({answer.error}); fix the token and"
                    " reload the configuration, or resume",
                )
                await store.release([claim.id])
            elif outcome is Outcome.NOT_FOUND:
                self._last_error = f"report {claim.id}: {answer.error}"
                self._pause(
                    _PauseKind.URL,
                    f"the server URL looks wrong: POST {self._submit_url} answered"
                    f" {answer.error}; check the URL and reload the configuration",
                )
                await store.release([claim.id])
            else:
                await self._retry_later(config, claim, answer)
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

    async def _retry_later(self, config: UploaderConfig, claim: Claim, answer: _Answer) -> None:
        store = self._store
        now = datetime.fromtimestamp(store.clock(), UTC)
        asked = retry.parse_retry_after(answer.retry_after, now=now)
        if asked is not None:
            delay = asked
        else:
            delay = retry.backoff_delay(
                claim.attempts, self._rng, base_s=config.retry_base_s, cap_s=config.retry_max_s
            )
        self._last_error = f"report {claim.id}: {answer.error}"
        if answer.status is None:
            self._lost_server(config, answer.error)
        else:
            self._hold(config, answer, asked)
        log.debug("report %s: %s; next attempt in %.1f s", claim.id, answer.error, delay)
        await store.retry_later(claim.id, delay_s=delay, error=answer.error, status=answer.status)
        self._retried += 1

    # --- state changes ---

    def _succeeded(self) -> None:
        self._hold_failures = 0
        self._strikes = 0
        if self._state is UploaderState.OFFLINE:
            # An upload got through while the probe waits out its backoff: check now.
            self._next_probe_at = trio.current_time()
            self._probe_wake.fire()

    def _hold(self, config: UploaderConfig, answer: _Answer, asked: float | None) -> None:
        # The server answered but will not take reports now (429, 5xx, 408). Every
        # report would get the same, so new uploads wait: the server's Retry-After, or a
        # backoff that grows while this goes on (a half-open circuit breaker).
        self._hold_failures += 1
        if asked is not None:
            delay = asked
        else:
            delay = retry.backoff_delay(
                self._hold_failures, self._rng, base_s=config.retry_base_s, cap_s=config.retry_max_s
            )
        until = trio.current_time() + delay
        if until > self._hold_until:
            self._hold_until = until
            self._hold_reason = f"the server answered {answer.error}"
            log.info("server answered %s; new uploads wait %.1f s", answer.error, delay)
            self._touch()

    def _lost_server(self, config: UploaderConfig, error: str) -> None:
        # No answer at all: go offline and let the probe find out when the server is
        # back. Repeated losses without an upload getting through in between back off
        # the first probe, so a server that answers the probe but never an upload is
        # not hammered.
        if self._state is not UploaderState.ONLINE:
            return
        self._strikes += 1
        delay = 0.0
        if self._strikes > 1:
            delay = retry.backoff_delay(
                self._strikes - 1, self._rng, base_s=config.retry_base_s, cap_s=config.probe_max_s
            )
        self._probe_failures = 0
        self._next_probe_at = trio.current_time() + delay
        self._latency_ms = None
        self._set_state(UploaderState.OFFLINE, f"cannot reach {self._display}: {error}")

    def _pause(self, kind: _PauseKind, reason: str) -> None:
        self._pause_kind = kind
        self._set_state(UploaderState.PAUSED, reason)

    def _set_state(self, state: UploaderState, reason: str) -> None:
        if state is self._state and reason == self._reason:
            return
        changed = state is not self._state
        self._state = state
        self._reason = reason
        if changed or state is UploaderState.PAUSED:
            level = {
                UploaderState.ONLINE: logging.INFO,
                UploaderState.DISABLED: logging.INFO,
                UploaderState.OFFLINE: logging.WARNING,
                UploaderState.PAUSED: logging.ERROR,
            }[state]
            if reason.startswith(("stopped", "connecting", "resumed", "restarting", "paused by")):
                level = logging.INFO  # expected steps, not trouble
            log.log(level, "uploader %s: %s", state, self._scrub(reason))
        else:
            log.debug("uploader %s: %s", state, self._scrub(reason))
        self._wake_all()
        self._touch()

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

    # --- health probe ---

    async def _probe_loop(self, client: httpx.AsyncClient, config: UploaderConfig) -> None:
        while True:
            if self._ending or self._state not in (UploaderState.ONLINE, UploaderState.OFFLINE):
                await self._probe_wake.wait()
                continue
            now = trio.current_time()
            if now < self._next_probe_at:
                await self._probe_wake.wait(self._next_probe_at - now)
                continue
            await self._probe(client, config)

    async def _probe(self, client: httpx.AsyncClient, config: UploaderConfig) -> None:
        started = trio.current_time()
        try:
            response = await client.get(self._version_url)
        except httpx.RequestError as exc:
            self._probe_failed(config, describe(exc, config), None)
            return
        except Exception as exc:
            log.warning("health probe failed unexpectedly", exc_info=True)
            self._probe_failed(config, describe(exc, config), None)
            return
        now = trio.current_time()
        if self._state not in (UploaderState.ONLINE, UploaderState.OFFLINE):
            return  # paused (or ending) while the probe was out: its answer is stale
        outcome = retry.classify(response.status_code)
        if outcome is Outcome.DONE:
            self._server_version = version_text(response)
            self._latency_ms = round((now - started) * 1000, 3)
            self._probe_failures = 0
            self._next_probe_at = now + config.health_interval_s
            if self._state is UploaderState.OFFLINE:
                self._set_state(
                    UploaderState.ONLINE,
                    f"connected to {self._display} (WATS {self._server_version})",
                )
            self._touch()
            return
        error = self._scrub(server_message(response))
        if outcome is Outcome.AUTH:
            self._last_error = f"health probe: {error}"
            self._pause(
                _PauseKind.AUTH,
                f"the server refused the token ({error}); fix the token and reload the"
                " configuration, or resume",
            )
        elif outcome is Outcome.NOT_FOUND:
            self._last_error = f"health probe: {error}"
            self._pause(
                _PauseKind.URL,
                f"the server URL looks wrong: GET {self._version_url} answered {error};"
                " check the URL and reload the configuration",
            )
        else:
            self._probe_failed(config, error, response.headers.get("retry-after"))

    def _probe_failed(self, config: UploaderConfig, error: str, retry_after: str | None) -> None:
        if self._state not in (UploaderState.ONLINE, UploaderState.OFFLINE):
            return
        self._probe_failures += 1
        now = trio.current_time()
        asked = retry.parse_retry_after(
            retry_after, now=datetime.fromtimestamp(self._store.clock(), UTC)
        )
        if asked is not None:
            delay = asked
        else:
            delay = retry.backoff_delay(
                self._probe_failures + self._strikes,
                self._rng,
                base_s=config.retry_base_s,
                cap_s=config.probe_max_s,
            )
        self._next_probe_at = now + delay
        self._last_error = f"health probe: {error}"
        self._latency_ms = None
        self._set_state(UploaderState.OFFLINE, f"cannot reach {self._display}: {error}")
