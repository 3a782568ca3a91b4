"""Mock clocks that stand still while a thread works (the store, scans, file moves).

Trio's :class:`~trio.testing.MockClock` with an autojump threshold jumps to the next
deadline once every trio task has been blocked for that much real time. A task waiting for
a worker thread is blocked too, so a thread call that takes longer than the threshold (a
commit, loading the CA bundle, a scan, on a loaded machine) let virtual time run ahead to
whatever deadline came next: a read timeout, or the test's own limit. On a machine with
both cores busy that happened every time: the uploader's start loads the CA bundle in a
thread, and the only deadline then was the test's limit of 36,000 virtual seconds.

:func:`pausing_autojump_in_threads` wraps the two ways our code hands work to a thread,
``trio.to_thread.run_sync`` and apsw's trio controller (the store's connections): while
any such call of a run is in flight, its mock clock's autojump is off, and it comes back
when the last one returns (a call that waits on purpose, for a gate the test opens, says
so with :func:`waiting_for_the_test`). Whatever else a test waits on (loopback sockets, inotify,
pipes) goes through trio's I/O wait, which the clock sees anyway.

The clock itself cannot do this: ``MockClock`` is final, and trio's run loop autojumps only
a ``MockClock``. So the calls switch the clock's threshold, from the task that starts them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import apsw.aio
import trio
import trio.testing

_paused: dict[int, tuple[int, float]] = {}
"""Per clock (by id) whose autojump is off: calls in flight, and its threshold."""


def _pause() -> None:
    """One more thread call in flight in this run (called in the trio thread)."""
    clock = trio.lowlevel.current_clock()
    if not isinstance(clock, trio.testing.MockClock):
        return
    key = id(clock)
    if key in _paused:
        calls, threshold = _paused[key]
        _paused[key] = (calls + 1, threshold)
    else:
        # A clock without autojump (threshold inf) is paused all the same: harmless.
        _paused[key] = (1, clock.autojump_threshold)
        clock.autojump_threshold = math.inf


def _resume() -> None:
    """One thread call fewer; the last one gives the clock its threshold back."""
    clock = trio.lowlevel.current_clock()
    if not isinstance(clock, trio.testing.MockClock):
        return
    key = id(clock)
    calls, threshold = _paused[key]
    if calls == 1:
        del _paused[key]
        clock.autojump_threshold = threshold
    else:
        _paused[key] = (calls - 1, threshold)


@contextmanager
def _thread_call() -> Iterator[None]:
    _pause()
    try:
        yield
    finally:
        _resume()


@contextmanager
def waiting_for_the_test() -> Iterator[None]:
    """In a worker thread: the call waits for the test (a gate it opens), it is not
    working, so virtual time may jump meanwhile as if no thread call were in flight."""
    trio.from_thread.run_sync(_resume)
    try:
        yield
    finally:
        trio.from_thread.run_sync(_pause)


@contextmanager
def pausing_autojump_in_threads() -> Iterator[None]:
    """While inside, thread calls pause their run's autojump (see the module docstring)."""
    run_sync: Callable[..., Any] = trio.to_thread.run_sync
    send: Callable[..., Any] = apsw.aio.Trio.send

    async def paused_run_sync(sync_fn: Callable[..., Any], *args: Any, **options: Any) -> Any:
        with _thread_call():
            return await run_sync(sync_fn, *args, **options)

    async def paused_send(self: apsw.aio.Trio, call: Callable[[], Any]) -> Any:
        with _thread_call():
            return await send(self, call)

    trio.to_thread.run_sync = paused_run_sync
    apsw.aio.Trio.send = paused_send  # type: ignore[method-assign]
    try:
        yield
    finally:
        trio.to_thread.run_sync = run_sync
        apsw.aio.Trio.send = send  # type: ignore[method-assign]
