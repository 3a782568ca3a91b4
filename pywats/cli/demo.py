"""``pywats demo``: the whole product on this machine, in one command.

It makes a temporary directory, starts ``pywats receiver`` and ``pywats serve`` on
loopback there, feeds a stream of generated test reports into the watch folder (most of
them passing, some with failing tests, a few files that are not reports at all, and now
and then a short server outage so the retry path shows), and opens ``pywats tui`` on that
instance. Quitting the TUI (or a signal) stops the feed and both processes, and removes
the directory it made; nothing else is touched. The children are in their own session
(the terminal's signals do not reach them; the demo stops them) and die with the demo
even if it is killed (``PR_SET_PDEATHSIG``).

Exit codes: the TUI's (0 after ``q``), 1 when a part cannot start, 2 without a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["Demo", "make_report", "register"]

INSTANCE = "demo"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
OUTAGE_EVERY = 90
"""Files between two server outages."""
OUTAGE_S = 8.0
INVALID_EVERY = 23
"""One file in this many is not a report at all."""
FAILING_EVERY = 7
"""One report in this many has a failing test."""

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def make_report(index: int, *, failing: bool, now: float) -> dict[str, Any]:
    """A valid WSJF UUT report: board ``index``, a voltage and a boolean test."""
    stamp = datetime.fromtimestamp(now, UTC)
    volts = 3.3 + (0.25 if failing else random.uniform(-0.05, 0.05))
    status = "F" if failing else "P"
    return {
        "id": str(uuid.uuid4()),
        "type": "T",
        "pn": "DEMO-100" if index % 3 else "DEMO-200",
        "sn": f"DEMO{index:06d}",
        "rev": "A",
        "processCode": 10,
        "result": status,
        "machineName": "demo-station",
        "location": "pywats demo",
        "purpose": "demo",
        "start": stamp.astimezone().isoformat(timespec="milliseconds"),
        "startUTC": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
        "uut": {"user": "demo", "execTime": 1.5},
        "miscInfos": [],
        "subUnits": [],
        "root": {
            "id": 1,
            "group": "M",
            "stepType": "SequenceCall",
            "name": "demo sequence",
            "status": status,
            "totTime": 1.5,
            "seqCall": {"path": "demo", "name": "demo sequence", "version": "1.0"},
            "steps": [
                {
                    "id": 2,
                    "group": "M",
                    "stepType": "ET_NLT",
                    "name": "supply voltage",
                    "status": status,
                    "numericMeas": [
                        {
                            "compOp": "GELE",
                            "status": status,
                            "unit": "V",
                            "value": round(volts, 3),
                            "lowLimit": 3.2,
                            "highLimit": 3.4,
                        }
                    ],
                },
                {
                    "id": 3,
                    "group": "M",
                    "stepType": "ET_PFT",
                    "name": "boot",
                    "status": "P",
                    "booleanMeas": [{"status": "P"}],
                },
            ],
        },
    }


class Demo:
    """The demo's processes and feed, in ``workdir`` (made by :meth:`open`, removed by
    :meth:`close`)."""

    def __init__(self, workdir: Path, *, rate: float, quiet: bool = False) -> None:
        self.workdir = workdir
        self.rate = rate
        self.quiet = quiet
        self.watch = workdir / "in"
        self.state = workdir / "state"
        self.runtime = workdir / "run"
        self.config = workdir / f"{INSTANCE}.toml"
        self.procs: list[subprocess.Popen[str]] = []
        self.names: dict[int, str] = {}
        """Each process's command (``receiver``, ``serve``), by pid."""
        self.receiver_url = ""
        self._stop = threading.Event()
        self._feeder: threading.Thread | None = None
        self.fed = 0

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"pywats demo: {message}", file=sys.stderr, flush=True)

    @property
    def socket(self) -> Path:
        return self.runtime / "control.sock"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "PYWATS_TOKEN"):
            env.pop(key, None)
        env.update(STATE_DIRECTORY=str(self.state), RUNTIME_DIRECTORY=str(self.runtime))
        return env

    def _spawn(self, *args: str, log: Path) -> subprocess.Popen[str]:
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pywats.cli", *args],
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if args[0] == "receiver" else out,
                stderr=out,
                text=True,
                preexec_fn=_die_with_parent,
            )
        self.procs.append(proc)
        self.names[proc.pid] = args[0]
        return proc

    def open(self) -> None:
        """Make the directory, start the receiver and the service, wait until they answer."""
        for folder in (self.watch, self.state, self.runtime):
            folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.runtime, 0o700)
        receiver = self._spawn(
            "receiver", "--port", "0", "--db", str(self.workdir / "receiver.db"),
            log=self.workdir / "receiver.log",
        )  # fmt: skip
        assert receiver.stdout is not None
        line = receiver.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"the receiver did not start: {line.strip() or 'no output'}")
        self.receiver_url = line.rsplit(" ", 1)[1].strip()
        self.config.write_text(
            f'[station]\nname = "demo-station"\nlocation = "pywats demo"\n\n'
            f'[server]\nurl = "{self.receiver_url}"\n\n'
            "[upload]\nworkers = 2\nretry_base_s = 1.0\nretry_max_s = 10.0\n\n"
            f'[[converters]]\nname = "wsjf"\nwatch = "{self.watch}"\n'
            f'done_dir = "{self.workdir / "done"}"\nerror_dir = "{self.workdir / "error"}"\n'
            "settle_s = 0.2\n"
        )
        self._spawn(
            "serve", "--instance", INSTANCE, "--config", str(self.config),
            log=self.workdir / "serve.log",
        )  # fmt: skip
        self._wait_for_socket()
        self.say(f"receiver on {self.receiver_url}, instance {INSTANCE!r} in {self.workdir}")

    def _wait_for_socket(self) -> None:
        import socket as sockets

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    name = self.names[proc.pid]
                    log = self.workdir / f"{name}.log"
                    tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                    raise RuntimeError(
                        f"pywats {name} exited with {proc.returncode}: " + " / ".join(tail)
                    )
            with contextlib.suppress(OSError), sockets.socket(sockets.AF_UNIX) as probe:
                probe.connect(str(self.socket))
                return
            time.sleep(0.05)
        raise RuntimeError(f"the service did not listen on {self.socket} within 30 s")

    def start_feed(self) -> None:
        self._feeder = threading.Thread(target=self._feed, name="demo-feed", daemon=True)
        self._feeder.start()

    def _put(self, name: str, data: bytes) -> None:
        tmp = self.watch / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.rename(self.watch / name)  # complete when it appears, as equipment should

    def _faults(self, client: Any, **fields: Any) -> None:
        with contextlib.suppress(Exception):  # the demo goes on without its outage
            client.put("/faults", json=fields)

    def _feed(self) -> None:
        import httpx

        with httpx.Client(base_url=self.receiver_url, timeout=5) as client:
            outage_until = 0.0
            index = 0
            while not self._stop.wait(1 / self.rate):
                index += 1
                if index % INVALID_EVERY == 0:
                    self._put(f"board-{index:06d}.json", b'{"pn": "DEMO-100", "sn": ')
                else:
                    report = make_report(index, failing=index % FAILING_EVERY == 0, now=time.time())
                    self._put(f"board-{index:06d}.json", json.dumps(report).encode())
                self.fed = index
                if index % OUTAGE_EVERY == 0:
                    self._faults(client, fail_rate=1.0, fail_status=503, fail_health=True)
                    outage_until = time.monotonic() + OUTAGE_S
                elif outage_until and time.monotonic() > outage_until:
                    self._faults(client)
                    outage_until = 0.0

    def close(self) -> None:
        """Stop the feed and the processes, remove the directory (idempotent)."""
        # Bounded, and it must finish: a second signal now would leave things behind.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        self._stop.set()
        if self._feeder is not None:
            self._feeder.join(timeout=5)
        for proc in reversed(self.procs):  # the service first, the receiver last
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()
        self.procs.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def _running(demo: Demo) -> Iterator[Demo]:
    try:
        demo.open()
        yield demo
    finally:
        demo.close()


