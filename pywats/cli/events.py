"""``pywats events``: a live tail of a running instance's notifications.

Without ``--follow`` it prints what arrives within ``--wait`` seconds and exits; with it,
until interrupted or the service stops. ``--json`` prints one JSON object per line
(``{"method": ..., "params": ...}``). Exit codes as :mod:`pywats.cli.control`.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import trio

from pywats.cli.control import EXIT_OK, add_instance, run_client
from pywats.events import (
    PUBLISHED,
    Event,
)
from pywats.rpc import codec, wire
from pywats.rpc.client import RpcClient

__all__ = ["format_notification", "register"]

_KINDS: dict[str, type[Event]] = {kind.kind: kind for kind in PUBLISHED}


def _text(method: str, params: dict[str, Any]) -> str:
    if method == wire.GAP:
        return f"{params.get('dropped')} event(s) dropped (this reader was too slow)"
    kind = _KINDS.get(method)
    if kind is None:
        return json.dumps(params)
    fields = {k: v for k, v in params.items() if k != "stream"}
    try:
        # The event's own text: what the service's log says about it.
        return wire.converter.structure(fields, kind).text()
    except Exception:  # a newer service's fields: show them rather than fail
        return json.dumps(fields)


def format_notification(note: codec.Notification) -> str:
    """One line for a person: time, name, the event's text."""
    params = dict(note.params)
    at = params.get("at") or time.time()
    clock = time.strftime("%H:%M:%S", time.localtime(at))
    return f"{clock}  {note.method:<16} {_text(note.method, params)}"


def _cmd_events(args: argparse.Namespace) -> int:
    async def body(client: RpcClient) -> int:
        notes = await client.subscribe()
        with trio.move_on_after(float("inf") if args.follow else args.wait):
            async for note in notes:
                if args.json:
                    print(json.dumps({"method": note.method, "params": note.params}), flush=True)
                else:
                    print(format_notification(note), flush=True)
        return EXIT_OK

    return run_client("events", args.instance, body)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``events`` command."""
    parser = subparsers.add_parser(
        "events",
        help="print a running instance's events as they happen",
        description="Subscribe to a running instance's events (see docs/ipc.md).",
    )
    add_instance(parser)
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing until stopped")
    parser.add_argument(
        "--wait",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="without --follow: how long to listen (default: 2)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(func=_cmd_events)
