"""The uploader's rules in isolation: a scripted server behind ``httpx.MockTransport``
(an async handler that sees trio's virtual clock), a real queue database in tmp_path,
and the pure helpers (configuration, URLs, messages).

Timing rule: the store's worker thread is invisible to trio, so the clock may jump while
a commit runs. Assertions on times are therefore exact only where nothing can move them:
the schedule the store recorded at the moment of a failure (``next_attempt_at``), and
"not before" bounds on when the next request came, computed from a seeded RNG replaying
the uploader's draws.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import random
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from pywats.errors import ConfigError
from pywats.retry import backoff_bound
from pywats.store import NewReport, QueueState, Store
from pywats.upload import (
    Uploader,
    UploaderConfig,
    UploaderState,
    UploaderStatus,
    api_base,
)
from pywats.upload.answers import MAX_ERROR_CHARS, describe, server_message
from pywats.upload.health import MIN_OUTAGE_CAP_S, OUTAGE_CAP_FRACTION

T0 = 1_700_000_000.0
URL = "https://wats.example.com"
TOKEN = "dGVzdDp0b2tlbi12YWx1ZS0xMjM="
SEED = 7

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def outage_cap(since: float, now: float, probe_max_s: float = 60.0) -> float:
    """The cap of hold and probe backoffs ``now`` in an outage that began at ``since``."""
    return min(probe_max_s, max(MIN_OUTAGE_CAP_S, (now - since) * OUTAGE_CAP_FRACTION))


def wall() -> float:
    return T0 + trio.current_time()


@pytest.fixture
async def store(tmp_path: Path, autojump: trio.testing.MockClock) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "queue.db", clock=wall) as opened:
        yield opened


def new_report(n: int = 0) -> NewReport:
    report_id = str(uuid.uuid4())
    body = json.dumps({"id": report_id, "n": n}, indent=1).encode()
    return NewReport(report_id, body, "PN", f"SN{n}", "P", "2024-01-01T00:00:00Z", "test")


async def enqueue(store: Store, count: int = 1) -> list[NewReport]:
    reports = [new_report(n) for n in range(count)]
    for report in reports:
        await store.enqueue([report])
    return reports


class Server:
    """A scripted WATS server: ``submit`` answers POSTs (it may await), the version
    endpoint answers 200 ``"9.1.0"``. Every request is kept with its virtual time."""

    def __init__(self, submit: Handler | None = None) -> None:
        self.submit = submit if submit is not None else self.accept
        self.requests: list[tuple[float, httpx.Request]] = []

    @staticmethod
    async def accept(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": json.loads(request.content)["id"]})

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((trio.current_time(), request))
        if request.url.path.endswith("/App/Version"):
            return httpx.Response(200, json="9.1.0")
        return await self.submit(request)

    def times(self, method: str = "POST") -> list[float]:
        return [t for t, r in self.requests if r.method == method]


def answering(status: int, **kwargs: Any) -> Handler:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, **kwargs)

    return handler


@asynccontextmanager
async def uploading(store: Store, server: Server, **options: Any) -> AsyncIterator[Uploader]:
    settings: dict[str, Any] = {"url": URL, "token": TOKEN, "retry_max_s": 60.0, **options}
    uploader = Uploader(
        store,
        UploaderConfig(**settings),
        rng=random.Random(SEED),
        transport=httpx.MockTransport(server),
    )
    with trio.fail_after(36_000):
        async with trio.open_nursery() as nursery:
            await nursery.start(uploader.run)
            yield uploader
            await uploader.shutdown(0)


async def until(uploader: Uploader, condition: Callable[[UploaderStatus], bool]) -> UploaderStatus:
    seen = uploader.status_generation
    while not condition(status := uploader.status()):
        seen = await uploader.wait_status_changed(seen)
    return status


# --- the request -----------------------------------------------------------------------


async def test_request_carries_token_json_type_and_the_exact_bytes(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    [report] = await enqueue(store)
    server = Server()
    async with uploading(store, server, url=URL + "/api/") as uploader:
        await until(uploader, lambda s: s.uploaded == 1)
    [(_, probe), (_, post)] = server.requests
    assert (probe.method, str(probe.url)) == ("GET", f"{URL}/api/App/Version")
    assert (post.method, str(post.url)) == ("POST", f"{URL}/api/Report/WSJF")
    for request in (probe, post):
        assert request.headers["authorization"] == f"Basic {TOKEN}"
        assert request.headers["accept"] == "application/json"
        assert request.headers["user-agent"].startswith("pywats/")
    assert post.headers["content-type"] == "application/json"
    assert post.content == report.body


async def test_no_token_sends_no_authorization(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    await enqueue(store)
    server = Server()
    async with uploading(store, server, token=None) as uploader:
        await until(uploader, lambda s: s.uploaded == 1)
    assert all("authorization" not in r.headers for _, r in server.requests)


# --- what each answer does -------------------------------------------------------------

ONLINE, PAUSED = UploaderState.ONLINE, UploaderState.PAUSED
PENDING, DONE, FAILED = QueueState.PENDING, QueueState.DONE, QueueState.FAILED
UPLOADING = QueueState.UPLOADING


@pytest.mark.parametrize(
    ("status", "row", "attempts", "uploader_state"),
    [
        (200, DONE, 1, ONLINE),
        (201, DONE, 1, ONLINE),
        (204, DONE, 1, ONLINE),
        (400, FAILED, 1, ONLINE),
        (409, FAILED, 1, ONLINE),
        (413, FAILED, 1, ONLINE),
        (422, FAILED, 1, ONLINE),
        (401, PENDING, 0, PAUSED),
        (403, PENDING, 0, PAUSED),
        (404, PENDING, 0, PAUSED),
        (301, PENDING, 1, ONLINE),
        (408, PENDING, 1, ONLINE),
        (429, PENDING, 1, ONLINE),
        (500, PENDING, 1, ONLINE),
        (502, PENDING, 1, ONLINE),
        (503, PENDING, 1, ONLINE),
        (504, PENDING, 1, ONLINE),
    ],
)
async def test_each_status_has_its_outcome(
    store: Store,
    autojump: trio.testing.MockClock,
    status: int,
    row: QueueState,
    attempts: int,
    uploader_state: UploaderState,
) -> None:
    [report] = await enqueue(store)
    headers = {"location": "https://elsewhere.example.com/"} if status == 301 else {}
    server = Server(answering(status, json={"message": f"answer {status}"}, headers=headers))
    async with uploading(store, server) as uploader:
        status_now = await until(
            uploader, lambda s: s.uploaded + s.failed + s.retried > 0 or s.state is PAUSED
        )
        # The status changes first (so no new upload starts), then the row is written.
        while (got := await store.get(report.id)).state is QueueState.UPLOADING:
            await trio.sleep(0.01)
    assert (got.state, got.attempts, status_now.state) == (row, attempts, uploader_state)
    if row is DONE:
        assert (got.last_status, got.last_error, status_now.uploaded) == (status, None, 1)
    elif row is FAILED:
        assert got.last_status == status
        assert got.last_error is not None
        assert got.last_error.endswith(f": answer {status}")
        assert status_now.failed == 1
    elif uploader_state is PAUSED:
        assert (got.last_status, got.last_error, status_now.failed) == (None, None, 0)
        assert ("URL looks wrong" if status == 404 else "refused the token") in status_now.reason
    else:
        assert got.last_status == status
        assert got.next_attempt_at > wall()
        assert status_now.retried == 1
    if status == 301:
        assert got.last_error is not None
        assert "redirected to https://elsewhere.example.com/" in got.last_error


async def test_a_transport_error_is_transient_and_goes_offline(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    [report] = await enqueue(store)
    refuse = True

    async def submit(request: httpx.Request) -> httpx.Response:
        if refuse:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return await Server.accept(request)

    server = Server(submit)
    async with uploading(store, server) as uploader:
        status = await until(uploader, lambda s: s.retried == 1)
        got = await store.get(report.id)
        # Queued for another try. Offline, the probe asks at once and finds the server
        # (only submits are refused), which makes the report due again: while this read
        # waits for its thread, the next attempt may already have started.
        assert got.state in (PENDING, UPLOADING)
        assert got.last_status is None
        assert got.last_error == "the server closed the connection without answering"
        refuse = False
        status = await until(uploader, lambda s: s.uploaded == 1)
    assert status.failed == 0


async def test_an_unexpected_error_in_the_http_stack_does_not_stop_uploading(
    store: Store, autojump: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    await enqueue(store, 2)
    calls = 0

    async def submit(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("h11 had a bad day")
        return await Server.accept(request)

    async with uploading(store, Server(submit), workers=1) as uploader:
        status = await until(uploader, lambda s: s.uploaded == 2)
    assert status.retried == 1
    assert "unexpected error (RuntimeError): h11 had a bad day" in caplog.text


# --- timing ----------------------------------------------------------------------------


async def test_transient_failures_back_off_with_full_jitter(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    [report] = await enqueue(store)
    schedule: list[float] = []  # next_attempt_at the store held when each retry came

    async def submit(request: httpx.Request) -> httpx.Response:
        if len(schedule) < 6:
            schedule.append((await store.get(report.id)).next_attempt_at)
            return httpx.Response(503, text="busy")
        return await Server.accept(request)

    server = Server(submit)
    async with uploading(store, server, retry_base_s=1.0, retry_max_s=8.0) as uploader:
        status = await until(uploader, lambda s: s.uploaded == 1)
    posts = server.times()
    assert len(posts) == 7
    assert status.retried == 6
    # Replay the uploader's draws: per failure k, the report's delay, then the hold of
    # round k (each retry is the trial of the hold before it, so each failure is a round).
    rng = random.Random(SEED)
    for k in range(1, 7):
        failed_at = posts[k - 1]
        delay = rng.uniform(0, backoff_bound(k, base_s=1.0, cap_s=8.0))
        hold = rng.uniform(0, backoff_bound(k, base_s=1.0, cap_s=outage_cap(posts[0], failed_at)))
        if k < 6:
            assert schedule[k] == pytest.approx(T0 + failed_at + delay, abs=1e-4)
        # Not before the report is due and the hold is over.
        assert posts[k] >= failed_at + max(delay, hold) - 1e-6


async def test_retry_after_holds_every_upload(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    first, *others = await enqueue(store, 3)
    answered = False

    async def submit(request: httpx.Request) -> httpx.Response:
        nonlocal answered
        if not answered:
            answered = True
            return httpx.Response(429, headers={"retry-after": "7"}, text="slow down")
        return await Server.accept(request)

    server = Server(submit)
    async with uploading(store, server, workers=1) as uploader:
        status = await until(uploader, lambda s: s.retried == 1)
        limited_at = server.times()[0]
        assert status.state is ONLINE
        assert status.reason.startswith("the server answered 429 Too Many Requests: slow down")
        assert (await store.get(first.id)).next_attempt_at == pytest.approx(
            T0 + limited_at + 7, abs=1e-4
        )
        await until(uploader, lambda s: s.uploaded == 3)
    # The other reports were due at once, but nothing went out for 7 s.
    assert all(t >= limited_at + 7 for t in server.times()[1:])
    for report in others:
        assert (await store.get(report.id)).attempts == 1


async def test_retry_after_as_an_http_date(store: Store, autojump: trio.testing.MockClock) -> None:
    [report] = await enqueue(store)
    answered_at: list[float] = []

    async def submit(request: httpx.Request) -> httpx.Response:
        if not answered_at:
            answered_at.append(wall())
            date = formatdate(wall() + 30, usegmt=True)
            return httpx.Response(503, headers={"retry-after": date})
        return await Server.accept(request)

    server = Server(submit)
    async with uploading(store, server) as uploader:
        await until(uploader, lambda s: s.retried == 1)
        due = (await store.get(report.id)).next_attempt_at
        assert due == pytest.approx(math.floor(answered_at[0] + 30), abs=1e-4)
        await until(uploader, lambda s: s.uploaded == 1)
    assert server.times()[1] >= due - T0 - 1e-6


async def test_offline_probe_backs_off_up_to_its_cap_one_at_a_time(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    await enqueue(store)
    out = 0
    most = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal out, most
        out += 1
        most = max(most, out)
        try:
            await trio.sleep(0.25)  # a probe takes a while, so overlap would show
            raise httpx.ConnectError("[Errno 111] Connection refused")
        finally:
            out -= 1

    server = Server()

    async def routed(request: httpx.Request) -> httpx.Response:
        server.requests.append((trio.current_time(), request))
        return await handler(request)

    uploader = Uploader(
        store,
        UploaderConfig(url=URL, retry_base_s=2.0, probe_max_s=8.0),
        rng=random.Random(SEED),
        transport=httpx.MockTransport(routed),
    )
    with trio.fail_after(36_000):
        async with trio.open_nursery() as nursery:
            await nursery.start(uploader.run)
            await trio.sleep(40)
            status = uploader.status()
            await uploader.shutdown(0)
    probes = server.times("GET")
    assert server.times("POST") == []  # never online, so never an upload
    assert most == 1
    assert status.state is UploaderState.OFFLINE
    assert status.reason.startswith(f"cannot reach {URL}: cannot connect: connection refused")
    assert "next check in" in status.reason
    rng = random.Random(SEED)
    since = probes[0] + 0.25  # the first probe's answer began the outage
    for n, (before, after) in enumerate(itertools.pairwise(probes), start=1):
        cap = min(8.0, outage_cap(since, before + 0.25))
        delay = rng.uniform(0, backoff_bound(n, base_s=2.0, cap_s=cap))
        assert after >= before + 0.25 + delay - 1e-6
    # The cap keeps it probing: at least one probe per cap (plus its duration) on average.
    assert len(probes) >= 40 / (8.0 + 0.25) - 2


# --- control ---------------------------------------------------------------------------


async def test_operator_pause_and_resume(store: Store, autojump: trio.testing.MockClock) -> None:
    server = Server()
    async with uploading(store, server) as uploader:
        await until(uploader, lambda s: s.state is ONLINE)
        uploader.pause()
        status = uploader.status()
        assert (status.state, status.reason) == (PAUSED, "paused by the operator")
        await enqueue(store, 2)
        await trio.sleep(3600)
        assert server.times() == []
        uploader.resume()
        await until(uploader, lambda s: s.uploaded == 2)


async def test_operator_pause_survives_a_reconfiguration(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    server = Server()
    await enqueue(store)
    async with uploading(store, server) as uploader:
        uploader.pause()
        uploader.reconfigure(UploaderConfig(url=URL + "/other", token=TOKEN))
        await trio.sleep(600)
        assert uploader.status().state is PAUSED
        assert server.times() == []
        uploader.resume()
        await until(uploader, lambda s: s.uploaded == 1)
    assert str(server.requests[-1][1].url) == f"{URL}/other/api/Report/WSJF"


async def test_reconfigure_lets_the_upload_in_flight_finish(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    [report] = await enqueue(store)

    async def slow(request: httpx.Request) -> httpx.Response:
        await trio.sleep(3)
        return await Server.accept(request)

    async with uploading(store, Server(slow)) as uploader:
        await until(uploader, lambda s: s.in_flight == 1)
        uploader.reconfigure(UploaderConfig(url=URL, token=TOKEN, workers=2))
        assert uploader.status().reason == "restarting with the new configuration"
        status = await until(uploader, lambda s: s.uploaded == 1)
        assert uploader.config.workers == 2
    assert status.failed == 0
    assert (await store.get(report.id)).attempts == 1


async def test_status_waiters_see_every_change(
    store: Store, autojump: trio.testing.MockClock
) -> None:
    async with uploading(store, Server()) as uploader:
        seen = uploader.status_generation
        await until(uploader, lambda s: s.state is ONLINE)
        assert uploader.status_generation > seen
        seen = uploader.status_generation
        await enqueue(store)
        assert await uploader.wait_status_changed(seen) > seen


# --- the token -------------------------------------------------------------------------


async def test_a_server_echoing_the_token_does_not_leak_it(
    store: Store, autojump: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    [report] = await enqueue(store)

    async def echo(request: httpx.Request) -> httpx.Response:
        header = request.headers["authorization"]
        return httpx.Response(400, json={"message": f"bad request, you sent {header}"})

    async with uploading(store, Server(echo)) as uploader:
        status = await until(uploader, lambda s: s.failed == 1)
    got = await store.get(report.id)
    assert got.last_error == "400 Bad Request: bad request, you sent Basic ***"
    assert TOKEN not in repr(status)
    assert TOKEN not in caplog.text


# --- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://h", "https://h/api"),
        ("https://h/", "https://h/api"),
        ("https://h/api", "https://h/api"),
        ("https://h/api/", "https://h/api"),
        ("https://h/API//", "https://h/api"),
        ("http://h:8080/wats/api/", "http://h:8080/wats/api"),
        ("http://h:8080/wats", "http://h:8080/wats/api"),
        ("http://h/apis", "http://h/apis/api"),
    ],
)
def test_api_base(url: str, base: str) -> None:
    assert api_base(url) == base


@pytest.mark.parametrize(
    ("options", "key", "text"),
    [
        ({"url": "wats.example.com"}, "url", "http:// or https://"),
        ({"url": "ftp://h"}, "url", "http:// or https://"),
        ({"url": "https://"}, "url", "host"),
        ({"url": "https://user:pw@h"}, "url", "user name or password"),
        ({"url": "https://h/?x=1"}, "url", "query"),
        ({"token": ""}, "token", "empty"),
        ({"token": "abc\ndef"}, "token", "one line"),
        ({"token": " abc"}, "token", "one line"),
        ({"workers": 0}, "workers", "1 to 64"),
        ({"workers": True}, "workers", "1 to 64"),
        ({"workers": 65}, "workers", "1 to 64"),
        ({"connect_timeout_s": 0}, "connect_timeout_s", "greater than 0"),
        ({"read_timeout_s": math.nan}, "read_timeout_s", "greater than 0"),
        ({"retry_base_s": -1}, "retry_base_s", "greater than 0"),
        ({"probe_max_s": math.inf}, "probe_max_s", "greater than 0"),
        ({"shutdown_deadline_s": -0.5}, "shutdown_deadline_s", "0 or more"),
        ({"shutdown_deadline_s": math.nan}, "shutdown_deadline_s", "0 or more"),
        ({"proxy": "socks5://p:1080"}, "proxy", "http:// or https://"),
    ],
)
def test_config_refuses_bad_values(options: dict[str, Any], key: str, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        UploaderConfig(**options)
    assert info.value.key == key
    assert text in info.value.reason


def test_config_never_shows_the_token() -> None:
    config = UploaderConfig(url=URL, token=TOKEN, proxy="http://me:secret@proxy:3128")
    assert TOKEN not in repr(config)
    with pytest.raises(ConfigError) as info:
        UploaderConfig(token=TOKEN + "\n")
    assert TOKEN not in str(info.value)


def test_config_defaults() -> None:
    config = UploaderConfig()
    assert (config.url, config.token, config.workers, config.verify_tls) == (None, None, 5, True)
    assert (config.connect_timeout_s, config.read_timeout_s, config.write_timeout_s) == (10, 60, 60)
    assert (config.pool_timeout_s, config.retry_base_s, config.retry_max_s) == (10, 1.0, 300.0)
    assert (config.probe_max_s, config.shutdown_deadline_s) == (60.0, 10.0)


# --- messages --------------------------------------------------------------------------


def response(status: int, content: bytes, content_type: str = "application/json") -> httpx.Response:
    return httpx.Response(status, content=content, headers={"content-type": content_type})


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        (response(400, b'{"message": "sn: required"}'), "400 Bad Request: sn: required"),
        (response(400, b'{"Message": "pn\\nmissing"}'), "400 Bad Request: pn missing"),
        (response(422, b'"just a string"'), "422 Unprocessable Entity: just a string"),
        (
            response(
                400,
                b'{"title": "One or more validation errors occurred.", "status": 400,'
                b' "errors": {"sn": ["required"], "start": ["bad date", "too old"]}}',
                "application/problem+json",
            ),
            "400 Bad Request: One or more validation errors occurred."
            " (sn: required; start: bad date, too old)",
        ),
        (
            response(
                502, b"<html><title>502 Bad Gateway</title>\n<h1>nginx</h1></html>", "text/html"
            ),
            "502 Bad Gateway: 502 Bad Gateway nginx",
        ),
        (
            response(500, b"plain\r\ntext  body", "text/plain"),
            "500 Internal Server Error: plain text body",
        ),
        (response(503, b""), "503 Service Unavailable"),
        (response(400, b"\xff\xfe not utf-8", "text/plain"), "400 Bad Request: "),
    ],
)
def testserver_message(answer: httpx.Response, text: str) -> None:
    assert server_message(answer).startswith(text)


def test_server_message_is_one_bounded_line() -> None:
    answer = response(400, json.dumps({"message": "x\n" * 5000}).encode())
    message = server_message(answer)
    assert "\n" not in message
    assert len(message) == MAX_ERROR_CHARS
    assert message.endswith("…")


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (httpx.ConnectTimeout(""), "connecting timed out after 10 s"),
        (httpx.ReadTimeout(""), "no answer within 60 s (read timeout)"),
        (httpx.WriteTimeout(""), "sending timed out after 60 s"),
        (httpx.PoolTimeout(""), "no free connection within 10 s"),
        (
            httpx.ConnectError("[Errno 111] Connection refused"),
            "cannot connect: connection refused",
        ),
        (httpx.ProxyError("407 Proxy Authentication Required"), "proxy error: 407"),
        (
            httpx.RemoteProtocolError("illegal status line: bytearray(b'x')"),
            "the server's answer is not valid HTTP: illegal",
        ),
        (
            httpx.ReadError("[Errno 104] Connection reset by peer"),
            "connection lost while waiting for the answer: connection reset",
        ),
        (
            httpx.WriteError("[Errno 32] Broken pipe"),
            "connection lost while sending: connection closed",
        ),
        (ValueError("odd\nthing"), "unexpected error (ValueError): odd thing"),
    ],
)
def test_describe_transport_errors(error: Exception, text: str) -> None:
    assert describe(error, UploaderConfig()).startswith(text)


def test_describe_finds_the_message_on_a_cause() -> None:
    error = httpx.ConnectError("")
    error.__cause__ = OSError(113, "No route to host")
    assert describe(error, UploaderConfig()) == "cannot connect: no route to host"


def test_describe_names_a_refusal_buried_in_an_exception_group() -> None:
    # What httpx over trio raises for a refused connection: the errno is only on a member
    # of the group of per-address attempts, the message says "all attempts ... failed".
    refused = ConnectionRefusedError(
        111, "Error connecting to ('127.0.0.1', 1): Connection refused"
    )
    group = ExceptionGroup("all attempts to connect to 127.0.0.1:1 failed", [refused])
    outer = OSError("all attempts to connect to 127.0.0.1:1 failed")
    outer.__cause__ = group
    error = httpx.ConnectError("all attempts to connect to 127.0.0.1:1 failed")
    error.__cause__ = outer
    assert describe(error, UploaderConfig()) == "cannot connect: connection refused"


def test_describe_says_tls_in_plain_words() -> None:
    wrong = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    error = httpx.ConnectError("")
    error.__cause__ = wrong
    assert describe(error, UploaderConfig()) == (
        "TLS handshake failed: wrong version number (WRONG_VERSION_NUMBER)"
    )
    unknown = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    )
    unknown.verify_message = "self-signed certificate"
    error = httpx.ConnectError("")
    error.__cause__ = unknown
    assert describe(error, UploaderConfig()) == (
        "TLS handshake failed: certificate verify failed: self-signed certificate"
        " (CERTIFICATE_VERIFY_FAILED)"
    )


def test_describe_names_an_unknown_host() -> None:
    error = httpx.ConnectError("")
    error.__cause__ = socket.gaierror(-2, "Name or service not known")
    assert describe(error, UploaderConfig()) == (
        "cannot connect: cannot resolve the host name (Name or service not known)"
    )


# --- the log of outages (issue 12 item 8) ----------------------------------------------


async def test_answers_lost_one_by_one_are_one_outage_in_the_log(
    store: Store, autojump: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    # Every third upload loses its answer; the probe answers every time. Before the fix:
    # a WARNING "uploader offline" and an INFO "uploader online" per lost answer.
    caplog.set_level(logging.DEBUG, logger="pywats.uploader")
    reports = await enqueue(store, 15)
    count = 0

    async def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        await trio.sleep(0.01)
        if count % 3 == 0:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return await Server.accept(request)

    async with uploading(store, Server(flaky), retry_base_s=0.05, workers=1) as uploader:
        await until(uploader, lambda s: s.uploaded == len(reports))
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    offline = [m for level, m in lines if level == logging.WARNING and "offline" in m]
    online = [m for level, m in lines if "uploader online" in m and "was offline" in m]
    assert count >= 20  # about 7 answers were lost
    assert len(offline) == 1, offline
    assert offline[0].endswith("the server closed the connection without answering")
    assert len(online) == 1, online
    assert not [m for _, m in lines if "due again" in m][1:]  # at most the first outage's
