"""Converter speed of an earlier commit against this tree, timed in turn. Prints figures.

    .venv/bin/python bench/compare.py [REV] [--rounds N] [--slice S] [--format NAME ...]
                                      [--dumps]

On a shared virtual machine the same code runs up to 1.5 times slower from one minute to
the next, so two runs of ``bench/convert.py`` minutes apart compare badly. This runs two
worker processes side by side: one imports ``pywats`` from ``REV`` (exported with ``git
archive`` into a temporary directory; the default ``HEAD`` measures what the uncommitted
change does), the other from this tree. Both read the inputs of this tree's
``bench/convert.py`` (its files, arguments and rows). Each round gives every format a
``--slice`` of CPU time in one worker, then in the other; the table shows each side's
median and best MB/s over ``--rounds`` rounds, and the gain of the median. ``--dumps``
times serialising each row's reports (``wsjf.dumps``, what the pipeline does before it
queues a report) instead of converting its files.

A row that one side does not have (a format that does not convert there) is said so. The
exit status is 0: a bench prints figures, it does not assert.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pywats.report import Report

ROOT = Path(__file__).resolve().parents[1]


def worker(names: list[str], slice_s: float, *, dumps: bool) -> None:
    """Prepare the rows of ``names`` and say ``ready`` with their names (a JSON list), then
    time the row each stdin line names for ``slice_s`` of CPU and print its MB/s (``-``
    for a row this side does not have). With ``dumps``, what is timed is serialising the
    row's reports (``wsjf.dumps``, as the pipeline queues them), not converting."""
    sys.path.insert(0, str(ROOT / "bench"))
    import convert  # this tree's bench, with whichever pywats is on the path

    from pywats.collector import tune_collector
    from pywats.converters import run_converter
    from pywats.report import wsjf

    tune_collector()  # as pywats serve does, and bench/convert.py
    runs: dict[str, tuple[int, Callable[[], object]]] = {}
    for name in names:
        cls = convert._load(name)
        if isinstance(cls, str):
            continue
        for row in convert.prepare(name, cls):
            if not isinstance(row, convert.Row):
                continue
            run: Callable[[], object] = row.convert_all
            if dumps:
                reports = [
                    report
                    for item, context in zip(row.good, row.contexts, strict=True)
                    for report in run_converter(row.converter, item.source, context)
                ]

                def run(reports: list[Report] = reports) -> None:
                    for report in reports:
                        wsjf.dumps(report)

            run()  # warm: caches, lazily built cattrs hooks
            runs[row.name] = (row.total, run)
    print("ready", json.dumps(list(runs)), flush=True)
    for line in sys.stdin:
        entry = runs.get(line.strip())
        if entry is None:
            print("-", flush=True)
            continue
        size, run = entry
        rounds, elapsed = convert._timed(run, slice_s, time.process_time)
        print(f"{size * rounds / elapsed / 1e6:.4f}", flush=True)


def _export(rev: str, into: Path) -> None:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def main(rev: str, rounds: int, slice_s: float, only: list[str], *, dumps: bool) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import convert

    names = [n for n in convert.FORMATS if not only or n in only]
    with tempfile.TemporaryDirectory(prefix="pywats-compare-") as tmp:
        _export(rev, Path(tmp))
        sides = {rev: tmp, "this tree": str(ROOT)}
        workers: dict[str, subprocess.Popen[str]] = {}
        rows: list[str] = []  # every row either side has, this tree's order first
        for side in reversed(sides):
            command = [sys.executable, __file__, "--worker", str(slice_s), str(dumps), *names]
            proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=dict(os.environ, PYTHONPATH=sides[side]),
            )
            assert proc.stdout is not None
            word, _, listed = proc.stdout.readline().partition(" ")
            if word != "ready":
                sys.exit(f"bench/compare.py: the worker for {side} did not start")
            rows += [row for row in json.loads(listed) if row not in rows]
            workers[side] = proc
        rates: dict[tuple[str, str], list[float]] = {(s, r): [] for s in sides for r in rows}
        for _ in range(rounds):
            for row in rows:
                for side in sides:
                    proc = workers[side]
                    assert proc.stdin is not None
                    assert proc.stdout is not None
                    proc.stdin.write(row + "\n")
                    proc.stdin.flush()
                    answer = proc.stdout.readline().strip()
                    if answer not in ("", "-"):
                        rates[side, row].append(float(answer))
        for proc in workers.values():
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait()
    what = "serialising (wsjf.dumps)" if dumps else "converting"
    print(f"{what}: {rounds} rounds of {slice_s:g} s of CPU per format and side, in turn;")
    print("MB/s of the files converted (with --dumps too), the median and the best")
    print(f"{'MB/s':<18} {rev[:14]:>14} {'best':>7} {'this tree':>10} {'best':>7}   gain")
    for row in rows:
        old, new = rates[rev, row], rates["this tree", row]
        if not old or not new:
            missing = "both sides" if not old and not new else rev if not old else "this tree"
            print(f"{row:<18} not measured on {missing}")
            continue
        before, after = statistics.median(old), statistics.median(new)
        print(
            f"{row:<18} {before:>14.2f} {max(old):>7.2f} {after:>10.2f} {max(new):>7.2f}"
            f" {100 * (after / before - 1):>+6.0f} %"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:  # started by main(): --worker SLICE DUMPS NAME...
        worker(sys.argv[4:], float(sys.argv[2]), dumps=sys.argv[3] == "True")
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "rev", nargs="?", default="HEAD", help="the commit to compare with (default HEAD)"
    )
    parser.add_argument("--rounds", type=int, default=12, help="rounds per format (12)")
    parser.add_argument("--slice", type=float, default=0.1, help="CPU s per turn (0.1)")
    parser.add_argument("--format", action="append", default=[], help="only these formats")
    parser.add_argument(
        "--dumps", action="store_true", help="time serialising the reports, not converting"
    )
    options = parser.parse_args()
    main(options.rev, options.rounds, options.slice, options.format, dumps=options.dumps)
    sys.exit(0)
