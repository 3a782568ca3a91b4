"""The conversion pipeline end to end: real folders, real inotify, a real Store, real threads.

Rules: no mocks. Files are written into watch folders under ``tmp_path`` by this process
(threads) or by subprocesses; the assertions are what a station engineer would look at:
what is in the queue (and its exact bytes), what is in the done and error folders, what
the sidecars say, what is still in the watch folder, and the events the pipeline
publishes. Every test is bounded by ``trio.fail_after``; waits are for the pipeline's
events (:class:`Files`: the ``FileProcessed`` or ``FileRejected`` each file ends with),
never fixed sleeps that must be "long enough". The few timed waits assert that nothing
happens meanwhile (:meth:`Files.quiet`), and :func:`until` is kept for the few states
that publish no event (a full channel, a log line).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import apsw
import attrs
import pytest
import trio

from pywats import defaults
from pywats.converters import ConversionContext, Source, StationDefaults, load_converter
from pywats.converters.wsjf import WsjfConverter
from pywats.converters.wsxf import WsxfConverter
from pywats.errors import ConfigError, PywatsError
from pywats.events import (
    Event,
    EventHub,
    FileProcessed,
    FileRejected,
    Gap,
    ReportQueued,
    Subscription,
)
from pywats.events import FileOutcome as Outcome
from pywats.pipeline import FolderConfig, Pipeline, PostAction
from pywats.report import Report, wsjf
from pywats.store import NewReport, QueuedReport, SourceFile, Store
from tests.clock import waiting_for_the_test
from tests.conftest import LONG_TESTS
from tests.report import minimal

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "contrib" / "example-converter"
STATION = StationDefaults(machine_name="ST-7", location="Hall 3", purpose="Production")


# -- helpers ----------------------------------------------------------------------------


def document(n: int = 0, **changes: Any) -> dict[str, Any]:
    """A valid WSJF UUT report with its own serial number (and no id: one is given)."""
    doc = minimal.uut()
    del doc["id"]
    doc["sn"] = f"SN{n:05d}"
    doc.update(changes)
    return doc


def wsjf_bytes(n: int = 0, **changes: Any) -> bytes:
    return json.dumps(document(n, **changes)).encode()


def with_id(n: int = 0, **changes: Any) -> bytes:
    """WSJF with a fixed id, so the report (and its queued body) is deterministic."""
    return wsjf_bytes(n, id=str(uuid.UUID(int=n + 1, version=4)), **changes)


def expected_body(data: bytes) -> bytes:
    """What the wsjf converter makes of ``data``: the exact bytes that must be queued."""
    [report] = WsjfConverter().convert(Source(Path("x.json"), data), ConversionContext(STATION))
    return wsjf.dumps(report)


def make_folder(tmp_path: Path, name: str = "line1", **overrides: Any) -> FolderConfig:
    base = tmp_path / name
    settings: dict[str, Any] = {
        "name": name,
        "converter": WsjfConverter(),
        "watch": base / "in",
        "done_dir": base / "done",
        "error_dir": base / "error",
        "settle_s": 0.2,
        "rescan_s": 0.5,
    }
    settings.update(overrides)
    return FolderConfig(**settings)


FileOutcome = FileProcessed | FileRejected
"""The event that ends a file: one per file a worker takes."""


@attrs.define(eq=False)
class Files:
    """The file outcomes a pipeline publishes, received from its hub as they come.

    Tests wait for these events (bounded), never for counters by polling: every file a
    worker takes ends in exactly one ``FileProcessed`` or ``FileRejected``.
    """

    subscription: Subscription
    events: list[Event] = attrs.field(factory=list)
    """Everything received, in order (``ReportQueued`` and ``ComponentStatus`` too)."""
    outcomes: list[FileOutcome] = attrs.field(factory=list)
    """The file outcomes received, in order."""

    def _take(self, event: Event) -> None:
        if isinstance(event, Gap):
            pytest.fail(f"the test's subscription dropped {event.dropped} event(s)")
        self.events.append(event)
        if isinstance(event, FileProcessed | FileRejected):
            self.outcomes.append(event)

    async def wait(self, count: int, what: str, timeout: float = 20) -> list[FileOutcome]:
        """Wait until ``count`` file outcomes have been published in all; return them."""
        with trio.move_on_after(timeout):
            while len(self.outcomes) < count:
                self._take(await self.subscription.receive())
            return list(self.outcomes)
        pytest.fail(
            f"timed out after {timeout} s waiting for {what} "
            f"({len(self.outcomes)} of {count} file outcomes: {self.outcomes})"
        )

    async def wait_for(
        self, match: Callable[[Event], bool], what: str, timeout: float = 20
    ) -> Event:
        """Wait for the next event (from now) that ``match`` accepts; return it."""
        with trio.move_on_after(timeout):
            while True:
                event = await self.subscription.receive()
                self._take(event)
                if match(event):
                    return event
        pytest.fail(f"timed out after {timeout} s waiting for {what}")

    async def quiet(self, seconds: float) -> None:
        """No file outcome comes within ``seconds`` (rescans pass meanwhile)."""
        before = len(self.outcomes)
        with trio.move_on_after(seconds):
            while len(self.outcomes) == before:
                self._take(await self.subscription.receive())
            pytest.fail(f"unexpected outcome {self.outcomes[-1]}")

    def drain(self) -> None:
        """Take every event already published."""
        while True:
            try:
                self._take(self.subscription.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                return

    def of(self, name: str) -> list[FileOutcome]:
        """The outcomes of the files called ``name``."""
        return [o for o in self.outcomes if Path(o.source).name == name]

    def kinds(self) -> dict[str, str]:
        """File name -> its outcome (``rejected`` for FileRejected); each file once."""
        out: dict[str, str] = {}
        for o in self.outcomes:
            name = Path(o.source).name
            assert name not in out, f"{name} has two outcomes: {self.of(name)}"
            out[name] = o.outcome if isinstance(o, FileProcessed) else "rejected"
        return out


def watch(hub: EventHub) -> Files:
    """Subscribe to ``hub`` with room for every event of a test."""
    return Files(hub.subscribe(buffer=1_000_000))


@asynccontextmanager
async def running(
    store: Store, *folders: FolderConfig, **options: Any
) -> AsyncIterator[tuple[Pipeline, Files]]:
    """A started pipeline and its outcomes; stopped gracefully (begin_shutdown, then run
    returns) at exit."""
    hub = EventHub()
    files = watch(hub)
    pipeline = Pipeline(store, folders, station=STATION, hub=hub, **options)
    with files.subscription:
        async with trio.open_nursery() as nursery:
            await nursery.start(pipeline.run)
            yield pipeline, files
            pipeline.begin_shutdown()


async def until(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    """Wait for a state that publishes no event (a full channel, a log line)."""
    with trio.move_on_after(timeout):
        while not condition():
            await trio.sleep(0.01)
        return
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def counts(pipeline: Pipeline, name: str = "line1") -> tuple[int, int, int, int]:
    """(files converted, reports queued, files failed, duplicates skipped) of a folder."""
    s = pipeline.statistics().folders[name]
    return (s.files_converted, s.reports_queued, s.files_failed, s.duplicates_skipped)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


async def queued(store: Store) -> list[QueuedReport]:
    """Every queued report, with its body, oldest first."""
    rows = await store.list_reports(limit=1_000_000)
    return [await store.get(r.id) for r in reversed(rows)]


def sidecar(path: Path) -> dict[str, str]:
    """The ``key: value`` lines of a sidecar."""
    fields: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition(":")
        if sep and key.isalpha() and key.islower():
            fields[key] = value.strip()
    return fields


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "state" / "queue.db") as s:
        yield s


@attrs.define(eq=False)
class Gated:
    """A wsjf converter that waits for ``gate`` before converting (a slow converter)."""

    name = "gated"
    version = "1"
    patterns = ("*.json",)

    gate: threading.Event = attrs.field(factory=threading.Event)
    entered: list[str] = attrs.field(factory=list)
    _token: trio.lowlevel.TrioToken | None = None
    _changed: trio.Event = attrs.field(factory=trio.Event)

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        self.entered.append(source.path.name)
        token = self._token
        if token is not None:
            # Wake a test waiting in wait_entered (this runs in a converter thread).
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(lambda: self._changed.set())
        # Bounded: a test that forgets to open the gate fails instead of hanging.
        with waiting_for_the_test():
            if not self.gate.wait(60):
                raise RuntimeError("gate never opened")
        return WsjfConverter().convert(source, context)

    async def wait_entered(self, count: int, timeout: float = 20) -> list[str]:
        """Wait until ``count`` files have entered the converter; return their names."""
        with trio.fail_after(timeout):
            while len(self.entered) < count:
                self._changed = trio.Event()
                self._token = trio.lowlevel.current_trio_token()
                if len(self.entered) < count:  # entered before the token was set
                    await self._changed.wait()
        return list(self.entered)


@pytest.fixture
def gated() -> Iterator[Gated]:
    converter = Gated()
    yield converter
    converter.gate.set()  # let threads abandoned by a cancelled test finish


class Empty:
    name = "empty"
    version = "1"
    patterns = ("*.dat",)

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        return []


class Sloppy:
    """A plugin that forgets validate(): its report has an empty serial number."""

    name = "sloppy"
    version = "2.0"
    patterns = ("*.slp",)

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        report = wsjf.loads(with_id(1))
        return [attrs.evolve(report, sn="")]


class Buggy:
    """A plugin that returns the wrong type."""

    name = "buggy"
    version = "0.1"
    patterns = ("*.bug",)

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        return [source.data.decode("ascii")]  # type: ignore[list-item]  # a buggy plugin


# -- ready files ------------------------------------------------------------------------


async def test_a_file_written_in_pieces_gives_one_complete_report(
    tmp_path: Path, store: Store
) -> None:
    # ~40 KB of JSON written in 10 pieces over 2 s under its final name. Any prefix of it
    # is invalid JSON, so a read before the writer closed it would land in the error
    # folder; rescans run every 0.3 s but the pauses are shorter than settle_s.
    misc = [{"description": f"log {n}", "text": "x" * 90} for n in range(400)]
    data = with_id(7, miscInfos=misc)
    pieces = [data[i : i + len(data) // 10 + 1] for i in range(0, len(data), len(data) // 10 + 1)]
    folder = make_folder(tmp_path, settle_s=1.0, rescan_s=0.3)

    def write() -> None:
        with open(folder.watch / "result.json", "wb") as f:
            for piece in pieces:
                f.write(piece)
                f.flush()
                time.sleep(0.2)

    with trio.fail_after(30):
        async with running(store, folder) as (pipeline, files):
            await trio.to_thread.run_sync(write)
            [outcome] = await files.wait(1, "the file to be converted")
            assert isinstance(outcome, FileProcessed)
            assert outcome.outcome == Outcome.CONVERTED
            await files.quiet(0.5)  # nothing else happens: no second report, no failure
            assert counts(pipeline) == (1, 1, 0, 0)
    [report] = await queued(store)
    assert report.body == expected_body(data)
    assert report.source == str(folder.watch / "result.json")
    assert names(folder.watch) == []
    assert (folder.done_dir / "result.json").read_bytes() == data
    assert names(folder.error_dir) == []


async def test_a_file_renamed_into_place_gives_one_report(tmp_path: Path, store: Store) -> None:
    folder = make_folder(tmp_path)
    with trio.fail_after(20):
        async with running(store, folder) as (pipeline, files):
            (folder.watch / "r.json.tmp").write_bytes(with_id(1))
            os.rename(folder.watch / "r.json.tmp", folder.watch / "r.json")
            await files.wait(1, "the renamed file")
            await files.quiet(0.6)  # a rescan passes: nothing more
            assert counts(pipeline) == (1, 1, 0, 0)
    [report] = await queued(store)
    assert report.body == expected_body(with_id(1))
    assert names(folder.done_dir) == ["r.json"]


@pytest.mark.slow
async def test_thousands_of_files_present_at_start_are_all_queued_and_moved(
    tmp_path: Path, store: Store
) -> None:
    folder = make_folder(tmp_path, rescan_s=5)
    folder.watch.mkdir(parents=True)
    # 3,000 by default, for the suite's ten minutes (faults/test_backlog.py has the whole
    # service with 10,000); 10,000 here too with PYWATS_LONG=1.
    count = 10_000 if LONG_TESTS else 3_000
    for n in range(count):
        (folder.watch / f"r{n:05d}.json").write_bytes(wsjf_bytes(n))
    with trio.fail_after(90):
        async with running(store, folder) as (pipeline, files):
            outcomes = await files.wait(count, "every file", timeout=85)
            assert counts(pipeline) == (count, count, 0, 0)
            assert {o.outcome for o in outcomes if isinstance(o, FileProcessed)} == {"converted"}
    # A worker releases the paths it took together once it is done with them all.
    assert pipeline.statistics().folders["line1"].watcher.in_flight == 0
    assert (await store.stats()).pending == count
    assert names(folder.watch) == []
    assert len(names(folder.done_dir)) == count
    sns = {r.sn for r in await store.list_reports(limit=count)}
    assert sns == {f"SN{n:05d}" for n in range(count)}


async def test_files_taken_together_each_get_their_own_outcome(
    tmp_path: Path, store: Store
) -> None:
    # Present at start with one worker: the worker takes them in one batch, so this is
    # the batched path with every outcome at once.
    folder = make_folder(tmp_path, max_file_bytes=4096)
    folder.watch.mkdir(parents=True)
    good = {f"good{n}.json": with_id(n) for n in range(4)}
    for name, data in good.items():
        (folder.watch / name).write_bytes(data)
    (folder.watch / "copy.json").write_bytes(good["good0.json"])  # same content again
    (folder.watch / "broken.json").write_bytes(b'{"id": ')
    (folder.watch / "huge.json").write_bytes(b" " * 5000)
    # A report id that is already queued, from another file.
    taken = json.loads(with_id(99))
    await store.enqueue(
        [
            NewReport(
                id=taken["id"],
                body=with_id(99),
                pn=taken["pn"],
                sn=taken["sn"],
                result="P",
                start=taken["start"],
                converter="wsjf",
            )
        ]
    )
    (folder.watch / "clash.json").write_bytes(with_id(99, sn="OTHER"))
    with trio.fail_after(30):
        async with running(store, folder, workers=1) as (pipeline, files):
            await files.wait(8, "every file")
            # converted, reports, failed, duplicates
            assert counts(pipeline) == (4, 4, 3, 1)
            assert files.kinds() == {
                **dict.fromkeys(good, "converted"),
                "copy.json": "duplicate",
                "broken.json": "rejected",
                "huge.json": "rejected",
                "clash.json": "rejected",
            }
    assert names(folder.watch) == []
    assert names(folder.done_dir) == sorted([*good, "copy.json"])
    assert names(folder.error_dir) == sorted(
        f"{n}{suffix}"
        for n in ("broken.json", "huge.json", "clash.json")
        for suffix in ("", ".error.txt")
    )
    assert "not valid JSON" in sidecar(folder.error_dir / "broken.json.error.txt")["reason"]
    assert "max_file_bytes" in sidecar(folder.error_dir / "huge.json.error.txt")["reason"]
    assert "already queued" in sidecar(folder.error_dir / "clash.json.error.txt")["reason"]
    bodies = sorted(r.body for r in await queued(store))
    assert bodies == sorted([with_id(99), *(expected_body(data) for data in good.values())])


async def test_a_burst_that_overflows_inotify_loses_nothing(
    tmp_path: Path, store: Store, gated: Gated
) -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if limit > 60_000:
        pytest.skip(f"fs.inotify.max_queued_events = {limit}: too large to overflow here")
    # No periodic rescan: only the overflow can bring one.
    folder = make_folder(tmp_path, converter=gated, rescan_s=300, settle_s=0.2)
    real = [f"b{n:03d}.json" for n in range(200)]
    with trio.fail_after(45):
        async with running(store, folder, workers=1, channel_size=1) as (pipeline, files):
            # One or two files in hand (the worker takes what is waiting; the converter
            # waits), one in the channel, one the watcher is trying to send: the watcher
            # reads no events now, the kernel queues them.
            for n in range(4):
                (folder.watch / f"a{n}.json").write_bytes(wsjf_bytes(n))

            def watcher_blocked() -> bool:
                stats = pipeline.statistics()
                line1 = stats.folders["line1"]
                return stats.waiting == 1 and line1.watcher.files_sent == line1.in_hand + 2

            await until(watcher_blocked, "the watcher to block")

            def burst() -> None:
                # Closing a file opened for writing queues an event even for names that
                # match no pattern; alternating two names defeats the kernel's merging
                # of identical events. Then the real files, whose events are dropped.
                for n in range(limit + 2_000):
                    with open(folder.watch / f"noise{n % 2}.log", "ab"):
                        pass
                for n, name in enumerate(real):
                    (folder.watch / name).write_bytes(wsjf_bytes(100 + n))

            await trio.to_thread.run_sync(burst)
            gated.gate.set()
            await files.wait(4 + len(real), "every real file", timeout=40)
            assert counts(pipeline) == (204, 204, 0, 0)
            watcher = pipeline.statistics().folders["line1"].watcher
            assert watcher.overflows >= 1
            assert watcher.rescans >= 1
    assert (await store.stats()).pending == 204
    assert names(folder.watch) == ["noise0.log", "noise1.log"]
    assert len(names(folder.done_dir)) == 204


async def test_a_folder_without_inotify_is_handled_by_rescans(tmp_path: Path, store: Store) -> None:
    folder = make_folder(tmp_path, use_inotify=False, rescan_s=0.3, settle_s=0.3)
    folder.watch.mkdir(parents=True)
    (folder.watch / "before.json").write_bytes(with_id(1))
    with trio.fail_after(20):
        async with running(store, folder) as (pipeline, files):
            (folder.watch / "after.json").write_bytes(with_id(2))
            await files.wait(2, "both files")
            assert counts(pipeline) == (2, 2, 0, 0)
            watcher = pipeline.statistics().folders["line1"].watcher
            assert watcher.watches == 0  # no inotify at all
            assert watcher.rescans >= 1
    assert sorted(r.body for r in await queued(store)) == sorted(
        [expected_body(with_id(1)), expected_body(with_id(2))]
    )
    assert names(folder.done_dir) == ["after.json", "before.json"]


# -- bad files --------------------------------------------------------------------------


async def test_every_kind_of_bad_file_goes_to_the_error_folder_with_a_sidecar(
    tmp_path: Path, store: Store
) -> None:
    bad_op = document(1)
    bad_op["root"]["steps"][0]["numericMeas"][0]["compOp"] = "XX"
    cases: dict[tuple[str, str], tuple[bytes, str, str]] = {
        # (folder, file name): (content, reason fragment, field path)
        ("json", "corrupt.json"): (b'{"type": "T", ', "not valid JSON", "-"),
        ("json", "bad-op.json"): (
            json.dumps(bad_op).encode(),
            "'XX' is not a comparison operator",
            "root.steps[0].numericMeas[0].compOp",
        ),
        ("json", "empty-array.json"): (b"[]", "the array holds no report", "-"),
        ("json", "big.json"): (
            b" " * 5000 + wsjf_bytes(2),
            "more than max_file_bytes (4096)",
            "-",
        ),
        ("xml", "dtd.xml"): (
            b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY e "x">]>\n<Reports/>',
            "XML with a DTD/entity declarations is not accepted",
            "-",
        ),
        ("empty", "nothing.dat"): (b"whatever", "the file holds no report", "-"),
        ("sloppy", "r.slp"): (b"anything", "the report breaks a WSJF rule", "sn"),
        ("buggy", "r.bug"): (b"abc", "convert() must return a list of Report", "-"),
    }
    folders = [
        make_folder(tmp_path, "json", max_file_bytes=4096),
        make_folder(tmp_path, "xml", converter=WsxfConverter()),
        make_folder(tmp_path, "empty", converter=Empty()),
        make_folder(tmp_path, "sloppy", converter=Sloppy()),
        make_folder(tmp_path, "buggy", converter=Buggy()),
    ]
    by_name = {f.name: f for f in folders}
    converters = {"json": "wsjf", "xml": "wsxf", "empty": "empty"}
    before = datetime.now(UTC) - timedelta(seconds=1)
    with trio.fail_after(20):
        async with running(store, *folders) as (pipeline, files):
            for (folder_name, file_name), (data, _, _) in cases.items():
                (by_name[folder_name].watch / file_name).write_bytes(data)
            outcomes = await files.wait(len(cases), "every bad file")
            failed = {f.name: counts(pipeline, f.name)[2] for f in folders}
            assert failed == {"json": 4, "xml": 1, "empty": 1, "sloppy": 1, "buggy": 1}
    after = datetime.now(UTC) + timedelta(seconds=1)
    assert (await store.stats()).total == 0
    rejected = {Path(o.source).name: o for o in outcomes if isinstance(o, FileRejected)}
    assert len(rejected) == len(cases)
    for (folder_name, file_name), (data, reason, field) in cases.items():
        folder = by_name[folder_name]
        event = rejected[file_name]
        assert (event.folder, event.source) == (folder_name, str(folder.watch / file_name))
        assert event.error_file == str(folder.error_dir / file_name)
        assert reason in event.reason
        assert event.field == ("" if field == "-" else field)
        assert names(folder.watch) == []
        # Moved unchanged, with its explanation beside it.
        assert (folder.error_dir / file_name).read_bytes() == data
        text = (folder.error_dir / f"{file_name}.error.txt").read_text()
        fields = sidecar(folder.error_dir / f"{file_name}.error.txt")
        assert fields["file"] == str(folder.watch / file_name)
        assert fields["size"] == f"{len(data)} bytes"
        name = converters.get(folder_name, folder_name)
        assert fields["converter"].split()[0] == name == event.converter
        assert reason in fields["reason"], text
        assert "converter crashed" not in text
        assert fields["field"] == field
        when = datetime.fromisoformat(fields["time"])
        assert when.utcoffset() is not None
        assert before <= when <= after
        assert names(folder.done_dir) == []


async def test_an_unreadable_file_goes_to_the_error_folder(tmp_path: Path) -> None:
    # Root reads any file whatever its mode (CAP_DAC_OVERRIDE). So the pipeline runs in a
    # child process; as root, one whose bounding set lacks the capabilities that bypass
    # file modes (setpriv), so a file of mode 000 cannot be read.
    command = [sys.executable, "-c", child_script(tmp_path)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root, and no setpriv to drop CAP_DAC_OVERRIDE with")
        # Without CAP_FOWNER, and with the file owned by someone else, fs.protected_hardlinks
        # also refuses to hard-link it: the move falls back to a no-clobber rename.
        caps = "-dac_override,-dac_read_search,-fowner"
        command = [setpriv, f"--bounding-set={caps}", *command]
    for sub in ("in", "done", "error", "state"):
        (tmp_path / sub).mkdir()
    secret = tmp_path / "in" / "secret.json"
    secret.write_bytes(with_id(1))
    secret.chmod(0)
    if os.geteuid() == 0:
        os.chown(secret, 65534, 65534)
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"failed": 1, "queued": 0}
    assert names(tmp_path / "in") == []
    assert names(tmp_path / "error") == ["secret.json", "secret.json.error.txt"]
    fields = sidecar(tmp_path / "error" / "secret.json.error.txt")
    assert fields["reason"] == "cannot read the file: Permission denied"
    assert fields["file"] == str(secret)
    assert fields["size"] == "unknown"
    assert fields["converter"].startswith("wsjf ")


def child_script(base: Path) -> str:
    """A child process: run the pipeline on ``base`` until one file was handled."""
    return f"""
