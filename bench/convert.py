"""Benchmark every converter on real files, and the cost of choosing one. Prints figures.

    .venv/bin/python bench/convert.py [--seconds S] [--format NAME ...] [--python-gc]
                                      [--breakdown]

For each converter: the real files of ``tests/data/equipment/<format>/`` (wsjf and wsxf:
the WATS exports in ``tests/data``; wstf and csv: generated files, as ``tests/data`` has
none they could read without a config; csv in two rows: ``csv`` a tester's ``Key;Value``
block and measurement table, one report per file, and ``csv-rows`` one report per row),
converted over and over on one core (one thread, in this process) for ``--seconds`` in
all (default 2 s, in slices taken in turn with the other formats': the median slice is
shown, and the best), reading nothing from disk while timed, with the garbage collector
set as ``pywats serve`` sets it (:mod:`pywats.collector`; ``--python-gc`` keeps Python's
thresholds). Figures per format:

* files/s, MB/s and thousands of steps/s (every node of the reports' step trees) of
  conversion (target: at least 5 MB/s per format, on the median): what
  :func:`~pywats.converters.run_converter` does for the service, parsing and the one
  check of the WSJF rules, with the converter's arguments structured once as at start-up;
* the sniff cost per file: the format's own ``sniff`` on the file's first 64 KiB, and
  the whole choice ``pywats convert`` makes (every installed converter's pattern and
  sniff, :func:`pywats.converters.sniffing.choose`).

``--breakdown`` adds a second table: how a round's time splits between building the
report objects (every model object of the round's reports built again from its fields,
bottom up, with the keyword arguments a converter passes), the one check of the WSJF rules
(:func:`pywats.report.validate.check`) and the rest (reading the file), and the MB/s a
round would reach if the objects cost nothing, and if the check cost nothing as well: the
most that any change of the report model could give.

A format whose converter module does not exist yet is skipped with a line saying so,
and so is a file that does not convert (with its error). The exit status is 0 even when
a target is missed: a bench prints figures, it does not assert.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from pywats.collector import tune_collector
from pywats.converters import BUILTINS, ConversionContext, Source, run_converter
from pywats.converters.base import Converter, structure_arguments
from pywats.converters.registry import check_converter_class, import_spec
from pywats.converters.sniffing import Candidate, choose
from pywats.defaults import SNIFF_BYTES
from pywats.errors import ConfigError, ConversionError
from pywats.report import Report
from pywats.report.validate import check

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
EQUIPMENT = DATA / "equipment"
TARGET_MB_S = 5.0

#: Every format of issue 13, in the order the table shows them, with its data folder.
FORMATS = (
    "wsjf",
    "wsxf",
    "wstf",
    "csv",
    "atml",
    "teststand-xml",
    "i3070",
    "teradyne-gr228x",
    "teradyne-spectrum",
    "spea",
    "xjtag",
    "klippel",
)

#: The ``csv-rows`` file: a wide table, one report per row.
CSV_ARGUMENTS: dict[str, Any] = {
    "columns": {"sn": "Serial", "start": "Date", "operator": "Operator"},
    "constants": {"pn": "PCBA-100", "rev": "A"},
    "steps": [
        {"valueColumn": "VCC", "lowColumn": "VCC_min", "highColumn": "VCC_max", "unit": "V"},
        {"valueColumn": "Idle", "name": "Idle current", "high": 0.5, "unit": "A"},
    ],
}

#: The ``csv`` file: complete example 1 of docs/converters.md (an FCT tester), its config.
CSV_FCT_ARGUMENTS: dict[str, Any] = {
    "mode": "file",
    "delimiter": ";",
    "decimal": ",",
    "encoding": "latin-1",
    "startFormat": "%Y.%m.%d. %H:%M",
    "timezone": "Europe/Budapest",
    "constants": {"rev": "A", "processCode": 20},
    "keys": {
        "sn": "SerialNumber",
        "pn": "Part Number",
        "machineName": "Machine ID",
        "start": "Start Time",
        "execTime": "Testing time(sec)",
        "result": "Result",
        "errorCode": "Error Code",
        "miscInfos": {"MainSerial": "MainSerial", "Part Type": "Part Type", "MES": "MES"},
    },
    "steps": [
        {
            "valueColumn": "Value",
            "nameColumn": "StepName",
            "lowColumn": "Min",
            "highColumn": "Max",
            "unitColumn": "Unit",
            "statusColumn": "Status",
        }
    ],
}


@attrs.frozen
class Input:
    """One file as the converter is given it (read before timing)."""

    path: Path
    source: Source
    arguments: Mapping[str, Any] = attrs.field(factory=dict)
    #: A row of its own in the table instead of the format's (``csv-rows``), with a note of
    #: its reports/s: files/s says little of a file that holds many reports.
    row: str | None = None

    @property
    def size(self) -> int:
        return len(self.source.data) + sum(len(b) for b in self.source.companions.values())


def _wstf_file(uuts: int = 40, steps: int = 250) -> bytes:
    parts: list[str] = []
    for u in range(uuts):
        parts.append(
            f"--Header-Start--\nSerialNumber\tSN-{u:05d}\nPartNumber\tPCBA-100\nRevision\tA\n"
            "StartDateTime\t2026-02-01T09:15:00+01:00\nOperatorName\tola\n"
            "--Step-Data-Start--\nSequenceCall\tPower\n"
        )
        parts.extend(
            f"NumericLimitTest\tVCC {s}\t\t{5 + s / 1e4:.4f}\t4.9\t5.1\tGELE\tV\n"
            for s in range(steps)
        )
        parts.append("EndSequenceCall\n--Step-Data-End--\nUUTStatus\tPassed\n--UUT-End--\n")
    return "".join(parts).encode()


def _csv_fct_file(rounds: int = 3_000) -> bytes:
    """Complete example 1 of docs/converters.md (Latin-1, CRLF, decimal comma) with its
    eight measurements repeated ``rounds`` times (numbered): one report, about 1 MB."""
    table = (
        ("Tápfeszültség 24V", "23,5", "24,02", "24,5", "V"),
        ("Feszültség 5V", "4,85", "5,01", "5,15", "V"),
        ("Feszültség 3V3", "3,2", "3,31", "3,4", "V"),
        ("Áramfelvétel", "0,1", "0,182", "0,25", "A"),
        ("Szivárgási áram", "", "0,8", "2", "µA"),
        ("Szigetelési ellenállás", "100", "512", "", "MOhm"),
        ("Hõmérséklet NTC1", "15", "23,6", "45", "°C"),
        ("Ventilátor fordulat", "", "2950", "", "rpm"),
    )
    lines = [
        "SerialNumber;HU2411290012",
        "MainSerial;MB-7731-0042",
        "Part Number;40-1187-03",
        "Part Type;Tápegység vezérlõ",
        "Machine ID;FCT-03",
        "MES;OK",
        "Start Time;2024.11.29. 16:18",
        "Testing time(sec);47,3",
        "Result;Passed",
        "Error Code;0",
        "StepName;Min;Value;Max;Unit;Status",
    ]
    lines.extend(
        f"{name} {n};{low};{value};{high};{unit};Passed"
        for n in range(rounds)
        for name, low, value, high, unit in table
    )
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def _csv_file(rows: int = 20_000) -> bytes:
    lines = ["Serial,Date,Operator,VCC,VCC_min,VCC_max,Idle,Result"]
    lines.extend(
        f"SN-{n:06d},2026-02-01T09:15:00+01:00,ola,{5 + n % 7 / 100:.2f},4.9,5.1,0.3,"
        for n in range(rows)
    )
    return ("\n".join(lines) + "\n").encode()


def _companions(converter: Converter, path: Path) -> dict[str, bytes]:
    """The companions' bytes keyed as :class:`Source` documents (relative to the folder of
    ``path``), for a converter that names companions (Klippel)."""
    named: Callable[[Path], Any] | None = getattr(converter, "companions", None)
    if named is None:
        return {}
    out: dict[str, bytes] = {}
    for companion in named(path):
        members = sorted(companion.rglob("*")) if companion.is_dir() else [companion]
        for member in members:
            if member.is_file():
                out[member.relative_to(path.parent).as_posix()] = member.read_bytes()
    return out


def _source(converter: Converter, path: Path, data: bytes) -> Source:
    companions = _companions(converter, path)
    if companions and "companions" in attrs.fields_dict(Source):
        return Source(path, data, companions=companions)
    return Source(path, data)


def inputs(name: str, converter: Converter) -> list[Input]:
    """The files a format is measured on."""
    if name == "wstf":
        return [Input(Path("bench.txt"), Source(Path("bench.txt"), _wstf_file()))]
    if name == "csv":
        fct = Source(Path("bench-fct.csv"), _csv_fct_file())
        rows = Source(Path("bench.csv"), _csv_file())
        return [
            Input(fct.path, fct, CSV_FCT_ARGUMENTS),
            Input(rows.path, rows, CSV_ARGUMENTS, row="csv-rows"),
        ]
    if name == "wsjf":
        paths = sorted(DATA.glob("*.json"))
    elif name == "wsxf":
        paths = sorted(DATA.glob("*.xml"))
    else:
        folder = EQUIPMENT / name
        if not folder.is_dir():
            return []
        # Files inside a companion folder are read with their header file, not alone.
        companion_dirs = {
            p.with_suffix("") for p in folder.glob("*.txt") if p.with_suffix("").is_dir()
        }
        paths = sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and p.name != "README.md" and p not in companion_dirs
        )
    return [Input(p, _source(converter, p, p.read_bytes())) for p in paths]


def _timed(
    run: Callable[[], object], seconds: float, clock: Callable[[], float] = time.perf_counter
) -> tuple[int, float]:
    """Run ``run`` until ``seconds`` have passed on ``clock`` (at least once): (rounds,
    elapsed)."""
    rounds = 0
    start = clock()
    while True:
        run()
        rounds += 1
        elapsed = clock() - start
        if elapsed >= seconds:
            return rounds, elapsed


def _load(name: str) -> type[Converter] | str:
    spec = BUILTINS.get(name)
    if spec is None:
        return "not registered in pywats.converters.registry.BUILTINS yet"
    try:
        return check_converter_class(import_spec(spec, key=name), key=name, origin=spec)
    except ConfigError as exc:
        return f"cannot be loaded yet ({exc})"


SLICES = 5
"""Each format is timed in this many slices, taken in turn with the other formats' (so
that a slow minute on a shared machine hits every format alike); the table shows the
median slice (the target is judged on it) and the best."""


@attrs.define
class Row:
    """One row of the table: a format's inputs (or the inputs that have a row of their
    own), prepared to be converted again and again, and what the slices measured."""

    name: str
    cls: type[Converter]
    converter: Converter
    good: list[Input]
    contexts: list[ConversionContext]
    reports: int
    #: Steps per round, every node of every report's tree (the root included).
    steps: int
    note: bool
    slices: list[tuple[int, float]] = attrs.field(factory=list)  # (rounds, seconds)

    @property
    def total(self) -> int:
        """Bytes converted per round."""
        return sum(item.size for item in self.good)

    def convert_all(self) -> None:
        """One round: every input once, as the service converts a file."""
        for item, context in zip(self.good, self.contexts, strict=True):
            run_converter(self.converter, item.source, context)


def prepare(name: str, cls: type[Converter]) -> list[Row | str]:
    """The rows of a format (a line instead of a row when no file of it converts)."""
    converter = cls()
    groups: dict[str, list[Input]] = {}
    for item in inputs(name, converter):
        groups.setdefault(item.row or name, []).append(item)
    rows: list[Row | str] = []
    for row, files in (groups or {name: []}).items():
        good: list[Input] = []
        reports = steps = 0
        for item in files:
            context = ConversionContext(arguments=dict(item.arguments))
            try:
                made = run_converter(converter, item.source, context)
            except ConversionError as exc:
                print(f"  {row}: {item.path.name} does not convert, left out: {exc}")
                continue
            reports += len(made)
            steps += sum(len(r.root.walk()) for r in made if r.root is not None)
            good.append(item)
        if not good:
            rows.append(
                f"{row:<18} no file to measure (tests/data/equipment/{name}/ has none it reads)"
            )
            continue
        # Arguments structured once, as the service does when it loads a converter (not
        # on every file, which a plain table in the context would cost).
        arguments_cls = getattr(cls, "Arguments", None)
        contexts = [
            ConversionContext(
                arguments=structure_arguments(arguments_cls, item.arguments, key="arguments")
                if arguments_cls is not None
                else dict(item.arguments)
            )
            for item in good
        ]
        rows.append(Row(row, cls, converter, good, contexts, reports, steps, note=row != name))
    return rows


def measure(rows: list[Row], seconds: float) -> None:
    """Time every row for ``seconds`` in all, in :data:`SLICES` turns."""
    for _ in range(SLICES):
        for row in rows:
            row.slices.append(_timed(row.convert_all, seconds / SLICES))


def line(row: Row, candidates: list[Candidate]) -> str:
    """The table's line of a measured row (with its sniff and choice costs)."""
    rates = sorted(rounds / elapsed for rounds, elapsed in row.slices)
    median = statistics.median(rates)
    files_s = median * len(row.good)
    mb_s, best = median * row.total / 1e6, rates[-1] * row.total / 1e6
    heads = [(item.path.name, item.source.data[:SNIFF_BYTES]) for item in row.good]
    sniff = getattr(row.cls, "sniff", None)
    own_us = "-"
    if sniff is not None:
        rounds_s, elapsed_s = _timed(lambda: [sniff(h, n) for n, h in heads], 0.2)
        own_us = f"{elapsed_s / (rounds_s * len(heads)) * 1e6:.0f}"
    rounds_c, elapsed_c = _timed(lambda: [choose(n, h, candidates) for n, h in heads], 0.2)
    choose_us = elapsed_c / (rounds_c * len(heads)) * 1e6
    verdict = "ok" if mb_s >= TARGET_MB_S else f"BELOW {TARGET_MB_S:g} MB/s"
    steps_s = median * row.steps / 1000
    text = (
        f"{row.name:<18} {len(row.good):>5} {row.total / 1e6:>9.3f} {files_s:>10,.1f} "
        f"{mb_s:>8.2f} {best:>6.2f} {steps_s:>9,.0f} {own_us:>9} {choose_us:>10.0f}  {verdict}"
    )
    if row.note:
        per_file = row.reports / len(row.good)
        text += (
            f"\n{'':<18} ({per_file:,.0f} reports per file: {files_s * per_file:,.0f} reports/s)"
        )
    return text


