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

A file may have **companions** (files or folders beside it that make one unit with it:
Klippel's result folder beside its header). :func:`companion_state` and
:func:`read_companions` look at and read them; :func:`move_group`, :func:`reject_group`
and :func:`delete_group` file them together with their file, under one number
(``X.txt`` and ``X/`` become ``X.1.txt`` and ``X.1/`` when the names are taken), and in
an order that lets a restart finish an interrupted move: the file's old name is removed
last, so while anything of the group is left in the watch folder, so is the file, and
filing it again moves what is left and skips (or finishes) what was moved. A folder is
renamed on one file system, and across file systems copied to a hidden temporary name,
``fsync``-ed, renamed into place, and only then removed from the watch folder (renamed
to a hidden ``.<name>.pywats-gone`` first, so a removal cut short leaves only a hidden
folder, which is never taken and may be deleted).
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

from pywats import filenames

__all__ = [
    "SIDECAR_SUFFIX",
    "CompanionChanged",
    "Companions",
    "CompanionsTooLarge",
    "FileSig",
    "Member",
    "Placed",
    "SourceChanged",
    "SourceData",
    "TooBig",
    "companion_name",
    "companion_state",
    "copy_tree_to_temp",
    "delete_file",
    "delete_group",
    "ensure_dir",
    "file_sig",
    "fsync_dir",
    "move_file",
    "move_files",
    "move_group",
    "numbered",
    "read_companions",
    "read_source",
    "reject_file",
    "reject_group",
    "remove_tree",
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
    temp = directory / _temp_name(source.name)
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


def _temp_name(name: str) -> str:
    """A hidden, unique temporary name for a copy of ``name`` (short enough for any name)."""
    tail = f".{uuid.uuid4().hex[:12]}{_TEMP_SUFFIX}"
    return f".{filenames.fit(name, 1 + len(tail))}{tail}"


def _candidate(name: str, n: int, reserve: int = 0) -> str:
    """``numbered(name, n)``, its stem shortened if it and ``reserve`` more bytes (a
    sidecar's suffix) would pass the name limit: a 255-byte name still finds a place."""
    number = len(f".{n}") if n else 0
    return numbered(filenames.fit(name, reserve + number), n)


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
            # A name that is not UTF-8 is written escaped (\\xNN): the sidecar is for people.
            f.write(filenames.escape_text(text))
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
    number: int = 0
    """The ``n`` of its new name (:func:`numbered`), which its companions' names share."""


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
    companions: Sequence[str] = (),
) -> _Linked:
    """Give ``source`` its new name in ``directory`` (the old name stays, see _finish).

    With ``companions``, the number chosen also leaves their names free
    (:func:`companion_name`), so the file and its companions are filed under one number.
    """
    ensure_dir(directory)
    _check_unchanged(source, expect)
    source_st = os.lstat(source)
    staged = source  # what gets linked: the source, or a copy on the target's file system
    renamed = False
    sidecar: Path | None = None
    n = 0
    reserve = len(SIDECAR_SUFFIX.encode()) if sidecar_text is not None else 0
    try:
        while True:
            candidate = _candidate(name, n, reserve)
            target = directory / candidate
            if staged is source and _placed_before(source, source_st, target):
                # An earlier move of this very file was cut off (a crash or kill) after
                # its new name was made and before the old one went: finish that move
                # rather than keep a second copy under a numbered name.
                side = directory / f"{candidate}{SIDECAR_SUFFIX}"
                if sidecar_text is not None and not os.path.lexists(side):
                    _create_exclusive(side, sidecar_text)
                placed = Placed(target, side if sidecar_text is not None else None)
                return _Linked(placed, source, source, renamed=False, number=n)
            if any(os.path.lexists(directory / companion_name(c, name, n)) for c in companions):
                n += 1  # a companion's name is taken: the whole group takes the next number
                continue
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
    return _Linked(Placed(target, sidecar), source, staged, renamed, number=n)


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
    return _place(
        source, directory, name or source.name, expect=expect, sidecar_text=_told(text, source)
    )


def _told(text: str, source: Path) -> str:
    """The sidecar's ``text`` with the file's path in its escaped one-line form
    (:func:`pywats.filenames.shown`): a newline in a name cannot break the sidecar's
    lines, and a name that is not UTF-8 shows its bytes as ``\\xNN``."""
    path = str(source)
    shown = filenames.shown(path)
    return text if shown == path else text.replace(path, shown)


def delete_file(source: Path, *, expect: FileSig | None = None) -> None:
    """Remove ``source`` durably (``SourceChanged`` if it is not the file that was read)."""
    _check_unchanged(source, expect)
    os.unlink(source)
    fsync_dir(source.parent)


# --- Companions: files and folders filed together with the file they belong to ----------

_GONE_SUFFIX = ".pywats-gone"


class Member(NamedTuple):
    """One entry of a file's companions: a file, a folder, or anything else (a symlink)."""

    rel: str
    """Its path relative to the folder of the file it belongs with, ``/``-separated."""
    kind: str
    """``file``, ``dir`` or ``other`` (symlinks and special files: moved along, not read)."""
    size: int
    mtime_ns: int
    inode: int


@attrs.frozen
class Companions:
    """What a file's companions were when looked at: every member, and the ones missing.

    Two looks are equal when nothing was added, removed, resized or touched in between,
    which is what "still the same" means for reading them and for filing them away.
    """

    folder: Path
    """The folder of the file they belong with (and theirs)."""
    names: tuple[str, ...]
    """The companions' names, as the converter named them."""
    members: tuple[Member, ...]
    """Every entry under every companion that exists, sorted by ``rel``."""
    missing: tuple[str, ...]
    """The companions that do not exist."""

    @property
    def files(self) -> int:
        """How many regular files the companions hold."""
        return sum(1 for m in self.members if m.kind == "file")

    @property
    def size(self) -> int:
        """The bytes of every regular file together."""
        return sum(m.size for m in self.members if m.kind == "file")

    @property
    def newest_mtime_ns(self) -> int:
        """The latest modification time of any member (0 when there is none)."""
        return max((m.mtime_ns for m in self.members), default=0)


class CompanionsTooLarge(Exception):
    """The companions hold more members or bytes than allowed; they were not read."""


class CompanionChanged(Exception):
    """A companion changed while it was being read; look again later."""


def companion_name(companion: str, name: str, n: int) -> str:
    """The name ``companion`` is filed under when the file it belongs with is filed as
    ``numbered(name, n)``: they keep their common start (``X.txt`` and ``X/`` become
    ``X.1.txt`` and ``X.1/``), so they still belong together in the done folder."""
    if n == 0:
        return companion
    stem, dot, _ = name.rpartition(".")
    prefix = stem if dot and stem else name
    if companion.startswith(prefix):
        return f"{prefix}.{n}{companion[len(prefix) :]}"
    return numbered(companion, n)


def _member(rel: str, st: os.stat_result) -> Member:
    if stat.S_ISREG(st.st_mode):
        kind = "file"
    elif stat.S_ISDIR(st.st_mode):
        kind = "dir"
    else:
        kind = "other"
    return Member(rel, kind, st.st_size if kind == "file" else 0, st.st_mtime_ns, st.st_ino)


def companion_state(folder: Path, names: Sequence[str], max_members: int) -> Companions:
    """Look at the companions ``names`` in ``folder`` (no symlink is followed).

    Raises:
        CompanionsTooLarge: they hold more than ``max_members`` files and folders (the
            listing stops there).
        OSError: a companion cannot be listed.
    """
    members: list[Member] = []
    missing: list[str] = []
    for name in names:
        path = folder / name
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            missing.append(name)
            continue
        members.append(_member(name, st))
        if not stat.S_ISDIR(st.st_mode):
            continue
        stack = [(path, name)]
        while stack:
            directory, rel = stack.pop()
            try:
                listing = os.scandir(directory)
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed (or replaced) while we looked: the next look differs
            with listing as entries:
                for entry in entries:
                    try:
                        entry_st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # removed while we looked: the next look differs anyway
                    member = _member(f"{rel}/{entry.name}", entry_st)
                    members.append(member)
                    if len(members) > max_members:
                        raise CompanionsTooLarge(
                            f"its companions hold more than {max_members} files and folders"
                        )
                    if member.kind == "dir":
                        stack.append((Path(entry.path), member.rel))
    members.sort(key=lambda m: m.rel)
    return Companions(folder, tuple(names), tuple(members), tuple(missing))


def read_companions(state: Companions, max_bytes: int) -> dict[str, bytes]:
    """The bytes of every regular file of ``state``, keyed by ``Member.rel``.

    Raises:
        CompanionsTooLarge: the files hold more than ``max_bytes`` together (not read).
        CompanionChanged: a file is not what ``state`` saw (rewritten, gone, replaced).
        OSError: a file cannot be opened or read (permissions).
    """
    total = state.size
    if total > max_bytes:
        raise CompanionsTooLarge(
            f"its companions hold {total} bytes, more than the limit ({max_bytes})"
        )
    out: dict[str, bytes] = {}
    for member in state.members:
        if member.kind != "file":
            continue
        path = state.folder / member.rel
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise CompanionChanged(f"{member.rel} is gone") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink swapped in since the listing
                raise CompanionChanged(f"{member.rel} was replaced") from None
            raise
        with open(fd, "rb", closefd=True) as f:
            st = os.fstat(f.fileno())
            if (st.st_size, st.st_mtime_ns, st.st_ino) != (
                member.size,
                member.mtime_ns,
                member.inode,
            ) or not stat.S_ISREG(st.st_mode):
                raise CompanionChanged(f"{member.rel} changed")
            data = f.read(member.size + 1)
        if len(data) != member.size:
            raise CompanionChanged(f"{member.rel} changed while it was read")
        out[member.rel] = data
    return out


def _check_companions(folder: Path, names: Sequence[str], expect: Companions | None) -> None:
    """SourceChanged (naming the first companion that differs) unless they are as read."""
    if expect is None:
        return
    try:
        now = companion_state(folder, names, len(expect.members) + 1)
    except CompanionsTooLarge:
        now = None  # more members than were read: changed
    if now is not None and (now.members, now.missing) == (expect.members, expect.missing):
        return
    changed = names[0] if names else folder.name
    if now is not None:
        before = {m.rel: m for m in expect.members}
        after = {m.rel: m for m in now.members}
        differ = [r for r in sorted(set(before) | set(after)) if before.get(r) != after.get(r)]
        # Name the file that changed, rather than the folder it changed in.
        files = [r for r in differ if (after.get(r) or before[r]).kind != "dir"]
        changed = (files or differ or [changed])[0]
    raise SourceChanged(folder / changed, gone=False)


def _same_tree(a: Path, b: Path) -> bool:
    """Whether folder ``b`` is a complete copy of folder ``a`` (names, sizes, mtimes, bytes)."""
    try:
        left = companion_state(a.parent, [a.name], 1_000_000)
        right = companion_state(b.parent, [b.name], 1_000_000)
    except (CompanionsTooLarge, OSError):
        return False

    def shape(state: Companions, name: str) -> list[tuple[str, str, int, int]]:
        cut = len(name)
        # Folder mtimes are not kept by a copy that fills them; file mtimes are.
        return [
            (m.rel[cut:], m.kind, m.size, m.mtime_ns if m.kind == "file" else 0)
            for m in state.members
        ]

    if shape(left, a.name) != shape(right, b.name):
        return False
    try:
        return all(
            _same_bytes(a.parent / m.rel, b / m.rel[len(a.name) + 1 :])
            for m in left.members
            if m.kind == "file"
        )
    except OSError:
        return False


def _rename_no_clobber(source: Path, target: Path) -> None:
    """Rename ``source`` (a folder) to ``target``; FileExistsError if ``target`` exists.

    ``rename`` would replace an empty folder (and fails on a non-empty one), so the check
    and the rename run under the process-wide lock, as the file fallback does.
    """
    with _rename_lock:
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "exists", str(target))
        try:
            os.rename(source, target)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise FileExistsError(errno.EEXIST, "exists", str(target)) from None
            raise


