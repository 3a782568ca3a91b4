"""One process per instance: an exclusive ``flock`` on a lock file in the state directory.

Two services on one instance would share a queue database and race for the same watch
folders, so ``pywats serve`` takes this lock before it opens anything else. ``flock``
locks belong to the open file, and the kernel drops them when the process dies (also on
``kill -9``), so a lock file left behind by a dead process is simply locked again: there
are no stale locks to clean up, and the file is never deleted (deleting it would let a
second process lock a new file of the same name while the first still holds the old one).

The holder writes its pid into the file after locking, so the process that is refused
can say who is running (``instance 'ict' is already running (pid 1234, lock ...)``).

The descriptor is opened close-on-exec, so programs the service starts do not inherit
the lock and keep it alive after the service has died.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from types import TracebackType

from pywats.errors import InstanceLockedError
from pywats.paths import lock_path, make_private_dir, validate_instance

# A pid is at most 7 digits on Linux (pid_max <= 2**22); anything longer is not ours.
_PID_READ_BYTES = 32


class InstanceLock:
    """The exclusive lock of one instance.

    Use as a context manager, or call :meth:`acquire` and :meth:`release`::

        with InstanceLock("ict"):
            ...  # we are the only process running instance 'ict'

    Error handling:
        :meth:`acquire` raises :class:`~pywats.errors.InstanceLockedError` (with the
        holder's pid) when another process holds the lock. It never waits.
        :class:`~pywats.errors.ConfigError` when the state directory is unsafe (see
        :func:`pywats.paths.make_private_dir`) and :class:`OSError` when it cannot be
        created or the lock file cannot be opened.

    Resource handling:
        The lock is held as long as the file descriptor is open: until :meth:`release`,
        the end of the ``with`` block, or the death of the process.
    """

    def __init__(self, instance: str, path: Path | None = None) -> None:
        """Prepare (not take) the lock of ``instance``; ``path`` defaults to ``lock_path``."""
        self.instance = validate_instance(instance)
        self.path = path if path is not None else lock_path(instance)
        self._fd: int | None = None

    @property
    def locked(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`InstanceLockedError` if another process has it.

        The lock file's directory is created (mode 0700) if it is missing. Once locked,
        the file holds our pid and a newline.
        """
        if self._fd is not None:
            raise RuntimeError(f"the lock of instance {self.instance!r} is already held")
        make_private_dir(self.path.parent)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
            try:
                locked = self._try_lock(fd)
            except BaseException:
                os.close(fd)
                raise
            if locked:
                break
            # Another process unlinked or replaced the file between our open and our
            # lock (an operator tidying up); the lock we got is on a file nobody else
            # will ever open again, so take the one at the path instead.
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _try_lock(self, fd: int) -> bool:
        """Lock ``fd``; False if it no longer is the file at ``self.path``."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise InstanceLockedError(self.instance, _read_pid(fd), str(self.path)) from None
        try:
            at_path = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return False
        ours = os.fstat(fd)
        return (at_path.st_dev, at_path.st_ino) == (ours.st_dev, ours.st_ino)

    def release(self) -> None:
        """Drop the lock. Does nothing if it is not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Emptied while still locked, so nobody reads our pid after we are gone.
            os.ftruncate(fd, 0)
        except OSError:
            pass  # the lock goes with the descriptor anyway
        finally:
            os.close(fd)

    close = release

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "locked" if self.locked else "unlocked"
        return f"<InstanceLock {self.instance!r} {state} at {str(self.path)!r}>"


def _read_pid(fd: int) -> int | None:
    """The pid the holder wrote into the lock file, or None if it is not (yet) there."""
    try:
        raw = os.pread(fd, _PID_READ_BYTES, 0)
    except OSError:
        return None
    text = raw.decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None
