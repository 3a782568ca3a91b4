"""Converters: turn the files test equipment writes into WATS reports.

See :mod:`pywats.converters.base` for the API and :mod:`pywats.converters.registry` for
how converters are found (built-ins, entry points in the group ``pywats.converters``,
``module:Class`` specs) and loaded with their arguments, and
:mod:`pywats.converters.sniffing` for how a file finds its converter (patterns, then its
content). Built-in: ``wsjf`` (JSON), ``wsxf`` (XML), ``wstf`` (WATS Standard Text),
``csv`` (column mapping), and the formats test equipment writes: ``atml``,
``teststand-xml``, ``i3070``, ``teradyne-gr228x``, ``teradyne-spectrum``, ``spea``,
``xjtag`` and ``klippel``; a ``[[converters]]`` entry with a ``command`` runs a program
(:mod:`pywats.converters.process`).
"""

from __future__ import annotations

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


def builtin_converters() -> dict[str, Converter]:
    """The converters shipped with pywats, by name (instances, no plugins)."""
    out: dict[str, Converter] = {}
    for name, spec in BUILTINS.items():
        cls = import_spec(spec, key=f"converters.{name}")
        assert isinstance(cls, type)
        out[name] = cls()
    return out