Build = tuple[type[Any], dict[str, Any]]


def _builds(value: object, out: list[Build], seen: set[int]) -> None:
    """Append the model objects in ``value`` to ``out``, children first, each with the
    fields a converter would pass (those not at their default). An object that several
    parents share (a converter's one passed boolean measurement) is built once."""
    if isinstance(value, list):
        for item in value:
            _builds(item, out, seen)
        return
    if not attrs.has(type(value)) or id(value) in seen:
        return
    seen.add(id(value))
    kwargs: dict[str, Any] = {}
    for field in attrs.fields(type(value)):
        item = getattr(value, field.name)
        _builds(item, out, seen)
        if item is not field.default:
            kwargs[field.name] = item
    out.append((type(value), kwargs))


def _best_us(run: Callable[[], object], seconds: float) -> float:
    """The best of five timings of ``run``, in microseconds per call."""
    best = math.inf
    for _ in range(5):
        rounds, elapsed = _timed(run, seconds / 5)
        best = min(best, elapsed / rounds)
    return best * 1e6


def breakdown_line(row: Row, seconds: float) -> str:
    """The breakdown table's line of a measured row (see the module doc)."""
    reports: list[Report] = []
    for item, context in zip(row.good, row.contexts, strict=True):
        reports += run_converter(row.converter, item.source, context)
    builds: list[Build] = []
    seen: set[int] = set()
    for report in reports:
        _builds(report, builds, seen)

    def build_all() -> None:
        for cls, kwargs in builds:
            cls(**kwargs)

    def check_all() -> None:
        for report in reports:
            check(report)

    rates = sorted(rounds / elapsed for rounds, elapsed in row.slices)
    total_us = 1e6 / statistics.median(rates)
    objects_us = _best_us(build_all, seconds)
    check_us = _best_us(check_all, seconds)
    rest_us = max(total_us - objects_us - check_us, 0.0)

    def share(part: float) -> str:
        return f"{part / 1000:>8.2f} {100 * part / total_us:>3.0f}%"

    def mb_s(us: float) -> str:
        return f"{row.total / us:>8.2f}" if us > 0 else f"{'-':>8}"

    return (
        f"{row.name:<18} {total_us / 1000:>8.2f} {len(builds):>8,} {share(objects_us)} "
        f"{share(check_us)} {share(rest_us)} {mb_s(total_us)} {mb_s(total_us - objects_us)} "
        f"{mb_s(rest_us)}"
    )


