"""Tests for :mod:`pywats.instance`.

Rules: the other holder is a real process (``python -c``) that takes the lock, says
``locked`` on stdout and keeps it until its stdin closes (or it is killed); no mocks.
Every subprocess call has a timeout, and every started process is reaped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pywats.errors import InstanceLockedError, PywatsError
from pywats.instance import InstanceLock
from pywats.paths import lock_path

ROOT = Path(__file__).resolve().parents[1]

HOLDER = """
import sys
from pathlib import Path
from pywats.instance import InstanceLock
lock = InstanceLock(sys.argv[1], Path(sys.argv[2]) if len(sys.argv) > 2 else None)
lock.acquire()
print("locked", flush=True)
sys.stdin.read()
"""

# Takes the lock, then starts a child that outlives the lock's release.
PARENT = """
import subprocess, sys
from pathlib import Path
from pywats.instance import InstanceLock
with InstanceLock("ict", Path(sys.argv[1])):
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
print(child.pid, flush=True)
sys.stdin.read()
child.stdin.close()
child.wait()
"""


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


class Holder:
    """A process running ``script``; ``close()`` ends it and waits for it."""

    def __init__(self, script: str, *args: str, environ: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ or env(),
        )
        self.pid = self.process.pid

    def first_line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line:
            _, err = self.process.communicate(timeout=30)
            pytest.fail(f"holder died: {err}")
        return line

    def close(self) -> int:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        if holder.process.poll() is None:
            holder.kill()
        for stream in (holder.process.stdin, holder.process.stdout, holder.process.stderr):
            if stream is not None:
                stream.close()


def hold(holders: list[Holder], *args: str, environ: dict[str, str] | None = None) -> Holder:
    holder = Holder(HOLDER, *args, environ=environ)
    holders.append(holder)
    assert holder.first_line() == "locked"
    return holder


def test_lock_writes_our_pid_and_creates_the_state_dir(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ict" / "lock"
    lock = InstanceLock("ict", path)
    with lock:
        assert path.read_text() == f"{os.getpid()}\n"
        assert (path.parent.stat().st_mode & 0o777) == 0o700
        assert repr(lock) == f"<InstanceLock 'ict' locked at {str(path)!r}>"
    assert not lock.locked
    assert path.read_text() == ""  # emptied on release; the file itself stays


def test_a_running_instance_refuses_a_second_one(tmp_path: Path, holders: list[Holder]) -> None:
    path = tmp_path / "lock"
    holder = hold(holders, "ict", str(path))
    lock = InstanceLock("ict", path)
    with pytest.raises(InstanceLockedError) as info:
        lock.acquire()
    assert info.value.pid == holder.pid
    assert info.value.instance == "ict"
    assert info.value.path == str(path)
    assert str(info.value) == f"instance 'ict' is already running (pid {holder.pid}, lock {path})"
    assert isinstance(info.value, PywatsError)
    assert not lock.locked
    # Being refused changes nothing for the holder.
    assert path.read_text() == f"{holder.pid}\n"

    assert holder.close() == 0
    with lock:
        assert path.read_text() == f"{os.getpid()}\n"


def test_a_killed_holder_leaves_a_file_that_is_simply_locked_again(
    tmp_path: Path, holders: list[Holder]
) -> None:
    path = tmp_path / "lock"
    holder = hold(holders, "ict", str(path))
    holder.kill()
    assert path.read_text() == f"{holder.pid}\n"  # stale pid left behind by kill -9
    with InstanceLock("ict", path):
        assert path.read_text() == f"{os.getpid()}\n"


def test_different_instances_run_side_by_side(
    tmp_path: Path, holders: list[Holder], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    ict = hold(holders, "ict", environ=env(XDG_DATA_HOME=str(tmp_path)))
    assert lock_path("ict") == tmp_path / "pywats" / "ict" / "lock"
    assert lock_path("ict").read_text() == f"{ict.pid}\n"
    with InstanceLock("fct") as fct, InstanceLock("eol") as eol:
        assert fct.path == tmp_path / "pywats" / "fct" / "lock"
        assert eol.locked
        with pytest.raises(InstanceLockedError, match=rf"\(pid {ict.pid}, "):
            InstanceLock("ict").acquire()


def test_a_second_lock_in_the_same_process_is_refused_too(tmp_path: Path) -> None:
    # flock belongs to the open file, not the process: a second service object in one
    # process (a test harness, a bug) cannot share the instance either.
    path = tmp_path / "lock"
    with InstanceLock("ict", path):
        with pytest.raises(InstanceLockedError) as info:
            InstanceLock("ict", path).acquire()
        assert info.value.pid == os.getpid()


def test_programs_we_start_do_not_inherit_the_lock(tmp_path: Path, holders: list[Holder]) -> None:
    path = tmp_path / "lock"
    parent = Holder(PARENT, str(path))
    holders.append(parent)
    child_pid = int(parent.first_line())
    # The parent released the lock; its child (still running) must not be holding it.
    os.kill(child_pid, 0)
    with InstanceLock("ict", path):
        pass
    assert parent.close() == 0


def test_acquire_release_rules(tmp_path: Path) -> None:
    lock = InstanceLock("ict", tmp_path / "lock")
    assert repr(lock) == f"<InstanceLock 'ict' unlocked at {str(tmp_path / 'lock')!r}>"
    lock.acquire()
    with pytest.raises(RuntimeError, match="already held"):
        lock.acquire()
    lock.release()
    lock.release()  # idempotent
    lock.acquire()  # and it can be taken again
    lock.close()
    assert not lock.locked


def test_unreadable_pid_is_reported_as_unknown(tmp_path: Path, holders: list[Holder]) -> None:
    path = tmp_path / "lock"
    hold(holders, "ict", str(path))
    path.write_text("garbage\n")  # the holder's fd still has the lock
    with pytest.raises(InstanceLockedError) as info:
        InstanceLock("ict", path).acquire()
    assert info.value.pid is None
    assert "(pid unknown, lock " in str(info.value)


def test_a_symlinked_lock_file_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep me\n")
    (tmp_path / "lock").symlink_to(target)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        InstanceLock("ict", tmp_path / "lock").acquire()
    assert target.read_text() == "keep me\n"