def _cmd_demo(args: argparse.Namespace) -> int:
    from tui.run import NO_TERMINAL, is_terminal

    if not args.no_tui and not (is_terminal(sys.__stdin__) and is_terminal(sys.__stderr__)):
        print(NO_TERMINAL.replace("pywats tui", "pywats demo"), file=sys.stderr)
        return 2
    if args.workdir is not None:
        workdir = Path(args.workdir).absolute()
        try:
            workdir.mkdir(parents=True)  # ours only if we made it: it must not exist
        except OSError as exc:
            print(f"pywats demo: cannot use {workdir}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    else:
        workdir = Path(tempfile.mkdtemp(prefix="pywats-demo-"))
    demo = Demo(workdir, rate=args.rate)
    # SIGTERM/SIGHUP before the TUI owns them (while starting): clean up all the same.
    stop = signal.getsignal(signal.SIGTERM)

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    try:
        with _running(demo):
            demo.start_feed()
            if args.no_tui:
                demo.say("feeding; Ctrl-C stops")
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    return 0
            from tui.run import main as tui_main

            signal.signal(signal.SIGTERM, stop)
            os.environ.update(STATE_DIRECTORY=str(demo.state), RUNTIME_DIRECTORY=str(demo.runtime))
            code: int = tui_main(INSTANCE, refresh_s=args.refresh, socket=demo.socket)
            return code
    except KeyboardInterrupt:
        return 130
    except (RuntimeError, OSError) as exc:
        print(f"pywats demo: {exc}", file=sys.stderr)
        return 1
    finally:
        demo.say(f"stopped; removed {workdir}")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` command."""
    parser = subparsers.add_parser(
        "demo",
        help="show the whole product: receiver, service, generated reports and the TUI",
        description="Start a local receiver and service in a temporary directory, feed them"
        " generated reports (with failures, bad files and short outages) and open the TUI."
        " Quitting stops everything and removes the directory.",
    )
    parser.add_argument(
        "--rate", type=float, default=2.0, metavar="N", help="files per second (default 2)"
    )
    parser.add_argument(
        "--refresh", type=float, default=0.5, metavar="SECONDS", help="as pywats tui --refresh"
    )
    parser.add_argument("--workdir", metavar="DIR", help="use DIR (must not exist) for the demo")
    parser.add_argument(
        "--no-tui", action="store_true", help="run the receiver, service and feed without the TUI"
    )
    parser.set_defaults(func=_cmd_demo)
