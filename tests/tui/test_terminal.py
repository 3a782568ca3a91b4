"""``pywats tui`` and ``pywats demo`` in a real terminal: tmux (``capture-pane`` reads the
screen, ``send-keys`` types), and a bare pseudo-terminal for the end of input.

Each test starts real processes and waits for what the screen shows with a bounded
deadline (polling, as between processes there is nothing to wait on), then checks that
the process exits the way it should and leaves no process behind. The tmux server is a
private one per test (``tmux -L``), killed at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.harness import PYWATS, Instance, stop, wait_for
from tests.report.minimal import uut
from tui.screen import CLIPBOARD_MAX_BYTES

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed (.ci/run installs it)")

DEADLINE_S = 30.0


class Tmux:
    """A private tmux server with one 80x24 pane running ``command``.

    The pane's shell runs the command and writes its exit status to a file (tmux's own
    ``pane_dead_status`` is not always filled in yet when the pane is dead); ``pid`` is
    the command's process.
    """

    def __init__(self, command: str, env: dict[str, str], status: Path) -> None:
        assert TMUX is not None
        self.name = f"pywats-test-{uuid.uuid4().hex[:8]}"
        self.env = env
        self.status = status
        self._tmux(
            "new-session", "-d", "-s", "t", "-x", "80", "-y", "24",
            f"{command}; echo $? > {status}",
        )  # fmt: skip
        shell = int(self._tmux("list-panes", "-t", "t", "-F", "#{pane_pid}").strip())
        found: list[int] = wait_for(
            lambda: children(shell), timeout=DEADLINE_S, what="the command to start"
        )
        self.pid = found[0]

    def _tmux(self, *args: str) -> str:
        assert TMUX is not None
        done = subprocess.run(
            [TMUX, "-L", self.name, "-f", os.devnull, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def take_clipboard(self) -> None:
        """Make an application's OSC 52 (set the clipboard) fill tmux's paste buffer
        (``set-clipboard on``; tmux's default, ``external``, ignores it)."""
        self._tmux("set-option", "-s", "set-clipboard", "on")

    def buffer(self) -> str | None:
        """The newest paste buffer (what the last OSC 52 copied), or None if none."""
        assert TMUX is not None
        done = subprocess.run(
            [TMUX, "-L", self.name, "-f", os.devnull, "show-buffer"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return done.stdout if done.returncode == 0 else None

    def wait_for(self, condition: Callable[[str], object], what: str) -> str:
        """Wait until the screen satisfies ``condition``; return the screen."""
        shown: list[str] = []

        def check() -> bool:
            shown[:] = [self.screen()]
            return bool(condition(shown[0]))

        try:
            wait_for(check, timeout=DEADLINE_S, what=what)
        except AssertionError:
            raise AssertionError(f"{what}; the screen:\n{shown[0] if shown else ''}") from None
        return shown[0]

    def exit_status(self) -> int:
        """Wait for the pane's command to end; its exit status."""

        def written() -> str | None:
            try:
                text = self.status.read_text().strip()
            except FileNotFoundError:
                return None
            return text or None

        return int(wait_for(written, timeout=DEADLINE_S, what="the command to exit"))

    def close(self) -> None:
        subprocess.run(
            [TMUX or "tmux", "-L", self.name, "kill-server"],
            capture_output=True,
            timeout=30,
            check=False,
        )


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def processes_mentioning(text: str) -> list[str]:
    """Command lines of the running pywats processes that mention ``text`` (not the tmux
    server nor the pane's shell, which name it in their own command lines)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in line and line.startswith(f"{sys.executable} -m pywats.cli"):
                found.append(line)
    return found


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Instance, list[subprocess.Popen[str]]]]:
    inst = Instance(tmp_path, "ict", server_url=None)
    procs = [inst.serve()]
    inst.wait_ready()
    try:
        yield inst, procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        inst.notify.close()


def queue_rows(screen: str) -> list[list[str]]:
    """The queue table's rows on the screen (state, serial, ...)."""
    rows = [line.split() for line in screen.splitlines()]
    return [r for r in rows if len(r) > 1 and r[0] == "pending" and r[1].startswith("SN-")]


def _command(*args: str) -> str:
    return " ".join([*PYWATS, *args])


def test_the_tui_in_tmux_follows_the_service_and_ends_on_sighup(
    service: tuple[Instance, list[subprocess.Popen[str]]],
) -> None:
    inst, procs = service
    paged = inst.root / "paged.txt"
    # A "pager" that copies what it is given (sed's w command) and returns at once.
    env = inst.env({"TERM": "xterm-256color", "PAGER": f"sed -n w{paged}"})
    tmux = Tmux(_command("tui", "--instance", "ict", "--refresh", "0.2"), env, inst.root / "status")
    try:
        tmux.wait_for(lambda s: "running" in s and "0 pending" in s, "the dashboard")
        inst.drop(3)
        tmux.wait_for(lambda s: "3 pending" in s, "3 pending in the header")
        tmux.keys("2")
        tmux.wait_for(lambda s: len(queue_rows(s)) == 3, "the queue's rows")
        # The detail pane below the table follows the highlighted row.
        tmux.wait_for(lambda s: f"serial     {queue_rows(s)[0][1]}" in s, "the pane")
        tmux.keys("Enter")
        tmux.wait_for(lambda s: "server said" in s, "the report's detail")
        tmux.keys("v")  # the terminal is handed to $PAGER, and back
        wait_for(paged.exists, timeout=DEADLINE_S, what="the pager")
        assert '"sn": "SN-000000' in paged.read_text()
        tmux.wait_for(lambda s: "server said" in s, "the detail again after the pager")
        tmux.keys("Escape")
        # Before the next key: an escape followed at once by "1" reads as alt+1.
        tmux.wait_for(lambda s: "server said" not in s, "the queue again")
        tmux.keys("1")
        assert stop(procs.pop(), signal.SIGTERM) == 0
        screen = tmux.wait_for(lambda s: "The service is not running" in s, "not running")
        assert str(inst.socket()) in "".join(screen.split())
        procs.append(inst.serve())
        inst.wait_ready()
        tmux.wait_for(
            lambda s: "running" in s and "not running" not in s and "3 pending" in s,
            "the service back",
        )
        assert children(tmux.pid) == []  # no child of its own, trio or otherwise
        os.kill(tmux.pid, signal.SIGHUP)  # what a dropped SSH session sends
        assert tmux.exit_status() == 128 + signal.SIGHUP
        assert gone(tmux.pid)
        log = (inst.state / "tui.log").read_text()
        assert "SIGHUP received: quitting" in log
        assert "exit 129" in log
    finally:
        tmux.close()


def test_c_copies_the_queue_into_the_terminal_clipboard(
    service: tuple[Instance, list[subprocess.Popen[str]]],
) -> None:
    inst, _ = service
    tmux = Tmux(
        _command("tui", "--instance", "ict", "--refresh", "0.2"),
        inst.env({"TERM": "xterm-256color"}),
        inst.root / "status",
    )
    try:
        tmux.take_clipboard()
        ids = inst.drop(3)
        tmux.keys("2")
        screen = tmux.wait_for(lambda s: len(queue_rows(s)) == 3, "the queue's rows")
        assert tmux.buffer() is None
        tmux.keys("c")
        copied = wait_for(tmux.buffer, timeout=DEADLINE_S, what="the copy in tmux's buffer")
        # What the screen shows, one row a line and tab-separated, with each report's id
        # and last error (none) added: docs/tui.md.
        id_of = {f"SN-{name[1:8]}": report_id for report_id, name in ids.items()}
        rows = ["\t".join([*row, id_of[row[1]], ""]) for row in queue_rows(screen)]
        header = "state\tserial\tpart number\tresult\tattempts\tqueued\tid\tlast error"
        assert copied == "\n".join([header, *rows])
        tmux.wait_for(lambda s: "copied queue (4 lines)" in s, "the copy's notice")
    finally:
        tmux.close()


def test_a_text_too_big_for_the_terminal_is_not_copied_but_saved(
    service: tuple[Instance, list[subprocess.Popen[str]]],
) -> None:
    inst, _ = service
    # A report whose detail is too big for one OSC 52 (over 1 MiB as base64).
    doc = uut()
    step = doc["root"]["steps"][0]
    doc["root"]["steps"] = [dict(step, id=i + 2, name=f"VCC {i}") for i in range(2500)]
    (inst.watch / ".big.tmp").write_text(json.dumps(doc))
    (inst.watch / ".big.tmp").rename(inst.watch / "big.json")
    tmux = Tmux(
        _command("tui", "--instance", "ict", "--refresh", "0.2"),
        inst.env({"TERM": "xterm-256color", "HOME": str(inst.root)}),
        inst.root / "status",
    )
    try:
        tmux.take_clipboard()
        tmux.keys("2")
        tmux.wait_for(lambda s: "pending  SN000123" in s, "the report in the queue")
        tmux.keys("Enter")
        tmux.wait_for(lambda s: '"sn": "SN000123"' in s, "the report's JSON")
        tmux.keys("c")
        tmux.wait_for(lambda s: "too big to copy" in s, "the refusal")
        assert tmux.buffer() is None
        tmux.keys("w")
        tmux.wait_for(lambda s: "Save to file" in s, "the save dialog")
        tmux.keys("Enter")
        (saved,) = wait_for(
            lambda: list(inst.root.glob("pywats-ict-report-*.txt")), timeout=DEADLINE_S,
            what="the saved report",
        )  # fmt: skip
        text = saved.read_text()
        assert len(text.encode()) > CLIPBOARD_MAX_BYTES
        assert text.startswith("id            3f1c2b1e-")
        assert '"name": "VCC 2499"' in text  # all of it, to the last step
    finally:
        tmux.close()


def test_tmux_takes_an_osc_52_of_the_most_that_c_copies(tmp_path: Path) -> None:
    # The sequence in the form Textual writes it (the test above sees tmux take it),
    # from a program in the pane: CLIPBOARD_MAX_BYTES is tmux's limit, not a guess.
    program = (
        "import base64, sys; sys.stdin.readline();"
        f" text = 'x' * {CLIPBOARD_MAX_BYTES};"
        r" sys.stdout.write('\x1b]52;c;' + base64.b64encode(text.encode()).decode() + '\a');"
        " sys.stdout.flush(); sys.stdin.read()"
    )
    tmux = Tmux(f'{sys.executable} -c "{program}"', dict(os.environ), tmp_path / "status")
    try:
        tmux.take_clipboard()
        tmux.keys("Enter")  # the program writes once tmux takes it
        copied = wait_for(tmux.buffer, timeout=DEADLINE_S, what="the copy in tmux's buffer")
        assert copied == "x" * CLIPBOARD_MAX_BYTES
    finally:
        tmux.close()


def test_the_end_of_input_ends_the_tui(
    service: tuple[Instance, list[subprocess.Popen[str]]],
) -> None:
    inst, _ = service
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*PYWATS, "tui", "--instance", "ict"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=inst.env({"TERM": "xterm-256color"}),
    )
    os.close(slave)
    seen = bytearray()
    try:

        def connected() -> bool:
            with contextlib.suppress(BlockingIOError):
                seen.extend(os.read(master, 65536))
            return b"running" in seen

        os.set_blocking(master, False)
        wait_for(connected, timeout=DEADLINE_S, what="the TUI to draw")
        started = time.monotonic()
        os.close(master)  # the terminal goes away: its input ends
        assert proc.wait(timeout=DEADLINE_S) == 0
        assert time.monotonic() - started < 10
        assert "the terminal's input ended" in (inst.state / "tui.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_without_a_terminal_it_says_so_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [*PYWATS, "tui", "--instance", "ict"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "pywats tui: needs a terminal (stdin and stderr are not one); for a one-shot look"
        " use `pywats status`"
    ]
    assert done.stdout == ""


@pytest.mark.parametrize("way", ["q", "SIGHUP"])
def test_the_demo_shows_everything_and_leaves_nothing(tmp_path: Path, way: str) -> None:
    workdir = tmp_path / "demo"
    env = dict(os.environ, TERM="xterm-256color")
    for key in ("STATE_DIRECTORY", "RUNTIME_DIRECTORY", "NOTIFY_SOCKET"):
        env.pop(key, None)
    tmux = Tmux(
        _command("demo", "--workdir", str(workdir), "--rate", "20"), env, tmp_path / "status"
    )
    try:
        tmux.wait_for(lambda s: "demo │ running" in s, "the demo's dashboard")
        tmux.wait_for(lambda s: "did not convert" in s and " 0 done" not in s, "reports done")
        assert len(processes_mentioning(str(workdir))) == 3  # demo, receiver, serve
        tmux.keys("2")
        tmux.wait_for(lambda s: "DEMO0" in s, "the demo's queue")
        if way == "q":
            tmux.keys("q")
            expected = 0
        else:
            os.kill(tmux.pid, signal.SIGHUP)
            expected = 128 + signal.SIGHUP
        assert tmux.exit_status() == expected
        assert gone(tmux.pid)
        assert not workdir.exists()
        assert processes_mentioning(str(workdir)) == []
    finally:
        tmux.close()
