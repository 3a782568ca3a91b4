"""The queue's detail pane and its order, against the fake backend (fixed data): the pane
follows the highlighted report (beside the table on a wide terminal, below it at 80x24),
fetches its JSON once the highlight rests, and every order is asked of the service."""

from __future__ import annotations

import json
from typing import Any

import pytest
from textual.widgets import Static, TextArea

import tui.queue
from tests.tui.fakes import FakeBackend
from tests.tui.helpers import screen_text, until
from tests.tui.test_snapshots import make_app
from tui.app import StationApp
from tui.queue import DETAIL_DELAY_S, PANE_JSON_LINES, QueueScreen, ReportScreen, pretty_json


def gets(backend: FakeBackend) -> list[str]:
    return [params["id"] for method, params in backend.calls if method == "queue.get"]


async def open_queue(app: StationApp, pilot: Any) -> QueueScreen:
    await until(pilot, lambda: app.model.connection == "connected", "the connection")
    await pilot.press("2")
    screen = app.screen
    assert isinstance(screen, QueueScreen)
    await until(pilot, lambda: len(screen.rows) == 12, "a page of reports")
    return screen


RESTING_S = DETAIL_DELAY_S * 4
"""The pane's delay in the test that runs over rows: four times the product's, so three key
presses on a loaded machine still come within it (at 0.25 s one of two xdist workers once
rested long enough on a row passed over to fetch it)."""


async def test_the_pane_follows_the_highlight_and_fetches_once_it_rests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tui.queue, "DETAIL_DELAY_S", RESTING_S)
    app, backend = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        queue = await open_queue(app, pilot)
        first = queue.rows[0]["id"]
        await until(pilot, lambda: gets(backend) == [first], "the first report's JSON")
        assert queue.detail is not None
        assert queue.detail["id"] == first
        # Below the table at 80x24, the table still showing most of a screen of rows.
        pane = queue.query_one("#queue-detail")
        table = queue.query_one("#queue-table")
        assert pane.region.y > table.region.y
        assert pane.region.width == table.region.width
        assert table.region.height >= 8
        # Running down the table: the pane shows each row's fields at once, and only the
        # row the highlight rests on is fetched.
        await pilot.press("down", "down", "down")
        landed = queue.rows[3]
        assert f"serial     {landed['sn']}" in screen_text(app)
        assert "loading the JSON…" in str(queue.query_one("#detail-text").render())
        await until(pilot, lambda: len(gets(backend)) > 1, "one more fetch")
        assert gets(backend) == [first, landed["id"]]
        assert "HTTP 503: try later" in screen_text(app)  # what the server said, in view
        await pilot.pause(RESTING_S * 2)
        assert gets(backend) == [first, landed["id"]]  # nothing for the rows passed over
        # z hides the pane (the table gets the room), z brings it back.
        await pilot.press("z")
        assert queue.query_one("#queue-detail").display is False
        await pilot.press("z")
        # Enter still opens the full view of that report.
        await pilot.press("enter")
        assert isinstance(app.screen, ReportScreen)
        assert app.screen.report_id == landed["id"]


BIG_STEPS = [{"id": i, "name": f"VCC {i}", "status": "P"} for i in range(3000)]
BIG_BODY = json.dumps({"id": "x", "root": {"steps": BIG_STEPS}})
"""A report of 3,000 steps, as the service sends its body."""
BIG = pretty_json(BIG_BODY)


async def test_a_big_report_shows_its_start_in_the_pane_and_all_when_opened() -> None:
    # 3,000 steps: the pane shows the first PANE_JSON_LINES lines of the JSON and says how
    # many more there are; Enter shows every line (the last step included).
    app, backend = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        queue = await open_queue(app, pilot)
        first = queue.rows[0]["id"]
        # The pane fetches a row again only when it shows another row's JSON: so the first
        # row's JSON in, the next row's, and back (whatever the machine's speed).
        await until(pilot, lambda: gets(backend) == [first], "the first report's JSON")
        backend.bodies[first] = BIG_BODY
        await pilot.press("down")
        await until(pilot, lambda: len(gets(backend)) == 2, "the next report's JSON")
        await pilot.press("up")  # fetched again, now with the big body
        pane = queue.query_one("#detail-text", Static)
        more = f"… {BIG.count(chr(10)) + 1 - PANE_JSON_LINES:,} more line(s)"
        await until(pilot, lambda: more in str(pane.render()), "the count of the rest")
        shown = str(pane.render())
        assert '"name": "VCC 0"' in shown
        assert '"name": "VCC 2999"' not in shown
        await pilot.press("enter")
        report = app.screen
        assert isinstance(report, ReportScreen)
        body = report.query_one("#report-body", TextArea)
        await until(pilot, lambda: '"name": "VCC 2999"' in body.text, "the whole JSON")
        assert body.text == BIG


async def test_a_huge_report_shows_its_start_and_saves_all_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Past REPORT_JSON_LINES (here 1,000, for speed) the report screen shows the start and
    # says how to see the rest; what v pages and w saves is still the whole report.
    monkeypatch.setattr(tui.queue, "REPORT_JSON_LINES", 1000)
    app, backend = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        queue = await open_queue(app, pilot)
        backend.bodies[queue.rows[0]["id"]] = BIG_BODY
        await pilot.press("enter")
        report = app.screen
        assert isinstance(report, ReportScreen)
        body = report.query_one("#report-body", TextArea)
        await until(pilot, lambda: "more line(s)" in body.text, "the cut")
        shown = body.text.splitlines()
        assert shown[:-1] == BIG.splitlines()[:1000]
        rest = BIG.count("\n") + 1 - 1000
        assert shown[-1] == f"… {rest:,} more line(s): v pages the whole report, w saves it"
        assert report.text().endswith(BIG)


async def test_the_pane_is_beside_the_table_on_a_wide_terminal() -> None:
    app, _ = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        queue = await open_queue(app, pilot)
        await until(pilot, lambda: '"sn": "SN00012"' in screen_text(app), "the JSON")
        pane = queue.query_one("#queue-detail")
        table = queue.query_one("#queue-table")
        assert pane.region.x > table.region.x
        assert pane.region.y == table.region.y
        assert "server said   -" in screen_text(app)


async def test_every_order_is_asked_of_the_service_from_page_one() -> None:
    app, backend = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        queue = await open_queue(app, pilot)
        queue.cursors.append("k1.page-2")  # as if on page 2
        backend.calls.clear()
        await pilot.press("o")
        await until(pilot, lambda: "sort updated" in screen_text(app), "the order")
        await until(pilot, lambda: not queue.busy, "the page")
        assert ("queue.list", {"limit": 100, "sort": "updated"}) in backend.calls
        assert queue.cursors == [None]
        await pilot.press("O")
        await until(pilot, lambda: "sort updated reversed" in screen_text(app), "reversed")
        await until(pilot, lambda: not queue.busy, "the page")
        assert ("queue.list", {"limit": 100, "sort": "updated", "reverse": True}) in backend.calls
