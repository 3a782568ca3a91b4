"""Finding and loading converters: built-ins, entry points, module:Class specs, arguments."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import attrs
import pytest

import pywats.converters.registry as registry
from pywats.converters import (
    ConversionContext,
    LoadedConverter,
    Source,
    StationDefaults,
    builtin_converters,
    discover,
    load_converter,
    run_converter,
)
from pywats.converters.csv import (
    CsvArguments,
    CsvConverter,
    HeaderColumns,
    HeaderConstants,
    NumericStep,
)
from pywats.converters.registry import BUILTINS
from pywats.converters.wsjf import WsjfConverter
from pywats.converters.wstf import WstfArguments, WstfConverter
from pywats.errors import ConfigError, ConversionError
from pywats.report import Report, wsjf
from tests.report import minimal

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "contrib" / "example-converter"

PLUGIN = '''
from __future__ import annotations

import attrs

from pywats.converters import ArgumentError
from pywats.report import wsjf


@attrs.frozen
class EchoArguments:
    pn: str = "ECHO"
    repeat: int = 1

    def __attrs_post_init__(self) -> None:
        if self.repeat < 1:
            raise ArgumentError("repeat", "must be 1 or more")


class Echo:
    """Makes `repeat` copies of the report in a WSJF file, with the pn from the arguments."""

    name = "echo"
    version = "0.1"
    patterns = ("*.echo",)
    Arguments = EchoArguments

    def convert(self, source, context):
        args = context.arguments_as(EchoArguments)
        report = wsjf.loads(source.data)
        return [attrs.evolve(report, pn=args.pn) for _ in range(args.repeat)]


class Raw:
    name = "raw"
    version = "0.1"
    patterns = ("*.raw",)

    def convert(self, source, context):
        raise RuntimeError(dict(context.arguments))


class NoPatterns:
    name = "nopat"
    version = "0.1"
    patterns = "*.txt"

    def convert(self, source, context):
        return []


class Grumpy:
    name = "grumpy"
    version = "0.1"
    patterns = ("*.g",)

    def __init__(self):
        raise OSError("no licence dongle")

    def convert(self, source, context):
        return []


class FakeWsjf:
    name = "wsjf"
    version = "9"
    patterns = ("*.json",)

    def convert(self, source, context):
        return []


not_a_class = 42
'''


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module ``fake_plugins`` on sys.path; returns its name."""
    (tmp_path / "fake_plugins.py").write_text(PLUGIN)
    (tmp_path / "broken_plugin.py").write_text("raise ImportError('needs libfoo')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fake_plugins", raising=False)
    return "fake_plugins"


def use_entry_points(monkeypatch: pytest.MonkeyPatch, **eps: str) -> None:
    points = [
        importlib.metadata.EntryPoint(name, value, registry.ENTRY_POINT_GROUP)
        for name, value in eps.items()
    ]
    monkeypatch.setattr(registry, "_entry_points", lambda: points)


def report_bytes() -> bytes:
    return json.dumps(minimal.uut()).encode()


def test_builtins_are_known_without_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    use_entry_points(monkeypatch)
    found = discover()
    assert list(found) == list(BUILTINS)
    assert list(found)[:4] == ["wsjf", "wsxf", "wstf", "csv"]
    assert {"atml", "teststand-xml", "i3070", "spea", "xjtag", "klippel"} <= set(found)
    assert found["wstf"] is WstfConverter
    assert found["csv"] is CsvConverter
    assert set(builtin_converters()) == set(found)
    assert isinstance(builtin_converters()["wsjf"], WsjfConverter)


def test_entry_points_are_discovered(plugins: str, monkeypatch: pytest.MonkeyPatch) -> None:
    use_entry_points(
        monkeypatch, echo=f"{plugins}:Echo", wsjf="pywats.converters.wsjf:WsjfConverter"
    )
    found = discover()
    assert list(found) == [*BUILTINS, "echo"]  # built-ins first
    assert found["echo"].__name__ == "Echo"
    assert found["wsjf"] is WsjfConverter  # pywats' own entry point: the same class, merged


