"""A plain HTTP/1.1 WATS stand-in on the stdlib's HTTP stack, for benchmarks. Not a test.

    .venv/bin/python bench/plain_server.py [--port P] [--db PATH]

``pywats receiver`` speaks HTTP through h11 code of our own; this server answers the same
requests through ``http.server.ThreadingHTTPServer`` (one thread per connection, HTTP/1.1
keep-alive, a Content-Length on every answer), so a benchmark can tell what our server
costs from what the uploader costs. It listens on 127.0.0.1 only and answers:

* ``GET /api/App/Version``: 200, a JSON string;
* ``POST /api/Report/WSJF``: the body is parsed as JSON and its ``"id"`` kept (lower-cased,
  with the byte count); 200 ``{"id": ...}``, or 400 ``{"message": ...}`` for a body that
  is not a JSON object with a string ``id``. Nothing else is validated;
* ``GET /stats``: ``{"received", "unique", "duplicates", "bytes", "connections"}``; all
  but ``bytes`` mean what they mean in ``pywats receiver``'s ``/stats`` (``unique``
  counts the whole store, so with ``--db`` it includes earlier runs; ``connections``
  shows whether clients keep their connections alive);
* anything else: 404, or 405 with ``Allow`` for a known path. Paths match in any case.

With ``--db`` each id is also written (one upsert, WAL, ``synchronous=NORMAL``, as the
receiver does) to ``reports(id PRIMARY KEY, bytes, count)``, so a benchmark can watch the
file for one report's arrival just as it watches the receiver's. Auth headers are ignored.

On start it prints ``plain server listening on http://127.0.0.1:PORT`` on stdout and
flushes it; SIGTERM or SIGINT stops it (exit 0) with a one-line summary on stderr.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's directory is sys.path[0], and it holds bench/queue.py,
# named like the stdlib module ``queue`` (logging.handlers and others import it): take
# the directory off the path before anything imports ``queue``.
if sys.path and os.path.realpath(sys.path[0] or ".") == os.path.dirname(os.path.realpath(__file__)):
    sys.path.pop(0)

import argparse
import contextlib
import json
import signal
import sqlite3
import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

HOST = "127.0.0.1"
VERSION = "24.1.0-plain"
IDLE_TIMEOUT_S = 60.0
"""A connection that sends nothing for this long is closed (as ``pywats receiver`` does)."""
MAX_BODY_BYTES = 64 * 1024 * 1024

_ROUTES = {
    "/api/app/version": "GET",
    "/api/report/wsjf": "POST",
    "/stats": "GET",
}


class Reports:
    """The ids received, in memory and optionally in SQLite; safe to use from every
    connection thread (one lock: the upsert is short, and SQLite writes one at a time)."""

    def __init__(self, db: Path | None) -> None:
        self._lock = threading.Lock()
        self._ids: set[str] = set()
        self.received = 0
        self.duplicates = 0
        self.bytes = 0
        self.connections = 0
        self._conn: sqlite3.Connection | None = None
        if db is not None:
            self._conn = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS reports("
                "id TEXT PRIMARY KEY, bytes INTEGER NOT NULL, count INTEGER NOT NULL)"
            )
            self._ids = {row[0] for row in self._conn.execute("SELECT id FROM reports")}

    def put(self, report_id: str, size: int) -> bool:
        """Record one submission; True when the id was already there."""
        with self._lock:
            duplicate = report_id in self._ids
            if self._conn is not None:
                self._conn.execute(
                    "INSERT INTO reports(id, bytes, count) VALUES (?, ?, 1) ON CONFLICT(id) "
                    "DO UPDATE SET bytes = excluded.bytes, count = reports.count + 1",
                    (report_id, size),
                )
            self._ids.add(report_id)
            self.received += 1
            self.duplicates += duplicate
            self.bytes += size
            return duplicate

    def connected(self) -> None:
        with self._lock:
            self.connections += 1

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "received": self.received,
                "unique": len(self._ids),
                "duplicates": self.duplicates,
                "bytes": self.bytes,
                "connections": self.connections,
            }

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class Handler(BaseHTTPRequestHandler):
    """One connection: HTTP/1.1, so the stdlib keeps it open between requests as long as
    every answer carries its Content-Length."""

    protocol_version = "HTTP/1.1"
    server_version = "pywats-plain-server"
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    # Headers and body go out in two writes; without TCP_NODELAY the second waits for
    # the client's delayed ACK (about 40 ms on Linux) on every request.
    disable_nagle_algorithm = True
    server: PlainServer

    def setup(self) -> None:
        super().setup()
        self.server.reports.connected()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        path = self.path.partition("?")[0].lower().rstrip("/") or "/"
        allowed = _ROUTES.get(path)
        if allowed is None:
            self._discard_body()
            self._answer(404, {"message": f"no such endpoint: {method} {self.path}"})
        elif method != allowed:
            self._discard_body()
            self._answer(
                405, {"message": f"use {allowed} on {self.path}"}, headers={"Allow": allowed}
            )
        elif path == "/api/app/version":
            self._answer(200, VERSION)
        elif path == "/stats":
            self._answer(200, self.server.reports.stats())
        else:
            self._submit()

    def _submit(self) -> None:
        body = self._read_body()
        if body is None:
            return
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._answer(400, {"message": f"not valid JSON: {exc}"})
            return
        report_id = doc.get("id") if isinstance(doc, dict) else None
        if not isinstance(report_id, str) or not report_id:
            self._answer(400, {"message": "id: a report needs a string id"})
            return
        self.server.reports.put(report_id.lower(), len(body))
        self._answer(200, {"id": report_id})

    def _read_body(self) -> bytes | None:
        """The request body, or None once an error has been answered."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._answer(411, {"message": "a Content-Length is required"}, close=True)
            return None
        if int(length) > MAX_BODY_BYTES:
            self._answer(413, {"message": f"body over {MAX_BODY_BYTES} bytes"}, close=True)
            return None
        return self.rfile.read(int(length))

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                chunk = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self._answer(400, {"message": "bad chunk size"}, close=True)
                return None
            size += chunk
            if size > MAX_BODY_BYTES:
                self._answer(413, {"message": f"body over {MAX_BODY_BYTES} bytes"}, close=True)
                return None
            if chunk == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers, ignored
                return b"".join(chunks)
            chunks.append(self.rfile.read(chunk))
            self.rfile.readline(1024)  # the CRLF after the chunk

    def _discard_body(self) -> None:
        # Unread body bytes would be taken for the next request on this connection.
        length = self.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) <= MAX_BODY_BYTES:
            self.rfile.read(int(length))
        elif length is not None or self.headers.get("Transfer-Encoding"):
            self.close_connection = True

    def _answer(
        self,
        status: int,
        value: object,
        *,
        headers: dict[str, str] | None = None,
        close: bool = False,
    ) -> None:
        body = json.dumps(value, separators=(",", ":")).encode()
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, text in (headers or {}).items():
            self.send_header(name, text)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # One stderr line per request would cost the benchmark more than the answer.
        if self.server.verbose:
            super().log_message(format, *args)


