"""Tell systemd how the service is doing: the ``sd_notify`` datagram protocol, spoken directly.

The protocol is one ``AF_UNIX`` ``SOCK_DGRAM`` datagram per call, holding newline
separated ``KEY=value`` assignments, sent to the socket named in ``$NOTIFY_SOCKET``: a
path, or ``@name`` for the abstract namespace. See ``sd_notify(3)``. We use
``READY=1`` (start-up done), ``STATUS=...`` (one line shown by ``systemctl status``),
``STOPPING=1`` and ``WATCHDOG=1``.

Without ``$NOTIFY_SOCKET`` (not under systemd, or ``Type=`` is not ``notify``) every call
does nothing, so the service code never needs to ask whether it runs under systemd.
Failing to notify is never fatal: the first failure is logged as a warning, later ones
only at debug level until a datagram gets through again.

The watchdog: with ``WatchdogSec=`` in the unit, systemd sets ``$WATCHDOG_USEC`` and kills
and restarts the service if no ``WATCHDOG=1`` arrives within that time. :class:`Watchdog`
pings at half the interval. It runs as a Trio task like every other component, so a
blocked event loop (a synchronous call that hangs) stops the pings and systemd restarts
the service: that is the failure the watchdog exists to catch.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import socket
from collections.abc import Mapping

import trio

from pywats import defaults

log = logging.getLogger(__name__)

# A datagram to a live systemd is queued at once. A receiver that does not read (its
# queue full) may hold one message up for this long; after that, later messages are tried
# once without waiting until one gets through, so a stuck receiver costs a stop (STOPPING,
# STATUS, WATCHDOG) at most this once, not once per message.
_SEND_TIMEOUT_S = defaults.NOTIFY_SEND_TIMEOUT_S

Value = str | int | bool

_NAME_RE = re.compile(r"[A-Z][A-Z0-9_]*")


def _format_state(state: str | Mapping[str, Value], fields: Mapping[str, Value]) -> str:
    """Build the datagram text. Values are made single-line: a newline would start a new
    assignment (a file name holding ``\\nSTOPPING=1`` must not stop the service)."""
    items: list[tuple[str, Value]] = []
    lines: list[str] = []
    if isinstance(state, str):
        lines.extend(line for line in state.splitlines() if line)
    else:
        items.extend(state.items())
    items.extend(fields.items())
    for key, value in items:
        if not _NAME_RE.fullmatch(key):
            raise ValueError(f"invalid sd_notify variable name {key!r}")
        if isinstance(value, bool):
            text = "1" if value else "0"
        else:
            text = " ".join(str(value).splitlines())
        lines.append(f"{key}={text}")
    return "\n".join(lines)


def _address(value: str) -> str | None:
    """The ``AF_UNIX`` address for a ``$NOTIFY_SOCKET`` value, or None if we cannot use it."""
    if value.startswith("@") and len(value) > 1:
        # Abstract namespace: Python takes a leading NUL byte for it.
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    # ``vsock:...`` (systemd >= 254, for VMs) and anything else: not supported here.
    return None


class Notifier:
    """Sends ``sd_notify`` messages to ``$NOTIFY_SOCKET``; a no-op when there is none.

    Each message goes out on a fresh datagram socket, as libsystemd does: nothing is kept
    open, and a restarted manager's socket is found again by name.

    Error handling:
        :meth:`notify` never raises for a failed send (no receiver, permission denied,
        timeout); it logs once per run of failures and returns False.
    """

    def __init__(self, socket_name: str | None) -> None:
        """Notify the socket named ``socket_name`` (as in ``$NOTIFY_SOCKET``); None: no-op."""
        self.socket_name = socket_name or None
        self._address = _address(socket_name) if socket_name else None
        self._failing = False
        self._stuck = False
        if socket_name and self._address is None:
            log.warning("NOTIFY_SOCKET=%r is not a socket path; not notifying systemd", socket_name)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """A notifier for ``$NOTIFY_SOCKET`` in ``environ`` (default ``os.environ``)."""
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        """Whether messages are sent anywhere."""
        return self._address is not None

    async def notify(self, state: str | Mapping[str, Value] = "", /, **fields: Value) -> bool:
        """Send one message: ``notify(READY=1, STATUS="watching 2 folders")``.

        ``state`` may be raw protocol text (``"READY=1\\nSTATUS=ok"``) or a mapping; keyword
        fields are added after it. ``True`` is sent as ``1``. Newlines inside values are
        replaced by spaces. The send is not interrupted by cancellation, so it can be used
        while shutting down. A receiver whose queue is full is waited for at most
        :data:`~pywats.defaults.NOTIFY_SEND_TIMEOUT_S` (1 s), and after that not at all
        until a message gets through: a stuck receiver can hold up a stop by 1 s at most.

        Returns:
            True if the datagram was sent, False if notifying is off or failed.

        Raises:
            ValueError: a variable name is not upper case letters, digits and ``_``.
        """
        text = _format_state(state, fields)
        if self._address is None or not text:
            return False
        # A receiver found stuck is not waited for again until a message gets through.
        wait_s = 0.0 if self._stuck else _SEND_TIMEOUT_S
        try:
            # Shielded: STOPPING=1 is typically sent while the service is being cancelled,
            # and a message must go out whole. A send takes microseconds; the deadline
            # bounds the wait on a stuck receiver.
            with trio.CancelScope(shield=True):
                await self._send(self._address, text.encode("utf-8"), wait_s)
        except (OSError, trio.TooSlowError) as exc:
            self._stuck = isinstance(exc, trio.TooSlowError | BlockingIOError)
            level = logging.DEBUG if self._failing else logging.WARNING
            log.log(level, "cannot notify systemd at %s: %s", self.socket_name, _describe(exc))
            self._failing = True
            return False
        self._stuck = False
        if self._failing:
            log.info("notifying systemd at %s works again", self.socket_name)
            self._failing = False
        return True

    @staticmethod
    async def _send(address: str, data: bytes, wait_s: float) -> None:
        """Send one datagram; wait up to ``wait_s`` for room in the receiver's queue (0:
        one try). Raises ``OSError``, or ``trio.TooSlowError`` when the wait ran out."""
        await trio.lowlevel.checkpoint()  # shielded by the caller: a scheduling point only
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            # connect() first: poll() on an unconnected datagram socket says "writable"
            # even when the receiver's queue is full. (An AF_UNIX connect never blocks.)
            sock.connect(address)
            if _try_send(sock, data):
                return
            if wait_s <= 0:
                raise BlockingIOError(errno.EAGAIN, "the receiver's queue is full")
            with trio.fail_after(wait_s):
                while True:
                    await trio.lowlevel.wait_writable(sock)
                    if _try_send(sock, data):
                        return

    async def ready(self, status: str | None = None) -> bool:
        """``READY=1`` (and ``STATUS=`` if given): start-up is complete."""
        extra = {"STATUS": status} if status is not None else {}
        return await self.notify(READY=1, **extra)

    async def status(self, status: str) -> bool:
        """``STATUS=<status>``: the one line ``systemctl status`` shows."""
        return await self.notify(STATUS=status)

    async def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1`` (and ``STATUS=`` if given): shutdown has begun."""
        extra = {"STATUS": status} if status is not None else {}
        return await self.notify(STOPPING=1, **extra)

    async def watchdog(self) -> bool:
        """``WATCHDOG=1``: we are alive."""
        return await self.notify(WATCHDOG=1)


