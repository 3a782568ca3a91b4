"""The queue: reports by state, sorted by the service (so across every page) and paged,
``/`` to search by serial or part number (the last search is remembered), a detail pane
that follows the highlighted report (beside the table on a wide terminal, below it at
80x24) with its JSON (also in ``$PAGER``), retry, retry every failed one, delete (after a
confirmation)."""

from __future__ import annotations

import functools
import json
import os
import shlex
import subprocess
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import events, on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Label, Static, TextArea

from pywats.rpc.errors import RpcClientError, RpcError
from tui.model import clock_text, duration_text
from tui.screen import ConfirmScreen, SaveScreen, StationScreen, copy_text, start, table

__all__ = [
    "DETAIL_DELAY_S",
    "PAGE_SIZE",
    "SORTS",
    "STATES",
    "WIDE_COLUMNS",
    "QueueScreen",
    "ReportScreen",
]

PAGE_SIZE = 100
"""Reports per page."""
STATES = (None, "pending", "failed", "uploading", "done")
"""The state filters ``s`` steps through (``None``: every state)."""
QUEUE_COLUMNS = (
    ("state", "state"),
    ("sn", "serial"),
    ("pn", "part number"),
    ("result", "res"),
    ("attempts", "try"),
    ("created", "queued"),
    ("last_error", "last error"),
)
SORTS = ("newest", "updated", "state", "sn", "pn", "result", "attempts", "next_attempt")
"""The service's orders (``queue.list`` ``sort``) that ``o`` steps through."""
COLUMN_SORTS = {
    "state": "state",
    "sn": "sn",
    "pn": "pn",
    "result": "result",
    "attempts": "attempts",
    "created": "newest",
}
"""The order a click on a column's header asks for."""
DETAIL_DELAY_S = 0.25
"""How long the highlight must rest on a report before its JSON is fetched: running down
the table with the arrow keys costs one ``queue.get``, not one per row passed."""
WIDE_COLUMNS = 120
"""From this terminal width on, the detail pane is beside the table, else below it."""

_STATE_STYLE = {"failed": "bold red", "pending": "yellow", "uploading": "cyan", "done": "green"}


def sort_text(sort: str, reverse: bool) -> str:
    """How the bar names an order (``newest``, ``sn reversed``, ...)."""
    name = sort.replace("_", " ")
    return f"{name} reversed" if reverse else name


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at or 0))


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)


def report_text(report: dict[str, Any], now: float) -> str:
    """A report's detail as text: its header fields, attempts, server answer, source."""
    next_at = report.get("next_attempt_at")
    due = ""
    if report.get("state") == "pending" and next_at:
        due = " (due now)" if next_at <= now else f" (in {duration_text(next_at - now)})"
    lines = [
        f"id            {report.get('id')}",
        f"state         {report.get('state')}",
        f"part number   {report.get('pn')}",
        f"serial        {report.get('sn')}",
        f"result        {report.get('result')}",
        f"start         {report.get('start')}",
        f"queued        {_when(report.get('created_at'))}",
        f"attempts      {report.get('attempts')}",
        f"next attempt  {clock_text(next_at) if next_at else '-'}{due}",
        f"last HTTP     {_or_dash(report.get('last_status'))}",
        f"server said   {report.get('last_error') or '-'}",
        f"source file   {report.get('source') or '-'}",
        f"converter     {report.get('converter')}",
        f"size          {report.get('size')} bytes",
    ]
    return "\n".join(lines)


def report_summary(report: dict[str, Any], now: float) -> str:
    """The fields of :func:`report_text` in eight lines of at most 80 columns (the pane
    below the table at 80x24): what went wrong first, then what the report is."""
    next_at = report.get("next_attempt_at")
    due = "-"
    if report.get("state") == "pending" and next_at:
        due = (
            "due now"
            if next_at <= now
            else f"{clock_text(next_at)} (in {duration_text(next_at - now)})"
        )

    def pair(a: str, x: object, b: str, y: object) -> str:
        return f"{a:<10} {x!s:<26} {b:<10} {y}"

    lines = [
        pair("state", report.get("state"), "attempts", report.get("attempts")),
        pair("next try", due, "last HTTP", _or_dash(report.get("last_status"))),
        f"{'server':<10} {' '.join(str(report.get('last_error') or '-').split())}",
        pair("serial", report.get("sn"), "part", report.get("pn")),
        pair("result", report.get("result"), "start", report.get("start")),
        pair("queued", _when(report.get("created_at")), "size", f"{report.get('size')} bytes"),
        f"{'source':<10} {report.get('source') or '-'} ({report.get('converter')})",
        f"{'id':<10} {report.get('id')}",
    ]
    return "\n".join(lines)


