"""The trio side of the conversion memory budget: workers wait here for their turn.

The accounting is :class:`pywats.pipeline.budget.Ledger` (pure); :class:`MemoryGate`
carries out its decisions: a batch that must wait sleeps on an event of its own until a
release grants it, and every wait ends at once when the pipeline stops
(:meth:`MemoryGate.close`) or the waiting task is cancelled.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

import trio

from pywats import postaction
from pywats.converters.base import Converter
from pywats.pipeline import steps
from pywats.pipeline.budget import Granted, Ledger, Never, Wait

__all__ = ["Hold", "MemoryGate", "sigs"]


class Hold:
    """A batch's share of the budget while it holds one (the ledger's key for it)."""

    __slots__ = ("cost",)

    def __init__(self, cost: int) -> None:
        self.cost = cost


class MemoryGate:
    """One memory budget of ``total`` bytes, shared by the converter workers.

    Call it from trio tasks only (the ledger is not locked).
    """

    def __init__(self, total: int) -> None:
        self._ledger = Ledger(total)
        self._events: dict[Hold, trio.Event] = {}
        self._closed = False
        self.files_waiting = 0
        """Files whose batch waits for budget now."""
        self.files_waited = 0
        """Files that had to wait for budget (each counted once per wait), since start."""

    @property
    def total(self) -> int:
        """The whole budget, in bytes."""
        return self._ledger.total

    @property
    def held(self) -> int:
        """Bytes held by batches now."""
        return self._ledger.held

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (the pipeline stops)."""
        return self._closed

    def fits(self, cost: int) -> bool:
        """Whether a batch of ``cost`` bytes can ever be granted (no more than the total)."""
        return cost <= self._ledger.total

    def waits_now(self, cost: int) -> bool:
        """Whether a batch of ``cost`` bytes asked now would have to wait."""
        return self._ledger.waiting > 0 or self._ledger.held + cost > self._ledger.total

    async def take(self, cost: int, files: int) -> Hold | None:
        """Hold ``cost`` bytes for a batch of ``files`` files, waiting for them if others
        hold too much; None if the gate is (or gets) closed first.

        Give the hold back with :meth:`give_back` once the batch's files are done. On
        cancellation while waiting, nothing is held.

        Raises:
            ValueError: ``cost`` is more than the whole budget (check :meth:`fits`).
        """
        if self._closed:
            return None
        hold = Hold(cost)
        match self._ledger.ask(hold, cost):
            case Granted():
                return hold
            case Never():
                raise ValueError(f"{cost} bytes is more than the whole budget ({self.total})")
            case Wait():
                pass
        event = self._events[hold] = trio.Event()
        self.files_waiting += files
        self.files_waited += files
        try:
            await event.wait()
        except BaseException:
            # Cancelled while waiting (or granted just before): hold nothing, and let the
            # ones behind it in if it was what they waited for.
            self._wake(self._ledger.withdraw(hold))
            raise
        finally:
            self.files_waiting -= files
            self._events.pop(hold, None)
        if self.closed:  # woken by close(), granted or not
            self._wake(self._ledger.withdraw(hold))
            return None
        return hold

    def give_back(self, hold: Hold) -> None:
        """Release ``hold``; the batches waiting that now fit go on."""
        if self._ledger.holds(hold):
            self._wake(self._ledger.release(hold))

    def close(self) -> None:
        """The pipeline stops: every wait ends now (:meth:`take` returns None), and so
        does every later :meth:`take`."""
        self._closed = True
        for event in self._events.values():
            event.set()

    def _wake(self, keys: Sequence[object]) -> None:
        for key in keys:
            event = self._events.get(key)  # type: ignore[call-overload]
            if event is not None:
                event.set()


def sigs(paths: Sequence[Path]) -> list[postaction.FileSig | None]:
    """Each file's signature (its size, before reading it), None when it is gone, not a
    regular file or cannot be looked at (reading it then says which). Run in a thread."""
    out: list[postaction.FileSig | None] = []
    for path in paths:
        try:
            out.append(postaction.file_sig(path))
        except OSError:
            out.append(None)
    return out


def measure(jobs: Sequence[tuple[Path, Converter]]) -> list[tuple[postaction.FileSig | None, int]]:
    """Each file's signature (see :func:`sigs`) and the bytes of the companions its
    converter names for it (a Klippel header's result folder: every regular file in it),
    which are converted with it and so count in its cost. Run in a thread."""
    out: list[tuple[postaction.FileSig | None, int]] = []
    for (path, converter), sig in zip(jobs, sigs([path for path, _ in jobs]), strict=True):
        extra = 0
        if sig is not None:
            for name in steps.companions_quietly(converter, path):
                extra += _bytes_under(path.parent / name)
        out.append((sig, extra))
    return out


def _bytes_under(path: Path) -> int:
    """The bytes of a regular file, or of every regular file under a folder (symlinks not
    followed); 0 for what is missing or cannot be looked at."""
    try:
        info = path.lstat()
    except OSError:
        return 0
    if stat.S_ISREG(info.st_mode):
        return info.st_size
    if not stat.S_ISDIR(info.st_mode):
        return 0
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                found = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if stat.S_ISREG(found.st_mode):
                total += found.st_size
    return total
