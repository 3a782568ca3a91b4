"""The exceptions pywats raises, in one small tree.

::

    PywatsError                  base of everything pywats raises on purpose
    ├── ReportError              a report (or what should become one) is not acceptable
    │   ├── MalformedInputError  the bytes are not JSON/XML we can read (or are unsafe XML)
    │   └── ReportValidationError the document parsed but breaks a WSJF rule; carries
    │                            every FieldError (path + rule)
    ├── ConversionError          a converter could not turn a source file into reports;
    │                            names the converter, the reason and the field path
    ├── ConfigError              bad configuration; names the TOML key path
    ├── InotifyError             an inotify call failed (pywats.inotify); carries errno + path
    ├── InstanceLockedError      another process runs this instance; carries its pid + lock path
    └── StoreError               the local queue database cannot do what was asked
        └── NotFoundError        no report with that id

Errors are translated at boundaries with ``raise ... from`` so the cause stays attached;
how an error is shown to a person (one line on stderr, a JSON-RPC error) is decided where
it is caught, not inside the exception.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs


class PywatsError(Exception):
    """Base class of every error pywats raises on purpose."""


class ReportError(PywatsError):
    """A report, or the document that should become one, is not acceptable."""


class MalformedInputError(ReportError):
    """The input is not a document we can read: bad JSON, bad XML, unsafe XML, wrong shape."""

    def __init__(self, reason: str, *, path: str = "") -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {reason}" if path else reason)


@attrs.frozen
class FieldError:
    """One broken rule: where (``root.steps[3].numericMeas[0].compOp``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ReportValidationError(ReportError):
    """A report breaks one or more WSJF rules. ``errors`` lists every one of them."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        if not errors:
            raise ValueError("ReportValidationError needs at least one FieldError")
        self.errors = tuple(errors)
        first = str(self.errors[0])
        more = len(self.errors) - 1
        super().__init__(first if not more else f"{first} (and {more} more)")

    @property
    def path(self) -> str:
        """The field path of the first error."""
        return self.errors[0].path


class ConversionError(PywatsError):
    """A converter could not turn a source into reports.

    ``converter`` is the converter's name, ``reason`` says what was wrong and ``path`` where
    (a field path for validation errors, possibly empty).
    """

    def __init__(self, converter: str, reason: str, *, path: str = "") -> None:
        self.converter = converter
        self.reason = reason
        self.path = path
        super().__init__(f"converter {converter!r}: {reason}")


class ConfigError(PywatsError):
    """Bad configuration. ``key`` is the TOML key path (``server.timeout_s``)."""

    def __init__(self, key: str, reason: str, *, file: str = "") -> None:
        self.key = key
        self.reason = reason
        self.file = file
        where = f"{file}: " if file else ""
        super().__init__(f"{where}{key}: {reason}" if key else f"{where}{reason}")


class StoreError(PywatsError):
    """The local queue database cannot do what was asked."""


class NotFoundError(StoreError):
    """No report with the given id is in the queue."""


class InstanceLockedError(PywatsError):
    """Another process holds the instance lock (:mod:`pywats.instance`).

    ``pid`` is the holder's process id as it wrote it into the lock file (``None`` when
    the file did not say), ``path`` the lock file.
    """

    def __init__(self, instance: str, pid: int | None, path: str) -> None:
        self.instance = instance
        self.pid = pid
        self.path = path
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"instance {instance!r} is already running ({holder}, lock {path})")
