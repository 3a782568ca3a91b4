"""Logging for ``pywats serve``: one line per event, journal-aware, secrets never written.

Every event is one line, ``LEVEL component: message``, where the component is the logger
name without the ``pywats.`` prefix (``store``, ``uploader``)::

    2024-05-01T10:00:00.123+02:00 WARNING uploader: server offline: connection refused

When stderr is connected to the journal (systemd sets ``$JOURNAL_STREAM`` to the
``device:inode`` of that stream), the timestamp is left out, because journald adds its
own, and the line starts with the syslog priority, ``<4>WARNING uploader: ...``, which
journald turns into the entry's priority (``journalctl -p warning`` works).

Newlines inside a message or a traceback are written as ``\\n`` (other control
characters as ``\\xNN``), so an event is always one journal entry and one line for
``grep``, and a file name cannot forge a log line.

Secrets registered with :func:`redact` (the server token) are replaced by ``***`` in
every record that reaches our handler: message, arguments, exception and stack text.
"""

from __future__ import annotations

import enum
import logging
import os
import sys
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import TextIO


class LogLevel(enum.StrEnum):
    """``[log] level``."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


ROOT_LOGGER = "pywats"
"""The logger :func:`setup_logging` configures; every pywats module logs below it."""

REDACTED = "***"
"""What a registered secret is replaced by."""

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

# syslog priorities (sd-daemon(3)): there is no NOTICE level in Python logging.
_PRIORITIES = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}

# Control characters a line must not carry; tab is harmless and stays.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F) if c != 0x09}
_ESCAPES.update({0x0A: "\\n", 0x0D: "\\r"})
# A file name that is not UTF-8 holds its undecodable bytes as lone surrogates
# (os.fsdecode): shown as the bytes they stand for, as pywats.filenames.shown does.
_ESCAPES.update({0xDC00 + b: f"\\x{b:02x}" for b in range(0x80, 0x100)})

_secrets: tuple[str, ...] = ()
_secrets_lock = threading.Lock()


def redact(secret: str) -> None:
    """Register ``secret``: from now on it is written as ``***`` in every log line.

    Register every form in which the secret could appear (the token as configured, and
    decoded if it is a Basic credential). Empty strings are ignored.
    """
    global _secrets
    if not secret:
        return
    with _secrets_lock:
        if secret not in _secrets:
            # Longest first, so a secret that contains another is replaced whole.
            _secrets = tuple(sorted((*_secrets, secret), key=len, reverse=True))


def clear_secrets() -> None:
    """Forget every registered secret (for tests, and when the token is replaced)."""
    global _secrets
    with _secrets_lock:
        _secrets = ()


def redact_text(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in _secrets:  # a tuple, replaced whole, so threads may read it unlocked
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Replaces registered secrets in a record, before any handler formats it.

    The message is rendered (``msg % args``) and the arguments dropped, so a secret
    passed as an argument is caught too; exception and stack text are rendered and
    redacted the same way. Put it on a handler: a filter on a logger does not see the
    records its children propagate.
    """

    def __init__(self) -> None:
        super().__init__()
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; always keep it."""
        if not _secrets:
            return True
        record.msg = redact_text(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
            # Formatters render exc_info only when exc_text is empty; dropping it makes
            # sure nobody renders the unredacted text again.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def component(name: str) -> str:
    """A logger name as shown in a line: ``pywats.store`` -> ``store``."""
    if name.startswith(ROOT_LOGGER + "."):
        return name[len(ROOT_LOGGER) + 1 :]
    return name


def one_line(text: str) -> str:
    """``text`` on one line: newlines as ``\\n``, other control characters as ``\\xNN``."""
    return text.rstrip("\n").translate(_ESCAPES)


class LineFormatter(logging.Formatter):
    """``[<priority>|timestamp ]LEVEL component: message`` on one line.

    ``journal=True`` writes the ``<N>`` syslog priority prefix instead of a timestamp.
    """

    def __init__(self, *, journal: bool) -> None:
        super().__init__()
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one line (exception and stack text included, escaped)."""
        text = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text = f"{text}\n{record.exc_text}"
        if record.stack_info:
            text = f"{text}\n{record.stack_info}"
        body = f"{record.levelname} {component(record.name)}: {one_line(text)}"
        if self.journal:
            return f"<{_priority(record.levelno)}>{body}"
        stamp = datetime.fromtimestamp(record.created).astimezone()
        return f"{stamp.isoformat(timespec='milliseconds')} {body}"


def _priority(levelno: int) -> int:
    """The syslog priority of a logging level; custom levels round to the nearer below."""
    for level in sorted(_PRIORITIES, reverse=True):
        if levelno >= level:
            return _PRIORITIES[level]
    return 7


def is_journal(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``stream`` is the journal stream systemd named in ``$JOURNAL_STREAM``.

    systemd sets ``JOURNAL_STREAM=<device>:<inode>`` for a service whose stdout or
    stderr goes to the journal; the variable is inherited by children whose stderr may
    go elsewhere, so the stream itself is compared, not just the variable's presence.
    """
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        # io.UnsupportedOperation (an OSError and ValueError) for in-memory streams.
        return False
    return value == f"{info.st_dev}:{info.st_ino}"


class _Handler(logging.StreamHandler[TextIO]):
    """Our stream handler, marked so :func:`setup_logging` can replace it."""


def parse_level(level: str | int) -> int:
    """A logging level from a name (``"info"``, any case) or a number.

    Raises:
        ValueError: an unknown level name.
    """
    if isinstance(level, int):
        return level
    try:
        return _LEVELS[level.strip().lower()]
    except KeyError:
        names = ", ".join(_LEVELS)
        raise ValueError(f"unknown log level {level!r}: use one of {names}") from None


def setup_logging(
    level: str | int = "info",
    *,
    stream: TextIO | None = None,
    journal: bool | None = None,
) -> logging.Handler:
    """Write log events to ``stream`` (default: stderr), one line per event.

    Sets the level of the ``pywats`` logger and puts one handler on the root logger, so
    other libraries' records (WARNING and above, the root default) are written in the
    same form. Calling it again replaces the handler it installed before, so the level
    or stream can be changed.

    Args:
        level: the lowest level written: a name (``debug``, ``info``, ``warning``,
            ``error``, ``critical``) or a number.
        stream: where lines go; stderr if None.
        journal: whether to write journal lines (``<N>`` prefix, no timestamp); by default
            decided by :func:`is_journal` on the stream.

    Returns:
        The installed handler.

    Raises:
        ValueError: an unknown level name.
    """
    levelno = parse_level(level)
    out = sys.stderr if stream is None else stream
    handler = _Handler(out)
    handler.setFormatter(LineFormatter(journal=is_journal(out) if journal is None else journal))
    handler.addFilter(RedactingFilter())
    # The handler sits on the root logger so the warnings of libraries (httpx, trio-websocket)
    # come out in the same one-line, journal-aware and redacted form instead of through
    # logging's bare last-resort handler; the root level (WARNING by default) still keeps
    # their chatter out. Only the pywats level is set here.
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    logging.getLogger(ROOT_LOGGER).setLevel(levelno)
    return handler
