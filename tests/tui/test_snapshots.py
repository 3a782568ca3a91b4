"""Every screen at 80x24 and 120x40, from fixed data (:mod:`tests.tui.fakes`): Pilot
checks what each one must show first, then the snapshot guards the rest of the picture.

Update the pictures after a deliberate change with ``pytest tests/tui --snapshot-update``
and look at them (``snapshot_report.html``) before keeping them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.tui.fakes import NOW, FakeBackend, events, fake_pywats, fake_read
from tests.tui.helpers import screen_text, until
from tui.about import InstancesScreen
from tui.app import StationApp
from tui.config import ConfigScreen
from tui.disconnected import DisconnectedScreen
from tui.queue import QueueScreen, ReportScreen
from tui.screen import ConfirmScreen, TextScreen

SIZES = [(80, 24), (120, 40)]

Steps = Callable[[Pilot[Any], FakeBackend], Awaitable[None]]


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Times are shown in local time: the same pictures in every time zone.
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def make_app(*, read_only: bool = False, connect: bool = True) -> tuple[StationApp, FakeBackend]:
    backend = FakeBackend(connect=connect)
    app = StationApp(
        backend,
        read_only=read_only,
        refresh_s=0.05,
        clock=lambda: NOW,
        pywats=fake_pywats,
        read_file=fake_read,
    )
    return app, backend


async def connected(pilot: Pilot[Any], backend: FakeBackend) -> None:
    app = pilot.app
    assert isinstance(app, StationApp)
    await until(pilot, lambda: app.model.connection == "connected", "the connection")
    backend.notify(*events())
    await until(pilot, lambda: app.model.received == len(events()), "the events")
    await until(pilot, lambda: "1 failed" in screen_text(app), "the header")


async def dashboard(pilot: Pilot[Any], backend: FakeBackend) -> None:
    await connected(pilot, backend)
    text = screen_text(pilot.app)
    await until(pilot, lambda: "Last errors" in screen_text(pilot.app), "the dashboard")
    text = screen_text(pilot.app)
    assert "server online 23.1 42 ms" in text
    assert "1 waiting to retry" in text
    assert "HTTP 400: bad miscInfo" in text


async def queue(pilot: Pilot[Any], backend: FakeBackend) -> None:
    await connected(pilot, backend)
    await pilot.press("2")
    screen = pilot.app.screen
    assert isinstance(screen, QueueScreen)
    await until(pilot, lambda: len(screen.rows) == 12, "a page of reports")
    await until(pilot, lambda: "SN00012" in screen_text(pilot.app), "the rows")
    await pane_settled(pilot, screen)


async def pane_settled(pilot: Pilot[Any], screen: QueueScreen) -> None:
    """The pane beside or below the table has the highlighted report's JSON."""

    def settled() -> bool:
        detail = screen.detail or {}
        return detail.get("id") == screen.selected_id() and screen.detail_loading is None

    await until(pilot, settled, "the pane's report")
    await until(pilot, lambda: "attempts" in screen_text(pilot.app), "the pane")


async def queue_searched(pilot: Pilot[Any], backend: FakeBackend) -> None:
    await queue(pilot, backend)
    await pilot.press("slash", *"pcba-2", "enter")
    screen = pilot.app.screen
    assert isinstance(screen, QueueScreen)
    await until(pilot, lambda: len(screen.rows) == 4, "the search's rows")
    assert {r["pn"] for r in screen.rows} == {"PCBA-200"}
    await pane_settled(pilot, screen)
    assert ("queue.list", {"limit": 100, "search": "pcba-2"}) in backend.calls
    # Remembered: the next / starts from it.
    await pilot.press("slash")
    assert screen.query_one("#queue-search").value == "pcba-2"  # type: ignore[attr-defined]
    await pilot.press("escape")


async def report(pilot: Pilot[Any], backend: FakeBackend) -> None:
    await queue(pilot, backend)
    await pilot.press("s", "s")  # failed only
    screen = pilot.app.screen
    assert isinstance(screen, QueueScreen)
    await until(pilot, lambda: [r["state"] for r in screen.rows] == ["failed"], "failed only")
    await pilot.press("enter")
    assert isinstance(pilot.app.screen, ReportScreen)
    await until(pilot, lambda: "server said   HTTP 400" in screen_text(pilot.app), "the detail")
    assert '"sn": "SN00010"' in screen_text(pilot.app)


async def delete(pilot: Pilot[Any], backend: FakeBackend) -> None:
    await queue(pilot, backend)
    await pilot.press("d")
    assert isinstance(pilot.app.screen, ConfirmScreen)
    assert "queue delete 00000000-0000-4000-8000-000000000012" in screen_text(pilot.app)


async def files(pilot: Pilot[Any], backend: FakeBackend) -> None:
    await connected(pilot, backend)
    await pilot.press("3")
    await until(pilot, lambda: "Expecting ',' delimiter" in screen_text(pilot.app), "the reason")
    assert "board-013.json" in screen_text(pilot.app)


