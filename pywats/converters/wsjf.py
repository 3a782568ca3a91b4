"""The ``wsjf`` converter: WATS Standard JSON files, one report or a list of reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pywats.converters.base import ConversionContext, Source
from pywats.converters.helpers import new_report_id
from pywats.errors import FieldError, MalformedInputError, ReportValidationError
from pywats.report import wsjf
from pywats.report.model import Report
from pywats.report.validate import validate


class WsjfConverter:
    """Passes WSJF through: parse, check every rule, keep every byte of meaning.

    Only what is missing is added: a fresh ``id`` when the document has none (or null),
    and the station's ``machineName``/``location``/``purpose`` when absent, so a tester
    may write a WSJF file without knowing the station it runs on.
    """

    name = "wsjf"
    version = "1.1"
    patterns = ("*.json",)

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """One report per JSON object; a top-level array gives one per element."""
        try:
            document = wsjf.decode(source.data)
        except ValueError as exc:
            # json raises plain ValueError for an integer with more than 4300 digits.
            raise MalformedInputError(f"not valid JSON: {exc}") from exc
        if not isinstance(document, list):
            return [wsjf.loads_obj(_with_defaults(document, context))]
        if not document:
            raise ReportValidationError([FieldError("", "the array holds no report")])
        reports = []
        for index, item in enumerate(document):
            try:
                reports.append(validate(wsjf.structure(_with_defaults(item, context))))
            except ReportValidationError as exc:
                raise ReportValidationError(
                    [FieldError(f"[{index}].{e.path}".rstrip("."), e.message) for e in exc.errors]
                ) from exc
        return reports


def _with_defaults(document: Any, context: ConversionContext) -> Any:
    if not isinstance(document, dict):
        return document  # structure() reports the wrong type with its path
    station = context.station
    defaults: dict[str, Callable[[], str]] = {
        "id": new_report_id,
        "machineName": lambda: station.machine_name,
        "location": lambda: station.location,
        "purpose": lambda: station.purpose,
    }
    missing = {key: make() for key, make in defaults.items() if document.get(key) is None}
    return {**document, **missing} if missing else document
