"""Watch-folder entries: what each one watches and where its files go, and which sets fit.

:class:`FolderConfig` checks one entry on its own (values through :mod:`pywats.checks`,
defaults from :mod:`pywats.defaults`, and the cross-field rules below);
:func:`check_folders` checks a set of entries together: no file may be taken twice, and
no filed file may be taken again.

Entries may share a watch folder. A file whose name only one entry's patterns take goes
to that entry, unread (a folder set up for a converter takes what it is given, and that
converter says what is wrong). When several entries' patterns take the name,
:func:`route_by_name` and :func:`route_by_content` choose between them as
:mod:`pywats.converters.sniffing` does: an unambiguous extension one entry's pattern
names decides; otherwise the file's head is read (on a worker thread:
:func:`route_files`) and the entry whose converter's ``sniff`` claims it takes it (else
a fallback entry: a converter without ``sniff``, or ``csv``). A file none of them claims
goes to the error folder with :func:`unclaimed_sidecar_text`, which names every
candidate and its answer.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import trio

from pywats import checks, defaults, postaction
from pywats.config import PostAction
from pywats.converters.base import Converter, name_of, patterns_of
from pywats.converters.registry import LoadedConverter
from pywats.converters.sniffing import Candidate, Choice, Decision, NoChoice, by_pattern, choose
from pywats.watcher import WatchConfig, is_temporary

__all__ = [
    "FolderConfig",
    "Route",
    "check_folders",
    "read_head",
    "route_by_content",
    "route_by_name",
    "route_files",
    "unclaimed_sidecar_text",
    "watch_groups",
]


def _absolute(value: str | os.PathLike[str]) -> Path:
    # Normalised but not resolved: the paths in logs and sidecars are the ones configured.
    return Path(os.path.abspath(value))


def _to_patterns(value: str | Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _to_post_action(value: str | PostAction) -> PostAction:
    try:
        return PostAction(value)
    except ValueError:
        words = ", ".join(a.value for a in PostAction)
        raise ValueError(f"post_action must be one of {words}; got {value!r}") from None


def _check_converter(_inst: object, _attr: object, value: Any) -> None:
    if isinstance(value, LoadedConverter):
        raise TypeError(
            "converter must be the converter instance: pass loaded.converter, and "
            "loaded.arguments as arguments"
        )
    if not isinstance(value, Converter):
        raise TypeError(f"converter must be a converter instance, got {type(value).__name__}")


def _check_name(_inst: object, _attr: object, value: str) -> None:
    if not value or value != value.strip():
        raise ValueError(f"a folder needs a name without surrounding blanks, got {value!r}")


def _inside(folder: Path, root: Path) -> tuple[str, ...] | None:
    """The parts of ``folder`` below ``root`` (symlinks resolved), or None if not under it."""
    resolved, base = Path(os.path.realpath(folder)), Path(os.path.realpath(root))
    if resolved == base:
        return ()
    if base not in resolved.parents:
        return None
    return resolved.relative_to(base).parts


def _watched_by(folder: Path, watch: Path, recursive: bool) -> bool:
    """Whether a watcher on ``watch`` would take files put into ``folder``."""
    parts = _inside(folder, watch)
    if parts is None:
        return False
    if not parts:
        return True
    # The watcher skips subfolders with temporary names (.done, ~old) at any depth.
    return recursive and not any(is_temporary(part) for part in parts)


@attrs.frozen(kw_only=True)
class FolderConfig:
    """One watch folder entry: what to watch, which converter reads it, where files go.

    ``done_dir`` and ``error_dir`` are required here (the config layer picks defaults in
    the state directory). Neither may be the watch folder itself, nor a folder a recursive
    watch would descend into (a subfolder whose path below the watch folder has a hidden
    or temporary name, such as ``in/.done``, is not descended into and is allowed);
    ``done_dir`` is only checked for ``move`` and ``archive``, which use it.

    Entries may share a watch folder if they agree on ``recursive``, ``settle_s``,
    ``settle_after_close``, ``rescan_s`` and ``use_inotify`` (checked by
    :func:`check_folders`).

    Raises:
        ConfigError: a value breaks its rule (:mod:`pywats.checks`); ``key`` is the field.
        ValueError, TypeError: the entry does not fit together (the message says why).
    """

    name: str = attrs.field(validator=_check_name)
    """Label of the folder in logs, statistics, events and sidecars."""
    converter: Converter = attrs.field(validator=_check_converter)
    """The converter instance that reads this folder's files."""
    arguments: Any = attrs.field(factory=dict)
    """The converter's structured arguments, handed over in the ConversionContext."""
    watch: Path = attrs.field(converter=_absolute)
    """The watch folder (created at start if missing)."""
    patterns: tuple[str, ...] = attrs.field(
        default=attrs.Factory(lambda self: tuple(patterns_of(self.converter)), takes_self=True),
        converter=_to_patterns,
    )
    """File-name globs to take (default: the converter's)."""
    recursive: bool = False
    """Watch subfolders too (their structure is kept under done_dir and error_dir)."""
    post_action: PostAction = attrs.field(default=PostAction.MOVE, converter=_to_post_action)
    """What to do with a file once its reports are queued."""
    done_dir: Path = attrs.field(converter=_absolute)
    """Where ``move`` and ``archive`` put converted files."""
    error_dir: Path = attrs.field(converter=_absolute)
    """Where files that cannot be converted go, each with ``<name>.error.txt``."""
    settle_s: float = attrs.field(
        default=defaults.SETTLE_S, validator=checks.validator(checks.non_negative)
    )
    """See :attr:`pywats.watcher.WatchConfig.settle_s`."""
    settle_after_close: bool = False
    """See :attr:`pywats.watcher.WatchConfig.settle_after_close`."""
    rescan_s: float = attrs.field(
        default=defaults.RESCAN_S, validator=checks.validator(checks.positive)
    )
    """See :attr:`pywats.watcher.WatchConfig.rescan_s`."""
    use_inotify: bool = True
    """See :attr:`pywats.watcher.WatchConfig.use_inotify`."""
    max_file_bytes: int = attrs.field(
        default=defaults.MAX_FILE_BYTES, validator=checks.validator(checks.positive)
    )
    """Larger files go to the error folder unread."""

    def __attrs_post_init__(self) -> None:
        # Builds (and so checks) the patterns the watcher will use.
        self.watch_config()
        for attribute, folder in self.filing_dirs():
            if _watched_by(folder, self.watch, self.recursive):
                raise ValueError(_watched_message(self.name, attribute, folder, self))

    def filing_dirs(self) -> list[tuple[str, Path]]:
        """The folders files are filed into, by attribute name (done_dir only if used)."""
        used = self.post_action in (PostAction.MOVE, PostAction.ARCHIVE)
        if used and _inside(self.done_dir, self.error_dir) == ():
            raise ValueError(
                f"folder {self.name!r}: done_dir and error_dir are the same folder "
                f"({self.done_dir}); converted and rejected files would be mixed"
            )
        return [("done_dir", self.done_dir)] * used + [("error_dir", self.error_dir)]

    def watch_config(self) -> WatchConfig:
        """The watcher's configuration for this folder."""
        return WatchConfig(
            self.watch,
            patterns=self.patterns,
            recursive=self.recursive,
            rescan_s=self.rescan_s,
            settle_s=self.settle_s,
            settle_after_close=self.settle_after_close,
            use_inotify=self.use_inotify,
        )


