"""End-to-end benchmark: ``pywats receiver`` and ``pywats serve`` as real processes.
Prints figures; not a test.

    .venv/bin/python bench/e2e.py [--files N] [--runs N] [--idle-s S]
        [--server receiver|plain] [--recovery-files N] [--outage-s S]
        [--recovery-latency-s S] [--recovery-rounds N] [--recovery-timeout-s S]

``--server plain`` runs everything against ``bench/plain_server.py`` (the stdlib's HTTP
stack) instead of ``pywats receiver``, to tell the server's cost from the uploader's; it
cannot inject faults, so the recovery figure is skipped. In order, it prints:

* the machine and the server in use;
* throughput: N small WSJF files dropped into the watch folder at once (service running and
  idle) -> time until the server holds all of them (files/s), and the CPU time the
  service and the server spent per file;
* latency: one file into an idle service -> time to its durable queue row and to its
  arrival at the server (p50/p99 over ``--runs``);
* idle cost: CPU % of one core and RSS of the service over ``--idle-s`` seconds with
  nothing to do (after the runs above, so every code path has been loaded);
* recovery (receiver only), in a second instance on the shipped retry settings (1 s,
  300 s; the first one retries fast), ``--recovery-rounds`` times: ``--recovery-files`` files are
  dropped in while the receiver answers after ``--recovery-latency-s`` (20 ms: uploads
  are in flight); once the first have arrived it is switched (``PUT /faults``) to answer
  500 to every report upload (the version probe stays healthy) for ``--outage-s``
  seconds, then healed -> per round, the time from healing until it holds every one of
  those reports, the upload attempts it answered 500, and the duplicates it got while
  catching up; then the median and the worst round. A report missing after
  ``--recovery-timeout-s`` prints a FAILED line (and the exit status is 1).

Targets (docs/performance.md, 2-core machine): >= 300 files/s; p50 <= 50 ms to received;
recovery <= 2 s after a 5 s burst of 500s; idle CPU <= 0.5 % of a core; RSS <= 60 MiB.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Protocol

# bench/ holds queue.py, named like the stdlib module trio imports: replace this script's
# folder on the path by the repository root (for the test harness).
if sys.path and os.path.realpath(sys.path[0] or ".") == os.path.dirname(os.path.realpath(__file__)):
    sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.harness import (
    Instance,
    PlainServerProcess,
    ReceiverProcess,
    report_bytes,
    running,
    stop,
    wait_for,
)

TICKS = os.sysconf("SC_CLK_TCK")


class Server(Protocol):
    """What the benchmark needs of a server process (ReceiverProcess, PlainServerProcess)."""

    url: str
    db: Path
    proc: subprocess.Popen[str]

    def stats(self) -> dict[str, int]: ...

    def stop(self) -> None: ...


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


def stage(root: Path, prefix: str, files: int, first_index: int) -> tuple[Path, list[str]]:
    """Write ``files`` reports into a fresh folder beside the watch folder (same file
    system, so a rename moves them in at once); the folder and the names."""
    staging = root / f"staging-{prefix}"
    staging.mkdir()
    names = []
    for index in range(first_index, first_index + files):
        _, data = report_bytes(index)
        name = f"{prefix}{index:07d}.json"
        (staging / name).write_bytes(data)
        names.append(name)
    return staging, names


def burst(inst: Instance, receiver: Server, root: Path, files: int, pid: int, label: str) -> None:
    """Rename ``files`` reports into the watch folder at once; time until all received.

    Also prints the CPU time the service (``pid``) and the server spent per file: on a
    shared or noisy machine it varies less than the rate, so it shows what a change did.
    """
    staging, names = stage(root, "t", files, 0)
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
    print(f"  CPU per file: serve {serve_ms:.2f} ms, {label} {receiver_ms:.2f} ms")


def latency(inst: Instance, receiver: Server, runs: int) -> None:
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


def recovery(
    inst: Instance,
    receiver: ReceiverProcess,
    root: Path,
    files: int,
    outage_s: float,
    timeout_s: float,
    latency_s: float,
    rounds: int,
) -> bool:
    """``rounds`` times: uploads in flight (the receiver answers after ``latency_s``, as a
    real server takes tens of milliseconds), then a burst of 500s on every report upload
    for ``outage_s``, then healing: print the time until the receiver holds every report;
    False if one round never did within ``timeout_s`` of healing."""
    what = f"recovery after a {outage_s:g} s burst of 500s"
    figures: list[float] = []
    for round_ in range(rounds):
        staging, names = stage(root, f"rec{round_}-", files, (2 + round_) * 10**6)
        before = receiver.stats()
        receiver.set_faults(latency_s=latency_s)
        for name in names:
            os.rename(staging / name, inst.watch / name)
        # Uploads are under way (and five in flight) when the errors begin.
        wait_for(
            lambda base=before["unique"]: receiver.stats()["unique"] - base >= min(20, files // 4),
            timeout=60,
            what="the first uploads",
            interval=0.005,
        )
        # fail_health stays off: the version probe answers, so the service sees a server
        # that is up and refuses uploads (its hold path), not one that is offline.
        receiver.set_faults(fail_rate=1.0, fail_status=500, latency_s=latency_s)
        time.sleep(outage_s)  # a fixed stretch of errors, not a wait for a condition
        # Taken before the PUT that heals, so the figure is an upper bound (by the PUT's
        # round trip, well under a millisecond on loopback).
        healed = time.perf_counter()
        receiver.set_faults(latency_s=latency_s)
        during = receiver.stats()
        attempts = during["failed_injected"] - before["failed_injected"]
        deadline = healed + timeout_s
        while (got := receiver.stats()["unique"] - before["unique"]) < files:
            if time.perf_counter() > deadline:
                print(
                    f"{what}: FAILED in round {round_ + 1}, {got} of {files} reports received"
                    f" within {timeout_s:g} s of healing (target <= 2 s)"
                )
                receiver.set_faults()
                return False
            time.sleep(0.005)
        elapsed = time.perf_counter() - healed
        duplicates = receiver.stats()["duplicates"] - during["duplicates"]
        figures.append(elapsed)
        # Even with no wait at all, the reports still queued at healing take this long
        # with the default 5 workers at this latency.
        floor = (files - (during["unique"] - before["unique"])) * latency_s / 5
        print(
            f"  round {round_ + 1}: {elapsed:.2f} s (sending what was left takes {floor:.2f} s);"
            f" upload attempts answered 500: {attempts}; duplicates: {duplicates}"
        )
        if attempts == 0:
            print("  no upload was refused during the outage: this round measured nothing")
            return False
    receiver.set_faults()
    print(
        f"{what} ({files} reports, server latency {latency_s * 1000:g} ms, {rounds} rounds):"
        f" median {statistics.median(figures):.2f} s, worst {max(figures):.2f} s"
        " (target <= 2 s)"
    )
    return True


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
    parser.add_argument(
        "--server",
        choices=("receiver", "plain"),
        default="receiver",
        help="pywats receiver (default) or bench/plain_server.py (stdlib HTTP, no faults)",
    )
    parser.add_argument(
        "--recovery-files", type=int, default=100, help="files sent into the outage (0: skip)"
    )
    parser.add_argument("--outage-s", type=float, default=5.0, help="length of the 500 burst")
    parser.add_argument(
        "--recovery-latency-s", type=float, default=0.02, help="server latency in the outage"
    )
    parser.add_argument("--recovery-rounds", type=int, default=5, help="outages to measure")
    parser.add_argument(
        "--recovery-timeout-s",
        type=float,
        default=60.0,
        help="give up on the recovery this long after healing",
    )
    args = parser.parse_args()
    print(
        f"pywats e2e benchmark on {platform.node()} ({os.cpu_count()} CPUs),"
        f" Python {platform.python_version()}"
    )
    ok = True
    with tempfile.TemporaryDirectory(prefix="pywats-e2e-") as tmp:
        root = Path(tmp)
        receiver: Server
        if args.server == "plain":
            receiver = PlainServerProcess(root / "plain.db")
            label = "plain server"
            print("server: bench/plain_server.py (stdlib http.server, HTTP/1.1 keep-alive)")
        else:
            receiver = ReceiverProcess(root / "receiver.db")
            label = "receiver"
            print("server: pywats receiver (h11 over trio)")
        try:
            inst = Instance(root, "bench", server_url=receiver.url)
            with running(inst.serve()) as proc:
                inst.wait_ready()
                burst(inst, receiver, root, args.files, proc.pid, label)
                latency(inst, receiver, args.runs)
                idle(proc.pid, args.idle_s)
                stop(proc)
            inst.notify.close()
            if not isinstance(receiver, ReceiverProcess):
                print("recovery: skipped (the plain server cannot inject faults)")
            elif args.recovery_files > 0:
                # The shipped retry settings (the bench instance above retries fast).
                outage = Instance(root, "outage", server_url=receiver.url, fast_retry=False)
                with running(outage.serve()) as proc:
                    outage.wait_ready()
                    ok = recovery(
                        outage,
                        receiver,
                        root,
                        args.recovery_files,
                        args.outage_s,
                        args.recovery_timeout_s,
                        args.recovery_latency_s,
                        args.recovery_rounds,
                    )
                    stop(proc)
                outage.notify.close()
        finally:
            receiver.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
