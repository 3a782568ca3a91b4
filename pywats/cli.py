"""The ``pywats`` command line.

Every command returns an exit code; errors a user can cause are printed as one line on
stderr (``pywats <command>: <what>: <why>``), never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pywats import __version__, cli_config, cli_queue, cli_receiver, cli_serve
from pywats.errors import ConversionError, PywatsError


def _fail(command: str, message: str) -> int:
    print(f"pywats {command}: {message}", file=sys.stderr)
    return 1


def _cmd_convert(args: argparse.Namespace) -> int:
    from pywats.converters import ConversionContext, Source, discover, run_converter
    from pywats.converters import select as select_converter
    from pywats.report import wsjf

    path = Path(args.file)
    try:
        converter = select_converter(path, args.converter, discover())
        data = path.read_bytes()
    except OSError as exc:
        return _fail("convert", f"{path}: cannot read: {exc.strerror or exc}")
    except PywatsError as exc:
        return _fail("convert", f"{path}: {exc}")
    try:
        reports = run_converter(converter, Source(path, data), ConversionContext())
    except ConversionError as exc:
        return _fail("convert", f"{path}: {exc}")
    documents = [wsjf.unstructure(r) for r in reports]
    out = documents[0] if len(documents) == 1 else documents
    sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="pywats",
        description="WATS test-station client: convert, queue and upload test reports.",
    )
    parser.add_argument("--version", action="version", version=f"pywats {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    convert = sub.add_parser(
        "convert",
        help="print the WSJF JSON a file becomes (nothing is queued)",
        description="Convert FILE and print the WSJF JSON on stdout. Exit 1 with one line "
        "on stderr when it cannot be converted.",
    )
    convert.add_argument("file", metavar="FILE")
    convert.add_argument(
        "--converter", metavar="NAME", help="converter to use (default: by pattern)"
    )
    convert.set_defaults(func=_cmd_convert)

    cli_serve.register(sub)
    cli_queue.register(sub)
    cli_config.register(sub)
    cli_receiver.register(sub)
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


if __name__ == "__main__":
    sys.exit(main())
