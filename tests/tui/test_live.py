"""The TUI against a real service over its real socket: ``pywats serve`` (and ``pywats
receiver``) as processes, the app with its trio bridge on the test's asyncio loop,
driven by Pilot.

What is checked: the dashboard's counts move when files are dropped; retry on a failed
report changes its state; the disconnected screen comes when the service stops and goes
when it is back (with the new service's state); ``--read-only`` offers nothing that
changes the service, and refuses it when asked anyway.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.binding import Binding

from pywats.rpc.errors import RpcClientError
from tests.integration.harness import Instance, ReceiverProcess, stop, wait_for
from tests.tui.helpers import screen_text, until
from tui.app import StationApp
from tui.backend import MUTATING_METHODS
from tui.bridge import TrioBridge
from tui.disconnected import DisconnectedScreen
from tui.queue import QueueScreen
from tui.screen import StationScreen

TIMEOUT_S = 60


class Station:
    """One instance's service (restartable) and, optionally, a receiver."""

    def __init__(self, tmp_path: Path, receiver: ReceiverProcess | None) -> None:
        self.receiver = receiver
        self.inst = Instance(tmp_path, "ict", server_url=receiver.url if receiver else None)
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        self.proc = self.inst.serve()
        self.inst.wait_ready()

    def stop(self) -> None:
        if self.proc is not None:
            assert stop(self.proc, signal.SIGTERM) == 0, self.inst.log()
            self.proc = None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.receiver is not None:
            self.receiver.stop()
        self.inst.notify.close()

    def app(self, **options: Any) -> StationApp:
        bridge = TrioBridge("ict", self.inst.socket(), poll_s=0.5, retry_s=(0.2,))
        return StationApp(bridge, refresh_s=0.1, **options)


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    running = Station(tmp_path, None)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def rejecting(tmp_path: Path) -> Iterator[Station]:
    """A station whose server rejects the first report for good (400)."""
    receiver = ReceiverProcess(
        tmp_path / "receiver.db", "--fail-first", "1", "--fail-first-status", "400"
    )
    running = Station(tmp_path, receiver)
    try:
        yield running
    finally:
        running.close()


def header(app: StationApp) -> str:
    return screen_text(app).splitlines()[0]


async def test_the_dashboard_counts_move_when_files_are_dropped(station: Station) -> None:
    app = station.app()
    async with asyncio.timeout(TIMEOUT_S), app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "0 pending" in header(app), "the first status")
        assert "running" in header(app)
        station.inst.drop(3)
        await until(pilot, lambda: "3 pending" in header(app), "3 reports in the header")
        text = screen_text(app)
        assert "Queue        3 pending" in text
        assert "Today        3 queued" in text
        await until(
            pilot, lambda: " 3          0" in screen_text(app), "3 processed in the folder row"
        )
        # A file that cannot be converted: counted and explained.
        (station.inst.watch / "bad.json").write_text("{not json")
        await until(pilot, lambda: "1 did not convert" in screen_text(app), "the rejected file")
        assert "could not convert" in screen_text(app)


async def test_retry_on_a_failed_report_changes_its_state(rejecting: Station) -> None:
    app = rejecting.app()
    async with asyncio.timeout(TIMEOUT_S), app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.model.connection == "connected", "the connection")
        [report_id] = rejecting.inst.drop(1)
        await until(pilot, lambda: app.model.queue.get("failed") == 1, "the report to fail")
        await pilot.press("2")
        queue = app.screen
        assert isinstance(queue, QueueScreen)
        await until(pilot, lambda: "\n failed " in screen_text(app), "the failed row")
        assert [r["state"] for r in queue.rows] == ["failed"]
        assert queue.rows[0]["last_status"] == 400
        assert str(queue.rows[0]["last_error"])[:20] in screen_text(app)
        await pilot.press("r")
        await until(
            pilot,
            lambda: any(e.method == "report.requeued" for e in app.model.events),
            "report.requeued",
        )
        await until(pilot, lambda: app.model.queue.get("done") == 1, "the report uploaded")
        await until(pilot, lambda: "\n done " in screen_text(app), "the done row")
        assert [r["state"] for r in queue.rows] == ["done"]
        assert "\n failed " not in screen_text(app)
        assert rejecting.receiver is not None
        assert report_id in rejecting.receiver.ids()


