"""``pywats tui`` itself: refuse without a terminal, log to a file, own the signals, and
run the app until every part of it has stopped.

Order matters (trio's guest-mode rules): the process's signal handlers are installed on
the asyncio loop first (SIGTERM, SIGHUP, SIGINT: each one quits the app the same way as
``q``), then the app starts, and its mount starts the trio guest run with
``host_uses_signal_set_wakeup_fd=True``. :func:`run_app` returns only when the app has
exited, which is only after the trio run is over (:meth:`StationApp.quit_app`).
"""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import os
import signal
import sys
import warnings
from pathlib import Path

from textual.app import AutopilotCallbackType

from pywats import paths
from pywats.errors import ConfigError
from tui.app import DEFAULT_REFRESH_S, StationApp

__all__ = [
    "NO_TERMINAL",
    "QUIT_SIGNALS",
    "is_terminal",
    "log_path",
    "main",
    "run_app",
    "setup_logging",
]

QUIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
"""Signals that quit the TUI (a dropped SSH session sends SIGHUP)."""

NO_TERMINAL = (
    "pywats tui: needs a terminal (stdin and stderr are not one); for a one-shot look"
    " use `pywats status`"
)
LOG_BYTES = 1_000_000

log = logging.getLogger("tui")


def log_path(instance: str) -> Path:
    """Where the TUI of ``instance`` logs: ``tui.log`` in the instance's state directory
    if this user may write there, else in the user's runtime directory."""
    candidates = [paths.state_dir(instance), paths.runtime_dir(instance)]
    for directory in candidates:
        try:
            paths.make_private_dir(directory)
        except (ConfigError, OSError):
            continue
        if os.access(directory, os.W_OK):
            return directory / "tui.log"
    return Path("/tmp") / f"pywats-tui-{os.getuid()}-{instance}.log"


def setup_logging(path: Path, level: int = logging.INFO) -> None:
    """Send every log record (ours, pywats', libraries', warnings) to ``path``, and
    nothing to the terminal the UI draws on."""
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=LOG_BYTES, backupCount=1, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)


async def run_app(
    app: StationApp,
    *,
    signals: tuple[signal.Signals, ...] = QUIT_SIGNALS,
    headless: bool = False,
    auto_pilot: AutopilotCallbackType | None = None,
) -> int:
    """Run ``app`` with ``signals`` quitting it; return its exit code.

    The handlers are on the loop before the app (and so the trio guest run) starts, and
    are removed when it has stopped. ``headless`` and ``auto_pilot`` are for tests.
    """
    loop = asyncio.get_running_loop()
    quitting: set[asyncio.Task[None]] = set()

    def quit_on(signum: signal.Signals) -> None:
        log.info("%s received: quitting", signum.name)
        task = loop.create_task(app.quit_app(128 + signum, f"{signum.name} received"))
        quitting.add(task)  # a reference, so the task is not collected half-way
        task.add_done_callback(quitting.discard)

    for signum in signals:
        loop.add_signal_handler(signum, quit_on, signum)
    try:
        code = await app.run_async(headless=headless, auto_pilot=auto_pilot)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
    # The app's unmount waited for the backend; this is the proof it is over.
    assert app.backend.finished or not getattr(app.backend, "started", True)
    return 1 if code is None else code


def is_terminal(stream: object) -> bool:
    fileno = getattr(stream, "fileno", None)
    try:
        return fileno is not None and os.isatty(fileno())
    except (OSError, ValueError):
        return False


def main(
    instance: str,
    *,
    read_only: bool = False,
    refresh_s: float = DEFAULT_REFRESH_S,
    socket: Path | None = None,
) -> int:
    """``pywats tui``: returns the exit code (0 quit, 1 failed, 2 no terminal or a bad
    instance, 128+N after signal N)."""
    if not (is_terminal(sys.__stdin__) and is_terminal(sys.__stderr__)):
        print(NO_TERMINAL, file=sys.stderr)
        return 2
    try:
        found = socket or paths.find_socket(instance)
        logfile = log_path(instance)
    except ConfigError as exc:
        print(f"pywats tui: {exc}", file=sys.stderr)
        return 2
    setup_logging(logfile)
    # Stray output (a library's print, a warning) goes to the log, not over the UI:
    # Textual draws on the real stderr (sys.__stderr__), which this leaves alone.
    log_stream = open(logfile, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
    sys.stdout = sys.stderr = log_stream
    warnings.simplefilter("default")
    log.info("pywats tui for %r on %s (read-only: %s)", instance, found, read_only)

    from tui.bridge import TrioBridge
    from tui.driver import StationDriver

    app = StationApp(
        TrioBridge(instance, found),
        read_only=read_only,
        refresh_s=refresh_s,
        log_file=logfile,
        driver_class=StationDriver,
    )
    try:
        code = asyncio.run(run_app(app))
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        log_stream.close()
    if app.exit_reason:
        log.info("quit: %s", app.exit_reason)
    log.info("exit %d", code)
    if code == 1 and app.exit_reason:
        print(f"pywats tui: {app.exit_reason} (log: {logfile})", file=sys.stderr)
    return code
