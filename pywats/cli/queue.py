"""``pywats queue stats|list|show``: look into an instance's queue database.

These commands read the database file directly, opened read-only: they work whether or
not the service runs (WAL lets a reader and the service's writer proceed together), and
they never migrate, recover or change anything. Changing the queue (retry, delete) is the
service's job and goes through its control socket.

``--instance`` finds the database as :func:`pywats.paths.find_db` does: the user's own
instance first, then the system service's under ``/var/lib/pywats``.

Exit codes: 0 success, 1 the database or report is missing or unreadable, 2 bad usage
(including an invalid instance name).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

import attrs

from pywats.errors import ConfigError, StoreError
from pywats.paths import find_db
from pywats.store import QueuedReport, QueueReader, QueueState, QueueStats

PROG = "pywats queue"

_LIST_COLUMNS = ("ID", "STATE", "TRIES", "CREATED", "PN", "SN", "RESULT", "LAST ERROR")
_ERROR_WIDTH = 40


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``queue`` command and its ``stats``, ``list`` and ``show`` subcommands.

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
    listing.add_argument("--sn", help="only serial numbers containing this (case-insensitive)")
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


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
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


def _stats(args: argparse.Namespace) -> int:
    def action(reader: QueueReader) -> None:
        stats = reader.stats(time.time())
        data = _stats_dict(stats)
        if args.json:
            _print_json(data)
            return
        age = stats.oldest_pending_age_s
        data["oldest_pending_age_s"] = None if age is None else round(age, 1)
        _print_pairs(data, sys.stdout)

    return _with_reader(args, action)


def _list(args: argparse.Namespace) -> int:
    state = QueueState(args.state) if args.state else None

    def action(reader: QueueReader) -> None:
        reports = reader.list_reports(state=state, sn=args.sn, limit=args.limit, offset=args.offset)
        if args.json:
            _print_json([_report_dict(r) for r in reports])
        else:
            _print_table(reports, sys.stdout)

    return _with_reader(args, action)


def _show(args: argparse.Namespace) -> int:
    def action(reader: QueueReader) -> None:
        report = reader.get(args.id)
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

    return _with_reader(args, action)


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
