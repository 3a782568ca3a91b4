"""The ``wsxf`` converter: WATS Standard XML files, every ``Report`` in the document."""

from __future__ import annotations

import re

from pywats.converters.base import ConversionContext, Source
from pywats.converters.sniffing import head_text, xml_root
from pywats.report import wsxf
from pywats.report.model import Report


class WsxfConverter:
    """Reads WSXF into the report model (no DTDs, no entities, nothing external)."""

    name = "wsxf"
    version = "1.0"
    patterns = ("*.xml",)

    @staticmethod
    def sniff(head: bytes, name: str) -> str | None:
        """Root ``Reports`` in the WSXF (or older WRML) namespace.

        WSXF without a namespace is read too, but the classic TestStand XML report also
        has a bare ``<Reports>`` root: such a file is claimed only when its first
        ``Report`` has WSXF's lower-case ``type`` attribute (TestStand writes ``Type``).
        """
        root = xml_root(head)
        if root is None or root.local != "Reports":
            return None
        if root.namespace in (wsxf.WSXF_NAMESPACE, wsxf.WRML_NAMESPACE):
            return root.describe()
        first = _REPORT_TAG.search(head_text(head))
        if root.namespace or first is None or not _TYPE_ATTRIBUTE.search(first.group()):
            return None
        return "root element Reports (no namespace) holding <Report type=...> as WSXF writes it"

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """One report per ``Report`` element."""
        return wsxf.parse(source.data)


_REPORT_TAG = re.compile(r"<Report\s[^>]*")
_TYPE_ATTRIBUTE = re.compile(r"\stype\s*=")
