"""What ``pywats serve`` runs, derived from a configuration and checked before anything opens.

:func:`prepare` is the one configuration check. ``pywats serve`` runs it before it takes
the instance lock or opens the queue, and ``pywats config check`` runs the same function,
so a config that ``check`` calls ok gets past every start-up check that depends on the
config alone. It reads the TOML file, applies ``--server-url``, resolves the token,
loads every converter with its arguments, builds every folder's and the uploader's
configuration (the components' own rules, so nothing can pass here and fail there), and
looks at the paths that must be folders. It goes on past each problem it finds and
raises them all at once, one :class:`~pywats.errors.ConfigError` per problem, each with
its key path and file.

:func:`plan` is the part after the token: a checked :class:`~pywats.config.Config` in,
the components' configurations (:class:`Plan`) out.
"""

from __future__ import annotations

import grp
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from pywats import defaults, paths
from pywats.config import (
    Config,
    ConfigCheckError,
    ConverterConfig,
    PostAction,
    TokenSource,
    load_each_converter,
    load_instance,
    resolve_token_source,
    with_server_url,
)
from pywats.converters.base import StationDefaults
from pywats.errors import ConfigError
from pywats.pipeline import FolderConfig, Pipeline
from pywats.upload import UploaderConfig

__all__ = ["DAY_S", "Plan", "Prepared", "plan", "prepare"]

DAY_S = 24 * 3600.0

# UploaderConfig field -> the TOML key a user can fix. The config layer runs the same
# rules first, so these only show if the two layers ever drift apart again.
_UPLOADER_KEYS = {
    "workers": "upload.workers",
    "retry_base_s": "upload.retry_base_s",
    "retry_max_s": "upload.retry_max_s",
    "shutdown_deadline_s": "upload.shutdown_deadline_s",
}

# FolderConfig fields that are [[converters]] keys of the same name.
_ENTRY_KEYS = frozenset(f.name for f in attrs.fields(ConverterConfig))


@attrs.frozen
class Prepared:
    """How :func:`prepare` was called, so a reload can call it again the same way."""

    instance: str
    config_path: Path | None
    """The file to read again: the one loaded (``None``: there was none, so the
    instance's file is looked for again, as at start)."""
    server_url: str | None
    """``--server-url``; it wins over the file's ``server.url`` on every reload too."""
    environ: Mapping[str, str] | None = attrs.field(default=None, eq=False, repr=False)
    """Where the token's environment sources are looked up (``None``: ``os.environ``
    at the time). Never shown: it may hold ``PYWATS_TOKEN``."""


@attrs.frozen
class Plan:
    """What the service runs, derived from a config: ready to start, already checked."""

    instance: str
    db_path: Path
    retention_s: float
    uploader: UploaderConfig
    folders: tuple[FolderConfig, ...]
    station: StationDefaults
    convert_workers: int
    convert_memory_budget_bytes: int = defaults.CONVERT_MEMORY_BUDGET_MB * defaults.MiB
    """What the converter workers may hold at once (``[convert] memory_budget_mb``)."""
    config: Config | None = attrs.field(default=None, eq=False)
    """The checked config the plan was derived from (``server_url`` applied)."""
    token_source: TokenSource | None = None
    """Where the token came from (``None``: no token, or not known: :func:`plan` alone)."""
    prepared: Prepared | None = None
    """How :func:`prepare` made this plan (``None``: made by :func:`plan` alone, so it
    cannot be made again from its file)."""


