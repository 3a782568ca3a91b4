"""`pywats convert` as a user runs it: a real subprocess, stdout JSON, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


def pywats(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pywats.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_convert_wsjf_prints_the_report() -> None:
    result = pywats("convert", str(DATA / "uut-wsjf-export.json"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads((DATA / "uut-wsjf-export.json").read_text())


def test_convert_wsxf_prints_wsjf() -> None:
    result = pywats("convert", str(DATA / "uut-wsxf-export.xml"))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["id"] == "33a2d408-3fc8-480b-b554-6866c77fd91c"
    assert doc["type"] == "T"
    assert doc["root"]["steps"][0]["name"] == "Numeric tests"


def test_convert_with_explicit_converter(tmp_path: Path) -> None:
    target = tmp_path / "report.dat"
    target.write_bytes((DATA / "uur_example.json").read_bytes())
    result = pywats("convert", str(target), "--converter", "wsjf")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["type"] == "R"


def test_validation_error_names_converter_and_field_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    doc = json.loads((DATA / "uut-wsjf-export.json").read_text())
    doc["root"]["steps"][0]["steps"][3]["numericMeas"][0]["compOp"] = "GTX"
    bad.write_text(json.dumps(doc))
    result = pywats("convert", str(bad))
    assert_one_line_error(
        result,
        "converter 'wsjf'",
        "root.steps[0].steps[3].numericMeas[0].compOp: 'GTX' is not a comparison operator",
        str(bad),
    )


@pytest.mark.parametrize(
    ("name", "content", "fragments"),
    [
        ("broken.json", b'{"id": ', ("converter 'wsjf'", "not valid JSON", "line 1")),
        ("empty.json", b"", ("converter 'wsjf'", "not valid JSON")),
        ("list.json", b"[]", ("converter 'wsjf'", "holds no report")),
        ("broken.xml", b"<Reports><Report>", ("converter 'wsxf'", "not valid XML")),
        ("binary.xml", bytes(range(256)), ("converter 'wsxf'",)),
    ],
)
def test_unreadable_files_exit_1_with_one_line(
    tmp_path: Path, name: str, content: bytes, fragments: tuple[str, ...]
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert_one_line_error(pywats("convert", str(path)), *fragments)


def test_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(pywats("convert", str(tmp_path / "nope.json")), "cannot read")


def test_unknown_extension_says_how_to_choose(tmp_path: Path) -> None:
    path = tmp_path / "result.dat"
    path.write_text("hello")
    assert_one_line_error(pywats("convert", str(path)), "no converter matches", "--converter")


def test_unknown_converter_lists_the_known_ones() -> None:
    result = pywats("convert", str(DATA / "uur_example.json"), "--converter", "nope")
    assert_one_line_error(result, "unknown converter 'nope'", "wsjf", "wsxf")
