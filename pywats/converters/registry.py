"""Finding converters and loading them with their arguments.

Converters come from three places, in this order:

1. the built-ins (``wsjf``, ``wsxf``, ``wstf``, ``csv``), known here directly so they work
   even where pywats' own entry points were never installed (a source checkout);
2. entry points in the group ``pywats.converters`` (``name = "package.module:Class"``), which
   is how an installed plugin distribution announces its converters;
3. a ``module:Class`` spec written in the config, for a converter that is importable but not
   installed as a distribution.

Everything here runs at start-up, so every problem is a :class:`~pywats.errors.ConfigError`
that names what to fix.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Mapping, Sequence
from typing import Any, cast

import attrs

from pywats.converters.base import (
    ConversionContext,
    Converter,
    Source,
    StationDefaults,
    join_key,
    key_path,
    name_of,
    run_converter,
    structure_arguments,
)
from pywats.errors import ConfigError
from pywats.report.model import Report

#: The entry point group plugins register their converter classes in.
ENTRY_POINT_GROUP = "pywats.converters"

#: The converters shipped with pywats, imported on first use.
BUILTINS: dict[str, str] = {
    "wsjf": "pywats.converters.wsjf:WsjfConverter",
    "wsxf": "pywats.converters.wsxf:WsxfConverter",
    "wstf": "pywats.converters.wstf:WstfConverter",
    "csv": "pywats.converters.csv:CsvConverter",
    "spea": "pywats.converters.spea:SpeaConverter",
    "xjtag": "pywats.converters.xjtag:XjtagConverter",
    "atml": "pywats.converters.atml:AtmlConverter",
    "teststand-xml": "pywats.converters.teststand_xml:TestStandXmlConverter",
    "klippel": "pywats.converters.klippel:KlippelConverter",
    "teradyne-gr228x": "pywats.converters.teradyne_gr228x:GR228XConverter",
    "teradyne-spectrum": "pywats.converters.teradyne_spectrum:SpectrumConverter",
    "i3070": "pywats.converters.i3070:I3070Converter",
}


def import_spec(spec: str, *, key: str) -> object:
    """The object a ``package.module:Attribute`` spec names; ConfigError under ``key`` if not."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(key, f"{spec!r} is not a 'package.module:Class' spec")
    try:
        target: object = importlib.import_module(module_name)
    except Exception as exc:
        # Any exception: importing third-party code runs its module body.
        raise ConfigError(
            key, f"cannot import {module_name!r} for {spec!r}: {type(exc).__name__}: {exc}"
        ) from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            reason = f"{module_name!r} has no {attribute!r} (from {spec!r})"
            raise ConfigError(key, reason) from None
    return target


def check_converter_class(obj: object, *, key: str, origin: str) -> type[Converter]:
    """``obj`` if it is a usable converter class, else ConfigError naming ``origin``."""
    if not isinstance(obj, type):
        raise ConfigError(key, f"{origin} is not a class (got {type(obj).__name__})")
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(key, f"{origin}: the converter class needs a non-empty str `name`")
    if not isinstance(getattr(obj, "version", None), str):
        raise ConfigError(key, f"{origin}: converter {name!r} needs a str `version`")
    patterns = getattr(obj, "patterns", None)
    if (
        isinstance(patterns, str)
        or not isinstance(patterns, Sequence)
        or not all(isinstance(p, str) and p for p in patterns)
    ):
        raise ConfigError(
            key, f"{origin}: converter {name!r} needs `patterns`, a tuple of globs ('*.txt',)"
        )
    if not callable(getattr(obj, "convert", None)):
        raise ConfigError(key, f"{origin}: converter {name!r} needs a convert(source, context)")
    arguments = getattr(obj, "Arguments", None)
    if arguments is not None and not attrs.has(arguments):
        raise ConfigError(key, f"{origin}: {name}.Arguments must be an attrs class")
    return cast(type[Converter], obj)


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return sorted(
        importlib.metadata.entry_points(group=ENTRY_POINT_GROUP),
        key=lambda ep: (ep.name, ep.value),
    )


