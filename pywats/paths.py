"""Where an instance keeps its state on disk.

One station may run several instances (one per test process), each with its own queue
database, lock file and done/error folders. An instance name becomes a path component and
part of a socket name, so it is validated here, once, with the same rule everywhere.
"""

from __future__ import annotations

import os
import re
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


def default_db_path(instance: str) -> Path:
    """The queue database of ``instance``: ``state_dir(instance) / "queue.db"``.

    Raises:
        ConfigError: ``instance`` is not a valid instance name.
    """
    return state_dir(instance) / QUEUE_DB_NAME
