"""Row 17 of the fault matrix at process level: a real ``pywats serve`` (as root) and the
real CLI run as another user (``nobody``, through ``setpriv``). Whether the socket's mode
refuses the connection or the service's peer check does (the socket opened to anyone),
``pywats status`` and ``pywats pause`` fail with the permission exit code and a line
naming ``[rpc] allowed_group``; nothing is paused; the service logs the refused uid once
however often it knocks, and its owner still gets in."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pywats.cli.control import EXIT_PERMISSION
from tests.integration.harness import PYWATS, Instance, stop

ROOT = Path(__file__).parents[3]
SETPRIV = shutil.which("setpriv")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the CLI as another user"),
    pytest.mark.skipif(SETPRIV is None, reason="needs setpriv (util-linux) to change user"),
]


@pytest.fixture
def served() -> Iterator[Instance]:
    # Not under tmp_path (0700): the other user must reach the socket's folder, so that
    # the socket's own mode, or the service, is what refuses it.
    root = Path(tempfile.mkdtemp(prefix="pywats-unauthorised-"))
    root.chmod(0o755)
    inst = Instance(root, "ict", server_url=None)
    inst.runtime.chmod(0o755)
    proc = inst.serve()
    try:
        inst.wait_ready()
        yield inst
    finally:
        if proc.poll() is None:
            assert stop(proc, signal.SIGTERM) == 0, inst.log()
        inst.notify.close()
        shutil.rmtree(root, ignore_errors=True)


def as_nobody(inst: Instance, *command: str) -> subprocess.CompletedProcess[str]:
    try:
        user = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' to run the CLI as")
    assert SETPRIV is not None
    env = {**inst.env(), "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"}
    switch = [SETPRIV, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    return subprocess.run(
        [*switch, "--", sys.executable, "-m", "pywats.cli", *command, "--instance", inst.name],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("refused_by", ["socket-mode", "peer-check"])
def test_another_user_is_refused_and_changes_nothing(served: Instance, refused_by: str) -> None:
    socket = served.socket()
    if refused_by == "peer-check":
        socket.chmod(0o666)  # the kernel lets anyone connect: the service must refuse
    for command in ("status", "pause", "status"):
        child = as_nobody(served, command)
        assert child.returncode == EXIT_PERMISSION, child.stdout + child.stderr
        assert "permission refused" in child.stderr, child.stderr
        assert "allowed_group" in child.stderr, child.stderr
    owner = subprocess.run(
        [*PYWATS, "status", "--instance", served.name],
        env=served.env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert owner.returncode == 0, owner.stderr
    assert "running" in owner.stdout  # not paused: the refused pause changed nothing
    refusals = [line for line in served.log().splitlines() if "refused uid" in line]
    if refused_by == "peer-check":
        assert len(refusals) == 1, refusals  # once per uid, not once per knock
    else:
        assert refusals == []  # the kernel refused: the service never saw it
