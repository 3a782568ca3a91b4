"""Tests for ``contrib/systemd``: the unit verifies cleanly and keeps its promises.

Rules: ``systemd-analyze`` and ``systemd-sysusers`` are required (CI has them); when
one is missing the test fails and says so, it does not skip. The unit is copied to
``tmp_path`` as the instance ``pywats@ict.service`` with ``ExecStart`` pointed at this
venv's ``pywats`` (``verify`` checks that the binary exists). Every call has a timeout.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTRIB = ROOT / "contrib" / "systemd"
UNIT = CONTRIB / "pywats@.service"
SYSUSERS = CONTRIB / "pywats.sysusers"
INSTALLED_PATH = "/usr/local/bin/pywats"


def tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        pytest.fail(
            f"{name} is not installed: these tests need systemd's tools (apt install systemd)"
        )
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections -> (key, value) in order; keys may repeat, as systemd allows."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        assert current is not None, f"key outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line}"
        current.append((key.strip(), value.strip()))
    return sections


def instance_unit(
    tmp_path: Path, text: str | None = None, name: str = "pywats@ict.service"
) -> Path:
    pywats = Path(sys.executable).parent / "pywats"
    if not pywats.exists():
        pytest.fail(f"{pywats} is missing: install the project into the venv (pip install -e .)")
    text = UNIT.read_text() if text is None else text
    assert f"ExecStart={INSTALLED_PATH} " in text
    path = tmp_path / name
    path.write_text(text.replace(f"ExecStart={INSTALLED_PATH} ", f"ExecStart={pywats} "))
    return path


def verify(path: Path) -> subprocess.CompletedProcess[str]:
    return run(tool("systemd-analyze"), "verify", "--man=no", str(path))


def about_us(result: subprocess.CompletedProcess[str]) -> list[str]:
    """Lines of systemd-analyze output about our unit (not about the host's other units)."""
    return [line for line in (result.stdout + result.stderr).splitlines() if "pywats" in line]


def test_unit_verifies_without_a_single_warning(tmp_path: Path) -> None:
    result = verify(instance_unit(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert about_us(result) == []


def test_verify_would_notice_a_mistake(tmp_path: Path) -> None:
    # The check above is only worth something if a broken unit is caught; verify exits 0
    # on unknown keys and bad values, so the output is what counts.
    broken = UNIT.read_text().replace("ProtectSystem=strict", "ProtectSystem=strickt")
    broken = broken.replace("\n[Service]\n", "\n[Service]\nWatchdogSecs=30\n", 1)
    lines = about_us(verify(instance_unit(tmp_path, broken)))
    assert any("Unknown key 'WatchdogSecs'" in line for line in lines), lines
    assert any("strickt" in line for line in lines), lines


def test_unit_has_the_settings_the_service_relies_on() -> None:
    unit = parse_unit(UNIT.read_text())
    service = unit["Service"]
    required = {
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("WatchdogSec", "30"),
        ("Restart", "on-failure"),
        ("ExecStart", f"{INSTALLED_PATH} serve --instance %i"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("RuntimeDirectory", "pywats/%i"),
        ("StateDirectory", "pywats/%i"),
        ("ConfigurationDirectory", "pywats"),
        ("LoadCredential", "token:pywats-%i.token"),
        ("User", "pywats"),
        ("Group", "pywats"),
        ("KillMode", "mixed"),
        ("UMask", "0027"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallFilter", "@system-service"),
    }
    assert required - set(service) == set()
    # Uploads in flight get 10 s on stop; systemd must wait longer than that.
    [stop] = [v for k, v in service if k == "TimeoutStopSec"]
    assert int(stop) > 10
    # Watch folders come from drop-ins; the unit itself grants no extra write access.
    assert not [v for k, v in service if k == "ReadWritePaths"]
    assert ("WantedBy", "multi-user.target") in unit["Install"]


def test_hardening_exposure_stays_low(tmp_path: Path) -> None:
    path = instance_unit(tmp_path)
    result = run(tool("systemd-analyze"), "security", "--offline=yes", "--no-pager", str(path))
    assert result.returncode == 0, result.stderr
    found = re.search(r"Overall exposure level for pywats@ict\.service: (\d+\.\d)", result.stdout)
    assert found, result.stdout
    # 1.4 when written; systemd calls up to 2.0 "OK". Weakening the unit fails this.
    assert float(found.group(1)) <= 2.0, result.stdout


def test_sysusers_creates_the_pywats_user_and_group(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    result = run(
        tool("systemd-sysusers"), f"--root={tmp_path}", "--dry-run", str(SYSUSERS.resolve())
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Creating group 'pywats'" in output, output
    assert "Creating user 'pywats'" in output, output