def _watched_message(name: str, attribute: str, folder: Path, by: FolderConfig) -> str:
    if _inside(folder, by.watch) == ():
        return (
            f"folder {name!r}: {attribute} {folder} is the watch folder of {by.name!r}; "
            "its files would be converted again"
        )
    return (
        f"folder {name!r}: {attribute} {folder} lies inside {by.watch}, which {by.name!r} "
        "watches recursively, so its files would be converted again; put it outside, or "
        f"give it a name starting with '.' (such as {by.watch / ('.' + folder.name)})"
    )


_SHARED_WATCH_SETTINGS = (
    "recursive",
    "settle_s",
    "settle_after_close",
    "rescan_s",
    "use_inotify",
)


def watch_groups(folders: Sequence[FolderConfig]) -> list[list[FolderConfig]]:
    """The entries grouped by watch folder (symlinks resolved), in configuration order."""
    groups: dict[str, list[FolderConfig]] = {}
    for folder in folders:
        groups.setdefault(os.path.realpath(folder.watch), []).append(folder)
    return list(groups.values())


def check_folders(folders: Sequence[FolderConfig]) -> list[list[FolderConfig]]:
    """Refuse entry sets that would take one file twice or take filed files again.

    Names must be unique. Entries may share a watch folder (one watcher serves them; a
    file goes to the one entry whose patterns match, or, when several match, to the one
    :func:`route_by_name` / :func:`route_by_content` choose) if they agree on how it is
    watched. No watch folder may lie in another's recursive watch, and no done or error
    folder may be watched. Returns the entries grouped by watch folder
    (:func:`watch_groups`).

    Raises:
        ValueError: saying which entries and folders clash.
    """
    names = [f.name for f in folders]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"two watch folders are named {name!r}; names must be unique")
    groups = watch_groups(folders)
    for group in groups:
        first = group[0]
        for other in group[1:]:
            for setting in _SHARED_WATCH_SETTINGS:
                if getattr(other, setting) != getattr(first, setting):
                    raise ValueError(
                        f"folders {first.name!r} and {other.name!r} watch the same folder "
                        f"{first.watch} with different {setting} ({getattr(first, setting)!r} "
                        f"and {getattr(other, setting)!r}); one watcher serves both, so give "
                        "them the same"
                    )
    for group in groups:
        for other_group in groups:
            if other_group is group:
                continue
            folder, other = group[0], other_group[0]
            if _watched_by(folder.watch, other.watch, other.recursive):
                raise ValueError(
                    f"folder {folder.name!r} watches {folder.watch}, which {other.name!r} "
                    f"already watches recursively ({other.watch})"
                )
    for folder in folders:
        for group in groups:
            other = group[0]
            for attribute, target in folder.filing_dirs():
                if _watched_by(target, other.watch, other.recursive):
                    raise ValueError(_watched_message(folder.name, attribute, target, other))
    return groups


