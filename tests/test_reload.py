"""Reading the configuration again while the service runs (``config.get``, ``config.reload``,
SIGHUP): in-process services made by :func:`pywats.plan.prepare` from a TOML file in
``tmp_path``, real watch folders and a real receiver on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from pywats.config import ConfigCheckError
from pywats.events import ComponentStatus, FileProcessed, ReportUploaded
from pywats.plan import Plan, prepare
from pywats.service import Service
from pywats.upload import UploaderState
from pywats.view import BUILT_IN_DEFAULTS, NoConfigError, ServiceStartingError
from tests.test_service import drop, make_plan, receiving
from tests.test_view import expect

LIMIT_S = 60.0
TOKEN = "c2VjcmV0LXRva2VuLTVmM2E5Yw=="  # unique enough that a search of the JSON means something


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return json.dumps(str(value))  # a JSON string is a TOML basic string
    return str(value)


def write_config(
    tmp_path: Path,
    *,
    server: dict[str, object] | None = None,
    upload: dict[str, object] | None = None,
    extra: str = "",
    entries: int = 1,
    enabled: tuple[bool, ...] = (True, True),
    queue: str = "queue.db",
    convert_workers: int = 2,
) -> Path:
    """The instance's file: one wsjf entry per folder ``in``, ``in2``, ... (relative paths,
    so they are anchored at the file's folder, as in production)."""
    lines = [f'[queue]\npath = "{queue}"\n', f"[convert]\nworkers = {convert_workers}\n"]
    for name, table in (("server", server), ("upload", {"retry_base_s": 0.2, **(upload or {})})):
        if table:
            lines.append(f"[{name}]")
            lines += [f"{key} = {_value(value)}" for key, value in table.items()]
            lines.append("")
    for index in range(entries):
        suffix = "" if index == 0 else str(index + 1)
        lines += [
            "[[converters]]",
            'name = "wsjf"',
            f'watch = "in{suffix}"',
            f'done_dir = "done{suffix}"',
            f'error_dir = "error{suffix}"',
            f"enabled = {_value(enabled[index])}",
            "",
        ]
    path = tmp_path / "test.toml"
    path.write_text("\n".join(lines) + extra)
    for index in range(entries):
        (tmp_path / f"in{'' if index == 0 else index + 1}").mkdir(exist_ok=True)
    return path


def prepared(path: Path, **kwargs: Any) -> Plan:
    return prepare("test", path, environ=kwargs.pop("environ", {}), **kwargs)[2]


