"""Sources of several files: a Klippel header and its result folder, through the real pipeline.

Rules as in ``tests/test_pipeline.py``: real folders under ``tmp_path``, real inotify, a
real Store, real threads; waits are for the pipeline's events. The file-system half (a
group of a file and its companions moved, rejected or deleted together) is also tested
against a real ``kill -9`` at every step: a child process is killed in the middle of the
move, and a second attempt (what the restart does) must end with every file exactly once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from pywats import defaults, postaction
from pywats.converters import ConversionContext, Source
from pywats.converters.klippel import KlippelConverter
from pywats.converters.wsjf import WsjfConverter
from pywats.converters.wstf import WstfConverter
from pywats.errors import ConversionError
from pywats.events import FileOutcome, FileProcessed, FileRejected
from pywats.pipeline import FolderConfig, PostAction
from pywats.pipeline.budget import factor_of
from pywats.pipeline.steps import read_companions_now
from pywats.report import Report
from pywats.store import NewReport, SourceFile, Store
from tests.test_pipeline import (
    STATION,
    expected_body,
    make_folder,
    names,
    queued,
    running,
    sidecar,
    with_id,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "equipment" / "klippel"
HEADER = "DUT xyz115 2020-05-14 10-01-37-5 UTC+0200.txt"
FOLDER = HEADER[: -len(".txt")]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "state" / "queue.db") as s:
        yield s


def klippel_folder(tmp_path: Path, **overrides: object) -> FolderConfig:
    return make_folder(tmp_path, name="klippel", converter=KlippelConverter(), **overrides)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative posix path -> bytes), hidden ones included."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def visible(root: Path) -> dict[str, bytes]:
    """:func:`tree` without hidden names (what a station engineer sees and the watcher
    takes; a hidden ``.pywats-tmp``/``.pywats-gone`` leftover may be deleted)."""
    return {k: v for k, v in tree(root).items() if not any(p.startswith(".") for p in k.split("/"))}


def original() -> dict[str, bytes]:
    """The header and its folder as they are in tests/data."""
    out = {HEADER: (DATA / HEADER).read_bytes()}
    out.update({f"{FOLDER}/{k}": v for k, v in tree(DATA / FOLDER).items()})
    return out


def put_unit(folder: Path, *, header: bytes | None = None, with_folder: bool = True) -> None:
    """The real header (or ``header``) and its result folder, written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    if with_folder:
        shutil.copytree(DATA / FOLDER, folder / FOLDER)
    (folder / HEADER).write_bytes((DATA / HEADER).read_bytes() if header is None else header)


def expected_report_fields() -> tuple[str, str, str]:
    path = DATA / HEADER
    source = Source(path, path.read_bytes(), read_companions_now(KlippelConverter(), path))
    [report] = KlippelConverter().convert(source, ConversionContext(STATION))
    return report.sn, str(report.result), report.start


# --- The pipeline --------------------------------------------------------------------------


async def test_a_header_and_its_folder_become_one_report_and_are_moved_together(
    tmp_path: Path, store: Store
) -> None:
    folder = klippel_folder(tmp_path)
    with trio.fail_after(30):
        async with running(store, folder) as (_, files):
            # The folder is written first and the header last, as Klippel QC does.
            await trio.to_thread.run_sync(lambda: put_unit(folder.watch))
            [outcome] = await files.wait(1, "the header to be converted")
            assert isinstance(outcome, FileProcessed), outcome
            assert outcome.outcome in (FileOutcome.CONVERTED, FileOutcome.LEFT)
            if outcome.outcome == FileOutcome.LEFT:
                # The folder had just been written: it is looked at once more.
                assert "still being written" in outcome.detail
                [_, outcome] = await files.wait(2, "the header after its folder settled")
            assert isinstance(outcome, FileProcessed)
            assert outcome.outcome == FileOutcome.CONVERTED
            assert outcome.source == str(folder.watch / HEADER)
            await files.quiet(0.6)  # no outcome for the folder or its files
    [report] = await queued(store)
    assert (report.sn, report.result, report.start) == expected_report_fields()
    assert report.source == str(folder.watch / HEADER)
    assert b'"name":"Impedance"' in report.body
    assert b'"name":"imp"' in report.body
    assert names(folder.watch) == []
    assert tree(folder.done_dir) == original()  # byte for byte, nothing else
    assert names(folder.error_dir) == []


async def test_delete_removes_the_header_and_its_folder(tmp_path: Path, store: Store) -> None:
    folder = klippel_folder(tmp_path, post_action=PostAction.DELETE)
    put_unit(folder.watch)
    old = time.time() - 3600  # written long ago: nothing to wait for
    for path in [folder.watch / HEADER, *(folder.watch / FOLDER).iterdir()]:
        os.utime(path, (old, old))
    with trio.fail_after(30):
        async with running(store, folder) as (_, files):
            [outcome] = await files.wait(1, "the header")
            assert isinstance(outcome, FileProcessed)
            assert (outcome.outcome, outcome.detail) == (FileOutcome.CONVERTED, "deleted")
    assert len(await queued(store)) == 1
    assert visible(folder.watch) == {}
    assert names(folder.watch) == []