def reference_ms() -> float:
    """CPU milliseconds of a fixed pure-Python loop, the best of five: on a shared virtual
    machine the same code runs up to 1.5 times slower from one minute to the next, and
    figures from two runs compare only next to this one."""
    best = math.inf
    for _ in range(5):
        start = time.process_time()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.process_time() - start)
    return best * 1000


def main(
    seconds: float, only: list[str], *, python_gc: bool = False, breakdown: bool = False
) -> None:
    if not python_gc:
        tune_collector()  # as pywats serve does
    print(f"machine: nproc={os.cpu_count()}, python {platform.python_version()}, one thread")
    print(f"         garbage collector thresholds {gc.get_threshold()}")
    print(f"         {platform.platform()}")
    print(f"         reference loop {reference_ms():.1f} ms of CPU (lower: a faster machine now)")
    names = [n for n in FORMATS if not only or n in only]
    names += [n for n in BUILTINS if n not in FORMATS and (not only or n in only)]
    loaded: dict[str, type[Converter]] = {}
    skipped: list[str] = []
    for name in names:
        got = _load(name)
        if isinstance(got, str):
            skipped.append(f"{name:<18} skipped: the converter {got}")
        else:
            loaded[name] = got
    # The choice pywats convert makes considers every converter that loads.
    everyone = {n: c for n in BUILTINS if not isinstance(c := _load(n), str)}
    candidates = [Candidate.of(cls, name=n) for n, cls in everyone.items()]
    print(
        f"{seconds:g} s per format in {SLICES} slices taken in turn: files/s and MB/s of the"
        f" median slice, and the best; sniff costs over the first {SNIFF_BYTES} bytes"
    )
    print()
    prepared = [row for name, cls in loaded.items() for row in prepare(name, cls)]
    rows = [row for row in prepared if isinstance(row, Row)]
    measure(rows, seconds)
    print(
        f"{'format':<18} {'files':>5} {'MB/round':>9} {'files/s':>10} {'MB/s':>8} {'best':>6} "
        f"{'k steps/s':>9} {'sniff µs':>9} {'choose µs':>10}  target"
    )
    for row in prepared:
        print(row if isinstance(row, str) else line(row, candidates), flush=True)
    for text in skipped:
        print(text)
    if breakdown:
        print()
        print(
            "where a round's time goes (ms; objects and check: the best of five timings;"
            " the rest: the median round less both)"
        )
        print(
            f"{'format':<18} {'round':>8} {'objects':>8} {'building':>13} {'checking':>13} "
            f"{'the rest':>13} {'MB/s':>8} {'no model':>8} {'neither':>8}"
        )
        for row in rows:
            print(breakdown_line(row, min(seconds, 1.0)), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per format (s)")
    parser.add_argument("--format", action="append", default=[], help="only these formats")
    parser.add_argument(
        "--python-gc",
        action="store_true",
        help="keep Python's collector thresholds (default: the service's, GC_THRESHOLDS)",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also split each round into building the objects, the check and the rest",
    )
    options = parser.parse_args()
    main(options.seconds, options.format, python_gc=options.python_gc, breakdown=options.breakdown)
    sys.exit(0)
