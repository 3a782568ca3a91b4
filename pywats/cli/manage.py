"""``pywats converters``, ``server test``, ``config reload`` (its handler), ``info`` and
``instances``.

``converters``, ``server test`` and ``config reload`` go through a running service's
control socket (exit codes as :mod:`pywats.cli.control`). ``info`` and ``instances`` work
whether or not a service runs: they read paths, versions and configuration files, and ask
each socket found whether a service answers on it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from pywats import __version__, paths
from pywats.cli.control import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_instance, run_client
from pywats.errors import ConfigError
from pywats.rpc.client import RpcClient
from pywats.rpc.errors import PermissionRefusedError, RpcClientError, RpcError
from pywats.rpc.errors import ServiceNotRunningError as NotRunning

__all__ = ["cmd_config_reload", "probe", "register"]

WIDTH = 80
PROBE_TIMEOUT_S = 3.0


def _fit(line: str) -> str:
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Aligned columns (the last one left unpadded), each line cut to 80 columns."""
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    return [
        _fit("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        for row in (header, *rows)
    ]


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


# --- converters -------------------------------------------------------------------------


def _cmd_converters(args: argparse.Namespace) -> int:
    action: str = args.converters_command

    async def body(client: RpcClient) -> int:
        if action == "list":
            folders: list[dict[str, Any]] = await client.call("converters.list")
            if args.json:
                _print_json(folders)
            elif not folders:
                print("no watch folders")
            else:
                rows = [
                    (
                        f["name"],
                        f["converter"],
                        "enabled" if f["enabled"] else "disabled",
                        str(f["processed"]),
                        str(f["rejected"]),
                        f["path"],
                    )
                    for f in folders
                ]
                header = ("NAME", "CONVERTER", "STATE", "DONE", "REJECTED", "FOLDER")
                print("\n".join(_table(header, rows)))
            return EXIT_OK
        result = await client.call(f"converters.{action}", name=args.name)
        if args.json:
            _print_json(result)
        else:
            print(f"{args.name}: {action}d")
        return EXIT_OK

    return run_client("converters", args.instance, body)


# --- server test ------------------------------------------------------------------------


def _cmd_server_test(args: argparse.Namespace) -> int:
    async def body(client: RpcClient) -> int:
        params: dict[str, Any] = {"send_report": True} if args.send_report else {}
        # The probe waits up to 15 s, the test report up to 30 s more.
        client.timeout_s = 60.0
        result: dict[str, Any] = await client.call("server.test", **params)
        report = result.get("report")
        ok = result["state"] == "online" and (report is None or report["outcome"] == "uploaded")
        if args.json:
            _print_json(result)
            return EXIT_OK if ok else EXIT_FAILED
        if result["state"] == "none":
            print("server    none configured")
        else:
            detail = [f"WATS {result['version']}"] if result.get("version") else []
            if result.get("latency_ms") is not None:
                detail.append(f"{result['latency_ms']:.0f} ms")
            extra = f" ({', '.join(detail)})" if detail else ""
            print(_fit(f"server    {result['state']} {result['url']}{extra}"))
            if result["state"] != "online" and result.get("reason"):
                print(_fit(f"          {result['reason']}"))
        if report is not None:
            status = f" (HTTP {report['status']})" if report.get("status") is not None else ""
            print(_fit(f"report    {report['outcome']}{status}: {report['message']}"))
            print(_fit(f"          id {report['report_id']}, pn {report['pn']}, sn {report['sn']}"))
        return EXIT_OK if ok else EXIT_FAILED

    return run_client("server test", args.instance, body)


# --- config reload ----------------------------------------------------------------------


def cmd_config_reload(args: argparse.Namespace) -> int:
    """``pywats config reload``: one line per change applied, needing a restart, or error."""

    async def body(client: RpcClient) -> int:
        result: dict[str, Any] = await client.call("config.reload")
        if args.json:
            _print_json(result)
        else:
            for line in result["lines"]:
                print(line)
        return EXIT_OK if result["ok"] else EXIT_FAILED

    return run_client("config reload", args.instance, body)


# --- probing a socket -------------------------------------------------------------------


def probe(socket: Path) -> tuple[str, dict[str, Any] | None]:
    """Whether a service answers ``service.status`` on ``socket``.

    Returns ``("running", status)``, ``("stopped", None)`` (nothing listens),
    ``("refused", None)`` (permission refused) or ``("not answering", None)``.
    """

    async def ask() -> dict[str, Any] | None:
        with trio.move_on_after(PROBE_TIMEOUT_S):
            async with RpcClient(socket, timeout_s=PROBE_TIMEOUT_S) as client:
                status: dict[str, Any] = await client.call("service.status")
                return status
        return None

    try:
        status = trio.run(ask)
    except NotRunning:
        return "stopped", None
    except PermissionRefusedError:
        return "refused", None
    except (RpcClientError, RpcError, OSError):
        return "not answering", None
    if status is None:
        return "not answering", None
    return "running", status


# --- info -------------------------------------------------------------------------------


def _version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _info(instance: str) -> dict[str, Any]:
    import apsw

    from pywats import config as configuration

    config_path = configuration.find(instance)
    db = paths.find_db(instance)
    socket = paths.find_socket(instance)
    token: dict[str, Any]
    queue_db: str | None = None
    try:
        loaded = configuration.load_instance(instance)
        _, source = configuration.resolve_token_source(loaded.server)
        token = {"source": None if source is None else source.describe(), "error": None}
        if loaded.queue.path is not None:
            queue_db = str(loaded.queue.path)
    except ConfigError as exc:
        token = {"source": None, "error": str(exc)}
    system = str(socket).startswith(str(paths.SYSTEM_RUNTIME_ROOT)) or str(db).startswith(
        str(paths.SYSTEM_STATE_ROOT)
    )
    state, status = probe(socket)
    return {
        "instance": instance,
        "versions": {
            "pywats": __version__,
            "python": platform.python_version(),
            "trio": _version_of("trio"),
            "httpx": _version_of("httpx"),
            "textual": _version_of("textual"),
            "apsw": apsw.apswversion(),
            "sqlite": apsw.sqlite_lib_version(),
        },
        "platform": platform.platform(),
        "paths": {
            "config": str(config_path),
            "config_exists": config_path.exists(),
            "state": str(db.parent),
            "queue_db": queue_db or str(db),
            "socket": str(socket),
        },
        "log": (
            f"journal (journalctl -u pywats@{instance})"
            if system
            else "stderr of `pywats serve` (journal under systemd)"
        ),
        "token": token,
        "service": {"state": state, "pid": None if status is None else status.get("pid")},
    }


def _cmd_info(args: argparse.Namespace) -> int:
    try:
        info = _info(args.instance)
    except ConfigError as exc:
        print(f"pywats info: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        _print_json(info)
        return EXIT_OK
    versions = info["versions"]
    lines = [
        f"instance  {info['instance']}",
        f"service   {info['service']['state']}"
        + (f" (pid {info['service']['pid']})" if info["service"]["pid"] else ""),
        f"pywats    {versions['pywats']}, Python {versions['python']}, trio {versions['trio']},"
        f" httpx {versions['httpx']}",
        f"          textual {versions['textual']}, apsw {versions['apsw']},"
        f" SQLite {versions['sqlite']}",
        f"platform  {info['platform']}",
        f"config    {info['paths']['config']}"
        + ("" if info["paths"]["config_exists"] else " (missing: built-in defaults)"),
        f"state     {info['paths']['state']}",
        f"queue     {info['paths']['queue_db']}",
        f"socket    {info['paths']['socket']}",
        f"log       {info['log']}",
    ]
    token = info["token"]
    if token["error"]:
        lines.append(f"token     (config error: {token['error']})")
    else:
        lines.append(f"token     {token['source'] or 'none configured'}")
    print("\n".join(_fit(line) for line in lines))
    return EXIT_OK


# --- instances --------------------------------------------------------------------------


def _names_in(directory: Path, *, suffix: str = "") -> set[str]:
    names: set[str] = set()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return names
    for entry in entries:
        name = entry.name
        if suffix:
            if not name.endswith(suffix):
                continue
            name = name[: -len(suffix)]
        elif not entry.is_dir(follow_symlinks=False):
            continue
        try:
            names.add(paths.validate_instance(name))
        except ConfigError:
            continue
    return names


def find_instances() -> dict[str, set[str]]:
    """Every instance name found on this machine, with where it was found.

    Runtime directories (``$XDG_RUNTIME_DIR/pywats``, ``/tmp/pywats-<uid>``,
    ``/run/pywats``), configuration directories (:func:`pywats.paths.config_dir`,
    ``/etc/pywats``) and state directories (``~/.local/share/pywats``,
    ``/var/lib/pywats``).
    """
    found: dict[str, set[str]] = {}

    def add(names: set[str], where: str) -> None:
        for name in names:
            found.setdefault(name, set()).add(where)

    runtime = [paths.SYSTEM_RUNTIME_ROOT, Path("/tmp") / f"pywats-{os.getuid()}"]
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isabs(xdg):
        runtime.insert(0, Path(xdg) / "pywats")
    for directory in runtime:
        add(_names_in(directory), "runtime")
    for directory in (paths.config_dir(), paths.SYSTEM_CONFIG_DIR):
        add(_names_in(directory, suffix=".toml"), "config")
    data = os.environ.get("XDG_DATA_HOME", "")
    base = Path(data) if data and os.path.isabs(data) else Path.home() / ".local" / "share"
    for directory in (base / "pywats", paths.SYSTEM_STATE_ROOT):
        add(_names_in(directory), "state")
    return found


def _cmd_instances(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for name, where in sorted(find_instances().items()):
        try:
            socket = paths.find_socket(name)
        except ConfigError as exc:
            rows.append({"instance": name, "state": "unknown", "pid": None, "error": str(exc)})
            continue
        state, status = probe(socket)
        rows.append(
            {
                "instance": name,
                "state": state,
                "pid": None if status is None else status.get("pid"),
                "service_state": None if status is None else status.get("state"),
                "socket": str(socket),
                "found_in": sorted(where),
            }
        )
    if args.json:
        _print_json(rows)
        return EXIT_OK
    if not rows:
        print("no instances found")
        return EXIT_OK
    table = [
        (
            r["instance"],
            r["state"] if r.get("service_state") in (None, "running") else r["service_state"],
            "-" if r["pid"] is None else str(r["pid"]),
            ",".join(r.get("found_in", [])),
            r.get("socket", ""),
        )
        for r in rows
    ]
    print("\n".join(_table(("INSTANCE", "STATE", "PID", "FOUND IN", "SOCKET"), table)))
    return EXIT_OK


# --- registration -----------------------------------------------------------------------


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``converters``, ``server``, ``info`` and ``instances`` commands."""
    converters = subparsers.add_parser(
        "converters", help="list, enable or disable a running instance's watch folders"
    )
    sub = converters.add_subparsers(dest="converters_command", required=True, metavar="COMMAND")
    listing = sub.add_parser("list", help="every watch folder with its converter and counts")
    add_instance(listing)
    _json_option(listing)
    listing.set_defaults(func=_cmd_converters)
    for verb, text in (
        ("enable", "take files from a watch folder again"),
        ("disable", "stop taking files from a watch folder (the others go on)"),
    ):
        parser = sub.add_parser(verb, help=text)
        parser.add_argument("name", metavar="NAME", help="the watch folder entry's name")
        add_instance(parser)
        _json_option(parser)
        parser.set_defaults(func=_cmd_converters)

    server = subparsers.add_parser("server", help="check the WATS server a running instance uses")
    server_sub = server.add_subparsers(dest="server_command", required=True, metavar="COMMAND")
    test = server_sub.add_parser("test", help="probe the server now; exit 1 unless online")
    test.add_argument(
        "--send-report",
        action="store_true",
        help="also upload a small test report (pn PYWATS-TEST) and show the server's answer",
    )
    add_instance(test)
    _json_option(test)
    test.set_defaults(func=_cmd_server_test)

    info = subparsers.add_parser(
        "info", help="versions, paths and token source: what a support request needs"
    )
    add_instance(info)
    _json_option(info)
    info.set_defaults(func=_cmd_info)

    instances = subparsers.add_parser(
        "instances", help="every instance on this machine, running or stopped"
    )
    _json_option(instances)
    instances.set_defaults(func=_cmd_instances)
