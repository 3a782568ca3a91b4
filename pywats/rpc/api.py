"""The pywats control methods: :data:`REGISTRY`, every one of them through the ServiceView.

Each handler takes a :class:`Context` (the view, the caller's :class:`Session` for the
event subscription, and the queue database's path for the read-only queue methods) and
the parameters its registration declares. What a method answers is built here from the
view's frozen snapshots with :mod:`pywats.rpc.wire`.

The queue reads (``queue.list``, ``queue.get``) are not control verbs and the view does
not offer them: they open the database read-only (:class:`~pywats.store.QueueReader`,
WAL lets a reader and the service's writer go on together) in a worker thread.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Protocol

import attrs
import trio

from pywats import filenames
from pywats.errorfiles import (
    ErrorFileNotFoundError,
    NameTakenError,
    RestoreIncompleteError,
    RestoreRefusedError,
)
from pywats.events import (
    PUBLISHED,
    Gap,
)
from pywats.rpc import wire
from pywats.rpc.codec import Encoded, dumps
from pywats.rpc.errors import ErrorCode, RpcError
from pywats.rpc.methods import NotificationSpec, Param, ParamType, Registry
from pywats.rpc.snapshots import StatusCache
from pywats.store import LIST_ORDERS, QueueReader, QueueState
from pywats.view import NoConfigError, ServiceState, ServiceView

__all__ = [
    "OLDEST_PROTOCOL",
    "PROTOCOL",
    "REGISTRY",
    "Context",
    "Session",
]

PROTOCOL = 1
"""The protocol version this service speaks (``service.status`` ``protocol.version``)."""
OLDEST_PROTOCOL = 1
"""The oldest client protocol version it still serves."""

LIST_LIMIT_MAX = 1000


class Session(Protocol):
    """The caller's connection, as far as the methods need it (its event subscription)."""

    def subscribe(self, since: int | None) -> dict[str, Any]:
        """Start (or keep) pushing events to this connection; returns ``{stream, seq}``."""

    def unsubscribe(self) -> bool:
        """Stop pushing events; ``True`` if a subscription was open."""


@attrs.frozen
class Context:
    """What a handler may use: the view (the one way in), the caller, the queue's path,
    and the server's last status answer (shared by its connections)."""

    view: ServiceView
    session: Session
    db_path: Path | None = None
    status_cache: StatusCache = attrs.field(factory=StatusCache)


REGISTRY: Registry[Context] = Registry()
"""Every method and notification of the control protocol."""

_STARTING = ErrorCode.SERVICE_STARTING
_STOPPING = ErrorCode.SERVICE_STOPPING


def _not_stopping(view: ServiceView) -> None:
    # A stopping service finishes what it has; steering it then would only race the stop.
    if view.state is ServiceState.STOPPING:
        raise RpcError(_STOPPING, "the service is stopping")


# --- service ----------------------------------------------------------------------------


@REGISTRY.method(
    "service.status",
    doc="A snapshot of the whole service: state, server, queue counts, folders, clock.",
    result=(
        "{instance, version, protocol {version, oldest}, state (starting|running|paused|"
        "stopping), uptime_s, pid, stream, server {url, state (online|offline|paused|none),"
        " version, latency_ms, reason, uploaded, failed, retried, in_flight, last_error,"
        " clock_ahead_s (the station's clock ahead of the server's, s)},"
        " queue {pending, uploading, done, failed, oldest_pending_age_s, total_bytes} or null"
        " while starting, folders [{name, path, converter, enabled, processed, rejected,"
        " last_error, patterns, recursive}], disk_full (where the disk is full, or null),"
        " clock (epoch s)}"
    ),
)
async def _status(ctx: Context) -> Encoded:
    seq, now = ctx.view.hub.last_seq, trio.current_time()
    cached = ctx.status_cache.get(seq, now)
    if cached is not None:
        return cached
    snapshot = await ctx.view.status()
    out: dict[str, Any] = wire.unstructure(snapshot)
    out["protocol"] = {"version": PROTOCOL, "oldest": OLDEST_PROTOCOL}
    out["stream"] = ctx.view.hub.stream_id
    text = Encoded(dumps(out))
    # Made at the sequence number seen before the snapshot: an event published while the
    # store was read makes the next call build a new one.
    ctx.status_cache.put(seq, now, text)
    return text