def copy_tree_to_temp(source: Path, directory: Path) -> Path:
    """A durable copy of folder ``source`` under a hidden temporary name in ``directory``."""
    temp = directory / _temp_name(source.name)
    try:
        os.mkdir(temp)
        folders = [(source, temp)]
        stack = [(source, temp)]
        while stack:
            src, dst = stack.pop()
            with os.scandir(src) as entries:
                for entry in entries:
                    target = dst / entry.name
                    if entry.is_symlink():
                        os.symlink(os.readlink(entry.path), target)
                    elif entry.is_dir(follow_symlinks=False):
                        os.mkdir(target)
                        folders.append((Path(entry.path), target))
                        stack.append((Path(entry.path), target))
                    elif entry.is_file(follow_symlinks=False):
                        with open(entry.path, "rb") as fsrc, open(target, "xb") as fdst:
                            shutil.copyfileobj(fsrc, fdst, 1024 * 1024)
                            fdst.flush()
                            os.fsync(fdst.fileno())
                        shutil.copystat(entry.path, target)  # keep the tester's mtime
                    # FIFOs, sockets, devices: nothing to copy
        for src, dst in reversed(folders):  # deepest first: their entries are all made
            fsync_dir(dst)
            shutil.copystat(src, dst)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return temp


def remove_tree(path: Path) -> None:
    """Remove folder ``path``: first renamed to a hidden name, so a removal cut short by a
    crash leaves a hidden folder (never taken), not a half folder under its real name."""
    hidden = path.with_name(f".{filenames.fit(path.name, 1 + len(_GONE_SUFFIX))}{_GONE_SUFFIX}")
    if os.path.lexists(hidden):
        shutil.rmtree(hidden)  # what an earlier removal of this name left behind
    os.rename(path, hidden)
    shutil.rmtree(hidden)


