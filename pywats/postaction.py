"""Reading source files and moving, deleting or rejecting them durably.

These are the file-system halves of the conversion pipeline (:mod:`pywats.pipeline`). They
are synchronous and run in worker threads (``trio.to_thread.run_sync``).

Rules every function here keeps:

* **Never overwrite.** A name already taken in the destination gets a number before its
  extension (``result.json`` -> ``result.1.json`` -> ``result.2.json``). Hard links
  (``link`` fails with ``EEXIST`` when the name is taken) make the check and the move one
  atomic step, so two workers moving two ``result.json`` at once cannot clobber each other.
  On file systems without hard links (FAT, some SMB mounts, or another user's file under
  ``fs.protected_hardlinks``) a check-then-``rename`` under a process-wide lock is used.
* **Never lose.** The new name exists (and its directory entry is on disk, ``fsync`` of the
  directory) before the old one is removed. Across file systems (``EXDEV``) the file is
  copied to a hidden temporary name in the destination, ``fsync``-ed, linked to its final
  name, and only then is the source unlinked. A power cut can leave the file in both
  places (the pipeline's source-hash check then recognises the copy still in the watch
  folder and does not queue it twice) or a hidden ``.*.pywats-tmp`` copy, never neither.
* **Touch only what was read.** Callers pass the :class:`FileSig` (size, mtime, inode) the
  file had when it was read; if the file has changed since, :class:`SourceChanged` is
  raised and nothing is touched, so content that was never converted is never moved away.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import attrs

__all__ = [
    "SIDECAR_SUFFIX",
    "FileSig",
    "Placed",
    "SourceChanged",
    "SourceData",
    "TooBig",
    "delete_file",
    "ensure_dir",
    "file_sig",
    "fsync_dir",
    "move_file",
    "move_files",
    "numbered",
    "read_source",
    "reject_file",
]

SIDECAR_SUFFIX = ".error.txt"
"""Appended to a rejected file's name to name the text file that says why."""

_TEMP_SUFFIX = ".pywats-tmp"

# link() errors that mean "this file system (or this file) cannot be hard-linked": fall back
# to rename. EPERM also comes from fs.protected_hardlinks for a file another user owns.
_NO_LINK = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS})

# Serialises check-then-rename, the fallback where link() is not available, so our own
# workers cannot pick the same free name at once.
_rename_lock = threading.Lock()


class FileSig(NamedTuple):
    """What "the same file" means for post-actions: size, mtime and inode."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileSig:
        """The signature of a stat result."""
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)


def file_sig(path: Path) -> FileSig | None:
    """The signature of the regular file at ``path``, or None if it is gone or not one."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return FileSig.of(st)


class SourceChanged(Exception):
    """The file is not the one that was read (rewritten or replaced), or it is gone."""

    def __init__(self, path: Path, *, gone: bool) -> None:
        self.path = path
        self.gone = gone
        super().__init__(f"{path} is gone" if gone else f"{path} changed since it was read")


class TooBig(Exception):
    """The file is larger than allowed; it was not read."""

    def __init__(self, size: int, sig: FileSig) -> None:
        self.size = size
        self.sig = sig
        super().__init__(f"{size} bytes")


@attrs.frozen
class SourceData:
    """A source file's content and what identifies it."""

    data: bytes = attrs.field(repr=False)
    sha256: str
    size: int
    mtime: float
    sig: FileSig


def read_source(path: Path, max_bytes: int) -> SourceData | None:
    """Read a regular file whole and hash it; None if it vanished (or is not a file now).

    Raises:
        TooBig: the file has more than ``max_bytes`` bytes (it is not read; a file that
            grows past the limit while being read is refused the same way).
        OSError: the file exists but cannot be opened or read.
    """
    sig = file_sig(path)
    if sig is None:
        return None
    if sig.size > max_bytes:
        raise TooBig(sig.size, sig)
    try:
        # O_NOFOLLOW: a symlink swapped in since the lstat is not followed out of the
        # folder. O_NONBLOCK: neither is a FIFO swapped in (open would wait for a writer).
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with open(fd, "rb", closefd=True) as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise TooBig(len(data), FileSig.of(st))
    # The signature after reading: a writer that appended meanwhile has changed it, so
    # the post-action will see the difference and leave the file for another round.
    return SourceData(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        mtime=st.st_mtime,
        sig=FileSig.of(st),
    )