async def test_the_disconnected_screen_comes_and_goes_with_the_service(station: Station) -> None:
    app = station.app()
    async with asyncio.timeout(TIMEOUT_S), app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.model.connection == "connected", "the connection")
        first = app.model.stream
        station.inst.drop(2)
        await until(pilot, lambda: "2 pending" in header(app), "2 pending")
        station.stop()
        await until(
            pilot, lambda: isinstance(app.screen, DisconnectedScreen), "the disconnected screen"
        )
        await until(pilot, lambda: "The service is not running" in screen_text(app), "not running")
        text = screen_text(app)
        assert str(station.inst.socket()) in "".join(text.split())  # the path may wrap
        await pilot.press("2")  # the screens wait for the service
        assert isinstance(app.screen, DisconnectedScreen)
        station.inst.drop(1, start=10)
        station.start()
        await until(
            pilot, lambda: not isinstance(app.screen, DisconnectedScreen), "the service back"
        )
        assert app.model.stream != first  # another start: the state was rebuilt
        await until(pilot, lambda: "3 pending" in header(app), "the new service's counts")
        assert app.model.connection == "connected"


async def test_read_only_offers_and_does_nothing_that_changes(rejecting: Station) -> None:
    app = rejecting.app(read_only=True)
    calls: list[str] = []
    bridge = app.backend
    real_call = bridge.call

    async def recording(method: str, /, **params: Any) -> Any:
        calls.append(method)
        return await real_call(method, **params)

    bridge.call = recording  # type: ignore[method-assign]
    async with asyncio.timeout(TIMEOUT_S), app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.model.connection == "connected", "the connection")
        rejecting.inst.drop(1)
        await until(pilot, lambda: app.model.queue.get("failed") == 1, "the report to fail")
        for key in "1234567":
            await pilot.press(key)
            screen = app.screen
            assert isinstance(screen, StationScreen)
            await pilot.pause(0.1)
            for action in screen.CHANGING:
                assert screen.check_action(action, ()) is False, (key, action)
            footer = screen_text(app).splitlines()[-1]
            for word in ("Retry", "Delete", "Enable", "Disable", "Move back", "Send test"):
                assert word not in footer, (key, footer)
            titles = [title for title, _, _ in screen.palette()]
            assert not [t for t in titles if "retry" in t.lower() or "delete" in t.lower()]
            # Press every key bound to something that changes: nothing may happen.
            for binding in screen.BINDINGS:
                if isinstance(binding, Binding) and binding.action in screen.CHANGING:
                    await pilot.press(*binding.key.split(","))
            await pilot.pause(0.05)
            assert isinstance(app.screen, StationScreen)  # no dialog came up
        await pilot.pause(0.2)
        assert not set(calls) & MUTATING_METHODS, calls
        assert app.model.queue.get("failed") == 1  # nothing was retried
        with pytest.raises(RpcClientError, match="read-only"):
            await app.rpc("queue.retry", failed=True)
        with pytest.raises(RpcClientError, match="read-only"):
            await app.rpc("server.test", send_report=True)


async def test_the_queue_sorts_across_pages_and_its_pane_follows_the_highlight(
    station: Station, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tui.queue.PAGE_SIZE", 3)
    # Four reports before the TUI connects (the events cannot tell of them), three after.
    station.inst.drop(4)
    wait_for(lambda: station.inst.queue_counts().get("pending") == 4, timeout=30, what="4 queued")
    app = station.app()
    async with asyncio.timeout(TIMEOUT_S), app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.model.connection == "connected", "the connection")
        await until(pilot, lambda: app.model.today.loaded, "today's counts read")
        station.inst.drop(3, start=4)
        await until(pilot, lambda: "7 pending" in header(app), "7 reports in the header")
        # Exact: the four from before the connection are in today's count, once each.
        await until(pilot, lambda: "Today        7 queued" in screen_text(app), "today's 7")
        await pilot.press("2")
        queue = app.screen
        assert isinstance(queue, QueueScreen)
        await until(pilot, lambda: len(queue.rows) == 3, "a page of 3")
        while queue.sort != "sn":
            await pilot.press("o")
        await until(pilot, lambda: "sort sn" in screen_text(app), "sorted by serial")
        sns = [f"SN-{n:07d}" for n in range(7)]
        await until(pilot, lambda: [r["sn"] for r in queue.rows] == sns[:3], "page 1 by sn")
        await pilot.press("n")
        await until(pilot, lambda: [r["sn"] for r in queue.rows] == sns[3:6], "page 2 by sn")
        await pilot.press("n")
        await until(pilot, lambda: [r["sn"] for r in queue.rows] == sns[6:], "page 3 by sn")
        await pilot.press("O")  # reversed: from the start again
        await until(pilot, lambda: [r["sn"] for r in queue.rows] == sns[:3:-1], "reversed")
        # The pane beside the table follows the highlight, with the report's JSON.
        await until(pilot, lambda: f'"sn": "{sns[6]}"' in screen_text(app), "the JSON")
        pane = queue.query_one("#queue-detail")
        assert pane.region.x > queue.query_one("#queue-table").region.x
        await pilot.press("down")
        await until(pilot, lambda: f'"sn": "{sns[5]}"' in screen_text(app), "the next JSON")
        assert f"serial        {sns[5]}" in screen_text(app)
