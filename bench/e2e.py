"""End-to-end benchmark: ``pywats receiver`` and ``pywats serve`` as real processes.
Prints figures; not a test.

    .venv/bin/python bench/e2e.py [--files N] [--runs N] [--idle-s S]

* throughput: N small WSJF files dropped into the watch folder at once (service running and
  idle) -> time until the receiver holds all of them (files/s);
* latency: one file into an idle service -> time to its durable queue row and to its
  arrival at the receiver (p50/p99 over ``--runs``);
* idle cost: CPU % of one core and RSS of the service over ``--idle-s`` seconds with
  nothing to do (after the runs above, so every code path has been loaded).

Targets (docs/performance.md, 2-core machine): >= 300 files/s; p50 <= 50 ms to received;
idle CPU <= 0.5 % of a core; RSS <= 60 MiB.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

# bench/ holds queue.py, named like the stdlib module trio imports: replace this script's
# folder on the path by the repository root (for the test harness).
if sys.path and os.path.realpath(sys.path[0] or ".") == os.path.dirname(os.path.realpath(__file__)):
    sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.harness import (
    Instance,
    ReceiverProcess,
    report_bytes,
    running,
    stop,
    wait_for,
)

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def has_id(db: Path, table: str, report_id: str) -> bool:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return (
                conn.execute(f"select 1 from {table} where id = ?", (report_id,)).fetchone()
                is not None
            )
    except sqlite3.OperationalError:
        return False


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def burst(inst: Instance, receiver: ReceiverProcess, root: Path, files: int, pid: int) -> None:
    """Rename ``files`` reports into the watch folder at once; time until all received.

    Also prints the CPU time the service (``pid``) and the receiver spent per file: on a
    shared or noisy machine it varies less than the rate, so it shows what a change did.
    """
    staging = root / "staging"
    staging.mkdir()
    names = []
    for index in range(files):
        _, data = report_bytes(index)
        name = f"t{index:07d}.json"
        (staging / name).write_bytes(data)
        names.append(name)
    base = receiver.stats()["unique"]
    cpu_serve, cpu_receiver = cpu_seconds(pid), cpu_seconds(receiver.proc.pid)
    started = time.perf_counter()
    for name in names:
        os.rename(staging / name, inst.watch / name)
    wait_for(
        lambda: receiver.stats()["unique"] - base >= files,
        timeout=600,
        what="the burst",
        interval=0.05,
    )
    elapsed = time.perf_counter() - started
    serve_ms = (cpu_seconds(pid) - cpu_serve) * 1000 / files
    receiver_ms = (cpu_seconds(receiver.proc.pid) - cpu_receiver) * 1000 / files
    rate = files / elapsed
    print(f"burst of {files} files: {elapsed:.2f} s -> {rate:,.0f} files/s (target >= 300)")
    print(f"  CPU per file: serve {serve_ms:.2f} ms, receiver {receiver_ms:.2f} ms")


def latency(inst: Instance, receiver: ReceiverProcess, runs: int) -> None:
    """One file at a time into an idle service: ms to its queue row and to the receiver."""
    to_row: list[float] = []
    to_received: list[float] = []
    for run in range(runs):
        time.sleep(0.3)
        report_id, data = report_bytes(10**6 + run)
        tmp_file = inst.watch / f".lat{run}.tmp"
        tmp_file.write_bytes(data)
        t0 = time.perf_counter()
        tmp_file.rename(inst.watch / f"lat{run}.json")
        row_at = received_at = None
        deadline = t0 + 30
        while received_at is None and time.perf_counter() < deadline:
            if row_at is None and has_id(inst.db(), "reports", report_id):
                row_at = time.perf_counter()
            if has_id(receiver.db, "reports", report_id):
                received_at = time.perf_counter()
                row_at = row_at or received_at
            time.sleep(0.0005)
        if received_at is None or row_at is None:
            raise SystemExit(f"run {run}: report not received within 30 s")
        to_row.append((row_at - t0) * 1000)
        to_received.append((received_at - t0) * 1000)
    for label, values in (("to durable row", to_row), ("to received", to_received)):
        p50, p99 = statistics.median(values), percentile(values, 0.99)
        print(f"latency {label} over {runs} runs: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print("  (target: p50 to received <= 50 ms)")


def idle(pid: int, seconds: float) -> None:
    """CPU % of one core and peak RSS of ``pid`` over ``seconds`` of doing nothing."""
    time.sleep(1.0)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    rss_peak = rss_mib(pid)
    while time.monotonic() - t0 < seconds:
        time.sleep(min(1.0, seconds))
        rss_peak = max(rss_peak, rss_mib(pid))
    cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100
    print(f"idle over {seconds:.0f} s: CPU {cpu:.2f} % of a core (target <= 0.5 %)")
    print(f"RSS peak {rss_peak:.1f} MiB (target <= 60 MiB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--idle-s", type=float, default=60.0)
    args = parser.parse_args()
    print(
        f"pywats e2e benchmark on {platform.node()} ({os.cpu_count()} CPUs),"
        f" Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="pywats-e2e-") as tmp:
        root = Path(tmp)
        receiver = ReceiverProcess(root / "receiver.db")
        try:
            inst = Instance(root, "bench", server_url=receiver.url)
            with running(inst.serve()) as proc:
                inst.wait_ready()
                burst(inst, receiver, root, args.files, proc.pid)
                latency(inst, receiver, args.runs)
                idle(proc.pid, args.idle_s)
                stop(proc)
            inst.notify.close()
        finally:
            receiver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
