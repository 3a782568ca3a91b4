"""A FUSE file system that loses, on command, every write nobody made durable: the power
cut of row 2 of the fault matrix (``docs/reliability.md``), in place of LazyFS.

It passes every operation through to a backing folder and keeps an undo log of what is
not durable yet. The model (that of LazyFS's "lose unsynced data" fault):

- File data written (``write``, ``truncate``/``ftruncate``, ``open`` with ``O_TRUNC``,
  ``fallocate``, and the kernel's write-back of shared ``mmap`` pages, which arrive as
  writes) since the file's last ``fsync``/``fdatasync`` is lost at a cut: the file gets
  back its size and bytes as they were at that sync (or when it was created, empty). A
  write through a handle opened with ``O_SYNC``/``O_DSYNC`` is followed by a sync of the
  file. A sync is per file (per inode: hard links share it), of any of its handles.
- Namespace operations (create, unlink, rename, link, mkdir, rmdir, chmod, utimens) are
  durable at once, as in LazyFS: a file created and renamed into place without a sync
  is there after the cut, empty. Directory syncs have nothing to do.
- The backing file system itself never loses power (its own fsync is not called: it
  would only cost time). One host: file locks are the kernel's own (local) locks.

How the undo works: before the first change of a byte range of a file since its last
sync, the old bytes of the part of that range inside the file's size at that sync are
saved, once; the size at that sync is kept too. At a cut every such file is truncated
to that size and the saved bytes written back, through a descriptor the file system
holds on the inode (so a file renamed or unlinked since is still found). A sync forgets
the file's record.

Run as its own process, ``python -m tests.integration.faults.powercut BACKING MOUNTPOINT``;
``SIGUSR1`` cuts the power (every operation after it fails with ``EIO``, the undo log is
applied, the mount is unmounted, the process exits 0); ``SIGTERM``/``SIGINT`` unmount
without a cut (a clean shutdown: everything counts as written). Tests use
:func:`mounted`, whose :meth:`Mount.cut` does that and waits for it; entering
:func:`mounted` again mounts the same backing folder anew. The unmount drops the kernel's
page cache of the mount, so nothing written before the cut is seen after it.

Needs ``/dev/fuse``, ``fusermount3`` (Debian's ``fuse3``), root and ``mfusepy``;
:func:`unavailable` says which is missing.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import attrs

MOUNT_TIMEOUT_S = 10.0
"""How long a mount may take to appear, and an unmount (or a cut) to finish."""

CUT_SIGNAL = signal.SIGUSR1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

_SYNC_FLAGS = os.O_SYNC | os.O_DSYNC

T = TypeVar("T")


def unavailable() -> str | None:
    """Why this file system cannot run here (one line), or None if it can."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse (FUSE is not available on this machine)"
    if shutil.which("fusermount3") is None:
        return "no fusermount3 (install Debian's fuse3; .ci/run does)"
    if os.geteuid() != 0:
        return "mounting the power-cut FUSE file system needs root"
    try:
        import mfusepy  # type: ignore[import-untyped]  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"mfusepy cannot load libfuse3: {exc}"
    return None


# -- the undo log: pure bookkeeping over one descriptor per inode ------------------------


