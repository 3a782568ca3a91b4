"""The files a watch folder could not convert: list them with their reasons, move one back.

A file no converter could read is moved to its entry's error folder with
``<name>.error.txt`` beside it (:func:`pywats.postaction.reject_file`), together with its
**companions** when its converter names any (Klippel's result folder beside its header,
:func:`pywats.postaction.reject_group`). Once the cause is fixed (a converter's
arguments, a new converter version, the equipment's setup), an operator moves the file
back into the watch folder and it is converted again. These are plain, synchronous
file-system functions (the service runs them in a worker thread):

- :func:`list_error_files`: the error folder's files, newest first, each with the text of
  its sidecar and the companions beside it (which are not listed as files of their own).
- :func:`restore_error_file`: move one back, with its companions. It refuses any name
  that would leave the error folder (absolute, ``..``, a symlink on the way), anything
  but a regular file, and a group any of whose names is taken in the watch folder: a
  file there is never overwritten, and then nothing is moved.

Moving back is crash-safe in the service's sense (nothing is lost): the companions go
first and the file last, so the watcher sees the file when its group is whole (the
pipeline waits for a file's companions, never for a file). The file gets its name in the
watch folder first (a hidden staging name, then an atomic no-replace rename, so the
watcher sees one ``IN_MOVED_TO`` of a complete file), and only then leaves the error
folder; a crash in between leaves it in both, never in neither. A companion is renamed
(one step, on one file system) or copied to a hidden name, made durable and renamed into
place (across file systems; its original goes once the file is back). If a step fails,
what was moved is moved back; if even that fails, the error says what is where.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import attrs

from pywats import filenames
from pywats.errors import PywatsError
from pywats.pipeline.steps import companions_quietly

# Looked up in this module when called: a test replaces _rename_noreplace here to kill a
# move back at each step.
from pywats.placing import rename_noreplace as _rename_noreplace
from pywats.placing import stage as _stage
from pywats.placing import staging_name

# The folder halves of a group's move are the post-actions' (one copy of each rule).
from pywats.postaction import SIDECAR_SUFFIX, copy_tree_to_temp, fsync_dir, remove_tree

if TYPE_CHECKING:
    from pywats.pipeline.folders import FolderConfig

__all__ = [
    "ERROR_TEXT_MAX",
    "CompanionNames",
    "ErrorFile",
    "ErrorFileNotFoundError",
    "NameTakenError",
    "RestoreIncompleteError",
    "RestoreRefusedError",
    "Restored",
    "companions_of",
    "list_error_files",
    "restore_error_file",
]

ERROR_TEXT_MAX = 8192
"""Characters of a sidecar's text that a listing carries (the rest is cut, and says so)."""

_STAGING_SUFFIX = ".pywats-restore"
# What the post-actions and a restore leave while they work: not a file of the folder yet.
_TEMPORARY_SUFFIXES = (".pywats-tmp", _STAGING_SUFFIX)

CompanionNames = Callable[[Path], Sequence[str]]
"""The names of a file's companions (entries beside it) from its path: what
:func:`companions_of` makes of a watch folder entry's converter."""


class RestoreRefusedError(PywatsError):
    """The name is not one of the error folder's files (outside it, not a regular file,
    a sidecar): nothing was touched."""


class ErrorFileNotFoundError(PywatsError):
    """No such file in the error folder (moved back or removed already)."""


class NameTakenError(PywatsError):
    """The watch folder already has a file of that name (or of a companion's): it is
    never overwritten, and nothing was moved."""


class RestoreIncompleteError(PywatsError):
    """A move back failed halfway and could not be undone in full; the message says
    where each part of the group is now."""


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
    companions: tuple[str, ...] = ()
    """Its companions in the error folder (paths below it, escaped like ``name``), which
    :func:`restore_error_file` moves back with it; they are not listed on their own."""


@attrs.frozen
class Restored:
    """What a move back did: the file's new path and its companions'."""

    path: Path
    """The file's path in the watch folder."""
    companions: tuple[Path, ...] = ()
    """Its companions' paths in the watch folder, in the order they were moved (before
    the file)."""


def companions_of(folder: FolderConfig) -> Callable[[Path], tuple[str, ...]]:
    """The companions ``folder``'s converter names for a file its patterns take (none for
    any other file, and none when the converter fails to name them)."""
    wants = folder.watch_config().wants
    converter = folder.converter

    def names(path: Path) -> tuple[str, ...]:
        return companions_quietly(converter, path) if wants(path.name) else ()

    return names


