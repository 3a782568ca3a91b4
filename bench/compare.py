"""Converter speed of an earlier commit against this tree, timed in turn. Prints figures.

    .venv/bin/python bench/compare.py [REV] [--rounds N] [--slice S] [--format NAME ...]

On a shared virtual machine the same code runs up to 1.5 times slower from one minute to
the next, so two runs of ``bench/convert.py`` minutes apart compare badly. This runs two
worker processes side by side: one imports ``pywats`` from ``REV`` (exported with ``git
archive`` into a temporary directory; the default ``HEAD`` measures what the uncommitted
change does), the other from this tree. Both read the inputs of this tree's
``bench/convert.py`` (its files, arguments and rows). Each round gives every format a
``--slice`` of CPU time in one worker, then in the other; the table shows each side's
median and best MB/s over ``--rounds`` rounds, and the gain of the median.

A format that does not convert on one side is said so and left out. The exit status is 0:
a bench prints figures, it does not assert.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(names: list[str], slice_s: float) -> None:
    """Prepare the rows of ``names``, say ``ready``, then time the row each stdin line names
    for ``slice_s`` of CPU and print its MB/s (``-`` for a row this side does not have)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import convert  # this tree's bench, with whichever pywats is on the path

    from pywats.collector import tune_collector

    tune_collector()  # as pywats serve does, and bench/convert.py
    rows: dict[str, convert.Row] = {}
    for name in names:
        cls = convert._load(name)
        if isinstance(cls, str):
            continue
        for row in convert.prepare(name, cls):
            if isinstance(row, convert.Row):
                row.convert_all()  # warm: caches, lazily built cattrs hooks
                rows[row.name] = row
    print("ready", flush=True)
    for line in sys.stdin:
        row = rows.get(line.strip())
        if row is None:
            print("-", flush=True)
            continue
        start, rounds = time.process_time(), 0
        while (elapsed := time.process_time() - start) < slice_s or rounds == 0:
            row.convert_all()
            rounds += 1
        print(f"{row.total * rounds / elapsed / 1e6:.4f}", flush=True)


def _export(rev: str, into: Path) -> None:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def main(rev: str, rounds: int, slice_s: float, only: list[str]) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import convert

    names = [n for n in convert.FORMATS if not only or n in only]
    with tempfile.TemporaryDirectory(prefix="pywats-compare-") as tmp:
        _export(rev, Path(tmp))
        sides = {rev: tmp, "this tree": str(ROOT)}
        workers: dict[str, subprocess.Popen[str]] = {}
        for side, tree in sides.items():
            env = dict(os.environ, PYTHONPATH=tree)
            workers[side] = subprocess.Popen(
                [sys.executable, __file__, "--worker", str(slice_s), *names],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            assert workers[side].stdout is not None
            if workers[side].stdout.readline().strip() != "ready":
                sys.exit(f"bench/compare.py: the worker for {side} did not start")
        rows = list(names)
        if "csv" in rows:
            rows.insert(rows.index("csv") + 1, "csv-rows")
        rates: dict[tuple[str, str], list[float]] = {(s, r): [] for s in sides for r in rows}
        for _ in range(rounds):
            for row in rows:
                for side, proc in workers.items():
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
    print(f"{rounds} rounds of {slice_s:g} s of CPU per format and side, in turn; MB/s")
    print(f"{'format':<18} {rev[:14]:>14} {'best':>7} {'this tree':>10} {'best':>7}   gain")
    for row in rows:
        old, new = rates[rev, row], rates["this tree", row]
        if not old or not new:
            missing = "both sides" if not old and not new else rev if not old else "this tree"
            print(f"{row:<18} does not convert on {missing}")
            continue
        before, after = statistics.median(old), statistics.median(new)
        print(
            f"{row:<18} {before:>14.2f} {max(old):>7.2f} {after:>10.2f} {max(new):>7.2f}"
            f" {100 * (after / before - 1):>+6.0f} %"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:  # started by main(): --worker SLICE NAME...
        worker(sys.argv[3:], float(sys.argv[2]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "rev", nargs="?", default="HEAD", help="the commit to compare with (default HEAD)"
    )
    parser.add_argument("--rounds", type=int, default=12, help="rounds per format (12)")
    parser.add_argument("--slice", type=float, default=0.1, help="CPU s per turn (0.1)")
    parser.add_argument("--format", action="append", default=[], help="only these formats")
    options = parser.parse_args()
    main(options.rev, options.rounds, options.slice, options.format)
    sys.exit(0)