@attrs.frozen
class _MovedCompanion:
    """A companion with its new name made; ``original`` is removed once that is durable."""

    target: Path
    original: Path | None
    is_dir: bool


def _move_companion(source: Path, directory: Path, name: str) -> _MovedCompanion:
    """Give companion ``source`` (file or folder) the name ``name`` in ``directory``, or a
    numbered one if that is taken by something else. Folders on one file system are
    renamed at once; across file systems (and for files) the original stays until
    :func:`_finish_companions`."""
    st = os.lstat(source)
    is_dir = stat.S_ISDIR(st.st_mode)
    staged: Path | None = None
    k = 0
    try:
        while True:
            target = directory / _candidate(name, k)
            if os.path.lexists(target):
                # Placed before by a move that was cut off (a crash): finish that move.
                if staged is None and (
                    _same_tree(source, target) if is_dir else _placed_before(source, st, target)
                ):
                    return _MovedCompanion(target, source, is_dir)
                k += 1
                continue
            try:
                if is_dir:
                    _rename_no_clobber(staged or source, target)
                    renamed = True
                else:
                    renamed = _link_no_clobber(staged or source, target)
            except FileExistsError:
                k += 1
                continue
            except OSError as exc:
                if exc.errno == errno.EXDEV and staged is None:
                    if is_dir:
                        staged = copy_tree_to_temp(source, directory)
                    else:
                        staged = _copy_to_temp(source, directory)
                    continue
                raise
            if staged is not None and not is_dir and not renamed:
                os.unlink(staged)  # the copy's temporary name (the link is the copy now)
            gone = renamed and staged is None  # renamed on one file system: nothing left
            return _MovedCompanion(target, None if gone else source, is_dir)
    except BaseException:
        if staged is not None:
            if is_dir:
                shutil.rmtree(staged, ignore_errors=True)
            else:
                _unlink_quietly(staged)
        raise


