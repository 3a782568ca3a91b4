"""``pywats config check|init|reload``: check an instance's configuration, write a sample,
or make a running instance read its file again (``reload``, through the control socket).

``check`` runs :func:`pywats.plan.prepare`, the same check ``pywats serve`` runs before it
opens anything, so a config it calls ok is one ``serve`` starts with.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pywats import defaults as default
from pywats.errors import ConfigError

_SAMPLE = """\
# pywats instance configuration (TOML). Every key is optional; the values shown
# commented out are the defaults. Reference: docs/configuration.md.
# Check it with:  pywats config check --config THIS_FILE

[station]
# Header defaults for reports whose source file does not carry them.
# name = "<host name>"          # machineName, 1-100 characters
# location = {STATION_LOCATION}
# purpose = {STATION_PURPOSE}

[server]
# Without url the service converts and queues, and uploads once a url is set.
# url = "https://wats.example.com"
# The token (the base64 credential from WATS Control Panel). Prefer token_file, or a
# systemd credential (LoadCredential=token:...), or $PYWATS_TOKEN over writing it here.
# token_file = "/etc/pywats/token"
# connect_timeout_s = {CONNECT_TIMEOUT_S}
# read_timeout_s = {READ_TIMEOUT_S}
# write_timeout_s = {WRITE_TIMEOUT_S}
# pool_timeout_s = {POOL_TIMEOUT_S}
# verify_tls = {VERIFY_TLS}
# ca_file = "/etc/ssl/certs/company-ca.pem"
# proxy = "http://proxy.example.com:3128"

[upload]
# workers = {UPLOAD_WORKERS:<17} # parallel uploads (1 to {UPLOAD_WORKERS_MAX})
# retry_base_s = {RETRY_BASE_S:<12} # full-jitter exponential backoff: base ...
# retry_max_s = {RETRY_MAX_S:<13} # ... and cap
# shutdown_deadline_s = {SHUTDOWN_DEADLINE_S:<5} # on stop, uploads in flight get this long

[convert]
# workers = {CONVERT_WORKERS:<17} # files converted at once (1 to {CONVERT_WORKERS_MAX})

[queue]
# path = "<state dir>/queue.db"
# retention_days = {RETENTION_DAYS:<10} # uploaded reports are kept this long, then purged

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
# settle_s = {SETTLE_S:<16} # rescans take a file once unchanged this long
# settle_after_close = false  # true: closed files settle too (writers in sessions)
# rescan_s = {RESCAN_S}
# use_inotify = true          # false for network shares
# max_file_bytes = {MAX_FILE_BYTES:<10} # larger files go to the error folder unread
# enabled = true

# [converters.arguments]      # the converter's own arguments (see its docs)
"""


def _toml(value: object) -> str:
    """``value`` as it is written in TOML (``10.0`` as ``10``, as a person would)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


SAMPLE = _SAMPLE.format(
    **{name: _toml(value) for name, value in vars(default).items() if name.isupper()}
)
"""The commented sample ``pywats config init`` writes; its defaults come from
:mod:`pywats.defaults`, so they are the code's."""


def _cmd_check(args: argparse.Namespace) -> int:
    # Imported when the command runs (as for serve), not for every command's parser.
    from pywats import config
    from pywats.plan import prepare

    try:
        path = Path(args.config) if args.config else config.find(args.instance)
        if not path.exists():
            print(
                f"pywats config check: {path}: no such file "
                f"(instance {args.instance!r} would run on the built-in defaults)",
                file=sys.stderr,
            )
            return 1
        # Exactly what `pywats serve` runs before it opens anything; the token is only
        # checked, never shown.
        loaded, _, run_plan = prepare(args.instance, path, server_url=args.server_url)
    except config.ConfigCheckError as exc:
        errors = list(exc.errors)
    except ConfigError as exc:
        errors = [exc]
    else:
        errors = []
    if errors:
        for error in errors:
            print(f"pywats config check: {error}", file=sys.stderr)
        return 1
    server = loaded.server.url or "none (reports are queued, not uploaded)"
    print(f"{path}: ok: {len(run_plan.folders)} converter(s), server {server}")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from pywats import config

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
    """Add the ``config`` command with its ``check``, ``init`` and ``reload`` subcommands."""
    parser = subparsers.add_parser("config", help="check or create an instance's config file")
    sub = parser.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    check = sub.add_parser(
        "check",
        help="check a config file: print every error with its key path, exit 1 if any",
    )
    check.add_argument("--instance", default="default", help="instance name (default: default)")
    check.add_argument("--config", metavar="PATH", help="config file (default: the instance's)")
    check.add_argument(
        "--server-url",
        metavar="URL",
        help="check with this server instead of [server] url (as `pywats serve --server-url`)",
    )
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
    reload = sub.add_parser(
        "reload",
        help="make a running instance read its config file again (as SIGHUP); exit 1 if refused",
    )
    reload.add_argument("--instance", default="default", help="instance name (default: default)")
    reload.add_argument("--json", action="store_true", help="print the answer as JSON")
    reload.set_defaults(func=_cmd_reload)


def _cmd_reload(args: argparse.Namespace) -> int:
    # Imported here: the reload talks to the socket, check and init do not need trio.
    from pywats.cli.manage import cmd_config_reload

    return cmd_config_reload(args)
