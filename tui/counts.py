"""The counts the events alone cannot give after a (re)connection: reports queued today by
state, files refused today, and the reports waiting for a retry. Read once per connection
from ``queue.list`` and ``files.errors``; the events keep them up to date afterwards."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pywats.rpc.errors import RpcClientError, RpcError
from tui.model import Today

if TYPE_CHECKING:
    from tui.app import StationApp

__all__ = ["MAX_PAGES", "PAGE", "load_counts", "local_midnight"]

PAGE = 1000
MAX_PAGES = 20
"""At most this many pages of 1000 are read (a station queueing more a day gets "20000+")."""


def local_midnight(at: float) -> float:
    """The epoch time of the local midnight that began the day of ``at``."""
    t = time.localtime(at)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))


async def load_counts(app: StationApp) -> None:
    """Fill ``app.model.today`` and ``app.model.retrying`` from the service."""
    model = app.model
    now = app.clock()
    midnight = local_midnight(now)
    today = Today()
    today.roll(now)
    try:
        cursor = None
        done = False
        for _ in range(MAX_PAGES):
            page = await app.rpc("queue.list", limit=PAGE, cursor=cursor)
            for row in page.get("reports") or []:
                # Newest first: the first one from before midnight ends today's.
                if float(row.get("created_at") or 0) < midnight:
                    done = True
                    break
                today.queued += 1
                if row.get("state") == "done":
                    today.uploaded += 1
                elif row.get("state") == "failed":
                    today.failed += 1
            cursor = page.get("next_cursor")
            if done or cursor is None:
                break
        files = await app.rpc("files.errors", limit=1000)
        today.rejected = sum(
            1 for f in files.get("files") or [] if float(f.get("mtime") or 0) >= midnight
        )
        waiting: set[str] = set()
        cursor = None
        for _ in range(MAX_PAGES):
            page = await app.rpc("queue.list", state="pending", limit=PAGE, cursor=cursor)
            waiting |= {str(r["id"]) for r in page.get("reports") or [] if r.get("attempts")}
            cursor = page.get("next_cursor")
            if cursor is None:
                break
    except (RpcError, RpcClientError):
        return  # the counts stay what the events make them
    if app.model is not model:
        return  # another instance meanwhile
    model.today = today
    model.retrying = waiting
    model.changed.add("counts")
