"""docs/report-format.md documents every field of the model (it is part of the product)."""

from __future__ import annotations

from pathlib import Path

import attrs

from pywats.report.model import BOOKKEEPING, MODEL_CLASSES, wire_name

DOC = Path(__file__).parent.parent.parent / "docs" / "report-format.md"


def test_every_model_field_is_documented_with_its_wsjf_name() -> None:
    text = DOC.read_text()
    missing = [
        f"{cls.__name__}.{f.name}"
        for cls in MODEL_CLASSES
        for f in attrs.fields(cls)
        if not f.metadata.get(BOOKKEEPING) and f"| `{f.name}` | `{wire_name(f)}` |" not in text
    ]
    assert missing == []
