"""``pywats status``, ``events``, ``pause``/``resume``/``stop``: output and exit codes, against
a service in-process (the command runs ``trio.run`` in a worker thread) and, for "not
running", as a real subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from pywats import paths
from pywats.cli import main
from pywats.cli.events import format_notification
from pywats.events import EventHub
from pywats.rpc.codec import Notification
from pywats.rpc.server import RpcServer, RpcSettings
from pywats.service import Service
from pywats.view import ServiceView
from tests.rpc.test_socket import RefuseAll
from tests.test_service import make_plan

LIMIT_S = 60.0


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


@asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[Service]:
    settings = RpcSettings(paths.socket_path("test"))
    service = Service(make_plan(tmp_path, None), handle_signals=False, rpc=settings)
    with trio.fail_after(LIMIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            yield service
            service.request_stop()


async def cli(*argv: str) -> int:
    return await trio.to_thread.run_sync(main, list(argv))


def test_status_when_nothing_listens_exits_3_naming_the_socket(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RUNTIME_DIRECTORY"}
    env["XDG_RUNTIME_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "pywats.cli", "status", "--instance", "nosuch"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert str(tmp_path / "pywats" / "nosuch" / "control.sock") in done.stderr
    assert "not running" in done.stderr


def test_usage_errors_exit_2(runtime: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["status", "--bogus"])
    assert caught.value.code == 2
    assert main(["status", "--instance", "../bad"]) == 2
    assert "pywats status:" in capsys.readouterr().err


async def test_status_pause_resume_events_stop(
    tmp_path: Path, runtime: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with serving(tmp_path) as service:
        assert await cli("status", "--instance", "test") == 0
        out = capsys.readouterr().out
        assert out.startswith("instance  test")
        assert "running" in out
        assert "wsjf" in out
        assert all(len(line) <= 80 for line in out.splitlines())

        assert await cli("status", "--instance", "test", "--json") == 0
        assert json.loads(capsys.readouterr().out)["state"] == "running"

        assert await cli("pause", "--instance", "test") == 0
        assert capsys.readouterr().out.strip() == "test: uploads paused"
        assert await cli("resume", "--instance", "test") == 0
        assert capsys.readouterr().out.strip() == "test: uploads resumed"

        assert await cli("events", "--instance", "test", "--json", "--wait", "0.2") == 0
        for line in capsys.readouterr().out.splitlines():
            assert set(json.loads(line)) == {"method", "params"}

        assert await cli("stop", "--instance", "test") == 0
        assert capsys.readouterr().out.strip() == "test: stopping"
    assert not paths.socket_path("test").exists()
    assert service.view.state.value == "stopping"


async def test_permission_refused_exits_4(
    tmp_path: Path, runtime: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = Service(make_plan(tmp_path, None), handle_signals=False)
    server = RpcServer(service.view, RpcSettings(paths.socket_path("locked")))
    server.policy = RefuseAll(uid=os.geteuid())
    with trio.fail_after(LIMIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            assert await cli("status", "--instance", "locked") == 4
            assert "permission refused" in capsys.readouterr().err
            nursery.cancel_scope.cancel()


def test_a_notification_as_a_line() -> None:
    line = format_notification(
        Notification(
            "report.deleted",
            {"stream": "s", "seq": 3, "at": 0.0, "report_id": "r1", "reason": "gone"},
        )
    )
    assert line.endswith("report.deleted   report r1: gone")
    gap = format_notification(Notification("events.gap", {"stream": "s", "dropped": 4}))
    assert "4 event(s) dropped" in gap


async def test_an_error_answer_exits_1(
    tmp_path: Path, runtime: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A view with no components yet: the service is starting, pause cannot be done.
    view = ServiceView("early", EventHub(), request_stop=lambda: None)
    server = RpcServer(view, RpcSettings(paths.socket_path("early")))
    with trio.fail_after(LIMIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            assert await cli("pause", "--instance", "early") == 1
            assert "starting" in capsys.readouterr().err
            assert await cli("status", "--instance", "early") == 0
            assert "queue     (not open yet)" in capsys.readouterr().out
            nursery.cancel_scope.cancel()
