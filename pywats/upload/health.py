"""Upload health: what the server's answers mean for uploading, as a sans-IO state machine.

:class:`UploadHealth` has no trio and no I/O. Its methods take the time (trio's clock,
seconds) and an :class:`Answer`, and return what to do: for the dispatcher
(:meth:`UploadHealth.dispatch`: :class:`UploadNow`, :class:`WaitUntil` or :class:`Idle`),
for the probe (:meth:`UploadHealth.next_probe`: :class:`ProbeAt` or :class:`Idle`) and for
each report (:meth:`UploadHealth.answered`: :class:`Done`, :class:`Fail`, :class:`RetryIn`
or :class:`Release`). :class:`~pywats.upload.uploader.Uploader` is the trio shell that
carries those decisions out.

The rules:

- **States.** ``offline`` (connecting, or the server cannot be reached: only the probe
  goes out), ``online`` (uploading), ``paused`` (token refused, URL wrong, client setup
  failed, or the operator). ``online`` may be *held*: the server answered but will not
  take reports now (408, 429, 5xx).
- **Count rounds, not answers.** A hold is a round: it begins with the first busy answer
  from an upload sent while no hold was running (or by the round's trial). Uploads that
  were already in flight when the round began answer busy too; they are the same
  outage, so they neither extend nor escalate it. Each upload carries a
  :class:`Ticket` saying which round it was sent in.
- **One trial.** When a hold ends, one upload goes first. Only its success releases all
  workers; its busy answer starts the next round, with a longer hold.
- **Recovery.** Reports that failed transiently during an outage were scheduled with
  their own backoff. When the outage ends (the trial succeeds, or the probe finds the
  server back) they are due again at once (:meth:`UploadHealth.take_recovered`): the
  delay was about the server, not about them. The report that opened an outage is kept
  on its own backoff if it also opened the one before (a report the server fails on by
  itself must not start an outage over and over).
- **How long.** A server's ``Retry-After`` is obeyed (clamped to an hour when parsed).
  Otherwise every delay is full jitter (``uniform(0, bound)``) through one function,
  :func:`pywats.retry.delay`. The bound doubles per round from ``base_s``; for holds and
  probes it is capped by a quarter of the outage so far (at least :data:`MIN_OUTAGE_CAP_S`, at most
  ``probe_max_s``): a short outage is noticed as over within about a second, and a long
  one costs the server one request every ``probe_max_s`` at most.
- **A refusal is asked again.** Paused because the server refused the token (401/403) or
  the URL looked wrong (404), the probe still asks, with backoff capped at
  :data:`~pywats.defaults.PAUSED_PROBE_MAX_S` (5 minutes). When it answers, one trial
  upload goes; its success resumes every worker, its refusal pauses again with a longer
  wait. A token fixed on the server side (or a URL that comes back) needs no one at the
  station. The operator's own pause is never probed.
"""

from __future__ import annotations

import enum
import math
import random

import attrs

from pywats import defaults, retry
from pywats.retry import delay

__all__ = [
    "MIN_OUTAGE_CAP_S",
    "Answer",
    "AnswerKind",
    "Done",
    "Fail",
    "HealthState",
    "Idle",
    "PauseKind",
    "ProbeAt",
    "Release",
    "RetryIn",
    "Ticket",
    "UploadHealth",
    "UploadNow",
    "WaitUntil",
]

MIN_OUTAGE_CAP_S = 1.5
"""The shortest cap of a hold's or probe's backoff: after a short outage the next try
comes within this long (the issue's target is every report on the server within 2 s of
the server answering again)."""

OUTAGE_CAP_FRACTION = 0.25
"""The cap of a hold's or probe's backoff grows with the outage: a quarter of its length."""


class AnswerKind(enum.Enum):
    """What an answer means (see :meth:`Answer.kind`)."""

    DONE = "done"
    """2xx: the server has the report."""
    REJECTED = "rejected"
    """400, 413, 422, other 4xx: the server refuses this report for good."""
    AUTH = "auth"
    """401/403: the token is refused."""
    NOT_FOUND = "not_found"
    """404: the endpoint is missing; the URL is wrong."""
    BUSY = "busy"
    """408, 429, 5xx, or a status we do not understand: the server answered, but not now."""
    NO_ANSWER = "no_answer"
    """No HTTP answer: refused, reset, timed out, not HTTP."""


