"""`pywats receiver` over real loopback sockets: httpx against the in-process server, and
the CLI as a real subprocess.

Test rules: every network test runs under an absolute `trio.fail_after`, each server gets
a fresh in-memory store and port 0, and reports get fresh uuid ids so tests never share
state. Timing assertions are one-sided (latency adds *at least* its delay).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio

from pywats import receiver as receiver_module
from pywats.errors import ConfigError, StoreError
from pywats.receiver import SERVER_VERSION, Faults, Receiver, ReceiverConfig, ReceiverStats
from pywats.report import wsjf
from tests.report.minimal import uut

DATA = Path(__file__).parent / "data"
TIMEOUT_S = 10


def report(**changes: Any) -> dict[str, Any]:
    doc = uut()
    doc["id"] = str(uuid.uuid4())
    doc.update(changes)
    return doc


def body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


@asynccontextmanager
async def serve(**options: Any) -> AsyncIterator[tuple[Receiver, httpx.AsyncClient]]:
    receiver = Receiver(ReceiverConfig(**options))
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(receiver.run)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                yield receiver, client
            nursery.cancel_scope.cancel()


async def submit(client: httpx.AsyncClient, doc: dict[str, Any], **kw: Any) -> httpx.Response:
    return await client.post("/api/Report/WSJF", content=body(doc), **kw)


def stats(**counts: int) -> ReceiverStats:
    base = dict.fromkeys(
        (
            "received",
            "unique",
            "duplicates",
            "rejected",
            "failed_injected",
            "dropped_injected",
            "connections",
        ),
        0,
    )
    return ReceiverStats(**{**base, **counts})


# --- submitting and reading back -----------------------------------------------------


async def test_valid_report_is_stored_and_read_back_byte_identical() -> None:
    doc = report(location="Prüfplatz 3")
    # Indented, non-ASCII and key order of our own: only byte identity proves "as sent".
    sent = json.dumps(doc, indent=3, ensure_ascii=False).encode()
    async with serve() as (receiver, client):
        response = await client.post("/api/Report/WSJF", content=sent)
        assert response.status_code == 200
        assert response.json() == {"id": doc["id"]}
        back = await client.get(f"/api/Report/Wsjf/{doc['id'].upper()}")
        assert back.status_code == 200
        assert back.headers["content-type"] == "application/json"
        assert back.content == sent
        stored = receiver.get_report(doc["id"])
        assert stored is not None
        assert (stored.id, stored.body, stored.count) == (doc["id"], sent, 1)
        assert receiver.stats() == stats(received=1, unique=1, connections=1)


async def test_invalid_report_gets_400_with_one_line_naming_the_field() -> None:
    doc = report()
    doc["root"]["steps"][0]["numericMeas"][0]["compOp"] = "BETWEEN"
    async with serve() as (receiver, client):
        response = await submit(client, doc)
        assert response.status_code == 400
        message = response.json()["message"]
        assert "\n" not in message
        assert message.startswith("root.steps[0].numericMeas[0].compOp: ")
        assert "BETWEEN" in message

        as_text = await submit(client, doc, headers={"Accept": "text/plain"})
        assert as_text.status_code == 400
        assert as_text.headers["content-type"].startswith("text/plain")
        assert as_text.text == message + "\n"

        assert receiver.get_report(doc["id"]) is None
        assert receiver.stats().rejected == 2
        assert receiver.stats().received == 0


async def test_bad_json_gets_400() -> None:
    async with serve() as (_, client):
        response = await client.post("/api/Report/WSJF", content=b'{"id": ')
        assert response.status_code == 400
        assert response.json()["message"].startswith("not valid JSON")
        empty = await client.post("/api/Report/WSJF", content=b"")
        assert empty.status_code == 400


async def test_equal_id_overwrites_and_counts_a_duplicate() -> None:
    first = report()
    second = {**first, "sn": "SN-SECOND"}
    async with serve() as (receiver, client):
        assert (await submit(client, first)).status_code == 200
        assert (await submit(client, second)).status_code == 200
        assert receiver.stats() == stats(received=2, unique=1, duplicates=1, connections=1)
        stored = receiver.get_report(first["id"])
        assert stored is not None
        assert stored.count == 2
        assert json.loads(stored.body)["sn"] == "SN-SECOND"


async def test_unknown_id_is_404() -> None:
    async with serve() as (_, client):
        response = await client.get(f"/api/Report/Wsjf/{uuid.uuid4()}")
        assert response.status_code == 404
        assert "no report with id" in response.json()["message"]


async def test_wsxf_submission_is_stored_as_wsjf() -> None:
    pytest.importorskip("pywats.report.wsxf")
    xml = (DATA / "uut-wsxf-export.xml").read_bytes()
    async with serve() as (receiver, client):
        response = await client.post(
            "/api/Report/WSXF", content=xml, headers={"Content-Type": "application/xml"}
        )
        assert response.status_code == 200, response.text
        report_id = response.json()["id"]
        back = await client.get(f"/api/Report/Wsjf/{report_id}")
        assert wsjf.loads(back.content).id == report_id
        bad = await client.post("/api/Report/WSXF", content=b"<nope/>")
        assert bad.status_code == 400
        assert receiver.stats().rejected == 1


async def test_wsjf_endpoint_takes_the_reference_export() -> None:
    sent = (DATA / "uut-wsjf-export.json").read_bytes()
    async with serve() as (_, client):
        response = await client.post("/api/Report/WSJF", content=sent)
        assert response.status_code == 200, response.text
        back = await client.get(f"/api/Report/Wsjf/{response.json()['id']}")
        assert back.content == sent


# --- the other endpoints ----------------------------------------------------------------


async def test_version_processes_and_stats() -> None:
    async with serve() as (_, client):
        version = await client.get("/api/App/Version")
        assert version.json() == SERVER_VERSION
        processes = (await client.get("/api/App/Processes?includeTestOperations=true")).json()
        assert {p["code"]: p["name"] for p in processes}[500] == "Repair"
        assert all(
            set(p) >= {"code", "name", "description", "isTestOperation", "isRepairOperation"}
            for p in processes
        )
        await submit(client, report())
        assert (await client.get("/stats")).json() == {
            "received": 1,
            "unique": 1,
            "duplicates": 0,
            "rejected": 0,
            "failed_injected": 0,
            "dropped_injected": 0,
            "connections": 1,
        }


async def test_unknown_path_is_404_and_wrong_method_405() -> None:
    async with serve() as (_, client):
        missing = await client.get("/api/Nope")
        assert missing.status_code == 404
        assert "/api/Nope" in missing.json()["message"]
        wrong = await client.get("/api/Report/WSJF")
        assert wrong.status_code == 405
        assert wrong.headers["allow"] == "POST"
        assert (await client.post("/api/App/Version", content=b"")).status_code == 405
        assert (await client.delete(f"/api/Report/Wsjf/{uuid.uuid4()}")).status_code == 405


async def test_paths_match_case_insensitively() -> None:
    async with serve() as (receiver, client):
        response = await client.post("/api/report/wsjf", content=body(report()))
        assert response.status_code == 200
        assert (await client.get("/API/APP/VERSION/")).status_code == 200
        assert receiver.stats().received == 1


# --- auth ----------------------------------------------------------------------------


async def test_token_is_required_exactly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pywats.receiver")
    token = "s3cret-token-value"
    async with serve(token=token) as (receiver, client):
        doc = report()
        for headers in (
            {},
            {"Authorization": "Basic wrong"},
            {"Authorization": f"Bearer {token}"},
            {"Authorization": f"Basic {token}x"},
        ):
            refused = await submit(client, doc, headers=headers)
            assert refused.status_code == 401
            assert refused.json() == {"message": "token refused"}
        assert (await client.get("/api/App/Version")).status_code == 401
        good = {"Authorization": f"Basic {token}"}
        assert (await submit(client, doc, headers=good)).status_code == 200
        assert (await client.get("/api/App/Version", headers=good)).status_code == 200
        # /stats is the operator's view, outside /api/, and open.
        assert (await client.get("/stats")).json()["received"] == 1
        assert receiver.stats().received == 1
    assert "401" in caplog.text
    assert token not in caplog.text
    assert token not in repr(receiver.config)


# --- fault injection -------------------------------------------------------------------


async def test_fail_first_then_success_with_retry_after() -> None:
    options = {"fail_first": 3, "fail_first_status": 502, "retry_after": "7"}
    async with serve(**options) as (receiver, client):
        doc = report()
        for _ in range(3):
            failed = await submit(client, doc)
            assert failed.status_code == 502
            assert failed.headers["retry-after"] == "7"
            assert "injected" in failed.json()["message"]
            assert receiver.get_report(doc["id"]) is None
        ok = await submit(client, doc)
        assert ok.status_code == 200
        assert "retry-after" not in ok.headers
        # Health is not faultable without fail_health.
        assert (await client.get("/api/App/Version")).status_code == 200
        assert receiver.stats() == stats(received=1, unique=1, failed_injected=3, connections=1)


async def _fail_pattern(seed: int, count: int) -> tuple[list[int], ReceiverStats]:
    async with serve(fail_rate=0.3, fail_status=429, seed=seed) as (receiver, client):
        statuses = [(await submit(client, report())).status_code for _ in range(count)]
        return statuses, receiver.stats()


async def test_fail_rate_is_deterministic_for_a_seed() -> None:
    first, first_stats = await _fail_pattern(seed=42, count=40)
    again, _ = await _fail_pattern(seed=42, count=40)
    other, _ = await _fail_pattern(seed=43, count=40)
    assert set(first) == {200, 429}
    assert first == again
    assert first != other
    assert first_stats.failed_injected == first.count(429)
    assert first_stats.received == first.count(200)
    assert 0 < first.count(429) < 40


async def test_retry_after_is_absent_unless_configured() -> None:
    async with serve(fail_rate=1.0) as (_, client):
        failed = await submit(client, report())
        assert failed.status_code == 503
        assert "retry-after" not in failed.headers


async def test_latency_is_added_to_submissions_only() -> None:
    latency_s = 0.2
    async with serve(latency_s=latency_s) as (_, client):
        start = trio.current_time()
        assert (await submit(client, report())).status_code == 200
        assert trio.current_time() - start >= latency_s
        start = trio.current_time()
        assert (await client.get("/api/App/Version")).status_code == 200
        assert trio.current_time() - start < latency_s


async def test_fail_health_makes_the_server_look_offline() -> None:
    async with serve(fail_rate=1.0, fail_health=True, retry_after="30") as (receiver, client):
        health = await client.get("/api/App/Version")
        assert health.status_code == 503
        assert health.headers["retry-after"] == "30"
        assert (await submit(client, report())).status_code == 503
        assert (await client.get("/api/App/Processes")).status_code == 200
        assert receiver.stats().failed_injected == 2


async def test_drop_stores_the_report_and_loses_the_response() -> None:
    doc = report()
    async with serve(drop_rate=1.0) as (receiver, client):
        with pytest.raises(httpx.RemoteProtocolError):
            await submit(client, doc)
        stored = receiver.get_report(doc["id"])
        assert stored is not None
        assert stored.body == body(doc)
        # The client reconnects for the next request; the retry is a duplicate.
        with pytest.raises(httpx.RemoteProtocolError):
            await submit(client, doc)
        assert (await client.get("/stats")).status_code == 200
        assert receiver.stats() == stats(
            received=2, unique=1, duplicates=1, dropped_injected=2, connections=3
        )


# --- fault settings at run time ------------------------------------------------------------

HEALTHY = attrs.asdict(Faults())


async def test_faults_switch_on_and_off_over_http() -> None:
    async with serve() as (receiver, client):
        assert (await client.get("/faults")).json() == HEALTHY
        assert (await submit(client, report())).status_code == 200

        burst = await client.put("/faults", json={"fail_rate": 1.0, "fail_status": 500})
        assert burst.status_code == 200
        assert burst.json() == {**HEALTHY, "fail_rate": 1.0, "fail_status": 500}
        assert (await client.get("/faults")).json() == burst.json()
        assert receiver.faults == Faults(fail_rate=1.0, fail_status=500)
        doc = report()
        failed = await submit(client, doc)
        assert failed.status_code == 500
        assert "injected" in failed.json()["message"]
        assert receiver.get_report(doc["id"]) is None
        # Uploads fail, the version probe does not (fail_health is off).
        assert (await client.get("/api/App/Version")).status_code == 200

        healed = await client.put("/faults", json={})
        assert healed.json() == HEALTHY
        assert (await submit(client, doc)).status_code == 200
        assert receiver.stats() == stats(received=2, unique=2, failed_injected=1, connections=1)


async def test_put_replaces_the_whole_setting() -> None:
    async with serve(fail_rate=0.5, retry_after="3", seed=1) as (receiver, client):
        assert (await client.get("/faults")).json() == {
            **HEALTHY,
            "fail_rate": 0.5,
            "retry_after": "3",
        }
        # Fields left out go back to their defaults: this heals fail_rate and retry_after.
        changed = await client.put("/faults", json={"latency_s": 0.01})
        assert changed.json() == {**HEALTHY, "latency_s": 0.01}
        assert receiver.faults == Faults(latency_s=0.01)
        # What GET answers can be PUT back as it is.
        assert (await client.put("/faults", json=changed.json())).json() == changed.json()


async def test_faults_endpoint_is_never_faulted() -> None:
    options = {"fail_rate": 1.0, "fail_health": True, "latency_s": 0.5}
    async with serve(**options) as (receiver, client):
        start = trio.current_time()
        assert (await client.get("/faults")).status_code == 200
        assert (await client.put("/faults", json=attrs.asdict(receiver.faults))).is_success
        assert (await client.get("/stats")).status_code == 200
        assert trio.current_time() - start < options["latency_s"]
        assert receiver.stats().failed_injected == 0
        assert (await client.get("/api/App/Version")).status_code == 503


async def test_set_faults_in_process() -> None:
    async with serve() as (receiver, client):
        assert receiver.faults == Faults()
        settings = receiver.set_faults(fail_rate=1.0, fail_status=500, retry_after="1")
        assert (
            settings == receiver.faults == Faults(fail_rate=1.0, fail_status=500, retry_after="1")
        )
        failed = await submit(client, report())
        assert (failed.status_code, failed.headers["retry-after"]) == (500, "1")
        assert (await client.get("/faults")).json()["fail_status"] == 500

        assert receiver.set_faults() == Faults()
        ok = await submit(client, report())
        assert ok.status_code == 200
        assert "retry-after" not in ok.headers


async def test_settings_made_before_run_hold() -> None:
    receiver = Receiver(ReceiverConfig(fail_rate=1.0))
    receiver.set_faults(fail_first=1, fail_first_status=502)
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(receiver.run)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                assert (await submit(client, report())).status_code == 502
                assert (await submit(client, report())).status_code == 200
            nursery.cancel_scope.cancel()


async def test_fail_first_counts_from_the_change() -> None:
    async with serve(fail_first=1) as (receiver, client):
        assert (await submit(client, report())).status_code == 503
        assert (await submit(client, report())).status_code == 200
        receiver.set_faults(fail_first=2, fail_first_status=429)
        statuses = [(await submit(client, report())).status_code for _ in range(3)]
        assert statuses == [429, 429, 200]


async def _statuses(client: httpx.AsyncClient, count: int) -> list[int]:
    return [(await submit(client, report())).status_code for _ in range(count)]


async def test_a_change_keeps_the_seeded_streams_going() -> None:
    # The same seed, settings and request order give the same faults, whether the
    # settings came from the config, from set_faults, or were set again midway.
    async with serve(fail_rate=0.5, seed=7) as (receiver, client):
        straight = await _statuses(client, 30)
    async with serve(seed=7) as (receiver, client):
        receiver.set_faults(fail_rate=0.5)
        changed = await _statuses(client, 15)
        await client.put("/faults", json={"fail_rate": 0.5})
        changed += await _statuses(client, 15)
    assert set(straight) == {200, 503}
    assert changed == straight


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        (b"not json", "body: not valid JSON: "),
        (b"", "body: not valid JSON: "),
        (b"\xff\xfe", "body: not valid JSON: "),
        (b"[1]", "body: must be a JSON object of fault fields ({} heals)"),
        (b'{"fail_rate": 2}', "fail_rate: must be between 0 and 1, got 2"),
        (b'{"fail_rate": true}', "fail_rate: must be a number, got true"),
        (b'{"fail_rate": NaN}', "fail_rate: must be between 0 and 1, got nan"),
        (b'{"fail_status": 200}', "fail_status: must be an HTTP error status (400-599), got 200"),
        (b'{"fail_status": "500"}', 'fail_status: must be an integer, got "500"'),
        (b'{"fail_first": 1.5}', "fail_first: must be an integer, got 1.5"),
        (b'{"fail_first": -1}', "fail_first: must not be negative, got -1"),
        (b'{"latency_s": -1}', "latency_s: must not be negative, got -1"),
        (b'{"retry_after": 5}', "retry_after: must be a string or null, got 5"),
        (b'{"retry_after": "1\\r\\nX-Evil: 1"}', "retry_after: must be one line of printable"),
        (b'{"fail_health": 1}', "fail_health: must be true or false, got 1"),
        (b'{"seed": 1}', "seed: not a fault field (known: fail_rate, fail_status, "),
        (b'{"failrate": 1}', "failrate: not a fault field"),
    ],
)
async def test_bad_fault_bodies_get_400_naming_the_field(sent: bytes, message: str) -> None:
    async with serve(fail_rate=0.25, seed=1) as (receiver, client):
        before = receiver.faults
        refused = await client.put("/faults", content=sent)
        assert refused.status_code == 400
        text = refused.json()["message"]
        assert "\n" not in text
        assert text.startswith(message)
        assert receiver.faults == before
        assert (await client.get("/faults")).json() == attrs.asdict(before)


async def test_faults_allow_get_and_put_only() -> None:
    async with serve() as (_, client):
        wrong = await client.post("/faults", json={})
        assert wrong.status_code == 405
        assert wrong.headers["allow"] == "GET, PUT"
        assert "use GET or PUT" in wrong.json()["message"]


async def test_faults_need_the_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pywats.receiver")
    token = "faults-token-value"
    async with serve(token=token) as (receiver, client):
        for headers in ({}, {"Authorization": "Basic wrong"}):
            assert (await client.get("/faults", headers=headers)).status_code == 401
            put = await client.put("/faults", json={"fail_rate": 1.0}, headers=headers)
            assert (put.status_code, put.json()) == (401, {"message": "token refused"})
        assert receiver.faults == Faults()
        good = {"Authorization": f"Basic {token}"}
        put = await client.put("/faults", json={"fail_rate": 1.0}, headers=good)
        assert put.status_code == 200
        assert (await client.get("/faults", headers=good)).json()["fail_rate"] == 1.0
        assert (await submit(client, report(), headers=good)).status_code == 503
        assert (await client.get("/stats")).status_code == 200  # still open
    assert "faults now: fail_rate=1.0" in caplog.text
    assert token not in caplog.text


def test_set_faults_refuses_bad_values_and_keeps_the_old_ones() -> None:
    receiver = Receiver(ReceiverConfig(drop_rate=0.5))
    for fields, key in (
        ({"fail_rate": 2.0}, "fail_rate"),
        ({"fail_status": True}, "fail_status"),
        ({"latency_s": object()}, "latency_s"),
        ({"bogus": 1}, "bogus"),
    ):
        with pytest.raises(ConfigError) as caught:
            receiver.set_faults(**fields)
        assert caught.value.key == key
    assert receiver.faults == Faults(drop_rate=0.5)


def test_config_fault_fields_match_the_faults_class() -> None:
    # ReceiverConfig carries the fault fields flat (the CLI options map onto them);
    # they must stay the fields of Faults, with the same defaults and validators.
    config_fields = attrs.fields_dict(ReceiverConfig)
    for field in attrs.fields(Faults):
        twin = config_fields[field.name]
        assert (twin.type, twin.default, twin.validator) == (
            field.type,
            field.default,
            field.validator,
        ), field.name
    assert ReceiverConfig().faults == Faults()
    assert ReceiverConfig(fail_rate=0.5, fail_health=True).faults == Faults(
        fail_rate=0.5, fail_health=True
    )


# --- HTTP behaviour ------------------------------------------------------------------


async def test_keep_alive_serves_many_requests_on_one_connection() -> None:
    async with serve() as (receiver, client):
        for _ in range(30):
            assert (await submit(client, report())).status_code == 200
            assert (await client.get("/api/App/Version")).status_code == 200
        assert receiver.stats().connections == 1
        assert receiver.stats().received == 30


async def test_concurrent_connections() -> None:
    async with serve() as (receiver, client):
        url = str(client.base_url)

        async def station() -> None:
            async with httpx.AsyncClient(base_url=url) as own:
                for _ in range(10):
                    assert (await submit(own, report())).status_code == 200

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(station)
        assert receiver.stats().received == 50
        assert receiver.stats().connections == 5


async def test_oversize_body_gets_413_and_the_connection_closes() -> None:
    async with serve(max_body_bytes=1000) as (receiver, client):
        big = await submit(client, report())
        assert big.status_code == 413
        assert "larger than the limit of 1000 bytes" in big.json()["message"]
        assert big.headers["connection"] == "close"
        assert (await client.get("/api/App/Version")).status_code == 200
        assert receiver.stats().rejected == 1
        assert receiver.stats().connections == 2


async def test_oversize_chunked_body_gets_413() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 500

    async with serve(max_body_bytes=2000) as (receiver, client):
        response = await client.post("/api/Report/WSJF", content=chunks())
        assert response.status_code == 413
        assert receiver.stats().rejected == 1


async def test_chunked_body_is_accepted() -> None:
    sent = body(report())

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(sent), 100):
            yield sent[start : start + 100]

    async with serve() as (receiver, client):
        response = await client.post("/api/Report/WSJF", content=chunks())
        assert response.status_code == 200
        assert receiver.stats().received == 1


async def raw_exchange(port: int, request: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        received = b""
        while data := await stream.receive_some(65536):
            received += data
        return received


async def test_declared_length_over_64_mib_is_refused_before_the_body() -> None:
    async with serve() as (receiver, _):
        assert receiver.port is not None
        head = (
            b"POST /api/Report/WSJF HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Length: {64 * 1024 * 1024 + 1}\r\n\r\n".encode()
        )
        answer = await raw_exchange(receiver.port, head)
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert b"67108864 bytes" in answer


async def test_malformed_http_gets_400() -> None:
    async with serve() as (receiver, _):
        assert receiver.port is not None
        answer = await raw_exchange(receiver.port, b"HELLO THERE\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 ")


async def test_expect_100_continue_is_answered() -> None:
    sent = body(report())
    async with serve() as (receiver, _):
        assert receiver.port is not None
        stream = await trio.open_tcp_stream("127.0.0.1", receiver.port)
        async with stream:
            await stream.send_all(
                b"POST /api/Report/WSJF HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                + f"Content-Length: {len(sent)}\r\nConnection: close\r\n\r\n".encode()
            )
            assert (await stream.receive_some(65536)).startswith(b"HTTP/1.1 100 ")
            await stream.send_all(sent)
            answer = b""
            while data := await stream.receive_some(65536):
                answer += data
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert receiver.stats().received == 1


async def test_idle_connection_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(receiver_module, "IDLE_TIMEOUT_S", 0.05)
    async with serve() as (receiver, _):
        assert receiver.port is not None
        # Nothing sent at all: the server gives up and closes, no response.
        assert await raw_exchange(receiver.port, b"") == b""


async def test_a_bug_in_a_handler_is_a_500_not_a_lost_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(data: bytes) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(receiver_module.wsjf, "loads", broken)
    async with serve() as (receiver, client):
        response = await submit(client, report())
        assert response.status_code == 500
        assert "RuntimeError: boom" in response.json()["message"]
        assert (await client.get("/api/App/Version")).status_code == 200
        assert receiver.stats().connections == 1


async def test_store_survives_a_restart_with_a_db_file(tmp_path: Path) -> None:
    doc = report()
    db = tmp_path / "receiver.db"
    async with serve(db_path=db) as (_, client):
        assert (await submit(client, doc)).status_code == 200
    async with serve(db_path=db) as (receiver, client):
        assert (await client.get(f"/api/Report/Wsjf/{doc['id']}")).content == body(doc)
        assert receiver.stats().unique == 1
        assert (await submit(client, doc)).status_code == 200
        assert receiver.stats().duplicates == 1
    assert receiver.stats().unique == 1  # the last run's counters stay readable
    with pytest.raises(StoreError):
        receiver.get_report(doc["id"])


async def test_unopenable_db_fails_start(tmp_path: Path) -> None:
    receiver = Receiver(ReceiverConfig(db_path=tmp_path / "missing-dir" / "r.db"))
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            with pytest.raises(StoreError, match="cannot open"):
                await nursery.start(receiver.run)


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"fail_rate": 2.0}, "fail_rate"),
        ({"drop_rate": -0.1}, "drop_rate"),
        ({"fail_status": 200}, "fail_status"),
        ({"fail_first": -1}, "fail_first"),
        ({"latency_s": float("nan")}, "latency_s"),
        ({"port": 70000}, "port"),
        ({"retry_after": "1\r\nX-Evil: 1"}, "retry_after"),
    ],
)
def test_config_refuses_bad_values(options: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ReceiverConfig(**options)
    assert caught.value.key == key


# --- the CLI, as a real process ----------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pywats.cli.receiver", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def watchdog() -> Iterator[list[subprocess.Popen[str]]]:
    """Kill any CLI process a test leaves behind or that hangs."""
    procs: list[subprocess.Popen[str]] = []

    def kill_all() -> None:
        for proc in procs:
            proc.kill()

    timer = threading.Timer(30, kill_all)
    timer.start()
    yield procs
    timer.cancel()
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_serves_until_sigterm(watchdog: list[subprocess.Popen[str]]) -> None:
    token = "cli-token"
    proc = run_cli("--port", "0", "--fail-first", "1", env={"PYWATS_RECEIVER_TOKEN": token})
    watchdog.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("pywats receiver listening on http://127.0.0.1:"), line
    url = line.split()[-1]
    doc = report()
    with httpx.Client(base_url=url, timeout=TIMEOUT_S) as client:
        assert client.post("/api/Report/WSJF", content=body(doc)).status_code == 401
        auth = {"Authorization": f"Basic {token}"}
        assert client.post("/api/Report/WSJF", content=body(doc), headers=auth).status_code == 503
        sent = client.post("/api/Report/WSJF", content=body(doc), headers=auth)
        assert sent.json() == {"id": doc["id"]}
        assert client.get(f"/api/Report/Wsjf/{doc['id']}", headers=auth).content == body(doc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 0, err
    assert out == ""  # the port line was the only line
    assert "Traceback" not in err
    assert token not in err
    assert "1 received" in err


def test_cli_faults_can_be_switched_at_run_time(watchdog: list[subprocess.Popen[str]]) -> None:
    token = "cli-faults-token"
    proc = run_cli("--port", "0", "--seed", "5", env={"PYWATS_RECEIVER_TOKEN": token})
    watchdog.append(proc)
    assert proc.stdout is not None
    url = proc.stdout.readline().split()[-1]
    auth = {"Authorization": f"Basic {token}"}
    with httpx.Client(base_url=url, timeout=TIMEOUT_S, headers=auth) as client:
        assert client.put("/faults", json={"fail_rate": 1}).status_code == 200
        assert client.post("/api/Report/WSJF", content=body(report())).status_code == 503
        burst = client.put("/faults", json={"fail_rate": 1.0, "fail_status": 500})
        assert burst.json()["fail_status"] == 500
        assert client.post("/api/Report/WSJF", content=body(report())).status_code == 500
        assert client.put("/faults", json={}).json() == HEALTHY
        assert client.post("/api/Report/WSJF", content=body(report())).status_code == 200
        assert client.get("/stats").json()["failed_injected"] == 2
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 0, err
    assert "faults now: fail_rate=1.0 (seed 5)" in err
    assert "faults now: fail_rate=1.0 fail_status=500 (seed 5)" in err
    assert "faults now: none (seed 5)" in err
    assert token not in err


def test_cli_refuses_a_bad_option_in_one_line(watchdog: list[subprocess.Popen[str]]) -> None:
    proc = run_cli("--fail-rate", "2")
    watchdog.append(proc)
    out, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 1
    assert out == ""
    assert err.splitlines() == ["pywats receiver: --fail-rate: must be between 0 and 1, got 2"]


def test_cli_reports_a_busy_port_in_one_line(watchdog: list[subprocess.Popen[str]]) -> None:
    first = run_cli("--port", "0")
    watchdog.append(first)
    assert first.stdout is not None
    port = first.stdout.readline().rsplit(":", 1)[-1].strip()
    second = run_cli("--port", port)
    watchdog.append(second)
    out, err = second.communicate(timeout=TIMEOUT_S)
    assert second.returncode == 1
    assert out == ""
    lines = [line for line in err.splitlines() if "pywats receiver:" in line]
    assert len(lines) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0]
    assert "Traceback" not in err
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=TIMEOUT_S)
    assert first.returncode == 0
