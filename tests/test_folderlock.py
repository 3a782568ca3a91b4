"""The lock of a watch folder (:mod:`pywats.folderlock`), held by real processes.

The holder is a real subprocess (a lock held by this process would only show that a
second open file description conflicts); ``kill -9`` of it shows the kernel drops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pywats.folderlock import FolderLockedError, holder_pid, lock_folder, parse_proc_locks
from tests.integration.harness import folder_locked_elsewhere


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of ``tmp_path / 'in'`` until killed."""
    folder = tmp_path / "in"
    folder.mkdir()
    with folder_locked_elsewhere(folder) as proc:
        yield proc


def test_proc_locks_lines_are_matched_by_device_and_inode() -> None:
    dev = os.makedev(0xFD, 0x01)
    text = (
        "1: POSIX  ADVISORY  WRITE 11 fd:01:77 0 EOF\n"
        "2: FLOCK  ADVISORY  WRITE 22 fd:01:78 0 EOF\n"
        "2: -> FLOCK  ADVISORY  WRITE 33 fd:01:77 0 EOF\n"
        "3: FLOCK  ADVISORY  WRITE 44 fd:01:77 0 EOF\n"
        "garbage\n"
    )
    assert parse_proc_locks(text, dev, 77) == 44  # not the POSIX lock, not the waiter
    assert parse_proc_locks(text, dev, 78) == 22
    assert parse_proc_locks(text, dev, 79) is None
    assert parse_proc_locks(text, os.makedev(8, 1), 77) is None


def test_a_folder_locked_by_another_process_is_refused_with_its_pid(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    folder = tmp_path / "in"
    assert holder_pid(folder) == holder.pid
    with pytest.raises(FolderLockedError) as caught:
        lock_folder(folder)
    assert caught.value.pid == holder.pid
    message = str(caught.value)
    assert "\n" not in message
    assert f"watch folder {folder} is already taken by another pywats process" in message
    assert f"(pid {holder.pid}" in message
    # Another path to the same folder meets the same lock: it belongs to the folder.
    alias = tmp_path / "alias"
    alias.symlink_to(folder)
    with pytest.raises(FolderLockedError):
        lock_folder(alias)
    with pytest.raises(FolderLockedError):
        lock_folder(tmp_path / "in" / ".." / "in")


def test_kill_9_of_the_holder_frees_the_folder(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    folder = tmp_path / "in"
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    lock = lock_folder(folder)
    try:
        assert lock.locked
        assert holder_pid(folder) == os.getpid()
        assert os.listdir(folder) == []  # nothing was created in the folder
    finally:
        lock.release()
    lock.release()  # twice is fine
    assert holder_pid(folder) is None


def test_release_lets_the_next_one_lock(tmp_path: Path) -> None:
    first = lock_folder(tmp_path)
    with pytest.raises(FolderLockedError):
        lock_folder(tmp_path)
    first.release()
    lock_folder(tmp_path).release()


def test_a_missing_folder_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        lock_folder(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        lock_folder(tmp_path / "file")