_KINDS = {
    retry.Outcome.DONE: AnswerKind.DONE,
    retry.Outcome.PERMANENT: AnswerKind.REJECTED,
    retry.Outcome.AUTH: AnswerKind.AUTH,
    retry.Outcome.NOT_FOUND: AnswerKind.NOT_FOUND,
}


@attrs.frozen
class Answer:
    """What one request got."""

    status: int | None
    """The HTTP status; ``None`` when no answer came."""
    error: str = ""
    """One line saying what went wrong (empty for 2xx)."""
    retry_after_s: float | None = None
    """The server's ``Retry-After``, parsed and clamped; ``None`` if absent or unusable."""

    @property
    def kind(self) -> AnswerKind:
        """The answer's meaning (:func:`pywats.retry.classify`)."""
        if self.status is None:
            return AnswerKind.NO_ANSWER
        return _KINDS.get(retry.classify(self.status), AnswerKind.BUSY)


class HealthState(enum.StrEnum):
    """The uploader's state as the health machine sees it."""

    OFFLINE = "offline"
    ONLINE = "online"
    PAUSED = "paused"


class PauseKind(enum.Enum):
    """Why uploading is paused; each is ended differently (see the uploader)."""

    AUTH = "auth"
    URL = "url"
    SETUP = "setup"
    OPERATOR = "operator"


# --- decisions ------------------------------------------------------------------------


@attrs.frozen
class UploadNow:
    """Start up to ``slots`` uploads now (1 for the trial after a hold)."""

    slots: int
    trial: bool = False


@attrs.frozen
class WaitUntil:
    """Start nothing before ``at`` (a hold); something else may change it sooner."""

    at: float


@attrs.frozen
class Idle:
    """Start nothing until the state changes (offline, paused, or a trial in flight)."""

    reason: str


@attrs.frozen
class ProbeAt:
    """Probe the server (``GET /api/App/Version``) at ``at``."""

    at: float


@attrs.frozen
class Done:
    """The report is on the server: mark it done."""


@attrs.frozen
class Fail:
    """The server refused the report for good: mark it failed with ``message``."""

    message: str


@attrs.frozen
class RetryIn:
    """Try the report again in ``delay_s`` seconds."""

    delay_s: float


@attrs.frozen
class Release:
    """Put the report back to pending untouched (its attempt does not count)."""


Fate = Done | Fail | RetryIn | Release


@attrs.frozen
class Ticket:
    """Given to each upload when it starts: the round it was sent in."""

    round: int
    trial: bool = False


