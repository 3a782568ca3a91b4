"""Async tests in ``tests/tui/`` run on asyncio, where Textual's ``App.run_test()`` and
Pilot work: a minimal app, a real (headless) Textual run, real key presses."""

from __future__ import annotations

import asyncio

import sniffio
from textual.app import App, ComposeResult
from textual.widgets import Label

TIMEOUT_S = 10


class Counter(App[None]):
    """Counts presses of the space bar."""

    BINDINGS = [("space", "bump", "Bump")]

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def compose(self) -> ComposeResult:
        yield Label("0", id="count")

    def action_bump(self) -> None:
        self.count += 1
        self.query_one("#count", Label).update(str(self.count))


async def test_a_key_press_reaches_a_textual_app_on_asyncio() -> None:
    assert sniffio.current_async_library() == "asyncio"
    app = Counter()
    async with asyncio.timeout(TIMEOUT_S), app.run_test() as pilot:
        await pilot.press("space", "space")
        assert app.count == 2
        assert str(app.query_one("#count", Label).render()) == "2"