def open_in_pager(app: App[Any], text: str) -> None:
    """Show ``text`` in ``$PAGER`` (default ``less``), the app suspended meanwhile."""
    pager = shlex.split(os.environ.get("PAGER") or "less") or ["less"]
    with tempfile.NamedTemporaryFile(
        "w", suffix=".txt", prefix="pywats-report-", delete=False, encoding="utf-8"
    ) as out:
        out.write(text)
    try:
        with app.suspend():
            subprocess.run([*pager, out.name], check=False)
    except Exception as exc:  # no terminal to hand over (headless), no such pager
        app.notify(f"cannot open the pager: {exc}", severity="error")
    finally:
        os.unlink(out.name)


def pretty_json(body: str | None) -> str:
    if not body:
        return ""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


PANE_JSON_LINES = 200
PANE_JSON_CHARS = 20_000
"""How much of a report's JSON the queue's detail pane shows (Enter shows more). The pane
is a Static, which lays out all of its text: a report of a few MB (thousands of steps,
attachments) took seconds to draw there, on every highlight and under every dialog."""

REPORT_JSON_LINES = 50_000
REPORT_JSON_CHARS = 2_000_000
"""How much of a report's JSON the report screen shows: its TextArea draws only the lines
in view, but still indexes and wraps all of them (5.7 MB took 8 s). ``v`` pages all of it
and ``w`` saves all of it."""


def head(text: str, lines: int, chars: int, rest: str) -> str:
    """``text`` up to ``lines`` lines and ``chars`` characters; if that cuts it, a last
    line says how many lines are left and ``rest`` (where to see them)."""
    cut = -1
    for _ in range(lines):
        cut = text.find("\n", cut + 1)
        if cut < 0:
            cut = len(text)
            break
    cut = min(cut, chars)
    if cut >= len(text):
        return text
    more = text.count("\n", cut + 1) + 1
    return f"{text[:cut]}\n… {more:,} more line(s): {rest}"


@functools.lru_cache(maxsize=4)
def json_preview(body: str | None) -> str:
    """The start of :func:`pretty_json` that the pane shows (see :data:`PANE_JSON_LINES`).

    Cached: the pane is drawn again on every change of the queue, with the same report's
    body, and formatting a large one takes tens of milliseconds.
    """
    return head(pretty_json(body), PANE_JSON_LINES, PANE_JSON_CHARS, "Enter shows the whole report")


