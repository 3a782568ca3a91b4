"""``pywats queue stats|list|show`` as a real subprocess on a real database.

The commands run as ``python -m pywats.cli.queue`` (the module's own entry point), so
these tests do not depend on how ``pywats.cli`` wires them in.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from pywats.cli.queue import register
from pywats.errors import ConfigError
from pywats.paths import default_db_path, state_dir, validate_instance
from pywats.store import NewReport, SourceFile, Store


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pywats.cli.queue", "queue", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )


def make_report(n: int, sn: str) -> NewReport:
    body = json.dumps({"id": f"id-{n}", "sn": sn, "steps": [{"name": "päss"}]}).encode()
    return NewReport(
        id=f"id-{n}",
        body=body,
        pn="PN-7",
        sn=sn,
        result="Passed" if n % 2 else "Failed",
        start="2024-05-01T10:00:00+00:00",
        converter="wsjf",
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A queue with 2 pending, 1 failed and 1 done report."""
    path = tmp_path / "queue.db"

    async def fill() -> None:
        async with await Store.open(path) as store:
            for n, sn in enumerate(["AB-1", "ab-2", "CD-3", "AB-4"]):
                await store.enqueue([make_report(n, sn)], SourceFile(f"h{n}", f"/in/{n}", 1, 0))
            first, second = await store.claim(2)
            await store.mark_done(first.id, status=200)
            await store.mark_failed(second.id, error="422: missing\nserial", status=422)

    trio.run(fill)
    return path


def test_stats_text(db: Path) -> None:
    result = run_cli("stats", "--db", str(db))
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert {k: v.strip() for k, v in lines.items() if k != "oldest_pending_age_s"} == {
        "pending": "2",
        "uploading": "0",
        "done": "1",
        "failed": "1",
        "total_bytes": str(
            sum(
                len(make_report(n, sn).body)
                for n, sn in enumerate(["AB-1", "ab-2", "CD-3", "AB-4"])
            )
        ),
        "total": "4",
    }
    assert result.stderr == ""


def test_stats_json(db: Path) -> None:
    result = run_cli("stats", "--json", "--db", str(db))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["pending"], data["done"], data["failed"], data["total"]) == (2, 1, 1, 4)
    assert data["oldest_pending_age_s"] >= 0


def test_list_text_is_a_table_newest_first(db: Path) -> None:
    result = run_cli("list", "--db", str(db))
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        "ID",
        "STATE",
        "TRIES",
        "CREATED",
        "PN",
        "SN",
        "RESULT",
        "LAST",
        "ERROR",
    ]
    assert [r.split()[0] for r in rows] == ["id-3", "id-2", "id-1", "id-0"]
    failed_row = next(r for r in rows if r.startswith("id-1"))
    assert "failed" in failed_row
    assert "422: missing serial" in failed_row  # one line per report, even for multi-line errors