def prepare(
    instance: str,
    config_path: str | os.PathLike[str] | None = None,
    *,
    server_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Config, str | None, Plan]:
    """Load and check everything ``pywats serve --instance instance`` needs from its config.

    ``config_path`` is ``--config`` (it must exist; ``None``: the instance's file, or the
    built-in defaults if it has none), ``server_url`` is ``--server-url``, and ``environ``
    is where the token's environment sources are looked up (default ``os.environ``).
    Nothing is created or opened: a missing folder is fine (the service creates it).

    Returns the config (with ``server_url`` applied), the token (``None``: none set; the
    caller registers it for redaction) and the plan.

    Raises:
        ConfigError: the instance name is invalid, or the file cannot be read or is not
            TOML; nothing else could be checked.
        ConfigCheckError: every problem found, each naming its key path and file.
    """
    paths.validate_instance(instance)
    # Errors in the file itself (unknown keys, types, ranges) come all at once from here;
    # without a Config nothing further can be checked.
    config = load_instance(instance, config_path)
    where = _where(config)
    errors: list[ConfigError] = []
    if server_url is not None:
        try:
            config = with_server_url(config, server_url)
        except ConfigError as exc:
            errors.append(exc)  # an option, not a line of the file
    token: str | None = None
    token_source: TokenSource | None = None
    try:
        token, token_source = resolve_token_source(config.server, environ=environ)
    except ConfigError as exc:
        in_file = exc.key.startswith("server.")
        errors.append(ConfigError(exc.key, exc.reason, file=where if in_file else ""))
    try:
        run_plan = plan(instance, config, token=token)
    except ConfigCheckError as exc:
        errors.extend(exc.errors)
    if errors:
        raise ConfigCheckError(errors)
    # A file that was found is the one to read again (a reload must not fall back to the
    # defaults because the file went missing); with none, look again as at start.
    again = config.source if config.source is not None else config_path
    prepared = Prepared(
        instance=instance,
        config_path=None if again is None else Path(os.path.abspath(again)),
        server_url=server_url,
        environ=environ,
    )
    run_plan = attrs.evolve(run_plan, token_source=token_source, prepared=prepared)
    return config, token, run_plan


def plan(instance: str, config: Config, *, token: str | None) -> Plan:
    """Check that ``config`` can run as ``instance`` and derive every component's config.

    Loads the converters (checking their arguments), builds each folder's configuration
    and checks the folders as a set (as the pipeline will), builds the uploader's
    configuration, and checks that no folder the service would use (or create) is in
    fact a file.

    Raises:
        ConfigCheckError: naming the key path of every problem found.
    """
    where = _where(config)
    errors: list[ConfigError] = []
    loaded = list(load_each_converter(config))
    # Names over every enabled entry, loaded or not, so that fixing one entry does not
    # rename (and so move the default folders of) another.
    names = _folder_names([entry for _, entry, _ in loaded])
    folders: list[FolderConfig] = []
    for name, (index, entry, converter) in zip(names, loaded, strict=True):
        key = f"converters[{index}]"
        if isinstance(converter, ConfigCheckError):
            errors.extend(converter.errors)
        try:
            done_dir = entry.done_dir or paths.default_done_dir(instance, name)
            error_dir = entry.error_dir or paths.default_error_dir(instance, name)
        except ConfigError as exc:
            errors.append(ConfigError(key, exc.reason, file=where))
            continue
        used = [("watch", entry.watch), ("error_dir", error_dir)]
        if entry.post_action in (PostAction.MOVE, PostAction.ARCHIVE):
            used.insert(1, ("done_dir", done_dir))
        errors.extend(
            ConfigError(f"{key}.{field}", problem, file=where)
            for field, folder in used
            if (problem := _folder_problem(folder)) is not None
        )
        if isinstance(converter, ConfigCheckError):
            continue  # no converter: nothing more to build
        folder_kwargs = {}
        if entry.patterns is not None:
            folder_kwargs["patterns"] = entry.patterns
        try:
            folder = FolderConfig(
                name=name,
                converter=converter.converter,
                arguments=converter.arguments,
                watch=entry.watch,
                recursive=entry.recursive,
                post_action=entry.post_action.value,
                done_dir=done_dir,
                error_dir=error_dir,
                settle_s=entry.settle_s,
                settle_after_close=entry.settle_after_close,
                rescan_s=entry.rescan_s,
                use_inotify=entry.use_inotify,
                max_file_bytes=entry.max_file_bytes,
                **folder_kwargs,
            )
        except (ConfigError, ValueError, TypeError) as exc:
            errors.extend(_component_errors(exc, key, where))
            continue
        try:
            # The pipeline checks the set as a whole (no two entries taking the same files).
            # Every rule is about a pair, so adding the entries one by one names the later
            # entry of each clash, and finds every clash rather than the first.
            Pipeline.check_folders([*folders, folder])
        except (ConfigError, ValueError, TypeError) as exc:
            errors.extend(_component_errors(exc, key, where))
        else:
            folders.append(folder)
    server = config.server
    try:
        uploader = UploaderConfig(
            url=server.url,
            token=token,
            workers=config.upload.workers,
            connect_timeout_s=server.connect_timeout_s,
            read_timeout_s=server.read_timeout_s,
            write_timeout_s=server.write_timeout_s,
            pool_timeout_s=server.pool_timeout_s,
            verify_tls=server.verify_tls,
            ca_file=server.ca_file,
            proxy=server.proxy,
            retry_base_s=config.upload.retry_base_s,
            retry_max_s=config.upload.retry_max_s,
            shutdown_deadline_s=config.upload.shutdown_deadline_s,
        )
    except ConfigError as exc:
        key = _UPLOADER_KEYS.get(exc.key, f"server.{exc.key}" if exc.key else "server")
        errors.append(ConfigError(key, exc.reason, file=where))
        uploader = UploaderConfig()
    db_path = config.queue.path or paths.default_db_path(instance)
    problem = _database_problem(db_path)
    if problem is not None:
        errors.append(ConfigError("queue.path", problem, file=where))
    problem = _group_problem(config.rpc.allowed_group)
    if problem is not None:
        errors.append(ConfigError("rpc.allowed_group", problem, file=where))
    if errors:
        raise ConfigCheckError(errors)
    return Plan(
        instance=instance,
        db_path=db_path,
        retention_s=config.queue.retention_days * DAY_S,
        uploader=uploader,
        folders=tuple(folders),
        station=StationDefaults(
            machine_name=config.station.name,
            location=config.station.location,
            purpose=config.station.purpose,
        ),
        convert_workers=config.convert.workers,
        convert_memory_budget_bytes=config.convert.memory_budget_bytes,
        config=config,
    )


