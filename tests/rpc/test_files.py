"""``files.errors`` and ``files.restore`` through the socket: a real service in-process, a
real watch folder, a file that cannot be converted and is moved back once it can.

Every wait is bounded by ``trio.fail_after`` (in ``serving``) and waits for a
notification, never a sleep.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from pywats.errorfiles import (
    ErrorFileNotFoundError,
    NameTakenError,
    Restored,
    RestoreRefusedError,
    list_error_files,
    restore_error_file,
)
from pywats.events import FileRejected
from pywats.rpc.client import RpcClient
from pywats.rpc.errors import ErrorCode, RpcError
from tests.integration.harness import PYWATS, Instance, ReceiverProcess, running, stop, wait_for
from tests.report.minimal import uut
from tests.rpc.test_cli import cli
from tests.rpc.test_cli_commands import serving as serving_instance
from tests.rpc.test_socket import next_note, serving
from tests.test_pipeline_companions import BAD_HEADER, DATA, FOLDER, HEADER, put_unit, tree


def put(folder: Path, name: str, data: bytes) -> None:
    """Write ``name`` into ``folder`` the way test equipment should: by rename."""
    tmp = folder / f".{name}.tmp"
    tmp.write_bytes(data)
    tmp.rename(folder / name)


async def code_of(client: RpcClient, method: str, **params: Any) -> int:
    with pytest.raises(RpcError) as caught:
        await client.call(method, **params)
    return caught.value.code


async def test_list_refuse_and_move_back_a_file_that_did_not_convert(tmp_path: Path) -> None:
    watch, errors = tmp_path / "in", tmp_path / "error"
    async with serving(tmp_path, None) as (_, path), RpcClient(path) as client:
        notes = await client.subscribe()
        assert await client.call("files.errors") == {"files": [], "truncated": False}
        put(watch, "bad.json", b'{"not": "a report"')
        rejected = await next_note(notes, "file.rejected", source=str(watch / "bad.json"))
        assert rejected["error_file"] == str(errors / "bad.json")

        listing = await client.call("files.errors", folder="wsjf")
        [entry] = listing["files"]
        assert (entry["folder"], entry["name"], entry["path"]) == (
            "wsjf",
            "bad.json",
            str(errors / "bad.json"),
        )
        assert entry["sidecar"] == str(errors / "bad.json.error.txt")
        assert entry["error"] == (errors / "bad.json.error.txt").read_text()
        assert "wsjf" in entry["error"]
        assert entry["size"] == len(b'{"not": "a report"')
        assert listing["truncated"] is False
        assert await code_of(client, "files.errors", folder="nope") == ErrorCode.UNKNOWN_FOLDER

        # What is not a file of the error folder is refused, and nothing moves.
        outside = tmp_path / "outside.json"
        outside.write_text("{}")
        (errors / "link").symlink_to(tmp_path)
        for name in ("../outside.json", str(outside), "link/outside.json", "bad.json.error.txt"):
            assert await code_of(client, "files.restore", folder="wsjf", name=name) == (
                ErrorCode.INVALID_PARAMS
            ), name
        assert await code_of(client, "files.restore", folder="wsjf", name="gone.json") == (
            ErrorCode.FILE_NOT_FOUND
        )
        assert await code_of(client, "files.restore", folder="nope", name="bad.json") == (
            ErrorCode.UNKNOWN_FOLDER
        )
        # The name is taken in the watch folder (by a folder, which the watcher leaves
        # alone): never overwritten.
        (watch / "bad.json").mkdir()
        assert await code_of(client, "files.restore", folder="wsjf", name="bad.json") == (
            ErrorCode.FILE_EXISTS
        )
        assert (errors / "bad.json").is_file()
        (watch / "bad.json").rmdir()

        # Fixed: the file is moved back (its old explanation goes) and converted again.
        report = uut()
        report["id"] = str(uuid.uuid4())
        (errors / "bad.json").write_text(json.dumps(report))
        moved = await client.call("files.restore", folder="wsjf", name="bad.json")
        assert moved == {
            "folder": "wsjf",
            "name": "bad.json",
            "path": str(watch / "bad.json"),
            "companions": [],
        }
        assert not (errors / "bad.json").exists()
        assert not (errors / "bad.json.error.txt").exists()
        await next_note(notes, "report.queued", report_id=report["id"])
        assert (await client.call("files.errors"))["files"] == []
        assert outside.read_text() == "{}"


def test_the_listing_is_newest_first_and_bounded(tmp_path: Path) -> None:
    errors = tmp_path / "error"
    (errors / "sub").mkdir(parents=True)
    for index, name in enumerate(["a.json", "b.json", "sub/c.json"]):
        (errors / name).write_text(name)
        (errors / f"{name}.error.txt").write_text(f"why {name}")
        os.utime(errors / name, (1000 + index, 1000 + index))
    (errors / ".hidden.json").write_text("x")
    (errors / "d.json.pywats-tmp").write_text("x")
    files, more = list_error_files(errors)
    assert [f.name for f in files] == ["b.json", "a.json"]
    assert not more
    assert files[0].error == "why b.json"
    files, more = list_error_files(errors, recursive=True, limit=2)
    assert [f.name for f in files] == ["sub/c.json", "b.json"]
    assert more


def test_restore_refuses_what_it_must_and_keeps_the_watch_folder_intact(tmp_path: Path) -> None:
    errors, watch = tmp_path / "error", tmp_path / "in"
    (errors / "sub").mkdir(parents=True)
    watch.mkdir()
    (errors / "a.json").write_text("new")
    (errors / "sub" / "b.json").write_text("b")
    (watch / "a.json").write_text("old")
    with pytest.raises(NameTakenError):
        restore_error_file(errors, watch, "a.json")
    assert (watch / "a.json").read_text() == "old"
    assert (errors / "a.json").read_text() == "new"
    assert sorted(p.name for p in watch.iterdir()) == ["a.json"]  # no staging name left
    with pytest.raises(RestoreRefusedError):
        restore_error_file(errors, watch, "sub/b.json")  # not a recursive folder
    with pytest.raises(ErrorFileNotFoundError):
        restore_error_file(errors, watch, "none.json")
    (errors / "dir.json").mkdir()
    with pytest.raises(RestoreRefusedError):
        restore_error_file(errors, watch, "dir.json")
    restored = restore_error_file(errors, watch, "sub/b.json", recursive=True)
    assert restored == Restored(watch / "sub" / "b.json")
    assert (watch / "sub" / "b.json").read_text() == "b"


async def test_the_queue_search_finds_serial_and_part_numbers(tmp_path: Path) -> None:
    async with serving(tmp_path, None) as (_, path), RpcClient(path) as client:
        notes = await client.subscribe()
        await client.call("service.pause")
        wanted = {}
        for index, (pn, sn) in enumerate([("PCBA-100", "SN-A1"), ("PCBA-200", "SN-B2")]):
            report = uut()
            report.update(id=str(uuid.uuid4()), pn=pn, sn=sn)
            put(tmp_path / "in", f"r{index}.json", json.dumps(report).encode())
            wanted[sn] = report["id"]
        queued: set[str] = set()
        async for note in notes:  # the workers may queue them in either order
            if note.method == "report.queued":
                queued.add(note.params["report_id"])
            if queued >= set(wanted.values()):
                break

        async def found(text: str) -> list[str]:
            page = await client.call("queue.list", search=text)
            return sorted(r["sn"] for r in page["reports"])

        assert await found("sn-b") == ["SN-B2"]  # a serial number
        assert await found("pcba-1") == ["SN-A1"]  # a part number
        assert await found("PCBA") == ["SN-A1", "SN-B2"]
        assert await found("%") == []  # literally


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The instance ``test``'s socket under ``tmp_path`` (where ``--instance test`` looks)."""
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg"))
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    return tmp_path / "xdg"


