"""A small Linux inotify binding for Trio, through :mod:`ctypes`.

The instance's file descriptor is non-blocking and registered with Trio's I/O manager
(:func:`trio.lowlevel.wait_readable`), so waiting for events costs no thread and is
cancellable like any other Trio wait: events are read from the kernel only after the wait
returned, never in a cancelled read, so cancelling :meth:`Inotify.read` loses nothing.

What the kernel promises (inotify(7)) and what that means here:

* A watch is per directory, not recursive; a watch on ``dir`` reports events for the
  entries directly inside it, with their ``name``.
* The per-instance queue holds ``fs.inotify.max_queued_events`` events (16384 by
  default). Beyond that the kernel drops events and queues one ``IN_Q_OVERFLOW``
  event with ``wd == -1``: the reader must assume it missed anything and rescan.
* Removing a watch (or deleting / unmounting the watched directory) queues an
  ``IN_IGNORED`` event for its watch descriptor; the descriptor is dead after it.

Errors from the C calls are :class:`InotifyError` (a :class:`~pywats.errors.PywatsError`)
with the ``errno`` kept and the :class:`OSError` chained, and messages that name the sysctl
to raise when a limit was hit.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import errno as errno_
import functools
import os
import struct
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

import attrs
import trio

from pywats.errors import PywatsError

__all__ = ["Event", "Inotify", "InotifyError", "Mask", "parse_events"]


class Mask(enum.IntFlag):
    """The bits of ``inotify_event.mask`` and of the mask given to ``inotify_add_watch``.

    Names drop the ``IN_`` prefix of ``<sys/inotify.h>``: ``Mask.CLOSE_WRITE`` is
    ``IN_CLOSE_WRITE``.
    """

    ACCESS = 0x00000001
    MODIFY = 0x00000002
    ATTRIB = 0x00000004
    CLOSE_WRITE = 0x00000008
    CLOSE_NOWRITE = 0x00000010
    OPEN = 0x00000020
    MOVED_FROM = 0x00000040
    MOVED_TO = 0x00000080
    CREATE = 0x00000100
    DELETE = 0x00000200
    DELETE_SELF = 0x00000400
    MOVE_SELF = 0x00000800
    # Set by the kernel in events only.
    UNMOUNT = 0x00002000
    Q_OVERFLOW = 0x00004000
    IGNORED = 0x00008000
    # Flags for inotify_add_watch only.
    ONLYDIR = 0x01000000
    DONT_FOLLOW = 0x02000000
    EXCL_UNLINK = 0x04000000
    MASK_CREATE = 0x10000000
    MASK_ADD = 0x20000000
    # Set by the kernel in events: the subject of the event is a directory.
    ISDIR = 0x40000000
    ONESHOT = 0x80000000


@attrs.frozen
class Event:
    """One ``struct inotify_event``.

    ``name`` is the entry's name inside the watched directory (decoded with
    :func:`os.fsdecode`, so undecodable bytes survive as surrogates), or ``""`` when the
    event is about the watched directory itself. ``wd`` is ``-1`` for ``Q_OVERFLOW``.
    """

    wd: int
    mask: Mask
    cookie: int
    name: str

    @property
    def overflow(self) -> bool:
        """True for the kernel's "events were dropped" marker."""
        return self.wd == -1 or bool(self.mask & Mask.Q_OVERFLOW)


class InotifyError(PywatsError):
    """An inotify call failed. ``errno`` is the C errno, ``path`` the path involved (or ``""``)."""

    def __init__(self, message: str, *, errno: int, path: str = "") -> None:
        self.errno = errno
        self.path = path
        super().__init__(message)


# struct inotify_event { int wd; uint32_t mask; uint32_t cookie; uint32_t len; char name[]; }
_HEADER = struct.Struct("=iIII")
# Large enough for one event with the longest name (16 + NAME_MAX + 1 = 272 bytes) many
# times over; the kernel fails a read with EINVAL only when the *next* event does not fit.
_READ_BYTES = 64 * 1024
# Bounds the memory one read() call can take while the queue keeps refilling; whatever
# is left stays in the kernel queue for the next call.
_MAX_READS_PER_CALL = 16

_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_PROC = "/proc/sys/fs/inotify"


def parse_events(data: bytes | bytearray | memoryview) -> list[Event]:
    """Parse a buffer of whole ``struct inotify_event`` records, as one ``read`` returns.

    Raises ``ValueError`` if the buffer ends inside a record (the kernel never returns
    partial events, so that means the buffer did not come from an inotify read).
    """
    events: list[Event] = []
    view = memoryview(data)
    offset = 0
    end = len(view)
    while offset < end:
        if end - offset < _HEADER.size:
            raise ValueError(f"truncated inotify event header at byte {offset}")
        wd, mask, cookie, length = _HEADER.unpack_from(view, offset)
        offset += _HEADER.size
        if end - offset < length:
            raise ValueError(f"truncated inotify event name at byte {offset}")
        # The name is NUL-terminated and padded with NULs to an alignment boundary.
        raw = bytes(view[offset : offset + length]).split(b"\0", 1)[0]
        offset += length
        events.append(Event(wd=wd, mask=Mask(mask), cookie=cookie, name=os.fsdecode(raw)))
    return events