def _uncovered(covered: list[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    """The parts of ``[start, end)`` outside the sorted, disjoint intervals ``covered``."""
    gaps = []
    at = start
    for lo, hi in covered:
        if hi <= at:
            continue
        if lo >= end:
            break
        if lo > at:
            gaps.append((at, lo))
        at = max(at, hi)
        if at >= end:
            break
    if at < end:
        gaps.append((at, end))
    return gaps


def _merge(covered: list[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    """``covered`` with ``[start, end)`` added, still sorted, disjoint and merged."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted([*covered, (start, end)]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


class _Record:
    """What one file (inode) looked like at its last sync, as far as it changed since."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.size = os.fstat(fd).st_size
        self.saved: dict[int, bytes] = {}
        self.covered: list[tuple[int, int]] = []

    def protect(self, start: int, end: int) -> None:
        """Save the bytes of ``[start, end)`` not saved yet, before they change."""
        end = min(end, self.size)
        for lo, hi in _uncovered(self.covered, start, end):
            # Never changed since the sync, so still the synced bytes (and inside the
            # current size: a shrink below them would have saved them).
            self.saved[lo] = os.pread(self.fd, hi - lo, lo)
            self.covered = _merge(self.covered, lo, hi)

    def undo(self) -> None:
        os.ftruncate(self.fd, self.size)
        for offset, data in self.saved.items():
            os.pwrite(self.fd, data, offset)

    def close(self) -> None:
        os.close(self.fd)


class UndoLog:
    """Every file changed since its last sync, by inode."""

    def __init__(self) -> None:
        self._records: dict[tuple[int, int], _Record] = {}

    def _record(self, fd: int) -> _Record:
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        record = self._records.get(key)
        if record is None:
            # A descriptor of our own that can read and write, whatever ``fd`` was opened
            # for, that finds the inode after a rename or an unlink.
            own = os.open(f"/proc/self/fd/{fd}", os.O_RDWR | os.O_CLOEXEC)
            record = self._records[key] = _Record(own)
        return record

    def before_write(self, fd: int, offset: int, length: int) -> None:
        self._record(fd).protect(offset, offset + length)

    def before_resize(self, fd: int, length: int) -> None:
        current = os.fstat(fd).st_size
        self._record(fd).protect(min(current, length), max(current, length))

    def synced(self, fd: int) -> None:
        st = os.fstat(fd)
        record = self._records.pop((st.st_dev, st.st_ino), None)
        if record is not None:
            record.close()

    def cut(self) -> int:
        """Put every changed file back as it was at its last sync; how many there were."""
        records, self._records = self._records, {}
        for record in records.values():
            try:
                record.undo()
            finally:
                record.close()
        return len(records)

    def forget(self) -> None:
        """A clean shutdown: everything written counts as durable."""
        for record in self._records.values():
            record.close()
        self._records = {}


# -- the FUSE operations -----------------------------------------------------------------


def _backing_flags(flags: int) -> int:
    """The open flags for the backing file: without ``O_APPEND`` (the kernel gives every
    write its offset, and Linux's pwrite(2) would ignore it on an append descriptor),
    and close-on-exec (the unmount runs fusermount3)."""
    return (flags & ~os.O_APPEND) | os.O_CLOEXEC


def _fuse_class() -> type[Any]:
    import mfusepy

    class _FUSE(mfusepy.FUSE):  # type: ignore[misc]  # untyped base
        """mfusepy's FUSE with ``ftruncate`` given its handle: mfusepy 3.1 passes only
        the path, which is wrong for a file renamed or unlinked since it was opened."""

        def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
            fh = fip.contents.fh if fip else None
            name = None if path is None else path.decode(self.encoding, self.errors)
            result: int = self.operations.truncate(name, length, fh)
            return result

    return _FUSE


class PowerCutFS:
    """Passthrough to ``backing`` with an :class:`UndoLog`; see the module docstring.

    mfusepy looks the operations up by name (an ``mfusepy.Operations`` base is not
    needed: what is not defined here is not offered to the kernel, so locks stay the
    kernel's); everything else is private, lest a name like ``lock`` be taken for one.
    """

    use_ns = True

    def __init__(self, backing: Path) -> None:
        self._backing = str(backing.resolve())
        self._undo = UndoLog()
        self._lock = threading.RLock()
        self._is_cut = False
        self._sync_handles: set[int] = set()

    def _path(self, path: str) -> str:
        return os.path.join(self._backing, path.lstrip("/"))

    def _guard(self, fn: Callable[[], T]) -> T:
        """Run one operation; after a cut every one fails as on a dead disk."""
        with self._lock:
            if self._is_cut:
                raise OSError(errno.EIO, "the power is cut")
            return fn()

    def cut(self) -> int:
        with self._lock:
            self._is_cut = True
            return self._undo.cut()

    def stop(self) -> None:
        with self._lock:
            self._undo.forget()

    # Attributes and directories.

    def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
        def run() -> dict[str, int]:
            st = os.fstat(fh) if fh is not None else os.lstat(self._path(path))
            names = ("st_mode", "st_ino", "st_nlink", "st_uid", "st_gid", "st_size")
            attrs_ = {name: getattr(st, name) for name in names}
            attrs_.update(
                st_atime=st.st_atime_ns,
                st_mtime=st.st_mtime_ns,
                st_ctime=st.st_ctime_ns,
                st_blocks=st.st_blocks,
                st_blksize=st.st_blksize,
            )
            return attrs_

        return self._guard(run)

    def readdir(self, path: str, fh: int) -> list[tuple[str, dict[str, int], int]]:
        def run() -> list[tuple[str, dict[str, int], int]]:
            # With ``use_ino`` each entry needs its inode: readdir(3) skips an inode 0.
            here = os.lstat(self._path(path))
            entries = [
                (name, {"st_mode": here.st_mode, "st_ino": here.st_ino}, 0) for name in (".", "..")
            ]
            with os.scandir(self._path(path)) as found:
                for entry in found:
                    st = entry.stat(follow_symlinks=False)
                    entries.append((entry.name, {"st_mode": st.st_mode, "st_ino": st.st_ino}, 0))
            return entries

        return self._guard(run)

    def readlink(self, path: str) -> str:
        return self._guard(lambda: os.readlink(self._path(path)))

    def statfs(self, path: str) -> dict[str, int]:
        def run() -> dict[str, int]:
            sv = os.statvfs(self._path(path))
            names = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files")
            return {n: getattr(sv, n) for n in (*names, "f_ffree", "f_favail", "f_namemax")}

        return self._guard(run)

    def _do(self, fn: Callable[..., object], *args: Any, **kwargs: Any) -> int:
        self._guard(lambda: fn(*args, **kwargs))
        return 0

    # Namespace operations: durable at once.

    def mkdir(self, path: str, mode: int) -> int:
        return self._do(os.mkdir, self._path(path), mode)

    def rmdir(self, path: str) -> int:
        return self._do(os.rmdir, self._path(path))

    def unlink(self, path: str) -> int:
        return self._do(os.unlink, self._path(path))

    def rename(self, old: str, new: str) -> int:
        return self._do(os.rename, self._path(old), self._path(new))

    def link(self, target: str, source: str) -> int:
        return self._do(os.link, self._path(source), self._path(target))

    def symlink(self, target: str, source: str) -> int:
        return self._do(os.symlink, source, self._path(target))

    def chmod(self, path: str, mode: int) -> int:
        return self._do(os.chmod, self._path(path), mode)

    def chown(self, path: str, uid: int, gid: int) -> int:
        return self._do(os.chown, self._path(path), uid, gid)

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        if times is None:
            return self._do(os.utime, self._path(path))
        return self._do(os.utime, self._path(path), ns=times)

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        return self._do(lambda: None)

    # Files.

    def _opened(self, fd: int, flags: int) -> int:
        if flags & _SYNC_FLAGS:
            self._sync_handles.add(fd)
        return fd

    def open(self, path: str, flags: int) -> int:
        def run() -> int:
            if flags & os.O_TRUNC:
                # The truncation is a change of data like any other: saved first.
                fd = os.open(self._path(path), _backing_flags(flags) & ~os.O_TRUNC)
                try:
                    self._undo.before_resize(fd, 0)
                    os.ftruncate(fd, 0)
                except BaseException:
                    os.close(fd)
                    raise
            else:
                fd = os.open(self._path(path), _backing_flags(flags))
            return self._opened(fd, flags)

        return self._guard(run)

    def create(self, path: str, mode: int, flags: int) -> int:
        def run() -> int:
            fd = os.open(self._path(path), (_backing_flags(flags) | os.O_CREAT) & ~os.O_TRUNC, mode)
            try:
                if flags & os.O_TRUNC:
                    self._undo.before_resize(fd, 0)
                    os.ftruncate(fd, 0)
            except BaseException:
                os.close(fd)
                raise
            return self._opened(fd, flags)

        return self._guard(run)

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return self._guard(lambda: os.pread(fh, size, offset))

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        def run() -> int:
            self._undo.before_write(fh, offset, len(data))
            written = os.pwrite(fh, data, offset)
            if fh in self._sync_handles:
                self._undo.synced(fh)
            return written

        return self._guard(run)

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        def run() -> int:
            if fh is not None:
                self._undo.before_resize(fh, length)
                os.ftruncate(fh, length)
                return 0
            assert path is not None
            fd = os.open(self._path(path), os.O_RDWR | os.O_CLOEXEC)
            try:
                self._undo.before_resize(fd, length)
                os.ftruncate(fd, length)
            finally:
                os.close(fd)
            return 0

        return self._guard(run)

    def fallocate(self, path: str, mode: int, offset: int, size: int, fh: int) -> int:
        def run() -> int:
            if mode != 0:
                return -errno.EOPNOTSUPP
            # Only the size can change (the data in the range stays): the record keeps it.
            self._undo.before_write(fh, offset, 0)
            os.posix_fallocate(fh, offset, size)
            return 0

        return self._guard(run)

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        return self._do(self._undo.synced, fh)

    def flush(self, path: str, fh: int) -> int:
        return self._do(lambda: None)

    def release(self, path: str, fh: int) -> int:
        # Closing loses nothing: the descriptor goes even after a cut.
        with self._lock:
            self._sync_handles.discard(fh)
            os.close(fh)
        return 0


def serve(backing: Path, mountpoint: Path) -> int:
    """Mount, run until a signal, cut or not, unmount; the exit status."""
    fs = PowerCutFS(backing)
    target = str(mountpoint.resolve())
    # Signals are taken by this (the main) thread with sigtimedwait; blocked before the
    # FUSE threads start, they are blocked in all of them (and libfuse leaves alone).
    wanted = {CUT_SIGNAL, *STOP_SIGNALS}
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            _fuse_class()(
                fs,
                target,
                foreground=True,
                fsname="powercut",
                use_ino=True,
            )
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="fuse", daemon=True)
    thread.start()
    cut = False
    while thread.is_alive():
        sig = signal.sigtimedwait(wanted, 0.2)
        if sig is not None:
            cut = sig.si_signo == CUT_SIGNAL
            break
    if cut:
        files = fs.cut()
        print(f"powercut: power cut, {files} file(s) put back", flush=True)
    if thread.is_alive():
        # Lazy, so a file still open cannot refuse it (after a cut it answers EIO). On a
        # clean stop the kernel writes back what it still holds before it lets go.
        subprocess.run(["fusermount3", "-u", "-z", target], check=False, timeout=MOUNT_TIMEOUT_S)
        thread.join(MOUNT_TIMEOUT_S)
    if not cut:
        fs.stop()
        print("powercut: unmounted, nothing lost", flush=True)
    if failure:
        print(f"powercut: {failure[0]!r}", file=sys.stderr, flush=True)
        return 1
    return 0


# -- the test side: a mount for the length of a block ------------------------------------


def _mount_type(mountpoint: Path) -> str | None:
    """The type and source of what is mounted at ``mountpoint`` (``fuse powercut`` for
    this file system), from /proc/self/mountinfo; None if nothing is."""
    target = str(mountpoint.resolve())
    found = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        dash = fields.index("-")
        if fields[4] == target:
            # The last mount on a path is the one in force.
            found = f"{fields[dash + 1]} {fields[dash + 2]}"
    return found


def _wait(condition: Callable[[], bool], what: str, timeout: float = MOUNT_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@attrs.define
class Mount:
    """A running power-cut file system; :meth:`cut` ends it."""

    backing: Path
    mountpoint: Path
    proc: subprocess.Popen[str]
    log_path: Path
    cuts: int = 0

    def cut(self) -> None:
        """Cut the power: the unsynced writes are lost, the mount is gone (remount by
        entering :func:`mounted` again)."""
        self._end(CUT_SIGNAL, "a power cut")
        self.cuts += 1

    def stop(self) -> None:
        """Unmount cleanly: nothing is lost."""
        self._end(signal.SIGTERM, "an unmount")

    def _end(self, sig: int, what: str) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"the power-cut file system had died: {self.log()}")
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=2 * MOUNT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{what} did not finish: {self.log()}") from None
        if code != 0:
            raise AssertionError(f"{what} failed (exit {code}): {self.log()}")
        _wait(lambda: _mount_type(self.mountpoint) is None, f"{self.mountpoint} to unmount")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def mounted(backing: Path, mountpoint: Path) -> Iterator[Mount]:
    """The power-cut file system over ``backing`` at ``mountpoint`` for a block. Leaving
    the block without a :meth:`Mount.cut` unmounts cleanly (nothing lost); a process or
    mount left over by a failure is cleaned up either way."""
    backing.mkdir(parents=True, exist_ok=True)
    mountpoint.mkdir(parents=True, exist_ok=True)
    log_path = mountpoint.parent / f"{mountpoint.name}.powercut.log"
    with log_path.open("a") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", __name__, str(backing.resolve()), str(mountpoint.resolve())],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=Path(__file__).resolve().parents[3],
        )
    mount = Mount(backing, mountpoint, proc, log_path)
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"the power-cut file system did not start: {mount.log()}")
            return _mount_type(mountpoint) == "fuse powercut"

        _wait(up, f"the power-cut file system at {mountpoint}")
        os.stat(mountpoint)  # it answers
        yield mount
        if proc.poll() is None:
            mount.stop()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=MOUNT_TIMEOUT_S)
        if _mount_type(mountpoint) is not None:
            subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], check=False)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m tests.integration.faults.powercut BACKING MOUNTPOINT")
        return 2
    # mfusepy logs an operation that raised (DEBUG for an OSError, ERROR for a bug).
    level = logging.DEBUG if os.environ.get("POWERCUT_DEBUG") == "1" else logging.WARNING
    logging.basicConfig(level=level, format="powercut: %(levelname)s %(message)s")
    return serve(Path(argv[0]), Path(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
