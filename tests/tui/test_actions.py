"""What each action asks of the service, and what it tells the person: against the
canned backend (:mod:`tests.tui.fakes`), which records every call."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from tests.tui.fakes import NOW, FakeBackend, fake_pywats, fake_read
from tests.tui.fakes import config as backend_config
from tests.tui.helpers import screen_text, until
from tui.app import StationApp
from tui.screen import ConfirmScreen, SaveScreen

TIMEOUT_S = 30


def make_app() -> tuple[StationApp, FakeBackend]:
    backend = FakeBackend()
    app = StationApp(
        backend, refresh_s=0.05, clock=lambda: NOW, pywats=fake_pywats, read_file=fake_read
    )
    return app, backend


def changing(backend: FakeBackend) -> list[tuple[str, dict[str, Any]]]:
    reading = {"service.status", "queue.list", "queue.get", "files.errors", "config.get"}
    return [call for call in backend.calls if call[0] not in reading]


async def test_retry_delete_and_the_command_that_does_the_same() -> None:
    app, backend = make_app()
    async with (
        asyncio.timeout(TIMEOUT_S),
        app.run_test(size=(100, 30), notifications=True) as pilot,
    ):
        await pilot.press("2")
        await until(pilot, lambda: "SN00012" in screen_text(app), "the queue")
        await pilot.press("down", "down")  # SN00010, the failed one
        await pilot.press("r")
        first = "00000000-0000-4000-8000-000000000010"
        await until(pilot, lambda: changing(backend), "the retry")
        assert changing(backend) == [("queue.retry", {"ids": [first]})]
        await until(
            pilot,
            lambda: any(
                f"pywats queue retry {first} --instance ict" in str(n.message)
                for n in app._notifications
            ),
            "the command in a notification",
        )
        await pilot.press("R")
        await until(pilot, lambda: len(changing(backend)) == 2, "retry every failed one")
        assert changing(backend)[1] == ("queue.retry", {"failed": True})
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # no: nothing happens
        assert len(changing(backend)) == 2
        await pilot.press("d", "y")
        await until(pilot, lambda: len(changing(backend)) == 3, "the delete")
        assert changing(backend)[2] == ("queue.delete", {"ids": [first]})


async def test_move_back_enable_disable_and_the_server_checks() -> None:
    app, backend = make_app()
    async with asyncio.timeout(TIMEOUT_S), app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        await until(pilot, lambda: "board-013.json" in screen_text(app), "the files")
        await pilot.press("m")
        assert isinstance(app.screen, ConfirmScreen)
        assert "pywats files restore ict board-013.json --instance ict" in screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: changing(backend), "the restore")
        assert changing(backend) == [("files.restore", {"folder": "ict", "name": "board-013.json"})]
        await until(pilot, lambda: "No file was refused." in screen_text(app), "an empty list")
        await pilot.press("4")
        await until(pilot, lambda: "patterns" in screen_text(app), "the converters")
        await pilot.press("x", "down", "e")
        await until(pilot, lambda: len(changing(backend)) == 3, "disable and enable")
        assert changing(backend)[1:] == [
            ("converters.disable", {"name": "ict"}),
            ("converters.enable", {"name": "fct"}),
        ]
        await pilot.press("6")
        await until(pilot, lambda: "server.url" in screen_text(app), "the config")
        await pilot.press("t")
        await until(pilot, lambda: "server online, WATS 23.1" in screen_text(app), "the test")
        await pilot.press("T")
        await until(pilot, lambda: "test report uploaded" in screen_text(app), "the report")
        assert changing(backend)[3:] == [
            ("server.test", {}),
            ("server.test", {"send_report": True}),
        ]


async def test_copy_and_save_what_a_screen_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    app, _ = make_app()
    async with asyncio.timeout(TIMEOUT_S), app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await until(pilot, lambda: "SN00012" in screen_text(app), "the queue")
        await pilot.press("c")
        assert app.clipboard.splitlines()[0].startswith("state\tserial")
        assert len(app.clipboard.splitlines()) == 13
        await pilot.press("w")
        assert isinstance(app.screen, SaveScreen)
        target = tmp_path / "saved.txt"
        field = app.screen.query_one("#save-path")
        field.value = str(target)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await until(pilot, target.exists, "the file")
        assert target.read_text() == app.clipboard + "\n"  # whole as soon as it is there
        assert os.listdir(tmp_path) == ["saved.txt"]  # nothing left under another name
        # Never over a file that is there.
        await pilot.press("w")
        app.screen.query_one("#save-path").value = str(target)  # type: ignore[attr-defined]
        await pilot.press("enter")
        assert isinstance(app.screen, SaveScreen)  # still asking
        await pilot.press("escape")


async def test_the_palette_offers_the_screens_commands() -> None:
    app, _ = make_app()
    async with asyncio.timeout(TIMEOUT_S), app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Queue: retry every failed report" in titles
        assert "Go to Files" in titles
        await pilot.press("ctrl+p", *"retry every", "enter")
        await until(
            pilot,
            lambda: ("queue.retry", {"failed": True}) in app.backend.calls,  # type: ignore[attr-defined]
            "the palette's command",
        )


async def test_the_events_follow_until_scrolled_back() -> None:
    app, backend = make_app()
    async with asyncio.timeout(TIMEOUT_S), app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.model.connection == "connected", "the connection")
        many = [
            ("report.queued", {"report_id": f"r{n}", "sn": f"SN{n:05d}", "seq": n, "at": NOW})
            for n in range(1, 101)
        ]
        backend.notify(*many)
        await pilot.press("5")
        await until(pilot, lambda: "SN00100" in screen_text(app), "the newest event")
        assert " following " in screen_text(app)
        await pilot.press("pageup")
        await until(pilot, lambda: "paused: scrolled back" in screen_text(app), "the pause")
        shown = screen_text(app)
        backend.notify(("report.queued", {"report_id": "new", "sn": "SN99999", "seq": 101}))
        await until(pilot, lambda: app.model.received == 101, "the new event")
        await pilot.pause(0.2)
        assert "SN99999" not in screen_text(app)  # it stays where the person is reading
        assert screen_text(app).splitlines()[4:10] == shown.splitlines()[4:10]
        await pilot.press("end")
        await until(pilot, lambda: "SN99999" in screen_text(app), "following again")
        assert " following " in screen_text(app)


async def test_no_color_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app, _ = make_app()
    async with asyncio.timeout(TIMEOUT_S), app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.model.connection == "connected", "the connection")
        assert app.no_color


async def test_the_config_screen_takes_where_values_came_from_from_the_service() -> None:
    # A config file only root may read (0600): the service says which keys it sets and
    # what chose the state directory, so the screen needs no read of its own.
    def unreadable(path: str) -> bytes:
        raise PermissionError(13, "Permission denied", path)

    backend = FakeBackend()
    answer = {
        **backend_config(),
        "file_keys": ["server", "server.url", "upload", "upload.workers"],
        "state_dir_from": "$STATE_DIRECTORY",
    }
    backend.config_answer = answer
    app = StationApp(
        backend, refresh_s=0.05, clock=lambda: NOW, pywats=fake_pywats, read_file=unreadable
    )
    async with asyncio.timeout(TIMEOUT_S), app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        await until(pilot, lambda: "server.url" in screen_text(app), "the config")
        screen = app.screen
        sources = {key: source for key, _, source in screen.rows}  # type: ignore[attr-defined]
        assert sources["server.url"] == "file"
        assert sources["upload.workers"] == "file"
        assert sources["station.name"] == "default"
        assert sources["queue.path"] == "state dir"
        assert "cannot read it here" not in screen_text(app)
        table = screen.query_one("#config-table")
        table.move_cursor(row=[k for k, _, _ in screen.rows].index("queue.path"))  # type: ignore[attr-defined]
        await until(pilot, lambda: "from $STATE_DIRECTORY" in screen_text(app), "the origin")


async def test_a_file_with_companions_is_shown_and_moved_back_with_them() -> None:
    # A Klippel header rejected with its result folder: the screen names the folder with
    # the file, and the confirmation and the result say the group moves together.
    app, backend = make_app()
    backend.files[0].update(name="DUT 1.txt", companions=["DUT 1 UTC+0200"])
    async with asyncio.timeout(TIMEOUT_S), app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        await until(pilot, lambda: "with DUT 1 UTC+0200" in screen_text(app), "the companion")
        await pilot.press("m")
        assert isinstance(app.screen, ConfirmScreen)
        assert "DUT 1.txt with 1 companion(s)" in screen_text(app)