async def test_a_bad_header_goes_to_the_error_folder_with_its_folder(
    tmp_path: Path, store: Store
) -> None:
    folder = klippel_folder(tmp_path)
    bad = (DATA / HEADER).read_bytes().replace(b"Ctrl_OverallVerdict=0", b"Ctrl_OverallVerdict=9")
    with trio.fail_after(30):
        async with running(store, folder) as (_, files):
            await trio.to_thread.run_sync(lambda: put_unit(folder.watch, header=bad))
            event = await files.wait_for(
                lambda e: isinstance(e, FileRejected), "the header to be rejected"
            )
    assert isinstance(event, FileRejected)
    assert "Ctrl_OverallVerdict '9' is not a Klippel verdict" in event.reason
    assert await queued(store) == []
    assert names(folder.watch) == []
    expected = original() | {HEADER: bad}
    got = tree(folder.error_dir)
    fields = sidecar(folder.error_dir / f"{HEADER}.error.txt")
    del got[f"{HEADER}.error.txt"]
    assert got == expected  # the header and its whole folder, unchanged
    assert "line 38: Ctrl_OverallVerdict '9'" in fields["reason"]
    assert fields["converter"] == "klippel 1.0"
    assert fields["with"].startswith(f"'{FOLDER}' (its companions")