@functools.cache
def _libc() -> Any:
    """libc with the three inotify functions typed; loaded on first use, not at import."""
    # dlopen(NULL) searches the process's global symbols, which include libc on glibc and
    # musl alike, without ctypes.util.find_library's subprocess calls.
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        init1 = libc.inotify_init1
        add_watch = libc.inotify_add_watch
        rm_watch = libc.inotify_rm_watch
    except AttributeError as exc:
        raise InotifyError(
            "inotify is not available on this system (Linux only); "
            "watch the folder by rescanning instead (use_inotify = false)",
            errno=errno_.ENOSYS,
        ) from exc
    init1.argtypes = [ctypes.c_int]
    init1.restype = ctypes.c_int
    add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    add_watch.restype = ctypes.c_int
    rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    rm_watch.restype = ctypes.c_int
    return libc


def _limit(name: str) -> str:
    """The current value of an inotify sysctl, for error messages (``"?"`` if unreadable)."""
    try:
        with open(f"{_PROC}/{name}", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return "?"


def _oserror(path: str = "") -> OSError:
    err = ctypes.get_errno()
    return OSError(err, os.strerror(err), *((path,) if path else ()))


class Inotify:
    """One inotify instance: a non-blocking, close-on-exec file descriptor.

    Use as a context manager (or call :meth:`close`); closing removes every watch.
    Only one task may wait in :meth:`read` at a time.

    Error handling:
        The constructor raises :class:`InotifyError` when the per-user instance limit
        (``fs.inotify.max_user_instances``) is reached or inotify is unavailable;
        :meth:`add_watch` when the watch limit (``fs.inotify.max_user_watches``) is
        reached or the path is not a readable directory.

    Resource handling:
        :meth:`close` first tells Trio the descriptor is closing
        (:func:`trio.lowlevel.notify_closing`), so a task blocked in :meth:`read` gets
        :class:`trio.ClosedResourceError` instead of waiting on a recycled descriptor.
    """

    def __init__(self) -> None:
        fd = int(_libc().inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
        if fd < 0:
            cause = _oserror()
            if cause.errno == errno_.EMFILE:
                message = (
                    "cannot create an inotify instance: the per-user limit "
                    f"fs.inotify.max_user_instances = {_limit('max_user_instances')} is "
                    "reached (other programs of this user hold them); raise it with sysctl"
                )
            else:
                message = f"cannot create an inotify instance: {cause.strerror}"
            raise InotifyError(message, errno=cause.errno or 0) from cause
        self._fd = fd

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._fd < 0

    def fileno(self) -> int:
        """The inotify file descriptor (``-1`` once closed)."""
        return self._fd

    def add_watch(self, path: str | os.PathLike[str], mask: Mask) -> int:
        """Watch ``path`` for the events in ``mask``; return the watch descriptor.

        Watching a path that is already watched (the same inode) returns the same
        descriptor and replaces its mask (unless ``Mask.MASK_ADD`` is given).
        """
        fspath = os.fspath(path)
        self._check_open()
        wd = int(_libc().inotify_add_watch(self._fd, os.fsencode(fspath), int(mask)))
        if wd >= 0:
            return wd
        cause = _oserror(fspath)
        if cause.errno == errno_.ENOSPC:
            message = (
                f"cannot watch {fspath}: the inotify watch limit "
                f"fs.inotify.max_user_watches = {_limit('max_user_watches')} is reached "
                "(it is shared by every program of this user); raise it with sysctl, e.g. "
                "sysctl fs.inotify.max_user_watches=524288"
            )
        elif cause.errno == errno_.ENOTDIR:
            message = f"cannot watch {fspath}: not a directory"
        else:
            message = f"cannot watch {fspath}: {cause.strerror}"
        raise InotifyError(message, errno=cause.errno or 0, path=fspath) from cause

    def rm_watch(self, wd: int) -> None:
        """Remove a watch. The kernel then queues ``IGNORED`` for ``wd``.

        A descriptor that is already gone (``EINVAL``: its directory was deleted, or it
        was removed before) is not an error: the caller wanted it gone.
        """
        self._check_open()
        if int(_libc().inotify_rm_watch(self._fd, wd)) < 0:
            cause = _oserror()
            if cause.errno == errno_.EINVAL:
                return
            raise InotifyError(
                f"cannot remove inotify watch {wd}: {cause.strerror}", errno=cause.errno or 0
            ) from cause

    async def read(self) -> list[Event]:
        """Wait until events are queued, then return every event pending right now.

        Always returns at least one event. If the queue keeps refilling, one call returns
        at most about a megabyte of events; the rest comes with the next call.

        Raises :class:`trio.ClosedResourceError` if the instance is (or gets) closed.
        """
        self._check_open()
        while True:
            await trio.lowlevel.wait_readable(self._fd)
            chunks = list(self._read_pending())
            if chunks:
                return parse_events(b"".join(chunks))
            # Readable but nothing to read: another reader raced us; wait again.

    def _read_pending(self) -> Iterator[bytes]:
        for _ in range(_MAX_READS_PER_CALL):
            try:
                chunk = os.read(self._fd, _READ_BYTES)
            except BlockingIOError:
                return
            if not chunk:
                return
            yield chunk

    def close(self) -> None:
        """Close the descriptor (idempotent); the kernel drops every watch with it."""
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        # Outside a Trio run (closed from plain code) nobody can be waiting on it.
        with contextlib.suppress(RuntimeError):
            trio.lowlevel.notify_closing(fd)
        os.close(fd)

    def _check_open(self) -> None:
        if self._fd < 0:
            raise trio.ClosedResourceError("the inotify instance is closed")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # A leaked instance keeps its watches alive in the kernel; close it, quietly (a
        # ResourceWarning would be an error under the test suite's filterwarnings).
        fd = getattr(self, "_fd", -1)
        if fd >= 0:
            self._fd = -1
            with contextlib.suppress(OSError):
                os.close(fd)