@REGISTRY.method(
    "service.pause",
    doc="Pause uploads (those in flight finish); conversion and queueing go on.",
    result="{state}",
    errors=(_STARTING, _STOPPING),
)
async def _pause(ctx: Context) -> dict[str, Any]:
    _not_stopping(ctx.view)
    ctx.view.pause_uploads()
    return {"state": ctx.view.state.value}


@REGISTRY.method(
    "service.resume",
    doc="End any upload pause (operator, refused token, wrong URL) and check the server now.",
    result="{state}",
    errors=(_STARTING, _STOPPING),
)
async def _resume(ctx: Context) -> dict[str, Any]:
    _not_stopping(ctx.view)
    ctx.view.resume_uploads()
    return {"state": ctx.view.state.value}


@REGISTRY.method(
    "service.stop",
    doc="Stop gracefully, as SIGTERM. The answer comes before the stop; the socket then closes.",
    result="{stopping: true}",
)
async def _stop(ctx: Context) -> dict[str, Any]:
    ctx.view.stop()
    return {"stopping": True}


# --- queue ------------------------------------------------------------------------------


@REGISTRY.method(
    "queue.stats",
    doc="Report counts by state and the age of the oldest report still to upload.",
    result="{pending, uploading, done, failed, oldest_pending_age_s, total_bytes}",
    errors=(_STARTING,),
)
async def _queue_stats(ctx: Context) -> dict[str, Any]:
    snapshot = await ctx.view.status()
    if snapshot.queue is None:
        raise RpcError(_STARTING, "the service is starting: the queue is not open yet")
    result: dict[str, Any] = wire.unstructure(snapshot.queue)
    return result


def _reader_path(ctx: Context) -> Path:
    if ctx.db_path is None:
        raise RpcError(ErrorCode.NOT_IMPLEMENTED, "this service has no queue database to read")
    return ctx.db_path


def _report_row(report: Any, *, body: bool) -> dict[str, Any]:
    row: dict[str, Any] = wire.unstructure(report)
    if not body:
        row.pop("body", None)
    return row


@REGISTRY.method(
    "queue.list",
    doc=(
        "One page of reports without bodies, newest first unless sort says otherwise (equal"
        " values newest queued first, so the order is total); pass next_cursor for the"
        " next page, which continues this one exactly even while reports come and go."
    ),
    params=(
        Param("state", ParamType.STRING, "only reports in this state", default=None),
        Param(
            "search",
            ParamType.STRING,
            "serial or part number contains this text",
            default=None,
        ),
        Param(
            "limit",
            ParamType.INTEGER,
            "reports per page",
            default=100,
            minimum=1,
            maximum=LIST_LIMIT_MAX,
        ),
        Param(
            "cursor",
            ParamType.STRING,
            "next_cursor of the page before (with the same sort and reverse)",
            default=None,
        ),
        Param(
            "sort",
            ParamType.STRING,
            "newest, oldest, updated (last changed first), state (failed, pending,"
            " uploading, done), sn, pn, result (A to Z), attempts (most first),"
            " next_attempt (soonest first)",
            default="newest",
        ),
        Param("reverse", ParamType.BOOLEAN, "the exact reverse of that order", default=False),
    ),
    result=(
        "{reports [{id, state, attempts, next_attempt_at, last_error, last_status, created_at,"
        " updated_at, converter, source, pn, sn, result, start, size}], next_cursor or null}"
    ),
    errors=(ErrorCode.QUEUE_ERROR,),
)
async def _queue_list(
    ctx: Context,
    state: str | None,
    search: str | None,
    limit: int,
    cursor: str | None,
    sort: str,
    reverse: bool,
) -> dict[str, Any]:
    path = _reader_path(ctx)
    try:
        wanted = QueueState(state) if state is not None else None
    except ValueError:
        states = ", ".join(s.value for s in QueueState)
        raise RpcError(
            ErrorCode.INVALID_PARAMS,
            f"invalid params: 'state' must be one of {states}, got {state!r}",
            {"param": "state"},
        ) from None
    order = LIST_ORDERS.get(sort)
    if order is None:
        raise RpcError(
            ErrorCode.INVALID_PARAMS,
            f"invalid params: 'sort' must be one of {', '.join(LIST_ORDERS)}, got {sort!r}",
            {"param": "sort"},
        )
    if reverse:
        order = order.reversed()
    after = None if cursor is None else _cursor_position(cursor, sort, reverse)

    def read() -> list[Any]:
        with QueueReader.open(path) as reader:
            # One more than asked says whether there is a next page.
            return reader.list_reports(
                state=wanted, sn=search, limit=limit + 1, sort=sort, reverse=reverse, after=after
            )

    rows = await trio.to_thread.run_sync(read)
    more = len(rows) > limit
    next_cursor = None
    if more:
        last = rows[limit - 1]
        next_cursor = _make_cursor(sort, reverse, order.value(last), last.id)
    return {
        "reports": [_report_row(row, body=False) for row in rows[:limit]],
        "next_cursor": next_cursor,
    }


