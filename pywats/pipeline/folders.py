"""Watch-folder entries: what each one watches and where its files go, and which sets fit.

:class:`FolderConfig` checks one entry on its own (values through :mod:`pywats.checks`,
defaults from :mod:`pywats.defaults`, and the cross-field rules below);
:func:`check_folders` checks a set of entries together: no file may be taken twice, and
no filed file may be taken again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from pywats import checks, defaults
from pywats.config import PostAction
from pywats.converters.base import Converter, patterns_of
from pywats.converters.registry import LoadedConverter
from pywats.watcher import WatchConfig, is_temporary

__all__ = ["FolderConfig", "check_folders", "watch_groups"]


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
    ``rescan_s`` and ``use_inotify`` (checked by :func:`check_folders`).

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


_SHARED_WATCH_SETTINGS = ("recursive", "settle_s", "rescan_s", "use_inotify")


def watch_groups(folders: Sequence[FolderConfig]) -> list[list[FolderConfig]]:
    """The entries grouped by watch folder (symlinks resolved), in configuration order."""
    groups: dict[str, list[FolderConfig]] = {}
    for folder in folders:
        groups.setdefault(os.path.realpath(folder.watch), []).append(folder)
    return list(groups.values())


def check_folders(folders: Sequence[FolderConfig]) -> list[list[FolderConfig]]:
    """Refuse entry sets that would take one file twice or take filed files again.

    Names must be unique. Entries may share a watch folder (one watcher serves them; each
    file goes to the first entry whose patterns match) if they agree on how it is
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
