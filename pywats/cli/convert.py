"""``pywats convert FILE``: print the WSJF JSON a file becomes, without queueing it.

The converter is chosen as :mod:`pywats.converters.sniffing` describes (pattern on an
unambiguous extension, else the content, else a fallback); ``--converter NAME`` overrides
it, and ``--explain`` prints the choice and every converter's answer instead of converting.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pywats.errors import ConversionError, PywatsError


def _fail(message: str) -> int:
    print(f"pywats convert: {message}", file=sys.stderr)
    return 1


def _read_head(path: Path, size: int) -> bytes:
    with path.open("rb") as f:
        return f.read(size)


def _cmd_convert(args: argparse.Namespace) -> int:
    from pywats.converters import ConversionContext, Source, discover, run_converter
    from pywats.converters.sniffing import Candidate, Choice, choose
    from pywats.defaults import SNIFF_BYTES
    from pywats.pipeline.steps import Rejection, read_companions_now
    from pywats.report import wsjf

    path = Path(args.file)
    try:
        available = discover()
        # --explain needs the head only; a conversion reads the whole file once.
        data = _read_head(path, SNIFF_BYTES) if args.explain else path.read_bytes()
    except OSError as exc:
        return _fail(f"{path}: cannot read: {exc.strerror or exc}")
    except PywatsError as exc:
        return _fail(f"{path}: {exc}")
    candidates = [Candidate.of(cls, name=name) for name, cls in available.items()]
    try:
        decision = choose(path.name, data, candidates, override=args.converter)
    except ValueError as exc:  # --converter names no converter
        return _fail(f"{path}: {exc}")
    if args.explain:
        sys.stdout.write(f"{path}: " + "\n".join(decision.explain()) + "\n")
        return 0 if isinstance(decision, Choice) else 1
    if not isinstance(decision, Choice):
        return _fail(
            f"{path}: {decision.reason}; choose one with --converter "
            "(pywats convert --explain FILE shows every converter's answer)"
        )
    converter = available[decision.name]()
    try:
        # The files that belong with this one (Klippel's result folder), as the pipeline
        # would read them, but without waiting for them to settle.
        companions = read_companions_now(converter, path)
    except Rejection as exc:
        return _fail(f"{path}: {exc}")
    try:
        reports = run_converter(converter, Source(path, data, companions), ConversionContext())
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
        "on stderr when it cannot be converted. The converter is chosen by the file name's "
        "pattern when its extension is unambiguous, else by the file's content (each "
        "converter's sniff); --explain says which one and why.",
    )
    convert.add_argument("file", metavar="FILE")
    convert.add_argument(
        "--converter",
        metavar="NAME",
        help="converter to use (default: by pattern, then by content)",
    )
    convert.add_argument(
        "--explain",
        action="store_true",
        help="print which converter would take FILE and why (every converter's answer), "
        "without converting; exit 0 if one takes it, 1 if none does",
    )
    convert.set_defaults(func=_cmd_convert)
