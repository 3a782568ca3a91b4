"""``pywats receiver``: run the local WATS-compatible test server from the command line.

On start it prints exactly one line on stdout, ``pywats receiver listening on
http://HOST:PORT``, and flushes it (scripts and tests read the port from it); everything
else goes to stderr through logging. SIGINT or SIGTERM stops it with exit code 0. A bad
option is one line on stderr and exit 1 (exit 2 for what argparse itself refuses).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from pywats.errors import ConfigError, PywatsError
from pywats.receiver import DEFAULT_HOST, Receiver, ReceiverConfig, is_loopback

DEFAULT_PORT = 8780
"""Port used when ``--port`` is not given (0 means any free port)."""

TOKEN_ENV = "PYWATS_RECEIVER_TOKEN"

# ReceiverConfig field -> the option a user typed, so an error names what they can fix.
_OPTION_OF_FIELD = {
    "port": "--port",
    "token": "--token",
    "max_body_bytes": "--max-body-bytes",
    "fail_rate": "--fail-rate",
    "fail_status": "--fail-status",
    "fail_first": "--fail-first",
    "fail_first_status": "--fail-first-status",
    "retry_after": "--retry-after",
    "latency_s": "--latency-ms",
    "drop_rate": "--drop-rate",
}

_log = logging.getLogger("pywats.receiver")


def _fail(message: str) -> int:
    print(f"pywats receiver: {message}", file=sys.stderr)
    return 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``receiver`` command to the ``pywats`` subcommands."""
    parser = subparsers.add_parser(
        "receiver",
        help="run a local WATS-compatible server (tests, demos, commissioning)",
        description="Serve the WATS endpoints a station uses on a local port, store what "
        "it receives in SQLite, and optionally inject faults into report submissions "
        "(POST /api/Report/*). See docs/receiver.md.",
    )
    parser.add_argument(
        "--host",
        default=None,
        help=f"address to bind (default {DEFAULT_HOST}; only this option can make it "
        "reachable from the network)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"TCP port, 0 for any free port (default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--db", metavar="PATH", type=Path, help="SQLite file to keep reports in (default: memory)"
    )
    parser.add_argument(
        "--token",
        metavar="T",
        default=None,
        help=f"require 'Authorization: Basic T' on /api/ (default: ${TOKEN_ENV}, else none)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=ReceiverConfig().max_body_bytes,
        metavar="N",
        help="largest request body; larger ones get 413 (default 64 MiB)",
    )
    faults = parser.add_argument_group("fault injection (applies to POST /api/Report/*)")
    faults.add_argument(
        "--fail-rate", type=float, default=0.0, metavar="P", help="probability 0..1 of a failure"
    )
    faults.add_argument(
        "--fail-status", type=int, default=503, metavar="CODE", help="status of those failures"
    )
    faults.add_argument(
        "--fail-first", type=int, default=0, metavar="K", help="fail the first K requests"
    )
    faults.add_argument(
        "--fail-first-status",
        type=int,
        default=503,
        metavar="CODE",
        help="status of the first K failures (default 503)",
    )
    faults.add_argument(
        "--retry-after", metavar="VALUE", help="Retry-After header sent with injected failures"
    )
    faults.add_argument(
        "--latency-ms", type=float, default=0.0, metavar="MS", help="delay added to each request"
    )
    faults.add_argument(
        "--drop-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="probability 0..1 that a stored report's response is lost (connection closed)",
    )
    faults.add_argument(
        "--fail-health",
        action="store_true",
        help="let latency and failures hit GET /api/App/Version too (server looks offline)",
    )
    faults.add_argument(
        "--seed", type=int, metavar="N", help="seed of the fault decisions (default random)"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log every request (DEBUG) on stderr"
    )
    parser.set_defaults(func=_cmd_receiver)


def config_from_args(args: argparse.Namespace) -> ReceiverConfig:
    """The receiver configuration the options describe.

    Raises:
        ConfigError: an option value is out of range; ``key`` is the option's name.
    """
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    try:
        return ReceiverConfig(
            host=args.host if args.host is not None else DEFAULT_HOST,
            port=args.port,
            db_path=args.db,
            token=token,
            max_body_bytes=args.max_body_bytes,
            fail_rate=args.fail_rate,
            fail_status=args.fail_status,
            fail_first=args.fail_first,
            fail_first_status=args.fail_first_status,
            retry_after=args.retry_after,
            latency_s=args.latency_ms / 1000,
            drop_rate=args.drop_rate,
            fail_health=args.fail_health,
            seed=args.seed,
        )
    except ConfigError as exc:
        raise ConfigError(_OPTION_OF_FIELD.get(exc.key, exc.key), exc.reason) from exc


def _cmd_receiver(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        return _fail(str(exc))
    if not is_loopback(config.host):
        # Only reachable through an explicit --host: say what that exposes.
        _log.warning(
            "listening on non-loopback address %s%s",
            config.host,
            "" if config.token else " without a token: anyone on the network can submit",
        )
    try:
        return trio.run(_serve, config)
    except KeyboardInterrupt:  # pragma: no cover - SIGINT is handled inside the run
        return 0


async def _serve(config: ReceiverConfig) -> int:
    receiver = Receiver(config)
    # The signal receiver is open before the port line is printed, so a SIGTERM sent the
    # moment a caller reads it still stops us cleanly.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            try:
                await nursery.start(receiver.run)
            except OSError as exc:
                return _fail(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}")
            except PywatsError as exc:
                return _fail(str(exc))
            sys.stdout.write(f"pywats receiver listening on {receiver.url}\n")
            sys.stdout.flush()
            async for signum in signals:
                _log.info("%s received, stopping", signal.Signals(signum).name)
                break
            stats = receiver.stats()
            nursery.cancel_scope.cancel()
    _log.info(
        "stopped: %d received (%d unique, %d duplicates), %d rejected, "
        "%d failed and %d dropped on purpose",
        stats.received,
        stats.unique,
        stats.duplicates,
        stats.rejected,
        stats.failed_injected,
        stats.dropped_injected,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pywats receiver`` with ``argv`` (for ``python -m pywats.cli.receiver``)."""
    parser = argparse.ArgumentParser(prog="pywats")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["receiver", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
