"""When to try an upload again: the retry schedule as pure functions.

Reports are durable in the local queue, so a transient failure costs nothing but time:
transient failures are retried forever, with exponential backoff and *full jitter*
(``delay = uniform(0, min(cap, base * 2 ** (attempt - 1)))``). Full jitter spreads the
retries of many stations (and many workers) that lost the server at the same moment, so
they do not come back as one synchronised wave; AWS measured it as the variant with the
least total work ("Exponential Backoff And Jitter", AWS Architecture Blog). The cap
(300 s by default) bounds how stale a station's queue gets after the server returns.

A server that says when to come back (``Retry-After`` on 429/503) knows better than our
guess, so its value replaces the backoff, clamped to at most an hour so a broken header
cannot park the queue for days.

Nothing here sleeps or reads a clock: callers pass ``now`` and a ``random.Random``, which
keeps the schedule deterministic under test.
"""

from __future__ import annotations

import enum
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from pywats import defaults

DEFAULT_BASE_S = defaults.RETRY_BASE_S
"""Upper bound of the first retry's delay, in seconds."""

DEFAULT_CAP_S = defaults.RETRY_MAX_S
"""Largest upper bound any retry delay can have, in seconds."""

RETRY_AFTER_MAX_S = defaults.RETRY_AFTER_MAX_S
"""Longest ``Retry-After`` we obey; larger values are clamped to this."""

# 2.0 ** 1023 is the largest power of two a float holds; beyond it the bound is the cap
# anyway, and a station that has retried for a year must not crash on OverflowError.
_MAX_EXPONENT = 1023


class Outcome(enum.Enum):
    """What an upload's answer means for the report and for the uploader."""

    DONE = "done"
    """2xx: the server has the report; it leaves the queue."""

    PERMANENT = "permanent"
    """The server rejected this report (400, 413, 422, other 4xx): resending the same bytes
    will fail the same way, so the report goes to ``failed`` with the server's message."""

    AUTH = "auth"
    """401/403: our credentials are wrong, not the report. Pause uploading and say so; the
    report stays pending."""

    NOT_FOUND = "not_found"
    """404: the upload endpoint is missing, so the server URL (or the server) is wrong, not
    the report. Pause like AUTH; failing every report would empty a healthy queue."""

    TRANSIENT = "transient"
    """No answer (connection error, timeout: status ``None``), 408, 429, 5xx, or a status
    we do not understand: try again later with backoff, forever."""


def classify(status: int | None) -> Outcome:
    """Map an HTTP status (``None`` for no response at all) to an :class:`Outcome`.

    Unknown classes (1xx, 3xx, anything outside 100..599) are TRANSIENT on purpose: the
    only outcome that discards the retry loop for a report is a deliberate 4xx rejection,
    so a status we cannot interpret never costs a report.
    """
    if status is None:
        return Outcome.TRANSIENT
    if 200 <= status <= 299:
        return Outcome.DONE
    if status in (401, 403):
        return Outcome.AUTH
    if status == 404:
        return Outcome.NOT_FOUND
    if status in (408, 429):
        return Outcome.TRANSIENT
    if 400 <= status <= 499:
        # 400, 413 and 422 are the documented rejections; any other 4xx is also the
        # server refusing this request, so it is treated the same way.
        return Outcome.PERMANENT
    return Outcome.TRANSIENT


def backoff_bound(
    attempt: int, *, base_s: float = DEFAULT_BASE_S, cap_s: float = DEFAULT_CAP_S
) -> float:
    """The upper bound of the delay after failed attempt number ``attempt`` (1-based).

    ``min(cap_s, base_s * 2 ** (attempt - 1))``; it never overflows, however many attempts.

    Raises:
        ValueError: ``attempt`` is less than 1 or ``base_s``/``cap_s`` is negative.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    if base_s < 0 or cap_s < 0:
        raise ValueError(f"base_s and cap_s must be >= 0, got {base_s}, {cap_s}")
    exponent = min(attempt - 1, _MAX_EXPONENT)
    return min(cap_s, base_s * 2.0**exponent)


def backoff_delay(
    attempt: int,
    rng: random.Random,
    *,
    base_s: float = DEFAULT_BASE_S,
    cap_s: float = DEFAULT_CAP_S,
) -> float:
    """Full-jitter delay after failed attempt number ``attempt`` (1-based), in seconds.

    Uniform in ``[0, backoff_bound(attempt)]``. ``rng`` is injected so tests (and a
    deterministic simulation) can seed it.
    """
    return rng.uniform(0.0, backoff_bound(attempt, base_s=base_s, cap_s=cap_s))


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header, or ``None`` to ignore it.

    Both forms of RFC 9110 section 10.2.3 are accepted: delta-seconds (``"120"``) and an
    HTTP-date (``"Wed, 21 Oct 2015 07:28:00 GMT"``), the latter measured from ``now``
    (naive datetimes are taken as UTC). The result is clamped to ``[0, 3600]``: a date in
    the past means "now", and no server gets to park the queue for longer than an hour.
    Anything else (empty, negative, fractional, unparsable) returns ``None``, so the normal
    backoff applies instead of an error: a bad header must never stop uploads.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return _clamp_retry_after(float(int(text)))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return _clamp_retry_after((when - now).total_seconds())


def _clamp_retry_after(seconds: float) -> float:
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)


def delay(
    asked_s: float | None,
    attempt: int,
    rng: random.Random,
    *,
    base_s: float = DEFAULT_BASE_S,
    cap_s: float = DEFAULT_CAP_S,
) -> float:
    """The one rule that turns a transient answer into a delay, in seconds.

    The server's ``Retry-After`` (``asked_s``, from :func:`parse_retry_after`) wins and
    is used as it is: the server asked for exactly that pause, and coming back earlier
    only earns another 429. Otherwise the full-jitter backoff after failure number
    ``attempt`` (1-based) applies.
    """
    if asked_s is not None:
        return asked_s
    return backoff_delay(max(1, attempt), rng, base_s=base_s, cap_s=cap_s)
