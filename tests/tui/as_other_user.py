"""Run the TUI (the real app and its trio bridge, headless) against a socket and print what
the screen shows once it says "Permission refused"; ``test_refused.py`` starts this as
another user. Exit 0 when that screen came, 1 when it did not within the deadline.

    python -m tests.tui.as_other_user SOCKET
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.tui.helpers import screen_text, until
from tui.app import StationApp
from tui.bridge import TrioBridge
from tui.disconnected import DisconnectedScreen

DEADLINE_S = 20.0


async def main(socket: Path) -> int:
    app = StationApp(TrioBridge("ict", socket, retry_s=(0.2,)), refresh_s=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        try:
            await until(
                pilot,
                lambda: (
                    isinstance(app.screen, DisconnectedScreen)
                    and "Permission refused" in screen_text(app)
                ),
                "the permission screen",
                timeout=DEADLINE_S,
            )
            code = 0
        except AssertionError:
            code = 1
        print(f"uid {os.getuid()} connection {app.model.connection}")
        print(screen_text(app))
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]))))
