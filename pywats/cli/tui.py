"""``pywats tui``: the terminal UI on a running instance (see ``docs/tui.md``).

Textual is imported only when the command runs: the rest of the CLI (and the service)
never imports it.
"""

from __future__ import annotations

import argparse

from pywats.cli.control import add_instance

__all__ = ["register"]


def _refresh(text: str) -> float:
    value = float(text)
    if not 0.05 <= value <= 60:
        raise argparse.ArgumentTypeError("must be between 0.05 and 60 seconds")
    return value


def _cmd_tui(args: argparse.Namespace) -> int:
    from tui.run import main

    code: int = main(args.instance, read_only=args.read_only, refresh_s=args.refresh)
    return code


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``tui`` command."""
    parser = subparsers.add_parser(
        "tui",
        help="terminal UI on a running instance (over SSH too)",
        description="Attach a terminal UI to a running instance over its control socket."
        " See docs/tui.md.",
    )
    add_instance(parser)
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="offer nothing that changes the service (retry, delete, enable, ...)",
    )
    parser.add_argument(
        "--refresh",
        type=_refresh,
        default=0.5,
        metavar="SECONDS",
        help="shortest time between two updates of tables and counters (default 0.5:"
        " two a second); raise it on a slow link",
    )
    parser.set_defaults(func=_cmd_tui)
