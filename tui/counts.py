"""The counts the events alone cannot give after a (re)connection, read from the service:
today's reports (queued, uploaded, refused by the server), today's files that did not
convert, and the reports waiting for a retry.

They are read once per connection (and again after the TUI missed events) while the
events go on arriving; the model merges the two so that the result is exact: today's
counts are sets of ids (a report seen in a list and in an event counts once), and the
events that came during the read are applied again on top of it
(:meth:`~tui.model.StationModel.end_read`). ``queue.list`` pages by keyset in a total
order, so a page read while reports come and go neither repeats nor skips one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pywats.rpc.errors import RpcClientError, RpcError
from tui.model import Today, rejected_key

if TYPE_CHECKING:
    from tui.app import StationApp

__all__ = ["MAX_PAGES", "PAGE", "load_counts", "local_midnight"]

PAGE = 1000
MAX_PAGES = 20
"""At most this many pages of 1000 are read per list (a station queueing more a day gets
its counts marked as a lower bound, ``20000+``)."""
FILES_MAX = 1000
"""Error files read at most (``files.errors`` ``limit``)."""


def local_midnight(at: float) -> float:
    """The epoch time of the local midnight that began the day of ``at``."""
    t = time.localtime(at)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))


async def _walk(
    app: StationApp, keep: Callable[[dict[str, Any]], bool], **params: Any
) -> tuple[list[dict[str, Any]], bool]:
    """The rows of ``queue.list`` (``params``) while ``keep(row)`` holds; and whether the
    list was read to its end (or to the first row not kept)."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        more = {} if cursor is None else {"cursor": cursor}
        page = await app.rpc("queue.list", limit=PAGE, **params, **more)
        for row in page.get("reports") or []:
            if not keep(row):
                return rows, True
            rows.append(row)
        cursor = page.get("next_cursor")
        if cursor is None:
            return rows, True
    return rows, False


async def read_counts(app: StationApp, now: float) -> tuple[Today, set[str]]:
    """Today's counts and the reports waiting for a retry, as the service has them now."""
    midnight = local_midnight(now)
    today = Today()
    today.roll(now)

    def since_midnight(column: str) -> Callable[[dict[str, Any]], bool]:
        return lambda row: float(row.get(column) or 0) >= midnight

    queued, whole_q = await _walk(app, since_midnight("created_at"))
    # A report's updated_at is when it last changed state: for done ones, their upload.
    done, whole_d = await _walk(app, since_midnight("updated_at"), state="done", sort="updated")
    failed, whole_f = await _walk(app, since_midnight("updated_at"), state="failed", sort="updated")
    today.queued_ids = {str(r["id"]) for r in queued}
    today.uploaded_ids = {str(r["id"]) for r in done}
    today.failed_ids = {str(r["id"]) for r in failed}
    files = await app.rpc("files.errors", limit=FILES_MAX)
    today.rejected_files = {
        rejected_key(f.get("folder"), f.get("path"))
        for f in files.get("files") or []
        if float(f.get("mtime") or 0) >= midnight
    }
    today.complete = whole_q and whole_d and whole_f and not files.get("truncated")
    pending, _ = await _walk(app, lambda row: True, state="pending")
    waiting = {str(r["id"]) for r in pending if r.get("attempts")}
    return today, waiting


async def load_counts(app: StationApp) -> None:
    """Read the counts and merge them into ``app.model`` (see the module's doc)."""
    model = app.model
    journal = model.begin_read()
    today: Today | None = None
    waiting: set[str] | None = None
    try:
        today, waiting = await read_counts(app, app.clock())
    except (RpcError, RpcClientError):
        pass  # the counts stay what the events make them
    finally:
        # Also when cancelled (a newer read, the app ends): the journal must not grow.
        if model.journal is journal:
            model.journal = None
    if app.model is model:  # not another instance meanwhile
        model.end_read(journal, today, waiting)
