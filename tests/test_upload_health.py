"""The upload health machine, pure: exact times in, decisions out (no trio, no I/O).

Jitter is pinned with an RNG whose ``uniform(a, b)`` returns ``b`` (the worst case), so
every delay is its bound and every time below is exact.
"""

from __future__ import annotations

import heapq
import logging
import random

import pytest

from pywats.upload.health import (
    MIN_OUTAGE_CAP_S,
    Answer,
    Done,
    Fail,
    HealthState,
    Idle,
    PauseKind,
    ProbeAt,
    Release,
    RetryIn,
    UploadHealth,
    UploadNow,
    WaitUntil,
)
from pywats.upload.status import OutageLine, OutageLog

OK = Answer(200)
BUSY = Answer(500, "500 Internal Server Error: boom")
REFUSED = Answer(None, "cannot connect: connection refused")


class WorstCase(random.Random):
    """Every full-jitter draw is its upper bound."""

    def uniform(self, a: float, b: float) -> float:
        return b


def online(now: float = 0.0, **kw: float) -> UploadHealth:
    health = UploadHealth(rng=WorstCase(), **kw)
    health.connect(
        now, "https://wats.example.com", submit_url="https://wats.example.com/api/Report/WSJF"
    )
    health.probe_answered(now, OK, "24.1")
    assert health.state is HealthState.ONLINE
    return health


def test_in_flight_failures_count_as_one_round() -> None:
    health = online()
    tickets = [health.started() for _ in range(5)]
    # Five uploads fail together, 1 ms apart: one outage, one round.
    fates = [health.answered(10.0 + i / 1000, t, f"r{i}", 1, BUSY) for i, t in enumerate(tickets)]
    assert fates == [RetryIn(1.0)] * 5  # each report: its own first backoff
    assert health.hold_until == 11.0  # the first answer's round: bound 1 s, not escalated
    assert health.dispatch(10.5, 5) == WaitUntil(11.0)
    assert "the server answered 500" in health.describe(10.5)


def test_one_trial_goes_first_and_its_success_releases_everything() -> None:
    health = online()
    tickets = [health.started() for _ in range(3)]
    for i, t in enumerate(tickets):
        health.answered(10.0, t, f"r{i}", 1, BUSY)
    assert health.dispatch(11.0, 5) == UploadNow(1, trial=True)
    trial = health.started(trial=True)
    assert health.dispatch(11.0, 4) == Idle("waiting for the trial upload")
    assert health.answered(11.2, trial, "r9", 1, OK) == Done()
    assert health.dispatch(11.2, 5) == UploadNow(5)
    # The reports that waited out the outage are due again at once, once.
    assert health.take_recovered() == ["r0", "r1", "r2"]
    assert health.take_recovered() == []


def test_a_failed_trial_begins_the_next_round_with_a_longer_hold() -> None:
    health = online()
    late = health.started()  # in flight before any hold, answers last
    health.answered(10.0, health.started(), "a", 1, BUSY)  # round 1: 1 s
    assert health.hold_until == 11.0
    trial = health.started(trial=True)
    health.answered(11.0, trial, "b", 1, BUSY)  # round 2: min(2 s, cap 1.5 s)
    assert health.hold_until == 11.0 + MIN_OUTAGE_CAP_S
    # A late answer from before the hold changes nothing: not a round of its own.
    assert health.answered(11.2, late, "c", 1, BUSY) == RetryIn(1.0)
    assert health.hold_until == 12.5
    assert health.dispatch(12.5, 5) == UploadNow(1, trial=True)


def test_the_hold_cap_grows_with_the_outage_up_to_probe_max() -> None:
    health = online(probe_max_s=60.0)
    health.answered(0.0, health.started(), "a", 1, BUSY)  # the outage begins at 0
    holds: list[tuple[float, float]] = []
    for _ in range(40):
        now = health.hold_until
        health.answered(now, health.started(trial=True), "a", 1, BUSY)
        holds.append((now, health.hold_until - now))
    # Worst case: a quarter of the outage so far (at least 1.5 s), never above 60 s.
    assert holds[0] == (1.0, 1.5)
    for now, hold in holds:
        assert hold == min(60.0, max(MIN_OUTAGE_CAP_S, 0.25 * now))
    assert holds[-1][1] == 60.0


