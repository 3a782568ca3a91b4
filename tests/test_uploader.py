"""The uploader against the real ``pywats receiver`` (in-process, real loopback sockets)
and a real queue database in tmp_path.

Test rules: every test runs on a mock clock that jumps when all trio tasks have been
blocked for a moment of real time with no thread call (the store's) in flight
(``tests/clock.py``), and every test body is bounded by a
virtual ``trio.fail_after``. The store's wall clock follows the virtual clock, so
``next_attempt_at`` and ``Retry-After`` line up with trio's time. Timing assertions are
one-sided ("not before 7 s"). Reports get fresh uuid ids; each receiver has its own
in-memory database and port.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import socket
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio
import trio.testing

from pywats.errors import StoreError
from pywats.events import (
    ComponentStatus,
    EventHub,
    ReportFailed,
    ReportRetrying,
    ReportUploaded,
)
from pywats.receiver import SERVER_VERSION, Receiver, ReceiverConfig
from pywats.store import NewReport, QueueState, Store
from pywats.upload import Uploader, UploaderConfig, UploaderState, UploaderStatus
from tests.report.minimal import uut

T0 = 1_700_000_000.0
TOKEN = "cHl3YXRzOnNlY3JldC10b2tlbi0xMjM0"  # looks like the real thing: base64 text
LIMIT_S = 36_000  # virtual seconds; only a hang gets near it


def wall() -> float:
    """The store's wall clock: follows trio's (virtual) clock."""
    return T0 + trio.current_time()


@pytest.fixture
async def store(tmp_path: Path, autojump: trio.testing.MockClock) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "queue.db", clock=wall) as opened:
        yield opened


def new_report(**changes: Any) -> NewReport:
    doc = uut()
    doc["id"] = str(uuid.uuid4())
    doc.update(changes)
    # Indented: byte identity at the receiver proves the stored bytes were sent as is.
    body = json.dumps(doc, indent=2).encode()
    return NewReport(
        id=doc["id"],
        body=body,
        pn=doc["pn"],
        sn=doc["sn"],
        result="P",
        start=doc["start"],
        converter="test",
    )


async def enqueue(store: Store, count: int = 1, **changes: Any) -> list[NewReport]:
    reports = [new_report(**changes) for _ in range(count)]
    for report in reports:
        await store.enqueue([report])
    return reports


def config(url: str, **options: Any) -> UploaderConfig:
    return UploaderConfig(url=url, **{"retry_base_s": 1.0, "retry_max_s": 10.0, **options})


@asynccontextmanager
async def receiving(**options: Any) -> AsyncIterator[Receiver]:
    receiver = Receiver(ReceiverConfig(**options))
    async with trio.open_nursery() as nursery:
        await nursery.start(receiver.run)
        yield receiver
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def uploading(
    store: Store, upload_config: UploaderConfig, **options: Any
) -> AsyncIterator[Uploader]:
    uploader = Uploader(store, upload_config, **options)
    with trio.fail_after(LIMIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(uploader.run)
            yield uploader
            await uploader.shutdown(0)


async def until(uploader: Uploader, condition: Callable[[UploaderStatus], bool]) -> UploaderStatus:
    """Wait (without advancing time by itself) until the status satisfies ``condition``."""
    seen = uploader.status_generation
    while not condition(status := uploader.status()):
        seen = await uploader.wait_status_changed(seen)
    return status


class WorstCase(random.Random):
    """Every full-jitter draw is its upper bound (exact times)."""

    def uniform(self, a: float, b: float) -> float:
        return b


async def state(store: Store, report: NewReport) -> tuple[QueueState, int]:
    got = await store.get(report.id)
    return got.state, got.attempts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Recording(httpx.AsyncBaseTransport):
    """A real network transport that notes every request (virtual time, method, path)
    and how many health probes were out at once."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[tuple[float, str, str]] = []
        self.probes_out = 0
        self.most_probes_out = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        probe = request.url.path.endswith("/App/Version")
        self.requests.append((trio.current_time(), request.method, request.url.path))
        if probe:
            self.probes_out += 1
            self.most_probes_out = max(self.most_probes_out, self.probes_out)
        try:
            return await self.inner.handle_async_request(request)
        finally:
            if probe:
                self.probes_out -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()

    def count(self, method: str, since: int = 0) -> int:
        """Requests with ``method`` from the ``since``-th request on."""
        return sum(1 for _, m, _ in self.requests[since:] if m == method)


