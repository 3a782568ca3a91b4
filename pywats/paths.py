"""Where an instance keeps its files: state, configuration, runtime (socket).

One station may run several instances (one per test process), each with its own queue
database, lock file, control socket and done/error folders. An instance name becomes a
path component and part of a socket name, so it is validated here, once, with the same
rule everywhere.

Under systemd the template unit (``contrib/systemd/pywats@.service``) hands us the
directories in ``$STATE_DIRECTORY``, ``$RUNTIME_DIRECTORY`` and
``$CONFIGURATION_DIRECTORY``; without it the XDG base directories are used. Nothing here
creates a directory except :func:`make_private_dir`.

===================  ===========================  ============================================
what                 under the shipped unit       without systemd
===================  ===========================  ============================================
state (queue, lock)  /var/lib/pywats/<instance>   $XDG_DATA_HOME/pywats/<instance>
done/error folders   <state>/done/<converter>     (same, below the state directory)
control socket       /run/pywats/<instance>/...   $XDG_RUNTIME_DIR/pywats/<instance>/...
configuration        /etc/pywats/<instance>.toml  the same if it exists, else
                                                  $XDG_CONFIG_HOME/pywats/<instance>.toml
===================  ===========================  ============================================
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from pywats.errors import ConfigError

# Letters, digits and ``-_.``; no leading dot so an instance can never be a hidden file,
# ``.`` or ``..``; 64 characters keeps socket paths well under the 108-byte sun_path limit.
_INSTANCE_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")

QUEUE_DB_NAME = "queue.db"
"""File name of the queue database inside an instance's state directory."""


def validate_instance(instance: str) -> str:
    """Return ``instance`` unchanged if it is a valid instance name.

    Raises:
        ConfigError: the name is empty, longer than 64 characters, starts with a dot or
            holds a character other than ASCII letters, digits, ``-``, ``_`` and ``.``.
    """
    if not _INSTANCE_RE.fullmatch(instance):
        raise ConfigError(
            "instance",
            f"invalid instance name {instance!r}: use 1 to 64 letters, digits, '-', '_' or '.',"
            " not starting with '.'",
        )
    return instance


def state_dir(instance: str) -> Path:
    """The directory that holds an instance's durable state (queue database, lock file).

    Under systemd, ``$STATE_DIRECTORY`` is used as it is: the template unit sets
    ``StateDirectory=pywats/%i``, so systemd already made it per instance (when the unit
    lists several directories, the first one is ours). Otherwise it is
    ``$XDG_DATA_HOME/pywats/<instance>``, falling back to ``~/.local/share/pywats/<instance>``.

    The directory is not created here; whoever writes into it does that.

    Raises:
        ConfigError: ``instance`` is not a valid instance name.
    """
    validate_instance(instance)
    systemd_state = os.environ.get("STATE_DIRECTORY", "")
    if systemd_state:
        return Path(systemd_state.split(":", 1)[0])
    # XDG says a relative value must be ignored, so only an absolute one counts.
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "pywats" / instance


def state_dir_source() -> str:
    """What chose :func:`state_dir` in this environment: ``$STATE_DIRECTORY`` (systemd),
    ``$XDG_DATA_HOME``, or ``~/.local/share`` (neither is set)."""
    if os.environ.get("STATE_DIRECTORY", ""):
        return "$STATE_DIRECTORY"
    xdg = os.environ.get("XDG_DATA_HOME", "")
    return "$XDG_DATA_HOME" if xdg and os.path.isabs(xdg) else "~/.local/share"


def default_db_path(instance: str) -> Path:
    """The queue database of ``instance``: ``state_dir(instance) / "queue.db"``.

    Raises:
        ConfigError: ``instance`` is not a valid instance name.
    """
    return state_dir(instance) / QUEUE_DB_NAME


# --- where an instance lives under systemd and without it -----------------------------------

LOCK_NAME = "lock"
"""File name of the instance lock (see :mod:`pywats.instance`) inside the state directory."""

SOCKET_NAME = "control.sock"
"""File name of the control socket inside an instance's runtime directory."""

SYSTEM_CONFIG_DIR = Path("/etc/pywats")
"""Where the systemd unit's ``ConfigurationDirectory=pywats`` points."""

SYSTEM_RUNTIME_ROOT = Path("/run/pywats")
"""Parent of the unit's ``RuntimeDirectory=pywats/%i``; clients look here too."""

