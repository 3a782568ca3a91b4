"""Real processes for the service tests: ``pywats receiver``, ``pywats serve`` and a fake
systemd notify socket. Everything is bounded in time and cleaned up by the fixtures."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.report.minimal import uut

PYWATS = [sys.executable, "-m", "pywats.cli"]

OPEN_SOCKETS: list[NotifySocket] = []
"""Notify sockets not closed yet; ``conftest.py`` closes them after each test."""


def wait_for(
    condition: Callable[[], object], *, timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after
    ``timeout`` seconds. (Across processes there is no event to wait on.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def report_bytes(index: int, *, pad: int = 0) -> tuple[str, bytes]:
    """A valid WSJF report with a fresh id and a distinct serial number."""
    doc = uut()
    report_id = str(uuid.uuid4())
    doc["id"] = report_id
    doc["sn"] = f"SN-{index:07d}"
    if pad:
        doc["miscInfos"].append({"description": "pad", "text": "x" * min(pad, 100)})
    return report_id, json.dumps(doc).encode()


class ReceiverProcess:
    """``pywats receiver`` on 127.0.0.1 with an ephemeral port."""

    def __init__(self, db: Path, *args: str, port: int = 0) -> None:
        self.db = db
        self.args = args
        # stderr to a file: an unread pipe would fill up and stall the receiver.
        self.log_path = db.with_suffix(".log")
        with self.log_path.open("w") as err:
            self.proc = subprocess.Popen(
                [*PYWATS, "receiver", "--port", str(port), "--db", str(db), *args],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"receiver did not start: {line!r} {self.log_path.read_text()}")
        self.url = line.rsplit(" ", 1)[1].strip()
        self.port = int(self.url.rsplit(":", 1)[1])
        # One kept-alive connection for polling: a new client per poll costs the polling
        # process (and so a benchmark's machine) more than the answer does.
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = self.client.get("/stats").json()
        return result

    def ids(self) -> set[str]:
        import sqlite3

        with contextlib.closing(sqlite3.connect(self.db)) as conn:
            return {row[0] for row in conn.execute("select id from reports")}

    def faults(self) -> dict[str, object]:
        """The fault settings in force (``GET /faults``)."""
        result: dict[str, object] = self.client.get("/faults").raise_for_status().json()
        return result

    def set_faults(self, **fields: object) -> dict[str, object]:
        """Replace the fault settings (``PUT /faults``; no fields heals); the new ones."""
        answer = self.client.put("/faults", json=fields)
        if answer.status_code != 200:
            raise AssertionError(f"PUT /faults {fields}: {answer.status_code} {answer.text}")
        result: dict[str, object] = answer.json()
        return result

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


class PlainServerProcess:
    """``bench/plain_server.py`` (the stdlib's HTTP stack) on 127.0.0.1 with an ephemeral
    port: the same ``url``, ``port``, ``db``, ``proc``, ``stats()``, ``ids()`` and
    ``stop()`` as :class:`ReceiverProcess`, no fault injection."""

    SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "plain_server.py"

    def __init__(self, db: Path) -> None:
        self.db = db
        self.log_path = db.with_suffix(".log")
        with self.log_path.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(self.SCRIPT), "--port", "0", "--db", str(db)],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(
                f"plain server did not start: {line!r} {self.log_path.read_text()}"
            )
        self.url = line.rsplit(" ", 1)[1].strip()
        self.port = int(self.url.rsplit(":", 1)[1])
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = self.client.get("/stats").json()
        return result

    def ids(self) -> set[str]:
        import sqlite3

        with contextlib.closing(sqlite3.connect(self.db)) as conn:
            return {row[0] for row in conn.execute("select id from reports")}

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class NotifySocket:
    """A fake ``$NOTIFY_SOCKET``: a datagram socket that records what the service says.

    A thread reads it all the time, as systemd does: the service's sends never find a
    full socket buffer, and each message is stamped when it arrives.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name="notify-socket", daemon=True)
        self._thread.start()
        OPEN_SOCKETS.append(self)

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self._lock:
                self.messages.append((time.monotonic(), fields))

    def snapshot(self) -> list[tuple[float, dict[str, str]]]:
        with self._lock:
            return list(self.messages)

    def wait_for(
        self, key: str, value: str | None = None, *, timeout: float = 30, since: float = 0.0
    ) -> float:
        """Block until a message with ``key`` (equal to ``value`` if given) that arrived
        after ``since`` (a ``time.monotonic()``); return its time."""

        def find() -> float | None:
            for stamp, fields in self.snapshot():
                if stamp > since and key in fields and (value is None or fields[key] == value):
                    return stamp
            return None

        stamp: float = wait_for(
            find, timeout=timeout, what=f"{key}={value or '*'} on the notify socket"
        )
        return stamp

    def keys(self) -> list[str]:
        return [key for _, fields in self.snapshot() for key in fields]

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self.sock.close()


