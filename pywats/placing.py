"""Giving a file its name in a watch folder: completely, at once, and never over another.

A watcher takes a file when it appears under its name (``IN_MOVED_TO``), so a file is
first made whole under a hidden staging name (``.<name><suffix>``: the watchers ignore
names that start with a dot) and then renamed to its name with
:func:`rename_noreplace`, which fails instead of replacing what is there. Moving a file
back from an error folder (:mod:`pywats.errorfiles`) and ``pywats submit``
(:func:`place_copy`) both put files into watch folders this way.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from pywats import filenames
from pywats.postaction import copy_tree_to_temp, fsync_dir, remove_tree

__all__ = [
    "SUBMIT_SUFFIX",
    "copy_into",
    "place_bytes",
    "place_copy",
    "place_group",
    "rename_noreplace",
    "stage",
    "staging_name",
]

SUBMIT_SUFFIX = ".pywats-submit"
"""The staging suffix of a file ``pywats submit`` is putting into a watch folder."""

_RENAME_NOREPLACE = 1
_AT_FDCWD = -100

# Serialises check-then-rename of folders where renameat2 is not available, so two moves
# of ours cannot both take one free name.
_rename_lock = threading.Lock()


def rename_noreplace(source: Path, target: Path, *, is_dir: bool = False) -> None:
    """``rename(2)`` that fails with :class:`FileExistsError` instead of replacing.

    Linux's ``renameat2(RENAME_NOREPLACE)``, so the check and the rename are one step;
    where it is not available, a hard link (which never replaces either) and an unlink,
    or for a folder (which cannot be linked) a check and a rename under a lock.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:
        done = renameat2(
            _AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE
        )
        if done == 0:
            return
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            raise FileExistsError(code, os.strerror(code), str(target))
        if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), str(target))
    if is_dir:
        with _rename_lock:
            if os.path.lexists(target):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
            os.rename(source, target)
        return
    os.link(source, target)
    os.unlink(source)


def _write_new(staged: Path, fill: Callable[[BinaryIO], object], mode: int) -> None:
    """Create ``staged`` (which must not exist), ``fill`` it and put it on disk (fsync);
    a partial file is removed."""
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with open(fd, "wb", closefd=True) as out:
            fill(out)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staged)
        raise


def copy_into(source: Path, staged: Path) -> None:
    """Write ``staged`` (which must not exist) as a copy of ``source``, on disk (fsync-ed)
    before it gets its name; a partial copy is removed."""
    with source.open("rb") as src:
        _write_new(staged, lambda out: shutil.copyfileobj(src, out), 0o644)


def _place(target: Path, suffix: str, fill: Callable[[BinaryIO], object], mode: int) -> None:
    """Make ``target`` whole under its staging name, then give it its name if that is
    free; nothing is left behind when a step fails."""
    staged = staging_name(target, suffix)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(staged)  # left by a placing that was killed: never a file of the folder
    _write_new(staged, fill, mode)
    try:
        rename_noreplace(staged, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staged)
        raise
    fsync_dir(target.parent)


def place_bytes(data: bytes, target: Path, suffix: str) -> None:
    """Write ``data`` as the new file ``target``: whole and durable under a hidden name
    (``suffix`` says whose), then renamed only if the name is free.

    Raises:
        FileExistsError: ``target`` exists; nothing was written.
        OSError: the folder cannot be written; nothing is left behind.
    """
    _place(target, suffix, lambda out: out.write(data), 0o666)


def stage(source: Path, staged: Path) -> None:
    """Make ``staged`` a complete copy of ``source`` (a hard link when the file system can)."""
    try:
        os.link(source, staged)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
            raise
    else:
        return
    copy_into(source, staged)  # another file system, or no hard links


def staging_name(target: Path, suffix: str) -> Path:
    """The hidden name ``target`` is made under before it gets its own."""
    return target.with_name(f".{filenames.fit(target.name, 1 + len(suffix))}{suffix}")


def place_copy(source: Path, target: Path) -> None:
    """Put a copy of ``source`` at ``target``: whole, durable, and only if the name is free.

    A copy, never a hard link: the placed file is the service's to move or delete, and
    its content cannot change when ``source`` is edited later. A staging file left by a
    ``place_copy`` that was killed is removed first (it was never a file of the folder).

    Raises:
        FileExistsError: ``target`` exists; nothing was placed.
        OSError: reading ``source`` or writing the folder failed; nothing was placed.
    """
    with source.open("rb") as src:
        _place(target, SUBMIT_SUFFIX, lambda out: shutil.copyfileobj(src, out), 0o644)


def _place_companion(source: Path, target: Path) -> None:
    if not source.is_dir():
        place_copy(source, target)
        return
    staged = copy_tree_to_temp(source, target.parent)
    try:
        rename_noreplace(staged, target, is_dir=True)
    except BaseException:
        with contextlib.suppress(OSError):
            remove_tree(staged)
        raise


def place_group(source: Path, target: Path, companions: Sequence[Path] = ()) -> list[Path]:
    """Put copies of ``companions`` (files or folders, such as Klippel's result folder
    beside its header) beside ``target`` under their own names, then ``source`` at
    ``target`` (:func:`place_copy`): the file last, so a watcher takes it with its group
    whole. All or nothing: the names are checked first, and if a step fails what was
    placed is removed again. Returns the companions' places.

    Raises:
        FileExistsError: ``target`` or a companion's name is taken (the first one is
            named); nothing was placed.
        OSError: reading or writing failed; nothing was placed.
    """
    folder = target.parent
    places = [folder / c.name for c in companions]
    for place in [*places, target]:
        if os.path.lexists(place):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(place))
    placed: list[Path] = []
    try:
        for companion, place in zip(companions, places, strict=True):
            _place_companion(companion, place)
            placed.append(place)
        if placed:
            fsync_dir(folder)  # the companions are there before the file is
        place_copy(source, target)
    except BaseException:
        for place in reversed(placed):
            with contextlib.suppress(OSError):
                if place.is_dir() and not place.is_symlink():
                    remove_tree(place)
                else:
                    os.unlink(place)
        raise
    return placed