async def converters(pilot: Pilot[Any], backend: FakeBackend) -> None:
    await connected(pilot, backend)
    await pilot.press("4")
    await until(pilot, lambda: "patterns      *.json" in screen_text(pilot.app), "the detail")
    assert "disabled" in screen_text(pilot.app)


async def events_screen(pilot: Pilot[Any], backend: FakeBackend) -> None:
    await connected(pilot, backend)
    await pilot.press("5")
    await until(pilot, lambda: "report.failed" in screen_text(pilot.app), "the events")
    assert " following " in screen_text(pilot.app)
    assert "stats:" not in screen_text(pilot.app)  # hidden until s


async def events_filtered(pilot: Pilot[Any], backend: FakeBackend) -> None:
    await events_screen(pilot, backend)
    await pilot.press("f", *"sn00010", "enter")
    await until(pilot, lambda: "filter 'sn00010'" in screen_text(pilot.app), "the filter")
    assert "report.failed" in screen_text(pilot.app)
    assert "report.queued" not in screen_text(pilot.app)


async def config(pilot: Pilot[Any], backend: FakeBackend) -> None:
    await connected(pilot, backend)
    await pilot.press("6")
    await until(pilot, lambda: "server.token" in screen_text(pilot.app), "the config")
    text = screen_text(pilot.app)
    assert "*** (hidden)" in text
    screen = pilot.app.screen
    assert isinstance(screen, ConfigScreen)
    rows = {key: (value, source) for key, value, source in screen.rows}
    # Where the token comes from, never its value; and where each value came from.
    assert rows["server.token"] == ("*** (hidden)", "server.token_file /etc/pywats/ict.token")
    assert rows["server.url"] == ("https://wats.example.com", "file")
    assert rows["upload.retry_max_s"] == ("300.0", "default")


async def about(pilot: Pilot[Any], backend: FakeBackend) -> None:
    await connected(pilot, backend)
    await pilot.press("7")
    await until(pilot, lambda: "token     server.token_file" in screen_text(pilot.app), "info")


async def instances(pilot: Pilot[Any], backend: FakeBackend) -> None:
    await connected(pilot, backend)
    # The dashboard stays visible behind the dialog: its last errors must be drawn first
    # (under load they came after the dialog, and the snapshot showed "none").
    await until(pilot, lambda: "HTTP 400: bad miscInfo" in screen_text(pilot.app), "the errors")
    await pilot.press("i")
    assert isinstance(pilot.app.screen, InstancesScreen)
    await until(pilot, lambda: "2 instance(s)" in screen_text(pilot.app), "the instances")


async def help_screen(pilot: Pilot[Any], backend: FakeBackend) -> None:
    await queue(pilot, backend)
    await pilot.press("question_mark")
    screen = pilot.app.screen
    assert isinstance(screen, TextScreen)
    assert "Retry failed" in screen.text
    assert "pywats queue retry ID ... | --failed" in screen.text


async def read_only_queue(pilot: Pilot[Any], backend: FakeBackend) -> None:
    await queue(pilot, backend)
    footer = screen_text(pilot.app).splitlines()[-1]
    assert "Retry" not in footer
    assert "Delete" not in footer
    await pilot.press("r", "R", "d")
    assert not [c for c in backend.calls if c[0] in ("queue.retry", "queue.delete")]


async def not_running(pilot: Pilot[Any], backend: FakeBackend) -> None:
    backend.disconnect("not_running")
    await until(pilot, lambda: isinstance(pilot.app.screen, DisconnectedScreen), "the screen")
    await until(pilot, lambda: "not running" in screen_text(pilot.app), "why")
    assert "systemctl start pywats@ict" in screen_text(pilot.app)


async def refused(pilot: Pilot[Any], backend: FakeBackend) -> None:
    backend.disconnect("refused")
    await until(pilot, lambda: "Permission refused" in screen_text(pilot.app), "why")
    assert "allowed_group" in screen_text(pilot.app)


CASES: dict[str, tuple[Steps, dict[str, bool]]] = {
    "dashboard": (dashboard, {}),
    "queue": (queue, {}),
    "queue-search": (queue_searched, {}),
    "report": (report, {}),
    "confirm-delete": (delete, {}),
    "files": (files, {}),
    "converters": (converters, {}),
    "events": (events_screen, {}),
    "events-filtered": (events_filtered, {}),
    "config": (config, {}),
    "about": (about, {}),
    "instances": (instances, {}),
    "help": (help_screen, {}),
    "read-only-queue": (read_only_queue, {"read_only": True}),
    "not-running": (not_running, {"connect": False}),
    "refused": (refused, {"connect": False}),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", list(CASES))
def test_screen(case: str, size: tuple[int, int], snap_compare: Callable[..., bool]) -> None:
    steps, options = CASES[case]
    app, backend = make_app(**options)

    async def run_before(pilot: Pilot[Any]) -> None:
        await steps(pilot, backend)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