class PlainServer(ThreadingHTTPServer):
    daemon_threads = True
    """Connection threads must not keep the process alive at shutdown (keep-alive ones
    sit in a read for up to IDLE_TIMEOUT_S)."""

    def __init__(self, port: int, reports: Reports, *, verbose: bool = False) -> None:
        self.reports = reports
        self.verbose = verbose
        super().__init__((HOST, port), Handler)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port (default 0: any free)")
    parser.add_argument("--db", type=Path, help="SQLite file for the ids (default: memory)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    reports = Reports(args.db)
    with _stop_on_signals() as stop:
        try:
            server = PlainServer(args.port, reports, verbose=args.verbose)
        except OSError as exc:
            print(f"plain server: cannot listen on {HOST}:{args.port}: {exc}", file=sys.stderr)
            return 1
        # serve_forever in a thread: shutdown() waits for its loop, so it cannot be
        # called from the thread running it (nor from a signal handler there).
        thread = threading.Thread(target=server.serve_forever, name="serve", daemon=True)
        thread.start()
        print(f"plain server listening on http://{HOST}:{server.server_address[1]}", flush=True)
        stop.wait()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    stats = reports.stats()
    reports.close()
    print(
        "plain server stopped: {received} received ({unique} unique, {duplicates} duplicates),"
        " {bytes} bytes".format(**stats),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
