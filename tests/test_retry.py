"""The retry schedule: exact bounds, jitter spread, Retry-After, and classification.

Timed tests run under trio's ``autojump_clock`` and assert the virtual times at which a
retry loop built on these functions wakes up.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
import trio
import trio.testing

from pywats.retry import (
    DEFAULT_CAP_S,
    RETRY_AFTER_MAX_S,
    Outcome,
    backoff_bound,
    backoff_delay,
    classify,
    delay,
    parse_retry_after,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


# --- bounds ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "bound"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (8, 128.0), (9, 256.0), (10, 300.0), (50, 300.0)],
)
def test_bound_doubles_from_base_up_to_cap(attempt: int, bound: float) -> None:
    assert backoff_bound(attempt) == bound


def test_bound_with_other_parameters() -> None:
    assert backoff_bound(1, base_s=0.5, cap_s=10) == 0.5
    assert backoff_bound(4, base_s=0.5, cap_s=10) == 4.0
    assert backoff_bound(6, base_s=0.5, cap_s=10) == 10.0
    assert backoff_bound(3, base_s=0, cap_s=10) == 0.0


def test_bound_survives_a_year_of_retries() -> None:
    assert backoff_bound(10**6) == DEFAULT_CAP_S
    assert backoff_bound(1025, base_s=4.0, cap_s=60.0) == 60.0


def test_bound_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff_bound(0)
    with pytest.raises(ValueError, match="base_s"):
        backoff_bound(1, base_s=-1)


@pytest.mark.parametrize("seed", range(5))
def test_delay_stays_within_exact_bounds(seed: int) -> None:
    rng = random.Random(seed)
    for attempt in range(1, 40):
        bound = min(300.0, 1.0 * 2 ** (attempt - 1))
        for _ in range(50):
            delay = backoff_delay(attempt, rng)
            assert 0.0 <= delay <= bound


def test_delay_is_capped() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(30, rng, base_s=1, cap_s=20) for _ in range(2000)]
    assert max(delays) <= 20.0
    assert max(delays) > 19.0


def test_seeded_delays_are_reproducible() -> None:
    first = [backoff_delay(n, random.Random(7)) for n in range(1, 12)]
    second = [backoff_delay(n, random.Random(7)) for n in range(1, 12)]
    assert first == second


@pytest.mark.parametrize("attempt", [1, 4, 9, 20])
def test_jitter_spreads_over_the_whole_range(attempt: int) -> None:
    rng = random.Random(attempt)
    bound = backoff_bound(attempt)
    delays = [backoff_delay(attempt, rng) for _ in range(1000)]
    assert min(delays) < 0.1 * bound
    assert max(delays) > 0.9 * bound
    # Full jitter is uniform: every tenth of the range gets a fair share.
    deciles = [0] * 10
    for d in delays:
        deciles[min(int(d / bound * 10), 9)] += 1
    assert min(deciles) > 50


# --- Retry-After -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("0", 0.0),
        ("7", 7.0),
        (" 120 ", 120.0),
        ("3600", 3600.0),
        ("3601", RETRY_AFTER_MAX_S),
        ("99999999999999999999", RETRY_AFTER_MAX_S),
        ("Wed, 01 May 2024 12:00:30 GMT", 30.0),
        ("Wed, 01 May 2024 14:00:00 GMT", RETRY_AFTER_MAX_S),
        ("Wed, 01 May 2024 11:59:00 GMT", 0.0),
        ("Wed, 01 May 2024 14:00:10 +0200", 10.0),
        ("Wed, 01 May 2024 12:01:00 -0000", 60.0),
    ],
)
def test_retry_after_forms_and_clamping(header: str, seconds: float) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


@pytest.mark.parametrize(
    "header",
    [None, "", "   ", "-5", "1.5", "soon", "7 seconds", "Wed, 99 Foo 2024", "٣", "0x10"],
)
def test_garbage_retry_after_is_ignored(header: str | None) -> None:
    assert parse_retry_after(header, now=NOW) is None


def test_retry_after_date_relative_to_naive_now_is_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    assert parse_retry_after("Wed, 01 May 2024 12:00:05 GMT", now=naive) == 5.0
    other_zone = NOW.astimezone(timezone(timedelta(hours=-5)))
    assert parse_retry_after("Wed, 01 May 2024 12:00:05 GMT", now=other_zone) == 5.0


def test_retry_after_wins_over_backoff_even_when_longer_or_shorter() -> None:
    rng = random.Random(3)
    assert delay(parse_retry_after("45", now=NOW), 1, rng) == 45.0
    assert delay(parse_retry_after("2", now=NOW), 12, rng) == 2.0
    assert delay(parse_retry_after("0", now=NOW), 12, rng) == 0.0


def test_delay_is_retry_after_or_full_jitter_bound() -> None:
    class WorstCase(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    assert delay(7.0, 5, WorstCase(), base_s=1, cap_s=300) == 7.0
    assert delay(None, 4, WorstCase(), base_s=1, cap_s=300) == 8.0
    assert delay(None, 20, WorstCase(), base_s=1, cap_s=300) == 300.0


def test_without_usable_retry_after_the_backoff_applies() -> None:
    for header in (None, "garbage"):
        expected = backoff_delay(5, random.Random(11))
        assert delay(parse_retry_after(header, now=NOW), 5, random.Random(11)) == expected


# --- classification --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DONE),
        (201, Outcome.DONE),
        (204, Outcome.DONE),
        (299, Outcome.DONE),
        (400, Outcome.PERMANENT),
        (413, Outcome.PERMANENT),
        (422, Outcome.PERMANENT),
        (409, Outcome.PERMANENT),
        (415, Outcome.PERMANENT),
        (499, Outcome.PERMANENT),
        (401, Outcome.AUTH),
        (403, Outcome.AUTH),
        (404, Outcome.NOT_FOUND),
        (408, Outcome.TRANSIENT),
        (429, Outcome.TRANSIENT),
        (500, Outcome.TRANSIENT),
        (501, Outcome.TRANSIENT),
        (502, Outcome.TRANSIENT),
        (503, Outcome.TRANSIENT),
        (504, Outcome.TRANSIENT),
        (599, Outcome.TRANSIENT),
        (None, Outcome.TRANSIENT),
        (100, Outcome.TRANSIENT),
        (301, Outcome.TRANSIENT),
        (302, Outcome.TRANSIENT),
        (0, Outcome.TRANSIENT),
        (600, Outcome.TRANSIENT),
    ],
)
def test_classify(status: int | None, outcome: Outcome) -> None:
    assert classify(status) is outcome


# --- the schedule in virtual time ------------------------------------------------------


async def test_sleeping_the_computed_delays_lands_on_exact_virtual_times(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    delays = [backoff_delay(n, random.Random(42)) for n in range(1, 13)]
    expected: list[float] = []
    total = start
    for d in delays:
        total += d
        expected.append(total)

    woke: list[float] = []
    for attempt in range(1, 13):
        await trio.sleep(backoff_delay(attempt, random.Random(42)))
        woke.append(trio.current_time())
    assert woke == pytest.approx(expected, abs=1e-9)
    # Twelve retries can never take longer than the sum of their bounds.
    assert woke[-1] - start <= sum(backoff_bound(n) for n in range(1, 13))


async def test_retry_loop_follows_statuses_and_retry_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A minimal upload loop: the answers decide what happens and when."""
    answers: list[tuple[int | None, str | None]] = [
        (503, None),
        (None, None),
        (429, "7"),
        (503, "Wed, 01 May 2024 12:00:30 GMT"),
        (200, None),
    ]
    seed_rng = random.Random(5)
    expected_delays = [
        backoff_delay(1, seed_rng),
        backoff_delay(2, seed_rng),
        7.0,
        30.0,
    ]
    rng = random.Random(5)
    start = trio.current_time()
    attempts_at: list[float] = []
    outcome = Outcome.TRANSIENT
    for attempt, (status, header) in enumerate(answers, start=1):
        attempts_at.append(trio.current_time() - start)
        outcome = classify(status)
        if outcome is not Outcome.TRANSIENT:
            break
        await trio.sleep(delay(parse_retry_after(header, now=NOW), attempt, rng))
    assert outcome is Outcome.DONE
    expected_at = [0.0]
    for d in expected_delays:
        expected_at.append(expected_at[-1] + d)
    assert attempts_at == pytest.approx(expected_at, abs=1e-9)
    assert attempts_at[3] - attempts_at[2] == pytest.approx(7.0)
    assert attempts_at[4] - attempts_at[3] == pytest.approx(30.0)


async def test_permanent_rejection_stops_after_one_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    attempts = 0
    for status in (422, 503, 200):
        attempts += 1
        if classify(status) is not Outcome.TRANSIENT:
            break
        await trio.sleep(1)
    assert attempts == 1
    assert trio.current_time() == 0.0
