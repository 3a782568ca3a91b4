"""``pywats config check|init``: check an instance's configuration, or write a sample."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pywats import config
from pywats.errors import ConfigError

SAMPLE = """\
# pywats instance configuration (TOML). Every key is optional; the values shown
# commented out are the defaults. Reference: docs/configuration.md.
# Check it with:  pywats config check --config THIS_FILE

[station]
# Header defaults for reports whose source file does not carry them.
# name = "<host name>"          # machineName, 1-100 characters
# location = "unknown"
# purpose = "Production"

[server]
# Without url the service converts and queues, and uploads once a url is set.
# url = "https://wats.example.com"
# The token (the base64 credential from WATS Control Panel). Prefer token_file, or a
# systemd credential (LoadCredential=token:...), or $PYWATS_TOKEN over writing it here.
# token_file = "/etc/pywats/token"
# connect_timeout_s = 10
# read_timeout_s = 60
# write_timeout_s = 60
# pool_timeout_s = 10
# verify_tls = true
# ca_file = "/etc/ssl/certs/company-ca.pem"
# proxy = "http://proxy.example.com:3128"

[upload]
# workers = 5                 # parallel uploads
# retry_base_s = 1            # full-jitter exponential backoff: base ...
# retry_max_s = 300           # ... and cap
# shutdown_deadline_s = 10    # on stop, uploads in flight get this long

[convert]
# workers = 4                 # files converted at once

[queue]
# path = "<state dir>/queue.db"
# retention_days = 7          # uploaded reports are kept this long, then purged

[rpc]
# allowed_group = "pywats"    # members may attach the TUI (besides this user and root)

[log]
# level = "info"              # debug, info, warning, error

# One [[converters]] table per watch folder and converter.
[[converters]]
name = "wsjf"                 # built-in (wsjf, wsxf, wstf, csv) or entry point name;
                              # or module = "package.module:Class"
watch = "/srv/test-results/ict"
# patterns = ["*.json"]       # default: the converter's own patterns
# recursive = false
# post_action = "move"        # move, delete, archive (done_dir/YYYY-MM-DD), keep
# done_dir = "<state dir>/done/wsjf"
# error_dir = "<state dir>/error/wsjf"
# settle_s = 2                # rescans take a file once unchanged this long
# rescan_s = 30
# use_inotify = true          # false for network shares
# max_file_bytes = 52428800   # larger files go to the error folder unread
# enabled = true

# [converters.arguments]      # the converter's own arguments (see its docs)
"""


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        path = Path(args.config) if args.config else config.find(args.instance)
        if not path.exists():
            print(
                f"pywats config check: {path}: no such file "
                f"(instance {args.instance!r} would run on the built-in defaults)",
                file=sys.stderr,
            )
            return 1
        loaded = config.load(path)
        errors: list[ConfigError] = []
        try:
            config.resolve_token(loaded.server)
        except ConfigError as exc:
            errors.append(ConfigError(exc.key, exc.reason, file=str(path)))
        try:
            converters = config.load_converters(loaded)
        except config.ConfigCheckError as exc:
            errors.extend(exc.errors)
            converters = []
    except config.ConfigCheckError as exc:
        errors = list(exc.errors)
    except ConfigError as exc:
        errors = [exc]
    if errors:
        for error in errors:
            print(f"pywats config check: {error}", file=sys.stderr)
        return 1
    server = loaded.server.url or "none (reports are queued, not uploaded)"
    print(f"{path}: ok: {len(converters)} converter(s), server {server}")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    if args.output == "-":
        sys.stdout.write(SAMPLE)
        return 0
    try:
        path = Path(args.output) if args.output else config.find(args.instance)
        if path.exists() and not args.force:
            print(
                f"pywats config init: {path}: already exists (use --force to overwrite)",
                file=sys.stderr,
            )
            return 1
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SAMPLE, encoding="utf-8")
    except ConfigError as exc:
        print(f"pywats config init: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"pywats config init: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``config`` command with its ``check`` and ``init`` subcommands."""
    parser = subparsers.add_parser("config", help="check or create an instance's config file")
    sub = parser.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    check = sub.add_parser(
        "check",
        help="check a config file: print every error with its key path, exit 1 if any",
    )
    check.add_argument("--instance", default="default", help="instance name (default: default)")
    check.add_argument("--config", metavar="PATH", help="config file (default: the instance's)")
    check.set_defaults(func=_cmd_check)
    init = sub.add_parser("init", help="write a commented sample config")
    init.add_argument("--instance", default="default", help="instance name (default: default)")
    init.add_argument(
        "--output",
        metavar="PATH",
        help="where to write it ('-' for stdout; default: the instance's config path)",
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(func=_cmd_init)
