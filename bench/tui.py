"""What ``pywats tui`` writes to its terminal: bytes per second at 80x24, idle and during
a burst of files. Prints figures; not a test.

    .venv/bin/python bench/tui.py [--files N] [--idle-s S] [--refresh S]

It starts ``pywats receiver`` and ``pywats serve`` in a temporary directory (as ``pywats
demo`` does, without its feed), runs ``pywats tui`` on a pseudo-terminal of 80x24 and
counts every byte the TUI writes to it:

* idle: connected, nothing happening, for ``--idle-s`` seconds, on the dashboard;
* burst: ``--files`` small reports dropped into the watch folder at once, from the drop
  until every one has reached the server (plus a second), on the dashboard and then on
  the events screen (the busiest one: a line per event);

and the TUI's CPU time in each phase. Targets (docs/performance.md): at most 2 KB/s
idle and 16 KB/s during a burst of 2,000 files (a 256 kbit/s link carries 32 KB/s).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

# bench/ holds queue.py, named like the stdlib module trio imports: take this script's
# folder off the path (the repository root is where pywats comes from).
if sys.path and os.path.realpath(sys.path[0] or ".") == os.path.dirname(os.path.realpath(__file__)):
    sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from pywats.cli.demo import Demo, make_report

TICKS = os.sysconf("SC_CLK_TCK")


class Terminal:
    """A pseudo-terminal of ``columns`` x ``rows`` whose output is counted."""

    def __init__(self, columns: int = 80, rows: int = 24) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.chunks: list[tuple[float, int]] = []
        self.text = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.chunks.append((time.monotonic(), len(data)))
                self.text += data
                del self.text[:-200_000]

    def bytes_between(self, start: float, end: float) -> int:
        with self._lock:
            return sum(n for at, n in self.chunks if start <= at < end)

    def peak(self, start: float, end: float, window: float = 1.0) -> int:
        """The most bytes in any ``window`` seconds between ``start`` and ``end``."""
        with self._lock:
            chunks = [(at, n) for at, n in self.chunks if start <= at < end]
        best = 0
        for index, (at, _) in enumerate(chunks):
            best = max(best, sum(n for t, n in chunks[index:] if t < at + window))
        return best

    def shows(self, text: str) -> bool:
        with self._lock:
            return text.encode() in self.text

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def burst(demo: Demo, term: Terminal, files: int, start: int, pid: int) -> tuple[float, ...]:
    client = httpx.Client(base_url=demo.receiver_url, timeout=10)
    before = client.get("/stats").json()["unique"]
    cpu0 = cpu_s(pid)
    began = time.monotonic()
    for index in range(start, start + files):
        data = json.dumps(make_report(index, failing=False, now=time.time())).encode()
        tmp = demo.watch / f".b{index}.tmp"
        tmp.write_bytes(data)
        tmp.rename(demo.watch / f"b{index:06d}.json")
    wait(lambda: client.get("/stats").json()["unique"] >= before + files, 300, "the uploads")
    time.sleep(1.0)  # the last redraws
    ended = time.monotonic()
    client.close()
    total = term.bytes_between(began, ended)
    return (
        ended - began,
        total / (ended - began),
        float(term.peak(began, ended)),
        (cpu_s(pid) - cpu0) / (ended - began) * 100,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument("--refresh", type=float, default=0.5)
    parser.add_argument(
        "--colors",
        choices=["256", "truecolor"],
        default="256",
        help="what the terminal says it can do (ssh forwards TERM, rarely COLORTERM)",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="pywats-bench-tui-"))
    workdir.rmdir()
    demo = Demo(workdir, rate=1.0, quiet=True)
    demo.open()
    term = Terminal()
    env = demo.env() | {"TERM": "xterm-256color"}
    env.pop("COLORTERM", None)
    if args.colors == "truecolor":
        env["COLORTERM"] = "truecolor"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pywats.cli", "tui", "--instance", "demo",
         "--refresh", str(args.refresh)],
        stdin=term.slave, stdout=term.slave, stderr=term.slave, env=env,
        start_new_session=True,
    )  # fmt: skip
    os.close(term.slave)
    try:
        wait(lambda: term.shows("running"), 30, "the TUI to connect")
        time.sleep(3)  # start-up drawing is not idle
        cpu0, start = cpu_s(proc.pid), time.monotonic()
        time.sleep(args.idle_s)
        end = time.monotonic()
        idle = term.bytes_between(start, end) / (end - start)
        idle_cpu = (cpu_s(proc.pid) - cpu0) / (end - start) * 100
        dash = burst(demo, term, args.files, 0, proc.pid)
        term.send("5")  # the events screen
        time.sleep(2)
        events = burst(demo, term, args.files, args.files, proc.pid)
        term.send("q")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        demo.close()
    print(
        f"pywats tui at 80x24, --refresh {args.refresh:g}, {args.colors} colours;"
        f" {os.cpu_count()} CPUs"
    )
    print(f"idle ({args.idle_s:g} s, dashboard): {idle:,.0f} bytes/s, TUI CPU {idle_cpu:.1f} %")
    for name, (took, rate, peak, cpu) in (("dashboard", dash), ("events", events)):
        print(
            f"burst of {args.files} files on the {name} screen ({took:.1f} s to upload):"
            f" {rate:,.0f} bytes/s on average, {peak:,.0f} in the busiest second,"
            f" TUI CPU {cpu:.0f} %"
        )
    print(f"exit {proc.returncode}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