async def test_a_header_waits_for_its_folder_then_is_converted(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(defaults, "COMPANION_WAIT_S", 20.0)
    folder = klippel_folder(tmp_path)
    with trio.fail_after(30):
        async with running(store, folder) as (_, files):
            await trio.to_thread.run_sync(
                lambda: put_unit(folder.watch, with_folder=False)  # the header alone
            )
            [waiting] = await files.wait(1, "the header to wait")
            assert isinstance(waiting, FileProcessed)
            assert waiting.outcome == FileOutcome.LEFT
            assert f"its companion '{FOLDER}' is missing" in waiting.detail
            assert names(folder.watch) == [FOLDER + ".txt"]  # left where it is
            # The folder arrives late (copied in after the header).
            await trio.to_thread.run_sync(shutil.copytree, DATA / FOLDER, folder.watch / FOLDER)
            event = await files.wait_for(
                lambda e: isinstance(e, FileProcessed) and e.outcome == FileOutcome.CONVERTED,
                "the header to be converted with its folder",
            )
    assert isinstance(event, FileProcessed)
    assert len(await queued(store)) == 1
    assert tree(folder.done_dir) == original()
    assert names(folder.watch) == []


async def test_a_folder_that_is_still_being_written_is_read_once_it_is_complete(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(defaults, "COMPANION_WAIT_S", 20.0)
    folder = klippel_folder(tmp_path, settle_s=0.5)
    files_in_folder = sorted((DATA / FOLDER).iterdir())

    def write() -> None:
        # The header first, then the result files one by one, 0.2 s apart.
        put_unit(folder.watch, with_folder=False)
        (folder.watch / FOLDER).mkdir()
        for path in files_in_folder:
            time.sleep(0.2)
            shutil.copy2(path, folder.watch / FOLDER / path.name)

    with trio.fail_after(30):
        async with running(store, folder) as (_, files):
            writer = threading.Thread(target=write)
            writer.start()
            try:
                event = await files.wait_for(
                    lambda e: isinstance(e, FileProcessed) and e.outcome != FileOutcome.LEFT,
                    "the header to be converted",
                )
            finally:
                await trio.to_thread.run_sync(writer.join)
    assert isinstance(event, FileProcessed)
    assert event.outcome == FileOutcome.CONVERTED
    [report] = await queued(store)
    for step in (b'"name":"imp"', b'"name":"level"', b'"name":"thd"', b'"name":"rbz"'):
        assert step in report.body  # every result file made it
    assert tree(folder.done_dir) == original()


async def test_a_folder_that_never_comes_sends_the_header_to_the_error_folder(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(defaults, "COMPANION_WAIT_S", 1.0)
    folder = klippel_folder(tmp_path)
    with trio.fail_after(30):
        async with running(store, folder) as (pipeline, files):
            await trio.to_thread.run_sync(lambda: put_unit(folder.watch, with_folder=False))
            event = await files.wait_for(
                lambda e: isinstance(e, FileRejected), "the header to give up waiting"
            )
            waits = [o for o in files.outcomes if isinstance(o, FileProcessed)]
            assert waits
            assert all(o.outcome == FileOutcome.LEFT for o in waits)
            assert pipeline.statistics().folders["klippel"].files_failed == 1
    assert isinstance(event, FileRejected)
    assert f"its companion '{FOLDER}' is missing" in event.reason
    assert "gave up after" in event.reason
    fields = sidecar(folder.error_dir / f"{HEADER}.error.txt")
    assert f"its companion '{FOLDER}' is missing" in fields["reason"]
    assert names(folder.error_dir) == [HEADER, f"{HEADER}.error.txt"]
    assert names(folder.watch) == []
    assert await queued(store) == []


async def test_with_no_settle_time_a_missing_folder_is_rejected_at_once(
    tmp_path: Path, store: Store
) -> None:
    folder = klippel_folder(tmp_path, settle_s=0.0)
    with trio.fail_after(20):
        async with running(store, folder) as (_, files):
            await trio.to_thread.run_sync(lambda: put_unit(folder.watch, with_folder=False))
            [event] = await files.wait(1, "the header")
    assert isinstance(event, FileRejected)
    assert "is missing" in event.reason
    assert "gave up" not in event.reason


async def test_the_folder_is_no_input_of_its_own_in_a_recursive_shared_watch(
    tmp_path: Path, store: Store
) -> None:
    # Klippel and wstf share one watch folder, recursively; wstf takes every *.txt, so
    # the result files inside the folder would be its files but for the companion rule.
    base = tmp_path / "shared"
    common: dict[str, object] = {
        "watch": base / "in",
        "recursive": True,
        "settle_s": 0.3,
        "rescan_s": 0.5,
    }
    klippel = FolderConfig(
        name="klippel",
        converter=KlippelConverter(),
        done_dir=base / "done-k",
        error_dir=base / "error-k",
        **common,  # type: ignore[arg-type]
    )
    wstf = FolderConfig(
        name="wstf",
        converter=WstfConverter(),
        done_dir=base / "done-w",
        error_dir=base / "error-w",
        **common,  # type: ignore[arg-type]
    )
    put_unit(base / "in" / "line2")  # present at start, in a subfolder
    with trio.fail_after(30):
        async with running(store, klippel, wstf) as (pipeline, files):
            event = await files.wait_for(
                lambda e: isinstance(e, FileProcessed) and e.outcome != FileOutcome.LEFT,
                "the header",
            )
            await files.quiet(1.2)  # rescans pass: the folder's files are never taken
            stats = pipeline.statistics().folders
            assert stats["wstf"].files_converted + stats["wstf"].files_failed == 0
    assert isinstance(event, FileProcessed)
    assert event.outcome == FileOutcome.CONVERTED
    assert {Path(o.source).name for o in files.outcomes} == {HEADER}
    assert tree(base / "done-k" / "line2") == original()
    assert not (base / "error-w").exists() or names(base / "error-w") == []
    assert names(base / "in" / "line2") == []


async def test_an_interrupted_move_is_finished_after_a_restart_not_repeated(
    tmp_path: Path, store: Store
) -> None:
    # What a kill between "folder moved" and "header's old name removed" leaves: the
    # header's reports queued, its new name made, its folder in the done folder already.
    folder = klippel_folder(tmp_path)
    put_unit(folder.watch)
    data = (folder.watch / HEADER).read_bytes()
    folder.done_dir.mkdir(parents=True)
    os.link(folder.watch / HEADER, folder.done_dir / HEADER)
    os.rename(folder.watch / FOLDER, folder.done_dir / FOLDER)
    await store.enqueue(
        [
            NewReport(
                id="6f9619ff-8b86-4011-b42d-00c04fc964ff",
                body=b"{}",
                pn="PartNumber1",
                sn="xyz115",
                result="F",
                start="2020-05-14T10:01:37.563+02:00",
                converter="klippel",
            )
        ],
        SourceFile(hashlib.sha256(data).hexdigest(), str(folder.watch / HEADER), len(data), 0.0),
    )
    with trio.fail_after(30):
        async with running(store, folder) as (_, files):
            [outcome] = await files.wait(1, "the header")
    assert isinstance(outcome, FileProcessed)
    assert outcome.outcome == FileOutcome.DUPLICATE
    assert len(await queued(store)) == 1  # not queued twice
    assert names(folder.watch) == []
    assert tree(folder.done_dir) == original()  # one header, one folder: no .1 copies


async def test_a_second_unit_of_the_same_name_is_numbered_with_its_folder(
    tmp_path: Path, store: Store
) -> None:
    folder = klippel_folder(tmp_path)
    put_unit(folder.done_dir)  # an earlier unit of the same name is filed already
    other = (DATA / HEADER).read_bytes().replace(b"Ctrl_OverallVerdict=0", b"Ctrl_OverallVerdict=1")
    with trio.fail_after(30):
        async with running(store, folder) as (_, files):
            await trio.to_thread.run_sync(lambda: put_unit(folder.watch, header=other))
            await files.wait_for(
                lambda e: isinstance(e, FileProcessed) and e.outcome == FileOutcome.CONVERTED,
                "the header",
            )
    numbered_header = f"{FOLDER}.1.txt"
    assert sorted(names(folder.done_dir)) == sorted(
        [HEADER, FOLDER, numbered_header, f"{FOLDER}.1"]
    )
    assert (folder.done_dir / numbered_header).read_bytes() == other
    assert tree(folder.done_dir / f"{FOLDER}.1") == tree(DATA / FOLDER)


# --- Filing a group: every step of a move killed, then the move done again ----------------

_KILL_AT_CALL = """
calls = 0
kill_at = 0  # never, until a child is told its call


def counted(function):
    def wrapper(*args, **kwargs):
        global calls
        calls += 1
        if calls == kill_at:
            os._exit(137)  # as abrupt as kill -9: no cleanup, no flush
        return function(*args, **kwargs)
    return wrapper


for fname in ("link", "rename", "unlink", "rmdir", "mkdir", "fsync", "symlink", "utime"):
    setattr(os, fname, counted(getattr(os, fname)))
shutil.copyfileobj = counted(shutil.copyfileobj)
"""
"""The killer scripts' start: every file-system call counted, the ``kill_at``-th ends
the process as abruptly as kill -9."""

_FORK_SERVER = """
import json

for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        kill_at, calls = request[0], 0
        try:
            run(*request[1:])
        except BaseException:
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)
        print("finished", calls)
        sys.stdout.flush()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    print("exit", os.waitstatus_to_exitcode(status), flush=True)
"""
"""The killer scripts' end: one interpreter imports pywats once and forks a child per
request (a JSON list: the call to die at, then ``run``'s arguments). Each child is a real
process that dies at that call; starting a new interpreter for every call point made
these tests take most of a minute."""


class Killer:
    """A killer script's fork server (see ``_FORK_SERVER``): ``run`` one child at a time."""

    def __init__(self, tmp_path: Path, body: str) -> None:
        script = tmp_path / "killer.py"
        script.write_text(
            "import os, shutil, sys\n" + _KILL_AT_CALL + textwrap.dedent(body) + _FORK_SERVER
        )
        self._stderr = (tmp_path / "killer.stderr").open("w+")
        self._process = subprocess.Popen(
            [sys.executable, str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def run(self, kill_at: int, *args: str) -> tuple[int, str]:
        """The exit status of a child killed at its ``kill_at``-th file-system call (0 if
        it finished first, 137 if killed) and what it printed."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(json.dumps([kill_at, *args]) + "\n")
        self._process.stdin.flush()
        printed: list[str] = []
        while True:
            line = self._process.stdout.readline()
            if not line:
                self._stderr.seek(0)
                raise AssertionError(f"the fork server ended: {self._stderr.read()}")
            if line.startswith("exit "):
                status = int(line.split()[1])
                if status not in (0, 137):
                    self._stderr.seek(0)
                    raise AssertionError(f"the child failed ({status}): {self._stderr.read()}")
                return status, "".join(printed)
            printed.append(line)

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        finally:
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._stderr.close()


@pytest.fixture
def killer(tmp_path: Path) -> Iterator[Callable[[str], Killer]]:
    """``killer(body)``: a started :class:`Killer` for a script ``body`` defining ``run``."""
    started: list[Killer] = []

    def start(body: str) -> Killer:
        started.append(Killer(tmp_path, body))
        return started[-1]

    yield start
    for one in started:
        one.close()


_KILLER = """
from pathlib import Path

from pywats import postaction


def run(mode, source, target, *companions):
    source, target = Path(source), Path(target)
    if mode == "move":
        postaction.move_group(source, target, list(companions))
    elif mode == "reject":
        postaction.reject_group(source, target, "reason: bad\\n", list(companions))
    else:
        postaction.delete_group(source, list(companions))
"""


@pytest.fixture
def other_fs() -> Iterator[Path]:
    """A folder on another file system than tmp_path (tmpfs), or skip."""
    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm")
    folder = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="pywats-test-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def _run_killed(killer: Killer, kill_at: int, mode: str, source: Path, target: Path) -> bool:
    """Run the group operation in a child killed at its ``kill_at``-th file-system call;
    True if it finished before that call came."""
    status, printed = killer.run(kill_at, mode, str(source), str(target), FOLDER)
    if status == 0:
        assert printed.startswith("finished")
        return True
    return False


def _filed_copies(target: Path) -> dict[str, dict[str, bytes]]:
    """The visible group copies in ``target``: header name -> header and folder contents."""
    out: dict[str, dict[str, bytes]] = {}
    for path in sorted(target.glob(f"{FOLDER}*.txt")) if target.exists() else []:
        if path.name.endswith(".error.txt"):
            continue
        stem = path.name[: -len(".txt")]
        group = {HEADER: path.read_bytes()}
        group.update({f"{FOLDER}/{k}": v for k, v in visible(target / stem).items()})
        out[path.name] = group
    return out


def _elsewhere(tmp_path: Path, where: str, request: pytest.FixtureRequest) -> Path:
    """The other folder of a kill test: on ``tmp_path``'s file system or another one
    (``/dev/shm``; the test is skipped where that is the same file system)."""
    if where == "across file systems":
        elsewhere: Path = request.getfixturevalue("other_fs")
        if os.stat(elsewhere).st_dev == tmp_path.stat().st_dev:
            pytest.skip("/dev/shm is on the same file system as tmp_path")
        return elsewhere
    return tmp_path / "elsewhere"


@pytest.mark.parametrize(
    ("mode", "where"),
    [
        ("move", "same file system"),
        ("move", "across file systems"),
        ("reject", "same file system"),
        ("reject", "across file systems"),
        ("delete", "same file system"),
    ],
)
def test_a_kill_at_any_step_of_filing_a_group_loses_and_doubles_nothing(
    tmp_path: Path,
    mode: str,
    where: str,
    request: pytest.FixtureRequest,
    killer: Callable[[str], Killer],
) -> None:
    elsewhere = _elsewhere(tmp_path, where, request)
    script = killer(_KILLER)
    expected = original()
    kill_at = 0
    while True:
        kill_at += 1
        assert kill_at < 500, "the operation never finished"
        watch = tmp_path / f"in{kill_at}"
        target = elsewhere / f"out{kill_at}"
        put_unit(watch)
        finished = _run_killed(script, kill_at, mode, watch / HEADER, target)
        seen_watch = visible(watch)
        if mode == "delete":
            # Nothing is orphaned: while any of the folder is left, so is its header.
            if any(k.startswith(FOLDER + "/") for k in seen_watch):
                assert HEADER in seen_watch
        else:
            # Nothing is lost: every file is in the watch folder or filed (or both).
            filed = _filed_copies(target)
            for name, data in expected.items():
                found = seen_watch.get(name) == data or any(
                    group.get(name) == data for group in filed.values()
                )
                assert found, f"kill at {kill_at}: {name} is lost"
        if HEADER in seen_watch:
            # The restart: the header is taken again (its reports are queued, or it is
            # rejected again) and filed with what is left of its folder.
            if mode == "move":
                postaction.move_group(watch / HEADER, target, [FOLDER])
            elif mode == "reject":
                postaction.reject_group(watch / HEADER, target, "reason: bad\n", [FOLDER])
            else:
                postaction.delete_group(watch / HEADER, [FOLDER])
        assert visible(watch) == {}, f"kill at {kill_at}: left in the watch folder"
        if mode != "delete":
            filed = _filed_copies(target)
            assert list(filed.values()) == [expected], f"kill at {kill_at}: {list(filed)}"
            [header_name] = filed
            if mode == "reject":
                assert (target / f"{header_name}.error.txt").read_text() == "reason: bad\n"
        if finished:
            break
    assert kill_at > 4  # each of its steps was cut once, and then it ran through


def test_a_group_is_not_filed_if_its_folder_changed_since_it_was_read(tmp_path: Path) -> None:
    watch = tmp_path / "in"
    put_unit(watch)
    sig = postaction.file_sig(watch / HEADER)
    state = postaction.companion_state(watch, [FOLDER], 100)
    (watch / FOLDER / "late-values.txt").write_text("name\tvalue\nx\t1\n")
    with pytest.raises(postaction.SourceChanged) as info:
        postaction.move_group(
            watch / HEADER, tmp_path / "done", [FOLDER], expect=sig, expect_companions=state
        )
    assert info.value.path == watch / FOLDER / "late-values.txt"
    with pytest.raises(postaction.SourceChanged):
        postaction.delete_group(watch / HEADER, [FOLDER], expect=sig, expect_companions=state)
    assert HEADER in visible(watch)
    assert f"{FOLDER}/late-values.txt" in visible(watch)
    assert visible(tmp_path / "done") == {}


def test_companion_limits_are_a_rejection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pywats.pipeline.steps import Rejection

    watch = tmp_path / "in"
    put_unit(watch)
    monkeypatch.setattr(defaults, "COMPANION_MAX_MEMBERS", 3)
    with pytest.raises(Rejection, match="more than 3 files and folders"):
        read_companions_now(KlippelConverter(), watch / HEADER)
    monkeypatch.setattr(defaults, "COMPANION_MAX_MEMBERS", 100)
    monkeypatch.setattr(defaults, "COMPANION_MAX_BYTES", 1000)
    with pytest.raises(Rejection, match=r"hold \d+ bytes, more than the limit \(1000, "):
        read_companions_now(KlippelConverter(), watch / HEADER)


class Paired:
    """A converter whose ``x.hdr`` comes with a ``x.dat`` beside it (a companion file)."""

    name = "paired"
    version = "1"
    patterns = ("*",)

    def companions(self, path: Path) -> list[Path]:
        return [path.with_suffix(".dat")] if path.suffix == ".hdr" else []

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        if source.path.suffix != ".hdr":
            raise ConversionError(self.name, "only .hdr files are results")
        data = source.companions[source.path.with_suffix(".dat").name]
        return WsjfConverter().convert(Source(source.path, data), context)


async def test_a_companion_file_is_filed_with_its_file_and_never_taken_alone(
    tmp_path: Path, store: Store
) -> None:
    # The entry takes every name ("*"), so only the companion rule keeps x.dat from
    # being a file of its own (and from going to the error folder). It comes after its
    # header (one that came before would be a file like any other until then).
    folder = make_folder(tmp_path, name="paired", converter=Paired())
    folder.watch.mkdir(parents=True)
    with trio.fail_after(30):
        async with running(store, folder) as (_, files):
            (folder.watch / "x.hdr").write_bytes(b"header")
            await trio.sleep(0.1)
            (folder.watch / "x.dat").write_bytes(with_id(5))
            outcome = await files.wait_for(
                lambda e: isinstance(e, FileProcessed) and e.outcome != FileOutcome.LEFT,
                "the header",
            )
            await files.quiet(1.2)  # rescans pass: x.dat is not taken on its own
    assert {Path(o.source).name for o in files.outcomes} == {"x.hdr"}
    assert isinstance(outcome, FileProcessed)
    assert outcome.outcome == FileOutcome.CONVERTED
    [report] = await queued(store)
    assert report.body == expected_body(with_id(5))
    assert names(folder.done_dir) == ["x.dat", "x.hdr"]
    assert names(folder.watch) == []
    assert names(folder.error_dir) == []


async def test_units_whose_folders_exceed_a_batch_budget_go_round_again(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pywats.pipeline import conversion

    # A batch holds the companions of one unit at a time here (the budget is 1 byte):
    # the others go round again rather than all being held in memory at once.
    monkeypatch.setattr(conversion, "_COMPANION_BYTES", 1)
    gathered: list[int] = []
    deferred: list[int] = []
    real_gather = conversion.steps.gather_many

    def gather_many(jobs: Any, budget: int) -> Any:
        gathered.append(len(jobs))
        if len(gathered) == 1:
            time.sleep(0.3)  # the other files reach the channel: the next batch has two
        results = real_gather(jobs, budget)
        deferred.append(sum(r is None for r in results))
        return results

    monkeypatch.setattr(conversion.steps, "gather_many", gather_many)
    folder = klippel_folder(tmp_path)
    old = time.time() - 3600
    for n in range(3):
        unit = folder.watch
        header = (DATA / HEADER).read_bytes().replace(b"xyz115", f"xyz{n}".encode())
        name = HEADER.replace("xyz115", f"xyz{n}")
        unit.mkdir(parents=True, exist_ok=True)
        shutil.copytree(DATA / FOLDER, unit / name[: -len(".txt")])
        (unit / name).write_bytes(header)
        for path in [unit / name, *(unit / name[: -len(".txt")]).iterdir()]:
            os.utime(path, (old, old))
    with trio.fail_after(30):
        async with running(store, folder, workers=1) as (_, files):
            outcomes = await files.wait(3, "the three headers")
    assert {o.outcome for o in outcomes if isinstance(o, FileProcessed)} == {"converted"}
    assert sorted(r.sn for r in await queued(store)) == ["xyz0", "xyz1", "xyz2"]
    assert names(folder.watch) == []
    assert len(names(folder.done_dir)) == 6
    # Files were taken together, and their companions read one round each.
    assert max(gathered) > 1
    assert deferred == [n - 1 for n in gathered]


async def test_a_folder_over_the_limits_goes_to_the_error_folder_with_its_header(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(defaults, "COMPANION_MAX_MEMBERS", 3)  # the real folder has 7
    folder = klippel_folder(tmp_path)
    with trio.fail_after(30):
        async with running(store, folder) as (_, files):
            await trio.to_thread.run_sync(lambda: put_unit(folder.watch))
            event = await files.wait_for(
                lambda e: isinstance(e, FileRejected), "the header to be rejected"
            )
    assert isinstance(event, FileRejected)
    assert "its companions hold more than 3 files and folders" in event.reason
    got = tree(folder.error_dir)
    assert "more than 3 files" in got.pop(f"{HEADER}.error.txt").decode()
    assert got == original()
    assert names(folder.watch) == []
    assert await queued(store) == []


# --- Moving a rejected unit back (the error folder's "move back to the watch folder") ----

BAD_HEADER = (
    (DATA / HEADER).read_bytes().replace(b"Ctrl_OverallVerdict=0", b"Ctrl_OverallVerdict=9")
)


def reject_unit(folder: FolderConfig) -> None:
    """A unit with a bad header, rejected into ``folder``'s error folder as the pipeline
    does (:func:`pywats.postaction.reject_group`)."""
    put_unit(folder.watch, header=BAD_HEADER)
    postaction.reject_group(folder.watch / HEADER, folder.error_dir, "reason: bad\n", [FOLDER])


async def test_a_rejected_unit_moved_back_with_its_folder_is_converted(
    tmp_path: Path, store: Store
) -> None:
    from pywats.errorfiles import Restored, companions_of, list_error_files, restore_error_file

    folder = klippel_folder(tmp_path)
    with trio.fail_after(30):
        async with running(store, folder) as (_, files):
            await trio.to_thread.run_sync(lambda: put_unit(folder.watch, header=BAD_HEADER))
            await files.wait_for(lambda e: isinstance(e, FileRejected), "the header rejected")
            assert names(folder.error_dir) == sorted([HEADER, f"{HEADER}.error.txt", FOLDER])
            [listed], _ = list_error_files(folder.error_dir, companions=companions_of(folder))
            assert (listed.name, listed.companions) == (HEADER, (FOLDER,))

            # The cause is fixed (here: the header itself), and the unit moved back.
            (folder.error_dir / HEADER).write_bytes((DATA / HEADER).read_bytes())
            restored = await trio.to_thread.run_sync(
                lambda: restore_error_file(
                    folder.error_dir, folder.watch, HEADER, companions=companions_of(folder)
                )
            )
            assert restored == Restored(folder.watch / HEADER, (folder.watch / FOLDER,))
            outcome = await files.wait_for(
                lambda e: (
                    isinstance(e, FileRejected)
                    or (isinstance(e, FileProcessed) and e.outcome == FileOutcome.CONVERTED)
                ),
                "the header converted",
            )
            assert isinstance(outcome, FileProcessed), outcome
    [report] = await queued(store)
    assert (report.sn, report.result, report.start) == expected_report_fields()
    assert b'"name":"Impedance"' in report.body  # read from its folder
    assert names(folder.error_dir) == []
    assert names(folder.watch) == []
    assert tree(folder.done_dir) == original()


def test_a_listing_shows_companions_with_their_file_and_not_on_their_own(
    tmp_path: Path,
) -> None:
    from pywats.errorfiles import companions_of, list_error_files

    # A recursive folder: its error folder's subfolders are looked into, but not a
    # companion folder (whose result files are no rejected files of their own).
    folder = klippel_folder(tmp_path, recursive=True)
    reject_unit(folder)
    (folder.error_dir / "line2").mkdir()
    (folder.error_dir / "line2" / "other.txt").write_text("rejected too")
    files, _ = list_error_files(folder.error_dir, recursive=True, companions=companions_of(folder))
    assert sorted((f.name, f.companions) for f in files) == [
        (HEADER, (FOLDER,)),
        ("line2/other.txt", ()),
    ]
    # A companion file (not a folder) is not listed either, but named with its file.
    paired = make_folder(tmp_path, name="paired", converter=Paired())
    paired.error_dir.mkdir(parents=True)
    for name in ("x.hdr", "x.dat", "x.hdr.error.txt", "y.dat"):
        (paired.error_dir / name).write_bytes(b"data")
    files, _ = list_error_files(paired.error_dir, companions=companions_of(paired))
    assert sorted((f.name, f.companions) for f in files) == [("x.hdr", ("x.dat",)), ("y.dat", ())]


def test_a_move_back_refuses_the_whole_group_if_any_name_is_taken(tmp_path: Path) -> None:
    from pywats.errorfiles import NameTakenError, companions_of, restore_error_file

    folder = klippel_folder(tmp_path)
    reject_unit(folder)
    before = tree(folder.error_dir)
    (folder.watch / FOLDER).mkdir()  # a new unit's folder, its header not written yet
    (folder.watch / FOLDER / "Impedance-imp.txt").write_text("the new unit's")
    with pytest.raises(NameTakenError) as caught:
        restore_error_file(folder.error_dir, folder.watch, HEADER, companions=companions_of(folder))
    assert str(folder.watch / FOLDER) in str(caught.value)
    assert "nothing was moved" in str(caught.value)
    assert tree(folder.error_dir) == before
    assert tree(folder.watch) == {f"{FOLDER}/Impedance-imp.txt": b"the new unit's"}


@attrs.frozen
class WithFifo:
    """A converter whose ``x.hdr`` comes with a folder ``x.d`` and a FIFO ``x.fifo``."""

    name = "withfifo"
    version = "1"
    patterns = ("*.hdr",)

    def companions(self, path: Path) -> list[Path]:
        return [path.with_suffix(".d"), path.with_suffix(".fifo")]

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        raise ConversionError(self.name, "never converts")


def test_a_move_back_that_fails_midway_puts_back_what_it_moved(
    tmp_path: Path, other_fs: Path
) -> None:
    from pywats.errorfiles import companions_of, restore_error_file

    if os.stat(other_fs).st_dev == tmp_path.stat().st_dev:
        pytest.skip("/dev/shm is on the same file system as tmp_path")
    # Across file systems the folder is copied; the FIFO after it cannot be, so the
    # copy made of the folder is removed again and the error folder keeps everything.
    folder = make_folder(tmp_path, name="fifo", converter=WithFifo(), error_dir=other_fs / "err")
    folder.error_dir.mkdir()
    folder.watch.mkdir(parents=True)
    (folder.error_dir / "x.hdr").write_bytes(b"header")
    (folder.error_dir / "x.hdr.error.txt").write_text("why")
    (folder.error_dir / "x.d").mkdir()
    (folder.error_dir / "x.d" / "a.txt").write_text("result")
    os.mkfifo(folder.error_dir / "x.fifo")
    before = sorted(os.listdir(folder.error_dir))
    with pytest.raises(OSError, match="special file"):
        restore_error_file(
            folder.error_dir, folder.watch, "x.hdr", companions=companions_of(folder)
        )
    assert sorted(os.listdir(folder.error_dir)) == before
    assert (folder.error_dir / "x.d" / "a.txt").read_text() == "result"
    assert os.listdir(folder.watch) == []


_RESTORE_KILLER = """
from pathlib import Path

from pywats import errorfiles

errorfiles._rename_noreplace = counted(errorfiles._rename_noreplace)


def klippel(path):
    return [path.stem] if path.name.endswith(".txt") else []


def run(error_dir, watch, name):
    errorfiles.restore_error_file(Path(error_dir), Path(watch), name, companions=klippel)
"""


@pytest.mark.parametrize("where", ["same file system", "across file systems"])
def test_a_kill_at_any_step_of_a_move_back_loses_nothing(
    tmp_path: Path, where: str, request: pytest.FixtureRequest, killer: Callable[[str], Killer]
) -> None:
    from pywats.errorfiles import NameTakenError, restore_error_file

    elsewhere = _elsewhere(tmp_path, where, request)
    script = killer(_RESTORE_KILLER)
    expected = original()
    kill_at = 0
    while True:
        kill_at += 1
        assert kill_at < 500, "the move back never finished"
        error_dir, watch = elsewhere / f"error{kill_at}", tmp_path / f"in{kill_at}"
        error_dir.mkdir(parents=True)
        watch.mkdir()
        put_unit(error_dir)
        (error_dir / f"{HEADER}.error.txt").write_text("reason: bad\n")
        returncode, _ = script.run(kill_at, str(error_dir), str(watch), HEADER)
        seen_watch, seen_error = visible(watch), visible(error_dir)
        # Nothing is lost: every file is in the watch folder or still in the error folder.
        for name, data in expected.items():
            assert data in (seen_watch.get(name), seen_error.get(name)), f"{kill_at}: {name} lost"
        # The header comes last: never in the watch folder without its whole folder.
        if HEADER in seen_watch:
            assert seen_watch == expected, f"kill at {kill_at}: the header came before its folder"
        if HEADER in seen_error and HEADER not in seen_watch:
            # Moved back again (what the operator does next): it finishes, or, when a
            # complete copy of the folder is in the watch folder already (across file
            # systems, the original goes last), it says so and moves nothing.
            again = (watch / FOLDER).exists() and (error_dir / FOLDER).exists()
            if again:
                with pytest.raises(NameTakenError, match=re.escape(str(watch / FOLDER))):
                    restore_error_file(error_dir, watch, HEADER, companions=lambda p: [p.stem])
                assert (visible(watch), visible(error_dir)) == (seen_watch, seen_error)
            else:
                restore_error_file(error_dir, watch, HEADER, companions=lambda p: [p.stem])
                assert visible(watch) == expected
        if returncode == 0:
            assert visible(watch) == expected
            assert visible(error_dir) == {}
            break
    assert kill_at > 4  # each of its steps was cut once, and then it ran through


async def test_a_units_folder_counts_in_its_memory_cost(tmp_path: Path, store: Store) -> None:
    # The header is a few KB; its result folder is what the converter reads most of. A
    # budget the header alone fits but the unit does not sends it to the error folder,
    # folder and all, saying what it needs; a budget for the whole unit converts it.
    unit = sum(len(data) for data in original().values())
    factor = factor_of(KlippelConverter())
    header = len((DATA / HEADER).read_bytes())
    too_small = int(factor * (header + unit) / 2)
    assert factor * header < too_small
    for budget, outcome in ((too_small, "rejected"), (int(factor * unit) + 1, "converted")):
        folder = klippel_folder(tmp_path / outcome)
        with trio.fail_after(30):
            async with running(store, folder, memory_budget_bytes=budget) as (_, files):
                await trio.to_thread.run_sync(put_unit, folder.watch)
                await files.wait(1, "the unit")
        assert files.kinds() == {HEADER: outcome}
        if outcome == "rejected":
            [event] = files.of(HEADER)
            assert isinstance(event, FileRejected)
            assert "conversion memory budget" in event.reason
            assert FOLDER in names(folder.error_dir)  # the folder went with its header