SYSTEM_STATE_ROOT = Path("/var/lib/pywats")
"""Parent of the unit's ``StateDirectory=pywats/%i``; the queue commands look here too."""

# sun_path is 108 bytes on Linux and the kernel wants room for the terminating NUL.
_SUN_PATH_MAX = 107


def _systemd_dir(variable: str) -> Path | None:
    """The first entry of a systemd ``*_DIRECTORY`` variable (a ``:``-separated list)."""
    value = os.environ.get(variable, "")
    return Path(value.split(":", 1)[0]) if value else None


def _xdg_dir(variable: str) -> Path | None:
    """An XDG base directory from the environment; XDG says relative values are ignored."""
    value = os.environ.get(variable, "")
    return Path(value) if value and os.path.isabs(value) else None


def runtime_dir(instance: str) -> Path:
    """The directory for an instance's runtime files (the control socket).

    ``$RUNTIME_DIRECTORY`` (first entry) under systemd: the unit's
    ``RuntimeDirectory=pywats/%i`` is already per instance. Otherwise
    ``$XDG_RUNTIME_DIR/pywats/<instance>``, falling back to ``/tmp/pywats-<uid>/<instance>``
    when there is no login session (a container, cron). The directory is not created
    here: :func:`make_private_dir` does that and checks that nobody else owns it, which
    matters for the ``/tmp`` fallback.

    Raises:
        ConfigError: ``instance`` is not a valid instance name.
    """
    validate_instance(instance)
    systemd = _systemd_dir("RUNTIME_DIRECTORY")
    if systemd is not None:
        return systemd
    xdg = _xdg_dir("XDG_RUNTIME_DIR")
    if xdg is not None:
        return xdg / "pywats" / instance
    return Path("/tmp") / f"pywats-{os.getuid()}" / instance


def config_dir() -> Path:
    """The directory that holds instance configuration files.

    ``$CONFIGURATION_DIRECTORY`` (first entry, ``/etc/pywats`` with the shipped unit) under
    systemd, else ``$XDG_CONFIG_HOME/pywats``, else ``~/.config/pywats``.
    """
    systemd = _systemd_dir("CONFIGURATION_DIRECTORY")
    if systemd is not None:
        return systemd
    xdg = _xdg_dir("XDG_CONFIG_HOME")
    return (xdg if xdg is not None else Path.home() / ".config") / "pywats"


def default_config_path(instance: str) -> Path:
    """The configuration file of ``instance`` when no ``--config`` is given.

    Under systemd ``$CONFIGURATION_DIRECTORY/<instance>.toml``. Otherwise
    ``/etc/pywats/<instance>.toml`` if it exists, so an engineer who runs
    ``pywats serve --instance ict`` by hand on a station uses the service's configuration;
    else ``config_dir() / "<instance>.toml"`` (whether it exists or not, so an error
    message names where to put it). The order is the one ``docs/configuration.md`` gives.

    Raises:
        ConfigError: ``instance`` is not a valid instance name.
    """
    validate_instance(instance)
    name = f"{instance}.toml"
    if _systemd_dir("CONFIGURATION_DIRECTORY") is None:
        system = SYSTEM_CONFIG_DIR / name
        if system.exists():
            return system
    return config_dir() / name


def _check_socket_path(path: Path) -> Path:
    size = len(os.fsencode(path))
    if size > _SUN_PATH_MAX:
        raise ConfigError(
            "",
            f"control socket path {str(path)!r} is {size} bytes, but a Unix socket path can"
            f" be at most {_SUN_PATH_MAX}: use a shorter instance name or runtime directory"
            " ($RUNTIME_DIRECTORY / $XDG_RUNTIME_DIR)",
        )
    return path


def socket_path(instance: str) -> Path:
    """The control socket the service of ``instance`` listens on: ``runtime_dir / control.sock``.

    Raises:
        ConfigError: ``instance`` is not a valid instance name, or the path is longer than
            a Unix socket address allows (107 bytes).
    """
    return _check_socket_path(runtime_dir(instance) / SOCKET_NAME)


