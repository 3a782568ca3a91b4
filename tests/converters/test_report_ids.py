"""Conversion is idempotent: a report whose format carries no id gets one from the file.

Converting the same file twice (in this process or another) must give the same ids, so
the server overwrites instead of storing the unit twice; a file that differs in one byte
is another file and must give other ids; the reports of one file have distinct ids.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pywats.converters import BUILTINS, ConversionContext, Source, discover, run_converter
from pywats.converters.helpers import (
    REPORT_ID_NAMESPACE,
    ReportIds,
    content_digest,
    derived_report_id,
)
from pywats.report.validate import is_guid

DATA = Path(__file__).resolve().parents[1] / "data"
EQUIPMENT = DATA / "equipment"

CSV_ROWS = (
    b"Serial,Date,VCC\nSN-1,2026-02-01T09:15:00+01:00,5.0\nSN-2,2026-02-01T09:16:00+01:00,5.1\n"
)
CSV_ARGUMENTS: dict[str, Any] = {
    "columns": {"sn": "Serial", "start": "Date"},
    "constants": {"pn": "PCBA-100", "rev": "A"},
    "steps": [{"valueColumn": "VCC", "low": 4.9, "high": 5.2, "unit": "V"}],
}
WSTF_UUT = (
    "--Header-Start--\nSerialNumber\t{sn}\nPartNumber\tPCBA-100\nRevision\tA\n"
    "--Step-Data-Start--\nNumericLimitTest\tVCC\t\t5.0\t4.9\t5.1\tGELE\tV\n"
    "--Step-Data-End--\n--UUT-End--\n"
)


@attrs.frozen
class Sample:
    """One input file of a converter, as the pipeline would hand it over."""

    converter: str
    path: Path
    data: bytes
    companions: Mapping[str, bytes] = attrs.field(factory=dict)
    arguments: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def label(self) -> str:
        return f"{self.converter}:{self.path.name}"


def _without_ids(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "id"}


def _samples() -> list[Sample]:
    export = json.loads((DATA / "uut-wsjf-export.json").read_bytes())
    out = [
        Sample("csv", Path("rows.csv"), CSV_ROWS, arguments=CSV_ARGUMENTS),
        Sample(
            "wstf",
            Path("two.txt"),
            (WSTF_UUT.format(sn="SN-1") + WSTF_UUT.format(sn="SN-2")).encode(),
        ),
        Sample("wsjf", Path("one.json"), json.dumps(_without_ids(export)).encode()),
        Sample(
            "wsjf",
            Path("two.json"),
            json.dumps([_without_ids(export), {**_without_ids(export), "sn": "X"}]).encode(),
        ),
    ]
    for folder in sorted(EQUIPMENT.iterdir()):
        if folder.name not in BUILTINS or folder.name == "csv":
            continue  # csv files need a column mapping: the inline rows above cover csv
        companion_dirs = {p for p in folder.iterdir() if p.is_dir()}
        for path in sorted(folder.iterdir()):
            if path in companion_dirs or path.name == "README.md":
                continue
            companions: dict[str, bytes] = {}
            folder_of = path.with_suffix("")
            if folder_of in companion_dirs:
                for member in sorted(folder_of.rglob("*")):
                    if member.is_file():
                        companions[member.relative_to(folder).as_posix()] = member.read_bytes()
            out.append(Sample(folder.name, path, path.read_bytes(), companions))
    return out


SAMPLES = _samples()
CONVERTERS = discover()


def _ids(
    sample: Sample, data: bytes | None = None, companions: Mapping[str, bytes] | None = None
) -> list[str]:
    converter = CONVERTERS[sample.converter]()
    source = Source(
        sample.path,
        sample.data if data is None else data,
        sample.companions if companions is None else companions,
    )
    context = ConversionContext(arguments=dict(sample.arguments))
    return [r.id for r in run_converter(converter, source, context)]


def _changed(sample: Sample) -> tuple[bytes, Mapping[str, bytes]]:
    """The sample with one byte more: in a companion when it has any, else at the end of
    the file (every format here ignores a trailing newline)."""
    if sample.companions:
        name = sorted(sample.companions)[0]
        return sample.data, {**sample.companions, name: sample.companions[name] + b"\n"}
    return sample.data + b"\n", sample.companions


def test_every_converter_with_test_data_is_covered() -> None:
    assert {s.converter for s in SAMPLES} >= set(BUILTINS) - {"wsxf"}


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.label)
def test_same_file_same_ids_other_file_other_ids(sample: Sample) -> None:
    first = _ids(sample)
    assert all(is_guid(i) and i == i.lower() for i in first)
    assert _ids(sample) == first
    assert len(set(first)) == len(first), "two reports of one file share an id"
    data, companions = _changed(sample)
    derived = [i for i in first if i not in _carried(sample)]
    if derived:
        assert not set(derived) & set(_ids(sample, data, companions))


def _carried(sample: Sample) -> set[str]:
    """Ids the file itself holds (formats that carry an id keep it)."""
    text = sample.data.decode("latin-1").lower()
    return {i for i in _ids(sample) if i in text}


def test_formats_that_carry_an_id_keep_it() -> None:
    export = (DATA / "uut-wsjf-export.json").read_bytes()
    (report,) = run_converter(
        CONVERTERS["wsjf"](), Source(Path("a.json"), export), ConversionContext()
    )
    assert report.id == json.loads(export)["id"]
    xml = (DATA / "uut-wsxf-export.xml").read_bytes()
    (twin,) = run_converter(CONVERTERS["wsxf"](), Source(Path("a.xml"), xml), ConversionContext())
    assert twin.id == report.id


def test_ids_are_the_same_in_another_process() -> None:
    sample = next(s for s in SAMPLES if s.converter == "spea")
    code = (
        "import sys; from pathlib import Path\n"
        "from pywats.converters import ConversionContext, Source, discover, run_converter\n"
        f"c = discover()[{sample.converter!r}]()\n"
        f"src = Source(Path({str(sample.path)!r}), Path({str(sample.path)!r}).read_bytes())\n"
        "print(' '.join(r.id for r in run_converter(c, src, ConversionContext())))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == _ids(sample)


def test_the_id_rule() -> None:
    digest = content_digest(b"data", {"b": b"2", "a": b"1"})
    # Companions count in name order, whatever order they were read in.
    assert digest == content_digest(b"data", {"a": b"1", "b": b"2"})
    assert digest != content_digest(b"data", {"a": b"12", "b": b""})
    assert digest != content_digest(b"data")
    ids = ReportIds(b"data", {"a": b"1", "b": b"2"})
    assert ids(0) == derived_report_id(digest, 0) != ids(1)
    # A fixed namespace: this is what a station sent yesterday, and must send tomorrow.
    assert derived_report_id(bytes(32), 0) == "1115675e-1956-534a-839a-b3164bfa0399"


@given(digest=st.binary(min_size=32, max_size=32), index=st.integers(0, 10**9))
def test_a_derived_id_is_the_uuid5_of_the_digest_and_the_index(digest: bytes, index: int) -> None:
    # derived_report_id works uuid5 out itself (faster); it must stay uuid5 to the bit.
    expected = uuid.uuid5(REPORT_ID_NAMESPACE, f"{digest.hex()}/{index}")
    assert derived_report_id(digest, index) == str(expected)
