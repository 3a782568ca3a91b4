"""The conversion memory budget: the pure accounting (:mod:`pywats.pipeline.budget`) and
the trio gate the workers wait at (:mod:`pywats.pipeline.memory`)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from pywats import defaults
from pywats.converters.wsjf import WsjfConverter
from pywats.pipeline import budget
from pywats.pipeline.budget import Granted, Ledger, Never, Wait
from pywats.pipeline.memory import Hold, MemoryGate

MiB = defaults.MiB


# --- Estimates --------------------------------------------------------------------------


class _Plugin:
    name = "acme"


class _Declares:
    name = "declares"
    memory_factor = 3


def test_a_builtin_costs_its_measured_factor_and_others_the_conservative_default() -> None:
    assert (
        budget.factor_of(WsjfConverter()) == budget.FACTORS["pywats.converters.wsjf:WsjfConverter"]
    )
    assert budget.factor_of(_Plugin()) == defaults.CONVERT_MEMORY_FACTOR
    assert budget.factor_of(_Declares()) == 3.0
    assert budget.estimate(_Declares(), 10 * MiB) == 30 * MiB


def test_every_builtin_converter_has_a_factor() -> None:
    from pywats.converters.registry import BUILTINS

    assert set(BUILTINS.values()) == set(budget.FACTORS)


def test_the_reason_names_the_need_the_budget_and_the_key() -> None:
    reason = budget.too_big_reason(int(1.2 * 1024 * MiB), 200 * MiB)
    assert reason == (
        "needs about 1.2 GiB to convert, more than the conversion memory budget of "
        "200 MiB ([convert] memory_budget_mb); raise it if the station has the memory"
    )


def test_a_chunk_stops_at_the_batch_bytes_or_the_budget_and_holds_at_least_one() -> None:
    # By bytes read, as before the budget: until the batch holds 10 bytes.
    assert budget.chunk_size([4, 4, 4, 4], [1, 1, 1, 1], 10, 100) == 3
    # By cost: the costs of one chunk together fit the whole budget.
    assert budget.chunk_size([1, 1, 1], [40, 40, 40], 100, 100) == 2
    # A file alone is taken whatever it costs (too big ones cost 0 to the caller).
    assert budget.chunk_size([50], [100], 10, 100) == 1
    assert budget.chunk_size([], [], 10, 100) == 0


# --- The ledger -------------------------------------------------------------------------


def test_requests_are_granted_while_they_fit_then_wait_in_line() -> None:
    ledger = Ledger(100)
    assert ledger.ask("a", 60) == Granted()
    assert ledger.ask("b", 60) == Wait(held=60, ahead=0)
    # First come, first served: a small one does not overtake the big one waiting.
    assert ledger.ask("c", 10) == Wait(held=60, ahead=1)
    assert ledger.release("a") == ["b", "c"]
    assert ledger.held == 70
    assert ledger.waiting == 0


def test_a_request_larger_than_the_budget_is_never_granted() -> None:
    ledger = Ledger(100)
    assert ledger.ask("big", 101) == Never()
    assert ledger.held == 0
    # Exactly the budget fits once everything is given back: a lone big file runs.
    assert ledger.ask("a", 1) == Granted()
    assert ledger.ask("whole", 100) == Wait(held=1, ahead=0)
    assert ledger.release("a") == ["whole"]


def test_a_request_that_leaves_the_line_lets_the_ones_behind_it_in() -> None:
    ledger = Ledger(100)
    ledger.ask("a", 50)
    ledger.ask("big", 90)
    ledger.ask("small", 40)
    assert ledger.withdraw("big") == ["small"]
    assert ledger.held == 90
    # Withdrawing a granted request gives its share back.
    assert ledger.withdraw("a") == []
    assert ledger.held == 40


def test_a_key_asks_once() -> None:
    ledger = Ledger(10)
    ledger.ask("a", 5)
    with pytest.raises(ValueError, match="already holds"):
        ledger.ask("a", 1)
    with pytest.raises(ValueError, match="more than 0"):
        Ledger(0)


# --- The gate (trio) --------------------------------------------------------------------


async def test_a_batch_waits_until_the_budget_is_given_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = MemoryGate(100)
    first = await gate.take(80, files=1)
    assert first is not None
    got: list[Hold | None] = []

    async def second() -> None:
        got.append(await gate.take(50, files=2))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(second)
        await trio.sleep(5)
        # Waiting, counted once however long it waits.
        assert (got, gate.files_waiting, gate.files_waited) == ([], 2, 2)
        gate.give_back(first)
    assert got[0] is not None
    assert got[0].cost == 50
    assert (gate.held, gate.files_waiting, gate.files_waited) == (50, 0, 2)


async def test_closing_ends_every_wait_at_once_and_holds_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = MemoryGate(100)
    assert await gate.take(100, files=1) is not None
    got: list[Hold | None] = []

    async def waiter() -> None:
        got.append(await gate.take(10, files=1))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        nursery.start_soon(waiter)
        await trio.sleep(1)
        start = trio.current_time()
        gate.close()
    assert trio.current_time() == start  # no waiting left
    assert got == [None, None]
    assert await gate.take(1, files=1) is None  # nor after
    assert (gate.held, gate.files_waiting) == (100, 0)


async def test_a_cancelled_wait_leaves_the_line_and_lets_the_next_one_in(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = MemoryGate(100)
    holder = await gate.take(50, files=1)
    assert holder is not None
    got: list[Hold | None] = []

    async def small() -> None:
        got.append(await gate.take(40, files=1))

    big_scope = trio.CancelScope()

    async def big() -> None:
        with big_scope:
            await gate.take(90, files=1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(big)
        await trio.sleep(1)  # the big one waits
        nursery.start_soon(small)
        await trio.sleep(1)
        assert got == []  # behind the big one, though it would fit
        big_scope.cancel()
    assert got
    assert got[0] is not None
    assert gate.held == 90


async def test_a_cost_larger_than_the_budget_is_refused() -> None:
    gate = MemoryGate(10)
    assert not gate.fits(11)
    with pytest.raises(ValueError, match="more than the whole budget"):
        await gate.take(11, files=1)
