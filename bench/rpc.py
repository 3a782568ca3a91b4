"""Control-protocol benchmark: ``pywats serve`` and ``pywats receiver`` as real processes,
:class:`~pywats.rpc.client.RpcClient` in this one. Prints figures; not a test.

    .venv/bin/python bench/rpc.py [--files N] [--seconds S] [--rounds N] [--profile FILE]
                                  [--only status|stuck|fan-out]

In order, it prints:

* status rate: ``service.status`` round trips per second from one client (each call waits
  for its answer), then from 10 clients at once, with the CPU time the service and this
  process spent per call; then from one lean client (a blocking socket and wsproto, no
  trio: what the service answers when the client costs little);
* the burst's throughput (N files renamed into the watch folder at once -> time until the
  receiver holds all of them), ``--rounds`` times without and with a subscriber that never
  reads (alternating, so drift on the machine hits both alike), and the ratio of the medians;
* a burst with 10 subscribers reading (in a process of their own, so that reading ten
  streams does not delay the probe) and a probe calling ``service.status`` every 10 ms:
  p50/p99 status latency during the burst, and per subscriber the notifications received,
  the ``events.gap`` notifications and the events they say were dropped.

``--profile FILE`` runs the service under cProfile (written to FILE when it stops) to see
where its time goes; the figures are then slower than without.

Targets (docs/performance.md, 2-core machine): >= 5,000 status calls/s from one client;
p99 status latency during the burst <= 50 ms; burst throughput with the stuck subscriber
within 10 % of without. Every wait is bounded (a timeout fails the run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
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

import attrs
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from pywats.rpc.client import RpcClient
from tests.integration.harness import Instance, ReceiverProcess, report_bytes, running, stop

TICKS = os.sysconf("SC_CLK_TCK")
BURST_TIMEOUT_S = 300.0
"""Longest one burst may take before the run fails."""
SUBSCRIBERS = 10
PROBE_INTERVAL_S = 0.01


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@attrs.define
class Bench:
    """One running service (``pid``) with its receiver, and where to stage files."""

    inst: Instance
    receiver: ReceiverProcess
    root: Path
    pid: int
    files: int
    bursts: int = 0

    @property
    def socket(self) -> Path:
        """The service's control socket."""
        return self.inst.socket()

    def stage(self) -> list[tuple[Path, Path]]:
        """Write one burst's reports beside the watch folder: (staged, target) pairs."""
        self.bursts += 1
        staging = self.root / f"staging-{self.bursts}"
        staging.mkdir()
        moves = []
        for index in range(self.files):
            _, data = report_bytes(self.bursts * 10**6 + index)
            name = f"b{self.bursts}-{index:07d}.json"
            (staging / name).write_bytes(data)
            moves.append((staging / name, self.inst.watch / name))
        return moves

    async def unique(self) -> int:
        """Reports the receiver holds (asked in a thread: the loop keeps serving clients)."""
        stats = await trio.to_thread.run_sync(self.receiver.stats)
        return stats["unique"]

    async def burst(self) -> float:
        """Drop one burst in at once; seconds until the receiver holds all of it."""
        moves = self.stage()
        base = await self.unique()
        started = time.perf_counter()
        for staged, target in moves:
            os.rename(staged, target)
        with trio.fail_after(BURST_TIMEOUT_S):
            while await self.unique() - base < self.files:
                await trio.sleep(0.05)
        return time.perf_counter() - started


async def rate(
    socket: Path, clients: int, seconds: float, pid: int, in_flight: int = 1
) -> tuple[float, float]:
    """``service.status`` round trips per second over ``clients`` connections at once, each
    with ``in_flight`` calls outstanding (tasks sharing the connection, each waiting for
    its answer before it asks again), and the service's CPU milliseconds per call."""
    calls = 0
    async with trio.open_nursery() as nursery:
        ready = trio.Event()
        deadline = [0.0]

        async def caller(client: RpcClient) -> None:
            nonlocal calls
            await ready.wait()
            while time.perf_counter() < deadline[0]:
                await client.call("service.status")
                calls += 1

        async def one() -> None:
            async with RpcClient(socket, timeout_s=10) as client:
                await client.call("service.status")  # connected and warm
                async with trio.open_nursery() as callers:
                    for _ in range(in_flight):
                        callers.start_soon(caller, client)

        for _ in range(clients):
            nursery.start_soon(one)
        await trio.sleep(0.5)
        cpu0, t0 = cpu_seconds(pid), time.perf_counter()
        deadline[0] = t0 + seconds
        ready.set()
    elapsed = time.perf_counter() - t0
    return calls / elapsed, (cpu_seconds(pid) - cpu0) * 1000 / max(calls, 1)


