"""A backend double for the TUI's screen tests: canned answers, fixed data, no trio.

:class:`FakeBackend` answers every method the app calls from a small fake queue, records
each call (``calls``), and lets a test post what a real service would send (``connect``,
``notify``, ``disconnect``). :data:`NOW` is the fixed clock of every snapshot.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.message import Message

from pywats.rpc.errors import ErrorCode, RpcError
from tui.backend import NotConnectedError
from tui.messages import Connected, Disconnected, Notified

NOW = 1_796_112_000.0
"""2026-12-01 08:00:00 UTC: the clock of every test here."""

SOCKET = Path("/run/pywats/ict/control.sock")


def report(index: int, state: str, **fields: Any) -> dict[str, Any]:
    """A queue row as ``queue.list`` answers it."""
    row: dict[str, Any] = {
        "id": f"00000000-0000-4000-8000-{index:012d}",
        "state": state,
        "attempts": 0,
        "next_attempt_at": NOW - 100 + index,
        "last_error": None,
        "last_status": None,
        "created_at": NOW - 3600 + index * 60,
        "updated_at": NOW - 3500 + index * 60,
        "converter": "wsjf",
        "source": f"/srv/results/ict/board-{index:03d}.json",
        "pn": "PCBA-100" if index % 3 else "PCBA-200",
        "sn": f"SN{index:05d}",
        "result": "Passed" if index % 4 else "Failed",
        "start": "2026-12-01T07:00:00.000+01:00",
        "size": 2048 + index,
    }
    row.update(fields)
    return row


def reports() -> list[dict[str, Any]]:
    rows = [report(i, "done") for i in range(1, 9)]
    rows += [
        report(9, "pending", attempts=2, last_status=503, last_error="HTTP 503: try later"),
        report(10, "failed", attempts=1, last_status=400, last_error="HTTP 400: bad miscInfo"),
        report(11, "pending"),
        report(12, "uploading", attempts=1),
    ]
    return list(reversed(rows))


def status() -> dict[str, Any]:
    return {
        "instance": "ict",
        "version": "0.1.0",
        "protocol": {"version": 1, "oldest": 1},
        "state": "running",
        "uptime_s": 3725.0,
        "pid": 4242,
        "stream": "stream-1",
        "server": {
            "url": "https://wats.example.com",
            "state": "online",
            "version": "23.1",
            "latency_ms": 41.7,
            "reason": "",
            "uploaded": 8,
            "failed": 1,
            "retried": 2,
            "in_flight": 1,
            "last_error": "HTTP 503: try later",
        },
        "queue": {
            "pending": 2,
            "uploading": 1,
            "done": 8,
            "failed": 1,
            "oldest_pending_age_s": 420.0,
            "total_bytes": 24576,
        },
        "folders": [
            {
                "name": "ict",
                "path": "/srv/results/ict",
                "converter": "wsjf",
                "enabled": True,
                "processed": 11,
                "rejected": 1,
                "last_error": "not valid JSON at line 1",
            },
            {
                "name": "fct",
                "path": "/srv/results/fct",
                "converter": "csv",
                "enabled": False,
                "processed": 1,
                "rejected": 0,
                "last_error": None,
            },
        ],
        "clock": NOW,
    }


def config() -> dict[str, Any]:
    return {
        "instance": "ict",
        "file": "/etc/pywats/ict.toml",
        "server_url_option": None,
        "station": {"name": "ICT-1", "location": "Line 2", "purpose": "ICT"},
        "server": {
            "url": "https://wats.example.com",
            "token": {"source": "server.token_file", "path": "/etc/pywats/ict.token"},
            "timeout_s": 30.0,
            "verify_tls": True,
            "proxy": None,
        },
        "upload": {"workers": 4, "retry_base_s": 1.0, "retry_max_s": 300.0},
        "convert": {"workers": 4},
        "queue": {"path": "/var/lib/pywats/ict/queue.db", "retention_days": 7},
        "rpc": {"allowed_group": "pywats"},
        "log": {"level": "info"},
        "converters": [
            {
                "name": "ict",
                "folder": "ict",
                "converter": "wsjf",
                "converter_version": "1.0",
                "watch": "/srv/results/ict",
                "patterns": ["*.json"],
                "done_dir": "/var/lib/pywats/ict/done/wsjf",
                "error_dir": "/var/lib/pywats/ict/error/wsjf",
                "post_action": "move",
                "enabled": True,
            },
            {
                "name": "fct",
                "folder": "fct",
                "converter": "csv",
                "converter_version": "1.0",
                "watch": "/srv/results/fct",
                "patterns": ["*.csv"],
                "done_dir": "/var/lib/pywats/ict/done/csv",
                "error_dir": "/var/lib/pywats/ict/error/csv",
                "post_action": "move",
                "enabled": False,
            },
        ],
    }


def error_files() -> list[dict[str, Any]]:
    return [
        {
            "folder": "ict",
            "name": "board-013.json",
            "path": "/var/lib/pywats/ict/error/wsjf/board-013.json",
            "size": 17,
            "mtime": NOW - 900,
            "sidecar": "/var/lib/pywats/ict/error/wsjf/board-013.json.error.txt",
            "error": "file: /srv/results/ict/board-013.json\nconverter: wsjf 1.0\n"
            "reason: not valid JSON: Expecting ',' delimiter\nwhere: line 1 column 18\n",
        }
    ]


INFO = """instance  ict
service   running (pid 4242)
pywats    0.1.0, Python 3.11.7, trio 0.35.0, httpx 0.28.1
          textual 8.2.8, apsw 3.51.3.0, SQLite 3.51.3
