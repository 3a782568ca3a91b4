"""``pywats queue`` (through the service and on a stopped one's database), ``converters``,
``server test``, ``config reload``, ``info`` and ``instances``: output and exit codes
against a real in-process service whose socket is in ``tmp_path``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from pywats import paths
from pywats.cli import main
from pywats.events import ReportQueued
from pywats.instance import InstanceLock
from pywats.rpc.server import RpcSettings
from pywats.service import Service
from pywats.store import Store
from tests.rpc.test_cli import LIMIT_S, cli
from tests.test_cli_queue import make_report
from tests.test_service import drop, make_plan, receiving


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.delenv("CONFIGURATION_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    return tmp_path / "xdg"


@asynccontextmanager
async def serving(tmp_path: Path, url: str | None) -> AsyncIterator[Service]:
    settings = RpcSettings(paths.socket_path("test"))
    service = Service(make_plan(tmp_path, url), handle_signals=False, rpc=settings)
    with trio.fail_after(LIMIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            yield service
            service.request_stop()


def fits(out: str) -> bool:
    return all(len(line) <= 80 for line in out.splitlines())


async def test_queue_converters_server_through_the_service(
    tmp_path: Path, runtime: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with receiving() as receiver, serving(tmp_path, receiver.url) as service:
        assert await cli("pause", "--instance", "test") == 0
        capsys.readouterr()
        with service.hub.subscribe() as events:
            report_id = drop(tmp_path / "in", "one.json")
            async for event in events:
                if isinstance(event, ReportQueued) and event.report_id == report_id:
                    break
        assert await cli("queue", "stats", "--instance", "test", "--json") == 0
        assert json.loads(capsys.readouterr().out)["pending"] == 1
        assert await cli("queue", "list", "--instance", "test", "--search", "SN") == 0
        out = capsys.readouterr().out
        assert report_id in out
        assert out.startswith("ID")
        assert await cli("queue", "show", report_id, "--instance", "test", "--json") == 0
        assert json.loads(capsys.readouterr().out)["body"]["id"] == report_id
        assert await cli("queue", "retry", report_id, "gone", "--instance", "test") == 1
        captured = capsys.readouterr()
        assert captured.out.strip() == "requeued 1 report(s)"
        assert "no report with id gone" in captured.err
        assert await cli("queue", "retry", "--failed", "--instance", "test") == 0
        assert capsys.readouterr().out.strip() == "requeued 0 failed report(s)"
        assert await cli("queue", "delete", report_id, "--instance", "test", "--json") == 0
        assert json.loads(capsys.readouterr().out) == {"deleted": [report_id], "missing": []}
        assert await cli("queue", "clean", "--older-than", "1", "--instance", "test") == 0
        assert "deleted 0 done report(s)" in capsys.readouterr().out
        assert await cli("resume", "--instance", "test") == 0
        capsys.readouterr()

        assert await cli("converters", "list", "--instance", "test") == 0
        out = capsys.readouterr().out
        assert out.startswith("NAME")
        assert "wsjf" in out
        assert fits(out)
        assert await cli("converters", "disable", "wsjf", "--instance", "test") == 0
        assert capsys.readouterr().out.strip() == "wsjf: disabled"
        assert await cli("converters", "enable", "nope", "--instance", "test") == 1
        assert "no watch folder named 'nope'" in capsys.readouterr().err

        assert await cli("server", "test", "--send-report", "--instance", "test") == 0
        out = capsys.readouterr().out
        assert "online" in out
        assert "report    uploaded" in out
        assert "PYWATS-TEST" in out
        assert fits(out)

        assert await cli("info", "--instance", "test", "--json") == 0
        info = json.loads(capsys.readouterr().out)
        assert info["service"]["state"] == "running"
        assert info["paths"]["socket"] == str(paths.socket_path("test"))
        assert await cli("instances", "--json") == 0
        rows = {r["instance"]: r for r in json.loads(capsys.readouterr().out)}
        assert rows["test"]["state"] == "running"

        # make_plan's service was not started from a file: reload has nothing to read.
        assert await cli("config", "reload", "--instance", "test") == 1


def fill(path: Path) -> None:
    async def run() -> None:
        async with await Store.open(path) as store:
            for n in range(3):
                await store.enqueue([make_report(n, f"SN-{n}")])
            first, second = await store.claim(2)
            await store.mark_done(first.id, status=200)
            await store.mark_failed(second.id, error="422", status=422)

    trio.run(run)


def test_queue_changes_a_stopped_instances_database(
    tmp_path: Path, runtime: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "state" / "queue.db"
    fill(db)
    assert main(["queue", "stats", "--instance", "test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["failed"] == 1
    assert main(["queue", "retry", "--failed", "--instance", "test"]) == 0
    assert capsys.readouterr().out.strip() == "requeued 1 failed report(s)"
    assert main(["queue", "delete", "id-2", "nope", "--instance", "test", "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {"deleted": ["id-2"], "missing": ["nope"]}
    assert main(["queue", "clean", "--older-than", "0", "--instance", "test"]) == 0
    assert "deleted 1 done report(s)" in capsys.readouterr().out
    assert main(["queue", "stats", "--instance", "test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 1

    with InstanceLock("test", db.parent / "lock"):
        assert main(["queue", "retry", "--failed", "--instance", "test"]) == 1
        err = capsys.readouterr().err
        assert "already running" in err
        assert str(paths.socket_path("test")) in err
    with pytest.raises(SystemExit) as usage:
        main(["queue", "retry", "--instance", "test"])
    assert usage.value.code == 2


def test_not_running_and_offline_commands(
    tmp_path: Path, runtime: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["converters", "list"], ["server", "test"], ["config", "reload"]):
        assert main([*argv, "--instance", "test"]) == 3
        assert str(paths.socket_path("test")) in capsys.readouterr().err
    (tmp_path / "config" / "pywats").mkdir(parents=True)
    (tmp_path / "config" / "pywats" / "line-1.toml").write_text(
        '[server]\ntoken = "c2VjcmV0LXRva2VuLXZhbHVl"\n'
    )
    assert main(["info", "--instance", "line-1"]) == 0
    out = capsys.readouterr().out
    assert "token     server.token" in out
    assert "c2VjcmV0" not in out
    assert "service   stopped" in out
    assert fits(out)
    assert main(["instances"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("INSTANCE")
    assert "line-1    stopped" in out
