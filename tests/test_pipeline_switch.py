"""Folder entries switched off and on while the pipeline runs (per-folder cancel scopes).

Rules as in ``tests/test_pipeline.py``: real folders, real inotify, a real Store, real
threads; waits are for the pipeline's events, bounded by ``trio.fail_after``. Where a
test shows that something is *not* taken, it shows it by the order of inotify events
(a later file of another entry of the same watcher came through) or by the watcher
holding no watch at all, and then lets a rescan pass. Rescans and settle times run on a
mock clock that jumps once every task has waited a moment of real time with no thread
call in flight (``tests/clock.py``), so those periods cost no real time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from pywats.events import ComponentStatus, Event, FileOutcome, FileProcessed
from pywats.store import Store
from tests.test_pipeline import (
    Files,
    Gated,
    make_folder,
    names,
    queued,
    running,
    until,
    with_id,
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "state" / "queue.db") as s:
        yield s


@pytest.fixture
def gated() -> Iterator[Gated]:
    converter = Gated()
    yield converter
    converter.gate.set()  # let threads abandoned by a cancelled test finish


def status_of(name: str, state: str) -> Callable[[Event], bool]:
    """A matcher for the ComponentStatus of folder ``name`` going to ``state``."""

    def match(event: Event) -> bool:
        return (
            isinstance(event, ComponentStatus)
            and event.component == f"folder:{name}"
            and event.state == state
        )

    return match


async def wait_status(files: Files, name: str, state: str) -> ComponentStatus:
    event = await files.wait_for(status_of(name, state), f"folder {name} {state}")
    assert isinstance(event, ComponentStatus)
    return event


async def test_a_disabled_folder_is_not_watched_and_catches_up_when_enabled(
    tmp_path: Path, store: Store, autojump: trio.testing.MockClock
) -> None:
    line1, line2 = make_folder(tmp_path, "line1"), make_folder(tmp_path, "line2")
    with trio.fail_after(20):
        async with running(store, line1, line2) as (pipeline, files):
            assert pipeline.disable_folder("line1", reason="fixture change") is True
            status = await wait_status(files, "line1", "disabled")
            assert status.reason == "fixture change"
            assert pipeline.disable_folder("line1") is False  # no change, no event
            with pytest.raises(KeyError, match="no watch folder entry is called 'line9'"):
                pipeline.disable_folder("line9")
            with pytest.raises(KeyError):
                pipeline.enable_folder("line9")
            stats = pipeline.statistics().folders
            assert (stats["line1"].enabled, stats["line2"].enabled) == (False, True)
            await until(
                lambda: pipeline.statistics().folders["line1"].watcher.watches == 0,
                "the watch to go",
                timeout=2,  # virtual seconds: a failure costs 20 s, not 200
            )
            (line1.watch / "a.json").write_bytes(with_id(1))
            (line2.watch / "b.json").write_bytes(with_id(2))
            # The other folder goes on.
            [outcome] = await files.wait(1, "line2's file")
            assert (outcome.folder, Path(outcome.source).name) == ("line2", "b.json")
            await files.quiet(5)  # rescans pass: line1 is not looked at
            assert names(line1.watch) == ["a.json"]
            assert pipeline.statistics().folders["line1"].watcher.watches == 0
            # Switched on again, it takes what came meanwhile (once it has settled).
            assert pipeline.enable_folder("line1") is True
            await wait_status(files, "line1", "enabled")
            [_, outcome] = await files.wait(2, "line1's file")
            assert (outcome.folder, Path(outcome.source).name) == ("line1", "a.json")
            assert isinstance(outcome, FileProcessed)
            assert outcome.outcome == FileOutcome.CONVERTED
            assert pipeline.statistics().folders["line1"].enabled
            # And it is watched again: a new file is taken as it is closed.
            (line1.watch / "c.json").write_bytes(with_id(3))
            [*_, outcome] = await files.wait(3, "line1's new file")
            assert Path(outcome.source).name == "c.json"
    assert names(line1.done_dir) == ["a.json", "c.json"]
    assert len(await queued(store)) == 3


async def test_disabling_one_entry_of_a_shared_folder_leaves_the_others_going(
    tmp_path: Path, store: Store, autojump: trio.testing.MockClock
) -> None:
    # A catch-all after a specific entry: with the specific one off, its files must stay
    # where they are, not go to the catch-all, whose own files go on.
    inbox = tmp_path / "inbox"
    json_entry = make_folder(tmp_path, "json", watch=inbox)
    rest = make_folder(tmp_path, "rest", watch=inbox, patterns="*")
    with trio.fail_after(20):
        async with running(store, json_entry, rest) as (pipeline, files):
            pipeline.disable_folder("json")
            await wait_status(files, "json", "disabled")
            watcher = pipeline.statistics().folders["rest"].watcher
            await until(
                lambda: pipeline.statistics().folders["rest"].watcher.watches == 1,
                "the watcher to restart",
                timeout=2,  # virtual seconds: a failure costs 20 s, not 200
            )
            sent = watcher.files_sent
            (inbox / "a.json").write_bytes(with_id(1))
            (inbox / "b.dat").write_bytes(with_id(2))  # WSJF all the same
            [outcome] = await files.wait(1, "the catch-all's file")
            assert (outcome.folder, Path(outcome.source).name) == ("rest", "b.dat")
            # a.json was closed first: had it been taken, it would have been sent first.
            assert pipeline.statistics().folders["rest"].watcher.files_sent == sent + 1
            await files.quiet(5)  # rescans pass
            assert names(inbox) == ["a.json"]
            stats = pipeline.statistics().folders
            assert stats["json"].watcher == stats["rest"].watcher  # still one watcher
            assert (stats["json"].enabled, stats["rest"].enabled) == (False, True)
            pipeline.enable_folder("json")
            await wait_status(files, "json", "enabled")
            [_, outcome] = await files.wait(2, "the json entry's file")
            assert (outcome.folder, Path(outcome.source).name) == ("json", "a.json")
    assert names(inbox) == []
    assert names(json_entry.done_dir) == ["a.json"]
    assert names(rest.done_dir) == ["b.dat"]
    assert sorted(r.sn for r in await queued(store)) == ["SN00001", "SN00002"]


async def test_disabling_finishes_the_file_in_hand_and_leaves_the_waiting_ones(
    tmp_path: Path, store: Store, gated: Gated, autojump: trio.testing.MockClock
) -> None:
    folder = make_folder(tmp_path, converter=gated)
    with trio.fail_after(20):
        async with running(store, folder, workers=1, channel_size=4) as (pipeline, files):
            (folder.watch / "r0.json").write_bytes(with_id(0))
            await gated.wait_entered(1)
            for n in (1, 2):
                (folder.watch / f"r{n}.json").write_bytes(with_id(n))
            await until(lambda: pipeline.statistics().waiting == 2, "two waiting", timeout=2)
            pipeline.disable_folder("line1")
            gated.gate.set()
            outcomes = await files.wait(3, "the three files")
            assert files.kinds() == {"r0.json": "converted", "r1.json": "left", "r2.json": "left"}
            left = [o for o in outcomes if isinstance(o, FileProcessed) and o.outcome == "left"]
            assert all("disabled" in o.detail for o in left)
            stats = pipeline.statistics().folders["line1"]
            assert (stats.files_converted, stats.files_left, stats.in_hand) == (1, 2, 0)
            # Left untouched, and not remembered as handled: enabling takes them.
            assert names(folder.watch) == ["r1.json", "r2.json"]
            assert names(folder.error_dir) == []
            pipeline.enable_folder("line1")
            await files.wait(5, "the two left files, again")
    done = [o for o in files.outcomes if isinstance(o, FileProcessed) and o.outcome == "converted"]
    assert sorted(Path(o.source).name for o in done) == ["r0.json", "r1.json", "r2.json"]
    assert names(folder.watch) == []
    assert names(folder.done_dir) == ["r0.json", "r1.json", "r2.json"]
    assert len(await queued(store)) == 3