def _companion_names(companions: CompanionNames | None, path: Path) -> tuple[str, ...]:
    """The names ``companions`` gives for ``path``, each a plain name beside it (anything
    else is not a companion: a restore never reaches outside the file's folder)."""
    if companions is None:
        return ()
    names: list[str] = []
    for name in companions(path):
        if (
            name in ("", ".", "..", path.name)
            or "/" in name
            or "\0" in name
            or name.endswith(SIDECAR_SUFFIX)
            or _is_temporary(name)
        ):
            continue
        if name not in names:
            names.append(name)
    return tuple(names)


def _is_temporary(name: str) -> bool:
    return name.startswith(".") or name.endswith(_TEMPORARY_SUFFIXES)


def _walk(
    directory: Path, *, recursive: bool, companions: CompanionNames | None
) -> Iterator[tuple[Path, os.stat_result, tuple[str, ...]]]:
    """Each file of ``directory`` (below it with ``recursive``) with the names of its
    companions there; a companion is not a file of its own, nor looked into."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    here: dict[str, tuple[Path, os.stat_result]] = {}
    for entry in entries:
        if _is_temporary(entry.name):
            continue
        try:
            here[entry.name] = (Path(entry.path), entry.stat(follow_symlinks=False))
        except FileNotFoundError:
            continue
    files: list[tuple[Path, os.stat_result, tuple[str, ...]]] = []
    taken: set[str] = set()
    for name, (path, info) in here.items():
        if stat.S_ISREG(info.st_mode) and not name.endswith(SIDECAR_SUFFIX):
            group = tuple(c for c in _companion_names(companions, path) if c in here)
            files.append((path, info, group))
            taken.update(group)
    for path, info, group in files:
        if path.name not in taken:
            yield path, info, group
    if recursive:
        # Subfolders mirror a recursive watch folder's; a companion folder (or any folder
        # of a folder that is not recursive) is not a file to move back on its own.
        for name, (path, info) in here.items():
            if stat.S_ISDIR(info.st_mode) and name not in taken:
                yield from _walk(path, recursive=True, companions=companions)


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
    error_dir: Path,
    *,
    recursive: bool = False,
    limit: int = 200,
    companions: CompanionNames | None = None,
) -> tuple[list[ErrorFile], bool]:
    """The files in ``error_dir``, newest first, at most ``limit`` of them.

    Sidecars, hidden and staging names are not listed; a subfolder is looked into only
    with ``recursive`` (the watch folder's own structure). With ``companions`` (see
    :func:`companions_of`), each file's companions are listed with it and not as files
    of their own. Returns the files and whether there were more than ``limit``.
    """
    found = sorted(
        _walk(error_dir, recursive=recursive, companions=companions),
        key=lambda item: item[1].st_mtime,
        reverse=True,
    )
    files = []
    for path, info, group in found[:limit]:
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
                companions=tuple(
                    filenames.shown((path.parent / c).relative_to(error_dir).as_posix())
                    for c in group
                ),
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


def _staging_name(target: Path) -> Path:
    """The hidden name ``target`` is made under before it gets its own."""
    return staging_name(target, _STAGING_SUFFIX)


def _remove(path: Path, *, is_dir: bool) -> None:
    if is_dir:
        remove_tree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


@attrs.frozen
class _Moved:
    """A companion with its name in the watch folder."""

    source: Path
    """Its name in the error folder."""
    target: Path
    is_dir: bool
    copied: bool
    """Copied (across file systems): ``source`` is still there, and goes once the file is
    back. Otherwise it was renamed, and ``source`` is gone."""


def _move_companion(source: Path, target: Path) -> _Moved:
    """Give companion ``source`` (a file, a folder or a symlink) the name ``target``.

    Raises:
        FileExistsError: ``target`` is taken (nothing was moved).
        OSError: the file system refused (nothing was moved).
    """
    is_dir = stat.S_ISDIR(os.lstat(source).st_mode)
    try:
        _rename_noreplace(source, target, is_dir=is_dir)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    else:
        return _Moved(source, target, is_dir, copied=False)
    # Another file system: a complete, durable copy under a hidden name, then its name.
    kind = os.lstat(source).st_mode
    if not (stat.S_ISDIR(kind) or stat.S_ISREG(kind) or stat.S_ISLNK(kind)):
        raise OSError(
            errno.EXDEV, "a special file cannot be copied to another file system", str(source)
        )
    if is_dir:
        staged = copy_tree_to_temp(source, target.parent)
    else:
        staged = _staging_name(target)
        _remove(staged, is_dir=False)  # left by a restore that crashed: ours
        if stat.S_ISLNK(kind):
            os.symlink(os.readlink(source), staged)
        else:
            _stage(source, staged)
    try:
        _rename_noreplace(staged, target, is_dir=is_dir)
    except BaseException:
        _remove(staged, is_dir=is_dir)
        raise
    return _Moved(source, target, is_dir, copied=True)


def _undo(moved: Sequence[_Moved]) -> list[str]:
    """Put the companions moved so far back where they were (a copy is removed, a rename
    is reversed); what could not be put back, said one line each."""
    left: list[str] = []
    for item in reversed(moved):
        try:
            if item.copied:
                _remove(item.target, is_dir=item.is_dir)
            else:
                _rename_noreplace(item.target, item.source, is_dir=item.is_dir)
        except OSError as exc:
            left.append(
                f"{filenames.shown(item.target)} (from {filenames.shown(item.source)}):"
                f" {exc.strerror or exc}"
            )
    return left


def _taken(paths: Sequence[Path]) -> str:
    shown = ", ".join(filenames.shown(p) for p in paths)
    what = "exists" if len(paths) == 1 else "exist"
    return (
        f"{shown} {what}; nothing was moved, and nothing is overwritten (rename or remove it first)"
    )


def _place_file(source: Path, target: Path) -> None:
    """Give the file ``source`` the name ``target`` through a hidden staging name (its
    name in the error folder stays until :func:`restore_error_file` removes it)."""
    staged = _staging_name(target)
    if os.path.lexists(staged):
        os.unlink(staged)  # left by a restore that crashed: ours, and never a file yet
    _stage(source, staged)
    try:
        _rename_noreplace(staged, target)
    except FileExistsError:
        os.unlink(staged)
        raise NameTakenError(_taken([target])) from None
    except BaseException:
        os.unlink(staged)
        raise


def restore_error_file(
    error_dir: Path,
    watch: Path,
    name: str,
    *,
    recursive: bool = False,
    companions: CompanionNames | None = None,
) -> Restored:
    """Move the error folder's file ``name`` back into ``watch``, with its companions.

    ``companions`` (see :func:`companions_of`) names them; those the error folder holds
    beside the file go back first, under the names they have there, and the file last,
    so the watcher takes it with its group whole. Its sidecar is removed once the file is
    back (it explained a failure that is fixed; if the file fails again it gets a new one).

    Raises:
        RestoreRefusedError: ``name`` is not one of the error folder's files.
        ErrorFileNotFoundError: no such file (any more).
        NameTakenError: the watch folder has something of the file's or a companion's
            name; nothing was moved.
        RestoreIncompleteError: a step failed and what was moved could not all be moved
            back, or the group is back but its old names could not all be removed; the
            message says what is where.
        OSError: the file system refused (permissions, a full disk); whatever was moved
            was moved back, nothing was lost.
    """
    source, relative = _source_of(error_dir, name, recursive=recursive)
    target = watch.joinpath(*relative.parts)
    group = [c for c in _companion_names(companions, source) if os.path.lexists(source.parent / c)]
    targets = [target.parent / c for c in group]
    taken = [t for t in [*targets, target] if os.path.lexists(t)]
    if taken:
        raise NameTakenError(_taken(taken))
    target.parent.mkdir(parents=True, exist_ok=True)
    moved: list[_Moved] = []
    try:
        for companion, place in zip(group, targets, strict=True):
            try:
                moved.append(_move_companion(source.parent / companion, place))
            except FileExistsError:
                raise NameTakenError(_taken([place])) from None
        if moved:
            fsync_dir(target.parent)  # the companions are there before the file is
        _place_file(source, target)
        fsync_dir(target.parent)
    except BaseException as exc:
        left = _undo(moved)
        if left:
            with contextlib.suppress(OSError):
                fsync_dir(target.parent)
            raise RestoreIncompleteError(
                f"moving {filenames.shown(source)} back failed ({_why(exc)}), and these"
                f" companions could not be put back into {filenames.shown(source.parent)}:"
                f" {'; '.join(left)}; the file and its other companions are still in the"
                " error folder"
            ) from exc
        with contextlib.suppress(OSError):
            fsync_dir(target.parent)
        raise
    # Durable in the watch folder: now the group may leave the error folder, the file
    # (and its sidecar) last.
    stuck: list[str] = []
    for item in moved:
        if item.copied:
            try:
                _remove(item.source, is_dir=item.is_dir)
            except OSError as exc:
                stuck.append(f"{filenames.shown(item.source)}: {exc.strerror or exc}")
    for old in (source, source.with_name(source.name + SIDECAR_SUFFIX)):
        try:
            os.unlink(old)
        except FileNotFoundError:
            pass
        except OSError as exc:
            stuck.append(f"{filenames.shown(old)}: {exc.strerror or exc}")
    with contextlib.suppress(OSError):
        fsync_dir(source.parent)
    if stuck:
        raise RestoreIncompleteError(
            f"{filenames.shown(target)} and its companions are back in the watch folder (and"
            f" are converted again), but these could not be removed from the error folder:"
            f" {'; '.join(stuck)}; remove them by hand"
        )
    return Restored(target, tuple(t.target for t in moved))


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return str(exc.strerror or exc)
    return str(exc) or type(exc).__name__