platform  Linux-6.1-x86_64
config    /etc/pywats/ict.toml
state     /var/lib/pywats/ict
queue     /var/lib/pywats/ict/queue.db
socket    /run/pywats/ict/control.sock
log       journal (journalctl -u pywats@ict)
token     server.token_file /etc/pywats/ict.token
"""

INSTANCES = [
    {
        "instance": "ict",
        "state": "running",
        "pid": 4242,
        "service_state": "running",
        "socket": "/run/pywats/ict/control.sock",
        "found_in": ["config", "runtime"],
    },
    {
        "instance": "fct",
        "state": "stopped",
        "pid": None,
        "service_state": None,
        "socket": "/run/pywats/fct/control.sock",
        "found_in": ["config"],
    },
]


async def fake_pywats(*args: str) -> tuple[int, str]:
    """``pywats info`` and ``pywats instances --json`` with canned output."""
    if args[:1] == ("info",):
        return 0, INFO
    if args[:1] == ("instances",):
        return 0, json.dumps(INSTANCES)
    return 1, f"unexpected: pywats {' '.join(args)}"


class FakeBackend:
    """A :class:`~tui.backend.Backend` with a fixed service behind it."""

    def __init__(self, *, connect: bool = True) -> None:
        self.instance = "ict"
        self.socket = SOCKET
        self.connect_on_start = connect
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.rows = reports()
        self.bodies: dict[str, str] = {}  # a report's JSON by id, instead of the small one
        self.files = error_files()
        self.post: Callable[[Message], object] = lambda message: None
        self.started = False
        self.stopped = False
        self.connected = False
        self.config_answer: dict[str, Any] | None = None
        """What ``config.get`` answers instead of :func:`config` (a newer service's)."""

    def start(self, post: Callable[[Message], object]) -> None:
        self.started = True
        self.post = post
        if self.connect_on_start:
            self.connect()

    async def stop(self) -> None:
        self.stopped = True

    @property
    def finished(self) -> bool:
        return self.stopped

    def connect(self) -> None:
        self.connected = True
        self.post(Connected(status(), str(self.socket), "stream-1"))

    def disconnect(self, kind: str = "not_running") -> None:
        self.connected = False
        message = {
            "not_running": f"the service is not running: nothing listens on {self.socket}",
            "refused": f"permission refused: the service at {self.socket} closed the"
            " connection before answering (this user is not its user, root, or in [rpc]"
            " allowed_group)",
        }.get(kind, "the connection ended")
        self.post(Disconnected(kind, str(self.socket), message, 1.0))

    def notify(self, *notes: tuple[str, dict[str, Any]]) -> None:
        self.post(Notified(tuple(notes)))

    def reconnect_now(self) -> None:
        self.connect()

    def switch(self, instance: str, socket: Path) -> None:
        self.instance, self.socket = instance, socket

    async def call(self, method: str, /, **params: Any) -> Any:
        self.calls.append((method, params))
        if not self.connected:
            raise NotConnectedError("not connected", self.socket)
        if method == "service.status":
            return status()
        if method == "queue.list":
            rows = [r for r in self.rows if params.get("state") in (None, r["state"])]
            text = (params.get("search") or "").lower()
            rows = [r for r in rows if text in r["sn"].lower() or text in r["pn"].lower()]
            return {"reports": copy.deepcopy(rows), "next_cursor": None}
        if method == "queue.get":
            row = next((r for r in self.rows if r["id"] == params["id"]), None)
            if row is None:
                raise RpcError(ErrorCode.REPORT_NOT_FOUND, "no report with that id")
            body = self.bodies.get(row["id"]) or json.dumps(
                {"id": row["id"], "pn": row["pn"], "sn": row["sn"], "type": "T"}
            )
            return {**row, "body": body}
        if method == "queue.retry":
            ids = params.get("ids") or [r["id"] for r in self.rows if r["state"] == "failed"]
            for row in self.rows:
                if row["id"] in ids:
                    row["state"] = "pending"
            return {"count": len(ids), "requeued": ids, "missing": []}
        if method == "queue.delete":
            self.rows = [r for r in self.rows if r["id"] not in params["ids"]]
            return {"deleted": params["ids"], "missing": []}
        if method == "files.errors":
            return {"files": copy.deepcopy(self.files), "truncated": False}
        if method == "files.restore":
            self.files = [f for f in self.files if f["name"] != params["name"]]
            return {"folder": params["folder"], "name": params["name"], "path": "/srv/x"}
        if method == "config.get":
            return self.config_answer if self.config_answer is not None else config()
        if method in ("converters.enable", "converters.disable"):
            return {"name": params["name"], "enabled": method.endswith("enable")}
        if method == "server.test":
            answer: dict[str, Any] = dict(status()["server"])
            if params.get("send_report"):
                answer["report"] = {"outcome": "uploaded", "message": "accepted"}
            return answer
        raise RpcError(ErrorCode.METHOD_NOT_FOUND, f"method not found: {method!r}")


CONFIG_FILE = b"""
[station]
name = "ICT-1"
location = "Line 2"

[server]
url = "https://wats.example.com"
token_file = "/etc/pywats/ict.token"

[upload]
workers = 4

[[converters]]
name = "ict"
watch = "/srv/results/ict"

[[converters]]
name = "fct"
watch = "/srv/results/fct"
enabled = false
"""


def fake_read(path: str) -> bytes:
    """The config file ``config.get`` names."""
    if path == "/etc/pywats/ict.toml":
        return CONFIG_FILE
    raise FileNotFoundError(2, "No such file or directory", path)


def events() -> list[tuple[str, dict[str, Any]]]:
    """A few minutes of a station's notifications (seq 101...)."""
    rid = "00000000-0000-4000-8000-0000000000"
    notes: list[tuple[str, dict[str, Any]]] = [
        (
            "report.queued",
            {
                "report_id": f"{rid}13",
                "folder": "ict",
                "pn": "PCBA-100",
                "sn": "SN00013",
                "result": "Passed",
                "converter": "wsjf",
                "source": "/srv/results/ict/board-013.json",
            },
        ),
        (
            "report.uploaded",
            {
                "report_id": f"{rid}13",
                "attempt": 1,
                "status": 200,
                "pn": "PCBA-100",
                "sn": "SN00013",
            },
        ),
        (
            "report.retrying",
            {
                "report_id": f"{rid}09",
                "attempt": 2,
                "status": 503,
                "message": "HTTP 503: try later",
                "next_attempt_at": NOW + 30,
                "pn": "PCBA-200",
                "sn": "SN00009",
            },
        ),
        (
            "report.failed",
            {
                "report_id": f"{rid}10",
                "attempt": 1,
                "status": 400,
                "message": "HTTP 400: bad miscInfo",
                "pn": "PCBA-100",
                "sn": "SN00010",
            },
        ),
        (
            "file.rejected",
            {
                "folder": "ict",
                "source": "/srv/results/ict/board-014.json",
                "converter": "wsjf",
                "reason": "not valid JSON",
                "field": "line 1",
                "error_file": "/var/lib/pywats/ict/error/wsjf/board-014.json",
                "sidecar": None,
                "detail": "",
            },
        ),
        (
            "status.changed",
            {"component": "folder:fct", "state": "disabled", "reason": "by the operator"},
        ),
        (
            "stats",
            {
                "queue": {
                    "pending": 2,
                    "uploading": 1,
                    "done": 9,
                    "failed": 1,
                    "oldest_pending_age_s": 420.0,
                },
                "uploads": {"uploaded": 9, "failed": 1, "retried": 2},
                "folders": {"ict": {"processed": 12, "rejected": 2}},
            },
        ),
    ]
    for index, (_, params) in enumerate(notes):
        params.update(stream="stream-1", seq=101 + index, at=NOW - 300 + index * 40)
    return notes
