"""The station's clock against the server's: ``service.status`` says how far ahead it is,
from the ``Date`` of the last successful probe (the TUI warns when it runs ahead)."""

from __future__ import annotations

from pathlib import Path

from pywats.rpc.client import RpcClient
from pywats.upload.status import clock_ahead
from tests.rpc.test_socket import serving
from tests.test_service import receiving

DATE = "Tue, 01 Dec 2026 08:00:00 GMT"
AT = 1_796_112_000.0  # that Date, in epoch seconds


def test_clock_ahead_of_a_date_header() -> None:
    assert clock_ahead(DATE, AT) == 0.0
    assert clock_ahead(DATE, AT + 125.5) == 125.5
    assert clock_ahead(DATE, AT - 3) == -3.0
    for bad in (None, "", "yesterday", "Tue, 01 Dec 2026 08:00:00"):
        assert clock_ahead(bad, AT) is None, bad


async def test_the_status_says_how_far_ahead_the_station_is(tmp_path: Path) -> None:
    async with (
        receiving() as receiver,
        serving(tmp_path, receiver.url) as (_, path),
        RpcClient(path) as client,
    ):
        tested = await client.call("server.test")
        assert tested["state"] == "online"
        # The same machine: the same clock, to the Date header's second.
        assert abs(tested["clock_ahead_s"]) < 2.0
        status = await client.call("service.status")
        assert abs(status["server"]["clock_ahead_s"]) < 2.0