import json, trio
from pathlib import Path
from pywats.converters import StationDefaults
from pywats.converters.wsjf import WsjfConverter
from pywats.events import FileProcessed, FileRejected
from pywats.pipeline import FolderConfig, Pipeline
from pywats.store import Store

async def main():
    base = Path({str(base)!r})
    async with await Store.open(base / "state" / "queue.db") as store:
        folder = FolderConfig(name="line1", converter=WsjfConverter(), watch=base / "in",
                              done_dir=base / "done", error_dir=base / "error")
        pipeline = Pipeline(store, [folder], station=StationDefaults())
        with trio.fail_after(30), pipeline.hub.subscribe() as events:
            async with trio.open_nursery() as nursery:
                await nursery.start(pipeline.run)
                async for event in events:
                    if isinstance(event, FileProcessed | FileRejected):
                        break
                pipeline.begin_shutdown()
        s = pipeline.statistics().folders["line1"]
        print(json.dumps({{"failed": s.files_failed, "queued": (await store.stats()).total}}))

trio.run(main)
"""


async def test_a_report_id_already_queued_from_another_file_is_rejected(
    tmp_path: Path, store: Store
) -> None:
    folder = make_folder(tmp_path)
    with trio.fail_after(20):
        async with running(store, folder) as (pipeline, files):
            (folder.watch / "first.json").write_bytes(with_id(1))
            await files.wait(1, "the first file")
            # Other content (another serial number), the same report id.
            (folder.watch / "second.json").write_bytes(with_id(1, sn="OTHER"))
            [_, second] = await files.wait(2, "the second file")
            assert counts(pipeline) == (1, 1, 1, 0)
            assert isinstance(second, FileRejected)
            assert (second.field, second.error_file) == (
                "id",
                str(folder.error_dir / "second.json"),
            )
    [report] = await queued(store)
    assert report.sn == "SN00001"
    fields = sidecar(folder.error_dir / "second.json.error.txt")
    assert "is already queued (from another file)" in fields["reason"]
    assert fields["field"] == "id"


# -- duplicates and post-actions ----------------------------------------------------------


async def test_the_same_content_dropped_again_is_not_queued_twice(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pywats.pipeline")
    folder = make_folder(tmp_path)
    data = wsjf_bytes(1)  # no id in the file: every conversion would make a fresh one
    with trio.fail_after(20):
        async with running(store, folder) as (pipeline, files):
            (folder.watch / "a.json").write_bytes(data)
            await files.wait(1, "the first copy")
            (folder.watch / "a.json").write_bytes(data)
            await files.wait(2, "the second copy")
            (folder.watch / "b.json").write_bytes(data)
            outcomes = await files.wait(3, "the third copy")
            assert counts(pipeline) == (1, 1, 0, 2)
    [report] = await queued(store)
    assert [(o.outcome, o.report_ids) for o in outcomes if isinstance(o, FileProcessed)] == [
        ("converted", (report.id,)),
        ("duplicate", (report.id,)),
        ("duplicate", (report.id,)),
    ]
    # Every copy is filed away; a taken name gets a number.
    assert names(folder.done_dir) == ["a.1.json", "a.json", "b.json"]
    assert names(folder.watch) == []
    lines = [r.getMessage() for r in caplog.records if "already queued" in r.getMessage()]
    assert len(lines) == 2
    assert all(f"already queued as {report.id}" in line for line in lines)
    assert str(folder.watch / "b.json") in lines[1]


async def test_a_file_with_several_reports_is_queued_in_one_go(
    tmp_path: Path, store: Store
) -> None:
    folder = make_folder(tmp_path)
    data = json.dumps([json.loads(with_id(1)), json.loads(with_id(2))]).encode()
    with trio.fail_after(20):
        async with running(store, folder) as (pipeline, files):
            (folder.watch / "two.json").write_bytes(data)
            [outcome] = await files.wait(1, "the file")
            assert counts(pipeline) == (1, 2, 0, 0)
    reports = await queued(store)
    assert {r.sn for r in reports} == {"SN00001", "SN00002"}
    # A ReportQueued for each report, before the file's own outcome.
    queued_events = [e for e in files.events if isinstance(e, ReportQueued)]
    assert [e.report_id for e in queued_events] == list(outcome.report_ids)
    assert {e.sn for e in queued_events} == {"SN00001", "SN00002"}
    assert all(e.seq < outcome.seq for e in queued_events)
    assert {r.source for r in reports} == {str(folder.watch / "two.json")}


async def test_post_action_move_never_overwrites(tmp_path: Path, store: Store) -> None:
    folder = make_folder(tmp_path)
    folder.done_dir.mkdir(parents=True)
    (folder.done_dir / "a.json").write_bytes(b"older a")
    (folder.done_dir / "a.1.json").write_bytes(b"older a.1")
    with trio.fail_after(20):
        async with running(store, folder) as (_pipeline, files):
            (folder.watch / "a.json").write_bytes(with_id(1))
            await files.wait(1, "the file")
    assert (folder.done_dir / "a.json").read_bytes() == b"older a"
    assert (folder.done_dir / "a.1.json").read_bytes() == b"older a.1"
    assert (folder.done_dir / "a.2.json").read_bytes() == with_id(1)
    assert names(folder.watch) == []


async def test_post_action_delete(tmp_path: Path, store: Store) -> None:
    folder = make_folder(tmp_path, post_action="delete")
    with trio.fail_after(20):
        async with running(store, folder) as (pipeline, files):
            (folder.watch / "a.json").write_bytes(with_id(1))
            [outcome] = await files.wait(1, "the file")
            assert counts(pipeline) == (1, 1, 0, 0)
            assert isinstance(outcome, FileProcessed)
            assert outcome.detail == "deleted"
    assert names(folder.watch) == []
    assert not folder.done_dir.exists()  # not even created: delete needs no done folder
    assert len(await queued(store)) == 1


async def test_post_action_archive_sorts_by_local_date(tmp_path: Path, store: Store) -> None:
    folder = make_folder(tmp_path, post_action=PostAction.ARCHIVE)
    oslo = timezone(timedelta(hours=1))
    # 23:30 UTC on 31 January is already 1 February on the station.
    clock = lambda: datetime(2026, 1, 31, 23, 30, tzinfo=UTC).astimezone(oslo)  # noqa: E731
    with trio.fail_after(20):
        async with running(store, folder, wall_clock=clock) as (_pipeline, files):
            for n in range(2):
                (folder.watch / f"r{n}.json").write_bytes(with_id(n))
            await files.wait(2, "both files")
    assert names(folder.done_dir) == ["2026-02-01"]
    assert names(folder.done_dir / "2026-02-01") == ["r0.json", "r1.json"]


async def test_post_action_keep_leaves_the_file_and_never_queues_it_again(
    tmp_path: Path, store: Store
) -> None:
    folder = make_folder(tmp_path, post_action="keep", rescan_s=0.2, settle_s=0.1)
    with trio.fail_after(20):
        async with running(store, folder) as (pipeline, files):
            (folder.watch / "a.json").write_bytes(wsjf_bytes(1))
            [outcome] = await files.wait(1, "the file")
            assert isinstance(outcome, FileProcessed)
            assert outcome.detail == "kept in place"
            await files.quiet(1.0)  # several rescans: the kept file is remembered
            assert counts(pipeline) == (1, 1, 0, 0)
            assert pipeline.statistics().folders["line1"].watcher.remembered == 1
        # A restart sees it again; its hash says it is already queued.
        async with running(store, folder) as (pipeline, files):
            [outcome] = await files.wait(1, "the file after restart")
            assert counts(pipeline) == (0, 0, 0, 1)
            assert isinstance(outcome, FileProcessed)
            assert outcome.outcome == Outcome.DUPLICATE
    assert names(folder.watch) == ["a.json"]
    assert len(await queued(store)) == 1


async def test_move_across_file_systems(tmp_path: Path, store: Store) -> None:
    if not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on another file system than tmp_path")
    other = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="pywats-done-"))
    try:
        folder = make_folder(tmp_path, done_dir=other)
        (other / "a.json").write_bytes(b"taken")
        folder.watch.mkdir(parents=True)
        (folder.watch / "a.json").write_bytes(with_id(1))
        os.utime(folder.watch / "a.json", (1_700_000_000, 1_700_000_000))
        with trio.fail_after(20):
            async with running(store, folder) as (pipeline, files):
                await files.wait(1, "the file")
                assert counts(pipeline) == (1, 1, 0, 0)
        assert names(other) == ["a.1.json", "a.json"]  # no temporary copy left behind
        assert (other / "a.1.json").read_bytes() == with_id(1)
        assert (other / "a.1.json").stat().st_mtime == 1_700_000_000
        assert (other / "a.json").read_bytes() == b"taken"
        assert names(folder.watch) == []
    finally:
        shutil.rmtree(other)


async def test_recursive_folders_keep_their_structure(tmp_path: Path, store: Store) -> None:
    base = tmp_path / "line1"
    folder = make_folder(
        tmp_path,
        recursive=True,
        watch=base,
        done_dir=base / ".done",
        error_dir=base / ".error",
    )
    with trio.fail_after(20):
        async with running(store, folder) as (pipeline, files):
            (base / "fixture-a" / "slot-1").mkdir(parents=True)
            (base / "fixture-a" / "slot-1" / "r.json").write_bytes(with_id(1))
            (base / "fixture-b").mkdir()
            (base / "fixture-b" / "r.json").write_bytes(b"{broken")
            await files.wait(2, "both files")
            await files.quiet(0.6)  # a rescan: the hidden done/error folders are not watched
            assert counts(pipeline) == (1, 1, 1, 0)
    assert names(base / ".done" / "fixture-a" / "slot-1") == ["r.json"]
    assert names(base / ".error" / "fixture-b") == ["r.json", "r.json.error.txt"]


# -- backpressure, stopping, crashes ------------------------------------------------------


async def test_a_busy_pipeline_leaves_files_in_the_watch_folder(
    tmp_path: Path, store: Store, gated: Gated
) -> None:
    folder = make_folder(tmp_path, converter=gated, rescan_s=0.1, settle_s=0.05)
    folder.watch.mkdir(parents=True)
    files_ = [f"r{n}.json" for n in range(10)]
    for n, name in enumerate(files_):
        (folder.watch / name).write_bytes(wsjf_bytes(n))
    with trio.fail_after(30):
        async with running(store, folder, workers=2, channel_size=2) as (pipeline, files):
            # Both workers busy (each with the file it waits on, and any it took along),
            # 2 in the channel, 1 the watcher waits to send.
            def full() -> bool:
                stats = pipeline.statistics()
                line1 = stats.folders["line1"]
                return (stats.busy, stats.waiting) == (2, 2) and (
                    line1.watcher.files_sent == line1.in_hand + 3
                )

            await until(full, "the channel to fill")
            sent = pipeline.statistics().folders["line1"].watcher.files_sent
            await trio.sleep(0.5)  # rescans pass; nothing moves
            assert full()
            assert pipeline.statistics().folders["line1"].watcher.files_sent == sent
            assert names(folder.watch) == files_
            assert (await store.stats()).total == 0
            (folder.watch / "r7.json").unlink()  # someone takes one away meanwhile
            gated.gate.set()
            await files.wait(10, "every file")
            assert files.kinds() == {
                name: "vanished" if name == "r7.json" else "converted" for name in files_
            }
            assert pipeline.statistics().folders["line1"].files_vanished == 1
    assert names(folder.watch) == []
    assert names(folder.done_dir) == [name for name in files_ if name != "r7.json"]
    assert (await store.stats()).pending == 9


async def test_graceful_stop_finishes_the_file_in_hand(
    tmp_path: Path, store: Store, gated: Gated
) -> None:
    folder = make_folder(tmp_path, converter=gated)
    folder.watch.mkdir(parents=True)
    for n in range(3):
        (folder.watch / f"r{n}.json").write_bytes(wsjf_bytes(n))
    pipeline = Pipeline(store, [folder], station=STATION, workers=1, channel_size=1)
    files = watch(pipeline.hub)
    stopped = trio.Event()

    async def run() -> None:
        await pipeline.run()
        stopped.set()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            [in_hand] = await gated.wait_entered(1)
            pipeline.begin_shutdown()
            await trio.sleep(0.3)  # asserting it does not stop meanwhile
            assert not stopped.is_set()  # waiting for the file in hand
            assert pipeline.statistics().stopping
            gated.gate.set()
            await stopped.wait()
    stats = pipeline.statistics()
    assert counts(pipeline) == (1, 1, 0, 0)
    # Those sent along were taken from the channel (or the batch) and left: every file
    # sent has one outcome.
    files.drain()
    kinds = files.kinds()
    assert len(kinds) == stats.folders["line1"].watcher.files_sent >= 2
    assert kinds.pop(in_hand) == "converted"
    assert set(kinds.values()) == {"left"}
    assert stats.busy == 0
    assert stats.folders["line1"].watcher.in_flight == 0  # every path was released
    assert names(folder.done_dir) == [in_hand]
    assert len(names(folder.watch)) == 2  # the others wait for the next start
    assert [r.sn for r in await queued(store)] == [f"SN0000{in_hand[1]}"]


async def test_cancelling_mid_conversion_leaves_the_file_for_next_time(
    tmp_path: Path, store: Store, gated: Gated
) -> None:
    folder = make_folder(tmp_path, converter=gated)
    folder.watch.mkdir(parents=True)
    (folder.watch / "a.json").write_bytes(with_id(1))
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            pipeline = Pipeline(store, [folder], station=STATION)
            await nursery.start(pipeline.run)
            await gated.wait_entered(1)
            nursery.cancel_scope.cancel()  # like a SIGKILL'd converter: no graceful stop
        assert names(folder.watch) == ["a.json"]
        assert (await store.stats()).total == 0
        gated.gate.set()
        async with running(store, folder) as (pipeline, files):
            await files.wait(1, "the file after restart")
            assert counts(pipeline) == (1, 1, 0, 0)
    assert names(folder.done_dir) == ["a.json"]


async def test_a_crash_between_commit_and_move_is_healed_at_restart(
    tmp_path: Path, store: Store
) -> None:
    folder = make_folder(tmp_path)
    folder.watch.mkdir(parents=True)
    path = folder.watch / "a.json"
    data = wsjf_bytes(1)
    path.write_bytes(data)
    # What a crash right after the commit leaves: the reports and the source hash are
    # in the store, the file is still in the watch folder.
    report = NewReport(
        id=str(uuid.uuid4()),
        body=expected_body(data),
        pn="PCBA-100",
        sn="SN00001",
        result="P",
        start="2026-02-01T09:15:00.000+01:00",
        converter="wsjf",
    )
    source = SourceFile(hashlib.sha256(data).hexdigest(), str(path), len(data), 0.0)
    await store.enqueue([report], source)
    with trio.fail_after(20):
        async with running(store, folder) as (pipeline, files):
            [outcome] = await files.wait(1, "the file")
            assert counts(pipeline) == (0, 0, 0, 1)
            assert isinstance(outcome, FileProcessed)
            assert (outcome.outcome, outcome.report_ids) == (Outcome.DUPLICATE, (report.id,))
            assert outcome.detail == f"moved to {folder.done_dir / 'a.json'}"
    assert [r.id for r in await queued(store)] == [report.id]
    assert names(folder.done_dir) == ["a.json"]
    assert names(folder.watch) == []


async def test_a_file_rewritten_during_conversion_is_converted_again(
    tmp_path: Path, store: Store, gated: Gated
) -> None:
    folder = make_folder(tmp_path, converter=gated, settle_s=30, rescan_s=300)
    path = folder.watch / "a.json"
    with trio.fail_after(20):
        async with running(store, folder) as (pipeline, files):
            path.write_bytes(wsjf_bytes(1))
            await gated.wait_entered(1)
            path.write_bytes(wsjf_bytes(2, pn="REWRITTEN"))
            gated.gate.set()
            # The first version is queued, but the file is not moved: it is not what was
            # read. Its close event makes the new content ready again.
            first, second = await files.wait(2, "the second version")
            assert isinstance(first, FileProcessed)
            assert isinstance(second, FileProcessed)
            assert first.outcome == Outcome.LEFT
            assert "changed after it was read" in first.detail
            assert len(first.report_ids) == 1  # queued all the same
            assert second.outcome == Outcome.CONVERTED
            assert counts(pipeline) == (1, 2, 0, 0)
            assert pipeline.statistics().folders["line1"].files_left == 1
    assert [(r.sn, r.pn) for r in await queued(store)] == [
        ("SN00001", "PCBA-100"),
        ("SN00002", "REWRITTEN"),
    ]
    assert (folder.done_dir / "a.json").read_bytes() == wsjf_bytes(2, pn="REWRITTEN")


async def test_a_locked_database_is_retried_and_the_file_waits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pywats.pipeline")
    db = tmp_path / "state" / "queue.db"
    folder = make_folder(tmp_path)
    async with await Store.open(db, busy_timeout_ms=50) as store:
        other = apsw.Connection(str(db))
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        try:
            with trio.fail_after(20):
                async with running(store, folder, store_retry_s=(0.1, 0.2)) as (pipeline, files):
                    (folder.watch / "a.json").write_bytes(with_id(1))
                    await until(
                        lambda: caplog.text.count("cannot queue the reports of") >= 2,
                        "failed attempts",
                    )
                    assert names(folder.watch) == ["a.json"]
                    assert names(folder.error_dir) == []
                    other.execute("ROLLBACK")
                    await files.wait(1, "the file")
                    assert counts(pipeline) == (1, 1, 0, 0)
        finally:
            other.close()
        assert len(await queued(store)) == 1
    assert names(folder.done_dir) == ["a.json"]
    # One ERROR when the trouble started, the tries after it as detail, one line at the end.
    tries = [r for r in caplog.records if "cannot queue the reports of" in r.getMessage()]
    assert [r.levelno for r in tries][:2] == [logging.ERROR, logging.DEBUG]
    assert sum(r.levelno == logging.ERROR for r in tries) == 1
    assert any("worked after" in r.getMessage() for r in caplog.records)


# -- plugins, configuration, logs ---------------------------------------------------------


@pytest.fixture
def acme_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """contrib/example-converter as pip would install it: package + dist-info entry points."""
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE / "pywats_acme", site / "pywats_acme")
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    dist = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    group = "pywats.converters"
    lines = [f"{n} = {v}" for n, v in project["entry-points"][group].items()]
    (dist / "entry_points.txt").write_text(f"[{group}]\n" + "\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(site))
    for module in [m for m in sys.modules if m.startswith("pywats_acme")]:
        monkeypatch.delitem(sys.modules, module)


async def test_a_plugin_found_by_entry_point_works_through_the_pipeline(
    tmp_path: Path, store: Store, acme_installed: None
) -> None:
    loaded = load_converter("acme", {"processCode": 20})
    folder = make_folder(tmp_path, converter=loaded.converter, arguments=loaded.arguments)
    assert folder.patterns == ("*.acme",)
    with trio.fail_after(20):
        async with running(store, folder) as (pipeline, files):
            (folder.watch / "ignored.json").write_bytes(with_id(1))
            (folder.watch / "sample.acme").write_bytes((EXAMPLE / "sample.acme").read_bytes())
            (folder.watch / "bad.acme").write_text("SN=1\nPN=P\nREV=A\nMEAS VCC x 1 2\n")
            await files.wait(2, "both acme files")
            assert counts(pipeline) == (1, 1, 1, 0)
    [row] = await queued(store)
    assert row.converter == "acme"
    assert row.body is not None
    report = wsjf.loads(row.body)
    assert (report.pn, report.sn, report.process_code) == ("PCBA-100", "SN-0001", 20)
    assert [s.name for s in report.steps()[1:]] == ["VCC", "IDLE_CURRENT", "R12"]
    fields = sidecar(folder.error_dir / "bad.acme.error.txt")
    assert fields["converter"].split()[0] == "acme"
    assert "line 4: 'x' is not a number" in fields["reason"]
    assert names(folder.watch) == ["ignored.json"]


def test_folder_config_defaults_and_checks(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    assert folder.patterns == ("*.json",)
    assert folder.post_action is PostAction.MOVE
    assert folder.max_file_bytes == defaults.MAX_FILE_BYTES == 50 * 1024 * 1024
    assert (folder.settle_s, folder.rescan_s, folder.recursive) == (0.2, 0.5, False)
    inside = tmp_path / "line1" / "in" / "done"
    # Non-recursive: a subfolder of the watch folder is not watched, so it may hold them.
    assert make_folder(tmp_path, done_dir=inside).done_dir == inside
    with pytest.raises(ValueError, match="watches recursively"):
        make_folder(tmp_path, recursive=True, done_dir=inside)
    with pytest.raises(ValueError, match=r"error_dir .* watches recursively"):
        make_folder(tmp_path, recursive=True, error_dir=inside / "x")
    # A hidden folder is never descended into.
    make_folder(tmp_path, recursive=True, done_dir=tmp_path / "line1" / "in" / ".done" / "x")
    with pytest.raises(ValueError, match="is the watch folder"):
        make_folder(tmp_path, done_dir=tmp_path / "line1" / "in")
    with pytest.raises(ValueError, match="the same folder"):
        make_folder(tmp_path, error_dir=tmp_path / "line1" / "done")
    # delete and keep use no done folder: where it would be does not matter.
    make_folder(tmp_path, post_action="delete", done_dir=tmp_path / "line1" / "in")
    with pytest.raises(ValueError, match="post_action must be one of move, delete, archive"):
        make_folder(tmp_path, post_action="shred")
    with pytest.raises(TypeError, match=r"loaded\.converter"):
        make_folder(tmp_path, converter=load_converter("wsjf"))
    with pytest.raises(ValueError, match="patterns"):
        make_folder(tmp_path, patterns=())
    # Value rules are pywats.checks' (the config layer's), naming the field.
    defaulted = FolderConfig(
        name="x",
        converter=WsjfConverter(),
        watch=tmp_path,
        done_dir=tmp_path / "d",
        error_dir=tmp_path / "e",
    )
    assert (defaulted.settle_s, defaulted.rescan_s) == (defaults.SETTLE_S, defaults.RESCAN_S)
    for field, value, rule in [
        ("settle_s", -1.0, "0 or more"),
        ("settle_s", float("nan"), "0 or more"),
        ("rescan_s", 0, "greater than 0"),
        ("max_file_bytes", 0, "greater than 0"),
    ]:
        with pytest.raises(ConfigError, match=f"^{field}: must be a number.*{rule}") as info:
            make_folder(tmp_path, **{field: value})
        assert info.value.key == field


async def test_folder_sets_that_would_take_files_twice_are_refused(
    tmp_path: Path, store: Store
) -> None:
    a = make_folder(tmp_path, "a")
    with pytest.raises(ValueError, match="two watch folders are named 'a'"):
        Pipeline(store, [a, make_folder(tmp_path / "x", "a")], station=STATION)
    # One watcher serves a folder, so its entries must agree on how it is watched.
    b = make_folder(tmp_path, "b", watch=a.watch, patterns="*.xml", settle_s=5)
    with pytest.raises(ValueError, match=r"'a' and 'b' watch the same folder .* settle_s"):
        Pipeline(store, [a, b], station=STATION)
    with pytest.raises(ValueError, match="settle_s"):
        Pipeline.check_folders([a, b])  # the same check, for `pywats config check`
    deep = make_folder(tmp_path, "deep", recursive=True)
    inner = make_folder(tmp_path, "b", watch=deep.watch / "x")
    with pytest.raises(ValueError, match="already watches recursively"):
        Pipeline(store, [deep, inner], station=STATION)
    with pytest.raises(ValueError, match=r"done_dir .* is the watch folder of 'a'"):
        Pipeline(store, [a, make_folder(tmp_path, "b", done_dir=a.watch)], station=STATION)
    # Nested but not overlapping: a non-recursive parent ignores the child's folder.
    Pipeline(store, [a, make_folder(tmp_path, "b", watch=a.watch / "sub")], station=STATION)


async def test_entries_sharing_a_folder_take_the_files_their_patterns_match(
    tmp_path: Path, store: Store
) -> None:
    # Like the default configuration: one drop folder, a converter per file type, and
    # here a catch-all last, which gets only what no entry before it takes.
    inbox = tmp_path / "inbox"
    json_entry = make_folder(tmp_path, "wsjf", watch=inbox)
    xml_entry = make_folder(tmp_path, "wsxf", watch=inbox, converter=WsxfConverter())
    rest = make_folder(tmp_path, "rest", watch=inbox, converter=Empty(), patterns="*")
    xml = (ROOT / "tests" / "data" / "uut-wsxf-export.xml").read_bytes()
    with trio.fail_after(20):
        async with running(store, json_entry, xml_entry, rest) as (pipeline, files):
            (inbox / "a.json").write_bytes(with_id(1))
            (inbox / "b.XML").write_bytes(xml)
            (inbox / "c.log").write_bytes(b"whatever")
            outcomes = await files.wait(3, "all three files")
            assert sorted((o.folder, Path(o.source).name) for o in outcomes) == [
                ("rest", "c.log"),
                ("wsjf", "a.json"),
                ("wsxf", "b.XML"),
            ]
            assert counts(pipeline, "wsjf") == (1, 1, 0, 0)
            assert counts(pipeline, "wsxf") == (1, 1, 0, 0)
            assert counts(pipeline, "rest") == (0, 0, 1, 0)
            stats = pipeline.statistics().folders
            assert stats["wsjf"].watcher == stats["wsxf"].watcher  # one watcher
            assert stats["wsjf"].watcher.files_sent == 3
    assert sorted(r.converter for r in await queued(store)) == ["wsjf", "wsxf"]
    assert names(json_entry.done_dir) == ["a.json"]
    assert names(xml_entry.done_dir) == ["b.XML"]
    assert names(rest.error_dir) == ["c.log", "c.log.error.txt"]
    assert names(inbox) == []


async def test_a_folder_that_cannot_be_used_stops_start_up(tmp_path: Path, store: Store) -> None:
    (tmp_path / "file").write_bytes(b"")
    folder = make_folder(tmp_path, error_dir=tmp_path / "file" / "error")
    with trio.fail_after(10), pytest.raises(PywatsError, match=re.escape(str(folder.error_dir))):
        await Pipeline(store, [folder], station=STATION).run()
    # A watch folder that cannot be made comes out the same way, unwrapped.
    folder = make_folder(tmp_path, watch=tmp_path / "file" / "in")
    with trio.fail_after(10), pytest.raises(PywatsError, match=re.escape(str(folder.watch))):
        await Pipeline(store, [folder], station=STATION).run()


async def test_each_event_is_one_log_line_naming_the_file_and_outcome(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pywats.pipeline")
    folder = make_folder(tmp_path)
    with trio.fail_after(20):
        async with running(store, folder) as (_pipeline, files):
            (folder.watch / "good.json").write_bytes(with_id(1))
            (folder.watch / "bad.json").write_bytes(b"{")
            await files.wait(2, "both files")
    messages = [r.getMessage() for r in caplog.records if r.name == "pywats.pipeline"]
    assert all("\n" not in m for m in messages)
    [good] = [m for m in messages if "good.json" in m]
    [bad] = [m for m in messages if "bad.json" in m]
    assert good.startswith("line1: converted ")
    assert f"moved to {folder.done_dir / 'good.json'}" in good
    assert "could not convert" in bad
    assert "not valid JSON" in bad
    assert f"moved to {folder.error_dir / 'bad.json'}" in bad
    record = next(r for r in caplog.records if "bad.json" in r.getMessage())
    assert record.levelno == logging.WARNING


def test_pipeline_checks_each_report_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline's convert step checks the WSJF rules once per report, not a second
    time after the converter did (issue 13: validation was most of the work twice)."""
    from pywats.converters.spea import SpeaConverter
    from pywats.pipeline import steps

    validate_module = sys.modules["pywats.report.validate"]
    checked: list[str] = []
    real_check = validate_module.check

    def counting(report: Report) -> list[Any]:
        checked.append(report.id)
        return real_check(report)

    monkeypatch.setattr(validate_module, "check", counting)
    path = Path(__file__).parent / "data" / "equipment" / "spea" / "testdata_SN9871234012.csv"
    made = steps.convert(SpeaConverter(), ConversionContext(), path, path.read_bytes())
    assert len(made) > 1
    assert sorted(checked) == sorted(r.id for r in made)


