"""The converter API: what a converter is, what it is given, and how it is run.

A converter is any object with ``name``, ``version``, ``patterns`` (globs matched against
the file name) and a synchronous, pure ``convert(source, context) -> list[Report]``: it
reads only its source and returns reports; the pipeline queues them. It runs in a worker
thread, so it must not touch trio.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from pywats.errors import ConversionError, ReportError, ReportValidationError
from pywats.report.model import Report


@attrs.frozen
class Source:
    """A file to convert: its path and the bytes that were read from it."""

    path: Path
    data: bytes


@attrs.frozen
class StationDefaults:
    """Header values a converter uses when its input does not carry them."""

    machine_name: str = "pywats-station"
    location: str = "unknown"
    purpose: str = "Production"


@attrs.frozen
class ConversionContext:
    """What a converter is given besides its source."""

    station: StationDefaults = StationDefaults()
    arguments: Mapping[str, Any] = attrs.field(factory=dict)


@runtime_checkable
class Converter(Protocol):
    """A source-file-to-report converter. Plain class attributes satisfy the properties."""

    @property
    def name(self) -> str:
        """Unique name, used in the config and in every error message."""
        ...

    @property
    def version(self) -> str:
        """The converter's own version, recorded with each report it makes."""
        ...

    @property
    def patterns(self) -> Sequence[str]:
        """File-name globs the converter takes (``*.json``), matched case-insensitively."""
        ...

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """Turn ``source`` into one or more reports, or raise ConversionError/ReportError."""
        ...


def matches(converter: Converter, path: Path) -> bool:
    """Whether ``path``'s name matches one of the converter's globs (case-insensitive)."""
    name = path.name.lower()
    return any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in converter.patterns)


def run_converter(converter: Converter, source: Source, context: ConversionContext) -> list[Report]:
    """Run ``converter`` on ``source``; every failure comes out as one ConversionError.

    A converter may be third-party code with bugs: anything it raises is translated here,
    at the boundary, so the caller has one error type with the converter's name in it.
    """
    try:
        reports = converter.convert(source, context)
    except ConversionError:
        raise
    except ReportValidationError as exc:
        raise ConversionError(converter.name, str(exc), path=exc.path) from exc
    except ReportError as exc:
        raise ConversionError(converter.name, str(exc), path=getattr(exc, "path", "")) from exc
    except Exception as exc:
        raise ConversionError(
            converter.name, f"converter crashed: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(reports, list) or not all(isinstance(r, Report) for r in reports):
        raise ConversionError(converter.name, "convert() must return a list of Report")
    if not reports:
        raise ConversionError(converter.name, "the file holds no report")
    return reports