# --- the happy path --------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/", "/api", "/api/", "/API"])
async def test_uploads_exact_bytes_with_the_token_to_any_form_of_base_url(
    store: Store, autojump: trio.testing.MockClock, suffix: str
) -> None:
    async with receiving(token=TOKEN) as receiver:
        reports = await enqueue(store, 3)
        url = f"http://127.0.0.1:{receiver.port}{suffix}"
        async with uploading(store, config(url, token=TOKEN)) as uploader:
            status = await until(uploader, lambda s: s.uploaded == 3)
        for report in reports:
            stored = receiver.get_report(report.id)
            assert stored is not None
            assert stored.body == report.body
            assert await state(store, report) == (QueueState.DONE, 1)
            assert (await store.get(report.id)).last_status == 200
        assert receiver.stats().received == 3
    assert status.state is UploaderState.ONLINE
    assert status.server_version == SERVER_VERSION
    assert status.latency_ms is not None
    assert status.server_url == url
    assert (status.failed, status.retried, status.last_error) == (0, 0, None)


@pytest.fixture
def slow_jump() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=1.0)


async def test_a_queued_report_is_uploaded_without_waiting(
    tmp_path: Path, slow_jump: trio.testing.MockClock
) -> None:
    async with (
        await Store.open(tmp_path / "queue.db", clock=wall) as store,
        receiving() as receiver,
        uploading(store, config(f"http://127.0.0.1:{receiver.port}")) as uploader,
    ):
        await until(uploader, lambda s: s.state is UploaderState.ONLINE)
        await trio.testing.wait_all_tasks_blocked()
        queued_at = trio.current_time()
        [report] = await enqueue(store)
        await until(uploader, lambda s: s.uploaded == 1)
        # No jump happened: nothing in the uploader waited on a timer.
        assert trio.current_time() - queued_at < 1.0
        assert receiver.get_report(report.id) is not None


# --- permanent rejections --------------------------------------------------------------