@pytest.mark.usefixtures("runtime")
async def test_pywats_files_list_and_restore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with serving_instance(tmp_path, None) as service:
        with service.hub.subscribe() as events:
            put(tmp_path / "in", "bad.json", b"{nope")
            async for event in events:
                if isinstance(event, FileRejected):
                    break
        assert await cli("files", "list", "--instance", "test") == 0
        out = capsys.readouterr().out
        assert out.startswith("wsjf  bad.json  (")
        assert len(out.splitlines()) == 2
        assert await cli("files", "list", "--instance", "test", "--full") == 0
        assert (tmp_path / "error" / "bad.json.error.txt").read_text().splitlines()[0] in (
            capsys.readouterr().out
        )
        assert await cli("files", "restore", "wsjf", "../x", "--instance", "test") == 1
        assert "invalid params" in capsys.readouterr().err
        assert await cli("files", "restore", "wsjf", "bad.json", "--instance", "test") == 0
        assert capsys.readouterr().out == f"moved back to {tmp_path / 'in' / 'bad.json'}\n"


def test_pywats_files_restore_moves_a_klippel_unit_back_and_it_is_uploaded(
    tmp_path: Path,
) -> None:
    """A real ``pywats serve`` rejects a Klippel header with its result folder; once the
    header is fixed, ``pywats files restore`` (a real client over the real socket) moves
    both back, the folder first, and the unit is converted and uploaded."""
    receiver = ReceiverProcess(tmp_path / "receiver.db")
    try:
        inst = Instance(tmp_path, "kl", server_url=receiver.url)
        inst.config.write_text(inst.config.read_text().replace('name = "wsjf"', 'name = "klippel"'))

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*PYWATS, "files", *args, "--instance", inst.name],
                env=inst.env(),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        with running(inst.serve()) as proc:
            inst.wait_ready()
            staging = tmp_path / "staging"
            put_unit(staging, header=BAD_HEADER)
            (staging / FOLDER).rename(inst.watch / FOLDER)  # as Klippel QC: folder first
            (staging / HEADER).rename(inst.watch / HEADER)
            wait_for(
                lambda: (inst.error / f"{HEADER}.error.txt").exists(),
                timeout=30,
                what="the header rejected",
            )
            assert sorted(os.listdir(inst.error)) == sorted([HEADER, f"{HEADER}.error.txt", FOLDER])
            listed = run("list", "--json")
            assert listed.returncode == 0, listed.stderr
            [entry] = json.loads(listed.stdout)["files"]  # the folder's files are not listed
            assert (entry["name"], entry["companions"]) == (HEADER, [FOLDER])
            text = run("list")
            assert f"    with {FOLDER} (moved back with it)" in text.stdout

            (inst.error / HEADER).write_bytes((DATA / HEADER).read_bytes())  # the fix
            moved = run("restore", "klippel", HEADER)
            assert moved.returncode == 0, moved.stderr
            assert moved.stdout.splitlines() == [
                f"moved back to {inst.watch / FOLDER} (a companion, first)",
                f"moved back to {inst.watch / HEADER}",
            ]
            wait_for(lambda: len(receiver.ids()) == 1, timeout=60, what="the report uploaded")
            wait_for(lambda: not os.listdir(inst.watch), timeout=30, what="the watch folder empty")
            assert os.listdir(inst.error) == []
            assert tree(inst.done) == tree(DATA)
            assert stop(proc) == 0
    finally:
        receiver.stop()
