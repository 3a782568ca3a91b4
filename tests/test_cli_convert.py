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


# --- Choosing by content, and --explain --------------------------------------------------

WSTF = (
    "--Header-Start--\nSerialNumber\tSN-CLI\nPartNumber\tPCBA-100\nRevision\tA\n"
    "StartDateTime\t2026-02-01T09:15:00+01:00\n--Step-Data-Start--\n"
    "NumericLimitTest\tVCC\t\t5.02\t4.9\t5.1\tGELE\tV\n--Step-Data-End--\n"
    "UUTStatus\tPassed\n--UUT-End--\n"
)


def _one_per_format() -> list[tuple[str, Path]]:
    """A real file of every format in tests/data (the first of its folder)."""
    out = [("wsjf", DATA / "uut-wsjf-export.json"), ("wsxf", DATA / "uut-wsxf-export.xml")]
    equipment = DATA / "equipment"
    if equipment.is_dir():
        for folder in sorted(p for p in equipment.iterdir() if p.is_dir()):
            files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != "README.md")
            if files:
                out.append((folder.name, files[0]))
    return out


@pytest.mark.parametrize(("expected", "path"), _one_per_format(), ids=lambda v: str(v)[-40:])
def test_explain_names_the_converter_of_every_format(expected: str, path: Path) -> None:
    from pywats.converters import discover

    if expected not in discover():
        pytest.skip(f"converter {expected!r} does not exist yet")
    result = pywats("convert", "--explain", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    first, *rest = result.stdout.splitlines()
    assert first.startswith(f"{path}: converter {expected!r} (")
    assert rest[0] == "candidates:"
    chosen = [line for line in rest if line.endswith("<- chosen")]
    assert len(chosen) == 1
    assert chosen[0].split()[0] == expected
    # Every installed converter is listed with its answer.
    assert {line.split()[0] for line in rest[1:]} >= {"wsjf", "wsxf", "wstf", "csv"}


def test_explain_says_why_for_each_candidate(tmp_path: Path) -> None:
    path = tmp_path / "export.dat"  # an extension no converter names
    path.write_bytes((DATA / "uut-wsxf-export.xml").read_bytes())
    result = pywats("convert", "--explain", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"{path}: converter 'wsxf' (sniff): root element Reports in "
        "http://wats.virinco.com/schemas/WATS/Report/wsxf"
    )
    by_name = {line.split()[0]: line for line in lines[2:]}
    assert by_name["wsxf"].split(None, 1)[1] == (
        "no pattern matches; sniff: root element Reports in "
        "http://wats.virinco.com/schemas/WATS/Report/wsxf  <- chosen"
    )
    assert by_name["wsjf"].split(None, 1)[1] == "no pattern matches; sniff: no"
    assert "no sniff; the fallback for '*.csv', '*.txt'" in by_name["csv"]
    assert result.stderr == ""


def test_explain_exits_1_when_no_converter_takes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "result.dat"
    path.write_text("hello")
    result = pywats("convert", "--explain", str(path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        f"{path}: no converter takes this file: no converter matches 'result.dat' by pattern"
    )
    assert ", and none of wsjf, wsxf, wstf" in lines[0]
    assert lines[0].endswith("recognises its content")
    assert lines[1] == "candidates:"
    # Nothing names .dat; a catch-all (the i3070 converter's "*") is no evidence.
    assert all(
        "no pattern matches" in line or "catch-all pattern '*' matches" in line
        for line in lines[2:]
    )


def test_explain_with_an_override(tmp_path: Path) -> None:
    result = pywats("convert", "--explain", "--converter", "wstf", str(DATA / "uur_example.json"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].endswith(": converter 'wstf' (override): --converter wstf")


def test_an_unknown_extension_with_recognisable_content_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "export.dat"
    path.write_bytes((DATA / "uut-wsjf-export.json").read_bytes())
    result = pywats("convert", str(path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads((DATA / "uut-wsjf-export.json").read_text())


def test_a_name_without_extension_is_converted_by_content(tmp_path: Path) -> None:
    path = tmp_path / "SN-CLI"
    path.write_text(WSTF)
    result = pywats("convert", str(path))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["sn"], doc["pn"], doc["result"]) == ("SN-CLI", "PCBA-100", "P")


def test_the_override_wins_over_content(tmp_path: Path) -> None:
    path = tmp_path / "SN-CLI"
    path.write_text(WSTF)
    assert_one_line_error(
        pywats("convert", str(path), "--converter", "wsjf"), "converter 'wsjf'", "not valid JSON"
    )


def test_a_file_nobody_takes_says_how_to_find_out(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(bytes(range(256)))
    assert_one_line_error(
        pywats("convert", str(path)),
        "no converter takes this file",
        "no converter matches 'blob'",
        "--converter",
        "--explain",
    )


KLIPPEL = DATA / "equipment" / "klippel" / "DUT xyz115 2020-05-14 10-01-37-5 UTC+0200.txt"


def test_convert_reads_the_klippel_headers_result_folder_with_it() -> None:
    result = pywats("convert", str(KLIPPEL))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["sn"], report["result"]) == ("xyz115", "F")
    names = {step["name"] for step in report["root"]["steps"]}
    assert {"Impedance", "Sound Pressure"} <= names  # from the files in the folder


def test_convert_of_a_klippel_header_without_its_folder_says_so(tmp_path: Path) -> None:
    alone = tmp_path / KLIPPEL.name
    alone.write_bytes(KLIPPEL.read_bytes())
    result = pywats("convert", str(alone))
    assert_one_line_error(result, str(alone))
    assert "folder" in result.stderr or "companion" in result.stderr
