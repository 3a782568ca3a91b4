"""``pywats queue stats|list|show|retry|delete|clean|salvage``: look into and fix a queue.

While the instance's service runs, every subcommand goes through its control socket
(``queue.stats``, ``queue.list``, ``queue.get``, ``queue.retry``, ``queue.delete``,
``queue.clean``). When nothing listens there:

- ``stats``, ``list`` and ``show`` read the database file directly, opened read-only
  (WAL lets a reader and a writer proceed together); they never migrate, recover or
  change anything;
- ``retry``, ``delete`` and ``clean`` take the instance lock (so the service cannot start
  meanwhile) and change the database with :class:`pywats.store.Store`, so an operator can
  fix a queue while the service is stopped. If the lock is held but the socket does not
  answer, they say so and change nothing.

``salvage FILE`` copies the readable pending and failed reports of a damaged queue file
(one the service moved aside as ``queue.db.corrupt-<time>``) into the queue; it never
goes through the socket: the service must be stopped (the lock tells).

``--db PATH`` names the database file and skips the socket (the lock is then the
``lock`` file next to it). ``--instance`` finds the database as
:func:`pywats.paths.find_db` does: the user's own instance first, then the system
service's under ``/var/lib/pywats``.

Exit codes: 0 success, 1 the database or a report is missing or unreadable, or the
service refused, 2 bad usage (including an invalid instance name), 4 permission refused
on the socket.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import attrs
import trio

from pywats.cli.control import EXIT_FAILED, EXIT_OK, run_client
from pywats.errors import ConfigError, InstanceLockedError, StoreError
from pywats.instance import InstanceLock
from pywats.paths import LOCK_NAME, find_db
from pywats.rpc import wire
from pywats.rpc.client import RpcClient
from pywats.store import QueuedReport, QueueReader, QueueState, QueueStats, Store

PROG = "pywats queue"

_LIST_COLUMNS = ("ID", "STATE", "TRIES", "CREATED", "PN", "SN", "RESULT", "LAST ERROR")
_ERROR_WIDTH = 40
_PAGE_MAX = 1000  # queue.list's largest page
DAY_S = 86400.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``queue`` command and its subcommands.

    Each subcommand sets ``func``: a ``handler(args) -> int`` returning the exit code.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    common.add_argument(
        "--instance", default="default", help="instance name (default: %(default)s)"
    )
    common.add_argument(
        "--db", type=Path, metavar="PATH", help="queue database file (overrides --instance)"
    )

    queue = subparsers.add_parser(
        "queue", help="inspect the report queue", description="Inspect the report queue."
    )
    commands = queue.add_subparsers(dest="queue_command", metavar="COMMAND", required=True)

    stats = commands.add_parser(
        "stats", parents=[common], help="counts by state, oldest waiting report, bytes"
    )
    stats.set_defaults(func=_stats)

    listing = commands.add_parser("list", parents=[common], help="list reports, newest first")
    listing.add_argument(
        "--state", choices=[s.value for s in QueueState], help="only reports in this state"
    )
    listing.add_argument(
        "--search",
        "--sn",
        dest="sn",
        metavar="SN",
        help="only serial or part numbers containing this (case-insensitive)",
    )
    listing.add_argument(
        "--limit", type=_non_negative, default=50, help="page size (default: %(default)s)"
    )
    listing.add_argument(
        "--offset", type=_non_negative, default=0, help="reports to skip (default: 0)"
    )
    listing.set_defaults(func=_list)

    show = commands.add_parser("show", parents=[common], help="one report with its JSON body")
    show.add_argument("id", metavar="ID", help="report id (GUID)")
    show.set_defaults(func=_show)

    retry = commands.add_parser(
        "retry", parents=[common], help="make failed or waiting reports due now"
    )
    retry.add_argument("ids", nargs="*", metavar="ID", help="report ids")
    retry.add_argument("--failed", action="store_true", help="every failed report")
    retry.set_defaults(func=_retry, parser=retry)

    delete = commands.add_parser(
        "delete", parents=[common], help="delete reports (they will not be uploaded)"
    )
    delete.add_argument("ids", nargs="+", metavar="ID", help="report ids")
    delete.set_defaults(func=_delete)

    clean = commands.add_parser(
        "clean", parents=[common], help="delete uploaded (done) reports older than DAYS"
    )
    clean.add_argument(
        "--older-than",
        type=_non_negative_float,
        required=True,
        metavar="DAYS",
        help="age in days of the done reports to delete (0: every done report)",
    )
    clean.set_defaults(func=_clean)

    rescue = commands.add_parser(
        "salvage",
        parents=[common],
        help="copy the pending and failed reports of a damaged queue file into the queue",
        description="Copy every readable pending and failed report of a damaged queue file"
        " (such as queue.db.corrupt-<time>, which the service moved aside) into the"
        " instance's queue; reports already queued are skipped. Stop the service first.",
    )
    rescue.add_argument("file", type=Path, metavar="FILE", help="the damaged queue file")
    rescue.set_defaults(func=_salvage)


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0: {text}")
    return value


def _fail(message: str, code: int = 1) -> int:
    # One line on stderr, no traceback: that is all a person at a terminal needs.
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def _with_reader(args: argparse.Namespace, action: Callable[[QueueReader], None]) -> int:
    """Open the database named by ``args`` read-only, run ``action``, map errors to codes."""
    try:
        path: Path = args.db if args.db is not None else find_db(args.instance)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    if not path.is_file():
        return _fail(f"no queue database at {path}")
    try:
        with QueueReader.open(path) as reader:
            action(reader)
    except StoreError as exc:  # NotFoundError included: "no report with id ..."
        return _fail(str(exc))
    except BrokenPipeError:
        # The reader went away (``| head``): not an error. Point stdout at /dev/null so
        # the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 0


def _service_or(
    args: argparse.Namespace,
    body: Callable[[RpcClient], Awaitable[int]],
    direct: Callable[[Path | None], int],
) -> int:
    """Through the running service if it answers on its socket, else ``direct``.

    ``direct`` gets the socket path tried (``None`` with ``--db``, which skips it).
    """
    if args.db is not None:
        return direct(None)
    return run_client("queue", args.instance, body, not_running=direct)


def _stats(args: argparse.Namespace) -> int:
    def show(stats: QueueStats) -> None:
        data = _stats_dict(stats)
        if args.json:
            _print_json(data)
            return
        age = stats.oldest_pending_age_s
        data["oldest_pending_age_s"] = None if age is None else round(age, 1)
        _print_pairs(data, sys.stdout)

    async def body(client: RpcClient) -> int:
        show(wire.converter.structure(await client.call("queue.stats"), QueueStats))
        return EXIT_OK

    return _service_or(
        args, body, lambda _: _with_reader(args, lambda reader: show(reader.stats(time.time())))
    )


def _list(args: argparse.Namespace) -> int:
    state = QueueState(args.state) if args.state else None

    def show(reports: Sequence[QueuedReport]) -> None:
        if args.json:
            _print_json([_report_dict(r) for r in reports])
        else:
            _print_table(reports, sys.stdout)

    async def body(client: RpcClient) -> int:
        reports: list[QueuedReport] = []
        # The cursor is the offset of the next page (pywats.rpc.api); pages of at most
        # _PAGE_MAX until --limit reports are in.
        cursor = str(args.offset) if args.offset else None
        while len(reports) < args.limit:
            params: dict[str, Any] = {"limit": min(args.limit - len(reports), _PAGE_MAX)}
            # Only what is given: the methods refuse null for a string parameter.
            for key, value in (("state", args.state), ("search", args.sn), ("cursor", cursor)):
                if value is not None:
                    params[key] = value
            page = await client.call("queue.list", **params)
            reports += [_report_of(row) for row in page["reports"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        show(reports)
        return EXIT_OK

    def read(reader: QueueReader) -> None:
        show(reader.list_reports(state=state, sn=args.sn, limit=args.limit, offset=args.offset))

    return _service_or(args, body, lambda _: _with_reader(args, read))


def _show(args: argparse.Namespace) -> int:
    async def body(client: RpcClient) -> int:
        show(_report_of(await client.call("queue.get", id=args.id)))
        return EXIT_OK

    def show(report: QueuedReport) -> None:
        body = report.body or b""
        if args.json:
            _print_json({**_report_dict(report), "body": _json_or_text(body)})
            return
        _print_pairs(_report_dict(report, human=True), sys.stdout)
        print()
        decoded = _json_or_text(body)
        if isinstance(decoded, str):
            print(decoded)
        else:
            print(json.dumps(decoded, indent=2, ensure_ascii=False))

    return _service_or(args, body, lambda _: _with_reader(args, lambda r: show(r.get(args.id))))


def _report_of(row: dict[str, Any]) -> QueuedReport:
    """A ``queue.list``/``queue.get`` row as the :class:`QueuedReport` it was made from."""
    fields = dict(row)
    text = fields.pop("body", None)
    report: QueuedReport = wire.converter.structure(fields, QueuedReport)
    if text is not None:
        report = attrs.evolve(report, body=str(text).encode())
    return report


# --- changing the queue ---------------------------------------------------------------


def _missing(ids: Sequence[str]) -> int:
    for report_id in ids:
        print(f"{PROG}: no report with id {report_id}", file=sys.stderr)
    return EXIT_FAILED if ids else EXIT_OK


def _with_store(
    args: argparse.Namespace,
    socket: Path | None,
    action: Callable[[Store], Awaitable[dict[str, Any]]],
    show: Callable[[dict[str, Any]], int],
) -> int:
    """Change the database while no service runs: under the instance lock, with a Store."""
    try:
        path: Path = args.db if args.db is not None else find_db(args.instance)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    if not path.is_file():
        return _fail(f"no queue database at {path}")
    lock = InstanceLock(args.instance, path.parent / LOCK_NAME)
    try:
        lock.acquire()
    except InstanceLockedError as exc:
        where = f"its control socket {socket} does not answer" if socket else "it holds the lock"
        return _fail(f"{exc}, but {where}; nothing changed")
    except (ConfigError, OSError) as exc:
        return _fail(f"cannot take the instance lock: {exc}")

    async def run() -> dict[str, Any]:
        async with await Store.open(path) as store:
            return await action(store)

    try:
        result = trio.run(run)
    except StoreError as exc:
        return _fail(str(exc))
    finally:
        lock.release()
    return show(result)


def _retry(args: argparse.Namespace) -> int:
    if bool(args.ids) == args.failed:
        parser: argparse.ArgumentParser = args.parser
        parser.error("give report ids or --failed (one of the two)")
    ids: list[str] = list(args.ids)

    def show(result: dict[str, Any]) -> int:
        if args.json:
            _print_json(result)
        elif args.failed:
            print(f"requeued {result['count']} failed report(s)")
        else:
            print(f"requeued {result['count']} report(s)")
        return _missing(result["missing"])

    async def body(client: RpcClient) -> int:
        if args.failed:
            return show(await client.call("queue.retry", failed=True))
        return show(await client.call("queue.retry", ids=ids))

    async def action(store: Store) -> dict[str, Any]:
        if args.failed:
            return {"count": await store.requeue_failed(), "requeued": [], "missing": []}
        missing = await store.requeue_many(ids)
        done = [i for i in ids if i not in missing]
        return {"count": len(done), "requeued": done, "missing": missing}

    return _service_or(args, body, lambda sock: _with_store(args, sock, action, show))


def _delete(args: argparse.Namespace) -> int:
    ids: list[str] = list(args.ids)

    def show(result: dict[str, Any]) -> int:
        if args.json:
            _print_json(result)
        else:
            print(f"deleted {len(result['deleted'])} report(s)")
        return _missing(result["missing"])

    async def body(client: RpcClient) -> int:
        return show(await client.call("queue.delete", ids=ids))

    async def action(store: Store) -> dict[str, Any]:
        missing = await store.delete_many(ids)
        return {"deleted": [i for i in ids if i not in missing], "missing": missing}

    return _service_or(args, body, lambda sock: _with_store(args, sock, action, show))


def _clean(args: argparse.Namespace) -> int:
    days: float = args.older_than

    def show(result: dict[str, Any]) -> int:
        if args.json:
            _print_json(result)
        else:
            print(f"deleted {result['deleted']} done report(s) older than {days:g} day(s)")
        return EXIT_OK

    async def body(client: RpcClient) -> int:
        return show(await client.call("queue.clean", older_than_days=days))

    async def action(store: Store) -> dict[str, Any]:
        return {"deleted": await store.purge_done(older_than_s=days * DAY_S)}

    return _service_or(args, body, lambda sock: _with_store(args, sock, action, show))


def _salvage(args: argparse.Namespace) -> int:
    file: Path = args.file
    if not file.is_file():
        return _fail(f"no file at {file}")

    def show(result: dict[str, Any]) -> int:
        if args.json:
            _print_json(result)
        else:
            print(result["message"])
        return EXIT_FAILED if result["problem"] else EXIT_OK

    async def action(store: Store) -> dict[str, Any]:
        if file.resolve() == store.path.resolve():
            raise StoreError(f"{file} is the queue itself; name the damaged file")
        got = await store.salvage(file, log_it=False)  # printed by show(), once
        return {**attrs.asdict(got), "message": got.describe(file)}

    # Never through the service: it holds the queue; the lock says when it runs.
    return _with_store(args, None, action, show)


def _stats_dict(stats: QueueStats) -> dict[str, object]:
    return {**attrs.asdict(stats), "total": stats.total}


def _report_dict(report: QueuedReport, *, human: bool = False) -> dict[str, object]:
    data = attrs.asdict(report, filter=lambda a, _: a.name != "body")
    data["state"] = str(report.state)
    if human:
        for key in ("created_at", "updated_at", "next_attempt_at"):
            data[key] = _local_time(float(getattr(report, key)))
    return data


def _json_or_text(body: bytes) -> object:
    # The stored bytes are what the server receives; show them as JSON when they are,
    # and as text otherwise, so a damaged body is still visible.
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")


def _local_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _print_pairs(pairs: dict[str, object], out: TextIO) -> None:
    width = max(len(k) for k in pairs)
    for key, value in pairs.items():
        shown = "-" if value is None else value
        print(f"{key + ':':<{width + 1}} {shown}", file=out)


def _print_table(reports: Sequence[QueuedReport], out: TextIO) -> None:
    if not reports:
        print("no reports", file=out)
        return
    rows = [
        (
            r.id,
            str(r.state),
            str(r.attempts),
            datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d %H:%M:%S"),
            r.pn,
            r.sn,
            r.result,
            _one_line(r.last_error or "", _ERROR_WIDTH),
        )
        for r in reports
    ]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(_LIST_COLUMNS)]
    for row in (_LIST_COLUMNS, *rows):
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), file=out
        )


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _main(argv: Sequence[str] | None = None) -> int:
    """Run the queue commands alone (``python -m pywats.cli.queue queue stats``)."""
    parser = argparse.ArgumentParser(prog="pywats")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.func
    return handler(args)


if __name__ == "__main__":
    sys.exit(_main())