def test_retry_after_is_obeyed_even_from_an_upload_sent_before_the_hold() -> None:
    health = online()
    first, second = health.started(), health.started()
    assert health.answered(5.0, first, "a", 1, Answer(429, "429", 7.0)) == RetryIn(7.0)
    assert health.hold_until == 12.0
    health.answered(5.1, second, "b", 1, Answer(503, "503", 30.0))
    assert health.hold_until == 35.1


def test_no_answer_goes_offline_and_the_probe_decides() -> None:
    health = online()
    tickets = [health.started() for _ in range(3)]
    for i, t in enumerate(tickets):
        assert health.answered(20.0, t, f"r{i}", 2, REFUSED) == RetryIn(2.0)
    assert health.state is HealthState.OFFLINE
    assert health.next_probe() == ProbeAt(20.0)  # first loss: probe at once
    assert health.dispatch(20.0, 5) == Idle("waiting for the probe")
    health.probe_answered(20.0, REFUSED)
    assert health.next_probe() == ProbeAt(21.5)  # failure 1 after strike 1: 2 s, cap 1.5 s
    health.probe_answered(21.0, OK, "24.1")
    assert health.state is HealthState.ONLINE
    assert health.reason == "connected to https://wats.example.com (WATS 24.1)"
    assert health.take_recovered() == ["r0", "r1", "r2"]


def test_losing_the_server_again_backs_off_the_first_probe() -> None:
    health = online()
    health.answered(1.0, health.started(), "a", 1, REFUSED)
    health.probe_answered(1.0, OK)
    health.answered(2.0, health.started(), "a", 2, REFUSED)  # no upload got through
    assert health.next_probe() == ProbeAt(3.0)  # strike 2: bound 1 s


def test_token_refused_pauses_and_releases_until_resumed() -> None:
    health = online()
    t1, t2 = health.started(), health.started()
    assert health.answered(3.0, t1, "a", 1, Answer(401, "401 Unauthorized")) == Release()
    assert health.answered(3.0, t2, "b", 1, Answer(401, "401 Unauthorized")) == Release()
    assert health.state is HealthState.PAUSED
    assert health.pause_kind is PauseKind.AUTH
    assert "refused the token" in health.reason
    assert "pywats config reload" in health.reason  # a command that exists
    assert isinstance(health.dispatch(3.0, 5), Idle)
    assert health.next_probe() == ProbeAt(4.0)  # asked again: first pause, bound 1 s
    assert health.resume(3.5) is PauseKind.AUTH
    assert health.state is HealthState.OFFLINE
    assert health.next_probe() == ProbeAt(3.5)


def test_a_refused_token_is_asked_again_with_backoff_up_to_five_minutes() -> None:
    health = online()
    health.answered(0.0, health.started(), "a", 1, Answer(401, "401 Unauthorized"))
    at, waits = 0.0, []
    for _ in range(12):
        probe = health.next_probe()
        assert isinstance(probe, ProbeAt)
        waits.append(probe.at - at)
        at = probe.at
        health.probe_answered(at, Answer(401, "401 Unauthorized"))
        assert health.state is HealthState.PAUSED
        assert isinstance(health.dispatch(at, 5), Idle)
    # Doubling from 1 s, capped at 5 minutes: one request per 5 minutes at most, for ever.
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]


