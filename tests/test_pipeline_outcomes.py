"""Every file ends in exactly one outcome, published as events a slow reader cannot hold up.

Rules as in ``tests/test_pipeline.py``: real folders, real inotify, a real Store, real
threads, no mocks; waits are for the pipeline's events, bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import apsw
import attrs
import pytest
import trio

from pywats.converters import ConversionContext, Source
from pywats.converters.wsjf import WsjfConverter
from pywats.events import (
    EventHub,
    FileOutcome,
    FileProcessed,
    FileRejected,
    Gap,
    ReportQueued,
)
from pywats.pipeline import Pipeline
from pywats.report import Report
from pywats.store import NewReport, SourceFile, Store
from tests.test_pipeline import (
    STATION,
    expected_body,
    make_folder,
    names,
    queued,
    running,
    until,
    watch,
    with_id,
    wsjf_bytes,
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "state" / "queue.db") as s:
        yield s


@attrs.define(eq=False)
class GateFirst:
    """The wsjf converter, except that ``gate.json`` waits for ``gate`` (a file in hand)."""

    name = "wsjf"
    version = "1"
    patterns = ("*.json",)

    gate: threading.Event = attrs.field(factory=threading.Event)
    entered: threading.Event = attrs.field(factory=threading.Event)

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        if source.path.name == "gate.json":
            self.entered.set()
            if not self.gate.wait(60):  # bounded: a broken test fails, it does not hang
                raise RuntimeError("gate never opened")
        return WsjfConverter().convert(source, context)


@pytest.fixture
def gate_first() -> Iterator[GateFirst]:
    converter = GateFirst()
    yield converter
    converter.gate.set()


async def test_every_file_of_a_mixed_batch_ends_in_exactly_one_outcome(
    tmp_path: Path, store: Store, gate_first: GateFirst
) -> None:
    folder = make_folder(tmp_path, converter=gate_first, max_file_bytes=4096)
    known = wsjf_bytes(50)  # queued before, from another file
    await store.enqueue(
        [
            NewReport(
                id="6f9619ff-8b86-4011-b42d-00c04fc964ff",
                body=b"{}",
                pn="P",
                sn="S",
                result="P",
                start="2026-01-01T00:00:00Z",
                converter="wsjf",
            )
        ],
        SourceFile(hashlib.sha256(known).hexdigest(), "/elsewhere/known.json", len(known), 0.0),
    )
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
    batch: dict[str, bytes] = {
        "good0.json": with_id(0),
        "good1.json": with_id(1),
        "copy.json": with_id(1),  # the same content as good1, in the same batch
        "known.json": known,
        "bad.json": b'{"id": ',
        "huge.json": b" " * 5000,
        "clash.json": with_id(99, sn="OTHER"),  # a report id queued from another file
        "gone.json": with_id(3),  # removed after it was sent, before it was read
    }
    expected = {
        "gate.json": "converted",
        "good0.json": "converted",
        "good1.json": "converted",
        "copy.json": "duplicate",
        "known.json": "duplicate",
        "bad.json": "rejected",
        "huge.json": "rejected",
        "clash.json": "rejected",
        "gone.json": "vanished",
    }
    with trio.fail_after(30):
        async with running(store, folder, workers=1, channel_size=16) as (pipeline, files):
            (folder.watch / "gate.json").write_bytes(with_id(7))
            await trio.to_thread.run_sync(gate_first.entered.wait, 20)
            # The one worker waits on gate.json: these are sent into the channel and
            # taken together afterwards, as one batch.
            for name, data in batch.items():
                (folder.watch / name).write_bytes(data)
            await until(lambda: pipeline.statistics().waiting == len(batch), "all of them sent")
            (folder.watch / "gone.json").unlink()
            gate_first.gate.set()
            await files.wait(len(expected), "every file")
            assert files.kinds() == expected
            stats = pipeline.statistics().folders["line1"]
            ended = (
                stats.files_converted,
                stats.duplicates_skipped,
                stats.files_failed,
                stats.files_left,
                stats.files_vanished,
            )
            assert ended == (3, 2, 3, 0, 1)
            assert sum(ended) == stats.watcher.files_sent == len(expected)
            assert stats.last_error is not None
            assert stats.last_error.startswith("line1: could not convert ")
    # Nothing more came after the pipeline stopped: exactly one outcome per file.
    files.drain()
    assert len(files.outcomes) == len(expected)
    by_name = {Path(o.source).name: o for o in files.outcomes}
    for name in ("bad.json", "huge.json", "clash.json"):
        rejected = by_name[name]
        assert isinstance(rejected, FileRejected)
        assert rejected.error_file == str(folder.error_dir / name)
        assert rejected.converter == "wsjf"
    assert isinstance(by_name["clash.json"], FileRejected)
    assert by_name["clash.json"].field == "id"
    # A ReportQueued for every report queued, naming it, before its file's outcome.
    reports = {r.id: r for r in await queued(store)}
    queued_events = [e for e in files.events if isinstance(e, ReportQueued)]
    assert len(queued_events) == 3
    for event in queued_events:
        source = Path(event.source).name
        outcome = by_name[source]
        assert isinstance(outcome, FileProcessed)
        assert outcome.outcome == FileOutcome.CONVERTED
        assert outcome.report_ids == (event.report_id,)
        assert event.seq < outcome.seq
        row = reports[event.report_id]
        assert (event.folder, event.converter) == ("line1", "wsjf")
        assert (event.pn, event.sn, event.result) == (row.pn, row.sn, row.result)
        assert event.source == row.source == str(folder.watch / source)
        assert row.body == expected_body(with_id(7) if source == "gate.json" else batch[source])
    duplicate = by_name["copy.json"]
    assert isinstance(duplicate, FileProcessed)
    assert duplicate.report_ids == by_name["good1.json"].report_ids
    assert names(folder.watch) == []
    assert names(folder.done_dir) == sorted(
        n for n, k in expected.items() if k in ("converted", "duplicate")
    )


async def test_a_slow_subscriber_neither_slows_nor_stops_the_pipeline(
    tmp_path: Path, store: Store
) -> None:
    folder = make_folder(tmp_path)
    count = 60
    with trio.fail_after(30):
        async with running(store, folder) as (pipeline, files):
            # Subscribed and never read, with room for one event.
            with pipeline.hub.subscribe(buffer=1) as slow:
                for n in range(count):
                    (folder.watch / f"r{n:02d}.json").write_bytes(with_id(n))
                await files.wait(count, "every file")
                assert {o.outcome for o in files.outcomes if isinstance(o, FileProcessed)} == {
                    "converted"
                }
                # Two events per file (the report, the file) went to the slow reader,
                # who kept only the latest and is told how many it missed.
                gap = slow.receive_nowait()
                assert isinstance(gap, Gap)
                assert gap.dropped == slow.dropped >= 2 * count - 1
                latest = slow.receive_nowait()
                assert latest.seq == pipeline.hub.last_seq
                with pytest.raises(trio.WouldBlock):
                    slow.receive_nowait()
    assert len(names(folder.done_dir)) == count
    assert (await store.stats()).pending == count
    assert pipeline.statistics().folders["line1"].last_error is None


async def test_the_store_failing_until_the_stop_leaves_the_file_in_place(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pywats.pipeline")
    db = tmp_path / "state" / "queue.db"
    folder = make_folder(tmp_path)
    async with await Store.open(db, busy_timeout_ms=50) as store:
        other = apsw.Connection(str(db))
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock throughout
        try:
            with trio.fail_after(20):
                async with running(store, folder, store_retry_s=(0.05, 0.1)) as (pipeline, files):
                    (folder.watch / "a.json").write_bytes(with_id(1))
                    await until(lambda: "cannot queue the reports of" in caplog.text, "a retry")
                    pipeline.begin_shutdown()
                    [outcome] = await files.wait(1, "the file given up")
        finally:
            other.close()
        assert (await store.stats()).total == 0
    assert isinstance(outcome, FileProcessed)
    assert outcome.outcome == FileOutcome.LEFT
    assert "not queued" in outcome.detail
    assert pipeline.statistics().folders["line1"].files_left == 1
    assert names(folder.watch) == ["a.json"]
    [record] = [r for r in caplog.records if "not queued" in r.getMessage()]
    assert record.levelno == logging.WARNING


async def test_no_file_is_stat_ed_on_the_event_loop(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reading, filing and releasing all look at the files; none of it may run on the
    # trio thread, where a hung network mount would stall the service.
    calls: list[tuple[str, bool]] = []
    real_lstat = os.lstat

    def recording_lstat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        calls.append((os.fspath(path), threading.current_thread() is threading.main_thread()))
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", recording_lstat)
    folder = make_folder(tmp_path, post_action="keep")
    with trio.fail_after(20):
        async with running(store, folder) as (_pipeline, files):
            (folder.watch / "a.json").write_bytes(with_id(1))
            (folder.watch / "bad.json").write_bytes(b"{")
            await files.wait(2, "both files")
    # Per file; checking the folders when the pipeline is built resolves their paths.
    ours = [(p, on_loop) for p, on_loop in calls if Path(p).parent == folder.watch]
    assert len(ours) >= 6  # per file: its event, its read, its filing, its release
    assert [p for p, on_loop in ours if on_loop] == []


async def test_outcomes_go_to_the_hub_given(tmp_path: Path, store: Store) -> None:
    hub = EventHub()
    files = watch(hub)
    folder = make_folder(tmp_path)
    pipeline = Pipeline(store, [folder], station=STATION, hub=hub)
    assert pipeline.hub is hub
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(pipeline.run)
            (folder.watch / "a.json").write_bytes(with_id(1))
            [outcome] = await files.wait(1, "the file")
            pipeline.begin_shutdown()
    assert outcome.folder == "line1"
    assert Pipeline(store, [folder], station=STATION).hub is not hub  # one of its own