async def status_rates(bench: Bench, seconds: float) -> None:
    """Print the status rate from one client and from 10."""
    with trio.fail_after(seconds * 4 + 30):
        for clients, in_flight in ((1, 1), (1, 4), (1, 8), (10, 1)):
            own0 = time.process_time()
            per_s, serve_ms = await rate(bench.socket, clients, seconds, bench.pid, in_flight)
            own_ms = (time.process_time() - own0) * 1000 / max(per_s * seconds, 1)
            target = " (target >= 5,000)" if clients == 1 else ""
            print(
                f"service.status from {clients} client(s), {in_flight} in flight each:"
                f" {per_s:,.0f} calls/s{target};"
                f" CPU per call: serve {serve_ms:.3f} ms, clients {own_ms:.3f} ms"
            )
    per_s, serve_us, own_us = await trio.to_thread.run_sync(
        lean_rate, bench.socket, seconds, bench.pid
    )
    print(
        f"service.status from 1 lean client (blocking socket + wsproto): {per_s:,.0f} calls/s;"
        f" CPU per call: serve {serve_us / 1000:.3f} ms, client {own_us / 1000:.3f} ms"
    )


def lean_rate(socket_path: Path, seconds: float, pid: int) -> tuple[float, float, float]:
    """``service.status`` round trips per second from one blocking client without trio
    (wsproto on a plain socket), and the CPU microseconds per call of the service and of
    this client: the service's own ceiling for one waiting client."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(socket_path))
        ws = WSConnection(ConnectionType.CLIENT)
        sock.sendall(ws.send(Request(host="localhost", target="/rpc")))
        accepted = False
        while not accepted:
            ws.receive_data(sock.recv(65536))
            accepted = any(isinstance(e, AcceptConnection) for e in ws.events())
        message = ws.send(TextMessage(data='{"jsonrpc":"2.0","id":1,"method":"service.status"}'))

        def call() -> None:
            sock.sendall(message)  # one frame, masked once: the bench measures the service
            while True:
                ws.receive_data(sock.recv(1 << 20))
                if any(isinstance(e, TextMessage) and e.message_finished for e in ws.events()):
                    return

        call()
        calls = 0
        cpu0, own0, t0 = cpu_seconds(pid), time.process_time(), time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            call()
            calls += 1
        elapsed = time.perf_counter() - t0
        serve_us = (cpu_seconds(pid) - cpu0) * 1e6 / calls
        own_us = (time.process_time() - own0) * 1e6 / calls
    return calls / elapsed, serve_us, own_us


async def stuck_ratio(bench: Bench, rounds: int) -> None:
    """Print the burst's throughput without and with a subscriber that never reads."""
    without: list[float] = []
    with_stuck: list[float] = []
    for round_ in range(rounds):
        elapsed = await bench.burst()
        without.append(bench.files / elapsed)
        # notification_buffer=1: the client stops reading the socket after one
        # notification, so the service's send to it blocks and its buffer overflows.
        async with RpcClient(bench.socket, notification_buffer=1) as stuck:
            await stuck.subscribe()
            elapsed = await bench.burst()
            with_stuck.append(bench.files / elapsed)
        print(
            f"  round {round_ + 1}: {without[-1]:,.0f} files/s without,"
            f" {with_stuck[-1]:,.0f} files/s with a stuck subscriber"
        )
    a, b = statistics.median(without), statistics.median(with_stuck)
    print(
        f"burst of {bench.files} files (median of {rounds}): {a:,.0f} files/s without,"
        f" {b:,.0f} files/s with a subscriber that never reads: ratio {b / a:.3f}"
        " (target >= 0.90)"
    )


@attrs.define
class Tally:
    """What one subscriber heard."""

    received: int = 0
    gaps: int = 0
    dropped: int = 0
    seq_holes: int = 0
    last_seq: int | None = None


async def subscribers(socket: Path, count: int, quiet_s: float) -> None:
    """``count`` subscribers that read until the service has been quiet for ``quiet_s``
    after the first notification; prints one JSON line per subscriber (what it heard).

    Run in a process of its own (``--subscribers``) so that reading 10 streams does not
    slow this process's status probe: the probe measures the service, not its client.
    """
    tallies = [Tally() for _ in range(count)]

    async def subscriber(tally: Tally, task_status: trio.TaskStatus[None]) -> None:
        async with RpcClient(socket) as client:
            notes = await client.subscribe()
            tally.last_seq = notes.seq
            task_status.started()
            while True:
                with trio.move_on_after(quiet_s if tally.received else BURST_TIMEOUT_S):
                    note = await notes.__anext__()
                    tally.received += 1
                    if note.method == "events.gap":
                        tally.gaps += 1
                        tally.dropped += int(note.params["dropped"])
                    else:
                        seq = note.params.get("seq")
                        if isinstance(seq, int) and tally.last_seq is not None:
                            tally.seq_holes += max(0, seq - tally.last_seq - 1)
                        if isinstance(seq, int):
                            tally.last_seq = seq
                    continue
                return

    async with trio.open_nursery() as nursery:
        for tally in tallies:
            await nursery.start(subscriber, tally)
        print("ready", flush=True)
    for tally in tallies:
        print(json.dumps(attrs.asdict(tally)), flush=True)