@asynccontextmanager
async def running(run_plan: Plan, *, handle_signals: bool = False) -> AsyncIterator[Service]:
    service = Service(run_plan, handle_signals=handle_signals)
    with trio.fail_after(LIMIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            yield service
            service.request_stop()


async def reloaded(service: Service) -> Any:
    """Reload and wait for the ``config`` status it publishes."""
    async with expect(service, ComponentStatus, component="config"):
        result = await service.view.reload_config()
    return result


# --- config.get ----------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["server.token", "server.token_file", "credential", "env"])
def test_effective_config_names_the_token_source_and_never_holds_the_token(
    tmp_path: Path, source: str
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    server: dict[str, object] = {"url": "http://127.0.0.1:9", "proxy": "http://u:pw@proxy:3128"}
    environ: dict[str, str] = {}
    expected: dict[str, object]
    if source == "server.token":
        server["token"] = TOKEN
        expected = {"source": "server.token", "path": None}
    elif source == "server.token_file":
        server["token_file"] = "token"  # relative: next to the file
        expected = {"source": "server.token_file", "path": str(token_file)}
    elif source == "credential":
        environ = {"CREDENTIALS_DIRECTORY": str(tmp_path), "PYWATS_TOKEN": "other-token"}
        expected = {"source": "CREDENTIALS_DIRECTORY/token", "path": str(token_file)}
    else:
        environ = {"PYWATS_TOKEN": TOKEN}
        expected = {"source": "PYWATS_TOKEN", "path": None}
    path = write_config(tmp_path, server=server)
    run_plan = prepared(path, environ=environ)
    assert run_plan.uploader.token == TOKEN  # the service does have it
    shown = Service(run_plan, handle_signals=False).view.effective_config()
    text = json.dumps(shown)  # JSON-able as it is
    assert TOKEN not in text
    assert "pw" not in shown["server"]["proxy"]
    assert shown["server"]["token"] == expected
    assert shown["file"] == str(path)
    # Defaults filled in, paths absolute, each folder with its settings.
    assert shown["upload"]["workers"] == 5
    assert shown["server"]["read_timeout_s"] == 60.0
    assert shown["queue"]["path"] == str(tmp_path / "queue.db")
    [entry] = shown["converters"]
    assert entry["folder"] == "wsjf"
    assert entry["watch"] == str(tmp_path / "in")
    assert entry["patterns"] == ["*.json"]
    assert entry["done_dir"] == str(tmp_path / "done")
    assert entry["post_action"] == "move"
    assert shown["server_url_option"] is None


def test_effective_config_without_a_file_or_a_token(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(tmp_path / "config"))
    _, token, run_plan = prepare("test", None, environ={}, server_url="http://127.0.0.1:9")
    assert token is None
    shown = Service(run_plan, handle_signals=False).view.effective_config()
    assert shown["file"] == BUILT_IN_DEFAULTS
    assert shown["server"]["token"] is None
    assert shown["server"]["url"] == "http://127.0.0.1:9"
    assert shown["server_url_option"] == "http://127.0.0.1:9"
    assert [e["folder"] for e in shown["converters"]] == ["wsjf", "wsxf", "wstf"]


async def test_reload_needs_the_components_and_a_prepared_plan(tmp_path: Path) -> None:
    view = Service(prepared(write_config(tmp_path)), handle_signals=False).view
    with pytest.raises(ServiceStartingError):
        await view.reload_config()
    async with running(make_plan(tmp_path / "x", None)) as service:
        with pytest.raises(NoConfigError):
            await service.view.reload_config()


# --- config.reload -------------------------------------------------------------------------


async def test_reload_applies_a_new_server_url(tmp_path: Path) -> None:
    async with receiving() as first, receiving() as second:
        path = write_config(tmp_path, server={"url": first.url})
        async with running(prepared(path)) as service:
            write_config(tmp_path, server={"url": second.url})
            result = await reloaded(service)
            assert (result.applied, result.needs_restart, result.errors) == (
                ("server.url",),
                (),
                (),
            )
            assert service.view.effective_config()["server"]["url"] == second.url
            async with expect(service, ReportUploaded) as found:
                report_id = drop(tmp_path / "in", "after.json")
            assert found[0].report_id == report_id  # type: ignore[attr-defined]
            assert second.get_report(report_id) is not None
            assert first.get_report(report_id) is None
            # Nothing changed since: nothing to do, and the uploader is left alone.
            again = await reloaded(service)
            assert (again.applied, again.needs_restart) == ((), ())


async def test_reload_applies_a_changed_retry_setting(tmp_path: Path) -> None:
    path = write_config(tmp_path, upload={"retry_max_s": 300})
    async with running(prepared(path)) as service:
        write_config(tmp_path, upload={"retry_max_s": 42})
        result = await reloaded(service)
        assert result.applied == ("upload.retry_max_s",)
        uploader = service.view._parts()[1]
        assert uploader.config.retry_max_s == 42
        assert service.view.effective_config()["upload"]["retry_max_s"] == 42


async def test_a_folder_disabled_in_the_file_stops_and_enabled_again_resumes(
    tmp_path: Path,
) -> None:
    path = write_config(tmp_path, entries=2)
    async with running(prepared(path)) as service:
        write_config(tmp_path, entries=2, enabled=(False, True))
        async with expect(service, ComponentStatus, component="folder:wsjf", state="disabled"):
            result = await service.view.reload_config()
        assert result.applied == ("converters[0].enabled",)
        waiting = tmp_path / "in" / "waits.json"
        waiting_id = drop(tmp_path / "in", "waits.json")
        # The other entry goes on: a file dropped after the first is taken, the first stays.
        async with expect(service, FileProcessed) as found:
            other_id = drop(tmp_path / "in2", "other.json")
        assert found[0].report_ids == (other_id,)  # type: ignore[attr-defined]
        assert waiting.exists()
        [first, second] = (await service.view.status()).folders
        assert (first.enabled, second.enabled) == (False, True)

        write_config(tmp_path, entries=2, enabled=(True, True))
        async with expect(service, FileProcessed, report_ids=(waiting_id,)):
            result = await service.view.reload_config()
        assert result.applied == ("converters[0].enabled",)
        assert not waiting.exists()


async def test_keys_that_need_a_restart_are_named_and_not_applied(tmp_path: Path) -> None:
    path = write_config(tmp_path, entries=2, enabled=(True, False))
    async with running(prepared(path)) as service:
        before = service.view.effective_config()
        write_config(
            tmp_path,
            entries=2,
            enabled=(True, True),  # disabled at start: never loaded, so a restart is needed
            queue="other.db",
            convert_workers=3,
            upload={"retry_max_s": 99},
        )
        result = await reloaded(service)
        assert result.applied == ("upload.retry_max_s",)
        assert set(result.needs_restart) == {
            "convert.workers",
            "queue.path",
            "converters[1].enabled",
        }
        after = service.view.effective_config()
        assert after["queue"] == before["queue"]
        assert after["convert"]["workers"] == before["convert"]["workers"] == 2
        assert after["converters"][1]["enabled"] is False
        assert not (tmp_path / "other.db").exists()
        # Still waiting for the restart: a second reload says so again.
        again = await reloaded(service)
        assert set(again.needs_restart) == set(result.needs_restart)
        assert again.applied == ()

        # Entries added or removed: the list as a whole needs a restart.
        write_config(tmp_path, entries=1, queue="queue.db", convert_workers=2)
        assert (await reloaded(service)).needs_restart == ("converters",)


async def test_a_broken_file_changes_nothing_and_answers_the_check_s_errors(
    tmp_path: Path,
) -> None:
    async with receiving() as receiver:
        path = write_config(tmp_path, server={"url": receiver.url})
        async with running(prepared(path)) as service:
            before = service.view.effective_config()
            write_config(
                tmp_path,
                server={"url": "http://127.0.0.1:1"},
                upload={"workers": "5", "retry_maxs": 3},
            )
            with pytest.raises(ConfigCheckError) as checked:
                prepare("test", path, environ={})
            async with expect(service, ComponentStatus, component="config", state="refused"):
                result = await service.view.reload_config()
            assert not result.ok
            assert (result.applied, result.needs_restart) == ((), ())
            assert [(e.key, e.reason) for e in result.errors] == [
                (e.key, e.reason) for e in checked.value.errors
            ]
            assert [e.text for e in result.errors] == [str(e) for e in checked.value.errors]
            assert {e.key for e in result.errors} == {"upload.workers", "upload.retry_maxs"}
            assert service.view.effective_config() == before
            assert service.view._parts()[1].config.url == receiver.url

            path.write_text("[server\n")  # not TOML at all
            result = await service.view.reload_config()
            [error] = result.errors
            assert str(path) in error.text
            assert service.view.effective_config() == before


async def test_a_fixed_token_resumes_uploads_without_a_restart(tmp_path: Path) -> None:
    good = "Z29vZC10b2tlbg=="
    token_file = tmp_path / "token"
    token_file.write_text("d3JvbmctdG9rZW4=\n")
    async with receiving(token=good) as receiver:
        path = write_config(tmp_path, server={"url": receiver.url, "token_file": "token"})
        async with running(prepared(path)) as service:
            uploader = service.view._parts()[1]
            while uploader.status().state is not UploaderState.PAUSED:
                await uploader.wait_status_changed(uploader.status_generation)
            assert "refused the token" in uploader.status().reason
            async with expect(service, FileProcessed) as found:
                report_id = drop(tmp_path / "in", "waits.json")
            assert found[0].report_ids == (report_id,)  # type: ignore[attr-defined]
            assert receiver.get_report(report_id) is None

            token_file.write_text(good + "\n")
            async with expect(service, ReportUploaded, report_id=report_id):
                result = await service.view.reload_config()
            # The key is the same; its content changed: named by its source.
            assert result.applied == ("server.token_file",)
            assert receiver.get_report(report_id) is not None
            assert uploader.status().state is UploaderState.ONLINE
            assert good not in json.dumps(service.view.effective_config())


# --- SIGHUP --------------------------------------------------------------------------------


async def test_sighup_reloads_and_logs_each_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pywats")
    path = write_config(tmp_path)
    async with running(prepared(path), handle_signals=True) as service:
        write_config(tmp_path, upload={"retry_max_s": 42}, convert_workers=3)
        async with expect(service, ComponentStatus, component="config", state="reloaded"):
            os.kill(os.getpid(), signal.SIGHUP)
        assert service.view._parts()[1].config.retry_max_s == 42
        messages = [r.getMessage() for r in caplog.records]
        assert "config reload: upload.retry_max_s changed, applied" in messages
        assert "config reload: convert.workers changed, takes effect after a restart" in messages

        # A broken file: the errors with their key paths, and the service goes on.
        write_config(tmp_path, upload={"workers": 0})
        async with expect(service, ComponentStatus, component="config", state="refused"):
            os.kill(os.getpid(), signal.SIGHUP)
        assert any(
            "refused" in m and "upload.workers" in m
            for m in (r.getMessage() for r in caplog.records)
        )
        assert service.view._parts()[1].config.workers == 5
        async with expect(service, FileProcessed):
            drop(tmp_path / "in", "still.json")
