"""The checks of the arguments many converters share: one rule per argument name.

``operationTypeCode``, ``partNumber``, ``partRevision``/``revision``, ``sequenceName``,
``sequenceVersion``, ``operator`` and ``encoding`` fill the same report fields in every
converter that takes them, so they obey the same limits everywhere. A converter's
``Arguments`` still declares each of its arguments itself (name, type, default and the
``#:`` comment the docs show); its ``__attrs_post_init__`` calls :func:`check_arguments`
for the shared ones and checks its own after that.
"""

from __future__ import annotations

from typing import Any

import attrs

from pywats.converters.base import ArgumentError
from pywats.converters.helpers import check_encoding_argument

#: The most characters of each shared text argument: the size WATS stores the report
#: field it fills in (pn and rev 100, a sequence's name 200 and version 30, the user 100).
TEXT_LIMITS = {
    "partNumber": 100,
    "partRevision": 100,
    "revision": 100,
    "sequenceName": 200,
    "sequenceVersion": 30,
    "operator": 100,
}


def check_process_code(key: str, code: int) -> None:
    """ArgumentError at ``key`` unless ``code`` is a process code (a 32-bit int, 0 or more)."""
    if not 0 <= code < 2**31:
        raise ArgumentError(key, "must be a process code (0 or more)")


def check_length(key: str, text: str | None, most: int) -> None:
    """ArgumentError at ``key`` unless ``text`` is None (not given) or 1 to ``most`` long."""
    if text is not None and not 1 <= len(text) <= most:
        raise ArgumentError(key, f"must be 1 to {most} characters")


def check_arguments(arguments: Any) -> None:
    """For a converter's ``Arguments.__attrs_post_init__``: an ArgumentError at the first
    shared argument (see the module) of ``arguments`` that is wrong.

    ``encoding`` is checked first (:func:`check_encoding_argument`; None passes), then the
    others in the order the class declares them: ``operationTypeCode`` a process code, the
    texts of :data:`TEXT_LIMITS` 1 to that many characters (None, where allowed, passes).
    The order matters: with several wrong, the first is the one the user is told.
    """
    names = [field.name for field in attrs.fields(type(arguments))]
    if "encoding" in names:
        check_encoding_argument(arguments.encoding)
    for name in names:
        if name == "operationTypeCode":
            check_process_code(name, arguments.operationTypeCode)
        elif name in TEXT_LIMITS:
            check_length(name, getattr(arguments, name), TEXT_LIMITS[name])
