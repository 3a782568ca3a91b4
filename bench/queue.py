"""Benchmark the durable report queue (pywats.store). Prints figures; not a test.

    .venv/bin/python bench/queue.py [--dir DIR] [--open-rows N]

Figures (each on a fresh database in a temporary directory, ~5 KB report bodies):

* durable enqueue, one report per commit (``Store.enqueue``; one fsync each);
* durable enqueue, 50 reports per commit (``Store.enqueue_batch``);
* claim + mark_done cycles, one report at a time (two commits per report);
* time to open a database holding 100,000 queued reports (quick_check, crash recovery of
  the ``uploading`` ones, first ``stats``), after creating it untimed.

Targets (docs/performance.md): >= 200 reports/s unbatched, >= 2,000 reports/s batched,
open with 100,000 rows in <= 2 s.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's directory is sys.path[0], and the file is named like the
# stdlib module ``queue`` that trio and apsw import; take the directory off the path
# before anything imports ``queue``.
if sys.path and os.path.realpath(sys.path[0] or ".") == os.path.dirname(os.path.realpath(__file__)):
    sys.path.pop(0)

import argparse
import logging
import platform
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import apsw
import trio

from pywats.store import NewReport, SourceFile, Store

BODY_BYTES = 5 * 1024
BATCH = 50


def make_body(rng: random.Random, report_id: str) -> bytes:
    head = f'{{"id": "{report_id}", "type": "T", "pn": "PN-1", "sn": "SN", "steps": ['
    step = '{"name": "step %d", "status": "Passed", "numericMeas": [{"value": %f}]}, '
    parts = [head]
    size = len(head)
    i = 0
    while size < BODY_BYTES - 40:
        s = step % (i, rng.random())
        parts.append(s)
        size += len(s)
        i += 1
    parts.append("{}]}")
    return "".join(parts).encode()


def make_item(rng: random.Random) -> tuple[list[NewReport], SourceFile]:
    report_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    report = NewReport(
        id=report_id,
        body=make_body(rng, report_id),
        pn="PN-1",
        sn=f"SN{rng.randrange(10**8):08d}",
        result="Passed",
        start="2024-05-01T10:00:00+00:00",
        converter="bench",
    )
    source = SourceFile(hash=uuid.uuid4().hex, path=f"/in/{report_id}.json", size=1, mtime=0)
    return [report], source


async def bench_single(directory: Path, count: int) -> tuple[float, float, float]:
    rng = random.Random(1)
    items = [make_item(rng) for _ in range(count)]
    latencies: list[float] = []
    async with await Store.open(directory / "single.db") as store:
        start = time.perf_counter()
        for reports, source in items:
            t = time.perf_counter()
            await store.enqueue(reports, source)
            latencies.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - start
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    return count / elapsed, statistics.median(latencies) * 1000, p99 * 1000


async def bench_batched(directory: Path, count: int) -> float:
    rng = random.Random(2)
    batches = [[make_item(rng) for _ in range(BATCH)] for _ in range(count // BATCH)]
    async with await Store.open(directory / "batched.db") as store:
        start = time.perf_counter()
        for batch in batches:
            await store.enqueue_batch(batch)
        elapsed = time.perf_counter() - start
    return len(batches) * BATCH / elapsed


async def bench_claim_done(directory: Path, count: int) -> float:
    rng = random.Random(3)
    async with await Store.open(directory / "claim.db") as store:
        for _ in range(count // BATCH):
            await store.enqueue_batch([make_item(rng) for _ in range(BATCH)])
        start = time.perf_counter()
        done = 0
        while claims := await store.claim(1):
            await store.mark_done(claims[0].id, status=200)
            done += 1
        elapsed = time.perf_counter() - start
    assert done == count
    return count / elapsed


async def bench_open(directory: Path, rows: int) -> tuple[float, float, int]:
    path = directory / "big.db"
    rng = random.Random(4)
    body = make_body(rng, "x")
    async with await Store.open(path) as store:
        step = 1000
        for base in range(0, rows, step):
            # Same body bytes, different ids: creating the file is not what is measured.
            await store.enqueue_batch(
                [
                    (
                        [NewReport(f"r{n:09d}", body, "PN-1", f"SN{n:08d}", "Passed", "s", "b")],
                        SourceFile(f"h{n}", f"/in/{n}", 1, 0),
                    )
                    for n in range(base, min(base + step, rows))
                ]
            )
        # Leave some in flight, as a crash would, so the open also does recovery.
        await store.claim(100)
    size_mb = path.stat().st_size / 1e6
    start = time.perf_counter()
    async with await Store.open(path) as store:
        opened = time.perf_counter() - start
        stats = await store.stats()
        ready = time.perf_counter() - start
    assert stats.pending == rows, stats
    return opened, ready, int(size_mb)


async def main(directory: Path, open_rows: int) -> None:
    # The open benchmark leaves reports "uploading" on purpose; its recovery warning is
    # expected and would only clutter the figures.
    logging.getLogger("pywats.store").setLevel(logging.ERROR)
    print(f"machine: nproc={os.cpu_count()}, python {platform.python_version()},")
    print(f"         apsw {apsw.apsw_version()}, SQLite {apsw.sqlite_lib_version()}")
    print(f"         {platform.platform()}; database dir {directory}")
    print(f"report body: {len(make_body(random.Random(0), 'x'))} bytes")

    rate, p50, p99 = await bench_single(directory, 2000)
    print(f"enqueue, 1 report per commit:   {rate:9,.0f} reports/s", end="")
    print(f"  (commit latency p50 {p50:.2f} ms, p99 {p99:.2f} ms)")
    rate = await bench_batched(directory, 20_000)
    print(f"enqueue, {BATCH} reports per commit: {rate:9,.0f} reports/s")
    rate = await bench_claim_done(directory, 2000)
    print(f"claim(1) + mark_done cycles:    {rate:9,.0f} reports/s")
    print(f"creating a database with {open_rows:,} queued reports (untimed) ...", flush=True)
    opened, ready, size_mb = await bench_open(directory, open_rows)
    print(
        f"open with {open_rows:,} rows ({size_mb} MB):  {opened:.3f} s to open,"
        f" {ready:.3f} s to first stats"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="where to create databases (default: a temp dir)")
    parser.add_argument("--open-rows", type=int, default=100_000)
    options = parser.parse_args()
    if options.dir is not None:
        options.dir.mkdir(parents=True, exist_ok=True)
        trio.run(main, options.dir, options.open_rows)
        sys.exit(0)
    with tempfile.TemporaryDirectory(prefix="pywats-bench-") as tmp:
        trio.run(main, Path(tmp), options.open_rows)
