"""The ``wsjf`` converter: WATS Standard JSON files, one report or a list of reports."""

from __future__ import annotations

from pywats.converters.base import ConversionContext, Source
from pywats.errors import FieldError, ReportValidationError
from pywats.report import wsjf
from pywats.report.model import Report
from pywats.report.validate import validate


class WsjfConverter:
    """Passes WSJF through: parse, check every rule, keep every byte of meaning."""

    name = "wsjf"
    version = "1.0"
    patterns = ("*.json",)

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """One report per JSON object; a top-level array gives one per element."""
        document = wsjf.decode(source.data)
        if not isinstance(document, list):
            return [wsjf.loads_obj(document)]
        if not document:
            raise ReportValidationError([FieldError("", "the array holds no report")])
        reports = []
        for index, item in enumerate(document):
            try:
                reports.append(validate(wsjf.structure(item)))
            except ReportValidationError as exc:
                raise ReportValidationError(
                    [FieldError(f"[{index}].{e.path}".rstrip("."), e.message) for e in exc.errors]
                ) from exc
        return reports
