"""Tests for :mod:`pywats.watcher` and :mod:`pywats.inotify`.

Rules: real folders under ``tmp_path``, real inotify, real writers (threads); no mocks.
Every test is bounded by ``trio.fail_after`` and stops its own watcher by cancelling the
nursery. Tests on the real clock keep rescans and settle times short; the rescan-only
(network share) tests run on a mock clock that jumps when every task is blocked, and
assert the virtual times at which files become ready.
"""

from __future__ import annotations

import collections
import errno
import logging
import os
import struct
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from pywats.errors import ConfigError, PywatsError
from pywats.inotify import Event, Inotify, InotifyError, Mask, parse_events
from pywats.watcher import WatchConfig, Watcher


async def start_watcher(
    nursery: trio.Nursery, config: WatchConfig, capacity: int = 16
) -> tuple[Watcher, trio.MemorySendChannel[Path], trio.MemoryReceiveChannel[Path]]:
    send, receive = trio.open_memory_channel[Path](capacity)
    watcher = Watcher(config, send)
    await nursery.start(watcher.run)
    return watcher, send, receive


async def assert_quiet(receive: trio.MemoryReceiveChannel[Path], seconds: float) -> None:
    """Nothing more arrives within ``seconds``."""
    with trio.move_on_after(seconds):
        path = await receive.receive()
        pytest.fail(f"unexpected ready path {path}")


async def wait_for_blocked_send(send: trio.MemorySendChannel[Path]) -> None:
    # The watcher may be inside a scan thread when everything looks blocked; look again.
    while True:
        await trio.testing.wait_all_tasks_blocked()
        if send.statistics().tasks_waiting_send == 1:
            return
        await trio.sleep(0.01)