def _finish_companions(moved: Sequence[_MovedCompanion]) -> None:
    """Remove the originals of companions whose new names are durable."""
    for item in moved:
        if item.original is None:
            continue
        if item.is_dir:
            remove_tree(item.original)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(item.original)


def _place_group(
    source: Path,
    directory: Path,
    companions: Sequence[str],
    *,
    expect: FileSig | None,
    expect_companions: Companions | None,
    sidecar_text: str | None,
) -> Placed:
    """File ``source`` and its companions into ``directory`` under one number.

    The order makes every crash harmless: the file gets its new name first (its old name
    stays, so the watch folder still shows it); then each companion is moved; then the
    folder is fsync-ed; then the originals of companions that were copied (across file
    systems) are removed; only then is the file's old name removed. Until that last step
    the file is still in the watch folder, so a restart files it again: it finds its own
    new name (:func:`_placed_before`), takes the same number, moves the companions left
    behind, and skips the ones moved already (or removes an original whose copy is
    complete, :func:`_same_tree`).
    """
    folder = source.parent
    _check_unchanged(source, expect)
    _check_companions(folder, companions, expect_companions)
    present = [c for c in companions if os.path.lexists(folder / c)]
    linked = _link(
        source, directory, source.name, expect=expect, sidecar_text=sidecar_text, companions=present
    )
    moved: list[_MovedCompanion] = []
    try:
        for companion in present:
            new_name = companion_name(companion, source.name, linked.number)
            moved.append(_move_companion(folder / companion, directory, new_name))
    finally:
        # What was moved is made durable even if a later companion failed: the file
        # stays in the watch folder then, and the next attempt finishes the group.
        fsync_dir(directory)
    if any(item.original is not None for item in moved):
        # Before the file's old name goes: while the file is in the watch folder, a
        # restart finishes the group; once it is gone, nothing would.
        _finish_companions(moved)
    _finish(linked)
    fsync_dir(folder)
    return linked.placed