async def fan_out(bench: Bench) -> None:
    """A burst with 10 subscribers (in a process of their own) and a status probe:
    status latency during the burst, and what each subscriber heard."""
    latencies: list[float] = []
    done = trio.Event()
    command = [sys.executable, __file__, "--subscribers", str(SUBSCRIBERS)]
    child = subprocess.Popen(
        [*command, "--socket", str(bench.socket)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        with trio.fail_after(30):
            ready = await trio.to_thread.run_sync(child.stdout.readline)
        if ready.strip() != "ready":
            raise RuntimeError(f"the subscriber process did not start: {ready!r}")

        async def probe() -> None:
            async with RpcClient(bench.socket, timeout_s=10) as client:
                while not done.is_set():
                    t0 = time.perf_counter()
                    await client.call("service.status")
                    latencies.append((time.perf_counter() - t0) * 1000)
                    await trio.sleep(PROBE_INTERVAL_S)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(probe)
            elapsed = await bench.burst()
            done.set()
        with trio.fail_after(BURST_TIMEOUT_S):
            out = await trio.to_thread.run_sync(child.communicate)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    tallies = [Tally(**json.loads(line)) for line in out[0].splitlines() if line.strip()]
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    print(
        f"burst of {bench.files} files with {SUBSCRIBERS} subscribers and a status probe:"
        f" {bench.files / elapsed:,.0f} files/s"
    )
    print(
        f"  service.status latency during the burst over {len(latencies)} calls:"
        f" p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {max(latencies):.2f} ms (target p99 <= 50 ms)"
    )
    received = [t.received for t in tallies]
    print(
        f"  notifications per subscriber: min {min(received):,}, max {max(received):,};"
        f" events.gap: {sum(t.gaps for t in tallies)} in all,"
        f" {sum(t.dropped for t in tallies)} events dropped;"
        f" seq holes: {sum(t.seq_holes for t in tallies)}"
    )


def serve(inst: Instance, profile: Path | None) -> subprocess.Popen[str]:
    """``pywats serve`` for ``inst``, under cProfile if ``profile`` is given."""
    if profile is None:
        return inst.serve()
    inst.started_at = time.monotonic()
    with inst.log_path.open("w") as out:
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "pywats.cli"]
        return subprocess.Popen(
            [*command, "serve", "--instance", inst.name, "--config", str(inst.config)],
            env=inst.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )


def timed(what: str, run: Callable[[], object]) -> None:
    """Run ``run``; print how long it took (to stderr, so figures stay clean)."""
    t0 = time.perf_counter()
    run()
    print(f"[{what}: {time.perf_counter() - t0:.1f} s]", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--files", type=int, default=2000, help="files per burst")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each rate run")
    parser.add_argument("--rounds", type=int, default=3, help="bursts without/with stuck")
    parser.add_argument("--profile", type=Path, help="run the service under cProfile")
    parser.add_argument(
        "--only",
        choices=("status", "stuck", "fan-out"),
        help="run only this part (default: all three)",
    )
    parser.add_argument("--subscribers", type=int, help=argparse.SUPPRESS)  # the child
    parser.add_argument("--socket", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subscribers is not None:
        trio.run(subscribers, args.socket, args.subscribers, 1.0)
        return 0
    print(
        f"pywats rpc benchmark on {platform.node()} ({os.cpu_count()} CPUs),"
        f" Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="pywats-rpc-") as tmp:
        root = Path(tmp)
        receiver = ReceiverProcess(root / "receiver.db")
        try:
            inst = Instance(root, "rpc", server_url=receiver.url)
            with running(serve(inst, args.profile)) as proc:
                inst.wait_ready()
                bench = Bench(inst, receiver, root, proc.pid, args.files)
                if args.only in (None, "status"):
                    timed("status rates", lambda: trio.run(status_rates, bench, args.seconds))
                if args.only in (None, "stuck"):
                    timed("stuck subscriber", lambda: trio.run(stuck_ratio, bench, args.rounds))
                if args.only in (None, "fan-out"):
                    timed("fan-out", lambda: trio.run(fan_out, bench))
                stop(proc, timeout=60)
            inst.notify.close()
        finally:
            receiver.stop()
    if args.profile is not None:
        print(f"profile of the service written to {args.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