def open_fds_to(target: str) -> int:
    """How many of this process's descriptors point at ``target`` (a path or anon inode)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                count += 1
        except OSError:
            continue  # the listing's own descriptor, or one closed meanwhile
    return count


def inotify_fds() -> int:
    return open_fds_to("anon_inode:inotify")


# -- ready files with inotify ---------------------------------------------------------


async def test_slow_writer_gives_one_path_after_close(tmp_path: Path) -> None:
    # Rescans run every 0.3 s while the writer writes; its 0.2 s gaps are shorter than
    # settle_s, so only the close makes the file ready.
    config = WatchConfig(tmp_path / "in", rescan_s=0.3, settle_s=1.0)
    chunks = [bytes([65 + i]) * 4096 for i in range(10)]
    last_write_done: list[float] = []

    def write() -> None:
        with open(config.folder / "result.json", "wb") as f:
            for chunk in chunks:
                f.write(chunk)
                f.flush()
                time.sleep(0.2)
            last_write_done.append(time.monotonic())

    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            watcher, _, receive = await start_watcher(nursery, config)
            nursery.start_soon(trio.to_thread.run_sync, write)
            path = await receive.receive()
            assert path == config.folder.absolute() / "result.json"
            # The writer (a thread of this process) has closed it: no descriptor is left.
            assert last_write_done
            assert open_fds_to(str(path)) == 0
            assert path.read_bytes() == b"".join(chunks)
            await assert_quiet(receive, 1.0)
            await watcher.release([path])
            await assert_quiet(receive, 1.0)
            assert watcher.statistics().files_sent == 1
            nursery.cancel_scope.cancel()


async def test_a_writer_in_sessions_gives_one_path_with_settle_after_close(
    tmp_path: Path,
) -> None:
    # Open, append, close, five times, 0.1 s apart: every close is an IN_CLOSE_WRITE. By
    # default the first close sends the file (the writer, held after its first session,
    # is not done when it arrives); settle_after_close waits until it has not changed for
    # settle_s, and sends the whole file once.
    chunks = [bytes([65 + i]) * 1024 for i in range(5)]

    def write(path: Path, sent: threading.Event | None) -> None:
        for n, chunk in enumerate(chunks):
            with open(path, "ab") as f:
                f.write(chunk)
            if n == 0 and sent is not None:
                sent.wait(5)  # by default, the watcher sends it now
            time.sleep(0.1)

    for after_close in (False, True):
        folder = tmp_path / f"in-{after_close}"
        config = WatchConfig(folder, rescan_s=30, settle_s=0.3, settle_after_close=after_close)
        sent = None if after_close else threading.Event()
        with trio.fail_after(15):
            async with trio.open_nursery() as nursery:
                watcher, _, receive = await start_watcher(nursery, config)
                nursery.start_soon(trio.to_thread.run_sync, write, folder / "result.json", sent)
                path = await receive.receive()
                if sent is not None:
                    # Sent after the first close, while the writer had four sessions to go.
                    assert path.read_bytes() == chunks[0]
                    sent.set()
                else:
                    assert path.read_bytes() == b"".join(chunks)  # the whole file, not a part
                    await watcher.release([path])
                    await assert_quiet(receive, 0.5)
                    assert watcher.statistics().files_sent == 1
                nursery.cancel_scope.cancel()


async def test_rename_into_place(tmp_path: Path) -> None:
    config = WatchConfig(tmp_path, patterns=("*.json",), rescan_s=0.2, settle_s=0.1)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            watcher, _, receive = await start_watcher(nursery, config)
            (tmp_path / "x.tmp").write_bytes(b'{"a": 1}')
            os.rename(tmp_path / "x.tmp", tmp_path / "x.json")
            (tmp_path / "lingering.tmp").write_bytes(b"never ready")
            assert await receive.receive() == tmp_path / "x.json"
            # Several rescans and settle periods: the .tmp never becomes ready.
            await assert_quiet(receive, 1.0)
            assert watcher.statistics().files_sent == 1
            nursery.cancel_scope.cancel()


async def test_10000_files_present_at_start_each_delivered_once(tmp_path: Path) -> None:
    names = {f"r{i:05d}.json" for i in range(10_000)}
    for name in names:
        (tmp_path / name).write_bytes(b"{}")
    config = WatchConfig(tmp_path, rescan_s=0.3, settle_s=0.1)
    seen: collections.Counter[str] = collections.Counter()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            watcher, send, receive = await start_watcher(nursery, config, capacity=16)
            for _ in range(len(names)):
                path = await receive.receive()
                assert send.statistics().current_buffer_used <= 16
                seen[path.name] += 1
                await watcher.release([path])  # kept in place, like post-action "keep"
            assert set(seen) == names
            assert max(seen.values()) == 1
            # Rescans later nothing is sent again: the released files are unchanged.
            await assert_quiet(receive, 1.5)
            stats = watcher.statistics()
            assert stats.rescans >= 2
            assert stats.files_sent == 10_000
            assert stats.in_flight == 0
            assert stats.remembered == 10_000
            assert stats.settling == 0
            nursery.cancel_scope.cancel()


async def test_overflowing_burst_loses_nothing(tmp_path: Path) -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    overflow_possible = limit <= 60_000
    burst = max(20_000, limit + 4_000) if overflow_possible else 20_000
    # No periodic rescan during the test: only the overflow can bring a rescan.
    config = WatchConfig(tmp_path, rescan_s=300, settle_s=0.2)
    with trio.fail_after(45):
        async with trio.open_nursery() as nursery:
            watcher, send, receive = await start_watcher(nursery, config, capacity=16)
            # Fill the channel (16) and block the watcher in send with a 17th file.
            for i in range(17):
                (tmp_path / f"a{i:02d}.json").write_bytes(b"{}")
            await wait_for_blocked_send(send)

            def write_burst() -> None:
                for i in range(burst):
                    (tmp_path / f"b{i:06d}.json").write_bytes(b"{}")

            # The consumer is blocked; the kernel queue takes the burst's events.
            await trio.to_thread.run_sync(write_burst)
            seen: collections.Counter[str] = collections.Counter()
            for _ in range(17 + burst):
                path = await receive.receive()
                seen[path.name] += 1
                path.unlink()  # like post-action "move"/"delete"
                await watcher.release([path])
            assert len(seen) == 17 + burst
            assert max(seen.values()) == 1
            await assert_quiet(receive, 0.5)
            stats = watcher.statistics()
            assert stats.files_sent == 17 + burst
            # Every file is gone, and so is the bookkeeping about it.
            assert (stats.in_flight, stats.settling, stats.remembered) == (0, 0, 0)
            nursery.cancel_scope.cancel()
    if not overflow_possible:
        pytest.skip(f"fs.inotify.max_queued_events = {limit}: too large to overflow here")
    assert stats.overflows >= 1
    assert stats.rescans >= 1


async def test_temporary_names_and_patterns(tmp_path: Path) -> None:
    for name in ("pre.json", "pre.csv", ".hidden.json", "~lock.json"):
        (tmp_path / name).write_bytes(b"{}")
    config = WatchConfig(tmp_path, patterns=("*.json", "*.xml"), rescan_s=0.2, settle_s=0.1)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            _, _, receive = await start_watcher(nursery, config)
            for name in ("a.json", "B.XML", "c.csv", ".d.json", "e.json.tmp", "E.TMP", "~f.xml"):
                (tmp_path / name).write_bytes(b"{}")
            got: set[str] = set()
            with trio.move_on_after(1.0):
                while True:
                    got.add((await receive.receive()).name)
            assert got == {"pre.json", "a.json", "B.XML"}
            nursery.cancel_scope.cancel()


async def test_recursive_watches_subfolders_created_later(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "o.json").write_bytes(b"{}")
    config = WatchConfig(tmp_path, recursive=True, rescan_s=5, settle_s=0.2)
    root = tmp_path
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            watcher, _, receive = await start_watcher(nursery, config)
            assert await receive.receive() == root / "old" / "o.json"
            (root / "new" / "deeper").mkdir(parents=True)
            (root / "new" / "deeper" / "n.json").write_bytes(b"{}")
            assert await receive.receive() == root / "new" / "deeper" / "n.json"
            # Now watched: a file closed there is ready at once.
            (root / "new" / "deeper" / "m.json").write_bytes(b"{}")
            assert await receive.receive() == root / "new" / "deeper" / "m.json"
            (root / ".hidden").mkdir()
            (root / ".hidden" / "h.json").write_bytes(b"{}")
            await assert_quiet(receive, 0.6)
            assert watcher.statistics().watches == 4  # root, old, new, new/deeper
            nursery.cancel_scope.cancel()


async def test_not_recursive_ignores_subfolders(tmp_path: Path) -> None:
    config = WatchConfig(tmp_path, rescan_s=0.2, settle_s=0.1)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            watcher, _, receive = await start_watcher(nursery, config)
            (tmp_path / "sub").mkdir()
            (tmp_path / "sub" / "x.json").write_bytes(b"{}")
            await assert_quiet(receive, 0.8)
            assert watcher.statistics().watches == 1
            nursery.cancel_scope.cancel()


async def test_release_unchanged_not_resent_changed_resent(tmp_path: Path) -> None:
    config = WatchConfig(tmp_path, rescan_s=0.2, settle_s=0.1)
    target = tmp_path / "a.json"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            watcher, _, receive = await start_watcher(nursery, config)
            target.write_bytes(b"{}")
            assert await receive.receive() == target
            await assert_quiet(receive, 0.5)  # in flight: rescans leave it alone
            assert watcher.statistics().in_flight == 1
            await watcher.release([target])
            await assert_quiet(receive, 0.6)  # released and unchanged: not again
            assert watcher.statistics().remembered == 1
            target.write_bytes(b'{"new": "content"}')
            assert await receive.receive() == target
            assert target.read_bytes() == b'{"new": "content"}'
            target.unlink()
            await watcher.release([target])
            stats = watcher.statistics()
            assert (stats.in_flight, stats.remembered, stats.files_sent) == (0, 0, 2)
            nursery.cancel_scope.cancel()


async def test_rewritten_while_in_flight_is_resent_on_release(tmp_path: Path) -> None:
    # No rescan or settle period can help within the deadline: only the close event
    # seen while the file was in flight makes it ready again at release.
    config = WatchConfig(tmp_path, rescan_s=300, settle_s=60)
    target = tmp_path / "a.json"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            watcher, _, receive = await start_watcher(nursery, config)
            target.write_bytes(b"{}")
            assert await receive.receive() == target
            target.write_bytes(b'{"second": "version"}')
            await assert_quiet(receive, 0.3)
            await watcher.release([target])
            with trio.fail_after(1):
                assert await receive.receive() == target
            nursery.cancel_scope.cancel()


async def test_a_file_released_as_gone_is_not_looked_at_unless_its_name_came_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pipeline moved the file itself: no stat (no thread hand-off) is needed. But a
    # new file by that name, closed while the old one was in flight, is still taken.
    config = WatchConfig(tmp_path, rescan_s=300, settle_s=60)
    moved, renamed = tmp_path / "a.json", tmp_path / "b.json"
    looked: list[str] = []
    real_lstat = os.lstat

    def recording_lstat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        looked.append(os.fspath(path))
        return real_lstat(path, *args, **kwargs)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            watcher, _, receive = await start_watcher(nursery, config)
            moved.write_bytes(b"{}")
            assert await receive.receive() == moved
            renamed.write_bytes(b"{}")
            assert await receive.receive() == renamed
            moved.rename(tmp_path.parent / f"{tmp_path.name}-done.json")
            renamed.unlink()
            monkeypatch.setattr(os, "lstat", recording_lstat)
            await watcher.release([moved], gone={moved})
            assert str(moved) not in looked
            renamed.write_bytes(b'{"a": "new file"}')  # the name comes back in flight
            await assert_quiet(receive, 0.3)
            await watcher.release([renamed], gone={renamed})
            assert str(renamed) in looked
            with trio.fail_after(1):
                assert await receive.receive() == renamed
            stats = watcher.statistics()
            assert (stats.in_flight, stats.remembered) == (1, 0)
            nursery.cancel_scope.cancel()


async def test_full_channel_makes_the_watcher_wait(tmp_path: Path) -> None:
    names = ["a.json", "b.json", "c.json"]
    for name in names:
        (tmp_path / name).write_bytes(b"{}")
    config = WatchConfig(tmp_path, rescan_s=0.1, settle_s=0.05)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            watcher, send, receive = await start_watcher(nursery, config, capacity=1)
            await wait_for_blocked_send(send)
            await trio.sleep(0.5)  # rescan periods pass; the watcher still waits
            assert send.statistics().current_buffer_used == 1
            assert send.statistics().tasks_waiting_send == 1
            assert all((tmp_path / name).exists() for name in names)
            stats = watcher.statistics()
            # One buffered, one waiting to be sent: both count as sent and in flight.
            assert (stats.files_sent, stats.in_flight) == (2, 2)
            got = []
            for _ in names:
                path = await receive.receive()
                got.append(path.name)
                await watcher.release([path])
            assert sorted(got) == names
            await assert_quiet(receive, 0.3)
            nursery.cancel_scope.cancel()


# -- stats off the event loop, restarts, refused names ----------------------------------


async def test_no_stat_runs_on_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stat on a hung network mount would stall the event loop (and trip the systemd
    # watchdog): every per-file stat (events, release) must run in a worker thread.
    calls: list[tuple[str, bool]] = []
    real_lstat = os.lstat

    def recording_lstat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        on_loop = threading.current_thread() is threading.main_thread()
        calls.append((os.fspath(path), on_loop))
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", recording_lstat)
    # No rescan or settling can send it within the test: only events and release can.
    config = WatchConfig(tmp_path, rescan_s=300, settle_s=60)
    target = tmp_path / "a.json"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            watcher, _, receive = await start_watcher(nursery, config)
            target.write_bytes(b"{}")
            assert await receive.receive() == target
            # Rewritten while in flight: release sees the change (and the close seen
            # meanwhile), so the new content is sent again at once.
            target.write_bytes(b'{"v": 2}')
            await watcher.release([target])
            assert await receive.receive() == target
            await watcher.release([target])
            stats = watcher.statistics()
            assert (stats.in_flight, stats.remembered) == (0, 1)
            nursery.cancel_scope.cancel()
    ours = [(path, on_loop) for path, on_loop in calls if path.startswith(str(tmp_path))]
    assert sum(path == str(target) for path, _ in ours) >= 4  # two events, two releases
    assert [path for path, on_loop in ours if on_loop] == []


async def start_run(nursery: trio.Nursery, watcher: Watcher) -> tuple[trio.CancelScope, trio.Event]:
    """Start one run of ``watcher`` in a cancel scope of its own; the event is set when
    the run has ended."""
    scope, ended = trio.CancelScope(), trio.Event()

    async def run(*, task_status: trio.TaskStatus[None]) -> None:
        try:
            with scope:
                await watcher.run(task_status=task_status)
        finally:
            ended.set()

    await nursery.start(run)
    return scope, ended


async def test_a_watcher_run_again_keeps_its_paths_in_flight_and_settles_newcomers(
    tmp_path: Path, autojump: trio.testing.MockClock
) -> None:
    (tmp_path / "a.json").write_bytes(b"{}")
    config = WatchConfig(tmp_path, rescan_s=100, settle_s=3)
    send, receive = trio.open_memory_channel[Path](16)
    watcher = Watcher(config, send)
    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            scope, ended = await start_run(nursery, watcher)
            a = await receive.receive()  # present at the first start: taken as it is
            assert a == tmp_path / "a.json"
            scope.cancel()
            await ended.wait()
            # Written while nobody watched: its writer may not be done, so it settles.
            (tmp_path / "b.json").write_bytes(b"{}")
            t0 = trio.current_time()
            scope, ended = await start_run(nursery, watcher)
            assert await receive.receive() == tmp_path / "b.json"
            assert trio.current_time() - t0 == pytest.approx(3)
            # a.json was in flight across the restart: not sent a second time.
            await watcher.release([a])
            await assert_quiet(receive, 250)  # rescans pass
            stats = watcher.statistics()
            assert (stats.files_sent, stats.in_flight, stats.remembered) == (2, 1, 1)
            nursery.cancel_scope.cancel()


async def test_names_refused_by_accepts_are_left_alone(
    tmp_path: Path, autojump: trio.testing.MockClock
) -> None:
    accepted = {"a.json"}
    config = WatchConfig(tmp_path, rescan_s=5, settle_s=1)
    send, receive = trio.open_memory_channel[Path](16)
    watcher = Watcher(config, send, accepts=lambda name: name in accepted)
    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            await nursery.start(watcher.run)
            (tmp_path / "a.json").write_bytes(b"{}")
            (tmp_path / "b.json").write_bytes(b"{}")
            a = await receive.receive()
            assert a == tmp_path / "a.json"
            await assert_quiet(receive, 12)  # neither its event nor rescans send b
            # The answer may change while the watcher runs: the next rescan finds b.
            accepted.add("b.json")
            assert await receive.receive() == tmp_path / "b.json"
            # Released for retaking (not handled): not remembered, sent again once it
            # has settled.
            t0 = trio.current_time()
            await watcher.release([a], retake=True)
            assert watcher.statistics().remembered == 0
            assert await receive.receive() == a
            assert trio.current_time() - t0 == pytest.approx(1)
            nursery.cancel_scope.cancel()


# -- rescans only (network shares) ------------------------------------------------------


async def test_rescan_only_files_ready_after_settle(
    tmp_path: Path, autojump: trio.testing.MockClock
) -> None:
    for name in ("a.json", "b.json", "c.tmp"):
        (tmp_path / name).write_bytes(b"{}")
    config = WatchConfig(tmp_path, use_inotify=False, rescan_s=10, settle_s=3)
    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            t0 = trio.current_time()
            watcher, _, receive = await start_watcher(nursery, config)
            first = [await receive.receive() for _ in range(2)]
            assert trio.current_time() - t0 == pytest.approx(3)
            assert sorted(p.name for p in first) == ["a.json", "b.json"]
            for path in first:
                await watcher.release([path])
            # New content in a, and a new file d: the rescan at 10 sees them, and they
            # are ready when that sighting has held for settle_s.
            (tmp_path / "a.json").write_bytes(b'{"v": 2}')
            (tmp_path / "d.json").write_bytes(b"{}")
            second = [await receive.receive() for _ in range(2)]
            assert trio.current_time() - t0 == pytest.approx(13)
            assert sorted(p.name for p in second) == ["a.json", "d.json"]
            for path in second:
                await watcher.release([path])
            await assert_quiet(receive, 40)
            stats = watcher.statistics()
            assert (stats.files_sent, stats.watches, stats.overflows) == (4, 0, 0)
            assert stats.rescans >= 5
            nursery.cancel_scope.cancel()


async def test_rescan_only_waits_for_a_busy_writer(
    tmp_path: Path, autojump: trio.testing.MockClock
) -> None:
    config = WatchConfig(tmp_path, use_inotify=False, rescan_s=1, settle_s=3)
    target = tmp_path / "slow.json"
    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            t0 = trio.current_time()
            _, _, receive = await start_watcher(nursery, config)
            # Appends every 2 s (shorter than settle_s) for 8 s, file open throughout.
            with open(target, "wb") as f:
                for i in range(5):
                    f.write(b"x" * (i + 1))
                    f.flush()
                    if i < 4:
                        await trio.sleep(2)
            done = trio.current_time()
            assert await receive.receive() == target
            assert trio.current_time() - done >= 3
            assert trio.current_time() - t0 < 8 + 3 + 1 + 0.001  # settle + one rescan
            assert target.stat().st_size == 15
            nursery.cancel_scope.cancel()


# -- start-up, errors and shutdown ------------------------------------------------------


@pytest.mark.parametrize("use_inotify", [True, False])
async def test_missing_folder_is_created(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, use_inotify: bool
) -> None:
    folder = tmp_path / "a" / "b"
    config = WatchConfig(folder, use_inotify=use_inotify, settle_s=0)
    caplog.set_level(logging.INFO, logger="pywats.watcher")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await start_watcher(nursery, config)
            assert folder.is_dir()
            assert f"created watch folder {folder}" in caplog.text
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("use_inotify", [True, False])
@pytest.mark.parametrize("where", ["under_a_file", "is_a_file"])
async def test_unusable_folder_is_a_clear_error(
    tmp_path: Path, use_inotify: bool, where: str
) -> None:
    (tmp_path / "file").write_bytes(b"")
    folder = tmp_path / "file" / "in" if where == "under_a_file" else tmp_path / "file"
    send, _ = trio.open_memory_channel[Path](1)
    watcher = Watcher(WatchConfig(folder, use_inotify=use_inotify), send)
    with trio.fail_after(10), pytest.raises(PywatsError, match=f"watch folder {folder}"):
        await watcher.run()


async def test_cancellation_closes_the_inotify_instance(tmp_path: Path) -> None:
    before = inotify_fds()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await start_watcher(nursery, WatchConfig(tmp_path))
            assert inotify_fds() == before + 1
            nursery.cancel_scope.cancel()
    assert inotify_fds() == before


async def test_closed_receiver_stops_the_watcher(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b"{}")
    with trio.fail_after(10):
        send, receive = trio.open_memory_channel[Path](0)
        receive.close()
        watcher = Watcher(WatchConfig(tmp_path), send)
        async with trio.open_nursery() as nursery:
            await nursery.start(watcher.run)
        # run() returned by itself: no file is left in flight.
        assert watcher.statistics().in_flight == 0


def test_config_validation(tmp_path: Path) -> None:
    assert WatchConfig(str(tmp_path), patterns="*.xml").patterns == ("*.xml",)
    with pytest.raises(ValueError, match="at least one glob"):
        WatchConfig(tmp_path, patterns=())
    with pytest.raises(ValueError, match="without '/'"):
        WatchConfig(tmp_path, patterns=("sub/*.xml",))
    with pytest.raises(ConfigError, match="rescan_s: must be a number greater than 0"):
        WatchConfig(tmp_path, rescan_s=0)
    with pytest.raises(ConfigError, match="settle_s"):
        WatchConfig(tmp_path, settle_s=float("nan"))
    config = WatchConfig(tmp_path, patterns=("*.xml",))
    assert config.wants("A.XML")
    assert not config.wants("a.json")
    assert not config.wants(".a.xml")
    assert not config.wants("~a.xml")
    assert not config.wants("a.xml.TMP")


# -- the inotify binding ----------------------------------------------------------------


def pack_event(wd: int, mask: int, cookie: int, name: bytes) -> bytes:
    length = 0 if not name else (len(name) + 1 + 15) // 16 * 16
    return struct.pack("=iIII", wd, mask, cookie, length) + name.ljust(length, b"\0")


_names = st.binary(min_size=0, max_size=255).filter(lambda b: b"\0" not in b and b"/" not in b)


@given(
    st.lists(
        st.tuples(
            st.integers(-1, 2**31 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), _names
        ),
        max_size=20,
    )
)
def test_parse_events_round_trip(records: list[tuple[int, int, int, bytes]]) -> None:
    data = b"".join(pack_event(*r) for r in records)
    events = parse_events(data)
    assert [(e.wd, int(e.mask), e.cookie, os.fsencode(e.name)) for e in events] == records


def test_parse_events_overflow_and_truncation() -> None:
    (event,) = parse_events(pack_event(-1, Mask.Q_OVERFLOW, 0, b""))
    assert event.overflow
    assert event.name == ""
    with pytest.raises(ValueError, match="truncated"):
        parse_events(pack_event(1, Mask.CLOSE_WRITE, 0, b"name.json")[:-4])


async def test_inotify_events_from_a_real_folder(tmp_path: Path) -> None:
    with trio.fail_after(10), Inotify() as ino:
        mask = Mask.CLOSE_WRITE | Mask.MOVED_TO | Mask.CREATE | Mask.ONLYDIR
        wd = ino.add_watch(tmp_path, mask)
        (tmp_path / "a.tmp").write_bytes(b"x")
        os.rename(tmp_path / "a.tmp", tmp_path / "a.json")
        (tmp_path / "sub").mkdir()
        events: list[Event] = []
        while len(events) < 4:
            events += await ino.read()
        assert [(e.wd, e.mask, e.name) for e in events] == [
            (wd, Mask.CREATE, "a.tmp"),
            (wd, Mask.CLOSE_WRITE, "a.tmp"),
            (wd, Mask.MOVED_TO, "a.json"),
            (wd, Mask.CREATE | Mask.ISDIR, "sub"),
        ]
        assert events[2].cookie != 0
        ino.rm_watch(wd)
        (ignored,) = await ino.read()
        assert (ignored.wd, ignored.mask) == (wd, Mask.IGNORED)
        ino.rm_watch(wd)  # already gone: not an error


async def test_inotify_errors_name_the_path(tmp_path: Path) -> None:
    with Inotify() as ino:
        with pytest.raises(InotifyError, match="No such file") as missing:
            ino.add_watch(tmp_path / "missing", Mask.CLOSE_WRITE)
        assert missing.value.errno == errno.ENOENT
        assert missing.value.path == str(tmp_path / "missing")
        assert isinstance(missing.value.__cause__, FileNotFoundError)
        (tmp_path / "file").write_bytes(b"")
        with pytest.raises(InotifyError, match="not a directory"):
            ino.add_watch(tmp_path / "file", Mask.CLOSE_WRITE | Mask.ONLYDIR)


async def test_inotify_close_wakes_a_reader() -> None:
    ino = Inotify()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:

            async def reader() -> None:
                with pytest.raises(trio.ClosedResourceError):
                    await ino.read()

            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            ino.close()
    ino.close()  # idempotent
    assert ino.closed
    with pytest.raises(trio.ClosedResourceError):
        await ino.read()


async def test_a_folder_another_process_watches_is_refused_before_any_file_is_taken(
    tmp_path: Path,
) -> None:
    from pywats.folderlock import FolderLockedError
    from tests.integration.harness import folder_locked_elsewhere

    (tmp_path / "a.json").write_bytes(b"{}")
    with folder_locked_elsewhere(tmp_path) as proc:
        send, receive = trio.open_memory_channel[Path](16)
        watcher = Watcher(WatchConfig(tmp_path), send)
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                with pytest.raises(FolderLockedError) as caught:
                    await nursery.start(watcher.run)
        assert f"watch folder {tmp_path} is already taken" in str(caught.value)
        assert caught.value.pid == proc.pid
        assert watcher.statistics().files_sent == 0
        with pytest.raises(trio.WouldBlock):
            receive.receive_nowait()


async def test_a_watcher_holds_its_folder_while_it_runs_and_frees_it_after(
    tmp_path: Path,
) -> None:
    from pywats.folderlock import FolderLockedError, holder_pid, lock_folder

    send, _receive = trio.open_memory_channel[Path](16)
    watcher = Watcher(WatchConfig(tmp_path), send)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            scope, ended = await start_run(nursery, watcher)
            assert holder_pid(tmp_path) == os.getpid()
            with pytest.raises(FolderLockedError):
                lock_folder(tmp_path)
            scope.cancel()
            await ended.wait()
            assert holder_pid(tmp_path) is None
            # Run again (an entry switched back on): it takes the lock again.
            scope, ended = await start_run(nursery, watcher)
            assert holder_pid(tmp_path) == os.getpid()
            scope.cancel()
    assert holder_pid(tmp_path) is None


async def test_a_watch_folder_made_anew_is_locked_anew(tmp_path: Path) -> None:
    from pywats.folderlock import holder_pid

    folder = tmp_path / "in"
    send, _receive = trio.open_memory_channel[Path](16)
    watcher = Watcher(WatchConfig(folder, rescan_s=0.1), send)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(watcher.run)
            folder.rmdir()  # an operator tidying up; the next rescan makes it again
            while not folder.is_dir() or holder_pid(folder) != os.getpid():
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    assert holder_pid(folder) is None