def test_list_filters_and_pages_as_json(db: Path) -> None:
    result = run_cli("list", "--json", "--sn", "ab", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert [r["sn"] for r in json.loads(result.stdout)] == ["AB-4", "ab-2", "AB-1"]

    result = run_cli("list", "--json", "--state", "pending", "--db", str(db))
    assert [r["id"] for r in json.loads(result.stdout)] == ["id-3", "id-2"]

    result = run_cli("list", "--json", "--limit", "2", "--offset", "1", "--db", str(db))
    page = json.loads(result.stdout)
    assert [r["id"] for r in page] == ["id-2", "id-1"]
    assert "body" not in page[0]
    assert page[1]["last_error"] == "422: missing\nserial"


def test_list_empty_result(db: Path) -> None:
    result = run_cli("list", "--sn", "nothing-like-this", "--db", str(db))
    assert (result.returncode, result.stdout.strip()) == (0, "no reports")


def test_show_text_prints_metadata_and_body(db: Path) -> None:
    result = run_cli("show", "id-1", "--db", str(db))
    assert result.returncode == 0, result.stderr
    meta, body = result.stdout.split("\n\n", 1)
    fields = dict(line.split(":", 1) for line in meta.splitlines() if ":" in line)
    assert fields["id"].strip() == "id-1"
    assert fields["state"].strip() == "failed"
    assert fields["last_status"].strip() == "422"
    assert json.loads(body) == json.loads(make_report(1, "ab-2").body)


def test_show_json(db: Path) -> None:
    result = run_cli("show", "id-0", "--json", "--db", str(db))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["state"] == "done"
    assert data["last_status"] == 200
    assert data["body"] == json.loads(make_report(0, "AB-1").body)


def test_show_unknown_id_is_one_line_exit_1(db: Path) -> None:
    result = run_cli("show", "no-such-id", "--db", str(db))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "pywats queue: no report with id no-such-id\n"


@pytest.mark.parametrize("command", [["stats"], ["list"], ["show", "x"]])
def test_missing_database_is_one_line_exit_1(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "nope" / "queue.db"
    result = run_cli(*command, "--db", str(missing))
    assert result.returncode == 1
    assert result.stderr == f"pywats queue: no queue database at {missing}\n"
    assert "Traceback" not in result.stderr
    assert not missing.parent.exists()  # read-only commands create nothing


def test_instance_selects_the_state_directory(db: Path, tmp_path: Path) -> None:
    env = {"STATE_DIRECTORY": str(db.parent), "PATH": "/usr/bin:/bin"}
    result = run_cli("stats", "--json", "--instance", "line-3", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["total"] == 4

    env = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path), "PATH": "/usr/bin"}
    result = run_cli("stats", "--instance", "line-3", env=env)
    expected = tmp_path / "xdg" / "pywats" / "line-3" / "queue.db"
    assert result.stderr == f"pywats queue: no queue database at {expected}\n"


def test_bad_instance_name_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("stats", "--instance", "../etc")
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "invalid instance name" in result.stderr


async def test_works_while_the_service_holds_the_database(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    async with await Store.open(path) as store:
        await store.enqueue([make_report(1, "SN-LIVE")])
        await store.claim()
        await store.enqueue([make_report(2, "SN-LIVE")])
        result = await trio.run_process(
            [
                sys.executable,
                "-m",
                "pywats.cli.queue",
                "queue",
                "list",
                "--json",
                "--db",
                str(path),
            ],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        rows = json.loads(result.stdout)
        assert [(r["id"], r["state"]) for r in rows] == [("id-2", "pending"), ("id-1", "uploading")]
        # The service keeps working after the reader is gone.
        await store.enqueue([make_report(3, "SN-LIVE")])
        assert (await store.stats()).total == 3


@pytest.mark.parametrize("name", ["default", "line-3", "a", "A_b.c-9", "x" * 64, "1"])
def test_valid_instance_names(name: str) -> None:
    assert validate_instance(name) == name


@pytest.mark.parametrize("name", ["", ".hidden", "..", "a/b", "a b", "x" * 65, "ä", "a:b"])
def test_invalid_instance_names(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_instance(name)
    assert info.value.key == "instance"


def test_state_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert state_dir("l1") == tmp_path / ".local" / "share" / "pywats" / "l1"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert state_dir("l1") == tmp_path / ".local" / "share" / "pywats" / "l1"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path("l1") == tmp_path / "xdg" / "pywats" / "l1" / "queue.db"
    # systemd's StateDirectory=pywats/%i is already per instance; the first entry wins.
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/pywats/l1:/var/lib/other")
    assert default_db_path("l1") == Path("/var/lib/pywats/l1/queue.db")
    with pytest.raises(ConfigError):
        state_dir("../l1")


def test_register_builds_a_parser_with_handlers() -> None:
    parser = argparse.ArgumentParser(prog="pywats")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["queue", "list", "--state", "failed", "--sn", "x", "--limit", "5"])
    assert (args.state, args.sn, args.limit, args.offset, args.json, args.instance, args.db) == (
        "failed",
        "x",
        5,
        0,
        False,
        "default",
        None,
    )
    assert callable(args.func)
    with pytest.raises(SystemExit):
        parser.parse_args(["queue", "list", "--state", "bogus"])
    with pytest.raises(SystemExit):
        parser.parse_args(["queue", "list", "--limit", "-1"])