def test_the_server_accepting_again_resumes_after_one_trial_upload() -> None:
    health = online()
    health.answered(0.0, health.started(), "a", 1, Answer(401, "401 Unauthorized"))
    health.probe_answered(1.0, Answer(401, "401 Unauthorized"))  # next ask at 3.0
    health.probe_answered(3.0, OK, "24.1")  # the token was fixed on the server
    assert health.state is HealthState.ONLINE
    assert health.dispatch(3.0, 5) == UploadNow(1, trial=True)  # one upload decides
    trial = health.started(trial=True)
    assert isinstance(health.dispatch(3.0, 5), Idle)  # waiting for the trial
    assert health.answered(3.1, trial, "a", 1, OK) == Done()
    assert health.dispatch(3.1, 5) == UploadNow(5)
    # The next refusal starts the backoff from the beginning again.
    health.answered(4.0, health.started(), "b", 1, Answer(403, "403 Forbidden"))
    assert health.next_probe() == ProbeAt(5.0)


def test_a_version_check_that_ignores_the_token_does_not_resume_uploads() -> None:
    # The probe answers 200 without looking at the token; the trial is refused again:
    # paused again with a longer wait, not a loop of uploads.
    health = online()
    health.answered(0.0, health.started(), "a", 1, Answer(401, "401 Unauthorized"))
    at = 1.0
    for bound in (2.0, 4.0, 8.0):
        health.probe_answered(at, OK)
        trial = health.started(trial=True)
        assert health.answered(at, trial, "a", 1, Answer(401, "401 Unauthorized")) == Release()
        assert health.state is HealthState.PAUSED
        assert health.next_probe() == ProbeAt(at + bound)
        at += bound


def test_a_stale_probe_answer_does_not_end_a_refusal() -> None:
    health = online()
    health.answered(0.0, health.started(), "a", 1, Answer(401, "401 Unauthorized"))
    health.probe_answered(0.5, OK)  # sent before the pause; the ask is due at 1.0
    assert health.state is HealthState.PAUSED


def test_the_operators_pause_is_not_probed() -> None:
    health = online()
    health.pause(PauseKind.OPERATOR, "paused by the operator", 1.0)
    assert isinstance(health.next_probe(), Idle)


def test_404_names_the_url() -> None:
    health = online()
    health.answered(1.0, health.started(), "a", 1, Answer(404, "404 Not Found"))
    assert health.pause_kind is PauseKind.URL
    assert "POST https://wats.example.com/api/Report/WSJF answered 404" in health.reason


def test_a_rejection_fails_the_report_and_proves_the_server_works() -> None:
    health = online()
    health.answered(1.0, health.started(), "a", 1, BUSY)
    trial = health.started(trial=True)
    assert health.answered(2.0, trial, "b", 1, Answer(400, "400: bad sn")) == Fail("400: bad sn")
    assert health.dispatch(2.0, 5) == UploadNow(5)
    assert health.take_recovered() == ["a"]


def test_a_report_that_opens_every_outage_keeps_its_own_backoff() -> None:
    health = online()
    for now in (1.0, 10.0):
        health.answered(now, health.started(), "poison", 3, BUSY)
        trial = health.started(trial=True)
        health.answered(health.hold_until, trial, f"ok{now}", 1, OK)
    # Recovered after the first outage; the second time it is the report, not the server.
    assert health.take_recovered() == ["poison"]


def test_operator_pause_survives_connect() -> None:
    health = online()
    health.pause(PauseKind.OPERATOR, "paused by the operator")
    health.connect(5.0, "https://other.example.com")
    assert health.state is HealthState.PAUSED
    assert health.resume(6.0) is PauseKind.OPERATOR
    assert health.state is HealthState.OFFLINE


# --- the whole: a simulated burst of 500s with uploads in flight ------------------------


