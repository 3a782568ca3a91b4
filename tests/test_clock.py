"""The tests' mock clocks pause their autojump during thread calls (tests/clock.py):
virtual time stands still while a thread works, however long it takes in real time, and
jumps as usual otherwise."""

from __future__ import annotations

import math
import time
from pathlib import Path

import apsw
import apsw.aio
import trio
import trio.testing

SLOW_S = 0.5
"""Real seconds a thread call takes: five autojump thresholds."""


async def test_no_jump_while_a_to_thread_call_runs(autojump: trio.testing.MockClock) -> None:
    before = trio.current_time()
    with trio.fail_after(10):  # the only deadline: a plain MockClock jumps right to it
        await trio.to_thread.run_sync(time.sleep, SLOW_S)
    assert trio.current_time() - before < 1


async def test_no_jump_while_an_apsw_call_runs(
    tmp_path: Path, autojump: trio.testing.MockClock
) -> None:
    token = apsw.async_controller.set(apsw.aio.Trio)  # type: ignore[arg-type]
    try:
        db = await apsw.Connection.as_async(str(tmp_path / "x.db"))
    finally:
        apsw.async_controller.reset(token)
    try:
        before = trio.current_time()
        with trio.fail_after(10):
            await db.async_run(time.sleep, SLOW_S)
        assert trio.current_time() - before < 1
    finally:
        await db.aclose()


async def test_jumps_when_only_timers_are_left(autojump: trio.testing.MockClock) -> None:
    started = time.perf_counter()
    await trio.to_thread.run_sync(time.sleep, 0.01)
    await trio.sleep(3600)
    # An hour of virtual time in about one threshold of real time.
    assert time.perf_counter() - started < 5


async def test_the_threshold_comes_back_after_overlapping_calls(
    autojump: trio.testing.MockClock,
) -> None:
    threshold = autojump.autojump_threshold
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, time.sleep, 0.2)
        await trio.to_thread.run_sync(time.sleep, 0.05)
        assert autojump.autojump_threshold == math.inf  # the other call still runs
    assert autojump.autojump_threshold == threshold


async def test_a_cancelled_call_gives_the_threshold_back(
    autojump: trio.testing.MockClock,
) -> None:
    async def cancel_when_blocked(scope: trio.CancelScope) -> None:
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()

    threshold = autojump.autojump_threshold
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_when_blocked, scope)
            await trio.to_thread.run_sync(time.sleep, 0.2, abandon_on_cancel=True)
    assert scope.cancelled_caught
    assert autojump.autojump_threshold == threshold