def move_group(
    source: Path,
    directory: Path,
    companions: Sequence[str],
    *,
    expect: FileSig | None = None,
    expect_companions: Companions | None = None,
) -> Path:
    """:func:`move_file` for a file and its companions (names in its folder), filed under
    one number; see :func:`_place_group` for why a crash cannot lose or double them.

    With ``expect_companions`` (what was read), :class:`SourceChanged` is raised and
    nothing is touched if a companion changed since. Companions that are not there (moved
    by an earlier attempt, or never there) are skipped.
    """
    return _place_group(
        source,
        directory,
        companions,
        expect=expect,
        expect_companions=expect_companions,
        sidecar_text=None,
    ).path


def reject_group(
    source: Path,
    directory: Path,
    text: str,
    companions: Sequence[str],
    *,
    expect: FileSig | None = None,
    expect_companions: Companions | None = None,
) -> Placed:
    """:func:`reject_file` for a file and its companions: all three (file, sidecar,
    companions) under one number in the error folder."""
    return _place_group(
        source,
        directory,
        companions,
        expect=expect,
        expect_companions=expect_companions,
        sidecar_text=_told(text, source),
    )


def delete_group(
    source: Path,
    companions: Sequence[str],
    *,
    expect: FileSig | None = None,
    expect_companions: Companions | None = None,
) -> None:
    """:func:`delete_file` for a file and its companions: the companions go first, the
    file last, so a crash in between leaves the file, which is deleted again (its hash is
    queued) with whatever is left of them."""
    folder = source.parent
    _check_unchanged(source, expect)
    _check_companions(folder, companions, expect_companions)
    for companion in companions:
        path = folder / companion
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            remove_tree(path)
        else:
            os.unlink(path)
    fsync_dir(folder)
    os.unlink(source)
    fsync_dir(folder)
