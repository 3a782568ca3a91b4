"""Permission refused for real: a real ``pywats serve`` owned by root, and the TUI run as
another user (``nobody``, through ``setpriv``) against its socket. Both ways a service
refuses show the permission screen with the ``[rpc] allowed_group`` advice: the socket's
mode (0660: the kernel refuses the connection) and the service's own peer check
(``SO_PEERCRED``: the socket let the user in, the service closes the connection).

Only root can start a process as another user: elsewhere these tests are skipped.
"""

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

from tests.integration.harness import PYWATS, Instance, stop

ROOT = Path(__file__).parents[2]
SETPRIV = shutil.which("setpriv")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the TUI as another user"),
    pytest.mark.skipif(SETPRIV is None, reason="needs setpriv (util-linux) to change user"),
]


def other_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' to run the TUI as")


@pytest.fixture
def served() -> Iterator[Instance]:
    # Not under tmp_path: pytest's base folder is 0700, and the other user must reach
    # the socket's folder for the socket's own rules to be what refuses it.
    root = Path(tempfile.mkdtemp(prefix="pywats-refused-"))
    root.chmod(0o755)
    inst = Instance(root, "ict", server_url=None)
    proc = inst.serve()
    try:
        inst.wait_ready()
        yield inst
    finally:
        if proc.poll() is None:
            assert stop(proc, signal.SIGTERM) == 0, inst.log()
        inst.notify.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("refused_by", ["socket-mode", "peer-check"])
def test_another_user_gets_the_permission_screen_with_the_allowed_group_advice(
    served: Instance, refused_by: str
) -> None:
    user = other_user()
    socket = served.socket()
    assert os.stat(socket).st_mode & 0o777 == 0o660  # the service's own rule
    if refused_by == "peer-check":
        socket.chmod(0o666)  # the kernel lets anyone connect: the service must refuse
    assert SETPRIV is not None
    child = subprocess.run(
        [
            SETPRIV,
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            "--clear-groups",
            "--",
            sys.executable,
            "-m",
            "tests.tui.as_other_user",
            str(socket),
        ],
        cwd=ROOT,
        env={**os.environ, "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    shown = child.stdout
    assert child.returncode == 0, shown + child.stderr
    assert f"uid {user.pw_uid} connection refused" in shown
    assert "Permission refused" in shown
    assert "allowed_group" in shown
    assert "log in again" in shown
    # The service refused and went on: its owner still gets in.
    assert (
        "running"
        in subprocess.run(
            [*PYWATS, "status", "--instance", "ict"],
            env=served.env(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
    )
