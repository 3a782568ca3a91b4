"""The trio bridge's lifetime: on every way out of the app the trio run is cancelled and
over before the app returns.

The bridge under test has a trio side that takes a while to finish once cancelled (a
shielded cleanup, as a connection's close is); if the app could return before it, the
checks right after the return would find it unfinished. Warnings are errors, so a guest
run abandoned by its host (trio warns about that) fails too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
from textual.binding import Binding, BindingType
from textual.pilot import Pilot

from tui.app import StationApp
from tui.bridge import TrioBridge
from tui.messages import InputEnded
from tui.run import run_app

TIMEOUT_S = 30


class SlowBridge(TrioBridge):
    """A bridge whose trio side needs a moment to finish after it is cancelled."""

    def __init__(self, socket: Path) -> None:
        super().__init__("slow", socket, retry_s=(60.0,))
        self.cleaned_up = False
        self.running = asyncio.Event()

    async def _connect_forever(self) -> None:
        import trio

        self.running.set()
        try:
            await trio.sleep_forever()
        finally:
            # While this runs the asyncio loop runs too: an app that did not wait for
            # the trio run would return in the meantime.
            with trio.CancelScope(shield=True):
                await trio.sleep(0.1)
            self.cleaned_up = True


class FailingApp(StationApp):
    """An app with a key whose action raises (a bug)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("x", "fail", "Fail")]

    def action_fail(self) -> None:
        raise RuntimeError("a bug in an action")


async def _palette_quit(pilot: Pilot[Any]) -> None:
    await pilot.press("ctrl+p")
    await pilot.press(*"quit")
    await pilot.press("enter")


def _kill(signum: signal.Signals) -> object:
    async def kill(pilot: Pilot[Any]) -> None:
        os.kill(os.getpid(), signum)

    return kill


async def _keys(pilot: Pilot[Any], *keys: str) -> None:
    await pilot.press(*keys)


WAYS_OUT = {
    "q": (lambda pilot: _keys(pilot, "q"), 0),
    "ctrl+c": (lambda pilot: _keys(pilot, "ctrl+c"), 0),
    "palette": (_palette_quit, 0),
    "SIGTERM": (_kill(signal.SIGTERM), 128 + signal.SIGTERM),
    "SIGHUP": (_kill(signal.SIGHUP), 128 + signal.SIGHUP),
    "SIGINT": (_kill(signal.SIGINT), 128 + signal.SIGINT),
}


@pytest.mark.parametrize("way", list(WAYS_OUT))
async def test_every_way_out_waits_for_the_trio_run(way: str, tmp_path: Path) -> None:
    bridge = SlowBridge(tmp_path / "control.sock")
    leave, expected = WAYS_OUT[way]

    async def pilot_script(pilot: Pilot[Any]) -> None:
        await bridge.running.wait()
        await leave(pilot)  # type: ignore[operator]

    app = StationApp(bridge)
    async with asyncio.timeout(TIMEOUT_S):
        code = await run_app(app, headless=True, auto_pilot=pilot_script)
    assert bridge.finished
    assert bridge.cleaned_up
    assert code == expected
    assert app.quitting


async def test_an_exception_in_the_app_still_waits_for_the_trio_run(tmp_path: Path) -> None:
    bridge = SlowBridge(tmp_path / "control.sock")

    async def pilot_script(pilot: Pilot[Any]) -> None:
        await bridge.running.wait()
        await pilot.press("x")

    app = FailingApp(bridge)
    # Textual prints the traceback of the failed action when it exits: not to the
    # terminal of the test run.
    stderr, sys.stderr = sys.stderr, open(os.devnull, "w")  # noqa: SIM115
    try:
        async with asyncio.timeout(TIMEOUT_S):
            code = await run_app(app, headless=True, auto_pilot=pilot_script)
    finally:
        sys.stderr.close()
        sys.stderr = stderr
    assert code == 1
    assert bridge.finished
    assert bridge.cleaned_up
    assert not app.quitting  # nobody asked: the unmount waited


async def test_the_end_of_the_terminals_input_quits(tmp_path: Path) -> None:
    bridge = SlowBridge(tmp_path / "control.sock")

    async def pilot_script(pilot: Pilot[Any]) -> None:
        await bridge.running.wait()
        pilot.app.post_message(InputEnded())

    app = StationApp(bridge)
    async with asyncio.timeout(TIMEOUT_S):
        code = await run_app(app, headless=True, auto_pilot=pilot_script)
    assert (code, app.exit_reason) == (0, "the terminal's input ended")
    assert bridge.cleaned_up


async def test_a_stop_before_the_first_step_of_the_run(tmp_path: Path) -> None:
    bridge = TrioBridge("early", tmp_path / "control.sock")
    bridge.start(lambda message: None)
    async with asyncio.timeout(TIMEOUT_S):
        await bridge.stop()
        await bridge.stop()  # again: the same outcome
    assert bridge.finished
