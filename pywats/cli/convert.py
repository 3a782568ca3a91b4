"""``pywats convert FILE``: print the WSJF JSON a file becomes, without queueing it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pywats.errors import ConversionError, PywatsError


def _fail(message: str) -> int:
    print(f"pywats convert: {message}", file=sys.stderr)
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
        return _fail(f"{path}: cannot read: {exc.strerror or exc}")
    except PywatsError as exc:
        return _fail(f"{path}: {exc}")
    try:
        reports = run_converter(converter, Source(path, data), ConversionContext())
    except ConversionError as exc:
        return _fail(f"{path}: {exc}")
    documents = [wsjf.unstructure(r) for r in reports]
    out = documents[0] if len(documents) == 1 else documents
    sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``convert`` command."""
    convert = subparsers.add_parser(
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
