"""The event hub: stamping, bounded buffers that drop the oldest and say so, coalescing,
stream ids, and a publisher that is never slowed or broken by a subscriber."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import ClassVar

import attrs
import pytest
import trio
import trio.testing

from pywats.events import (
    ComponentStatus,
    EventHub,
    FileRejected,
    Gap,
    Recorder,
    ReportQueued,
    Stats,
)


def queued(n: int) -> ReportQueued:
    return ReportQueued(
        report_id=f"id-{n}",
        folder="ict",
        source=f"/in/{n}.json",
        converter="wsjf",
        pn="PN-1",
        sn=f"SN{n}",
        result="P",
    )


def drain(subscription: object) -> list[object]:
    out = []
    while True:
        try:
            out.append(subscription.receive_nowait())  # type: ignore[attr-defined]
        except (trio.WouldBlock, trio.EndOfChannel):
            return out


def test_publish_stamps_sequence_and_time() -> None:
    hub = EventHub(clock=lambda: 1234.5)
    with hub.subscribe() as sub:
        first, second = hub.publish(queued(1)), hub.publish(queued(2))
        assert (first.seq, second.seq, first.at) == (1, 2, 1234.5)
        assert drain(sub) == [first, second]
    assert hub.last_seq == 2


def test_every_start_has_its_own_stream_id() -> None:
    assert EventHub().stream_id != EventHub().stream_id


def test_a_full_buffer_drops_the_oldest_and_says_how_many() -> None:
    hub = EventHub()
    with hub.subscribe(buffer=3) as sub:
        sent = [hub.publish(queued(n)) for n in range(10)]
        got = drain(sub)
    assert got[0] == Gap(dropped=7, at=got[0].at)  # type: ignore[attr-defined]
    assert got[1:] == sent[-3:]  # the newest are kept, in order
    assert sub.dropped == 7


def test_status_events_coalesce_to_the_latest_per_component() -> None:
    hub = EventHub()
    with hub.subscribe(buffer=5) as sub:
        hub.publish(ComponentStatus(component="uploader", state="online"))
        hub.publish(queued(1))
        hub.publish(ComponentStatus(component="uploader", state="offline", reason="refused"))
        hub.publish(ComponentStatus(component="service", state="running"))
        latest = hub.publish(ComponentStatus(component="uploader", state="online"))
        for n in range(3):
            hub.publish(Stats(queue={"pending": n}))
        got = drain(sub)
    assert [type(e).__name__ for e in got] == [
        "ReportQueued",
        "ComponentStatus",
        "ComponentStatus",
        "Stats",
    ]
    assert got[2] == latest
    assert got[3].queue == {"pending": 2}  # type: ignore[attr-defined]
    assert sub.dropped == 0  # coalescing is not dropping


def test_a_subscriber_that_never_reads_costs_the_publisher_nothing_but_a_bounded_buffer() -> None:
    hub = EventHub()
    stuck = hub.subscribe(buffer=100)
    reader = hub.subscribe(buffer=200_000)
    for n in range(100_000):
        hub.publish(queued(n))
    assert stuck.pending == 101  # its 100 newest and one gap
    assert stuck.dropped == 99_900
    assert reader.pending == 100_000
    assert reader.dropped == 0


@attrs.frozen(kw_only=True)
class Broken(ComponentStatus):
    coalesce: ClassVar[bool] = True

    def key(self) -> Hashable:
        raise RuntimeError("a bug in an event type")


def test_publish_never_raises_into_the_publisher(caplog: pytest.LogCaptureFixture) -> None:
    hub = EventHub()
    with hub.subscribe() as sub, caplog.at_level(logging.ERROR, "pywats.events"):
        hub.publish(Broken(component="x", state="y"))
        hub.publish(Broken(component="x", state="y"))
        ok = hub.publish(queued(1))
    assert drain(sub)[-1] == ok  # the hub still works for the others
    assert len([r for r in caplog.records if "cannot deliver" in r.message]) == 1


async def test_receive_waits_and_a_closed_subscription_ends_iteration() -> None:
    hub = EventHub()
    got: list[object] = []
    sub = hub.subscribe()

    async def read() -> None:
        async for event in sub:
            got.append(event)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await trio.testing.wait_all_tasks_blocked()
        hub.publish(queued(1))
        await trio.testing.wait_all_tasks_blocked()
        assert len(got) == 1
        hub.publish(queued(2))
        sub.close()  # the backlog is still delivered, then the loop ends
    assert [e.seq for e in got] == [1, 2]  # type: ignore[attr-defined]
    assert hub.subscribers == 0


def test_recorder_logs_the_line_and_publishes_the_event(caplog: pytest.LogCaptureFixture) -> None:
    hub = EventHub()
    record = Recorder(hub, logging.getLogger("pywats.pipeline"))
    event = FileRejected(
        folder="ict",
        source="/in/a.json",
        converter="wsjf",
        reason="not JSON",
        field="line 3",
        error_file="/err/a.json",
    )
    with hub.subscribe() as sub, caplog.at_level(logging.WARNING, "pywats.pipeline"):
        stamped = record(event, logging.WARNING)
    assert drain(sub) == [stamped]
    [line] = [r for r in caplog.records if r.name == "pywats.pipeline"]
    assert line.getMessage() == (
        "ict: could not convert /in/a.json with wsjf: not JSON at line 3; moved to /err/a.json"
    )
