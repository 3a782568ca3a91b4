"""The control protocol's error codes and exceptions.

::

    PywatsError
    ├── RpcError                  an error answer: ``code``, ``message``, ``data``
    │                             (raised by a method on the service side; raised by
    │                             :class:`~pywats.rpc.client.RpcClient` when one arrives)
    └── RpcClientError            the client could not talk to the service at all
        ├── ServiceNotRunningError   nothing listens on the socket (names its path)
        ├── PermissionRefusedError   the socket or the service refused us (names its path)
        └── ConnectionLostError      the connection ended before the answer came

The codes are JSON-RPC 2.0's (``-32700`` ... ``-32603``) plus the application codes of
:class:`ErrorCode` (``-32001`` ...); ``docs/ipc.md`` lists them all.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

from pywats.errors import PywatsError

__all__ = [
    "ConnectionLostError",
    "ErrorCode",
    "PermissionRefusedError",
    "RpcClientError",
    "RpcError",
    "ServiceNotRunningError",
]


class ErrorCode(enum.IntEnum):
    """Every ``error.code`` the service answers with."""

    PARSE_ERROR = -32700
    """The message is not JSON."""
    INVALID_REQUEST = -32600
    """The JSON is not a JSON-RPC 2.0 request (or the batch is empty)."""
    METHOD_NOT_FOUND = -32601
    """No method of that name."""
    INVALID_PARAMS = -32602
    """A parameter is missing, unknown or of the wrong type; the message names it."""
    INTERNAL_ERROR = -32603
    """A bug in the service; the details are in its log, not in the answer."""
    REPORT_NOT_FOUND = -32001
    """No report with that id is in the queue."""
    SERVICE_STARTING = -32002
    """The service is starting and the component the method needs does not exist yet."""
    SERVICE_STOPPING = -32003
    """The service is stopping and takes no more control verbs."""
    NOT_ALLOWED = -32004
    """The report's state does not allow it (for example: retry a report being uploaded)."""
    NOT_IMPLEMENTED = -32005
    """The method (or this option of it) is not offered by this version of the service."""
    UNKNOWN_FOLDER = -32006
    """No watch folder (converter entry) of that name."""
    QUEUE_ERROR = -32007
    """The queue database could not do what was asked."""
    NO_CONFIG = -32008
    """The service was not started from a configuration (only tests build one that way)."""
    FILE_NOT_FOUND = -32009
    """No such file in the error folder (moved back or removed already)."""
    FILE_EXISTS = -32010
    """The watch folder already has a file of that name; it is never overwritten."""
    FILE_ERROR = -32011
    """The file system refused (permissions, a full disk); the message says why."""


class RpcError(PywatsError):
    """A JSON-RPC error: what a method raises to answer with an error, and what the client
    raises when an error answer arrives.

    Args:
        code: the error code (:class:`ErrorCode` or any int from the wire).
        message: one line for a person.
        data: optional structured detail (JSON-able).
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        self.code = int(code)
        self.message = message
        self.data = data
        super().__init__(f"{message} (error {self.code})")


class RpcClientError(PywatsError):
    """The client could not talk to the service (see the subclasses)."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        self.path = path
        super().__init__(message)


class ServiceNotRunningError(RpcClientError):
    """Nothing listens on the control socket (``path``): the service is not running."""


class PermissionRefusedError(RpcClientError):
    """We may not use the control socket (``path``): file mode, or the service's peer check."""


class ConnectionLostError(RpcClientError):
    """The connection ended (the service stopped, or closed it) before an answer came."""
