"""The files a watch folder could not convert: list them with their reasons, move one back.

A file no converter could read is moved to its entry's error folder with
``<name>.error.txt`` beside it (:func:`pywats.postaction.reject_file`). Once the cause is
fixed (a converter's arguments, a new converter version, the equipment's setup), an
operator moves the file back into the watch folder and it is converted again. These are
plain, synchronous file-system functions (the service runs them in a worker thread):

- :func:`list_error_files`: the error folder's files, newest first, each with the text of
  its sidecar.
- :func:`restore_error_file`: move one back. It refuses any name that would leave the
  error folder (absolute, ``..``, a symlink on the way), anything but a regular file, and
  a name that is taken in the watch folder: a file there is never overwritten.

Moving back is crash-safe in the service's sense (nothing is lost): the file gets its name
in the watch folder first (a hidden staging name, then an atomic no-replace rename, so the
watcher sees one ``IN_MOVED_TO`` of a complete file), and only then leaves the error
folder; a crash in between leaves it in both, never in neither.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import attrs

from pywats import filenames
from pywats.errors import PywatsError
from pywats.postaction import SIDECAR_SUFFIX, fsync_dir

__all__ = [
    "ERROR_TEXT_MAX",
    "ErrorFile",
    "ErrorFileNotFoundError",
    "NameTakenError",
    "RestoreRefusedError",
    "list_error_files",
    "restore_error_file",
]

ERROR_TEXT_MAX = 8192
"""Characters of a sidecar's text that a listing carries (the rest is cut, and says so)."""

_STAGING_SUFFIX = ".pywats-restore"
# What the post-actions and a restore leave while they work: not a file of the folder yet.
_TEMPORARY_SUFFIXES = (".pywats-tmp", _STAGING_SUFFIX)


class RestoreRefusedError(PywatsError):
    """The name is not one of the error folder's files (outside it, not a regular file,
    a sidecar): nothing was touched."""


class ErrorFileNotFoundError(PywatsError):
    """No such file in the error folder (moved back or removed already)."""


class NameTakenError(PywatsError):
    """The watch folder already has a file of that name: it is never overwritten."""


@attrs.frozen
class ErrorFile:
    """One file in an error folder."""

    name: str
    """Its path below the error folder, ``/``-separated (what :func:`restore_error_file`
    takes), in the escaped form of :func:`pywats.filenames.shown` (a name that is not
    UTF-8 shows its bytes as ``\\xNN``)."""
    path: str
    """Its absolute path (escaped the same way)."""
    size: int
    mtime: float
    """When it was last modified (epoch seconds): about when it was rejected."""
    sidecar: str | None
    """The ``<name>.error.txt`` beside it, ``None`` when there is none."""
    error: str
    """The sidecar's text (at most :data:`ERROR_TEXT_MAX` characters), ``""`` without one."""


def _is_temporary(name: str) -> bool:
    return name.startswith(".") or name.endswith(_TEMPORARY_SUFFIXES)