def _where(config: Config) -> str:
    return str(config.source) if config.source is not None else ""


def _folder_names(entries: Sequence[ConverterConfig]) -> list[str]:
    # Labels must be unique (logs, statistics, default done/error folders): the second
    # "csv" entry becomes "csv-2".
    names: list[str] = []
    seen: dict[str, int] = {}
    for entry in entries:
        label = entry.label
        seen[label] = seen.get(label, 0) + 1
        names.append(label if seen[label] == 1 else f"{label}-{seen[label]}")
    return names


def _component_errors(exc: Exception, key: str, where: str) -> list[ConfigError]:
    """A component's refusal as errors of the entry ``key`` (``converters[2]``).

    A component names its own field (``settle_s``); where that is also the entry's key
    in the file, the key path says so (``converters[2].settle_s``).
    """
    found = exc.errors if isinstance(exc, ConfigCheckError) else [exc]
    out: list[ConfigError] = []
    for error in found:
        if isinstance(error, ConfigError):
            full = f"{key}.{error.key}" if error.key in _ENTRY_KEYS else key
            out.append(ConfigError(full, error.reason, file=where))
        else:
            out.append(ConfigError(key, str(error), file=where))
    return out


def _folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be used or created as a folder, or ``None`` if it can.

    Only what is certain is reported: something that exists and is not a folder, at the
    path or above it. A missing folder is fine (the service creates it); what cannot be
    looked at (no permission) is left for the service to report when it gets there.
    """
    folder = Path(os.path.abspath(folder))
    for candidate in (folder, *folder.parents):
        try:
            mode = candidate.stat().st_mode  # follows symlinks: a link to a folder is fine
        except (FileNotFoundError, NotADirectoryError):
            continue  # not there (or under a file, which a later candidate finds)
        except OSError:
            return None
        if stat.S_ISDIR(mode):
            return None
        if candidate == folder:
            return f"{folder} exists and is not a folder"
        return f"{folder} cannot be created: {candidate} exists and is not a folder"
    return None


def _database_problem(db_path: Path) -> str | None:
    """Why the queue database cannot be at ``db_path``, or ``None``."""
    db_path = Path(os.path.abspath(db_path))
    if db_path.is_dir():
        return f"{db_path} is a folder, not a database file"
    problem = _folder_problem(db_path.parent)
    return None if problem is None else f"the database's folder: {problem}"


def _group_problem(group: str | None) -> str | None:
    """Why ``[rpc] allowed_group`` cannot be used, or ``None`` (unset, a gid, or a group
    this machine knows). The same rule as the control socket's, checked before it opens."""
    if group is None or (group.isascii() and group.isdigit()):
        return None
    try:
        grp.getgrnam(group)
    except KeyError:
        return f"no group named {group!r} on this machine"
    return None