def discover() -> dict[str, type[Converter]]:
    """Every converter class by name: the built-ins first, then entry points by name.

    Raises ConfigError when an entry point cannot be loaded (the key names the entry
    point), when it names a class whose ``name`` differs from the entry point's, or when
    two different classes claim one name.
    """
    found: dict[str, type[Converter]] = {}
    origins: dict[str, str] = {}
    for name, spec in BUILTINS.items():
        key = f"converters.{name}"
        found[name] = check_converter_class(
            import_spec(spec, key=key), key=key, origin=f"built-in {spec}"
        )
        origins[name] = f"built-in {spec}"
    for ep in _entry_points():
        key = f"entry-points.{ENTRY_POINT_GROUP}.{ep.name}"
        dist = getattr(ep.dist, "name", None) or "an unknown distribution"
        origin = f"entry point {ep.name!r} = {ep.value!r} (from {dist})"
        try:
            loaded = ep.load()
        except Exception as exc:
            # Any exception: loading runs the plugin's module body.
            raise ConfigError(key, f"cannot load {origin}: {type(exc).__name__}: {exc}") from exc
        cls = check_converter_class(loaded, key=key, origin=origin)
        if name_of(cls) != ep.name:
            raise ConfigError(
                key, f"{origin} names a converter called {name_of(cls)!r}; the names must agree"
            )
        if ep.name in found:
            if found[ep.name] is cls:
                continue  # pywats' own entry point for a built-in, or the same plugin twice
            raise ConfigError(
                key,
                f"two converters are named {ep.name!r}: {origins[ep.name]} and {origin}; "
                "uninstall one of them",
            )
        found[ep.name] = cls
        origins[ep.name] = origin
    return found


@attrs.frozen
class LoadedConverter:
    """A converter instance with its checked arguments, ready to run on files.

    ``spec`` is what the config named (``csv`` or ``package.module:Class``); ``arguments``
    is the structured ``Arguments`` instance (or the raw table when the converter declares
    no ``Arguments`` class).
    """

    name: str
    spec: str
    converter: Converter
    arguments: Any

    @property
    def version(self) -> str:
        """The converter's version."""
        return self.converter.version

    @property
    def patterns(self) -> Sequence[str]:
        """The converter's file-name globs."""
        return self.converter.patterns

    def context(self, station: StationDefaults | None = None) -> ConversionContext:
        """The context the converter runs with, for ``station``."""
        return ConversionContext(station or StationDefaults(), self.arguments)

    def convert(self, source: Source, station: StationDefaults | None = None) -> list[Report]:
        """Run the converter on ``source``; every failure is one ConversionError."""
        return run_converter(self.converter, source, self.context(station))


def load_converter(
    spec: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    key: str | None = None,
    available: Mapping[str, type[Converter]] | None = None,
) -> LoadedConverter:
    """Find the converter ``spec`` names, check ``arguments`` and make an instance.

    ``spec`` is a converter name (built-in or entry point) or a ``package.module:Class``
    spec. ``key`` is the config key of this converter's entry (default
    ``converters.<name>``); errors in the arguments are reported under
    ``<key>.arguments.<argument>``. ``available`` replaces :func:`discover` (for callers
    that already discovered). Raises ConfigError.
    """
    raw = dict(arguments or {})
    if ":" in spec:
        entry_key = key or key_path("converters", spec)
        cls = check_converter_class(
            import_spec(spec, key=entry_key), key=entry_key, origin=repr(spec)
        )
        entry_key = key or key_path("converters", name_of(cls))
    else:
        entry_key = key or key_path("converters", spec)
        known = discover() if available is None else available
        try:
            cls = known[spec]
        except KeyError:
            names = ", ".join(sorted(known)) or "none"
            raise ConfigError(
                entry_key,
                f"unknown converter {spec!r} (known: {names}; or give 'package.module:Class')",
            ) from None
    arguments_key = join_key(entry_key, "arguments")
    arguments_cls = getattr(cls, "Arguments", None)
    structured: Any
    if arguments_cls is not None:
        structured = structure_arguments(arguments_cls, raw, key=arguments_key)
    else:
        structured = raw
    try:
        instance = cls()
    except Exception as exc:
        # Any exception: a third-party constructor; the class must build with no arguments.
        raise ConfigError(
            entry_key, f"cannot create converter {name_of(cls)!r}: {type(exc).__name__}: {exc}"
        ) from exc
    return LoadedConverter(name=name_of(cls), spec=spec, converter=instance, arguments=structured)
