"""Row 2 of the fault matrix: power loss. A real ``pywats serve`` whose state directory
(the queue database), watch, done and error folders are on the power-cut file system
(``powercut.py``: every write not fsynced is lost at a cut); its runtime directory (the
control socket) and the receiver stay off it. Each round: files dropped (durably: a
tester's file that was never synced was never written), serve started, killed at a
seeded random moment, the power cut, the file system mounted again. Every report the
service had acknowledged at a cut (its file moved to the done folder, which happens only
after the commit of its row returned) is still queued after it (``synchronous=FULL``);
every file's report reaches the server, a final run
drains everything, and every duplicate is explained (a cut may take back upload
bookkeeping, which is committed without its own fsync on purpose). 6 rounds by default; 40
with ``PYWATS_LONG=1``."""

from __future__ import annotations

import os
import random
import sqlite3
import time
from pathlib import Path

import pytest

from tests.integration.faults import oracle, powercut
from tests.integration.harness import (
    Instance,
    ReceiverProcess,
    report_bytes,
    running,
    stop,
    wait_for,
)

UNAVAILABLE = powercut.unavailable()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(UNAVAILABLE is not None, reason=UNAVAILABLE or ""),
]

FILES_PER_ROUND = 10
WORKERS = 5


class OnTheMount(Instance):
    """An :class:`Instance` whose state, watch, done and error folders are under
    ``mount`` (the power-cut file system); its config, notify socket and runtime
    directory (control socket) stay under ``root``."""

    def __init__(self, root: Path, mount: Path, name: str, *, server_url: str) -> None:
        super().__init__(root, name, server_url=server_url, workers=WORKERS)
        text = self.config.read_text()
        moved = {"watch": mount / "in", "done": mount / "done", "error": mount / "error"}
        for key, folder in moved.items():
            old = f'{key}{"_dir" if key != "watch" else ""} = "{getattr(self, key)}"'
            assert old in text, (old, text)
            text = text.replace(old, old.replace(str(getattr(self, key)), str(folder)))
            setattr(self, key, folder)
        self.config.write_text(text)
        self.state = mount / "state"

    def make_folders(self) -> None:
        for folder in (self.state, self.watch):
            folder.mkdir(parents=True, exist_ok=True)

    def drop_durably(self, count: int, *, start: int) -> dict[str, str]:
        """``count`` reports written, fsynced and renamed into the watch folder."""
        ids = {}
        for index in range(start, start + count):
            report_id, data = report_bytes(index)
            tmp = self.watch / f".r{index}.tmp"
            with tmp.open("wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            tmp.rename(self.watch / f"r{index:07d}.json")
            ids[report_id] = f"r{index:07d}.json"
        return ids


def committed(inst: Instance) -> dict[str, str]:
    """The queue as another process reads it now (read-only): id -> state."""
    if not inst.db().exists():
        return {}
    try:
        return {report_id: state for report_id, (state, _) in oracle.queued(inst).items()}
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # killed while creating the schema
            return {}
        raise


def done(queue: dict[str, str]) -> set[str]:
    return {report_id for report_id, state in queue.items() if state == "done"}


def power_cuts(tmp_path: Path, receiver: ReceiverProcess, rounds: int, seed: int) -> None:
    backing, mnt = tmp_path / "disk", tmp_path / "mnt"
    inst = OnTheMount(tmp_path, mnt, "ict", server_url=receiver.url)
    rng = random.Random(seed)
    ids: dict[str, str] = {}
    survivors = 0
    marks_lost = 0
    at_death: dict[str, str] = {}
    acknowledged: set[str] = set()

    def after_the_cut() -> None:
        nonlocal survivors, marks_lost
        after = committed(inst)
        gone = acknowledged - set(after)
        assert not gone, f"acknowledged before the power cut, gone after it: {sorted(gone)}"
        survivors += len(acknowledged)
        # The upload bookkeeping is committed without its own fsync (store.py
        # ``_relaxed``): a cut may take back "done" marks, and those reports go again.
        marks_lost += len(done(at_death) - done(after))

    for round_no in range(rounds):
        with powercut.mounted(backing, mnt) as mount:
            inst.make_folders()
            after_the_cut()
            ids.update(inst.drop_durably(FILES_PER_ROUND, start=round_no * FILES_PER_ROUND))
            with running(inst.serve()) as proc:
                # A random moment: starting, converting, uploading or idle.
                time.sleep(rng.uniform(0.05, 2.0))
                proc.kill()  # the power goes: the process first, then the disk
                proc.wait(timeout=10)
            # What the service had acknowledged when it died: a file is moved to the done
            # folder only after the commit of its row returned (fsynced). Not what a reader
            # sees in the queue: that may include a commit whose WAL frames were written
            # but not yet fsynced when the process died, which a power cut rightly undoes.
            acknowledged = {rid for rid, name in ids.items() if (inst.done / name).exists()}
            at_death = committed(inst)
            mount.cut()
    with powercut.mounted(backing, mnt):
        after_the_cut()
        with running(inst.serve()) as proc:
            inst.wait_ready()
            oracle.drained(inst, receiver, set(ids), timeout=60)
            wait_for(lambda: not inst.files_left(), timeout=30, what="the watch folder to empty")
            fresh = oracle.fresh_file_flows(inst, receiver, start=rounds * FILES_PER_ROUND)
            assert stop(proc) == 0
        verdict = oracle.check(inst, receiver, set(ids) | fresh)
        assert not inst.files_left()
        assert sorted(p.name for p in inst.done.iterdir()) == sorted(
            [*ids.values(), f"r{rounds * FILES_PER_ROUND:07d}.json"]
        )
    # Every duplicate is a "done" mark a cut took back, or an upload in flight at a kill
    # (at most the workers, as in test_kill_loop); the same id each time.
    assert verdict.duplicates <= marks_lost + rounds * WORKERS
    print(
        f"\n{rounds} power cuts, {len(ids)} reports: {survivors} acknowledged at a cut"
        f" (summed over the cuts), all queued after it; received {verdict.received}, lost 0,"
        f" duplicates {verdict.duplicates} ({marks_lost} done marks taken back by the cuts)"
    )


def test_power_cuts_lose_no_committed_report(tmp_path: Path, receiver: ReceiverProcess) -> None:
    power_cuts(tmp_path, receiver, rounds=6, seed=20261201)


@pytest.mark.long
def test_power_cuts_lose_no_committed_report_long(
    tmp_path: Path, receiver: ReceiverProcess
) -> None:
    power_cuts(tmp_path, receiver, rounds=40, seed=20261202)
