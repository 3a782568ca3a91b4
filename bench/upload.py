"""Benchmark the uploader (pywats.uploader) against ``pywats receiver`` as a real process.
Prints figures; not a test.

    .venv/bin/python bench/upload.py [--quick] [--reports-5k N] [--reports-50k N]
                                     [--workers 1,5,20] [--dir DIR]

For each report size (5 KB and 50 KB of valid WSJF) and each worker count, a fresh queue
in a temporary directory is filled (untimed), then an :class:`~pywats.uploader.Uploader`
uploads it to the receiver (``pywats receiver --port 0 --db ...``, a subprocess, so it
has its own interpreter and core). The clock starts when the uploader reports the server
online and stops when the last report is marked done in the queue (``synchronous=FULL``
commits included). Printed: reports/s, MB/s, and CPU seconds per 1,000 reports of this
process (uploader + store) and of the receiver.

Target (docs/uploader.md): >= 500 reports/s with 5 workers for 5 KB reports on a
2-core machine.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's directory is sys.path[0], and bench/queue.py there shadows
# the stdlib module ``queue`` that trio imports; take the directory off the path first.
if sys.path and os.path.realpath(sys.path[0] or ".") == os.path.dirname(os.path.realpath(__file__)):
    sys.path.pop(0)

import argparse
import json
import logging
import platform
import random
import resource
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pywats.store import NewReport, Store
from pywats.upload import Uploader, UploaderConfig, UploaderState
from tests.report.minimal import uut

TICKS = os.sysconf("SC_CLK_TCK")


def make_report(rng: random.Random, size: int) -> NewReport:
    """A valid WSJF report of about ``size`` bytes (numeric steps added to the minimal one)."""
    doc: dict[str, Any] = uut()
    report_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    doc["id"] = report_id
    doc["sn"] = f"SN{rng.randrange(10**8):08d}"
    steps = doc["root"]["steps"]
    template = steps[0]
    body = json.dumps(doc).encode()
    step_bytes = len(json.dumps(template)) + 2
    for n in range(max(0, (size - len(body)) // step_bytes)):
        step = json.loads(json.dumps(template))
        step["id"] = 100 + n
        step["name"] = f"VCC {n}"
        step["numericMeas"][0]["value"] = round(4.9 + rng.random() * 0.2, 4)
        steps.append(step)
    return NewReport(
        id=report_id,
        body=json.dumps(doc).encode(),
        pn=doc["pn"],
        sn=doc["sn"],
        result="P",
        start=doc["start"],
        converter="bench",
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class ReceiverProcess:
    """``pywats receiver --port 0`` with a database file; the URL is read from its one
    stdout line."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pywats.cli", "receiver", "--port", "0", "--db", str(db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        prefix = "pywats receiver listening on "
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"receiver did not start: {line!r}")
        self.url = line.removeprefix(prefix)

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = httpx.get(f"{self.url}/stats", timeout=10).json()
        return result

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def run_one(
    directory: Path, receiver: ReceiverProcess, reports: list[NewReport], workers: int
) -> tuple[float, float, float]:
    """Upload ``reports`` with ``workers``; return (reports/s, own CPU ms, receiver CPU ms
    per report)."""
    path = directory / f"queue-{uuid.uuid4().hex[:8]}.db"
    async with await Store.open(path) as store:
        for start in range(0, len(reports), 200):
            await store.enqueue_batch([([r], None) for r in reports[start : start + 200]])
        uploader = Uploader(store, UploaderConfig(url=receiver.url, workers=workers))
        async with trio.open_nursery() as nursery:
            await nursery.start(uploader.run)
            with trio.fail_after(600):
                seen = uploader.status_generation
                while uploader.status().state is not UploaderState.ONLINE:
                    seen = await uploader.wait_status_changed(seen)
                began = time.perf_counter()
                own_before = own_cpu_seconds()
                receiver_before = cpu_seconds(receiver.proc.pid)
                while uploader.status().uploaded < len(reports):
                    seen = await uploader.wait_status_changed(seen)
                elapsed = time.perf_counter() - began
                own = own_cpu_seconds() - own_before
                receiver_cpu = cpu_seconds(receiver.proc.pid) - receiver_before
            status = uploader.status()
            await uploader.shutdown()
        stats = await store.stats()
    path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    if stats.done != len(reports) or status.failed or status.retried:
        raise RuntimeError(f"not a clean run: {stats}, {status}")
    count = len(reports)
    return count / elapsed, own * 1000 / count, receiver_cpu * 1000 / count


async def main(directory: Path, sizes: list[tuple[int, int]], worker_counts: list[int]) -> None:
    print(f"machine: nproc={os.cpu_count()}, python {platform.python_version()},", end="")
    print(f" httpx {httpx.__version__}")
    print(f"         {platform.platform()}; queue dir {directory}")
    receiver = ReceiverProcess(directory / "receiver.db")
    try:
        rng = random.Random(1)
        print(f"receiver: {receiver.url} (subprocess, SQLite file)")
        print()
        print(
            "report   workers  reports   reports/s      MB/s   CPU ms/report (uploader | receiver)"
        )
        for size, count in sizes:
            reports = [make_report(rng, size) for _ in range(count)]
            actual = sum(len(r.body) for r in reports) / count
            for workers in worker_counts:
                rate, own_ms, receiver_ms = await run_one(directory, receiver, reports, workers)
                print(
                    f"{actual / 1024:5.1f} KB {workers:7d} {count:8d} {rate:11,.0f}"
                    f" {rate * actual / 1e6:9.1f}   {own_ms:6.2f} | {receiver_ms:6.2f}",
                    flush=True,
                )
        print()
        print(f"receiver totals: {receiver.stats()}")
    finally:
        receiver.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer reports (a smoke run)")
    parser.add_argument("--reports-5k", type=int, help="5 KB reports per run (default 3000)")
    parser.add_argument("--reports-50k", type=int, help="50 KB reports per run (default 600)")
    parser.add_argument("--workers", default="1,5,20", help="worker counts (default 1,5,20)")
    parser.add_argument("--dir", type=Path, help="where to put the databases (default: a temp dir)")
    options = parser.parse_args()
    small = options.reports_5k or (500 if options.quick else 3000)
    large = options.reports_50k or (100 if options.quick else 600)
    workers = [int(w) for w in options.workers.split(",")]
    # One line per state change and per request would drown the figures.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if options.dir is not None:
        options.dir.mkdir(parents=True, exist_ok=True)
        trio.run(main, options.dir, [(5 * 1024, small), (50 * 1024, large)], workers)
        sys.exit(0)
    with tempfile.TemporaryDirectory(prefix="pywats-bench-upload-") as tmp:
        trio.run(main, Path(tmp), [(5 * 1024, small), (50 * 1024, large)], workers)
