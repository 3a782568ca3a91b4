"""Tests for :mod:`pywats.paths`: which directory wins, and what is refused.

Rules: the environment is set per test with ``monkeypatch`` (every variable the module
reads is cleared first by the ``clean_env`` fixture); directories are real, under
``tmp_path``. Instance-name rules and ``state_dir`` are covered in test_cli_queue.py.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pywats import paths
from pywats.errors import ConfigError
from pywats.paths import (
    config_dir,
    default_config_path,
    default_done_dir,
    default_error_dir,
    find_db,
    find_socket,
    lock_path,
    make_private_dir,
    runtime_dir,
    socket_path,
    state_dir,
)

VARIABLES = (
    "STATE_DIRECTORY",
    "RUNTIME_DIRECTORY",
    "CONFIGURATION_DIRECTORY",
    "XDG_DATA_HOME",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    # Keep the machine's real /etc/pywats and /run/pywats out of every test.
    monkeypatch.setattr(paths, "SYSTEM_CONFIG_DIR", tmp_path / "etc-pywats")
    monkeypatch.setattr(paths, "SYSTEM_RUNTIME_ROOT", tmp_path / "run-pywats")
    monkeypatch.setattr(paths, "SYSTEM_STATE_ROOT", tmp_path / "var-lib-pywats")
    return home


def test_runtime_dir_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert runtime_dir("ict") == Path(f"/tmp/pywats-{os.getuid()}/ict")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "relative/is/ignored")
    assert runtime_dir("ict") == Path(f"/tmp/pywats-{os.getuid()}/ict")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert runtime_dir("ict") == Path("/run/user/1000/pywats/ict")
    # RuntimeDirectory=pywats/%i is per instance already; with several, the first is ours.
    monkeypatch.setenv("RUNTIME_DIRECTORY", "/run/pywats/ict:/run/other")
    assert runtime_dir("ict") == Path("/run/pywats/ict")
    with pytest.raises(ConfigError):
        runtime_dir("../ict")


def test_config_dir_precedence(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    assert config_dir() == clean_env / ".config" / "pywats"
    monkeypatch.setenv("XDG_CONFIG_HOME", "rel")
    assert config_dir() == clean_env / ".config" / "pywats"
    monkeypatch.setenv("XDG_CONFIG_HOME", "/cfg")
    assert config_dir() == Path("/cfg/pywats")
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", "/etc/pywats:/etc/other")
    assert config_dir() == Path("/etc/pywats")


def test_default_config_path(
    monkeypatch: pytest.MonkeyPatch, clean_env: Path, tmp_path: Path
) -> None:
    user = clean_env / ".config" / "pywats" / "ict.toml"
    system = tmp_path / "etc-pywats" / "ict.toml"
    assert default_config_path("ict") == user  # neither exists: say where the user's goes
    user.parent.mkdir(parents=True)
    user.write_text("")
    assert default_config_path("ict") == user
    system.parent.mkdir()
    system.write_text("")
    # Run by hand on a station, the service's configuration wins (docs/configuration.md).
    assert default_config_path("ict") == system
    # Under systemd only $CONFIGURATION_DIRECTORY counts.
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(tmp_path / "conf"))
    assert default_config_path("ict") == tmp_path / "conf" / "ict.toml"
    with pytest.raises(ConfigError):
        default_config_path("a/b")


def test_socket_and_lock_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNTIME_DIRECTORY", "/run/pywats/ict")
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/pywats/ict")
    assert socket_path("ict") == Path("/run/pywats/ict/control.sock")
    assert lock_path("ict") == Path("/var/lib/pywats/ict/lock")


def test_a_socket_path_too_long_for_sun_path_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = "/run/" + "d" * 89  # + "/control.sock" = 107 bytes: the most sun_path holds
    monkeypatch.setenv("RUNTIME_DIRECTORY", base)
    assert len(os.fsencode(socket_path("ict"))) == 107
    monkeypatch.setenv("RUNTIME_DIRECTORY", base + "d")
    with pytest.raises(ConfigError) as info:
        socket_path("ict")
    assert "is 108 bytes, but a Unix socket path can be at most 107" in str(info.value)
    # Bytes count, not characters.
    monkeypatch.setenv("RUNTIME_DIRECTORY", "/run/" + "ä" * 46)
    with pytest.raises(ConfigError, match="is 110 bytes"):
        socket_path("ict")


def test_find_socket_falls_back_to_the_system_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "user"))
    own = tmp_path / "user" / "pywats" / "ict" / "control.sock"
    system = tmp_path / "run-pywats" / "ict" / "control.sock"
    assert find_socket("ict") == own  # nothing runs: the path it would have
    system.parent.mkdir(parents=True)
    system.touch()
    assert find_socket("ict") == system  # from an SSH shell: the system service's socket
    own.parent.mkdir(parents=True)
    own.touch()
    assert find_socket("ict") == own  # our own instance first


def test_find_db_falls_back_to_the_system_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user"))
    own = tmp_path / "user" / "pywats" / "ict" / "queue.db"
    system = tmp_path / "var-lib-pywats" / "ict" / "queue.db"
    assert find_db("ict") == own  # no queue anywhere: the path it would have
    system.parent.mkdir(parents=True)
    system.touch()
    assert find_db("ict") == system  # from an SSH shell: the system service's queue
    own.parent.mkdir(parents=True)
    own.touch()
    assert find_db("ict") == own  # our own instance first


def test_done_and_error_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/pywats/ict")
    assert default_done_dir("ict", "wsjf") == Path("/var/lib/pywats/ict/done/wsjf")
    assert default_error_dir("ict", "Keysight TestExec") == Path(
        "/var/lib/pywats/ict/error/Keysight TestExec"
    )
    monkeypatch.delenv("STATE_DIRECTORY")
    assert default_done_dir("fct", "csv") == state_dir("fct") / "done" / "csv"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", "nul\0"])
def test_converter_names_that_would_escape_are_refused(name: str) -> None:
    for function in (default_done_dir, default_error_dir):
        with pytest.raises(ConfigError) as info:
            function("ict", name)
        assert info.value.key == "converters"


def test_make_private_dir_creates_every_missing_level_0700(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c"
    assert make_private_dir(target) == target
    for level in (tmp_path / "a", tmp_path / "a" / "b", target):
        assert (level.stat().st_mode & 0o777) == 0o700
    # An existing directory is accepted and keeps its mode (systemd chose it).
    target.chmod(0o750)
    make_private_dir(target)
    assert (target.stat().st_mode & 0o777) == 0o750


def test_make_private_dir_refuses_symlinks_and_files(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(ConfigError, match="is not a directory"):
        make_private_dir(tmp_path / "link")
    (tmp_path / "file").touch()
    with pytest.raises(ConfigError, match="is not a directory"):
        make_private_dir(tmp_path / "file")


def test_make_private_dir_refuses_someone_elses_directory(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.mkdir()
        os.chown(theirs, 4242, 4242)
        expected = "belongs to uid 4242, not to us (uid 0)"
    else:
        theirs = Path("/")  # root's, and we are not root
        expected = f"belongs to uid 0, not to us (uid {os.geteuid()})"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        make_private_dir(theirs)


def test_make_private_dir_refuses_a_parent_others_can_write(tmp_path: Path) -> None:
    # /tmp/pywats-<uid> made first by someone else is the attack this guards against.
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ConfigError, match="is writable by every user"):
        make_private_dir(shared / "ict")
    shared.chmod(0o1777)  # sticky, like /tmp, but not root's: refused
    if os.geteuid() != 0:
        with pytest.raises(ConfigError, match="is writable by every user"):
            make_private_dir(shared / "ict2")
    else:
        make_private_dir(shared / "ict2")  # root's sticky directory is /tmp's case: fine
    if os.geteuid() == 0:
        os.chown(shared, 4242, 4242)
        with pytest.raises(ConfigError, match="belongs to uid 4242: another user could"):
            make_private_dir(shared / "ict3")
