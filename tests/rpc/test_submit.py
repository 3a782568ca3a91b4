"""``pywats submit``: which watch folder a file goes to, what the command waits for, and the
whole command against a real in-process service, its watch folder and a real receiver.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio

from pywats import config as config_mod
from pywats import paths
from pywats.cli.control import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from pywats.cli.submit import SubmitError, Waiting, choose_folder
from pywats.placing import SUBMIT_SUFFIX, place_copy, place_group
from pywats.plan import plan
from pywats.rpc.server import RpcSettings
from pywats.service import Service
from tests.report.minimal import uut
from tests.rpc.test_cli import LIMIT_S, cli
from tests.rpc.test_cli_commands import runtime, serving
from tests.test_pipeline_companions import DATA, FOLDER, HEADER, put_unit, tree
from tests.test_service import receiving

__all__ = ["runtime"]  # the fixture, used by name


def entry(name: str, path: str, *patterns: str, enabled: bool = True) -> dict[str, Any]:
    return {"name": name, "path": path, "patterns": list(patterns), "enabled": enabled}


ENTRIES = [
    entry("wsjf", "/in/json", "*.json"),
    entry("ict", "/in/ict", "*.log"),
    entry("spea", "/in/shared", "*.csv"),
    entry("csv", "/in/shared", "*.csv"),
    entry("old", "/in/old", "*.txt", enabled=False),
    entry("other", "/in/other", "*.csv"),
]


def test_the_entry_whose_patterns_take_the_name_is_chosen() -> None:
    assert choose_folder(ENTRIES, "r.json", None)["name"] == "wsjf"
    assert choose_folder(ENTRIES, "R.LOG", None)["name"] == "ict"  # case-insensitive
    # Entries sharing one folder are one choice: the pipeline picks among them.
    shared = [e for e in ENTRIES if e["name"] != "other"]
    assert choose_folder(shared, "run.csv", None)["path"] == "/in/shared"
    assert choose_folder(ENTRIES, "run.csv", "other")["name"] == "other"


@pytest.mark.parametrize(
    ("name", "wanted", "says"),
    [
        ("run.csv", None, "several watch folders take 'run.csv'"),
        ("x.bin", None, "no enabled watch folder entry takes 'x.bin'"),
        ("x.txt", None, "no enabled watch folder entry takes 'x.txt'"),  # only a disabled one
        ("x.txt", "old", "entry 'old' is disabled"),
        ("r.json", "nope", "no watch folder entry 'nope'"),
        ("r.json", "ict", "entry 'ict' takes only *.log: 'r.json' would wait there forever"),
        (".r.json", None, "is a temporary name"),
        ("r.json.tmp", "wsjf", "is a temporary name"),
    ],
)
def test_a_file_no_folder_would_take_is_refused_saying_why(
    name: str, wanted: str | None, says: str
) -> None:
    with pytest.raises(SubmitError) as caught:
        choose_folder(ENTRIES, name, wanted)
    assert says in str(caught.value)


def processed(source: str, outcome: str = "converted", *ids: str) -> dict[str, Any]:
    return {"folder": "wsjf", "source": source, "outcome": outcome, "report_ids": list(ids)}


def test_waiting_for_the_queue_ends_at_the_files_outcome_and_ignores_other_files() -> None:
    wait = Waiting("/in/r.json", "queued")
    assert wait.feed("file.processed", processed("/in/other.json", "converted", "a")) == []
    assert wait.feed("file.rejected", {"source": "/in/x.json", "reason": "bad"}) == []
    assert wait.code is None
    lines = wait.feed("file.processed", processed("/in/r.json", "converted", "a", "b"))
    assert lines == ["queued 2 report(s): a, b"]
    assert wait.code == EXIT_OK


def test_waiting_for_uploads_counts_answers_that_came_before_the_files_outcome() -> None:
    wait = Waiting("/in/r.json", "uploaded")
    # Uploading starts at the commit, before the file is filed: the answer may come first.
    assert wait.feed("report.uploaded", {"report_id": "a", "attempt": 1, "status": 200}) == []
    assert wait.feed("report.retrying", {"report_id": "b", "message": "offline"}) == []
    wait.feed("file.processed", processed("/in/r.json", "converted", "a", "b"))
    assert wait.code is None
    assert wait.feed("report.retrying", {"report_id": "b", "message": "503"}) == [
        "b: not uploaded yet, retrying: 503"
    ]
    assert wait.feed("report.retrying", {"report_id": "b", "message": "503"}) == []  # once
    assert wait.feed("report.uploaded", {"report_id": "zz"}) == []  # another file's
    assert wait.timed_out(5).startswith("1 of 2 report(s) not uploaded within 5 s")
    assert wait.feed("report.failed", {"report_id": "b", "message": "400 bad pn"}) == [
        "a: uploaded",
        "b: refused by the server: 400 bad pn",
    ]
    assert wait.code == EXIT_FAILED


def test_the_json_summary_names_only_the_files_own_reports() -> None:
    wait = Waiting("/in/r.json", "uploaded")
    wait.feed("report.uploaded", {"report_id": "other"})  # another file's, before ours
    wait.feed("file.processed", processed("/in/r.json", "converted", "a"))
    wait.feed("report.failed", {"report_id": "a", "message": "400 bad pn"})
    assert wait.summary() == {
        "outcome": "converted",
        "detail": "",
        "report_ids": ["a"],
        "answers": {"a": "refused by the server: 400 bad pn"},
    }


def test_a_file_of_many_reports_is_told_as_counts_and_the_refusals() -> None:
    ids = [f"r{n}" for n in range(25)]
    wait = Waiting("/in/rows.csv", "uploaded")
    [line] = wait.feed("file.processed", processed("/in/rows.csv", "converted", *ids))
    assert line == f"queued 25 report(s): {', '.join(ids[:10])} and 15 more"
    for report_id in ids[:-1]:
        assert wait.feed("report.uploaded", {"report_id": report_id}) == []
    assert wait.feed("report.failed", {"report_id": "r24", "message": "400"}) == [
        "r24: refused by the server: 400",
        "24 of 25 report(s) uploaded",
    ]
    assert wait.code == EXIT_FAILED


def test_a_rejected_duplicate_or_left_file_ends_the_wait_with_its_code() -> None:
    wait = Waiting("/in/r.json", "uploaded")
    lines = wait.feed(
        "file.rejected",
        {"source": "/in/r.json", "reason": "wsjf: line 1: not JSON", "error_file": "/e/r.json"},
    )
    assert lines == ["not converted: wsjf: line 1: not JSON", "moved to /e/r.json"]
    assert wait.code == EXIT_FAILED
    wait = Waiting("/in/r.json", "uploaded")
    wait.feed("file.processed", {**processed("/in/r.json", "duplicate"), "detail": "moved"})
    assert wait.code == EXIT_OK
    wait = Waiting("/in/r.json", "queued")
    assert wait.feed("file.processed", {**processed("/in/r.json", "left"), "detail": "busy"}) == [
        "not queued (left): busy"
    ]
    assert wait.code == EXIT_FAILED
    assert Waiting("/in/r.json", "queued").timed_out(60).startswith("no outcome within 60 s")


def test_events_compare_the_folder_with_symlinks_resolved(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    wait = Waiting(str(tmp_path / "link" / "r.json"), "queued")
    wait.feed("file.processed", processed(str(tmp_path / "real" / "r.json"), "converted", "a"))
    assert wait.code == EXIT_OK


def test_place_copy_never_replaces_and_leaves_nothing_behind(tmp_path: Path) -> None:
    source, folder = tmp_path / "r.json", tmp_path / "in"
    folder.mkdir()
    source.write_bytes(b"new")
    (folder / "r.json").write_bytes(b"waiting")
    with pytest.raises(FileExistsError):
        place_copy(source, folder / "r.json")
    assert (folder / "r.json").read_bytes() == b"waiting"
    assert os.listdir(folder) == ["r.json"]
    # A staging copy left by a killed submit is not a file of the folder: replaced.
    (folder / f".s.json{SUBMIT_SUFFIX}").write_bytes(b"half")
    place_copy(source, folder / "s.json")
    assert sorted(os.listdir(folder)) == ["r.json", "s.json"]
    assert (folder / "s.json").read_bytes() == b"new"
    assert not os.path.samefile(source, folder / "s.json")  # a copy, not a link
    assert source.read_bytes() == b"new"


def test_place_group_puts_the_companions_first_and_all_or_nothing(tmp_path: Path) -> None:
    staging, watch = tmp_path / "staging", tmp_path / "in"
    watch.mkdir()
    put_unit(staging)
    header, folder = staging / HEADER, staging / FOLDER
    assert place_group(header, watch / HEADER, [folder]) == [watch / FOLDER]
    assert tree(watch) == tree(staging) == tree(DATA)
    # A name of the group taken: nothing is placed, the one there is not touched.
    other = tmp_path / "other"
    other.mkdir()
    (other / FOLDER).mkdir()
    with pytest.raises(FileExistsError) as caught:
        place_group(header, other / HEADER, [folder])
    assert caught.value.filename == str(other / FOLDER)
    assert os.listdir(other) == [FOLDER]
    assert os.listdir(other / FOLDER) == []
    # The file cannot be read: the companion placed before it is removed again.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(FileNotFoundError):
        place_group(staging / "missing.txt", elsewhere / "missing.txt", [folder])
    assert os.listdir(elsewhere) == []


def report_file(path: Path, **fields: Any) -> str:
    doc = uut()
    doc["id"] = str(uuid.uuid4())
    doc.update(fields)
    path.write_text(json.dumps(doc))
    return str(doc["id"])


async def test_submit_until_uploaded_through_a_real_service_and_receiver(
    tmp_path: Path, runtime: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    good = outside / "good.json"
    report_id = report_file(good)
    bad = outside / "bad.json"
    bad.write_text('{"not": "a report"')
    async with receiving() as receiver, serving(tmp_path, receiver.url):
        code = await cli("submit", str(good), "--instance", "test", "--until", "uploaded")
        out = capsys.readouterr().out.splitlines()
        assert code == EXIT_OK, out
        assert out == [
            f"placed {tmp_path / 'in' / 'good.json'} (entry wsjf)",
            f"queued 1 report(s): {report_id}",
            f"the file: moved to {tmp_path / 'done' / 'good.json'}",
            f"{report_id}: uploaded",
        ]
        assert receiver.get_report(report_id) is not None
        assert good.read_bytes() == (tmp_path / "done" / "good.json").read_bytes()

        code = await cli("submit", str(bad), "--instance", "test")
        out = capsys.readouterr().out.splitlines()
        assert code == EXIT_FAILED
        assert out[1].startswith("not converted: ")
        assert out[2] == f"moved to {tmp_path / 'error' / 'bad.json'}"
        assert (tmp_path / "error" / "bad.json.error.txt").is_file()
        assert bad.exists()  # the original stays

        # Nothing takes a .bin file here: refused before anything is placed.
        other = outside / "x.bin"
        other.write_text("{}")
        assert await cli("submit", str(other), "--instance", "test") == EXIT_USAGE
        captured = capsys.readouterr()
        assert "no enabled watch folder entry takes 'x.bin' (wsjf: *.json)" in captured.err
        assert await cli("submit", str(outside / "nope.json"), "--instance", "test") == 2
        assert "nope.json: no such file" in capsys.readouterr().err
        assert not any((tmp_path / "in").iterdir())


async def test_submit_gives_up_after_its_timeout_and_the_report_stays_queued(
    tmp_path: Path, runtime: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.json"
    report_id = report_file(good)
    async with serving(tmp_path, None):  # no server: the report waits in the queue
        argv = ["submit", str(good), "--instance", "test", "--until", "uploaded"]
        assert await cli(*argv, "--timeout-s", "0.5") == EXIT_FAILED
        captured = capsys.readouterr()
        assert "queued 1 report(s)" in captured.out
        assert "1 of 1 report(s) not uploaded within 0.5 s; they stay queued" in captured.err
        # The same content again, as one JSON document: queued before, nothing to wait for.
        assert await cli(*argv, "--json") == EXIT_OK
        answer = json.loads(capsys.readouterr().out)
        assert answer["path"] == str(tmp_path / "in" / "good.json")
        assert (answer["entry"], answer["outcome"], answer["exit"]) == ("wsjf", "duplicate", 0)
        assert answer["answers"] == {}  # nothing uploaded: no server
        assert await cli("queue", "show", report_id, "--instance", "test", "--json") == 0
        assert json.loads(capsys.readouterr().out)["state"] == "pending"


async def test_a_klippel_header_is_submitted_with_its_result_folder(
    tmp_path: Path, runtime: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = {
        "queue": {"path": str(tmp_path / "queue.db")},
        "converters": [
            {
                "name": "klippel",
                "watch": str(tmp_path / "in"),
                "done_dir": str(tmp_path / "done"),
                "error_dir": str(tmp_path / "error"),
            }
        ],
    }
    config = config_mod.parse(document, source=tmp_path / "test.toml")
    service = Service(
        plan("test", config, token=None),
        handle_signals=False,
        rpc=RpcSettings(paths.socket_path("test")),
    )
    staging = tmp_path / "staging"
    put_unit(staging)
    with trio.fail_after(LIMIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            code = await cli("submit", str(staging / HEADER), "--instance", "test")
            out = capsys.readouterr().out.splitlines()
            assert code == EXIT_OK, out
            assert out[:2] == [
                f"placed {tmp_path / 'in' / FOLDER} (a companion, first)",
                f"placed {tmp_path / 'in' / HEADER} (entry klippel)",
            ]
            assert out[2].startswith("queued 1 report(s): ")
            service.request_stop()
    assert tree(tmp_path / "done") == tree(DATA)  # filed together
    assert tree(staging) == tree(DATA)  # the originals stay