async def test_400_fails_with_the_message_and_does_not_hold_up_the_rest(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    bad = new_report()
    doc = json.loads(bad.body)
    doc["root"]["steps"][0]["numericMeas"][0]["compOp"] = "BETWEEN"
    bad = attrs.evolve(bad, body=json.dumps(doc).encode())
    await store.enqueue([bad])
    good = await enqueue(store, 4)
    async with (
        receiving() as receiver,
        uploading(store, config(f"http://127.0.0.1:{receiver.port}", workers=1)) as uploader,
    ):
        status = await until(uploader, lambda s: s.uploaded + s.failed == 5)
    assert (status.uploaded, status.failed, status.retried) == (4, 1, 0)
    got = await store.get(bad.id)
    assert (got.state, got.attempts, got.last_status) == (QueueState.FAILED, 1, 400)
    assert got.last_error is not None
    assert got.last_error.startswith("400 Bad Request: root.steps[0].numericMeas[0].compOp")
    assert "\n" not in got.last_error
    assert status.last_error is not None
    assert bad.id in status.last_error
    for report in good:
        assert await state(store, report) == (QueueState.DONE, 1)
    assert status.state is UploaderState.ONLINE


async def test_413_fails(store: Store, autojump: trio.testing.MockClock) -> None:
    [big] = await enqueue(store, 1, location="x" * 4000)
    [small] = await enqueue(store, 1)
    async with (
        receiving(max_body_bytes=3000) as receiver,
        uploading(store, config(f"http://127.0.0.1:{receiver.port}")) as uploader,
    ):
        status = await until(uploader, lambda s: s.uploaded + s.failed == 2)
    got = await store.get(big.id)
    assert (got.state, got.last_status) == (QueueState.FAILED, 413)
    assert got.last_error is not None
    assert "larger than the limit of 3000 bytes" in got.last_error
    assert await state(store, small) == (QueueState.DONE, 1)
    assert (status.failed, status.uploaded) == (1, 1)


async def test_422_fails(store: Store, autojump: trio.testing.MockClock) -> None:
    [report] = await enqueue(store)
    async with (
        receiving(fail_first=1, fail_first_status=422) as receiver,
        uploading(store, config(f"http://127.0.0.1:{receiver.port}")) as uploader,
    ):
        await until(uploader, lambda s: s.failed == 1)
    got = await store.get(report.id)
    assert (got.state, got.last_status) == (QueueState.FAILED, 422)
    assert got.last_error == (
        "422 Unprocessable Entity: injected failure (422) from pywats receiver"
    )


# --- pauses ----------------------------------------------------------------------------


async def test_refused_token_pauses_until_reconfigured_then_drains(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    reports = await enqueue(store, 3)
    async with receiving(token=TOKEN) as receiver:
        url = f"http://127.0.0.1:{receiver.port}"
        async with uploading(store, config(url, token="d3Jvbmc6dG9rZW4=")) as uploader:
            status = await until(uploader, lambda s: s.state is UploaderState.PAUSED)
            assert "refused the token" in status.reason
            assert "401" in status.reason
            # Paused is paused: time passes, nothing is sent, nothing fails.
            await trio.sleep(3600)
            assert uploader.status().state is UploaderState.PAUSED
            for report in reports:
                assert await state(store, report) == (QueueState.PENDING, 0)
            assert uploader.status().failed == 0

            uploader.reconfigure(config(url, token=TOKEN))
            status = await until(uploader, lambda s: s.uploaded == 3)
        assert status.state is UploaderState.ONLINE
        assert receiver.stats().unique == 3
    for report in reports:
        assert await state(store, report) == (QueueState.DONE, 1)


async def test_401_on_upload_pauses_releases_the_report_and_resume_drains(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    reports = await enqueue(store, 3)
    async with (
        receiving(fail_first=1, fail_first_status=401) as receiver,
        # The paused server is asked again after retry_base_s: long enough here that the
        # operator's resume below comes first, however slowly the row is written.
        uploading(
            store,
            config(
                f"http://127.0.0.1:{receiver.port}", workers=1, retry_base_s=60, retry_max_s=120
            ),
        ) as uploader,
    ):
        status = await until(uploader, lambda s: s.state is UploaderState.PAUSED)
        assert "refused the token" in status.reason
        # The refused report is pending as if never tried: no attempt, no schedule. (The
        # status changes first, so no new upload starts; then the row is written.)
        while (got := await store.get(reports[0].id)).state is QueueState.UPLOADING:
            await trio.sleep(0.01)
        assert (got.state, got.attempts, got.next_attempt_at, got.last_error) == (
            QueueState.PENDING,
            0,
            got.created_at,
            None,
        )
        stats = await store.stats()
        assert (stats.failed, stats.uploading) == (0, 0)
        uploader.resume()
        status = await until(uploader, lambda s: s.uploaded == 3)
    assert status.failed == 0
    assert receiver.stats().unique == 3


async def test_403_pauses(store: Store, autojump: trio.testing.MockClock) -> None:
    [report] = await enqueue(store)
    async with (
        receiving(fail_first=1000, fail_first_status=403, fail_health=True) as receiver,
        uploading(store, config(f"http://127.0.0.1:{receiver.port}"), rng=WorstCase()) as uploader,
    ):
        status = await until(uploader, lambda s: s.state is UploaderState.PAUSED)
        assert "refused the token (403 Forbidden" in status.reason
        assert await state(store, report) == (QueueState.PENDING, 0)
        await trio.sleep(3600)
        assert uploader.status().state is UploaderState.PAUSED
        # An hour of refusals, asked again after 1, 2, 4 ... 256 s and then every 5
        # minutes: the first upload, 9 + 10 probes; and the report has no attempt.
        assert receiver.stats().failed_injected == 1 + 9 + 10
        assert await state(store, report) == (QueueState.PENDING, 0)
        receiver.set_faults()
        uploader.resume()
        await until(uploader, lambda s: s.uploaded == 1)


async def test_a_refused_token_is_asked_again_and_uploads_resume_by_themselves(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    # The token is fixed on the server's side (the first six requests, probes included,
    # are refused; then it is accepted): nobody at the station does anything.
    reports = await enqueue(store, 5)
    async with (
        receiving(fail_first=6, fail_first_status=401, fail_health=True) as receiver,
        uploading(
            store, config(f"http://127.0.0.1:{receiver.port}", workers=2), rng=WorstCase()
        ) as uploader,
    ):
        await until(uploader, lambda s: s.state is UploaderState.PAUSED)
        started = trio.current_time()
        status = await until(uploader, lambda s: s.uploaded == 5)
        # One upload and five asks refused, the sixth ask answered: 1 + 2 + 4 + 8 + 16 +
        # 32 s of doubling backoff (plus the requests' own time on the virtual clock).
        assert 63 <= trio.current_time() - started <= 63 + 1
    assert status.state is UploaderState.ONLINE
    assert receiver.stats().failed_injected == 6
    assert receiver.stats().unique == 5
    for report in reports:
        assert (await state(store, report))[0] is QueueState.DONE


async def test_404_on_submit_pauses_saying_the_url_looks_wrong(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    [report] = await enqueue(store)
    async with (
        receiving(fail_first=1, fail_first_status=404) as receiver,
        uploading(store, config(f"http://127.0.0.1:{receiver.port}")) as uploader,
    ):
        status = await until(uploader, lambda s: s.state is UploaderState.PAUSED)
    assert "URL looks wrong" in status.reason
    assert "/api/Report/WSJF" in status.reason
    assert await state(store, report) == (QueueState.PENDING, 0)
    assert status.failed == 0


async def test_a_url_to_the_wrong_place_pauses_at_the_probe(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    [report] = await enqueue(store)
    async with receiving() as receiver:
        url = f"http://127.0.0.1:{receiver.port}/not-wats"
        async with uploading(store, config(url)) as uploader:
            status = await until(uploader, lambda s: s.state is UploaderState.PAUSED)
            assert "URL looks wrong" in status.reason
            assert "/not-wats/api/App/Version" in status.reason
            uploader.reconfigure(config(f"http://127.0.0.1:{receiver.port}/"))
            await until(uploader, lambda s: s.uploaded == 1)
    assert await state(store, report) == (QueueState.DONE, 1)


# --- transient failures ----------------------------------------------------------------


async def test_every_outcome_is_an_event_and_a_stuck_subscriber_slows_nothing(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    hub = EventHub()
    stuck = hub.subscribe(buffer=1)  # never read
    with hub.subscribe(buffer=10_000) as watching:
        async with (
            receiving(fail_first=2, fail_first_status=503) as receiver,
            uploading(store, config(receiver.url), hub=hub) as uploader,
        ):
            bad = attrs.evolve(new_report(), body=b"{}")  # not a report: 400
            await store.enqueue([bad])
            good = await enqueue(store, 30)
            status = await until(uploader, lambda s: s.uploaded == 30 and s.failed == 1)
        events = []
        while True:
            try:
                events.append(watching.receive_nowait())
            except trio.WouldBlock:
                break
    uploaded = [e for e in events if isinstance(e, ReportUploaded)]
    assert sorted(e.report_id for e in uploaded) == sorted(r.id for r in good)
    assert uploaded[0].sn.startswith("SN")  # what a person needs to recognise it
    [failed] = [e for e in events if isinstance(e, ReportFailed)]
    assert (failed.report_id, failed.status) == (bad.id, 400)
    retrying = [e for e in events if isinstance(e, ReportRetrying)]
    assert len(retrying) == status.retried >= 2
    assert all(e.status == 503 for e in retrying)
    # Status coalesces: a reader that is behind sees only the latest state.
    states = [(e.state, e.reason) for e in events if isinstance(e, ComponentStatus)]
    assert states == [("offline", "stopped")]
    # The stuck one holds its newest event and a count of the rest, nothing more.
    assert stuck.pending == 2
    assert stuck.dropped >= len(uploaded)


@pytest.mark.parametrize("seed", range(3))
async def test_a_5_s_burst_of_500s_with_uploads_in_flight_is_over_within_2_s(
    store: Store, autojump: trio.testing.MockClock, seed: int
) -> None:
    # On main before the health machine, every in-flight failure raised the hold
    # (0.6 s ... 233 s within milliseconds) and recovery took up to minutes.
    recording = Recording()
    async with receiving(latency_s=0.05) as receiver:  # so uploads are in flight
        upload_config = config(receiver.url, workers=5, retry_max_s=300.0)
        async with uploading(
            store, upload_config, transport=recording, rng=random.Random(seed)
        ) as uploader:
            await until(uploader, lambda s: s.state is UploaderState.ONLINE)
            reports = await enqueue(store, 60)
            await until(uploader, lambda s: s.uploaded >= 5 and s.in_flight == 5)
            receiver.set_faults(fail_rate=1.0, fail_status=500)
            outage_began = len(recording.requests)
            await trio.sleep(5)
            receiver.set_faults()  # healthy again
            healed, during = trio.current_time(), len(recording.requests)
            status = await until(uploader, lambda s: s.uploaded == 60)
            recovery = trio.current_time() - healed
    assert recovery <= 2.0
    assert receiver.stats().unique == 60
    assert status.failed == 0
    # One outage, not one per answer: after the five in flight, one trial at a time.
    posts = recording.count("POST", since=outage_began) - recording.count("POST", since=during)
    assert posts <= 5 / 0.05  # one trial out at a time, not five
    # The five in flight, then one trial per hold (at least ~0.3 s apart on average).
    assert receiver.stats().failed_injected <= 5 + 12
    for report in reports:
        assert (await store.get(report.id)).state is QueueState.DONE


async def test_503_with_retry_after_is_not_retried_before_it(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    [report] = await enqueue(store)
    async with (
        receiving(fail_first=1, fail_first_status=503, retry_after="7") as receiver,
        uploading(store, config(f"http://127.0.0.1:{receiver.port}")) as uploader,
    ):
        status = await until(uploader, lambda s: s.retried == 1)
        failed_at = trio.current_time()
        got = await store.get(report.id)
        assert (got.state, got.last_status) == (QueueState.PENDING, 503)
        assert got.next_attempt_at == pytest.approx(wall() + 7, abs=0.5)
        assert (
            got.last_error == "503 Service Unavailable: injected failure (503) from pywats receiver"
        )
        assert status.state is UploaderState.ONLINE  # the server answered: not offline
        assert "new uploads wait" in status.reason
        status = await until(uploader, lambda s: s.uploaded == 1)
        assert trio.current_time() - failed_at >= 7.0
    assert await state(store, report) == (QueueState.DONE, 2)
    assert receiver.stats().failed_injected == 1
    assert status.failed == 0


async def test_a_lost_response_is_resent_with_the_same_id(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    reports = await enqueue(store, 12)
    async with (
        receiving(drop_rate=0.4, seed=3) as receiver,
        uploading(store, config(f"http://127.0.0.1:{receiver.port}", workers=1)) as uploader,
    ):
        status = await until(uploader, lambda s: s.uploaded == 12)
        stats = receiver.stats()
        for report in reports:
            stored = receiver.get_report(report.id)
            assert stored is not None
            assert stored.body == report.body
    assert stats.dropped_injected >= 1  # the seed makes this run exercise the resend
    assert stats.unique == 12
    assert stats.duplicates == stats.dropped_injected
    assert status.failed == 0
    assert status.retried == stats.dropped_injected
    queue = await store.stats()
    assert (queue.done, queue.failed, queue.pending, queue.uploading) == (12, 0, 0, 0)


async def test_read_timeout_is_retried(store: Store, autojump: trio.testing.MockClock) -> None:
    [report] = await enqueue(store)
    async with receiving(latency_s=5.0) as receiver:
        url = f"http://127.0.0.1:{receiver.port}"
        async with uploading(store, config(url, read_timeout_s=1.0)) as uploader:
            await until(uploader, lambda s: s.retried >= 1)
            got = await store.get(report.id)
            # Scheduled again; on the virtual clock the next attempt may already be out.
            assert got.state in (QueueState.PENDING, QueueState.UPLOADING)
            assert got.attempts >= 1
            assert got.last_status is None
            assert got.last_error == "no answer within 1 s (read timeout)"
            uploader.reconfigure(config(url, read_timeout_s=30.0))
            status = await until(uploader, lambda s: s.uploaded == 1)
    assert status.failed == 0


async def test_server_down_then_up_drains_with_one_probe_at_a_time(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    port = free_port()
    recording = Recording()
    upload_config = config(f"http://127.0.0.1:{port}", workers=3, retry_max_s=4.0, probe_max_s=4.0)
    async with uploading(store, upload_config, transport=recording) as uploader:
        async with receiving(port=port) as receiver:
            first = await enqueue(store, 5)
            await until(uploader, lambda s: s.uploaded == 5)
            assert receiver.stats().unique == 5
        # The server is gone (nothing listens on the port any more).
        down = len(recording.requests)
        later = await enqueue(store, 10)
        status = await until(uploader, lambda s: s.state is UploaderState.OFFLINE)
        assert "cannot reach" in status.reason
        assert "cannot connect" in status.reason
        await trio.sleep(30)
        # Only the uploads that were already under way went out; then only probes.
        assert recording.count("POST", since=down) <= upload_config.workers
        assert recording.count("GET", since=down) >= 3
        assert recording.most_probes_out == 1
        stats = await store.stats()
        assert (stats.failed, stats.uploading, stats.pending) == (0, 0, 10)
        assert uploader.status().state is UploaderState.OFFLINE

        async with receiving(port=port) as receiver:
            status = await until(uploader, lambda s: s.uploaded == 15)
            assert receiver.stats().unique == 10
    assert recording.most_probes_out == 1
    assert status.failed == 0
    for report in first + later:
        assert (await store.get(report.id)).state is QueueState.DONE


async def test_a_server_that_does_not_speak_http_is_transient(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    # Answers the probe properly, but a submission with something that is not HTTP.
    async def serve(stream: trio.SocketStream) -> None:
        data = b""
        with trio.move_on_after(5):
            while b"\r\n\r\n" not in data:
                data += await stream.receive_some(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(body) < length:
                body += await stream.receive_some(65536)
            if head.startswith(b"GET"):
                await stream.send_all(
                    b'HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\n"9.9.9"'
                )
            else:
                await stream.send_all(b"220 smtp.example.com ESMTP ready\r\n\r\n")
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(
            functools.partial(trio.serve_tcp, serve, 0, host="127.0.0.1")
        )
        port = listener.socket.getsockname()[1]
        [report] = await enqueue(store)
        async with uploading(store, config(f"http://127.0.0.1:{port}")) as uploader:
            status = await until(uploader, lambda s: s.retried >= 1)
            got = await store.get(report.id)
            # Still queued for another try (the autojump clock may already have started
            # it: the backoff passes at once while every task waits on the real socket).
            assert got.state in (QueueState.PENDING, QueueState.UPLOADING)
            assert got.last_error is not None
            assert got.last_error.startswith("the server's answer is not valid HTTP")
            assert "\n" not in got.last_error
            assert status.last_error is not None
            assert "not valid HTTP" in status.last_error
            assert status.failed == 0
        nursery.cancel_scope.cancel()


# --- disabled, shutdown, cancellation --------------------------------------------------


async def test_no_url_is_disabled_until_one_is_configured(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    reports = await enqueue(store, 2)
    async with receiving() as receiver, uploading(store, UploaderConfig()) as uploader:
        status = uploader.status()
        assert status.state is UploaderState.DISABLED
        assert status.server_url is None
        assert "no server URL" in status.reason
        await trio.sleep(3600)
        for report in reports:
            assert await state(store, report) == (QueueState.PENDING, 0)
        uploader.reconfigure(config(f"http://127.0.0.1:{receiver.port}"))
        await until(uploader, lambda s: s.uploaded == 2)
        uploader.reconfigure(UploaderConfig())
        await until(uploader, lambda s: s.state is UploaderState.DISABLED)
        [later] = await enqueue(store)
        await trio.sleep(60)
        assert await state(store, later) == (QueueState.PENDING, 0)


async def test_shutdown_lets_uploads_finish_within_the_deadline(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    reports = await enqueue(store, 3)
    async with receiving(latency_s=2.0) as receiver:
        uploader = Uploader(store, config(f"http://127.0.0.1:{receiver.port}"))
        with trio.fail_after(LIMIT_S):
            async with trio.open_nursery() as nursery:
                await nursery.start(uploader.run)
                await until(uploader, lambda s: s.in_flight == 3)
                await uploader.shutdown(10)
                assert uploader.status().uploaded == 3
        for report in reports:
            assert await state(store, report) == (QueueState.DONE, 1)


async def test_shutdown_deadline_cancels_and_releases_what_is_still_in_flight(
    store: Store,
    autojump: trio.testing.MockClock,
) -> None:
    reports = await enqueue(store, 3)
    async with receiving(latency_s=1000.0) as receiver:
        uploader = Uploader(store, config(f"http://127.0.0.1:{receiver.port}"))
        with trio.fail_after(LIMIT_S):
            async with trio.open_nursery() as nursery:
                await nursery.start(uploader.run)
                await until(uploader, lambda s: s.in_flight == 3)
                assert (await store.stats()).uploading == 3
                began = trio.current_time()
                uploader.begin_shutdown(2.0)
                # Nothing new is claimed once stopping, even when it is queued now.
                [late] = await enqueue(store)
                await trio.sleep(1.5)
                assert uploader.status().in_flight == 3
            assert trio.current_time() - began >= 2.0
        status = uploader.status()
    assert (status.uploaded, status.failed, status.retried, status.in_flight) == (0, 0, 0, 0)
    for report in [*reports, late]:
        got = await store.get(report.id)
        assert (got.state, got.attempts, got.last_error) == (QueueState.PENDING, 0, None)


async def test_cancelling_run_leaves_nothing_uploading(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    reports = await enqueue(store, 4)
    async with receiving(latency_s=1000.0) as receiver:
        uploader = Uploader(store, config(f"http://127.0.0.1:{receiver.port}", workers=2))
        with trio.fail_after(LIMIT_S):
            async with trio.open_nursery() as nursery:
                await nursery.start(uploader.run)
                await until(uploader, lambda s: s.in_flight == 2)
                nursery.cancel_scope.cancel()
    stats = await store.stats()
    assert (stats.uploading, stats.pending) == (0, 4)
    for report in reports:
        assert (await store.get(report.id)).attempts == 0


async def test_shutdown_before_run_makes_run_return_at_once(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    await enqueue(store)
    uploader = Uploader(store, config("http://127.0.0.1:9"))
    uploader.begin_shutdown()
    with trio.fail_after(1):
        await uploader.run()
    assert (await store.stats()).pending == 1


# --- TLS and proxy ---------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA and a server certificate for 127.0.0.1 it signed (openssl CLI)."""
    directory = tmp_path_factory.mktemp("tls")
    try:
        ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
        _openssl(
            "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=pywats test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=directory,
        )  # fmt: skip
        _openssl(
            "req", *ec, "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1",
            cwd=directory,
        )  # fmt: skip
        (directory / "ext.cnf").write_text(
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
        )
        _openssl(
            "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf",
            cwd=directory,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot make test certificates with openssl: {exc}")
    return directory


@asynccontextmanager
async def tls_front(certificates: Path, target_port: int) -> AsyncIterator[int]:
    """A TLS-terminating relay in front of the receiver; yields its port."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates / "server.pem", certificates / "server.key")

    async def relay(source: trio.abc.Stream, sink: trio.abc.Stream) -> None:
        while data := await source.receive_some(65536):
            await sink.send_all(data)

    async def handle(stream: trio.SocketStream) -> None:
        tls = trio.SSLStream(stream, context, server_side=True)
        try:
            await tls.do_handshake()
            upstream = await trio.open_tcp_stream("127.0.0.1", target_port)
            async with upstream, trio.open_nursery() as nursery:
                nursery.start_soon(relay, tls, upstream)
                await relay(upstream, tls)
                nursery.cancel_scope.cancel()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the client refused our certificate, or hung up
        finally:
            await trio.aclose_forcefully(tls)

    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(
            functools.partial(trio.serve_tcp, handle, 0, host="127.0.0.1")
        )
        yield listener.socket.getsockname()[1]
        nursery.cancel_scope.cancel()


async def test_tls_is_verified_against_the_built_in_roots_by_default(
    store: Store, autojump: trio.testing.MockClock, certificates: Path
) -> None:
    await enqueue(store)
    async with receiving() as receiver, tls_front(certificates, receiver.port) as port:
        async with uploading(store, config(f"https://127.0.0.1:{port}")) as uploader:
            status = await until(uploader, lambda s: s.last_error is not None)
        assert status.state is UploaderState.OFFLINE
        assert status.last_error is not None
        assert "TLS handshake failed" in status.last_error
        assert "CERTIFICATE_VERIFY_FAILED" in status.last_error
        assert receiver.stats().received == 0


async def test_tls_with_a_ca_file_uploads(
    store: Store, autojump: trio.testing.MockClock, certificates: Path
) -> None:
    [report] = await enqueue(store)
    async with receiving() as receiver, tls_front(certificates, receiver.port) as port:
        url = f"https://127.0.0.1:{port}"
        async with uploading(store, config(url, ca_file=certificates / "ca.pem")) as uploader:
            status = await until(uploader, lambda s: s.uploaded == 1)
        stored = receiver.get_report(report.id)
        assert stored is not None
        assert stored.body == report.body
    assert status.server_version == SERVER_VERSION


async def test_tls_verification_can_be_turned_off(
    store: Store, autojump: trio.testing.MockClock, certificates: Path
) -> None:
    await enqueue(store)
    async with receiving() as receiver, tls_front(certificates, receiver.port) as port:
        url = f"https://127.0.0.1:{port}"
        async with uploading(store, config(url, verify_tls=False)) as uploader:
            await until(uploader, lambda s: s.uploaded == 1)


async def test_an_unreadable_ca_file_pauses_until_resumed(
    store: Store, autojump: trio.testing.MockClock, tmp_path: Path
) -> None:
    ca_file = tmp_path / "company-ca.pem"
    await enqueue(store)
    async with receiving() as receiver:
        url = f"https://127.0.0.1:{receiver.port}"
        async with uploading(store, config(url, ca_file=ca_file)) as uploader:
            status = await until(uploader, lambda s: s.state is UploaderState.PAUSED)
            assert status.reason.startswith("cannot set up the connection:")
            assert "No such file" in status.reason
            ca_file.write_text("not a certificate\n")
            uploader.resume()
            status = await until(
                uploader, lambda s: s.state is UploaderState.PAUSED and "No such" not in s.reason
            )
            assert status.reason.startswith("cannot set up the connection:")


async def test_uploads_go_through_the_configured_proxy(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    # The receiver plays the proxy: an HTTP proxy gets absolute-form targets
    # ("POST http://wats.invalid/api/Report/WSJF"), which every HTTP/1.1 server must
    # accept. wats.invalid cannot resolve, so an upload can only arrive via the proxy.
    [report] = await enqueue(store)
    async with receiving() as proxy:
        proxied = config("http://wats.invalid", proxy=f"http://127.0.0.1:{proxy.port}")
        async with uploading(store, proxied) as uploader:
            await until(uploader, lambda s: s.uploaded == 1)
        assert proxy.get_report(report.id) is not None


# --- the token -------------------------------------------------------------------------


async def test_the_token_is_never_logged_or_shown(
    store: Store, autojump: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "V1JPTkc6dG9rZW4tZ3Vlc3M="
    await enqueue(store, 2)
    async with receiving(token=TOKEN, fail_first=1, fail_first_status=401) as receiver:
        url = f"http://127.0.0.1:{receiver.port}"
        upload_config = config(url, token=wrong)
        async with uploading(store, upload_config) as uploader:
            statuses = [await until(uploader, lambda s: s.state is UploaderState.PAUSED)]
            uploader.reconfigure(config(url, token=TOKEN))
            statuses.append(await until(uploader, lambda s: "injected" in s.reason))
            uploader.resume()
            statuses.append(await until(uploader, lambda s: s.uploaded == 2))
            shown = [repr(uploader.config), repr(upload_config), str(uploader.status())]
    rows = await store.list_reports()
    for secret in (TOKEN, wrong):
        assert secret not in caplog.text
        assert all(secret not in text for text in shown)
        assert all(secret not in repr(status) for status in statuses)
        assert all(secret not in (row.last_error or "") for row in rows)


async def test_a_failing_queue_is_one_error_line_and_one_line_when_it_works_again(
    store: Store, autojump: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    # The database fails five claims in a row (a real error from the store's own call,
    # raised in its place), then works: the log says so once each way, not once per try.
    reports = await enqueue(store, 2)
    real = store.finish_and_claim
    failures = 0

    async def failing(*args: Any, **kwargs: Any) -> Any:
        nonlocal failures
        if failures < 5:
            failures += 1
            raise StoreError("queue database error: disk I/O error")
        return await real(*args, **kwargs)

    store.finish_and_claim = failing  # type: ignore[method-assign]
    caplog.set_level(logging.DEBUG, "pywats.uploader")
    async with (
        receiving() as receiver,
        uploading(store, config(f"http://127.0.0.1:{receiver.port}")) as uploader,
    ):
        await until(uploader, lambda s: s.uploaded == 2)
    lines = [
        (r.levelno, r.getMessage()) for r in caplog.records if "queue database" in r.getMessage()
    ]
    errors = [text for level, text in lines if level == logging.ERROR]
    assert len(errors) == 1, lines
    assert sum(1 for level, _ in lines if level == logging.DEBUG) == 4
    assert [text for level, text in lines if level == logging.INFO] == [
        "the queue database works again (after 5 failed tries)"
    ]
    assert receiver.stats().unique == len(reports)
