"""Converters: turn the files test equipment writes into WATS reports.

See :mod:`pywats.converters.base` for the API. Built-in: ``wsjf`` and ``wsxf``.
"""

from __future__ import annotations

from pathlib import Path

from pywats.converters.base import ConversionContext as ConversionContext
from pywats.converters.base import Converter as Converter
from pywats.converters.base import Source as Source
from pywats.converters.base import StationDefaults as StationDefaults
from pywats.converters.base import matches as matches
from pywats.converters.base import run_converter as run_converter
from pywats.converters.wsjf import WsjfConverter
from pywats.converters.wsxf import WsxfConverter
from pywats.errors import PywatsError


def builtin_converters() -> dict[str, Converter]:
    """The converters shipped with pywats, by name."""
    return {c.name: c for c in (WsjfConverter(), WsxfConverter())}


def select(path: Path, name: str | None, available: dict[str, Converter]) -> Converter:
    """The converter for ``path``: the one named, else the first whose pattern matches."""
    if name is not None:
        try:
            return available[name]
        except KeyError:
            known = ", ".join(sorted(available))
            raise PywatsError(f"unknown converter {name!r} (known: {known})") from None
    for converter in available.values():
        if matches(converter, path):
            return converter
    choices = "; ".join(f"{c.name}: {', '.join(c.patterns)}" for c in available.values())
    raise PywatsError(
        f"no converter matches {path.name!r} ({choices}); choose one with --converter"
    )
