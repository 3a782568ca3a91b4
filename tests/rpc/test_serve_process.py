"""``pywats serve`` as a real process: its control socket answers ``pywats status``, does
not outlive it (kill -9, then a restart binds again), and a second process on the same
socket exits 1 naming it."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from tests.integration.harness import PYWATS, Instance, running, stop


def status(
    inst: Instance, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PYWATS, "status", "--instance", inst.name, *extra],
        env=inst.env(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_status_kill_9_restart_and_a_second_process(tmp_path: Path) -> None:
    inst = Instance(tmp_path, "ict", server_url=None)
    try:
        _run(tmp_path, inst)
    finally:
        inst.notify.close()


def _run(tmp_path: Path, inst: Instance) -> None:
    sock = inst.runtime / "control.sock"
    with running(inst.serve()):
        inst.wait_ready()
        done = status(inst, "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["state"] == "running"
    # running() killed it with SIGKILL: the socket file is left, nobody listens on it.
    assert sock.exists()
    with running(inst.serve()) as proc:
        inst.wait_ready()
        assert status(inst).returncode == 0
        # Another process with its own state (so its own lock) and its own watch folder
        # (so its own folder lock) but the same socket.
        other = tmp_path / "other-state"
        other.mkdir()
        (tmp_path / "other-in").mkdir()
        config = tmp_path / "other.toml"
        text = inst.config.read_text()
        config.write_text(
            text.replace(f'watch = "{inst.watch}"', f'watch = "{tmp_path / "other-in"}"')
        )
        assert config.read_text() != text
        second = subprocess.run(
            [*PYWATS, "serve", "--instance", inst.name, "--config", str(config)],
            env=inst.env({"STATE_DIRECTORY": str(other), "NOTIFY_SOCKET": ""}),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"another process is listening on the control socket {sock}" in second.stderr
        assert status(inst).returncode == 0  # the first one was not disturbed
        assert stop(proc, signal.SIGTERM) == 0
    assert not sock.exists()
    assert status(inst).returncode == 3