_CURSOR_PREFIX = "k1."


def _make_cursor(sort: str, reverse: bool, value: str | int | float, last_id: str) -> str:
    # Opaque to clients: where the page ended (the last row's sort value and id), and in
    # which order, so a cursor of another order is refused rather than misread.
    text = json.dumps([sort, reverse, value, last_id], separators=(",", ":"))
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(text.encode()).decode()


def _cursor_position(cursor: str, sort: str, reverse: bool) -> tuple[str | int | float, str]:
    def bad(why: str) -> RpcError:
        return RpcError(
            ErrorCode.INVALID_PARAMS,
            f"invalid params: 'cursor' {why}: {cursor!r}",
            {"param": "cursor"},
        )

    if not cursor.startswith(_CURSOR_PREFIX):
        raise bad("is not a cursor this service gave")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor[len(_CURSOR_PREFIX) :]))
        made_sort, made_reverse, value, last_id = decoded
    except (ValueError, TypeError) as exc:
        raise bad("is not a cursor this service gave") from exc
    if (made_sort, made_reverse) != (sort, reverse):
        raise bad(f"is of another order ({made_sort}, reverse {made_reverse})")
    if not isinstance(value, str | int | float) or not isinstance(last_id, str):
        raise bad("is not a cursor this service gave")
    return value, last_id


@REGISTRY.method(
    "queue.get",
    doc="One report with its JSON, attempts, next attempt, last HTTP status and error.",
    params=(Param("id", ParamType.STRING, "the report's id", required=True),),
    result="a report as in queue.list, plus body (the report JSON as text)",
    errors=(ErrorCode.REPORT_NOT_FOUND, ErrorCode.QUEUE_ERROR),
)
async def _queue_get(ctx: Context, id: str) -> dict[str, Any]:
    path = _reader_path(ctx)

    def read() -> Any:
        with QueueReader.open(path) as reader:
            return reader.get(id)

    return _report_row(await trio.to_thread.run_sync(read), body=True)


@REGISTRY.method(
    "queue.retry",
    doc=(
        "Make reports due now: those of ids (failed or waiting), or every failed one with"
        " failed: true. Give exactly one of the two."
    ),
    params=(
        Param("ids", ParamType.STRINGS, "report ids", default=None),
        Param("failed", ParamType.BOOLEAN, "every failed report", default=False),
    ),
    result=(
        "{count, requeued: [ids] (empty with failed: true), missing: [ids not in the queue]};"
        " a report uploading or done is an error (nothing after it is done)"
    ),
    errors=(_STARTING, _STOPPING, ErrorCode.QUEUE_ERROR),
)
async def _queue_retry(ctx: Context, ids: list[str] | None, failed: bool) -> dict[str, Any]:
    if (ids is None) == (not failed):
        raise RpcError(
            ErrorCode.INVALID_PARAMS,
            "invalid params: give either 'ids' or 'failed': true",
            {"param": "ids"},
        )
    _not_stopping(ctx.view)
    if ids is None:
        return {"count": await ctx.view.requeue_failed(), "requeued": [], "missing": []}
    missing = await ctx.view.requeue(ids)
    requeued = [i for i in ids if i not in missing]
    return {"count": len(requeued), "requeued": requeued, "missing": missing}


