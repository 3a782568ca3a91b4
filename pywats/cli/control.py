"""``pywats pause``, ``pywats resume``, ``pywats stop``; and :func:`run_client`, which every
command that talks to a running service uses.

Exit codes of every such command (:data:`EXIT_OK` ...): 0 ok, 1 failed (the service
answered with an error, or the connection broke), 2 usage, 3 the service is not running
(the message names the socket path tried), 4 permission refused.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from pywats import paths
from pywats.errors import ConfigError
from pywats.rpc.client import RpcClient
from pywats.rpc.errors import (
    PermissionRefusedError,
    RpcClientError,
    RpcError,
    ServiceNotRunningError,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_NOT_RUNNING",
    "EXIT_OK",
    "EXIT_PERMISSION",
    "EXIT_USAGE",
    "add_instance",
    "register",
    "run_client",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_PERMISSION = 4


def _say(command: str, message: str) -> None:
    print(f"pywats {command}: {message}", file=sys.stderr)


def run_client(
    command: str,
    instance: str,
    body: Callable[[RpcClient], Awaitable[int]],
    *,
    not_running: Callable[[Path], int] | None = None,
) -> int:
    """Connect to ``instance``'s control socket, run ``body`` and map failures to exit codes.

    ``not_running``, when given, is what to do instead when nothing listens on the socket
    (called with its path, returns the exit code): the queue commands work on the
    database directly then.
    """
    try:
        path = paths.find_socket(instance)
    except ConfigError as exc:
        _say(command, str(exc))
        return EXIT_USAGE

    async def main() -> int:
        async with RpcClient(path) as client:
            return await body(client)

    try:
        return trio.run(main)
    except ServiceNotRunningError as exc:
        if not_running is not None:
            return not_running(path)
        _say(command, f"{exc} (instance {instance!r})")
        return EXIT_NOT_RUNNING
    except PermissionRefusedError as exc:
        _say(command, str(exc))
        return EXIT_PERMISSION
    except RpcError as exc:
        _say(command, exc.message)
        return EXIT_FAILED
    except RpcClientError as exc:
        _say(command, str(exc))
        return EXIT_FAILED


def add_instance(parser: argparse.ArgumentParser) -> None:
    """The ``--instance`` option every control command has."""
    parser.add_argument("--instance", default="default", help="instance name (default: default)")


_VERBS = {
    "pause": ("service.pause", "pause uploads (conversion and queueing go on)", "uploads paused"),
    "resume": ("service.resume", "resume uploads and check the server now", "uploads resumed"),
    "stop": ("service.stop", "stop the service gracefully (as SIGTERM)", "stopping"),
}


def _cmd_verb(args: argparse.Namespace) -> int:
    method, _, done = _VERBS[args.command]

    async def body(client: RpcClient) -> int:
        await client.call(method)
        print(f"{args.instance}: {done}")
        return EXIT_OK

    return run_client(args.command, args.instance, body)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``pause``, ``resume`` and ``stop`` commands."""
    for name, (_, help_text, _) in _VERBS.items():
        parser = subparsers.add_parser(name, help=help_text, description=help_text.capitalize())
        add_instance(parser)
        parser.set_defaults(func=_cmd_verb)
