"""Disk full: the state directory (queue database) and the done folder each on a small
tmpfs of their own, filled up while files arrive, then freed. Nothing is lost, the
files left in the watch folder are filed without a restart, and the queue drains within
seconds of space coming back; ``STATUS=`` and the log say "disk full" while it lasts."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import Instance, ReceiverProcess, running, stop, wait_for

pytestmark = pytest.mark.slow

DRAIN_LIMIT_S = 10.0
"""The target is 5 s; the slack is for a slow CI machine."""


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Take every free byte of ``folder``'s file system with one hidden file."""
    filler = folder / ".filler"
    with filler.open("wb", buffering=0) as out:
        chunk = b"\0" * 65536
        try:
            while True:
                out.write(chunk)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            small = b"\0" * 512
            with contextlib.suppress(OSError):
                while True:
                    out.write(small)
    return filler


def statuses(inst: Instance) -> list[str]:
    return [f["STATUS"] for _, f in inst.notify.snapshot() if "STATUS" in f]


def test_disk_full_then_space_again(tmp_path: Path, receiver: ReceiverProcess) -> None:
    inst = Instance(tmp_path, "ict", server_url=receiver.url)
    with tmpfs(inst.state, "4m"), tmpfs(inst.done, "1m"), running(inst.serve()) as proc:
        inst.wait_ready()
        # The done folder fills first: the reports are queued (and uploaded), the files
        # cannot be moved and stay in the watch folder.
        done_filler = fill(inst.done)
        first = inst.drop(10)
        wait_for(lambda: set(first) <= receiver.ids(), timeout=30, what="the first 10 uploads")
        assert len(inst.files_left()) == 10
        # Then the queue's disk: the next files cannot even be queued.
        state_filler = fill(inst.state)
        second = inst.drop(10, start=10)
        wait_for(
            lambda: any("disk full" in s for s in statuses(inst)),
            timeout=15,
            what="STATUS= saying disk full",
        )
        time.sleep(2)  # let every worker meet the full disk
        assert len(inst.files_left()) == 20
        assert not set(second) & receiver.ids()

        freed = time.monotonic()
        state_filler.unlink()
        done_filler.unlink()
        everything = set(first) | set(second)
        wait_for(lambda: everything <= receiver.ids(), timeout=60, what="all 20 uploads")
        wait_for(lambda: not inst.files_left(), timeout=60, what="the watch folder to empty")
        drained = time.monotonic() - freed
        print(f"\nqueue drained and files filed {drained:.1f} s after space came back")
        wait_for(
            lambda: "disk full" not in statuses(inst)[-1],
            timeout=15,
            what="STATUS= without disk full",
        )
        assert stop(proc) == 0
        assert sorted(p.name for p in inst.done.iterdir()) == sorted(
            [*first.values(), *second.values()]
        )
    assert drained < DRAIN_LIMIT_S
    log = inst.log()
    # Told once per place when it starts and once when it ends, not once per attempt.
    assert log.count("disk full: queue database") == 1, log
    assert log.count(f"disk full: done folder {inst.done}") == 1, log
    assert log.count("disk space is back") == 2, log
    assert receiver.stats()["duplicates"] == 0
