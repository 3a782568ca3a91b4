"""The fault matrix at full size: ``pywats serve`` and ``pywats receiver`` as real processes,
each scenario ending with the oracle's checks. Prints figures; not a test
(``tests/integration/faults/`` holds the tests, ``docs/reliability.md`` the figures).

    .venv/bin/python bench/faults.py [--quick] [--only NAME ...]

Scenarios, in order (``--quick``: a tenth of the sizes, for trying the script):

* ``down``: the server refuses connections for 60 s with 2,000 reports queued -> CPU of
  the service while down (% of one core), the offline log lines, the time from the
  server coming back until it holds every report, and the drain rate;
* ``lost``: 2,000 reports to a server that drops 30 % of its answers -> lost (must be 0),
  duplicates, and the offline WARNING lines (one per outage, not one per lost answer);
* ``backlog``: 10,000 files waiting at start -> time until all are received, peak RSS;
* ``burst``: 20,000 files renamed into a running instance (past ``max_queued_events``)
  -> time until all are received, whether the inotify overflow was logged, lost;
* ``sigterm``: SIGTERM while 6,000 files are being uploaded -> exit code and time, then
  a restart drains the rest -> lost;
* ``notify``: a ``$NOTIFY_SOCKET`` nobody reads -> the time an idle stop takes.

A FAILED line (and exit status 1) when an oracle check fails.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# bench/ holds queue.py, named like the stdlib module trio imports: replace this script's
# folder on the path by the repository root (for the test harness).
if sys.path and os.path.realpath(sys.path[0] or ".") == os.path.dirname(os.path.realpath(__file__)):
    sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration import harness
from tests.integration.faults import oracle
from tests.integration.faults.test_notify_stuck import stuck_socket
from tests.integration.harness import (
    Instance,
    ReceiverProcess,
    running,
    stop,
    wait_for,
)

Scenario = Callable[[Path, float], None]


def say(name: str, text: str) -> None:
    print(f"{name:8} {text}", flush=True)


def down(root: Path, scale: float) -> None:
    count, down_s = int(2000 * scale), 60.0 * scale
    port = oracle.free_port()
    inst = Instance(root, "down", server_url=f"http://127.0.0.1:{port}", fast_retry=False)
    ids = set(inst.drop(count))
    with running(inst.serve()) as proc:
        inst.wait_ready()
        wait_for(lambda: not inst.files_left(), timeout=300, what="every file queued")
        oracle.wait_lines(inst, "WARNING uploader: uploader offline")
        cpu = oracle.cpu_seconds(proc.pid)
        time.sleep(down_s)
        cpu = oracle.cpu_seconds(proc.pid) - cpu
        with oracle.receiving(root / "down-rx.db", port=port) as rx:
            back = time.monotonic()
            wait_for(lambda: rx.stats()["received"] > 0, timeout=120, what="the first report")
            first = time.monotonic() - back
            oracle.drained(inst, rx, ids, timeout=600)
            took = time.monotonic() - back
            ids |= oracle.fresh_file_flows(inst, rx, start=count)
            assert stop(proc) == 0
            verdict = oracle.check(inst, rx, ids)
    lines = oracle.log_lines(inst.log(), "WARNING uploader: uploader offline")
    say("down", f"{down_s:.0f} s refused, {count} queued: CPU {cpu / down_s * 100:.2f} % of a core")
    say("down", f"offline lines: {len(lines)}: {lines[0].split(': ', 1)[1] if lines else '-'}")
    say(
        "down",
        f"back: first report after {first:.2f} s, all {count} after {took:.1f} s "
        f"({count / took:.0f} reports/s); lost 0, duplicates {verdict.duplicates}",
    )


def lost(root: Path, scale: float) -> None:
    count = int(2000 * scale)
    with oracle.receiving(root / "lost-rx.db", "--drop-rate", "0.3", "--seed", "12") as rx:
        inst = Instance(root, "lost", server_url=rx.url)
        ids = set(inst.drop(count))
        with running(inst.serve()) as proc:
            started = time.monotonic()
            oracle.drained(inst, rx, ids, timeout=600)
            took = time.monotonic() - started
            rx.set_faults()
            ids |= oracle.fresh_file_flows(inst, rx, start=count)
            assert stop(proc) == 0
        verdict = oracle.check(inst, rx, ids)
        dropped = rx.stats()["dropped_injected"]
    lines = oracle.log_lines(inst.log(), "WARNING uploader: uploader offline")
    say(
        "lost",
        f"{count} reports, {dropped} answers lost: all received in {took:.1f} s, lost 0, "
        f"duplicates {verdict.duplicates}, offline WARNING lines {len(lines)}",
    )


def backlog(root: Path, scale: float) -> None:
    count = int(10_000 * scale)
    with oracle.receiving(root / "backlog-rx.db") as rx:
        inst = Instance(root, "backlog", server_url=rx.url)
        ids = set(inst.drop(count))
        with running(inst.serve()) as proc:
            started = time.monotonic()
            oracle.drained(inst, rx, ids, timeout=600)
            took = time.monotonic() - started
            peak = oracle.rss_mib(proc.pid)
            ids |= oracle.fresh_file_flows(inst, rx, start=count)
            assert stop(proc) == 0
        oracle.check(inst, rx, ids)
    say(
        "backlog",
        f"{count} files waiting at start: all received in {took:.1f} s, peak RSS {peak:.0f} MiB",
    )


def burst(root: Path, scale: float) -> None:
    count = int(20_000 * scale)
    with oracle.receiving(root / "burst-rx.db") as rx:
        inst = Instance(root, "burst", server_url=rx.url)
        with running(inst.serve()) as proc:
            inst.wait_ready()
            started = time.monotonic()
            ids = set(inst.drop(count))
            oracle.drained(inst, rx, ids, timeout=900)
            took = time.monotonic() - started
            peak = oracle.rss_mib(proc.pid)
            assert stop(proc) == 0
        oracle.check(inst, rx, ids)
    overflow = bool(oracle.log_lines(inst.log(), "overflow"))
    say(
        "burst",
        f"{count} renamed into a running instance: all received {took:.1f} s after the first, "
        f"overflow logged: {'yes' if overflow else 'no'}, peak RSS {peak:.0f} MiB, lost 0",
    )


def sigterm(root: Path, scale: float) -> None:
    count = int(6000 * scale)
    slow = ReceiverProcess(root / "sigterm-rx.db", "--latency-ms", "20")
    try:
        inst = Instance(root, "sigterm", server_url=slow.url)
        ids = set(inst.drop(count))
        with running(inst.serve()) as proc:
            wait_for(lambda: slow.stats()["received"] >= count // 4, timeout=300, what="a quarter")
            code, took = oracle.exit_time(proc, signal.SIGTERM)
        before = slow.stats()["unique"]
        with running(inst.serve()) as proc:
            oracle.drained(inst, slow, ids, timeout=600)
            assert stop(proc) == 0
        oracle.check(inst, slow, ids)
    finally:
        slow.stop()
    say(
        "sigterm",
        f"SIGTERM with {before} of {count} received: exit {code} in {took:.2f} s; "
        f"restart drained the rest, lost 0",
    )


def notify(root: Path, scale: float) -> None:
    path = root / "stuck.sock"
    sock = stuck_socket(path)
    try:
        inst = Instance(root, "notify", server_url=None)
        env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "500000"}
        with running(inst.serve(env=env)) as proc:
            wait_for(lambda: " ready: " in inst.log(), timeout=60, what="the ready line")
            code, took = oracle.exit_time(proc, signal.SIGTERM)
    finally:
        sock.close()
    say("notify", f"notify socket nobody reads: idle stop exit {code} in {took:.2f} s")


SCENARIOS: dict[str, Scenario] = {
    "down": down,
    "lost": lost,
    "backlog": backlog,
    "burst": burst,
    "sigterm": sigterm,
    "notify": notify,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes")
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), default=list(SCENARIOS))
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    failed = False
    for name in args.only:
        with tempfile.TemporaryDirectory(prefix=f"pywats-faults-{name}-") as tmp:
            started = time.monotonic()
            try:
                SCENARIOS[name](Path(tmp), scale)
            except AssertionError as exc:
                failed = True
                say(name, f"FAILED: {exc}")
            finally:
                while harness.OPEN_SOCKETS:  # the fake systemd sockets of the instances
                    harness.OPEN_SOCKETS.pop().close()
            say(name, f"(scenario took {time.monotonic() - started:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
