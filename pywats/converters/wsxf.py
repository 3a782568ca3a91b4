"""The ``wsxf`` converter: WATS Standard XML files, every ``Report`` in the document."""

from __future__ import annotations

from pywats.converters.base import ConversionContext, Source
from pywats.report import wsxf
from pywats.report.model import Report


class WsxfConverter:
    """Reads WSXF into the report model (no DTDs, no entities, nothing external)."""

    name = "wsxf"
    version = "1.0"
    patterns = ("*.xml",)

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """One report per ``Report`` element."""
        return wsxf.parse(source.data)