class Instance:
    """Paths and environment of one ``pywats serve`` instance under ``root``."""

    def __init__(
        self,
        root: Path,
        name: str,
        *,
        server_url: str | None,
        workers: int = 5,
        fast_retry: bool = True,
    ) -> None:
        """``fast_retry``: retry delays of 0.05-0.5 s so tests do not wait; without it the
        instance runs on the shipped retry defaults (1 s, 300 s)."""
        self.name = name
        self.root = root / name
        self.state = self.root / "state"
        self.runtime = self.root / "run"
        self.watch = self.root / "in"
        self.done = self.root / "done"
        self.error = self.root / "error"
        for folder in (self.state, self.runtime, self.watch):
            folder.mkdir(parents=True, exist_ok=True)
        self.config = self.root / f"{name}.toml"
        server = f'[server]\nurl = "{server_url}"\n' if server_url else ""
        self.config.write_text(
            f'[station]\nname = "E2E-{name}"\n{server}'
            f"[upload]\nworkers = {workers}\n"
            + ("retry_base_s = 0.05\nretry_max_s = 0.5\n" if fast_retry else "")
            + f'[[converters]]\nname = "wsjf"\nwatch = "{self.watch}"\n'
            f'done_dir = "{self.done}"\nerror_dir = "{self.error}"\nsettle_s = 0.2\n'
        )
        self.notify = NotifySocket(self.root / "notify.sock")
        self.runs = 0
        self.log_path = self.root / "serve-0.log"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "PYWATS_TOKEN"):
            env.pop(key, None)
        env.update(
            STATE_DIRECTORY=str(self.state),
            RUNTIME_DIRECTORY=str(self.runtime),
            NOTIFY_SOCKET=str(self.notify.path),
            PYTHONUNBUFFERED="1",
        )
        env.update(extra or {})
        return env

    def serve(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        """Start ``pywats serve`` for this instance (see :meth:`wait_ready`).

        Its output goes to a file (:meth:`log`), not a pipe: a pipe nobody reads fills
        up and blocks the service's logging, and with it the service.
        """
        self.started_at = time.monotonic()
        self.runs += 1
        self.log_path = self.root / f"serve-{self.runs}.log"
        with self.log_path.open("w") as out:
            return subprocess.Popen(
                [*PYWATS, "serve", "--instance", self.name, "--config", str(self.config), *args],
                env=self.env(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )

    def log(self) -> str:
        """What the process started last by :meth:`serve` wrote."""
        return self.log_path.read_text()

    def wait_ready(self, *, timeout: float = 60) -> float:
        """Wait for READY=1 from the process started last by :meth:`serve`."""
        return self.notify.wait_for("READY", "1", timeout=timeout, since=self.started_at)

    def drop(self, count: int, *, start: int = 0) -> dict[str, str]:
        """Write ``count`` reports into the watch folder (atomically, by rename); id -> name."""
        ids = {}
        for index in range(start, start + count):
            report_id, data = report_bytes(index)
            tmp = self.watch / f".r{index}.tmp"
            tmp.write_bytes(data)
            tmp.rename(self.watch / f"r{index:07d}.json")
            ids[report_id] = f"r{index:07d}.json"
        return ids

    def db(self) -> Path:
        return self.state / "queue.db"

    def socket(self) -> Path:
        """The control socket (``$RUNTIME_DIRECTORY/control.sock``, see
        :func:`pywats.paths.socket_path`)."""
        return self.runtime / "control.sock"

    def queue_counts(self) -> dict[str, int]:
        from pywats.store import QueueReader

        with QueueReader.open(self.db()) as reader:
            stats = reader.stats(time.time())
        return _counts(stats)

    def files_left(self) -> list[Path]:
        return sorted(p for p in self.watch.iterdir() if p.is_file())


def _counts(stats: Any) -> dict[str, int]:
    from pywats.store import QueueState

    return {state.value: stats.count(state) for state in QueueState}


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, *, timeout: float = 30) -> int:
    """Signal ``proc`` and wait for it; kill it if it does not stop in ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise AssertionError(f"process {proc.pid} did not stop within {timeout} s") from None
    return code


@contextlib.contextmanager
def running(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Kill ``proc`` on the way out whatever happened (a failing test leaves no process)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


_HOLD_FOLDER_LOCK = (
    "import sys\n"
    "from pathlib import Path\n"
    "from pywats.folderlock import lock_folder\n"
    "lock = lock_folder(Path(sys.argv[1]))\n"
    "print('locked', flush=True)\n"
    "sys.stdin.read()\n"
)


@contextlib.contextmanager
def folder_locked_elsewhere(folder: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``folder``'s watch-folder lock (:mod:`pywats.folderlock`)
    from when it says so until the block ends (or it is killed)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_FOLDER_LOCK, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    with running(proc):
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "locked"
            yield proc
        finally:
            if proc.stdin is not None:
                proc.stdin.close()