# -- the conversion memory budget ---------------------------------------------------------


class Hungry(Gated):
    """A gated converter whose files take 40 times their size to convert."""

    memory_factor = 40


async def test_a_file_waits_for_memory_while_another_holds_the_budget(
    tmp_path: Path, store: Store
) -> None:
    hungry = Hungry()
    folder = make_folder(tmp_path, converter=hungry)
    folder.watch.mkdir(parents=True)
    first, second = wsjf_bytes(1), wsjf_bytes(2)
    # Room for one of these files at a time, not two.
    budget = 40 * max(len(first), len(second)) * 3 // 2
    try:
        with trio.fail_after(20):
            async with running(store, folder, workers=2, memory_budget_bytes=budget) as (
                pipeline,
                files,
            ):
                (folder.watch / "a.json").write_bytes(first)
                await hungry.wait_entered(1)
                (folder.watch / "b.json").write_bytes(second)
                # A worker is free, but b waits for memory rather than running beside a.
                await until(
                    lambda: pipeline.statistics().files_waiting_for_memory == 1, "b waiting"
                )
                assert hungry.entered == ["a.json"]
                assert pipeline.statistics().memory_held == 40 * len(first)
                hungry.gate.set()
                await files.wait(2, "both converted")
                stats = pipeline.statistics()
    finally:
        hungry.gate.set()
    assert files.kinds() == {"a.json": "converted", "b.json": "converted"}
    assert hungry.entered == ["a.json", "b.json"]
    assert stats.memory_budget == budget
    assert (stats.memory_held, stats.files_waiting_for_memory) == (0, 0)
    assert stats.files_waited_for_memory == 1  # counted once, however long it waited