def simulate_outage(seed: int, *, outage_s: float = 5.0, reports: int = 200) -> float:
    """Uploads against a server that answers 500 until ``outage_s``, then 2xx.

    A discrete-event run of the health machine with 5 workers, 10 ms per upload, and a
    queue whose reports have their own due times (as the store keeps them). Returns
    the time after recovery at which the last report was accepted.
    """
    health = UploadHealth(rng=random.Random(seed))
    health.connect(0.0, "s")
    health.probe_answered(0.0, OK)
    due = {f"r{i}": 0.0 for i in range(reports)}
    attempts = dict.fromkeys(due, 0)
    in_flight: list[tuple[float, str, object]] = []
    now, done_at = 0.0, 0.0
    for _ in range(100_000):
        for report_id in health.take_recovered():
            if report_id in due:
                due[report_id] = min(due[report_id], now)
        decision = health.dispatch(now, 5 - len(in_flight))
        ready = sorted(
            (t, r) for r, t in due.items() if t <= now and r not in {x[1] for x in in_flight}
        )
        if isinstance(decision, UploadNow) and ready:
            for _, report_id in ready[: decision.slots]:
                attempts[report_id] += 1
                ticket = health.started(decision.trial)
                heapq.heappush(in_flight, (now + 0.01, report_id, ticket))
            continue
        if not due and not in_flight:
            return done_at - outage_s
        wakes = [x[0] for x in in_flight[:1]]
        if isinstance(decision, WaitUntil):
            wakes.append(decision.at)
        if isinstance(decision, UploadNow):
            later = [t for t in due.values() if t > now]
            wakes.extend(later[:1] if not later else [min(later)])
        now = max(now, min(wakes))
        while in_flight and in_flight[0][0] <= now:
            at, report_id, ticket = heapq.heappop(in_flight)
            answer = BUSY if at < outage_s else OK
            fate = health.answered(at, ticket, report_id, attempts[report_id], answer)  # type: ignore[arg-type]
            if isinstance(fate, Done):
                del due[report_id]
                done_at = at
            else:
                assert isinstance(fate, RetryIn)
                due[report_id] = at + fate.delay_s
    raise AssertionError("the simulation did not finish")


@pytest.mark.parametrize("seed", range(20))
def test_every_report_is_up_within_2_s_of_a_5_s_burst_of_500s(seed: int) -> None:
    assert simulate_outage(seed) <= 2.0


# --- the outage log (issue 12 item 8) ------------------------------------------------------


def test_an_outage_is_one_warning_when_it_starts_and_one_line_when_it_ends() -> None:
    outages = OutageLog(quiet_s=60)
    assert outages.offline(100.0, confirmed=False) == OutageLine(logging.WARNING)
    # More changes while offline (the probe failing, other causes): no new start line.
    assert outages.offline(101.0, confirmed=True) == OutageLine(logging.DEBUG)
    assert outages.offline(105.0, confirmed=True) == OutageLine(logging.DEBUG)
    assert outages.online(112.5) == OutageLine(logging.INFO, "; was offline 12.5 s")
    assert outages.online(113.0) is None  # online without an outage: not its business


def test_answers_lost_again_and_again_are_one_pair_of_lines_per_quiet_time() -> None:
    # A proxy that drops one answer in three: offline, the probe answers at once, online,
    # and again 50 ms later. Before the fix, every lost answer was a WARNING/INFO pair.
    outages = OutageLog(quiet_s=60)
    lines: list[OutageLine | None] = []
    for tick in range(1000):  # 1,000 lost answers in 100 s
        now = tick / 10
        lines.append(outages.offline(now, confirmed=False))
        lines.append(outages.online(now + 0.005))
    logged = [line for line in lines if line is not None and line.level > logging.DEBUG]
    assert [line.level for line in logged] == [
        logging.WARNING,
        logging.INFO,
        logging.WARNING,
        logging.INFO,
    ]
    assert logged[2].note == " (and 600 short outage(s) in the 60 s before, each over at once)"


def test_a_relapse_the_probe_confirms_is_logged_at_once() -> None:
    # Right after an outage ended, the server goes away for real: the probe fails too,
    # so the station engineer must hear of it now, not a minute later.
    outages = OutageLog(quiet_s=60)
    outages.offline(0.0, confirmed=False)
    outages.online(0.01)
    assert outages.offline(5.0, confirmed=False).level == logging.DEBUG
    assert outages.offline(5.2, confirmed=True).level == logging.WARNING
    assert outages.offline(9.0, confirmed=True).level == logging.DEBUG
    assert outages.online(30.0) == OutageLine(logging.INFO, "; was offline 25.0 s")
