"""Converters: turn the files test equipment writes into WATS reports.

See :mod:`pywats.converters.base` for the API and :mod:`pywats.converters.registry` for
how converters are found (built-ins, entry points in the group ``pywats.converters``,
``module:Class`` specs) and loaded with their arguments. Built-in: ``wsjf`` (JSON),
``wsxf`` (XML), ``wstf`` (WATS Standard Text) and ``csv`` (column mapping).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pywats.converters.base import ArgumentError as ArgumentError
from pywats.converters.base import ConversionContext as ConversionContext
from pywats.converters.base import Converter as Converter
from pywats.converters.base import Source as Source
from pywats.converters.base import StationDefaults as StationDefaults
from pywats.converters.base import matches as matches
from pywats.converters.base import name_of as name_of
from pywats.converters.base import patterns_of as patterns_of
from pywats.converters.base import run_converter as run_converter
from pywats.converters.base import structure_arguments as structure_arguments
from pywats.converters.registry import BUILTINS as BUILTINS
from pywats.converters.registry import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
from pywats.converters.registry import LoadedConverter as LoadedConverter
from pywats.converters.registry import discover as discover
from pywats.converters.registry import import_spec
from pywats.converters.registry import load_converter as load_converter
from pywats.errors import PywatsError


def builtin_converters() -> dict[str, Converter]:
    """The converters shipped with pywats, by name (instances, no plugins)."""
    out: dict[str, Converter] = {}
    for name, spec in BUILTINS.items():
        cls = import_spec(spec, key=f"converters.{name}")
        assert isinstance(cls, type)
        out[name] = cls()
    return out


def select(
    path: Path, name: str | None, available: Mapping[str, Converter | type[Converter]]
) -> Converter:
    """The converter for ``path``: the one named, else the first whose pattern matches.

    ``available`` holds instances or classes (as :func:`discover` returns); a class is
    instantiated with no arguments.
    """
    if name is not None:
        try:
            return _instance(available[name])
        except KeyError:
            known = ", ".join(sorted(available))
            raise PywatsError(f"unknown converter {name!r} (known: {known})") from None
    for converter in available.values():
        if matches(converter, path):
            return _instance(converter)
    choices = "; ".join(f"{n}: {', '.join(patterns_of(c))}" for n, c in available.items())
    raise PywatsError(
        f"no converter matches {path.name!r} ({choices}); choose one with --converter"
    )


def _instance(converter: Converter | type[Converter]) -> Converter:
    return converter() if isinstance(converter, type) else converter