@REGISTRY.method(
    "queue.delete",
    doc="Delete reports in any state (they will not be uploaded).",
    params=(Param("ids", ParamType.STRINGS, "report ids", required=True),),
    result="{deleted: [ids], missing: [ids not in the queue]}",
    errors=(_STARTING, _STOPPING, ErrorCode.QUEUE_ERROR),
)
async def _queue_delete(ctx: Context, ids: list[str]) -> dict[str, Any]:
    _not_stopping(ctx.view)
    missing = await ctx.view.delete(ids)
    return {"deleted": [i for i in ids if i not in missing], "missing": missing}


@REGISTRY.method(
    "queue.clean",
    doc="Delete done reports finished more than a number of days ago (0: every done one).",
    params=(
        Param(
            "older_than_days",
            ParamType.NUMBER,
            "age of the done reports",
            required=True,
            minimum=0,
        ),
    ),
    result="{deleted (how many)}",
    errors=(_STARTING, _STOPPING, ErrorCode.QUEUE_ERROR),
)
async def _queue_clean(ctx: Context, older_than_days: float) -> dict[str, Any]:
    _not_stopping(ctx.view)
    return {"deleted": await ctx.view.clean_done(older_than_days)}


# --- converters -------------------------------------------------------------------------


@REGISTRY.method(
    "converters.list",
    doc="Every watch folder entry with its converter, state and counts.",
    result=(
        "[{name, path, converter, enabled, processed, rejected, last_error, patterns, recursive}]"
    ),
)
async def _converters_list(ctx: Context) -> list[dict[str, Any]]:
    folders: list[dict[str, Any]] = wire.unstructure(list((await ctx.view.status()).folders))
    return folders


def _folder(ctx: Context, name: str, enable: bool) -> dict[str, Any]:
    _not_stopping(ctx.view)
    try:
        if enable:
            ctx.view.enable_folder(name)
        else:
            ctx.view.disable_folder(name)
    except KeyError:
        raise RpcError(
            ErrorCode.UNKNOWN_FOLDER, f"no watch folder named {name!r}", {"name": name}
        ) from None
    return {"name": name, "enabled": enable}


_NAME = Param("name", ParamType.STRING, "the watch folder entry's name", required=True)
_FOLDER_ERRORS = (_STARTING, _STOPPING, ErrorCode.UNKNOWN_FOLDER)


@REGISTRY.method(
    "converters.enable",
    doc="Take files from a watch folder again, at run time.",
    params=(_NAME,),
    result="{name, enabled: true}",
    errors=_FOLDER_ERRORS,
)
async def _enable(ctx: Context, name: str) -> dict[str, Any]:
    return _folder(ctx, name, True)


@REGISTRY.method(
    "converters.disable",
    doc="Stop taking files from a watch folder (they stay where they are); the others go on.",
    params=(_NAME,),
    result="{name, enabled: false}",
    errors=_FOLDER_ERRORS,
)
async def _disable(ctx: Context, name: str) -> dict[str, Any]:
    return _folder(ctx, name, False)


# --- files that did not convert ---------------------------------------------------------

ERROR_FILES_MAX = 1000


def _unknown_folder(name: str) -> RpcError:
    return RpcError(ErrorCode.UNKNOWN_FOLDER, f"no watch folder named {name!r}", {"name": name})