@pytest.mark.parametrize(
    ("eps", "key", "fragment"),
    [
        ({"broken": "broken_plugin:X"}, "entry-points.pywats.converters.broken", "needs libfoo"),
        ({"echo": "fake_plugins:Missing"}, "entry-points.pywats.converters.echo", "Missing"),
        ({"raw2": "fake_plugins:Raw"}, "entry-points.pywats.converters.raw2", "names must agree"),
        (
            {"wsjf": "fake_plugins:FakeWsjf"},
            "entry-points.pywats.converters.wsjf",
            "two converters",
        ),
        ({"nopat": "fake_plugins:NoPatterns"}, "entry-points.pywats.converters.nopat", "patterns"),
        ({"x": "fake_plugins:not_a_class"}, "entry-points.pywats.converters.x", "not a class"),
    ],
)
def test_bad_entry_points_are_config_errors(
    plugins: str, monkeypatch: pytest.MonkeyPatch, eps: dict[str, str], key: str, fragment: str
) -> None:
    use_entry_points(monkeypatch, **eps)
    with pytest.raises(ConfigError) as info:
        discover()
    assert info.value.key == key
    assert fragment in info.value.reason
    assert "entry point" in info.value.reason or "two converters" in info.value.reason


def test_load_by_name_structures_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    use_entry_points(monkeypatch)
    loaded = load_converter("wstf", {"operationTypeCode": 20, "encoding": "cp1252"})
    assert isinstance(loaded, LoadedConverter)
    assert loaded.name == "wstf"
    assert loaded.arguments == WstfArguments(operationTypeCode=20, encoding="cp1252")
    assert loaded.patterns == ("*.txt",)
    assert loaded.version == WstfConverter.version
    assert loaded.context().arguments is loaded.arguments


