"""A subscriber that never reads while 2,000 files flow through an in-process service.

The service's own control socket has the default buffers; a second :class:`RpcServer` on
the same view has a small subscription buffer and kernel send buffer, so the stuck
client's loss comes early and its bounds are easy to state. What is asserted is
behaviour (every file converted and queued, the gap told with its count, the stuck
connection's backlog bounded, the service answering throughout), not a rate: the rate
is the benchmark's (``bench/rpc.py``).
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios
from pathlib import Path

import trio

from pywats.events import FileOutcome, FileProcessed, ReportQueued, Subscription
from pywats.rpc.client import RpcClient
from pywats.rpc.server import RpcServer, RpcSettings
from pywats.service import Service
from tests.integration.harness import report_bytes
from tests.test_service import make_plan

FILES = 2000
LIMIT_S = 60.0
"""Generous: the files take a few seconds on a 2-core machine."""
BUFFER = 10
"""The small server's subscription buffer (events)."""
SEND_BUFFER = 4096
"""The small server's ``SO_SNDBUF`` per connection."""
MAX_UNREAD_BYTES = 64 * 1024
"""What may sit unread in the kernel for the stuck client: the send buffer (which Linux
doubles) plus its bookkeeping, far below what 2,000 files' notifications would take."""


def unread_bytes(sock: object) -> int:
    """Bytes waiting in the kernel to be read on ``sock`` (``FIONREAD``)."""
    fileno = sock.fileno()  # type: ignore[attr-defined]
    raw = fcntl.ioctl(fileno, termios.FIONREAD, struct.pack("i", 0))
    count: int = struct.unpack("i", raw)[0]
    return count


def stage(folder: Path, count: int) -> list[tuple[Path, Path]]:
    """Write ``count`` reports into a staging folder beside ``folder``: (staged, target)."""
    staging = folder.parent / "staging"
    staging.mkdir()
    moves = []
    for index in range(count):
        _, data = report_bytes(index)
        name = f"r{index:05d}.json"
        (staging / name).write_bytes(data)
        moves.append((staging / name, folder / name))
    return moves


async def test_a_subscriber_that_never_reads_does_not_hold_up_2000_files(
    tmp_path: Path,
) -> None:
    service = Service(make_plan(tmp_path, None), handle_signals=False)
    small = RpcServer(
        service.view,
        RpcSettings(tmp_path / "run" / "small.sock"),
        subscription_buffer=BUFFER,
        send_buffer=SEND_BUFFER,
    )
    (tmp_path / "in").mkdir()
    moves = stage(tmp_path / "in", FILES)
    with trio.fail_after(LIMIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            await nursery.start(small.run)
            async with (
                RpcClient(small.path, notification_buffer=1) as stuck,
                RpcClient(small.path) as healthy,
            ):
                notes = await stuck.subscribe()
                # The one subscription the small server holds (the stuck client's).
                stuck_subscription: Subscription = service.hub._subscribers[-1]
                assert service.hub.subscribers == 1
                assert stuck._stream is not None
                stuck_socket = stuck._stream.socket
                with service.hub.subscribe(buffer=10 * FILES) as watch:
                    for staged, target in moves:
                        os.rename(staged, target)
                    processed = queued = 0
                    most_pending = most_unread = 0
                    async for event in watch:
                        converted = (
                            isinstance(event, FileProcessed)
                            and event.outcome == FileOutcome.CONVERTED
                        )
                        processed += converted
                        queued += isinstance(event, ReportQueued)
                        most_pending = max(most_pending, stuck_subscription.pending)
                        most_unread = max(most_unread, unread_bytes(stuck_socket))
                        if converted and processed % 500 == 0:
                            # The service answers other clients on the same server.
                            with trio.fail_after(10):
                                status = await healthy.call("service.status")
                            assert status["state"] == "running"
                        if processed == FILES and queued == FILES:
                            break
                assert watch.dropped == 0
                stats = await healthy.call("queue.stats")
                assert stats["pending"] == FILES
                assert sorted(p.name for p in (tmp_path / "done").iterdir()) == sorted(
                    t.name for _, t in moves
                )
                # Bounded: the hub's buffer for the stuck client, and the kernel's.
                assert most_pending <= BUFFER + 1
                assert 0 < most_unread <= MAX_UNREAD_BYTES
                # The stuck client reads at last: what it lost is told, with the count,
                # and the notifications after the gap run on to the hub's latest event.
                lost = stuck_subscription.dropped
                assert lost >= 2 * FILES - BUFFER - 100  # two events a file at the least
                told = 0
                last_seq = service.hub.last_seq
                async for note in notes:
                    if note.method == "events.gap":
                        told += note.params["dropped"]
                    elif note.params.get("seq") == last_seq:
                        break
                assert told == stuck_subscription.dropped
            service.request_stop()
            nursery.cancel_scope.cancel()  # the small server runs until cancelled
