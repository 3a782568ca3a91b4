"""The conversion memory budget: what a file costs to convert, and who may hold how much.

Converting a file takes many times its size in memory (the parsed document, the report
objects, the WSJF text made from them), and the converter workers run at once: four
workers on four 40 MB JSON files would take gigabytes. So every file's cost is estimated
before it is read (its size times its converter's factor, measured per format by
``bench/memory.py``), and the workers share one budget (``[convert] memory_budget_mb``):
a batch takes the cost of its files before reading them and gives it back when they are
done; a batch that does not fit waits for the ones holding budget (first come, first
served, so a big file is not overtaken for ever by small ones); a file that could never
fit goes to the error folder unread, saying so.

Everything here is pure (no trio, no I/O): :class:`Ledger` is the accounting, and
:class:`pywats.pipeline.memory.MemoryGate` does the waiting.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Sequence
from typing import Any

import attrs

from pywats import defaults

__all__ = [
    "FACTORS",
    "Ledger",
    "chunk_size",
    "describe_bytes",
    "estimate",
    "factor_of",
    "too_big_reason",
]

FACTORS: dict[str, float] = {
    "pywats.converters.wsjf:WsjfConverter": 12.0,
    "pywats.converters.wsxf:WsxfConverter": 20.0,
    "pywats.converters.wstf:WstfConverter": 28.0,
    "pywats.converters.csv:CsvConverter": 90.0,
    "pywats.converters.spea:SpeaConverter": 22.0,
    "pywats.converters.xjtag:XjtagConverter": 16.0,
    "pywats.converters.atml:AtmlConverter": 16.0,
    "pywats.converters.teststand_xml:TestStandXmlConverter": 16.0,
    "pywats.converters.klippel:KlippelConverter": 10.0,  # of the header and its folder
    "pywats.converters.teradyne_gr228x:GR228XConverter": 34.0,
    "pywats.converters.teradyne_spectrum:SpectrumConverter": 26.0,
    "pywats.converters.i3070:I3070Converter": 34.0,
}
"""Peak memory while converting a big file, as a multiple of its size, per built-in
converter class (``module:Class``): what ``bench/memory.py`` measured, rounded up
(``docs/performance.md``, "Memory per format"). Any other converter (a plugin, a
process converter) costs :data:`pywats.defaults.CONVERT_MEMORY_FACTOR`, unless its class
says otherwise with a ``memory_factor`` attribute (a number > 0)."""


def factor_of(converter: object) -> float:
    """The memory factor of ``converter``: its own ``memory_factor``, the measured one of
    a built-in, else the conservative default."""
    own: Any = getattr(converter, "memory_factor", None)
    if isinstance(own, int | float) and not isinstance(own, bool) and own > 0:
        return float(own)
    cls = type(converter)
    return FACTORS.get(f"{cls.__module__}:{cls.__qualname__}", defaults.CONVERT_MEMORY_FACTOR)


def estimate(converter: object, size: int) -> int:
    """Bytes converting a file of ``size`` bytes with ``converter`` is expected to take."""
    return math.ceil(size * factor_of(converter))


def describe_bytes(count: int) -> str:
    """``count`` bytes for people: ``1.2 GiB``, ``200 MiB``, ``512 KiB``."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= size:
            value = count / size
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{count} bytes"


def too_big_reason(cost: int, total: int) -> str:
    """The sidecar reason of a file whose estimated cost is more than the whole budget."""
    return (
        f"needs about {describe_bytes(cost)} to convert, more than the conversion memory "
        f"budget of {describe_bytes(total)} ([convert] memory_budget_mb); raise it if the "
        "station has the memory"
    )


def chunk_size(sizes: Sequence[int], costs: Sequence[int], batch_bytes: int, total: int) -> int:
    """How many of the files (in order, at least one) one batch takes at a time.

    Files are taken while the batch holds fewer than ``batch_bytes`` bytes (as reading
    does) and while their costs together stay within ``total`` (the whole budget), so a
    batch can always be granted once the budget is free.
    """
    held = cost = taken = 0
    for size, need in zip(sizes, costs, strict=True):
        if taken and (held >= batch_bytes or cost + need > total):
            break
        held += size
        cost += need
        taken += 1
    return max(1, min(taken, len(sizes))) if sizes else 0


@attrs.frozen
class Granted:
    """The cost is held now (give it back with :meth:`Ledger.release`)."""


@attrs.frozen
class Wait:
    """The cost does not fit now: wait until :meth:`Ledger.release` grants it."""

    held: int
    """What the others hold now."""
    ahead: int
    """How many requests were waiting before this one."""


@attrs.frozen
class Never:
    """The cost is more than the whole budget: it can never be granted."""


Decision = Granted | Wait | Never


@attrs.define
class Ledger:
    """Who holds how much of ``total`` bytes, and who waits for it, first come first served.

    A request is granted at once when nobody waits before it and it fits beside what is
    held; otherwise it waits in line. Each release (or withdrawal) grants, in order, the
    waiting requests that now fit, stopping at the first that does not (so a big request
    is not overtaken by smaller ones). A request of no more than ``total`` always gets its
    turn: once everything is given back, the first in line fits.
    """

    total: int
    held: int = 0
    _waiting: deque[tuple[Hashable, int]] = attrs.field(factory=deque, init=False)
    _granted: dict[Hashable, int] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        if self.total <= 0:
            raise ValueError(f"a memory budget must be more than 0 bytes, not {self.total}")

    @property
    def waiting(self) -> int:
        """How many requests wait now."""
        return len(self._waiting)

    def ask(self, key: Hashable, cost: int) -> Decision:
        """Request ``cost`` bytes for ``key`` (a key not holding or waiting already)."""
        if key in self._granted or any(k == key for k, _ in self._waiting):
            raise ValueError(f"{key!r} already holds or waits for budget")
        if cost > self.total:
            return Never()
        if not self._waiting and self.held + cost <= self.total:
            self._grant(key, cost)
            return Granted()
        self._waiting.append((key, cost))
        return Wait(held=self.held, ahead=len(self._waiting) - 1)

    def release(self, key: Hashable) -> list[Hashable]:
        """Give back what ``key`` holds; the keys that are granted because of it, in order."""
        self.held -= self._granted.pop(key)
        return self._advance()

    def withdraw(self, key: Hashable) -> list[Hashable]:
        """``key`` gives up: back what it holds, or out of the line. The keys granted
        because of it (a big request that left may let the ones behind it in)."""
        if key in self._granted:
            return self.release(key)
        self._waiting = deque((k, c) for k, c in self._waiting if k != key)
        return self._advance()

    def holds(self, key: Hashable) -> bool:
        """Whether ``key`` holds budget now (granted, not released)."""
        return key in self._granted

    def _grant(self, key: Hashable, cost: int) -> None:
        self._granted[key] = cost
        self.held += cost

    def _advance(self) -> list[Hashable]:
        granted: list[Hashable] = []
        while self._waiting and self.held + self._waiting[0][1] <= self.total:
            key, cost = self._waiting.popleft()
            self._grant(key, cost)
            granted.append(key)
        return granted
