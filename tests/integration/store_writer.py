"""Queue reports forever, printing each id only after its commit returned.

Run by ``test_store_kill.py`` as ``python store_writer.py DB``: a fork server that, for
each seed it reads on stdin, forks a writer, prints ``pid N``, and once that writer is
gone prints ``exit CODE``. The test kills the writer with SIGKILL at a random moment. Every
id on stdout is an acknowledged report: it must survive. (One interpreter imports trio,
apsw and the store once; each writer is still a process of its own, killed for real.)

Each run first enqueues one report from the same source file (``/fixed/source.json``); the
store must recognise it after the first run, however the earlier runs died.
"""

from __future__ import annotations

import os
import random
import sys
import uuid

import trio

from pywats.store import NewReport, SourceFile, Store

FIXED_SOURCE = SourceFile(hash="fixed-source-hash", path="/fixed/source.json", size=1, mtime=0)


def new_report(rng: random.Random) -> NewReport:
    report_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    body = b'{"id": "%s", "pad": "%s"}' % (report_id.encode(), b"x" * rng.randrange(100, 5000))
    return NewReport(
        id=report_id,
        body=body,
        pn="PN-KILL",
        sn=f"SN-{rng.randrange(10**6):06d}",
        result="Passed",
        start="2024-05-01T10:00:00+00:00",
        converter="kill-test",
    )


def new_source(rng: random.Random) -> SourceFile:
    return SourceFile(hash=uuid.UUID(int=rng.getrandbits(128)).hex, path="/in/f", size=1, mtime=0)


def emit(ids: list[str]) -> None:
    if ids:
        sys.stdout.write("".join(f"{i}\n" for i in ids))
        sys.stdout.flush()


async def main(path: str, seed: int) -> None:
    rng = random.Random(seed)
    async with await Store.open(path) as store:
        first = await store.enqueue([new_report(rng)], FIXED_SOURCE)
        emit(list(first.ids))
        while True:
            roll = rng.random()
            if roll < 0.45:
                reports = [new_report(rng) for _ in range(rng.randint(1, 3))]
                result = await store.enqueue(reports, new_source(rng))
                emit(list(result.ids))
            elif roll < 0.9:
                items = [
                    ([new_report(rng) for _ in range(rng.randint(1, 2))], new_source(rng))
                    for _ in range(rng.randint(2, 50))
                ]
                results = await store.enqueue_batch(items)
                emit([i for r in results for i in r.ids])
            else:
                # Some upload traffic too, so kills also land in claim/outcome commits.
                for claim in await store.claim(rng.randint(1, 20)):
                    if rng.random() < 0.8:
                        await store.mark_done(claim.id, status=200)
                    else:
                        await store.retry_later(claim.id, delay_s=0, error="503", status=503)


def serve(path: str) -> None:
    """Fork a writer for each seed on stdin (the parent never runs trio: a child gets a
    clean process)."""
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                trio.run(main, path, int(line))
            finally:
                os._exit(1)  # main never returns; a writer that fails says so on stderr
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)


if __name__ == "__main__":
    serve(sys.argv[1])