@REGISTRY.method(
    "files.errors",
    doc=(
        "The files watch folders could not convert (their error folders), newest first, each"
        " with the text of its <name>.error.txt and the companions filed with it (a"
        " converter's files or folders beside it, such as Klippel's result folder; they"
        " are not listed as files of their own)."
    ),
    params=(
        Param("folder", ParamType.STRING, "only this watch folder entry's", default=None),
        Param(
            "limit",
            ParamType.INTEGER,
            "files at most",
            default=200,
            minimum=1,
            maximum=ERROR_FILES_MAX,
        ),
    ),
    result=(
        "{files [{folder, name (below the error folder), path, size, mtime, sidecar or null,"
        " error (the sidecar's text, at most 8192 characters), companions [names below the"
        " error folder]}], truncated}"
    ),
    errors=(_STARTING, ErrorCode.UNKNOWN_FOLDER),
)
async def _files_errors(ctx: Context, folder: str | None, limit: int) -> dict[str, Any]:
    try:
        found, truncated = await ctx.view.error_files(folder, limit)
    except KeyError:
        raise _unknown_folder(folder or "") from None
    files = []
    for name, entry in found:
        row: dict[str, Any] = {"folder": name}
        row.update(wire.unstructure(entry))
        files.append(row)
    return {"files": files, "truncated": truncated}


@REGISTRY.method(
    "files.restore",
    doc=(
        "Move a file back from a watch folder's error folder into the watch folder, to be"
        " converted again (its .error.txt is removed), with its companions: they go first,"
        " the file last. Refuses names outside the error folder; never overwrites anything"
        " in the watch folder (if any name of the group is taken, nothing is moved)."
    ),
    params=(
        Param("folder", ParamType.STRING, "the watch folder entry's name", required=True),
        Param(
            "name",
            ParamType.STRING,
            "the file's name below the error folder (as files.errors lists it)",
            required=True,
        ),
    ),
    result=(
        "{folder, name, path (its path in the watch folder), companions [their paths in the"
        " watch folder]}"
    ),
    errors=(
        _STARTING,
        _STOPPING,
        ErrorCode.UNKNOWN_FOLDER,
        ErrorCode.FILE_NOT_FOUND,
        ErrorCode.FILE_EXISTS,
        ErrorCode.FILE_ERROR,
    ),
)
async def _files_restore(ctx: Context, folder: str, name: str) -> dict[str, Any]:
    _not_stopping(ctx.view)
    try:
        restored = await ctx.view.restore_error_file(folder, name)
    except KeyError:
        raise _unknown_folder(folder) from None
    except RestoreRefusedError as exc:
        raise RpcError(
            ErrorCode.INVALID_PARAMS, f"invalid params: {exc}", {"param": "name"}
        ) from None
    except ErrorFileNotFoundError as exc:
        raise RpcError(ErrorCode.FILE_NOT_FOUND, str(exc), {"name": name}) from None
    except NameTakenError as exc:
        raise RpcError(ErrorCode.FILE_EXISTS, str(exc), {"name": name}) from None
    except RestoreIncompleteError as exc:
        raise RpcError(ErrorCode.FILE_ERROR, str(exc), {"name": name}) from None
    except OSError as exc:
        raise RpcError(
            ErrorCode.FILE_ERROR, f"cannot move {name!r} back: {exc.strerror or exc}"
        ) from None
    # Escaped (pywats.filenames.shown): a name that is not UTF-8 must still be valid JSON text.
    return {
        "folder": folder,
        "name": name,
        "path": filenames.shown(restored.path),
        "companions": [filenames.shown(p) for p in restored.companions],
    }


# --- server -----------------------------------------------------------------------------