async def test_a_stop_ends_the_wait_for_memory_at_once(tmp_path: Path, store: Store) -> None:
    hungry = Hungry()
    folder = make_folder(tmp_path, converter=hungry)
    folder.watch.mkdir(parents=True)
    data = wsjf_bytes(1)
    pipeline = Pipeline(
        store, [folder], station=STATION, workers=2, memory_budget_bytes=40 * len(data) + 1
    )
    files = watch(pipeline.hub)
    try:
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                await nursery.start(pipeline.run)
                (folder.watch / "a.json").write_bytes(data)
                await hungry.wait_entered(1)
                (folder.watch / "b.json").write_bytes(wsjf_bytes(2))
                await until(
                    lambda: pipeline.statistics().files_waiting_for_memory == 1, "b waiting"
                )
                pipeline.begin_shutdown()
                # b's wait ends now, while a is still converting: it is left for next time.
                [left] = await files.wait(1, "b left", timeout=5)
                assert Path(left.source).name == "b.json"
                assert isinstance(left, FileProcessed)
                assert left.outcome == Outcome.LEFT
                hungry.gate.set()  # a finishes; then run returns
    finally:
        hungry.gate.set()
    files.drain()
    assert files.kinds() == {"b.json": "left", "a.json": "converted"}
    assert names(folder.watch) == ["b.json"]
    assert pipeline.statistics().memory_held == 0