def _try_send(sock: socket.socket, data: bytes) -> bool:
    """One non-blocking send: True if it went out, False if the receiver's queue is full.
    Other errors raise ``OSError``."""
    try:
        sock.send(data)
    except BlockingIOError:
        return False
    return True


def _describe(exc: BaseException) -> str:
    if isinstance(exc, trio.TooSlowError):
        return f"its queue stayed full for {_SEND_TIMEOUT_S:g} s (nobody reads it)"
    if isinstance(exc, BlockingIOError):
        return "its queue is full (nobody reads it)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings: half of ``$WATCHDOG_USEC``, or None if off.

    ``$WATCHDOG_PID``, when set, names the process the watchdog is meant for; in any other
    process (a child that inherited the environment) the watchdog is off. A value that is
    not a positive integer turns it off too (logged).
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        value = 0
    if value <= 0:
        log.warning("ignoring WATCHDOG_USEC=%r: not a positive number of microseconds", usec)
        return None
    return value / 2 / 1_000_000


class Watchdog:
    """Sends ``WATCHDOG=1`` every ``interval`` seconds while :meth:`run` runs.

    Build it with :meth:`from_environ` to use the unit's ``WatchdogSec=``.
    """

    def __init__(self, notifier: Notifier, interval: float | None) -> None:
        """Ping through ``notifier`` every ``interval`` seconds; None: the watchdog is off."""
        if interval is not None and interval <= 0:
            raise ValueError(f"watchdog interval must be positive, got {interval!r}")
        self.notifier = notifier
        self.interval = interval

    @classmethod
    def from_environ(cls, notifier: Notifier, environ: Mapping[str, str] | None = None) -> Watchdog:
        """A watchdog at :func:`watchdog_interval` of ``environ`` (default ``os.environ``)."""
        return cls(notifier, watchdog_interval(environ))

    @property
    def enabled(self) -> bool:
        """Whether :meth:`run` sends anything."""
        return self.interval is not None and self.notifier.enabled

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Ping at once, then every ``interval`` seconds, until cancelled.

        Returns right after starting when the watchdog is off (no interval or no
        ``$NOTIFY_SOCKET``): there is nothing to keep alive for.
        """
        task_status.started()
        if self.interval is None or not self.notifier.enabled:
            return
        log.debug("watchdog: pinging systemd every %g s", self.interval)
        # Pings are scheduled on a fixed grid, so a slow send does not make them drift;
        # after a stall (the very thing systemd watches for) the grid restarts from now
        # instead of sending the missed pings in a burst.
        deadline = trio.current_time()
        while True:
            await self.notifier.watchdog()
            deadline += self.interval
            now = trio.current_time()
            if deadline <= now:
                deadline = now + self.interval
            await trio.sleep_until(deadline)