@REGISTRY.method(
    "server.test",
    doc=(
        "Probe the server now and answer what it said (or the state after 15 s); with"
        " send_report, also queue a small test report (pn PYWATS-TEST) like any other and"
        " answer what became of it (waiting at most 30 s)."
    ),
    params=(
        Param(
            "send_report",
            ParamType.BOOLEAN,
            "also submit a test report and wait for the server's answer",
            default=False,
        ),
    ),
    result=(
        "the server object of service.status; with send_report also report {report_id, pn,"
        " sn, outcome (uploaded|failed|retrying|pending), status, message}"
    ),
    errors=(_STARTING, _STOPPING, ErrorCode.QUEUE_ERROR),
)
async def _server_test(ctx: Context, send_report: bool) -> dict[str, Any]:
    _not_stopping(ctx.view)
    result: dict[str, Any] = wire.unstructure(await ctx.view.test_server())
    if send_report:
        result["report"] = wire.unstructure(await ctx.view.send_test_report())
    return result


# --- configuration ----------------------------------------------------------------------


def _no_config(exc: NoConfigError) -> RpcError:
    return RpcError(ErrorCode.NO_CONFIG, str(exc))


@REGISTRY.method(
    "config.get",
    doc=(
        "The configuration as the service runs it, defaults filled in; the token replaced by"
        " where it comes from (never its value)."
    ),
    result=(
        "{instance, file, server_url_option, file_keys [key paths the file sets; the rest are"
        " defaults], state_dir_from ($STATE_DIRECTORY|$XDG_DATA_HOME|~/.local/share), station,"
        " server {..., token {source, path} or null}, upload, convert, queue, rpc, log,"
        " converters [...]}"
    ),
    errors=(ErrorCode.NO_CONFIG,),
)
async def _config_get(ctx: Context) -> dict[str, Any]:
    try:
        return ctx.view.effective_config()
    except NoConfigError as exc:
        raise _no_config(exc) from None


@REGISTRY.method(
    "config.reload",
    doc=(
        "Read the config file again and apply what can change without a restart (as"
        " SIGHUP). A file that fails the check changes nothing: the answer has ok: false"
        " and the errors."
    ),
    result=(
        "{ok, file, applied [keys], needs_restart [keys], errors [{key, reason, file, text}],"
        " lines [one per change or error, as logged], summary}"
    ),
    errors=(_STARTING, _STOPPING, ErrorCode.NO_CONFIG),
)
async def _config_reload(ctx: Context) -> dict[str, Any]:
    _not_stopping(ctx.view)
    try:
        result = await ctx.view.reload_config()
    except NoConfigError as exc:
        raise _no_config(exc) from None
    out: dict[str, Any] = wire.unstructure(result)
    out.update(ok=result.ok, lines=result.lines(), summary=result.summary())
    return out


# --- events -----------------------------------------------------------------------------


@REGISTRY.method(
    "events.subscribe",
    doc=(
        "Push every event to this connection as a notification from now on. The service"
        " keeps no history: with since older than its latest seq, events.gap comes first."
    ),
    params=(
        Param("since", ParamType.INTEGER, "the last seq this client saw", default=None, minimum=0),
    ),
    result="{stream, seq (the latest published)}",
)
async def _subscribe(ctx: Context, since: int | None) -> dict[str, Any]:
    return ctx.session.subscribe(since)


@REGISTRY.method(
    "events.unsubscribe",
    doc="Stop pushing events to this connection.",
    result="{subscribed: false, was_subscribed}",
)
async def _unsubscribe(ctx: Context) -> dict[str, Any]:
    return {"subscribed": False, "was_subscribed": ctx.session.unsubscribe()}


@REGISTRY.method(
    "rpc.discover",
    doc="Every method (params, result, errors) and every notification of this protocol.",
    result="{protocol, methods [...], notifications [...]}",
)
async def _discover(ctx: Context) -> dict[str, Any]:
    return {"protocol": {"version": PROTOCOL, "oldest": OLDEST_PROTOCOL}, **REGISTRY.discover()}


for _kind in PUBLISHED:
    REGISTRY.notification(
        NotificationSpec(
            _kind.kind, (_kind.__doc__ or "").strip().splitlines()[0], wire.event_fields(_kind)
        )
    )
REGISTRY.notification(
    NotificationSpec(
        wire.GAP,
        "This connection fell behind and lost `dropped` events (the service went on).",
        wire.event_fields(Gap),
    )
)
del _kind