class UploadHealth:
    """The uploader's policy: one instance per uploader session (see the module docstring).

    Args:
        base_s: first bound of every backoff (``upload.retry_base_s``).
        report_cap_s: cap of a report's own backoff (``upload.retry_max_s``).
        probe_max_s: longest wait between two probes or trials while the server is out.
        health_interval_s: time between probes of an online server.
        rng: the source of jitter (tests seed it).
    """

    def __init__(
        self,
        *,
        base_s: float = defaults.RETRY_BASE_S,
        report_cap_s: float = defaults.RETRY_MAX_S,
        probe_max_s: float = defaults.PROBE_MAX_S,
        health_interval_s: float = defaults.HEALTH_INTERVAL_S,
        rng: random.Random | None = None,
    ) -> None:
        self._base_s = base_s
        self._report_cap_s = report_cap_s
        self._probe_max_s = probe_max_s
        self._health_interval_s = health_interval_s
        self._rng = rng if rng is not None else random.Random()
        self._target = "the server"
        self._submit = "the upload"
        self._version = "the version check"
        self.state = HealthState.OFFLINE
        """The current state."""
        self.reason = "connecting"
        """One line for a person: why the state is what it is."""
        self.pause_kind: PauseKind | None = None
        """Why it is paused (``None`` unless :attr:`state` is paused)."""
        # Rounds: every hold, and every loss of the server, begins a new one.
        self._round = 0
        self._hold_until = -math.inf
        self._hold_reason = ""
        self._hold_level = 0  # rounds of the current hold run (0: no hold)
        self._trial_out = False
        # Probing.
        self._next_probe_at = -math.inf
        self._probe_failures = 0
        self._strikes = 0  # losses of the server without an upload getting through
        # Asking a server that refused us again: when, and how many pauses in a row.
        self._paused_probe_at = math.inf
        self._pauses = 0
        # The outage: since when, which reports failed in it, and the last recovery's.
        self._outage_since: float | None = None
        self._failed_in_outage: list[str] = []
        self._released_last: set[str] = set()
        self._recovered: list[str] = []

    # --- reading -------------------------------------------------------------------------

    @property
    def hold_until(self) -> float:
        """Until when new uploads wait (``-inf`` when no hold runs)."""
        return self._hold_until

    @property
    def hold_reason(self) -> str:
        """What the server answered that began the hold."""
        return self._hold_reason

    @property
    def outage_since(self) -> float | None:
        """When the running outage began (``None``: none runs); see :class:`OutageLog
        <pywats.upload.status.OutageLog>` for what the log makes of it."""
        return self._outage_since

    @property
    def probe_failed(self) -> bool:
        """Whether the probe failed since the server was last seen: the server is gone,
        not just one answer lost."""
        return self._probe_failures > 0

    @property
    def next_probe_at(self) -> float:
        """When the probe runs next (while online or offline)."""
        return self._next_probe_at

    def describe(self, now: float) -> str:
        """:attr:`reason`, with how long a hold or the wait for the next probe has left."""
        if self.state is HealthState.ONLINE and now < self._hold_until:
            return f"{self._hold_reason}; new uploads wait {self._hold_until - now:.0f} s"
        if self.state is HealthState.ONLINE and self._trial_out:
            return f"{self._hold_reason}; trying one upload"
        if self.state is HealthState.OFFLINE and now < self._next_probe_at:
            return f"{self.reason}; next check in {self._next_probe_at - now:.0f} s"
        return self.reason

    # --- session and operator ------------------------------------------------------------

    def connect(
        self, now: float, target: str, *, submit_url: str = "", version_url: str = ""
    ) -> None:
        """A new session with server ``target``: offline, probe now. An operator's pause
        stays. The URLs are named in the reason when they look wrong."""
        self._target = target
        self._submit = f"POST {submit_url}".strip()
        self._version = f"GET {version_url}".strip()
        self._round += 1
        self._hold_until, self._hold_level, self._trial_out = -math.inf, 0, False
        self._probe_failures = self._strikes = self._pauses = 0
        self._next_probe_at = now
        if self.pause_kind is PauseKind.OPERATOR:
            self._set(HealthState.PAUSED, "paused by the operator")
        else:
            self.pause_kind = None
            self._set(HealthState.OFFLINE, f"connecting to {target}")

    def pause(self, kind: PauseKind, reason: str, now: float | None = None) -> None:
        """Stop uploading until :meth:`resume` (or a new session, except for the operator).

        A refusal (:attr:`PauseKind.AUTH`, :attr:`PauseKind.URL`) paused at ``now`` is
        asked again by the probe, with backoff (see the module docstring).
        """
        self.pause_kind = kind
        self._round += 1
        self._trial_out = False
        self._paused_probe_at = math.inf
        if now is not None and kind in _ASKED_AGAIN:
            self._pauses += 1
            self._paused_probe_at = now + delay(
                None,
                self._pauses,
                self._rng,
                base_s=self._base_s,
                cap_s=defaults.PAUSED_PROBE_MAX_S,
            )
        self._set(HealthState.PAUSED, reason)

    def resume(self, now: float) -> PauseKind | None:
        """End a pause; the probe checks the server now. Returns the pause kind ended.

        Offline, it only makes the probe run now.
        """
        kind, self.pause_kind = self.pause_kind, None
        self._pauses = 0
        if self.state is HealthState.PAUSED:
            self._round += 1
            self._hold_until, self._hold_level = -math.inf, 0
            self._next_probe_at = now
            self._set(HealthState.OFFLINE, f"resumed; checking {self._target}")
        elif self.state is HealthState.OFFLINE:
            self._next_probe_at = now
        return kind

    # --- dispatching ---------------------------------------------------------------------

    def dispatch(self, now: float, free: int) -> UploadNow | WaitUntil | Idle:
        """What the dispatcher may do now with ``free`` idle workers."""
        if self.state is HealthState.PAUSED:
            return Idle(self.reason)
        if self.state is HealthState.OFFLINE:
            return Idle("waiting for the probe")
        if now < self._hold_until:
            return WaitUntil(self._hold_until)
        if self._trial_out:
            return Idle("waiting for the trial upload")
        if free < 1:
            return Idle("every worker is busy")
        if self._hold_level:
            return UploadNow(1, trial=True)
        return UploadNow(free)

    def started(self, trial: bool = False) -> Ticket:
        """An upload starts now (``trial``: the one :meth:`dispatch` allowed after a hold)."""
        if trial:
            self._trial_out = True
        return Ticket(self._round, trial)

    def answered(
        self, now: float, ticket: Ticket, report_id: str, attempts: int, answer: Answer
    ) -> Fate:
        """An upload's answer: what happens to the report (and, inside, to uploading)."""
        if ticket.trial:
            self._trial_out = False
        kind = answer.kind
        current = ticket.round == self._round
        if kind is AnswerKind.DONE:
            self._got_through(now, ticket)
            return Done()
        if kind is AnswerKind.REJECTED:
            # The server read the report and said no: it works.
            self._got_through(now, ticket)
            return Fail(answer.error)
        if kind is AnswerKind.AUTH:
            if self.state is not HealthState.PAUSED:
                self.pause(PauseKind.AUTH, _token_refused(answer), now)
            return Release()
        if kind is AnswerKind.NOT_FOUND:
            if self.state is not HealthState.PAUSED:
                self.pause(PauseKind.URL, _url_wrong(self._submit, answer), now)
            return Release()
        # Transient: the report waits its own backoff; the outage may end sooner.
        self._failed_in_outage.append(report_id)
        wait = delay(
            answer.retry_after_s,
            attempts,
            self._rng,
            base_s=self._base_s,
            cap_s=self._report_cap_s,
        )
        if kind is AnswerKind.NO_ANSWER:
            if current and self.state is HealthState.ONLINE:
                self._lost(now, answer.error)
        elif self.state is HealthState.ONLINE:
            if current:
                self._hold(now, answer)
            elif answer.retry_after_s is not None:
                # Not a new round, but the server asked for a longer pause: obey it.
                self._hold_until = max(self._hold_until, now + answer.retry_after_s)
        return RetryIn(wait)

    def take_recovered(self) -> list[str]:
        """Reports to make due now because the outage they waited out is over (once)."""
        out, self._recovered = self._recovered, []
        return out

    def probe_now(self, now: float) -> None:
        """Run the probe now (an operator's "test the connection"), unless paused."""
        if self.state is not HealthState.PAUSED:
            self._next_probe_at = now

    # --- probing -------------------------------------------------------------------------

    def next_probe(self) -> ProbeAt | Idle:
        """When the probe should run next."""
        if self.state is HealthState.PAUSED:
            if self.pause_kind in _ASKED_AGAIN:
                return ProbeAt(self._paused_probe_at)
            return Idle(self.reason)
        return ProbeAt(self._next_probe_at)

    def probe_answered(self, now: float, answer: Answer, version: str | None = None) -> None:
        """The probe's answer (``version``: what the server said its version is)."""
        if self.state is HealthState.PAUSED:
            if self.pause_kind in _ASKED_AGAIN and now >= self._paused_probe_at:
                self._asked_again(now, answer)
            # Otherwise paused while the probe was out: its answer is stale.
            return
        kind = answer.kind
        if kind is AnswerKind.DONE:
            self._probe_failures = 0
            self._next_probe_at = now + self._health_interval_s
            if self.state is HealthState.OFFLINE:
                self._round += 1
                self._end_outage()
                shown = f" (WATS {version})" if version else ""
                self._set(HealthState.ONLINE, f"connected to {self._target}{shown}")
            return
        if kind is AnswerKind.AUTH:
            self.pause(PauseKind.AUTH, _token_refused(answer), now)
            return
        if kind is AnswerKind.NOT_FOUND:
            self.pause(PauseKind.URL, _url_wrong(self._version, answer), now)
            return
        self._probe_failures += 1
        self._begin_outage(now)
        wait = delay(
            answer.retry_after_s,
            self._probe_failures + self._strikes,
            self._rng,
            base_s=self._base_s,
            cap_s=self._outage_cap(now),
        )
        self._next_probe_at = now + wait
        if self.state is HealthState.ONLINE:
            self._round += 1
            self._hold_until, self._hold_level, self._trial_out = -math.inf, 0, False
        self._set(HealthState.OFFLINE, f"cannot reach {self._target}: {answer.error}")

    # --- inside --------------------------------------------------------------------------

    def _asked_again(self, now: float, answer: Answer) -> None:
        # The probe asked a server that refused us. Refused again (or not reached): ask
        # later, with a longer wait. Answered: one trial upload decides, because a
        # version check may answer without looking at the token.
        kind, reason = self.pause_kind, self.reason
        assert kind is not None
        if answer.kind in (AnswerKind.DONE, AnswerKind.REJECTED):
            self.pause_kind = None
            self._round += 1
            self._hold_until, self._hold_level, self._trial_out = -math.inf, 1, False
            self._hold_reason = "the server answers again"
            self._next_probe_at = now + self._health_interval_s
            self._set(HealthState.ONLINE, f"the server answers again; trying one upload ({reason})")
            return
        if answer.kind is AnswerKind.AUTH:
            reason = _token_refused(answer)
        elif answer.kind is AnswerKind.NOT_FOUND:
            reason = _url_wrong(self._version, answer)
        self.pause(kind, reason, now)

    def _set(self, state: HealthState, reason: str) -> None:
        self.state = state
        self.reason = reason

    def _outage_cap(self, now: float) -> float:
        since = now if self._outage_since is None else self._outage_since
        grown = (now - since) * OUTAGE_CAP_FRACTION
        return min(self._probe_max_s, max(MIN_OUTAGE_CAP_S, grown))

    def _begin_outage(self, now: float) -> None:
        if self._outage_since is None:
            self._outage_since = now

    def _end_outage(self) -> None:
        failed = list(dict.fromkeys(self._failed_in_outage))
        if failed and failed[0] in self._released_last:
            # It opened the last outage too: it is this report, not the server.
            failed = failed[1:]
        self._recovered.extend(failed)
        self._released_last = set(failed)
        self._failed_in_outage.clear()
        self._outage_since = None
        self._hold_until, self._hold_level = -math.inf, 0

    def _got_through(self, now: float, ticket: Ticket) -> None:
        if self.state is HealthState.OFFLINE:
            # An upload got through while the probe waits out its backoff: check now.
            self._next_probe_at = now
            return
        if self.state is not HealthState.ONLINE:
            return
        if self._hold_level and not ticket.trial:
            # Sent before the hold began: says nothing about the server now.
            return
        self._strikes = self._pauses = 0
        if self._outage_since is not None or self._failed_in_outage:
            self._end_outage()
        elif ticket.trial:
            self._hold_level = 0  # the trial after a refusal: the server takes reports

    def _hold(self, now: float, answer: Answer) -> None:
        self._begin_outage(now)
        self._hold_level += 1
        self._round += 1
        wait = delay(
            answer.retry_after_s,
            self._hold_level,
            self._rng,
            base_s=self._base_s,
            cap_s=self._outage_cap(now),
        )
        self._hold_until = now + wait
        self._hold_reason = f"the server answered {answer.error}"

    def _lost(self, now: float, error: str) -> None:
        # No answer at all: offline, and the probe finds out when the server is back.
        # Losing it again without an upload getting through in between backs the first
        # probe off, so a server that answers the probe but never an upload is not
        # hammered.
        self._begin_outage(now)
        self._round += 1
        self._strikes += 1
        self._probe_failures = 0
        self._hold_until, self._hold_level, self._trial_out = -math.inf, 0, False
        wait = 0.0
        if self._strikes > 1:
            wait = delay(
                None,
                self._strikes - 1,
                self._rng,
                base_s=self._base_s,
                cap_s=self._outage_cap(now),
            )
        self._next_probe_at = now + wait
        self._set(HealthState.OFFLINE, f"cannot reach {self._target}: {error}")


_ASKED_AGAIN = frozenset({PauseKind.AUTH, PauseKind.URL})
"""Pauses the probe asks about again (the operator's is the operator's to end)."""


_ASKED_AGAIN_TEXT = (
    "the server is also asked again on its own, at least every"
    f" {defaults.PAUSED_PROBE_MAX_S / 60:g} minutes"
)


def _token_refused(answer: Answer) -> str:
    return (
        f"the server refused the token ({answer.error}); fix the token and run"
        f" `pywats config reload` ({_ASKED_AGAIN_TEXT})"
    )


def _url_wrong(request: str, answer: Answer) -> str:
    return (
        f"the server URL looks wrong: {request} answered {answer.error}; check the URL and"
        f" run `pywats config reload` ({_ASKED_AGAIN_TEXT})"
    )
