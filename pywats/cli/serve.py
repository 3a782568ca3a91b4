"""``pywats serve``: run one instance in the foreground (systemd ``Type=notify``).

Exit codes: 0 after a graceful stop; 1 when it cannot start (bad config: one line per
error with the key path; the instance already running; a watch folder another process
watches; the queue cannot be opened; another process listening on the control socket);
130 after a second SIGINT stopped it at once.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pywats import logs, paths
from pywats.errors import ConfigError, PywatsError

if TYPE_CHECKING:
    from pywats.folderlock import FolderLockedError
    from pywats.pipeline.folders import FolderConfig

# The service's modules are imported when `serve` runs, not when any `pywats` command
# builds its parser: `pywats status` should not pay for the whole service.

log = logging.getLogger("pywats.service")


def _leaves(group: BaseExceptionGroup[PywatsError]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


def _fail(message: str) -> int:
    print(f"pywats serve: {message}", file=sys.stderr)
    return 1


def _folders_taken(folders: Sequence[FolderConfig]) -> FolderLockedError | None:
    """The first watch folder another process holds, found before anything is opened.

    Only a probe (each lock is dropped at once), so the usual case, a second process on a
    watched folder, is refused before it opens a queue or a socket; the watcher's own lock
    at start is what really keeps two processes apart. A folder that does not exist yet
    (the watcher makes it) or cannot be opened is left to the watcher to judge.
    """
    from pywats.folderlock import FolderLockedError, lock_folder

    for folder in folders:
        try:
            lock_folder(folder.watch).release()
        except FolderLockedError as exc:
            return exc
        except OSError:
            continue
    return None


def _cmd_serve(args: argparse.Namespace) -> int:
    import trio

    from pywats import config as config_mod
    from pywats.collector import tune_collector
    from pywats.instance import InstanceLock
    from pywats.plan import prepare
    from pywats.rpc.server import RpcSettings
    from pywats.sdnotify import Notifier, Watchdog
    from pywats.service import Service

    instance = args.instance
    try:
        # The same check as `pywats config check`: everything the config alone can get
        # wrong is found here, before the lock is taken or anything is opened.
        config, token, run_plan = prepare(instance, args.config, server_url=args.server_url)
    except config_mod.ConfigCheckError as exc:
        for error in exc.errors:
            print(f"pywats serve: {error}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        return _fail(str(exc))
    if token:
        logs.redact(token)
    logs.setup_logging(args.log_level or config.log.level.value)
    try:
        lock = InstanceLock(instance)
        lock.acquire()
    except PywatsError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot take the instance lock: {exc}")
    try:
        taken = _folders_taken(run_plan.folders)
        if taken is not None:
            return _fail(str(taken))
        if config.source is None:
            log.info("no config file for instance %r: running on the built-in defaults", instance)
        else:
            log.info("instance %r: config %s", instance, config.source)
        notifier = Notifier.from_environ()
        try:
            rpc = RpcSettings(paths.socket_path(instance), allowed_group=config.rpc.allowed_group)
        except ConfigError as exc:
            return _fail(str(exc))
        service = Service(
            run_plan, notifier=notifier, watchdog=Watchdog.from_environ(notifier), rpc=rpc
        )
        tune_collector()
        try:
            trio.run(service.run)
        except PywatsError as exc:
            log.error("%s", exc)  # noqa: TRY400 - one line, the message says it all
            return 1
        except ExceptionGroup as group:
            # A start-up error from inside the service's nurseries (the control socket
            # taken by another process) arrives wrapped: still one line and exit 1.
            matched, rest = group.split(PywatsError)
            if matched is None or rest is not None:
                raise
            for leaf in _leaves(matched):
                log.error("%s", leaf)  # noqa: TRY400 - one line, the message says it all
            return 1
        return 130 if service.forced else 0
    finally:
        lock.release()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command."""
    parser = subparsers.add_parser(
        "serve",
        help="run an instance in the foreground (watch, convert, queue, upload)",
        description="Run one pywats instance until SIGTERM/SIGINT. See docs/operations.md.",
    )
    parser.add_argument("--instance", default="default", help="instance name (default: default)")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: the instance's; see docs/configuration.md)",
    )
    parser.add_argument(
        "--server-url",
        metavar="URL",
        help="upload to this server instead of [server] url (e.g. a local 'pywats receiver')",
    )
    parser.add_argument(
        "--log-level",
        choices=[level.value for level in logs.LogLevel],
        help="override [log] level",
    )
    parser.set_defaults(func=_cmd_serve)
