"""A local WATS-compatible HTTP server with fault injection: ``pywats receiver``.

It answers the endpoints a station uses (submit WSJF/WSXF, read a report back, server
version, processes), stores what it accepts in SQLite, and can misbehave on purpose
(latency, injected error statuses, responses lost after the report was stored) so the
uploader's retry rules can be tested, benchmarked and demonstrated against a real socket.
``docs/receiver.md`` is the user's page; this docstring is the contract.

HTTP is spoken through h11 (a sans-IO HTTP/1.1 state machine) over trio sockets: one task
per connection in a nursery owned by :meth:`Receiver.run`, keep-alive and pipelining as
h11 allows, request bodies up to :attr:`ReceiverConfig.max_body_bytes` (413 beyond).

A request goes through these steps, in order; the first that answers wins:

1. framing: a malformed request gets 400 (or h11's hint, e.g. 431), a body larger than
   ``max_body_bytes`` 413 (counted as ``rejected`` on a submit path); both close the
   connection;
2. routing: an unknown path gets 404, a known path with the wrong method 405 (with
   ``Allow``); paths are matched case-insensitively, like the real server;
3. auth: with a token configured, every ``/api/`` request and ``/faults`` must carry
   ``Authorization: Basic <token>`` exactly, else 401 (``/stats`` is open);
4. faults, for *faultable* requests only (``POST /api/Report/*``, plus
   ``GET /api/App/Version`` when ``fail_health`` is set; never ``/faults`` or ``/stats``):
   ``latency_s`` of sleep, then the first ``fail_first`` faultable requests get
   ``fail_first_status``, later ones get ``fail_status`` with probability ``fail_rate``;
   injected failures carry ``Retry-After`` when configured and store nothing;
5. the endpoint: a submitted report is parsed and validated once (400 with a one-line
   message naming the field path), stored with one upsert, then with probability
   ``drop_rate`` the connection is closed without a response ("stored, response lost"),
   else 200 ``{"id": ...}``.

The fault settings (:class:`Faults`) start as the config's and can be replaced while the
server runs, in process with :meth:`Receiver.set_faults` or from another process with
``PUT /faults`` and a JSON object of fault fields (``{"fail_rate": 1, "fail_status":
500}``; fields left out take their defaults, so ``{}`` heals). Both answer with, and
``GET /faults`` reads, the settings in force as a JSON object of every fault field. A bad
body, an unknown field or a bad value gets 400 with a one-line message naming the field
(``fail_rate: must be between 0 and 1, got 2``) and changes nothing. A change applies to
each request that reaches a fault step after it; ``fail_first`` counts from the change.

Fault decisions are drawn from ``random.Random`` streams seeded from ``seed``, one for
failures and one for drops, so a given seed and request order (and the same changes at
the same points) always give the same faults; a change does not reseed them. Error bodies
are ``{"message": "..."}`` (one line), or that line as ``text/plain`` when the client's
``Accept`` asks for text and not JSON.
"""

from __future__ import annotations

import enum
import functools
import hmac
import http
import ipaddress
import json
import logging
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import NoReturn
from urllib.parse import unquote

import apsw
import attrs
import h11
import trio

from pywats import __version__
from pywats.errors import ConfigError, ReportError, StoreError
from pywats.report import wsjf
from pywats.report.model import Report

_log = logging.getLogger("pywats.receiver")

MIB = 1024 * 1024
DEFAULT_MAX_BODY_BYTES = 64 * MIB
"""Largest request body accepted; larger ones get 413."""

DEFAULT_HOST = "127.0.0.1"
"""Loopback: a test server is not reachable from the network unless asked."""

SERVER_VERSION = "24.1.0-pywats"
"""What ``GET /api/App/Version`` answers (a WATS-like version string)."""

IDLE_TIMEOUT_S = 60.0
"""A connection that sends nothing for this long (between or inside requests) is closed."""

LINGER_S = 2.0
"""After an early error response (413) keep reading this long before closing, so a client
still writing its body gets to read the response instead of a connection reset."""

RECEIVE_BYTES = 256 * 1024

_SERVER_HEADER = f"pywats-receiver/{__version__}".encode()