# --- Which entry of a shared watch folder takes a file ------------------------------------


def _candidate(folder: FolderConfig) -> Candidate:
    converter = name_of(folder.converter)
    label = folder.name if folder.name == converter else f"{folder.name} ({converter})"
    return Candidate(label, folder.converter, folder.patterns)


@attrs.frozen
class Route:
    """Which of a file's candidate entries takes it, and why.

    ``index`` points into the candidates given (None: none of them takes the file).
    ``decision`` is the choice with every candidate's answer; None when the name alone
    decided (one candidate). ``sig`` is the file as its head was read (None if unread).
    """

    index: int | None
    decision: Decision | None = None
    sig: postaction.FileSig | None = None

    @property
    def reason(self) -> str:
        """Why: the choice's reason, or why no entry takes the file."""
        if self.decision is None:
            return "the only entry whose patterns take the name"
        return self.decision.reason


def route_by_name(candidates: Sequence[FolderConfig], name: str) -> Route | None:
    """The entry the name alone gives (one candidate, or an unambiguous extension that one
    candidate's pattern names); None when the file's head is needed (:func:`route_files`).

    ``candidates`` are the entries of the file's watch folder whose patterns take ``name``,
    in configuration order (at least one).
    """
    if len(candidates) <= 1:
        return Route(0)
    choice = by_pattern(name, [_candidate(f) for f in candidates])
    return None if choice is None else Route(choice.index, choice)


def route_by_content(candidates: Sequence[FolderConfig], name: str, head: bytes) -> Route:
    """The entry whose converter claims a file by its ``head`` (or the fallback entry);
    ``Route(None, NoChoice)`` when none does. Pure; never raises for any ``head``."""
    decision = choose(name, head, [_candidate(f) for f in candidates], last_resort=False)
    return Route(decision.index if isinstance(decision, Choice) else None, decision)


def read_head(
    path: Path, size: int = defaults.SNIFF_BYTES
) -> tuple[bytes, postaction.FileSig] | None:
    """The first ``size`` bytes of the regular file at ``path`` and its signature.

    None if it vanished or is no regular file now. Opened like
    :func:`pywats.postaction.read_source` (no symlink followed, no FIFO waited on).

    Raises:
        OSError: it exists but cannot be opened or read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with open(fd, "rb", closefd=True) as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None
        return f.read(size), postaction.FileSig.of(st)


def _route_files(
    work: Sequence[tuple[Path, Sequence[FolderConfig]]],
) -> list[Route | OSError | None]:
    out: list[Route | OSError | None] = []
    for path, candidates in work:
        try:
            got = read_head(path)
        except OSError as exc:
            out.append(exc)
            continue
        if got is None:
            out.append(None)
            continue
        head, sig = got
        out.append(attrs.evolve(route_by_content(candidates, path.name, head), sig=sig))
    return out


async def route_files(
    work: Sequence[tuple[Path, Sequence[FolderConfig]]],
) -> list[Route | OSError | None]:
    """Read each file's head and route it among its candidates, in one worker thread.

    Per file: the :class:`Route`, the ``OSError`` reading it gave, or None if it vanished.
    The head is never read on the trio thread, and a plugin's slow ``sniff`` runs in the
    thread too.
    """
    return await trio.to_thread.run_sync(_route_files, work, abandon_on_cancel=True)


def unclaimed_sidecar_text(
    *,
    candidates: Sequence[FolderConfig],
    source: Path,
    size: int | None,
    decision: NoChoice,
    when: datetime,
) -> str:
    """The ``<name>.error.txt`` beside a file that no entry of a shared folder takes."""
    first = candidates[0]
    converters = ", ".join(f"{name_of(f.converter)} {f.converter.version}" for f in candidates)
    lines = [
        "pywats could not convert this file; it was moved here unchanged.",
        "",
        f"file:      {source}",
        f"size:      {'unknown' if size is None else f'{size} bytes'}",
        f"folder:    {', '.join(f.name for f in candidates)} (watching {first.watch})",
        f"converter: none of them takes it ({converters})",
        f"time:      {when.isoformat(timespec='seconds')}",
        f"reason:    {decision.reason}",
        "field:     -",
        "",
        "What each entry's converter said (its pattern, and its sniff of the first "
        f"{defaults.SNIFF_BYTES // 1024} KiB):",
        *decision.explain()[2:],
        "",
        f"To try again, put it into a folder whose converter reads it, or move it back into "
        f"{source.parent} once an entry there takes it. `pywats convert --explain FILE` "
        "shows which converter takes a file and why.",
        "",
    ]
    return "\n".join(lines)