def fsync_dir(directory: Path) -> None:
    """Make the entries of ``directory`` (names created, renamed, removed) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(directory: Path) -> None:
    """Create ``directory`` and missing parents, each one durably (its parent fsync-ed)."""
    missing: list[Path] = []
    current = directory
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                raise NotADirectoryError(
                    errno.ENOTDIR, "exists and is not a folder", str(folder)
                ) from None
            continue  # created by someone else meanwhile: fine
        fsync_dir(folder.parent)


def numbered(name: str, n: int) -> str:
    """``name`` with ``.n`` before its extension (``a.json``, 2 -> ``a.2.json``); n=0: as is."""
    if n == 0:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return f"{name}.{n}"
    return f"{stem}.{n}.{ext}"


def _check_unchanged(path: Path, expect: FileSig | None) -> None:
    if expect is None:
        return
    current = file_sig(path)
    if current != expect:
        raise SourceChanged(path, gone=current is None)


def _placed_before(source: Path, source_st: os.stat_result, target: Path) -> bool:
    """Whether ``target`` is ``source`` already placed by an interrupted move.

    True for the same inode (a hard link made by the move), or for a copy made across
    file systems: same size, same mtime (the copy keeps it) and the same bytes. A file
    that merely has the same name, or the same bytes written at another time, is not.
    """
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return False
    if (st.st_dev, st.st_ino) == (source_st.st_dev, source_st.st_ino):
        return True
    if not stat.S_ISREG(st.st_mode) or st.st_size != source_st.st_size:
        return False
    if st.st_mtime_ns != source_st.st_mtime_ns:
        return False
    try:
        return _same_bytes(source, target)
    except OSError:
        return False


def _same_bytes(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            chunk = fa.read(1024 * 1024)
            if chunk != fb.read(1024 * 1024):
                return False
            if not chunk:
                return True


def _link_no_clobber(source: Path, target: Path) -> bool:
    """Give ``source`` the new name ``target``; True if ``source`` is now gone (renamed).

    Raises FileExistsError when ``target`` is taken, OSError(EXDEV) across file systems.
    """
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
    else:
        return False
    with _rename_lock:
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "exists", str(target))
        os.rename(source, target)
    return True


def _copy_to_temp(source: Path, directory: Path) -> Path:
    """A durable copy of ``source`` under a hidden temporary name in ``directory``."""
    temp = directory / f".{source.name}.{uuid.uuid4().hex[:12]}{_TEMP_SUFFIX}"
    try:
        with open(source, "rb") as src, open(temp, "xb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
            dst.flush()
            os.fsync(dst.fileno())
        # Keep the mtime: it is when the tester wrote the result.
        shutil.copystat(source, temp)
    except BaseException:
        _unlink_quietly(temp)
        raise
    return temp


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _create_exclusive(path: Path, text: str) -> bool:
    """Write ``text`` to a new file ``path`` durably; False if the name is taken."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        return False
    try:
        with open(fd, "w", encoding="utf-8", closefd=True) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        _unlink_quietly(path)
        raise
    return True


@attrs.frozen
class Placed:
    """Where a file went: its new path, and the sidecar written next to it (if any)."""

    path: Path
    sidecar: Path | None = None


@attrs.frozen
class _Linked:
    """A file with its new name made (not yet durable) and its old name still there."""

    placed: Placed
    source: Path
    staged: Path
    renamed: bool


def _place(
    source: Path,
    directory: Path,
    name: str,
    *,
    expect: FileSig | None,
    sidecar_text: str | None,
) -> Placed:
    linked = _link(source, directory, name, expect=expect, sidecar_text=sidecar_text)
    # The new name is on disk before the old one goes.
    fsync_dir(directory)
    _finish(linked)
    return linked.placed


def _finish(linked: _Linked) -> None:
    """Remove the old name (and a temporary copy's name) once the new one is durable."""
    source, staged = linked.source, linked.staged
    if staged is not source and not linked.renamed:
        os.unlink(staged)  # the copy's temporary name; a leftover one would be harmless
    if staged is not source or not linked.renamed:
        # Removed by someone else meanwhile is fine: our copy is safe.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(source)
    # The removal of the old name is not fsynced: if a power cut undoes it, the file is
    # back in the watch folder, recognised (its hash is recorded, or it fails the same
    # way again), and its move is finished then (see _placed_before).


