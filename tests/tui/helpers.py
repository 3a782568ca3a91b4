"""What the TUI tests share: the screen as text, and waiting for a condition with a
deadline (across processes there is no event to wait on)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.pilot import Pilot

DEADLINE_S = 30.0


def screen_text(app: App[Any]) -> str:
    """What the terminal shows, as plain text (one line per row)."""
    return "\n".join(strip.text.rstrip() for strip in app.screen._compositor.render_strips())


async def until(
    pilot: Pilot[Any],
    condition: Callable[[], object],
    what: str,
    *,
    timeout: float = DEADLINE_S,
) -> None:
    """Let the app run until ``condition()`` holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what}; the screen:\n"
                + screen_text(pilot.app)
            )
        await pilot.pause(0.05)
