"""Every value rule of the configuration, written once.

Each check takes a value and raises :class:`ValueError` with a reason a station engineer
can act on (the caller adds the key path). The configuration layer runs them while it
reads the TOML file (so errors carry the key path); the components' configurations run
the same functions through :func:`validator` (so a component built in code, or by a test,
obeys the same rules). NaN and infinities are refused everywhere a number is expected:
TOML can spell ``nan`` and ``inf``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

from pywats.errors import ConfigError

Check = Callable[[Any], None]


def positive(value: float) -> None:
    """A finite number greater than 0."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"must be a number greater than 0, got {value!r}")


def non_negative(value: float) -> None:
    """A finite number, 0 or more."""
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"must be a number, 0 or more, got {value!r}")


def between(low: int, high: int) -> Check:
    """A whole number from ``low`` to ``high``."""

    def check(value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be a whole number from {low} to {high}, got {value!r}")

    return check


def text(value: str) -> None:
    """1 to 100 characters (WATS header fields)."""
    if not 1 <= len(value) <= 100:
        raise ValueError(f"must be 1 to 100 characters, got {len(value)}")


def validator(check: Check) -> Callable[[object, attrs.Attribute[Any], Any], None]:
    """``check`` as an attrs validator raising :class:`~pywats.errors.ConfigError` that
    names the field."""

    def run(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        try:
            check(value)
        except ValueError as exc:
            raise ConfigError(attribute.name, str(exc)) from None

    return run
