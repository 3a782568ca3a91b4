"""The ``wsjf`` converter: WATS Standard JSON files, one report or a list of reports."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pywats.converters.base import ConversionContext, Source
from pywats.converters.helpers import ReportIds
from pywats.converters.sniffing import head_text
from pywats.errors import FieldError, MalformedInputError, ReportValidationError
from pywats.report import wsjf
from pywats.report.model import Report
from pywats.report.validate import validate


class WsjfConverter:
    """Passes WSJF through: parse, check every rule, keep every byte of meaning.

    Only what is missing is added: an ``id`` when the document has none (or null), derived
    from the file's content and the report's position in it (:class:`ReportIds`),
    and the station's ``machineName``/``location``/``purpose`` when absent, so a tester
    may write a WSJF file without knowing the station it runs on.
    """

    name = "wsjf"
    version = "1.1"
    patterns = ("*.json",)

    @staticmethod
    def sniff(head: bytes, name: str) -> str | None:
        """A JSON object (or an array of them) whose keys include WSJF's report keys."""
        text = head_text(head).lstrip()
        if not text.startswith(("{", "[")) or not _JSON_START.match(text):
            return None
        keys: dict[str, None] = {}
        for match in _WSJF_KEY.finditer(text):
            keys[match.group(1)] = None
            if len(keys) == 4:
                break  # enough to tell, and a big step tree is not searched through
        if len(keys) < 2:
            return None  # one key such as "sn" is in many JSON files; two of these are WSJF
        return f"a JSON object with WSJF keys ({', '.join(keys)})"

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """One report per JSON object; a top-level array gives one per element."""
        return self.convert_json(source.data, context, ReportIds(source.data, source.companions))

    def convert_json(
        self,
        data: bytes,
        context: ConversionContext,
        ids: Callable[[int], str],
        first: int = 0,
    ) -> list[Report]:
        """:meth:`convert` for JSON ``data``; a report without an id gets ``ids(first + i)``,
        ``i`` its position in the document (0 for a lone object).

        For a converter that hands on WSJF made from another file (the process converter),
        so the ids are derived from that file, not from the JSON text.
        """
        try:
            document = wsjf.decode(data)
        except ValueError as exc:
            # json raises plain ValueError for an integer with more than 4300 digits.
            raise MalformedInputError(f"not valid JSON: {exc}") from exc
        if not isinstance(document, list):
            return [wsjf.loads_obj(_with_defaults(document, context, ids, first))]
        if not document:
            raise ReportValidationError([FieldError("", "the array holds no report")])
        reports = []
        for index, item in enumerate(document):
            try:
                made = wsjf.structure(_with_defaults(item, context, ids, first + index))
                reports.append(validate(made))
            except ReportValidationError as exc:
                raise ReportValidationError(
                    [FieldError(f"[{index}].{e.path}".rstrip("."), e.message) for e in exc.errors]
                ) from exc
        return reports


# An object, or an array whose first element is an object.
_JSON_START = re.compile(r"\[?\s*\{\s*(\"|\})")
# A report's own keys; steps have "name", "status" ..., which say nothing.
_WSJF_KEY = re.compile(r'"(pn|sn|rev|processCode|startUTC|machineName|uut|uur|root)"\s*:')


def _with_defaults(
    document: Any, context: ConversionContext, ids: Callable[[int], str], index: int
) -> Any:
    if not isinstance(document, dict):
        return document  # structure() reports the wrong type with its path
    station = context.station
    defaults: dict[str, Callable[[], str]] = {
        "id": lambda: ids(index),
        "machineName": lambda: station.machine_name,
        "location": lambda: station.location,
        "purpose": lambda: station.purpose,
    }
    missing = {key: make() for key, make in defaults.items() if document.get(key) is None}
    return {**document, **missing} if missing else document
