"""The ``pywats`` command line: :func:`main` and :func:`build_parser`.

One module per command registers its subparser and handler: :mod:`pywats.cli.convert`,
:mod:`pywats.cli.serve`, :mod:`pywats.cli.queue`, :mod:`pywats.cli.config`,
:mod:`pywats.cli.receiver`, and the commands that talk to a running service over its
control socket: :mod:`pywats.cli.status`, :mod:`pywats.cli.events` and
:mod:`pywats.cli.control` (pause, resume, stop), :mod:`pywats.cli.manage` (converters,
server test, config reload, info, instances), :mod:`pywats.cli.files` (files that did not
convert), :mod:`pywats.cli.submit` (hand a file to a running instance);
:mod:`pywats.cli.tui` (the terminal UI, which imports textual only when it runs)
and :mod:`pywats.cli.demo`. Every command returns an exit code;
errors a user can cause are printed as one line on stderr
(``pywats <command>: <what>: <why>``), never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pywats import __version__

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    # Imported here, not at the top: ``python -m pywats.cli.queue`` imports this package
    # first, and a command module imported by it before runpy runs it as __main__ would
    # make runpy warn about it.
    from pywats.cli import (
        config,
        control,
        convert,
        demo,
        events,
        files,
        manage,
        queue,
        receiver,
        serve,
        status,
        submit,
        tui,
    )

    parser = argparse.ArgumentParser(
        prog="pywats",
        description="WATS test-station client: convert, queue and upload test reports.",
    )
    parser.add_argument("--version", action="version", version=f"pywats {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    convert.register(sub)
    serve.register(sub)
    queue.register(sub)
    config.register(sub)
    receiver.register(sub)
    status.register(sub)
    events.register(sub)
    control.register(sub)
    manage.register(sub)
    files.register(sub)
    submit.register(sub)
    tui.register(sub)
    demo.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pywats`` console script."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `pywats convert big.json | head` closed our stdout: not an error worth a trace.
        sys.stderr.close()
        return 1
    return code