PROCESSES: tuple[Mapping[str, object], ...] = (
    {
        "code": 10,
        "name": "SW Debug",
        "description": "Software debugging runs",
        "isTestOperation": True,
        "isRepairOperation": False,
        "isWipOperation": False,
    },
    {
        "code": 20,
        "name": "Functional test",
        "description": "Functional test of the finished unit",
        "isTestOperation": True,
        "isRepairOperation": False,
        "isWipOperation": False,
    },
    {
        "code": 50,
        "name": "PCBA test",
        "description": "Board-level test",
        "isTestOperation": True,
        "isRepairOperation": False,
        "isWipOperation": False,
    },
    {
        "code": 90,
        "name": "Burn In test",
        "description": "Burn-in under temperature and load",
        "isTestOperation": True,
        "isRepairOperation": False,
        "isWipOperation": False,
    },
    {
        "code": 500,
        "name": "Repair",
        "description": "Repair of a failed unit",
        "isTestOperation": False,
        "isRepairOperation": True,
        "isWipOperation": False,
    },
)
"""What ``GET /api/App/Processes`` answers (query parameters are accepted and ignored)."""


# --- configuration -------------------------------------------------------------------


def _probability(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(attribute.name, f"must be between 0 and 1, got {value:g}")


def _error_status(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 400 <= value <= 599:
        raise ConfigError(attribute.name, f"must be an HTTP error status (400-599), got {value}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:  # also refuses NaN
        raise ConfigError(attribute.name, f"must not be negative, got {value:g}")


def _count(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ConfigError(attribute.name, f"must not be negative, got {value}")


def _port(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= 65535:
        raise ConfigError(attribute.name, f"must be 0-65535 (0: any free port), got {value}")


def _positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value <= 0:
        raise ConfigError(attribute.name, f"must be positive, got {value}")


def _header_value(_: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    # A header value cannot hold a line break or start/end with blanks (h11 refuses to
    # send it); say so at start-up rather than on the first injected failure.
    if value is not None and (not value or value != value.strip() or not value.isprintable()):
        raise ConfigError(attribute.name, "must be one line of printable text")


@attrs.frozen
class Faults:
    """The fault settings of a running :class:`Receiver`, replaced as a whole by
    :meth:`Receiver.set_faults` or ``PUT /faults``. The defaults inject nothing; invalid
    values raise :class:`~pywats.errors.ConfigError` naming the field. The fields and their
    meaning are those of the same names in :class:`ReceiverConfig`."""

    fail_rate: float = attrs.field(default=0.0, validator=_probability)
    fail_status: int = attrs.field(default=503, validator=_error_status)
    fail_first: int = attrs.field(default=0, validator=_count)
    fail_first_status: int = attrs.field(default=503, validator=_error_status)
    retry_after: str | None = attrs.field(default=None, validator=_header_value)
    latency_s: float = attrs.field(default=0.0, validator=_non_negative)
    drop_rate: float = attrs.field(default=0.0, validator=_probability)
    fail_health: bool = False

    @property
    def active(self) -> bool:
        """True when any fault is injected (``fail_health`` alone injects nothing)."""
        return bool(self.fail_rate or self.fail_first or self.latency_s or self.drop_rate)

    @classmethod
    def from_fields(cls, fields: Mapping[str, object]) -> Faults:
        """Build from field names and plain values (keyword arguments or a JSON object);
        fields not given keep their defaults. An integer is taken for a float field.

        Raises:
            ConfigError: an unknown field, a value of the wrong type or out of range;
                ``key`` is the field name.
        """
        known = attrs.fields_dict(cls)
        values: dict[str, object] = {}
        for name, value in fields.items():
            if name not in known:
                raise ConfigError(name, f"not a fault field (known: {', '.join(known)})")
            values[name] = _checked(name, known[name].type, value)
        # _checked made the values the field types; attrs validates the ranges.
        return cls(**values)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, object]:
        """The fields as a JSON object (what ``GET /faults`` answers)."""
        return attrs.asdict(self)


def _checked(name: str, annotation: object, value: object) -> object:
    # JSON has one number type and bool is an int in Python: say plainly what is wanted
    # instead of letting a comparison deep in a validator fail with a TypeError.
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if annotation == "float":
        if isinstance(value, int | float) and number:
            return float(value)
        wanted = "a number"
    elif annotation == "int":
        if isinstance(value, int) and number:
            return value
        wanted = "an integer"
    elif annotation == "bool":
        if isinstance(value, bool):
            return value
        wanted = "true or false"
    elif annotation == "str | None":
        if value is None or isinstance(value, str):
            return value
        wanted = "a string or null"
    else:  # pragma: no cover - a new field needs its type here
        raise AssertionError(f"no type check for fault field {name}: {annotation}")
    try:
        shown = json.dumps(value)
    except (TypeError, ValueError):  # an in-process caller passed a Python object
        shown = repr(value)
    raise ConfigError(name, f"must be {wanted}, got {shown}")


@attrs.frozen
class ReceiverConfig:
    """How a :class:`Receiver` listens, stores and misbehaves. Invalid values raise
    :class:`~pywats.errors.ConfigError` naming the field.

    The fault fields (``fail_rate`` to ``fail_health``, gathered by :attr:`faults`) are
    the settings the receiver starts with; :meth:`Receiver.set_faults` and ``PUT /faults``
    replace them while it runs."""

    host: str = DEFAULT_HOST
    """Address to bind; loopback by default."""
    port: int = attrs.field(default=0, validator=_port)
    """TCP port; 0 binds any free port (:meth:`Receiver.run` reports the one it got)."""
    db_path: Path | None = None
    """SQLite database file; None keeps the reports in memory for the life of ``run``."""
    token: str | None = attrs.field(default=None, repr=False, validator=_header_value)
    """When set, ``/api/`` requests need ``Authorization: Basic <token>``. Never logged."""
    max_body_bytes: int = attrs.field(default=DEFAULT_MAX_BODY_BYTES, validator=_positive)
    """Largest request body accepted; larger ones get 413 and the connection is closed."""
    fail_rate: float = attrs.field(default=0.0, validator=_probability)
    """Probability (0..1) that a faultable request gets ``fail_status``."""
    fail_status: int = attrs.field(default=503, validator=_error_status)
    """Status of failures injected by ``fail_rate``."""
    fail_first: int = attrs.field(default=0, validator=_count)
    """The first this many faultable requests get ``fail_first_status``."""
    fail_first_status: int = attrs.field(default=503, validator=_error_status)
    """Status of failures injected by ``fail_first``."""
    retry_after: str | None = attrs.field(default=None, validator=_header_value)
    """``Retry-After`` value sent with injected failures (seconds or an HTTP date)."""
    latency_s: float = attrs.field(default=0.0, validator=_non_negative)
    """Sleep added to every faultable request, before the failure decision."""
    drop_rate: float = attrs.field(default=0.0, validator=_probability)
    """Probability (0..1) that a stored report's response is lost (connection closed)."""
    fail_health: bool = False
    """Make ``GET /api/App/Version`` faultable too (latency and failures, never a drop), so
    a station's health probe sees the same outage as its uploads."""
    seed: int | None = None
    """Seed of the fault decisions; None picks one at random (logged at INFO)."""

    @property
    def faults(self) -> Faults:
        """The fault settings a :class:`Receiver` starts with."""
        return Faults(**{name: getattr(self, name) for name in attrs.fields_dict(Faults)})

    @property
    def injects_faults(self) -> bool:
        """True when any fault option is active."""
        return self.faults.active


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --- results ---------------------------------------------------------------------------


@attrs.frozen
class ReceiverStats:
    """Counters since :meth:`Receiver.run` started (``unique`` counts the whole store)."""

    received: int
    """Reports parsed, validated and stored (duplicates and dropped responses included)."""
    unique: int
    """Distinct report ids in the store."""
    duplicates: int
    """Stored reports whose id was already in the store (each overwrote the older copy)."""
    rejected: int
    """Submissions refused: invalid report (400) or body too large (413)."""
    failed_injected: int
    """Requests answered with an injected failure status (nothing stored)."""
    dropped_injected: int
    """Stored reports whose connection was closed instead of answered."""
    connections: int
    """TCP connections accepted (keep-alive shows as many requests per connection)."""


@attrs.frozen
class StoredReport:
    """One report as the receiver stored it."""

    id: str
    """The id, lower-cased (ids are matched case-insensitively)."""
    body: bytes
    """The WSJF JSON: the exact bytes of a WSJF submission, or WSJF made from a WSXF one."""
    received_at: str
    """ISO 8601 UTC time of the latest submission."""
    count: int
    """How many times this id was submitted."""

    @classmethod
    def from_row(cls, row: tuple[apsw.SQLiteValue, ...]) -> StoredReport:
        """Build from a ``(id, body, received_at, count)`` row."""
        report_id, body, received_at, count = row
        assert isinstance(report_id, str)
        assert isinstance(body, bytes)
        assert isinstance(received_at, str)
        assert isinstance(count, int)
        return cls(report_id, body, received_at, count)


# --- storage -----------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports(
    id TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    received_at TEXT NOT NULL,
    count INTEGER NOT NULL
);
"""

_UPSERT = """
INSERT INTO reports(id, body, received_at, count) VALUES (?, ?, ?, 1)
ON CONFLICT(id) DO UPDATE SET
    body = excluded.body, received_at = excluded.received_at, count = reports.count + 1
RETURNING count
"""


class _Store:
    """The reports table, written inline on the trio thread.

    An upsert of 5 KB without fsync (WAL, ``synchronous=NORMAL``) measured 30 us median,
    130 us p99 and 7 ms at worst (a WAL checkpoint) on a 2-core VM: less than handing it to
    a worker thread costs on average, and one thread serialises the writers for free.
    """

    def __init__(self, path: Path | None) -> None:
        name = ":memory:" if path is None else str(path)
        try:
            self._conn = apsw.Connection(name)
            # Not apsw.bestpractice.apply(): that changes every connection in the process,
            # and the receiver often runs inside a test process next to the real store.
            self._conn.execute("PRAGMA journal_mode=WAL").fetchall()
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.set_busy_timeout(5000)
            with self._conn:
                self._conn.execute(_SCHEMA)
            self.count = self._scalar("SELECT count(*) FROM reports")
        except apsw.Error as exc:
            raise StoreError(f"{name}: cannot open the receiver database: {exc}") from exc

    def _scalar(self, sql: str) -> int:
        value = self._conn.execute(sql).fetchall()[0][0]
        assert isinstance(value, int)
        return value

    def put(self, report_id: str, body: bytes) -> int:
        """Store ``body`` under ``report_id``; return how often that id has been stored."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        try:
            rows = self._conn.execute(_UPSERT, (report_id, body, now)).fetchall()
        except apsw.Error as exc:
            raise StoreError(f"cannot store report {report_id}: {exc}") from exc
        count = rows[0][0]
        assert isinstance(count, int)
        if count == 1:
            self.count += 1
        return count

    def get(self, report_id: str) -> StoredReport | None:
        """The stored report, or None."""
        try:
            rows = self._conn.execute(
                "SELECT id, body, received_at, count FROM reports WHERE id = ?", (report_id,)
            ).fetchall()
        except apsw.Error as exc:
            raise StoreError(f"cannot read report {report_id}: {exc}") from exc
        return StoredReport.from_row(rows[0]) if rows else None

    def close(self) -> None:
        self._conn.close()


# --- fault injection -----------------------------------------------------------------


class _Faults:
    """The fault decisions, in request order; separate random streams keep the failure
    pattern of a seed the same whatever ``drop_rate`` is.

    Replacing the settings keeps both streams where they are (so a seed, the request
    order and the points of change still give the same faults) and restarts the
    ``fail_first`` count: the first K faultable requests *after the change* fail.
    """

    def __init__(self, settings: Faults, seed: int) -> None:
        self.settings = settings
        self.seed = seed
        self._fail = random.Random(f"{seed}:fail")
        self._drop = random.Random(f"{seed}:drop")
        self._seen = 0

    def replace(self, settings: Faults) -> None:
        self.settings = settings
        self._seen = 0

    def failure(self) -> int | None:
        """The status to inject into the next faultable request, or None to serve it."""
        self._seen += 1
        settings = self.settings
        if self._seen <= settings.fail_first:
            return settings.fail_first_status
        if settings.fail_rate and self._fail.random() < settings.fail_rate:
            return settings.fail_status
        return None

    def drop(self) -> bool:
        """True when the response to the report just stored is to be lost."""
        rate = self.settings.drop_rate
        return bool(rate) and self._drop.random() < rate


# --- HTTP plumbing -------------------------------------------------------------------


@attrs.frozen
class _Request:
    method: str
    target: str
    path: str
    """Lower-cased, percent-decoded, without query and trailing slash: the routing key."""
    headers: Mapping[bytes, bytes]
    body: bytes

    def wants_text(self) -> bool:
        accept = self.headers.get(b"accept", b"").lower()
        return b"text/plain" in accept and b"json" not in accept and b"*/*" not in accept


@attrs.frozen
class _Response:
    status: int
    body: bytes = b""
    content_type: bytes = b"application/json"
    headers: tuple[tuple[bytes, bytes], ...] = ()
    note: str = ""
    """For the log line only (an error message, "injected")."""
    warn: bool = False
    """Log at WARNING: something a client got wrong, not a planned fault."""


class _Drop:
    """Handler result: close the connection without answering."""


_DROP = _Drop()


def _json(
    status: int, value: object, *, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> _Response:
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return _Response(status, body, headers=headers)


def _error(
    request: _Request | None,
    status: int,
    message: str,
    *,
    headers: tuple[tuple[bytes, bytes], ...] = (),
    warn: bool = True,
) -> _Response:
    message = " ".join(message.splitlines())
    if request is not None and request.wants_text():
        body = (message + "\n").encode()
        return _Response(status, body, b"text/plain; charset=utf-8", headers, message, warn)
    body = json.dumps({"message": message}, ensure_ascii=False).encode()
    return _Response(status, body, b"application/json", headers, message, warn)


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


class _Route(enum.Enum):
    SUBMIT_WSJF = enum.auto()
    SUBMIT_WSXF = enum.auto()
    GET_WSJF = enum.auto()
    VERSION = enum.auto()
    PROCESSES = enum.auto()
    STATS = enum.auto()
    FAULTS = enum.auto()

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods the route answers."""
        if self is _Route.FAULTS:
            return ("GET", "PUT")
        return ("POST",) if self in _SUBMIT_ROUTES else ("GET",)

    @property
    def needs_token(self) -> bool:
        """With a token configured, the request must carry it: all of ``/api/``, and
        ``/faults`` because it changes what the server answers; ``/stats`` only reads."""
        return self is not _Route.STATS


_EXACT_ROUTES = {
    "/api/report/wsjf": _Route.SUBMIT_WSJF,
    "/api/report/wsxf": _Route.SUBMIT_WSXF,
    "/api/app/version": _Route.VERSION,
    "/api/app/processes": _Route.PROCESSES,
    "/stats": _Route.STATS,
    "/faults": _Route.FAULTS,
}
_SUBMIT_ROUTES = (_Route.SUBMIT_WSJF, _Route.SUBMIT_WSXF)
_GET_WSJF_PREFIX = "/api/report/wsjf/"


def _match(path: str) -> tuple[_Route, str] | None:
    route = _EXACT_ROUTES.get(path)
    if route is not None:
        return route, ""
    if path.startswith(_GET_WSJF_PREFIX):
        report_id = path.removeprefix(_GET_WSJF_PREFIX)
        if report_id and "/" not in report_id:
            return _Route.GET_WSJF, report_id
    return None


def _routing_path(target: str) -> str:
    path = target.partition("?")[0]
    if "://" in path[:8]:
        # Absolute form ("POST http://host/api/Report/WSJF"), what a client sends to an
        # HTTP proxy; RFC 9112 section 3.2.2 says a server must accept it too.
        path = "/" + path.partition("://")[2].partition("/")[2]
    path = unquote(path).lower()
    return path.rstrip("/") or "/"


def _wsxf_parser() -> Callable[[bytes], Report] | None:
    # Imported on first use: the WSXF reader is optional for the receiver, and the server
    # must start (and serve WSJF) without it.
    try:
        from pywats.report.wsxf import parse_one
    except ImportError:
        return None
    return parse_one


def _peer(stream: trio.SocketStream) -> str:
    try:
        address = stream.socket.getpeername()
    except OSError:
        return "?"
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)


class _ConnectionDone(Exception):
    """The connection is over (client left, timed out or broke the protocol)."""


# --- the server ------------------------------------------------------------------------


class Receiver:
    """A WATS-compatible HTTP server for tests, benchmarks, demos and commissioning.

    Start it with ``port = await nursery.start(receiver.run)``; cancel the nursery to stop
    it. :meth:`stats` and :meth:`get_report` may be called while it runs.
    """

    def __init__(self, config: ReceiverConfig | None = None) -> None:
        self.config = config if config is not None else ReceiverConfig()
        self.port: int | None = None
        """The bound port while running."""
        self._store: _Store | None = None
        # Seeded for real by run(); the settings outlive a run (see set_faults).
        self._faults = _Faults(self.config.faults, 0)
        self._received = 0
        self._duplicates = 0
        self._rejected = 0
        self._failed = 0
        self._dropped = 0
        self._connections = 0
        self._unique_at_stop = 0

    @property
    def url(self) -> str:
        """``http://host:port`` while running."""
        if self.port is None:
            raise RuntimeError("the receiver is not running")
        host = self.config.host
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"http://{host}:{self.port}"

    def stats(self) -> ReceiverStats:
        """A snapshot of the counters (the last run's, once stopped)."""
        return ReceiverStats(
            received=self._received,
            unique=self._store.count if self._store is not None else self._unique_at_stop,
            duplicates=self._duplicates,
            rejected=self._rejected,
            failed_injected=self._failed,
            dropped_injected=self._dropped,
            connections=self._connections,
        )

    @property
    def faults(self) -> Faults:
        """The fault settings in force (the config's until :meth:`set_faults`)."""
        return self._faults.settings

    def set_faults(self, **fields: object) -> Faults:
        """Replace the fault settings as a whole and return the new ones: fields not given
        take their defaults, so ``set_faults()`` heals the server. ``PUT /faults`` does the
        same for a receiver in another process.

        The change applies to every request that reaches a fault step after it; the seeded
        random streams go on where they were, and ``fail_first`` counts from the change.
        Settings made before :meth:`run`, or during one, hold for later runs too.

        Raises:
            ConfigError: an unknown field, a wrong type or a value out of range (as
                :class:`ReceiverConfig` refuses it); ``key`` is the field name. The settings
                in force are kept.
        """
        settings = Faults.from_fields(fields)
        self._faults.replace(settings)
        defaults = attrs.asdict(Faults())
        shown = " ".join(
            f"{name}={value}"
            for name, value in attrs.asdict(settings).items()
            if value != defaults[name]
        )
        if self.port is not None:
            # The seed makes a run repeatable; at start it is logged only if faults are on.
            _log.info("faults now: %s (seed %d)", shown or "none", self._faults.seed)
        return settings

    def get_report(self, report_id: str) -> StoredReport | None:
        """The stored report with ``report_id`` (any case), or None.

        Raises:
            StoreError: the receiver is not running (its database is closed).
        """
        if self._store is None:
            raise StoreError("the receiver is not running")
        return self._store.get(report_id.lower())

    async def run(
        self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Open the database, bind, report the bound port, and serve until cancelled.

        Resource handling:
            Connections run in a nursery owned by this call; cancelling it closes them
            and then the database (an in-memory store is gone after that).

        Error handling:
            A database that cannot be opened raises StoreError, an address that cannot be
            bound OSError, both before ``task_status.started``. Errors inside one
            connection are logged and close that connection only.
        """
        config = self.config
        seed = config.seed
        if seed is None:
            seed = random.SystemRandom().randrange(2**32)
        faults = self._faults.settings
        if faults.active:
            _log.info("fault injection on (seed %d)", seed)
        self._faults = _Faults(faults, seed)
        self._received = self._duplicates = self._rejected = 0
        self._failed = self._dropped = self._connections = 0
        self._store = _Store(config.db_path)
        try:
            listeners = await self._listen()
            async with trio.open_nursery() as nursery:
                # The handler nursery is this one, so connections end with run().
                await nursery.start(
                    functools.partial(
                        trio.serve_listeners,
                        self._serve_connection,
                        listeners,
                        handler_nursery=nursery,
                    )
                )
                self.port = listeners[0].socket.getsockname()[1]
                _log.info("listening on %s", self.url)
                task_status.started(self.port)
                await trio.sleep_forever()
        finally:
            self.port = None
            self._unique_at_stop = self._store.count
            self._store.close()
            self._store = None
        raise AssertionError("unreachable: sleep_forever returned")  # pragma: no cover

    async def _listen(self) -> list[trio.SocketListener]:
        listeners = await trio.open_tcp_listeners(self.config.port, host=self.config.host)
        if self.config.port == 0 and len(listeners) > 1:
            # Port 0 gives each address (e.g. ::1 and 127.0.0.1) its own random port;
            # one port is what a caller can use, so keep the first address only.
            for extra in listeners[1:]:
                await extra.aclose()
            listeners = listeners[:1]
        return listeners

    # --- one connection ---

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        self._connections += 1
        peer = _peer(stream)
        conn = h11.Connection(h11.SERVER)
        try:
            while await self._exchange(stream, conn, peer):
                conn.start_next_cycle()
        except _ConnectionDone:
            pass
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            _log.debug("%s connection lost: %s", peer, exc)
        except Exception:
            _log.warning("%s connection failed", peer, exc_info=True)

    async def _next_event(self, stream: trio.SocketStream, conn: h11.Connection) -> h11.Event:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                with trio.move_on_after(IDLE_TIMEOUT_S):
                    data = await stream.receive_some(RECEIVE_BYTES)
                    conn.receive_data(data)
                    continue
                raise _ConnectionDone  # idle for too long
            if event is h11.PAUSED:  # pragma: no cover - we never read past a request
                raise _ConnectionDone
            assert isinstance(event, h11.Event)
            return event

    async def _exchange(self, stream: trio.SocketStream, conn: h11.Connection, peer: str) -> bool:
        """Serve one request; True when the connection can carry another."""
        started = trio.current_time()
        try:
            head = await self._next_event(stream, conn)
            if isinstance(head, h11.ConnectionClosed):
                return False
            assert isinstance(head, h11.Request)
            method = head.method.decode("ascii", "replace")
            target = head.target.decode("ascii", "replace")
            headers = dict(head.headers)
            path = _routing_path(target)
            length = headers.get(b"content-length")
            limit = self.config.max_body_bytes
            if length is not None and int(length) > limit:
                response = self._too_large(path, method, f"of {int(length)} bytes ")
                await self._respond(stream, conn, response, peer, method, target, started)
                await self._linger(stream)
                return False
            if conn.they_are_waiting_for_100_continue:
                await stream.send_all(
                    _send(conn, h11.InformationalResponse(status_code=100, headers=[]))
                )
            chunks: list[bytes] = []
            size = 0
            while True:
                event = await self._next_event(stream, conn)
                if isinstance(event, h11.Data):
                    size += len(event.data)
                    if size > limit:
                        response = self._too_large(path, method, "")
                        await self._respond(stream, conn, response, peer, method, target, started)
                        await self._linger(stream)
                        return False
                    chunks.append(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:  # ConnectionClosed mid-body
                    return False
            request = _Request(method, target, path, headers, b"".join(chunks))
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                response = _error(None, exc.error_status_hint, f"bad request: {exc}")
                await self._respond(stream, conn, response, peer, "-", "-", started)
            else:  # pragma: no cover - we answer only after the request is complete
                _log.warning("%s protocol error: %s", peer, exc)
            return False

        try:
            outcome = await self._dispatch(request)
        except StoreError as exc:
            outcome = _error(request, 500, str(exc))
        except Exception as exc:
            # A bug (ours or a parser's) must not look like an injected drop to the
            # client, so answer 500 and keep the traceback in the log.
            _log.warning("%s %s %s failed", peer, method, target, exc_info=True)
            outcome = _error(request, 500, f"internal error: {type(exc).__name__}: {exc}")
        if isinstance(outcome, _Drop):
            self._log(peer, method, target, "dropped (injected)", started, warn=False)
            await stream.aclose()
            return False
        await self._respond(stream, conn, outcome, peer, method, target, started)
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    def _too_large(self, path: str, method: str, size: str) -> _Response:
        match = _match(path)
        if match is not None and match[0] in _SUBMIT_ROUTES and method == "POST":
            self._rejected += 1
        limit = self.config.max_body_bytes
        return _error(
            None,
            413,
            f"request body {size}is larger than the limit of {limit} bytes",
            headers=((b"connection", b"close"),),
        )

    async def _linger(self, stream: trio.SocketStream) -> None:
        # The client may still be writing the body we refused; closing now would reset
        # the connection and lose our answer, so read and discard for a little while.
        with trio.move_on_after(LINGER_S):
            await stream.send_eof()
            while await stream.receive_some(RECEIVE_BYTES):
                pass

    async def _respond(
        self,
        stream: trio.SocketStream,
        conn: h11.Connection,
        response: _Response,
        peer: str,
        method: str,
        target: str,
        started: float,
    ) -> None:
        headers = [
            (b"content-type", response.content_type),
            (b"content-length", str(len(response.body)).encode()),
            (b"date", formatdate(usegmt=True).encode()),
            (b"server", _SERVER_HEADER),
            *response.headers,
        ]
        data = _send(
            conn,
            h11.Response(
                status_code=response.status, headers=headers, reason=_reason(response.status)
            ),
        )
        if response.body:
            data += _send(conn, h11.Data(data=response.body))
        data += _send(conn, h11.EndOfMessage())
        status = f"{response.status} {response.note}".rstrip()
        self._log(peer, method, target, status, started, warn=response.warn)
        await stream.send_all(data)

    def _log(
        self, peer: str, method: str, target: str, outcome: str, started: float, *, warn: bool
    ) -> None:
        # The target is safe to log (the token travels in a header, which is never logged).
        level = logging.WARNING if warn else logging.DEBUG
        if _log.isEnabledFor(level):
            elapsed_ms = (trio.current_time() - started) * 1000
            _log.log(level, "%s %s %s -> %s (%.1f ms)", peer, method, target, outcome, elapsed_ms)

    # --- endpoints ---

    async def _dispatch(self, request: _Request) -> _Response | _Drop:
        match = _match(request.path)
        if match is None:
            return _error(request, 404, f"no such endpoint: {request.method} {request.target}")
        route, argument = match
        if request.method not in route.methods:
            return _error(
                request,
                405,
                f"{request.method} is not allowed on {request.target}"
                f" (use {' or '.join(route.methods)})",
                headers=((b"allow", ", ".join(route.methods).encode()),),
            )
        if route.needs_token and not self._authorized(request):
            return _error(request, 401, "token refused")
        # Each step reads the settings current when it runs, so a change (PUT /faults)
        # applies to every request that reaches the step after it, even one in latency.
        if route in _SUBMIT_ROUTES or (
            route is _Route.VERSION and self._faults.settings.fail_health
        ):
            latency_s = self._faults.settings.latency_s
            if latency_s:
                await trio.sleep(latency_s)
            status = self._faults.failure()
            if status is not None:
                self._failed += 1
                retry = self._faults.settings.retry_after
                extra = ((b"retry-after", retry.encode()),) if retry is not None else ()
                return _error(
                    request,
                    status,
                    f"injected failure ({status}) from pywats receiver",
                    headers=extra,
                    warn=False,
                )
        if route is _Route.SUBMIT_WSJF:
            return self._submit(request, wsjf.loads, raw=True)
        if route is _Route.SUBMIT_WSXF:
            parse = _wsxf_parser()
            if parse is None:
                return _error(request, 501, "WSXF is not supported by this pywats installation")
            return self._submit(request, parse, raw=False)
        if route is _Route.GET_WSJF:
            stored = self.get_report(argument)
            if stored is None:
                return _error(request, 404, f"no report with id {argument}")
            return _Response(200, stored.body)
        if route is _Route.VERSION:
            return _json(200, SERVER_VERSION)
        if route is _Route.PROCESSES:
            return _json(200, list(PROCESSES))
        if route is _Route.FAULTS:
            return self._faults_endpoint(request)
        return _json(200, attrs.asdict(self.stats()))

    def _faults_endpoint(self, request: _Request) -> _Response:
        if request.method == "PUT":
            try:
                fields = json.loads(request.body)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                return _error(request, 400, f"body: not valid JSON: {exc}")
            if not isinstance(fields, dict):
                return _error(
                    request, 400, "body: must be a JSON object of fault fields ({} heals)"
                )
            try:
                self.set_faults(**fields)
            except ConfigError as exc:
                return _error(request, 400, str(exc))
        return _json(200, self._faults.settings.to_json())

    def _authorized(self, request: _Request) -> bool:
        token = self.config.token
        if token is None:
            return True
        given = request.headers.get(b"authorization", b"")
        return hmac.compare_digest(given, b"Basic " + token.encode())

    def _submit(
        self, request: _Request, parse: Callable[[bytes], Report], *, raw: bool
    ) -> _Response | _Drop:
        try:
            report = parse(request.body)
        except ReportError as exc:
            self._rejected += 1
            return _error(request, 400, str(exc))
        # A WSJF body is kept byte for byte; a WSXF one is kept as the WSJF it became,
        # so GET /api/Report/Wsjf/{id} always answers JSON, as the real server does.
        body = request.body if raw else wsjf.dumps(report)
        assert self._store is not None
        count = self._store.put(report.id.lower(), body)
        self._received += 1
        if count > 1:
            self._duplicates += 1
        if self._faults.drop():
            self._dropped += 1
            return _DROP
        note = "duplicate" if count > 1 else ""
        response = _json(200, {"id": report.id})
        return attrs.evolve(response, note=note)


def _send(conn: h11.Connection, event: h11.Event) -> bytes:
    data = conn.send(event)
    assert data is not None  # None only for ConnectionClosed, which we never send
    return data


__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_BODY_BYTES",
    "PROCESSES",
    "SERVER_VERSION",
    "Faults",
    "Receiver",
    "ReceiverConfig",
    "ReceiverStats",
    "StoredReport",
    "is_loopback",
]
