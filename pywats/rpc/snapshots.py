"""The last ``service.status`` answer, kept encoded for a few milliseconds: :class:`StatusCache`.

A client that polls the status thousands of times a second (a dashboard, a benchmark, ten
TUIs) would otherwise have the service build and encode the same snapshot thousands of
times. An answer is reused while it is younger than ``max_age_s`` *and* nothing has
happened since: no event was published (the hub's sequence number is unchanged) and no
other method was called (:meth:`StatusCache.clear`). So a change the service announces
is in the next status at once; what changes without an event (the age of the oldest
report, the uptime, the clock) is at most ``max_age_s`` old. Pure: the caller passes the
time and the sequence number.
"""

from __future__ import annotations

import attrs

from pywats import defaults
from pywats.rpc.codec import Encoded

__all__ = ["StatusCache"]


@attrs.define
class StatusCache:
    """One encoded status answer, with the sequence number and time it was made at."""

    max_age_s: float = defaults.STATUS_CACHE_S
    _seq: int = -1
    _made_at: float = 0.0
    _text: Encoded | None = None

    def get(self, seq: int, now: float) -> Encoded | None:
        """The answer made at sequence number ``seq`` less than ``max_age_s`` ago, or None."""
        if self._text is None or seq != self._seq or now - self._made_at >= self.max_age_s:
            return None
        return self._text

    def put(self, seq: int, now: float, text: Encoded) -> None:
        """Keep ``text``, made at sequence number ``seq`` and time ``now``."""
        self._seq, self._made_at, self._text = seq, now, text

    def clear(self) -> None:
        """Forget the answer (another method was called: it may have changed something)."""
        self._text = None
