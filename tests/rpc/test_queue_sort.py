"""``queue.list`` sorted by the service, over the real socket of a real service: every
order is total, so page 2 continues page 1 exactly, even while reports come in between.

The queue is written first with the real :class:`~pywats.store.Store` (to give the rows
different serials, attempts and states), then the service opens that file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from pywats.rpc.client import RpcClient
from pywats.rpc.errors import ErrorCode, RpcError
from pywats.store import LIST_ORDERS, Store
from tests.rpc.test_socket import next_note, serving
from tests.test_service import drop
from tests.test_store import FakeClock, report

# Serials with repeats (ties must keep one order across pages), attempts and states mixed.
SERIALS = ["B", "A", "C", "A", "B", "A", "D", "C", "A"]


async def fill(db: Path) -> list[str]:
    """Queue :data:`SERIALS` a second apart; returns their ids in insertion order."""
    clock = FakeClock()
    async with await Store.open(db, clock=clock) as store:
        for n, sn in enumerate(SERIALS):
            await store.enqueue([report(n, sn=sn)])
            clock.advance(1)
        # A few attempts (pending again, due at different times), and one rejection.
        for delay in (50.0, 10.0, 30.0):
            [claim] = await store.claim()
            await store.retry_later(claim.id, delay_s=delay, error="HTTP 503")
        [claim] = await store.claim()
        await store.mark_failed(claim.id, error="HTTP 400: bad")
    return [report(n).id for n in range(len(SERIALS))]


async def every_page(client: RpcClient, limit: int, **params: Any) -> list[list[dict[str, Any]]]:
    pages = []
    cursor = None
    while True:
        more = {} if cursor is None else {"cursor": cursor}
        page = await client.call("queue.list", limit=limit, **more, **params)
        pages.append(page["reports"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


def expected(rows: list[dict[str, Any]], sort: str, inserted: list[str]) -> list[str]:
    """The order the service promises, computed here from the rows themselves."""
    order = LIST_ORDERS[sort]
    rank = {"failed": 0, "pending": 1, "uploading": 2, "done": 3}
    column = order.column

    def value(row: dict[str, Any]) -> Any:
        return rank[row["state"]] if column == "state" else row[column]

    # Ties: newest queued first (oldest first for "oldest"), then the primary order.
    by_ties = sorted(rows, key=lambda r: inserted.index(r["id"]), reverse=order.ties_descending)
    return [r["id"] for r in sorted(by_ties, key=value, reverse=order.descending)]


async def test_every_order_pages_consistently_over_the_socket(tmp_path: Path) -> None:
    inserted = await fill(tmp_path / "queue.db")
    async with serving(tmp_path, None) as (_, path), RpcClient(path) as client:
        everything = (await client.call("queue.list", limit=100))["reports"]
        assert len(everything) == len(SERIALS)
        for sort in LIST_ORDERS:
            want = expected(everything, sort, inserted)
            whole = [r["id"] for r in (await client.call("queue.list", sort=sort))["reports"]]
            assert whole == want, sort
            pages = await every_page(client, 2, sort=sort)
            assert [len(p) for p in pages] == [2, 2, 2, 2, 1], sort
            # Page 2 starts where page 1 ended, and so on: together, the whole order.
            assert [r["id"] for page in pages for r in page] == want, sort
            backwards = await every_page(client, 4, sort=sort, reverse=True)
            assert [r["id"] for page in backwards for r in page] == want[::-1], sort
        by_sn = [r["sn"] for r in (await client.call("queue.list", sort="sn"))["reports"]]
        assert by_sn == sorted(SERIALS)
        tries = [
            r["attempts"] for r in (await client.call("queue.list", sort="attempts"))["reports"]
        ]
        assert tries == sorted(tries, reverse=True)
        assert tries[0] == 1
        states = (await client.call("queue.list", sort="state", limit=1))["reports"]
        assert states[0]["state"] == "failed"


async def test_a_report_queued_between_two_pages_repeats_no_row(tmp_path: Path) -> None:
    async with serving(tmp_path, None) as (_, path), RpcClient(path) as client:
        notes = await client.subscribe()
        ids = []
        for n in range(5):
            ids.append(drop(tmp_path / "in", f"p{n}.json"))
            await next_note(notes, "report.queued", report_id=ids[-1])
        first = await client.call("queue.list", limit=2)
        assert [r["id"] for r in first["reports"]] == ids[:2:-1]
        # A new report comes while the user looks at page 1: page 2 still follows it
        # (an offset would show page 1's last row again).
        newer = drop(tmp_path / "in", "p5.json")
        await next_note(notes, "report.queued", report_id=newer)
        rest = await client.call("queue.list", limit=2, cursor=first["next_cursor"])
        assert [r["id"] for r in rest["reports"]] == ids[2:0:-1]
        last = await client.call("queue.list", limit=2, cursor=rest["next_cursor"])
        assert [r["id"] for r in last["reports"]] == ids[:1]
        assert last["next_cursor"] is None
        # A row leaving the list between pages skips none either.
        page = await client.call("queue.list", limit=2)
        await client.call("queue.delete", ids=[page["reports"][0]["id"]])
        rest = await client.call("queue.list", limit=2, cursor=page["next_cursor"])
        assert [r["id"] for r in rest["reports"]] == ids[3:1:-1]


@pytest.mark.parametrize(
    "params",
    [{"sort": "size"}, {"sort": 3}, {"reverse": "yes"}, {"cursor": "k1.bm9wZQ=="}],
    ids=["unknown-sort", "sort-not-text", "reverse-not-bool", "garbled-cursor"],
)
async def test_bad_orders_and_cursors_are_invalid_params(
    tmp_path: Path, params: dict[str, Any]
) -> None:
    async with serving(tmp_path, None) as (_, path), RpcClient(path) as client:
        with pytest.raises(RpcError) as caught:
            await client.call("queue.list", **params)
        assert caught.value.code == ErrorCode.INVALID_PARAMS


async def test_a_cursor_of_another_order_is_refused(tmp_path: Path) -> None:
    async with serving(tmp_path, None) as (_, path), RpcClient(path) as client:
        notes = await client.subscribe()
        for n in range(3):
            rid = drop(tmp_path / "in", f"p{n}.json")
            await next_note(notes, "report.queued", report_id=rid)
        page = await client.call("queue.list", limit=1, sort="sn")
        with trio.fail_after(10), pytest.raises(RpcError, match="another order") as caught:
            await client.call("queue.list", limit=1, sort="pn", cursor=page["next_cursor"])
        assert caught.value.data == {"param": "cursor"}