async def test_a_file_that_needs_more_than_the_whole_budget_goes_to_the_error_folder(
    tmp_path: Path, store: Store
) -> None:
    folder = make_folder(tmp_path)
    folder.watch.mkdir(parents=True)
    small, big = wsjf_bytes(1), wsjf_bytes(2, miscInfos=[{"description": "x", "text": "y" * 900}])
    factor = 12  # the wsjf converter's (pywats.pipeline.budget.FACTORS)
    budget = factor * (len(small) + len(big)) // 2
    assert budget >= 10 * 1024  # sizes shown as whole KiB
    with trio.fail_after(20):
        async with running(store, folder, memory_budget_bytes=budget) as (pipeline, files):
            (folder.watch / "small.json").write_bytes(small)
            (folder.watch / "big.json").write_bytes(big)
            await files.wait(2, "both files")
    assert files.kinds() == {"small.json": "converted", "big.json": "rejected"}
    [rejected] = files.of("big.json")
    assert isinstance(rejected, FileRejected)
    need = factor * len(big)
    expected = (
        f"needs about {need / 1024:.0f} KiB to convert, more than the conversion memory "
        f"budget of {budget / 1024:.0f} KiB ([convert] memory_budget_mb); raise it if the "
        "station has the memory"
    )
    assert rejected.reason == expected
    assert names(folder.error_dir) == ["big.json", "big.json.error.txt"]
    assert expected in (folder.error_dir / "big.json.error.txt").read_text()
    assert [r.sn for r in await queued(store)] == ["SN00001"]
    assert pipeline.statistics().memory_held == 0
