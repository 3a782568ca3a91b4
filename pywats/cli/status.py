"""``pywats status``: what a running instance is doing, from ``service.status``.

Human output is an aligned summary that fits 80 columns; ``--json`` prints the method's
result as one JSON document. Exit codes as :mod:`pywats.cli.control`.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from pywats.cli.control import EXIT_OK, add_instance, run_client
from pywats.rpc.client import RpcClient

__all__ = ["format_status", "register"]

WIDTH = 80


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def _fit(line: str) -> str:
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"


def format_status(status: dict[str, Any]) -> list[str]:
    """The human summary of a ``service.status`` result, one string per line."""
    server = status["server"]
    queue = status.get("queue")
    protocol = status.get("protocol", {}).get("version", "?")
    lines = [
        f"instance  {status['instance']} (pywats {status['version']}, protocol {protocol})",
        f"state     {status['state']}, up {_duration(status['uptime_s'])}, pid {status['pid']}",
    ]
    if server["state"] == "none":
        lines.append("server    none configured")
    else:
        detail = [f"WATS {server['version']}"] if server.get("version") else []
        if server.get("latency_ms") is not None:
            detail.append(f"{server['latency_ms']:.0f} ms")
        extra = f" ({', '.join(detail)})" if detail else ""
        lines.append(f"server    {server['state']} {server['url']}{extra}")
        if server["state"] != "online" and server.get("reason"):
            lines.append(f"          {server['reason']}")
    if queue is None:
        lines.append("queue     (not open yet)")
    else:
        lines.append(
            f"queue     {queue['pending']} pending, {queue['uploading']} uploading,"
            f" {queue['done']} done, {queue['failed']} failed"
        )
        if queue.get("oldest_pending_age_s") is not None:
            lines.append(f"          oldest waiting {_duration(queue['oldest_pending_age_s'])}")
    clock = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(status["clock"]))
    skew = status["clock"] - time.time()
    lines.append(f"clock     {clock}" + (f" (off by {skew:+.0f} s)" if abs(skew) >= 5 else ""))
    folders = status.get("folders") or []
    if folders:
        lines.append("")
        lines.append(
            f"{'FOLDER':<16} {'CONVERTER':<12} {'STATE':<9} {'DONE':>7} {'REJECTED':>8}  ERROR"
        )
        for folder in folders:
            state = "enabled" if folder["enabled"] else "disabled"
            lines.append(
                f"{folder['name'][:16]:<16} {folder['converter'][:12]:<12} {state:<9}"
                f" {folder['processed']:>7} {folder['rejected']:>8}  {folder['last_error'] or ''}"
            )
    return [_fit(line) for line in lines]


def _cmd_status(args: argparse.Namespace) -> int:
    async def body(client: RpcClient) -> int:
        status = await client.call("service.status")
        if args.json:
            print(json.dumps(status, indent=2))
        else:
            print("\n".join(format_status(status)))
        return EXIT_OK

    return run_client("status", args.instance, body)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``status`` command."""
    parser = subparsers.add_parser(
        "status",
        help="show what a running instance is doing",
        description="Ask a running instance for its status over the control socket.",
    )
    add_instance(parser)
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.set_defaults(func=_cmd_status)