def find_socket(instance: str) -> Path:
    """The control socket a client (CLI, TUI) should connect to for ``instance``.

    A client started from an SSH shell does not have the service's ``$RUNTIME_DIRECTORY``,
    so :func:`socket_path` alone would point it at its own ``$XDG_RUNTIME_DIR``. This
    returns the first of ``socket_path(instance)`` and ``/run/pywats/<instance>/control.sock``
    (the shipped unit's location) that exists, else ``socket_path(instance)``.

    Raises:
        ConfigError: as :func:`socket_path`.
    """
    own = socket_path(instance)
    for candidate in (own, SYSTEM_RUNTIME_ROOT / instance / SOCKET_NAME):
        if candidate.exists():
            return _check_socket_path(candidate)
    return own


def find_db(instance: str) -> Path:
    """The queue database a command run from a shell should read for ``instance``.

    Like :func:`find_socket`: the first of ``default_db_path(instance)`` and
    ``/var/lib/pywats/<instance>/queue.db`` (the shipped unit's location) that exists,
    else ``default_db_path(instance)``.

    Raises:
        ConfigError: ``instance`` is not a valid instance name.
    """
    own = default_db_path(instance)
    for candidate in (own, SYSTEM_STATE_ROOT / instance / QUEUE_DB_NAME):
        if candidate.exists():
            return candidate
    return own


def lock_path(instance: str) -> Path:
    """The instance lock file: ``state_dir(instance) / "lock"``.

    Raises:
        ConfigError: ``instance`` is not a valid instance name.
    """
    return state_dir(instance) / LOCK_NAME


def _converter_component(converter: str) -> str:
    # A converter name is chosen by a plug-in author, not by us, so only what would escape
    # the folder or break the path is refused; spaces and the like are fine.
    if converter in ("", ".", "..") or "/" in converter or "\0" in converter:
        raise ConfigError(
            "converters",
            f"converter name {converter!r} cannot be used as a folder name",
        )
    return converter


def default_done_dir(instance: str, converter: str) -> Path:
    """Where ``converter`` moves source files it converted, unless the config says otherwise.

    ``state_dir(instance) / "done" / <converter>``.

    Raises:
        ConfigError: ``instance`` is not a valid instance name, or ``converter`` is empty,
            ``.``, ``..`` or holds ``/`` or NUL.
    """
    return state_dir(instance) / "done" / _converter_component(converter)


def default_error_dir(instance: str, converter: str) -> Path:
    """Where files ``converter`` could not convert go, unless the config says otherwise.

    ``state_dir(instance) / "error" / <converter>``.

    Raises:
        ConfigError: as :func:`default_done_dir`.
    """
    return state_dir(instance) / "error" / _converter_component(converter)


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) with mode 0700 and check it is safe to use.

    An existing directory keeps its mode (systemd sets the mode of the directories it
    makes). The checks, in the spirit of ssh's ``StrictModes``:

    - ``path`` is a real directory, not a symlink, owned by our effective uid. Root
      running the service by hand on the service user's state directory would otherwise
      leave root-owned files behind that the service cannot open again.
    - Every directory above it is owned by root or by us, and is not writable by others
      unless it is sticky and root's (``/tmp``). Otherwise another user could have made
      ``/tmp/pywats-<uid>`` first, or could swap our directory for theirs.

    Returns:
        ``path``.

    Raises:
        ConfigError: one of the checks fails; the message names the directory and why.
        OSError: the directory cannot be created (permission denied, read-only file
            system).
    """
    path = Path(os.path.abspath(path))
    missing: list[Path] = []
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            break
        missing.append(candidate)
    for directory in reversed(missing):
        # exist_ok: another process (a second instance starting) may win the race.
        directory.mkdir(mode=0o700, exist_ok=True)
    uid = os.geteuid()
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise ConfigError("", f"{path} is not a directory (a symlink or a file is in the way)")
    if info.st_uid != uid:
        raise ConfigError(
            "",
            f"{path} belongs to uid {info.st_uid}, not to us (uid {uid}): run pywats as its"
            " owner (for the system service: sudo -u pywats ...) or choose another directory",
        )
    for parent in path.parents:
        # stat, not lstat: /var/run -> /run style links are fine, what they lead to counts.
        info = parent.stat()
        if info.st_uid not in (0, uid):
            raise ConfigError(
                "", f"{parent} belongs to uid {info.st_uid}: another user could replace {path}"
            )
        shared = info.st_mode & stat.S_IWOTH and not (
            info.st_mode & stat.S_ISVTX and info.st_uid == 0
        )
        if shared:
            raise ConfigError(
                "", f"{parent} is writable by every user: another user could replace {path}"
            )
    return path