class QueueScreen(StationScreen):
    """Reports in the queue, one page at a time, and the highlighted one's detail."""

    MODE = "queue"
    AUTO_FOCUS = "#queue-table"
    TITLE = "Queue"
    CHANGING = frozenset({"retry", "retry_failed", "delete"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Detail"),
        Binding("slash", "search", "Search"),
        Binding("s", "state", "State"),
        Binding("o", "sort", "Sort", show=False),
        Binding("O", "reverse", "Reverse", show=False),
        Binding("n", "next_page", "Next page", show=False),
        Binding("p", "previous_page", "Previous page", show=False),
        Binding("v", "pager", "In $PAGER", show=False),
        Binding("z", "toggle_pane", "Detail pane on/off", show=False),
        Binding("r", "retry", "Retry"),
        Binding("R", "retry_failed", "Retry failed"),
        Binding("d,delete", "delete", "Delete"),
        Binding("escape", "clear_search", "Clear search", show=False),
    ]
    PALETTE = (
        ("Queue: search by serial or part number", "search", "/"),
        ("Queue: show the next state (all, pending, failed, ...)", "state", "s"),
        ("Queue: sort by the next column (the service sorts every page)", "sort", "o"),
        ("Queue: the selected report's text in $PAGER", "pager", "v"),
        ("Queue: show or hide the detail pane", "toggle_pane", "z"),
        ("Queue: retry the selected report", "retry", "r"),
        ("Queue: retry every failed report", "retry_failed", "R"),
        ("Queue: delete the selected report", "delete", "d"),
    )
    COMMANDS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("list the queue", "pywats queue list [--state S] [--search TEXT]"),
        ("one report with its JSON", "pywats queue show ID"),
        ("retry", "pywats queue retry ID ... | --failed"),
        ("delete", "pywats queue delete ID ..."),
    )
    DEFAULT_CSS = """
    QueueScreen #queue-bar { height: 1; }
    QueueScreen #queue-main { layout: vertical; height: 1fr; }
    QueueScreen #queue-main.wide { layout: horizontal; }
    QueueScreen #queue-table { height: 1fr; min-height: 5; }
    QueueScreen #queue-detail { height: 9; border-top: solid $panel-lighten-2; }
    QueueScreen #queue-main.wide #queue-detail {
        height: 1fr; width: 58; border-top: none; border-left: solid $panel-lighten-2;
    }
    QueueScreen #queue-main.wide #queue-table { width: 1fr; }
    QueueScreen #queue-main.no-pane #queue-detail { display: none; }
    QueueScreen #queue-search { display: none; height: 1; border: none; }
    QueueScreen #queue-search.shown { display: block; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.state_index = 0
        self.sort = "newest"
        self.reverse = False
        self.cursors: list[str | None] = [None]
        self.next_cursor: str | None = None
        self.rows: list[dict[str, Any]] = []
        self.busy = False
        self.problem = ""
        self.detail: dict[str, Any] | None = None
        """The last ``queue.get`` answer of the pane (``None`` before the first)."""
        self.detail_loading: str | None = None
        """The id whose ``queue.get`` is awaited (the pane says "loading…")."""
        self._detail_timer: Timer | None = None
        self._pane_shows = ""

    @property
    def state_filter(self) -> str | None:
        return STATES[self.state_index]

    @property
    def search(self) -> str:
        return self.station.last_search

    def compose_body(self) -> ComposeResult:
        yield Static(id="queue-bar")
        with Container(id="queue-main"):
            yield table("queue-table", QUEUE_COLUMNS)
            with VerticalScroll(id="queue-detail"):
                yield Static("", id="detail-text", markup=False)
        yield Input(placeholder="serial or part number contains…", id="queue-search", disabled=True)

    def on_mount(self) -> None:
        self.query_one(Input).cursor_blink = False
        self._layout(self.app.size.width)

    def on_resize(self, event: events.Resize) -> None:
        self._layout(event.size.width)

    def _layout(self, width: int) -> None:
        main = self.query_one("#queue-main")
        wide = width >= WIDE_COLUMNS
        if wide != main.has_class("wide"):
            main.set_class(wide, "wide")
            self._pane_shows = ""  # the pane's text has another shape now
            self._show_detail()

    # --- loading ----------------------------------------------------------------------

    def connected_again(self) -> None:
        self.reload()

    def show(self, changed: set[str]) -> None:
        self._bar()
        if "queue" in changed and not self.busy and self.is_current:
            self.reload()

    def reload(self) -> None:
        """Read the current page again (the newest answer wins)."""
        if self.model.connection != "connected":
            return
        self.busy = True
        self._bar()
        start(self, self._load, "queue")

    def list_params(self) -> dict[str, Any]:
        """The ``queue.list`` parameters of the current page."""
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        if self.state_filter:
            params["state"] = self.state_filter
        if self.search:
            params["search"] = self.search
        if self.sort != "newest":
            params["sort"] = self.sort
        if self.reverse:
            params["reverse"] = True
        if self.cursors[-1] is not None:
            params["cursor"] = self.cursors[-1]
        return params

    async def _load(self) -> None:
        try:
            page = await self.station.rpc("queue.list", **self.list_params())
        except (RpcError, RpcClientError) as exc:
            self.problem = getattr(exc, "message", None) or str(exc)
            self.busy = False
            self._bar()
            return
        self.problem = ""
        self.busy = False
        self.next_cursor = page.get("next_cursor")
        rows = list(page.get("reports") or [])
        if rows != self.rows:
            self.rows = rows
            self._fill()
        self._bar()

    def _bar(self) -> None:
        bar = Text()
        for state in STATES:
            name = state or "all"
            style = "bold reverse" if state == self.state_filter else "dim"
            bar.append(f" {name} ", style=style)
        bar.append(f"  page {len(self.cursors)}")
        if self.next_cursor:
            bar.append(" (n: more)")
        bar.append(f"  sort {sort_text(self.sort, self.reverse)}")
        if self.search:
            bar.append(f"  search '{self.search}'", style="bold")
        if self.busy:
            bar.append("  loading…", style="italic")
        if self.problem:
            bar.append(f"  {self.problem}", style="bold red")
        bar.no_wrap = True
        bar.overflow = "ellipsis"
        self.query_one("#queue-bar", Static).update(bar)

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        selected = self.selected_id()
        table.clear()
        # In the service's order: it sorted every page, not only this one.
        for row in self.rows:
            state = str(row.get("state"))
            table.add_row(
                Text(state, style=_STATE_STYLE.get(state, "")),
                str(row.get("sn") or ""),
                str(row.get("pn") or ""),
                str(row.get("result") or ""),
                str(row.get("attempts") or 0),
                clock_text(row.get("created_at")),
                Text(" ".join(str(row.get("last_error") or "").split())[:60], style="red"),
                key=str(row.get("id")),
            )
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected))
        self._follow()

    def selected_id(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:
            return None
        return None if key.value is None else str(key.value)

    def selected_row(self) -> dict[str, Any] | None:
        wanted = self.selected_id()
        return next((r for r in self.rows if str(r.get("id")) == wanted), None)

    # --- the detail pane --------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#queue-table")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._follow()

    def _follow(self) -> None:
        """The pane follows the highlighted row: its list fields at once, its JSON once
        the highlight has rested :data:`DETAIL_DELAY_S` (fetched again only when the row
        changed since)."""
        row = self.selected_row()
        if self._detail_timer is not None:
            self._detail_timer.stop()
            self._detail_timer = None
        if row is not None and not self._detail_fresh(row):
            self._detail_timer = self.set_timer(DETAIL_DELAY_S, self._fetch_detail)
        self._show_detail()

    def _detail_fresh(self, row: dict[str, Any]) -> bool:
        detail = self.detail
        return (
            detail is not None
            and detail.get("id") == row.get("id")
            and detail.get("updated_at") == row.get("updated_at")
            and detail.get("state") == row.get("state")
        )

    def _fetch_detail(self) -> None:
        self._detail_timer = None
        report_id = self.selected_id()
        if report_id is None or self.model.connection != "connected":
            return
        self.detail_loading = report_id
        self._show_detail()
        start(self, partial(self._load_detail, report_id), "detail")

    async def _load_detail(self, report_id: str) -> None:
        try:
            report = await self.station.rpc("queue.get", id=report_id)
        except (RpcError, RpcClientError) as exc:
            report = {"id": report_id, "problem": getattr(exc, "message", None) or str(exc)}
        if self.detail_loading == report_id:
            self.detail_loading = None
        self.detail = report
        self._show_detail()

    def _show_detail(self) -> None:
        row = self.selected_row()
        if row is None:
            text = "No report here." if not self.busy else ""
        else:
            detail = self.detail if (self.detail or {}).get("id") == row.get("id") else None
            shown = {**row, **(detail or {})}
            now = self.station.clock()
            wide = self.query_one("#queue-main").has_class("wide")
            fields = report_text(shown, now) if wide else report_summary(shown, now)
            if detail is not None and detail.get("problem"):
                body = f"cannot read it: {detail['problem']}"
            elif detail is not None and detail.get("body") is not None:
                body = json_preview(detail.get("body"))
            else:
                body = "loading the JSON…"
            text = f"{fields}\n\n{body}"
        if text != self._pane_shows:  # a redraw costs bytes on a slow link
            self._pane_shows = text
            self.query_one("#detail-text", Static).update(text)

    def detail_text(self) -> str:
        """The highlighted report as ``v`` pages it (fields and JSON, if fetched)."""
        row = self.selected_row()
        if row is None:
            return ""
        detail = self.detail if (self.detail or {}).get("id") == row.get("id") else None
        shown = {**row, **(detail or {})}
        text = report_text(shown, self.station.clock())
        if detail is not None and detail.get("body") is not None:
            text += "\n\n" + pretty_json(detail.get("body"))
        return text

    def action_pager(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        if self.detail is None or self.detail.get("id") != row.get("id"):
            # Not fetched yet (the highlight just moved): the full view fetches it.
            self.action_open()
            return
        open_in_pager(self.app, self.detail_text())

    def action_toggle_pane(self) -> None:
        main = self.query_one("#queue-main")
        main.toggle_class("no-pane")

    # --- keys -------------------------------------------------------------------------

    def action_state(self) -> None:
        self.state_index = (self.state_index + 1) % len(STATES)
        self.cursors = [None]
        self.reload()

    def _sort_by(self, sort: str, reverse: bool) -> None:
        # The service sorts, so a new order starts again at page 1.
        self.sort, self.reverse = sort, reverse
        self.cursors = [None]
        self.next_cursor = None
        self.reload()

    def action_sort(self) -> None:
        self._sort_by(SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)], False)

    def action_reverse(self) -> None:
        self._sort_by(self.sort, not self.reverse)

    @on(DataTable.HeaderSelected)
    def header_clicked(self, event: DataTable.HeaderSelected) -> None:
        sort = COLUMN_SORTS.get(str(event.column_key.value))
        if sort is not None:
            self._sort_by(sort, not self.reverse if sort == self.sort else False)

    def action_next_page(self) -> None:
        if self.next_cursor:
            self.cursors.append(self.next_cursor)
            self.reload()

    def action_previous_page(self) -> None:
        if len(self.cursors) > 1:
            self.cursors.pop()
            self.reload()

    def action_search(self) -> None:
        field = self.query_one(Input)
        field.value = self.search
        field.disabled = False
        field.add_class("shown")
        field.focus()

    def action_clear_search(self) -> None:
        field = self.query_one(Input)
        if field.has_class("shown"):
            field.remove_class("shown")
            field.disabled = True
            self.query_one(DataTable).focus()
            return
        if self.search:
            self.station.last_search = ""
            self.cursors = [None]
            self.reload()

    @on(Input.Submitted, "#queue-search")
    def searched(self, event: Input.Submitted) -> None:
        self.station.last_search = event.value.strip()
        event.input.remove_class("shown")
        event.input.disabled = True
        self.query_one(DataTable).focus()
        self.cursors = [None]
        self.reload()

    @on(DataTable.RowSelected)
    def row_chosen(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        report_id = self.selected_id()
        if report_id is not None:
            self.app.push_screen(ReportScreen(report_id, self))

    def action_retry(self) -> None:
        report_id = self.selected_id()
        if report_id is None:
            self.notify("no report selected", severity="warning")
            return
        start(self, partial(self.retry, [report_id]))

    async def retry(self, ids: list[str]) -> None:
        try:
            result = await self.station.rpc("queue.retry", ids=ids)
        except (RpcError, RpcClientError) as exc:
            self.failed("retry", exc)
            return
        self.changed_by(f"{result['count']} report(s) due now", f"queue retry {' '.join(ids)}")
        self.reload()

    def action_retry_failed(self) -> None:
        start(self, self._retry_failed)

    async def _retry_failed(self) -> None:
        try:
            result = await self.station.rpc("queue.retry", failed=True)
        except (RpcError, RpcClientError) as exc:
            self.failed("retry every failed report", exc)
            return
        self.changed_by(f"{result['count']} failed report(s) due now", "queue retry --failed")
        self.reload()

    def action_delete(self) -> None:
        row = self.selected_row()
        if row is None:
            self.notify("no report selected", severity="warning")
            return
        self.ask_delete(row)

    def ask_delete(self, row: dict[str, Any]) -> None:
        report_id = str(row.get("id"))

        def answered(yes: bool | None) -> None:
            if yes:
                start(self, partial(self.delete, [report_id]))

        self.app.push_screen(
            ConfirmScreen(
                f"Delete report {row.get('sn')} ({row.get('pn')}, {row.get('state')})?\n"
                "It will not be uploaded.",
                self.station.cli(f"queue delete {report_id}"),
            ),
            answered,
        )

    async def delete(self, ids: list[str]) -> None:
        try:
            result = await self.station.rpc("queue.delete", ids=ids)
        except (RpcError, RpcClientError) as exc:
            self.failed("delete", exc)
            return
        self.changed_by(
            f"{len(result['deleted'])} report(s) deleted", f"queue delete {' '.join(ids)}"
        )
        self.reload()

    def export(self) -> tuple[str, str]:
        lines = ["state\tserial\tpart number\tresult\tattempts\tqueued\tid\tlast error"]
        for row in self.rows:
            lines.append(
                "\t".join(
                    str(x)
                    for x in (
                        row.get("state"),
                        row.get("sn"),
                        row.get("pn"),
                        row.get("result"),
                        row.get("attempts"),
                        clock_text(row.get("created_at")),
                        row.get("id"),
                        row.get("last_error") or "",
                    )
                )
            )
        return "queue", "\n".join(lines)


class ReportScreen(ModalScreen[None]):
    """One report: its fields, what the server said, and its JSON.

    The JSON is in a read-only TextArea, which draws only the lines in view: a report of a
    few MB (attachments, thousands of steps) opened in a Static took seconds to show and
    held up every key after it.
    """

    DEFAULT_CSS = """
    ReportScreen > Vertical { background: $surface; }
    ReportScreen #report-fields { height: auto; }
    ReportScreen #report-body {
        height: 1fr; border: none; border-top: solid $panel-lighten-2; padding: 0;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back"),
        Binding("v", "pager", "Pager"),
        Binding("r", "retry", "Retry"),
        Binding("d", "delete", "Delete"),
        # Priority: the TextArea would take the Delete key (it deletes nothing, read-only).
        Binding("delete", "delete", "Delete", show=False, priority=True),
        Binding("c", "copy", "Copy"),
        Binding("w", "save", "Save"),
    ]
    CHANGING = frozenset({"retry", "delete"})

    def __init__(self, report_id: str, queue: QueueScreen) -> None:
        super().__init__()
        self.report_id = report_id
        self.queue = queue
        self.report: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Report {self.report_id}", classes="title")
            yield Static("loading…", id="report-fields", markup=False)
            yield TextArea("", id="report-body", read_only=True, soft_wrap=True)
            yield Footer(compact=True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (self.queue.station.read_only and action in self.CHANGING)

    def on_mount(self) -> None:
        start(self, self._load, "load")

    async def _load(self) -> None:
        try:
            report = await self.queue.station.rpc("queue.get", id=self.report_id)
        except (RpcError, RpcClientError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            self.query_one("#report-fields", Static).update(f"cannot read it: {message}")
            return
        self.report = report
        now = self.queue.station.clock()
        self.query_one("#report-fields", Static).update(report_text(report, now))
        shown = head(
            pretty_json(report.get("body")),
            REPORT_JSON_LINES,
            REPORT_JSON_CHARS,
            "v pages the whole report, w saves it",
        )
        self.query_one("#report-body", TextArea).load_text(shown)

    def text(self) -> str:
        if self.report is None:
            return ""
        now = self.queue.station.clock()
        return report_text(self.report, now) + "\n\n" + pretty_json(self.report.get("body"))

    def action_close(self) -> None:
        self.dismiss(None)

    def action_pager(self) -> None:
        text = self.text()
        if text:
            open_in_pager(self.app, text)

    def action_retry(self) -> None:
        start(self, partial(self.queue.retry, [self.report_id]))
        self.dismiss(None)

    def action_delete(self) -> None:
        row = self.report or {"id": self.report_id}
        self.dismiss(None)
        self.queue.ask_delete(row)

    def action_copy(self) -> None:
        copy_text(self.app, "the report", self.text())

    def action_save(self) -> None:
        station = self.queue.station
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(station.clock()))
        name = f"pywats-{station.model.instance}-report-{self.report_id[:8]}-{stamp}.txt"
        self.app.push_screen(SaveScreen(self.text(), Path.home() / name))