def _walk(directory: Path, *, recursive: bool) -> Iterator[tuple[Path, os.stat_result]]:
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    for entry in entries:
        if _is_temporary(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(info.st_mode):
            # Subfolders mirror a recursive watch folder's; any other folder (a converter's
            # companion folder) is not a file to move back on its own.
            if recursive:
                yield from _walk(Path(entry.path), recursive=True)
            continue
        if stat.S_ISREG(info.st_mode) and not entry.name.endswith(SIDECAR_SUFFIX):
            yield Path(entry.path), info


def _read_sidecar(path: Path) -> str:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as f:
            text = f.read(ERROR_TEXT_MAX + 1)
    except OSError as exc:
        return f"(cannot read {path.name}: {exc.strerror or exc})"
    if len(text) > ERROR_TEXT_MAX:
        return text[:ERROR_TEXT_MAX] + "\n[... cut; the whole text is in the file]"
    return text


def list_error_files(
    error_dir: Path, *, recursive: bool = False, limit: int = 200
) -> tuple[list[ErrorFile], bool]:
    """The files in ``error_dir``, newest first, at most ``limit`` of them.

    Sidecars, hidden and staging names are not listed; a subfolder is looked into only
    with ``recursive`` (the watch folder's own structure). Returns the files and whether
    there were more than ``limit``.
    """
    found = sorted(
        _walk(error_dir, recursive=recursive), key=lambda item: item[1].st_mtime, reverse=True
    )
    files = []
    for path, info in found[:limit]:
        sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
        has_sidecar = os.path.lexists(sidecar)
        files.append(
            ErrorFile(
                name=filenames.shown(path.relative_to(error_dir).as_posix()),
                path=filenames.shown(path),
                size=info.st_size,
                mtime=info.st_mtime,
                sidecar=filenames.shown(sidecar) if has_sidecar else None,
                error=_read_sidecar(sidecar) if has_sidecar else "",
            )
        )
    return files, len(found) > limit


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _real_name(error_dir: Path, name: str) -> str:
    """The real name below ``error_dir`` that ``name`` (as listed, maybe escaped) is.

    Each part is taken as it is if such an entry exists, else the entry whose escaped form
    (:func:`pywats.filenames.shown`) it is; ``name`` itself when none matches (so the
    caller says it is not there).
    """
    folder = error_dir
    real: list[str] = []
    for part in name.split("/"):
        if part in ("", ".", "..") or os.path.lexists(folder / part):
            found = part
        else:
            try:
                listed = os.listdir(folder)
            except OSError:
                listed = []
            matches = filenames.matching(part, listed)
            if len(matches) > 1:
                raise RestoreRefusedError(
                    f"{name!r} could be any of {len(matches)} files in {folder}; "
                    "rename them apart first"
                )
            found = matches[0] if matches else part
        real.append(found)
        folder = folder / found
    return "/".join(real)


def _source_of(error_dir: Path, name: str, *, recursive: bool) -> tuple[Path, PurePosixPath]:
    if "\0" not in name:
        name = _real_name(error_dir, name)
    relative = PurePosixPath(name)
    if (
        not name
        or "\0" in name
        or relative.is_absolute()
        or any(part in ("", ".", "..") for part in name.split("/"))
    ):
        raise RestoreRefusedError(f"{name!r} is not a name in the error folder {error_dir}")
    if len(relative.parts) > 1 and not recursive:
        raise RestoreRefusedError(
            f"{name!r} is in a subfolder of {error_dir}, but this watch folder is not recursive"
        )
    if relative.name.endswith(SIDECAR_SUFFIX) or _is_temporary(relative.name):
        raise RestoreRefusedError(f"{name!r} is not a file that was rejected (a sidecar?)")
    source = error_dir.joinpath(*relative.parts)
    # Every folder on the way must really be below the error folder: a symlink there
    # could lead anywhere.
    if not _inside(os.path.realpath(source.parent), os.path.realpath(error_dir)):
        raise RestoreRefusedError(f"{name!r} leads out of the error folder {error_dir}")
    try:
        info = os.lstat(source)
    except FileNotFoundError:
        raise ErrorFileNotFoundError(f"no file {name!r} in the error folder {error_dir}") from None
    if not stat.S_ISREG(info.st_mode):
        raise RestoreRefusedError(f"{name!r} in {error_dir} is not a regular file")
    return source, relative


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def _rename_noreplace(source: Path, target: Path) -> None:
    """``rename(2)`` that fails with :class:`FileExistsError` instead of replacing.

    Linux's ``renameat2(RENAME_NOREPLACE)``, so the check and the rename are one step;
    where it is not available, a hard link (which never replaces either) and an unlink.
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
    os.link(source, target)
    os.unlink(source)


def _stage(source: Path, staged: Path) -> None:
    """Make ``staged`` a complete copy of ``source`` (a hard link when the file system can)."""
    try:
        os.link(source, staged)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
            raise
    else:
        return
    # Another file system (or no hard links): a copy, on disk before it gets its name.
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        with open(fd, "wb", closefd=True) as out, source.open("rb") as src:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        os.unlink(staged)
        raise


def restore_error_file(error_dir: Path, watch: Path, name: str, *, recursive: bool = False) -> Path:
    """Move the error folder's file ``name`` back into ``watch``; returns its new path.

    Its sidecar is removed once the file is back (it explained a failure that is fixed;
    if the file fails again it gets a new one).

    Raises:
        RestoreRefusedError: ``name`` is not one of the error folder's files.
        ErrorFileNotFoundError: no such file (any more).
        NameTakenError: the watch folder has a file (or anything) of that name.
        OSError: the file system refused (permissions, a full disk); nothing was lost.
    """
    source, relative = _source_of(error_dir, name, recursive=recursive)
    target = watch.joinpath(*relative.parts)
    taken = f"{filenames.shown(target)} exists; it is not overwritten (rename or remove it first)"
    if os.path.lexists(target):
        raise NameTakenError(taken)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(
        f".{filenames.fit(target.name, 1 + len(_STAGING_SUFFIX))}{_STAGING_SUFFIX}"
    )
    if os.path.lexists(staged):
        os.unlink(staged)  # left by a restore that crashed: ours, and never a file yet
    _stage(source, staged)
    try:
        _rename_noreplace(staged, target)
    except FileExistsError:
        os.unlink(staged)
        raise NameTakenError(taken) from None
    except BaseException:
        os.unlink(staged)
        raise
    fsync_dir(target.parent)
    # Durable in the watch folder: now it may leave the error folder.
    os.unlink(source)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(source.with_name(source.name + SIDECAR_SUFFIX))
    fsync_dir(source.parent)
    return target
