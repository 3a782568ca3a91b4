"""One process per watch folder: an exclusive ``flock`` on the watch folder itself.

The instance lock (:mod:`pywats.instance`) lives in the state directory, so it keeps a
second ``pywats serve`` of the same instance *with the same state directory* out. A
second process with another state directory (started by hand without
``STATE_DIRECTORY``, or another instance whose config names the same folder) would get
a lock of its own and then race the service for every file: both convert it, and each
queues a report of its own. So each watcher also locks the folder it takes files from:
the lock belongs to the folder, whoever configured it.

Why a ``flock`` on the directory, and not a lock file inside it:

* Linux ``flock`` works on a directory opened ``O_RDONLY | O_DIRECTORY``, so nothing is
  created in the operator's folder (no dot-file to explain, to be copied along by
  sync tools, or to be left behind), and no write permission is needed to take it.
* The lock is on the folder's inode, so two paths to one folder (a symlink, a bind
  mount, ``..`` in the config) meet at the same lock.
* The kernel drops it when the descriptor closes or the process dies (also on
  ``kill -9``): there are no stale locks.
* The holder's pid needs no file either: ``/proc/locks`` lists every ``flock`` with the
  holder's pid and the locked inode (``major:minor:inode``), which is matched against the
  folder's ``stat``.

Limits: a file system that refuses ``flock`` on a directory (some network shares:
``ENOLCK``, ``EOPNOTSUPP``, ``EBADF``) gets no lock; the watcher logs that once and goes
on, as it did before folder locks existed. The lock keeps out other processes on *this*
machine only. The descriptor is close-on-exec, so programs the service starts (process
converters) do not inherit it.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from pathlib import Path

import attrs

from pywats import filenames
from pywats.errors import PywatsError

__all__ = ["FolderLock", "FolderLockedError", "holder_pid", "lock_folder"]

log = logging.getLogger("pywats.watcher")

PROC_LOCKS = Path("/proc/locks")
"""Where the kernel lists the locks held (``man 5 proc``)."""

# Errors of a file system that does not lock directories; anything else is a real error.
_UNSUPPORTED = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF, errno.EINVAL})


class FolderLockedError(PywatsError):
    """Another process holds the lock of a watch folder (:mod:`pywats.folderlock`).

    ``pid`` is the holder's pid from ``/proc/locks`` (``None`` if it cannot be told).
    """

    def __init__(self, folder: Path, pid: int | None) -> None:
        self.folder = folder
        self.pid = pid
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        command = _command_of(pid)
        taken = f"watch folder {filenames.shown(folder)} is already taken"
        super().__init__(
            f"{taken} by another pywats process ({holder}{': ' + command if command else ''}"
            "); two processes must never take files "
            "from one folder: stop that one, or remove the folder from one of the configs"
        )


def _command_of(pid: int | None) -> str:
    """The holder's command line, shortened (empty if it cannot be read)."""
    if pid is None:
        return ""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    text = filenames.shown(os.fsdecode(b" ".join(w for w in raw.split(b"\0") if w)))
    return text if len(text) <= 200 else text[:199] + "…"


def parse_proc_locks(text: str, dev: int, ino: int) -> int | None:
    """The pid of the ``FLOCK`` holder of inode ``ino`` on device ``dev`` in ``text``.

    ``text`` is the content of ``/proc/locks``; lines look like
    ``3: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`` (device numbers in hex). Waiters
    (``3: -> FLOCK ...``) are skipped. Pure; None when no line matches.
    """
    want = (os.major(dev), os.minor(dev), ino)
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            major, minor, inode = fields[5].split(":")
            where = (int(major, 16), int(minor, 16), int(inode))
            pid = int(fields[4])
        except ValueError:
            continue
        if where == want:
            return pid
    return None


def holder_pid(folder: Path) -> int | None:
    """The pid holding a ``flock`` on ``folder``, from ``/proc/locks`` (None if unknown)."""
    try:
        st = os.stat(folder)
        text = PROC_LOCKS.read_text(errors="replace")
    except OSError:
        return None
    return parse_proc_locks(text, st.st_dev, st.st_ino)


@attrs.define(eq=False)
class FolderLock:
    """The held lock of one watch folder (from :func:`lock_folder`); :meth:`release` it.

    ``fd`` is None when the folder's file system does not lock directories.
    """

    folder: Path
    fd: int | None

    @property
    def locked(self) -> bool:
        """Whether a lock is held (False after release, or if the folder cannot lock)."""
        return self.fd is not None

    def release(self) -> None:
        """Drop the lock (close the descriptor). Safe to call more than once."""
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)


def lock_folder(folder: Path) -> FolderLock:
    """Take the exclusive lock of the existing directory ``folder``; never waits.

    Blocking I/O (an ``open`` on a network mount): call it in a worker thread.

    Raises:
        FolderLockedError: another process holds it (with that process's pid).
        OSError: ``folder`` cannot be opened as a directory.
    """
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise FolderLockedError(folder, holder_pid(folder)) from None
        if exc.errno in _UNSUPPORTED:
            log.warning(
                "cannot lock watch folder %s (%s): its file system does not lock folders, "
                "so nothing keeps a second process from taking its files",
                folder,
                exc.strerror or exc,
            )
            return FolderLock(folder, None)
        raise
    except BaseException:
        os.close(fd)
        raise
    return FolderLock(folder, fd)