@pytest.mark.parametrize(
    ("arguments", "key"),
    [
        ({"operationTypecode": 20}, "converters.wstf.arguments.operationTypecode"),
        ({"operationTypeCode": "20"}, "converters.wstf.arguments.operationTypeCode"),
        ({"operationTypeCode": 20.0}, "converters.wstf.arguments.operationTypeCode"),
        ({"operationTypeCode": True}, "converters.wstf.arguments.operationTypeCode"),
        ({"encoding": "latin-9000"}, "converters.wstf.arguments.encoding"),
        ({"operator": ""}, "converters.wstf.arguments.operator"),
        ({"sequenceName": 5}, "converters.wstf.arguments.sequenceName"),
    ],
)
def test_bad_wstf_arguments(arguments: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_converter("wstf", arguments)
    assert info.value.key == key


def test_load_by_module_spec(plugins: str) -> None:
    loaded = load_converter(f"{plugins}:Echo", {"pn": "X", "repeat": 2})
    assert loaded.name == "echo"
    reports = loaded.convert(Source(Path("a.echo"), report_bytes()))
    assert [r.pn for r in reports] == ["X", "X"]
    with pytest.raises(ConfigError) as info:
        load_converter(f"{plugins}:Echo", {"repeat": 0})
    assert info.value.key == "converters.echo.arguments.repeat"
    assert info.value.reason == "must be 1 or more"
    with pytest.raises(ConfigError) as info:
        load_converter(f"{plugins}:Echo", {"repeat": 0}, key="converters[3]")
    assert info.value.key == "converters[3].arguments.repeat"


def test_a_converter_without_arguments_class_gets_the_raw_table(plugins: str) -> None:
    loaded = load_converter(f"{plugins}:Raw", {"anything": [1, 2]})
    assert loaded.arguments == {"anything": [1, 2]}
    with pytest.raises(ConversionError, match=r"converter crashed: RuntimeError.*anything"):
        loaded.convert(Source(Path("a.raw"), b""))


@pytest.mark.parametrize(
    ("spec", "key", "fragment"),
    [
        (
            "nope",
            "converters.nope",
            "unknown converter 'nope' (known: atml, csv, i3070, klippel, spea",
        ),
        ("no_such_module:X", '"converters"."no_such_module:X"', "cannot import"),
        ("fake_plugins:Nothing", '"converters"."fake_plugins:Nothing"', "has no 'Nothing'"),
        ("fake_plugins:Grumpy", "converters.grumpy", "no licence dongle"),
        (":X", '"converters".":X"', "not a 'package.module:Class'"),
    ],
)
def test_load_errors(
    plugins: str, monkeypatch: pytest.MonkeyPatch, spec: str, key: str, fragment: str
) -> None:
    use_entry_points(monkeypatch)
    with pytest.raises(ConfigError) as info:
        load_converter(spec, {})
    assert fragment in info.value.reason
    assert info.value.key.replace('"', "") == key.replace('"', "")


def test_station_defaults_and_derived_ids_for_wsjf() -> None:
    document = minimal.uut()
    for key in ("id", "machineName", "location", "purpose"):
        del document[key]
    station = StationDefaults(machine_name="ST-9", location="Hall 2", purpose="Debug")
    loaded = load_converter("wsjf", {}, available=discover())
    source = Source(Path("a.json"), json.dumps(document).encode())
    first, second = (loaded.convert(source, station)[0] for _ in range(2))
    assert (first.machine_name, first.location, first.purpose) == ("ST-9", "Hall 2", "Debug")
    # The id comes from the file's content: the same file twice is the same report.
    assert first.id == second.id
    other = Source(Path("a.json"), json.dumps(document).encode() + b" ")
    assert loaded.convert(other, station)[0].id != first.id
    # present values are kept as they are
    kept = loaded.convert(Source(Path("a.json"), report_bytes()), station)[0]
    assert kept.machine_name == minimal.uut()["machineName"]
    assert kept.id == minimal.uut()["id"]


def test_argument_errors_at_convert_time_are_conversion_errors() -> None:
    context = ConversionContext(arguments={"encoding": "nope"})
    with pytest.raises(ConversionError) as info:
        run_converter(WstfConverter(), Source(Path("a.txt"), b""), context)
    assert info.value.path == "arguments.encoding"
    assert "crashed" not in str(info.value)


@attrs.frozen
class _Nested:
    values: dict[str, tuple[int, ...]] = attrs.field(factory=dict)


def test_nested_containers_are_strict() -> None:
    from pywats.converters import structure_arguments

    assert structure_arguments(_Nested, {"values": {"a": [1, 2]}}, key="k").values == {"a": (1, 2)}
    with pytest.raises(ConfigError) as info:
        structure_arguments(_Nested, {"values": {"a": [1, "2"]}}, key="k")
    assert info.value.key == "k.values.a[1]"


# --- A plugin distribution installed for real, run through the CLI --------------------------


def _can_build_wheels() -> bool:
    # setuptools before 70.1 builds wheels only with the `wheel` package installed, and
    # --no-build-isolation means the venv's own setuptools does the build.
    version = importlib.metadata.version("setuptools")
    major, minor = (int(p) for p in version.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not _can_build_wheels():
        pytest.skip("building the example needs `wheel` or setuptools>=70.1 in the venv")
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    # pip builds in the source tree (build/ and *.egg-info); build from a copy.
    source = build / "example-converter"
    subprocess.run(["cp", "-r", str(EXAMPLE), str(source)], check=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return target


def pywats_cli(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run(
        [sys.executable, "-m", "pywats.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=cwd,
    )


def test_installed_plugin_converts_through_the_cli(installed_example: Path, tmp_path: Path) -> None:
    sample = tmp_path / "sample.acme"
    sample.write_bytes((EXAMPLE / "sample.acme").read_bytes())
    result = pywats_cli(installed_example, "convert", str(sample), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    report: Report = wsjf.loads_obj(document)
    assert (report.pn, report.sn, report.machine_name) == ("PCBA-100", "SN-0001", "ICT-200-3")
    assert [s.name for s in report.steps()[1:]] == ["VCC", "IDLE_CURRENT", "R12"]
    assert document["root"]["steps"][1]["numericMeas"][0] == {
        "compOp": "LE",
        "status": "P",
        "unit": "A",
        "value": 0.31,
        "lowLimit": 0.5,
    }
    # chosen by name, whatever the file is called
    renamed = tmp_path / "result.log"
    renamed.write_bytes(sample.read_bytes())
    by_name = pywats_cli(
        installed_example, "convert", str(renamed), "--converter", "acme", cwd=tmp_path
    )
    assert by_name.returncode == 0, by_name.stderr
    # and its errors come out as one line naming the converter and the line
    bad = tmp_path / "bad.acme"
    bad.write_text("SN=1\nPN=P\nREV=A\nMEAS VCC x 1 2\n")
    failed = pywats_cli(installed_example, "convert", str(bad), cwd=tmp_path)
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1
    assert "converter 'acme': line 4: 'x' is not a number" in failed.stderr


def test_a_broken_installed_plugin_is_one_clear_line(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist = site / "broken_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [pywats.converters]
            broken = broken_plugin_mod:Converter
            """
        )
    )
    (site / "broken_plugin_mod.py").write_text("import no_such_dependency\n")
    sample = tmp_path / "a.json"
    sample.write_bytes(report_bytes())
    result = pywats_cli(site, "convert", str(sample), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "entry-points.pywats.converters.broken" in result.stderr
    assert "broken-plugin" in result.stderr
    assert "no_such_dependency" in result.stderr


# --- docs/converters.md ---------------------------------------------------------------------

DOC = ROOT / "docs" / "converters.md"


def _doc_blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block in the doc."""
    return re.findall(r"^```(\w*)\n(.*?)^```", DOC.read_text(), flags=re.DOTALL | re.MULTILINE)


def test_docs_config_examples_load_and_convert_the_sample_files() -> None:
    blocks = _doc_blocks()
    configs = [
        (i, tomllib.loads(b)["converters"])
        for i, (_, b) in enumerate(blocks)
        if "[[converters]]" in b
    ]
    # Every example entry names a converter that exists, with arguments that load
    # (a `command` entry names a program of the reader's own: not loadable here).
    named = [e for _, entries in configs for e in entries if "command" not in e]
    assert {e["name"] for e in named} >= {"wstf", "csv", "atml", "spea", "xjtag", "klippel"}
    loaded = {id(e): load_converter(e["name"], e.get("arguments", {})) for e in named}
    # Every sample file in the docs converts with the example entry nearest before it.
    samples = [
        (i, b)
        for i, (lang, b) in enumerate(blocks)
        if not lang and b.startswith(("Serial", "--Head"))
    ]
    assert len(samples) >= 4
    for index, sample in samples:
        # The nearest example entry (before or after it) that reads the sample: a
        # shared-folder example may stand between a sample and its own entry.
        near = sorted(
            ((abs(i - index), e) for i, entries in configs for e in entries if id(e) in loaded),
            key=lambda pair: pair[0],
        )
        for _, entry in near:
            try:
                reports = loaded[id(entry)].convert(Source(Path("sample"), sample.encode()))
            except ConversionError:
                continue
            assert reports[0].sn in sample, (entry["name"], sample[:40])
            break
        else:
            raise AssertionError(f"no example entry converts the sample {sample[:40]!r}")


@pytest.mark.parametrize(
    "cls", [WstfArguments, CsvArguments, NumericStep, HeaderColumns, HeaderConstants]
)
def test_docs_name_every_argument(cls: type) -> None:
    text = DOC.read_text()
    missing = [f.name for f in attrs.fields(cls) if f"`{f.name}`" not in text]
    assert missing == []


class _Forgetful:
    """A plugin that skips validate(): its second report has an empty serial number."""

    name = "forgetful"
    version = "1.0"
    patterns = ("*.fgt",)

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        good = wsjf.loads(report_bytes())
        return [good, attrs.evolve(good, id="6f1f3a52-8e0b-4d6e-9a57-2f0d3c9b7e41", sn="")]


def test_run_converter_validates_what_a_plugin_did_not() -> None:
    # The one place every caller (pipeline, `pywats convert`, scripts) gets the WSJF rules.
    with pytest.raises(ConversionError) as info:
        run_converter(_Forgetful(), Source(Path("a.fgt"), b""), ConversionContext())
    assert info.value.reason.startswith("the report breaks a WSJF rule: must be 1 to 100")
    assert info.value.path == "[1].sn"