def _link(
    source: Path,
    directory: Path,
    name: str,
    *,
    expect: FileSig | None,
    sidecar_text: str | None,
) -> _Linked:
    ensure_dir(directory)
    _check_unchanged(source, expect)
    source_st = os.lstat(source)
    staged = source  # what gets linked: the source, or a copy on the target's file system
    renamed = False
    sidecar: Path | None = None
    n = 0
    try:
        while True:
            candidate = numbered(name, n)
            target = directory / candidate
            if staged is source and _placed_before(source, source_st, target):
                # An earlier move of this very file was cut off (a crash or kill) after
                # its new name was made and before the old one went: finish that move
                # rather than keep a second copy under a numbered name.
                side = directory / f"{candidate}{SIDECAR_SUFFIX}"
                if sidecar_text is not None and not os.path.lexists(side):
                    _create_exclusive(side, sidecar_text)
                placed = Placed(target, side if sidecar_text is not None else None)
                return _Linked(placed, source, source, renamed=False)
            if sidecar_text is not None and sidecar is None:
                # Both names must be free. The sidecar is claimed and written (fsync-ed)
                # first, so a file in the error folder always has its explanation beside
                # it; the fsync of the folder below makes both names durable.
                side = directory / f"{candidate}{SIDECAR_SUFFIX}"
                if os.path.lexists(target) or not _create_exclusive(side, sidecar_text):
                    n += 1
                    continue
                sidecar = side
            try:
                renamed = _link_no_clobber(staged, target)
            except FileExistsError:
                if sidecar is not None:
                    os.unlink(sidecar)
                    sidecar = None
                n += 1
                continue
            except OSError as exc:
                if exc.errno == errno.EXDEV and staged is source:
                    staged = _copy_to_temp(source, directory)
                    continue  # the same candidate, now from the copy
                raise
            break
    except BaseException:
        if sidecar is not None:
            _unlink_quietly(sidecar)
        if staged is not source:
            _unlink_quietly(staged)
        raise
    return _Linked(Placed(target, sidecar), source, staged, renamed)


def move_file(
    source: Path, directory: Path, name: str | None = None, *, expect: FileSig | None = None
) -> Path:
    """Move ``source`` into ``directory`` (created if needed) under a free name; return it.

    The name is ``name`` (default: the source's) or a numbered variant of it. Works across
    file systems. With ``expect``, raises :class:`SourceChanged` (touching nothing) if the
    file no longer has that signature.
    """
    return _place(source, directory, name or source.name, expect=expect, sidecar_text=None).path


def move_files(
    jobs: Sequence[tuple[Path, Path, FileSig | None]],
) -> list[Path | Exception]:
    """:func:`move_file` for many ``(source, directory, expect)``: one fsync per folder.

    Every new name is made first, then each target folder is fsynced once, then the old
    names are removed. Returns, in order, each file's new path or what went wrong with it
    (:class:`SourceChanged`, an ``OSError``); one file failing does not stop the others.
    """
    linked: list[_Linked | Exception] = []
    for source, directory, expect in jobs:
        try:
            linked.append(_link(source, directory, source.name, expect=expect, sidecar_text=None))
        except Exception as exc:
            linked.append(exc)
    unsynced: dict[Path, OSError] = {}
    for folder in dict.fromkeys(i.placed.path.parent for i in linked if isinstance(i, _Linked)):
        try:
            fsync_dir(folder)
        except OSError as exc:
            unsynced[folder] = exc
    out: list[Path | Exception] = []
    for item in linked:
        if isinstance(item, Exception):
            out.append(item)
        elif item.placed.path.parent in unsynced:
            # The new name may not survive a power cut: keep the old one too. The file is
            # recognised as queued next time and its move finished then.
            out.append(unsynced[item.placed.path.parent])
        else:
            try:
                _finish(item)
            except OSError as exc:
                out.append(exc)
            else:
                out.append(item.placed.path)
    return out


def reject_file(
    source: Path,
    directory: Path,
    text: str,
    name: str | None = None,
    *,
    expect: FileSig | None = None,
) -> Placed:
    """Move ``source`` into the error folder ``directory`` with ``<name>.error.txt`` beside it.

    The sidecar holds ``text``; both names are free (a clash numbers both alike:
    ``a.1.json`` and ``a.1.json.error.txt``). The sidecar is written first, so a crash
    leaves at worst an explanation without its file (the file is still in the watch
    folder and is looked at again), never a file without its explanation.
    """
    return _place(source, directory, name or source.name, expect=expect, sidecar_text=text)


def delete_file(source: Path, *, expect: FileSig | None = None) -> None:
    """Remove ``source`` durably (``SourceChanged`` if it is not the file that was read)."""
    _check_unchanged(source, expect)
    os.unlink(source)
    fsync_dir(source.parent)
