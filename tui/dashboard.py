"""The dashboard: queue counts by state and by why, uploads per minute, counts since the
service started and today, each watch folder's processed and rejected, the last errors."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Static

from tui.model import clock_text, duration_text, spark_text
from tui.screen import StationScreen, table

__all__ = ["SPARK_MINUTES", "DashboardScreen"]

FOLDER_COLUMNS = ("folder", "converter", "state", "processed", "rejected", "last error")
SPARK_MINUTES = 30
"""Minutes the uploads sparkline shows."""


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class DashboardScreen(StationScreen):
    """What the instance is doing, at a glance."""

    MODE = "dashboard"
    TITLE = "Dashboard"
    COMMANDS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("the same summary", "pywats status"),
        ("live events", "pywats events --follow"),
    )
    DEFAULT_CSS = """
    DashboardScreen #counts { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    DashboardScreen #spark-row { height: 1; }
    DashboardScreen #spark-label { width: 22; }
    DashboardScreen #spark { width: 1fr; height: 1; }
    DashboardScreen #folders { height: auto; max-height: 7; }
    DashboardScreen #errors-title { height: 1; text-style: bold; }
    DashboardScreen #errors { height: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def compose_body(self) -> ComposeResult:
        yield Static(id="counts")
        with Horizontal(id="spark-row"):
            yield Static("uploads/min (30 min)", id="spark-label")
            # Plain text in one colour, not Textual's Sparkline: that one gives every bar
            # its own style, and each redraw during a burst would send them all.
            yield Static(id="spark")
        yield table("folders", [(c, c) for c in FOLDER_COLUMNS], cursor=False)
        yield Static("Last errors", id="errors-title")
        yield Static(id="errors")

    def counts_text(self) -> Text:
        model = self.model
        queue = model.queue
        today = model.today
        up = model.uploads
        now = self.station.clock()
        model.roll_today(now)
        lines = Text()

        def row(label: str, *parts: tuple[str, object, str]) -> None:
            lines.append(f"{label:<13}", style="bold")
            for name, value, style in parts:
                # Plain unless it needs attention: every change of style costs bytes.
                lines.append(f"{value}", style=style or None)
                lines.append(f" {name}   ")
            lines.append("\n")

        failed = int(queue.get("failed") or 0)
        row(
            "Queue",
            ("pending", queue.get("pending", "?"), ""),
            ("uploading", queue.get("uploading", "?"), ""),
            ("done", queue.get("done", "?"), ""),
            ("failed", failed, "bold red" if failed else ""),
        )
        rejected = model.rejected_since_start
        row(
            "Why",
            ("waiting to retry", len(model.retrying), "bold yellow" if model.retrying else ""),
            ("send failures", failed, "bold red" if failed else ""),
            ("did not convert", rejected, "bold red" if rejected else ""),
        )
        oldest = queue.get("oldest_pending_age_s")
        rate = model.throughput.per_minute(now)
        lines.append(f"{'Rate':<13}", style="bold")
        lines.append(f"{rate:.0f} uploads/min now   oldest waiting ")
        lines.append(duration_text(oldest if isinstance(oldest, int | float) else None))
        lines.append("\n")
        row(
            "Since start",
            ("uploaded", up.get("uploaded", 0), ""),
            ("rejected by server", up.get("failed", 0), ""),
            ("retried", up.get("retried", 0), ""),
            ("files", model.processed_since_start, ""),
        )
        # "+": the service's lists were longer than the TUI reads (MAX_PAGES pages).
        more = "" if today.complete else "+"
        row(
            # Honest rather than approximate: until the service's lists are read (or if
            # they cannot be), only what the events showed since the TUI connected.
            "Today" if today.loaded else "Since connect",
            ("queued", f"{today.queued}{more}", ""),
            ("uploaded", f"{today.uploaded}{more}", ""),
            ("failed", f"{today.failed}{more}", ""),
            ("not converted", f"{today.rejected}{more}", ""),
        )
        lines.rstrip()
        lines.no_wrap = True
        lines.overflow = "ellipsis"
        return lines

    def __init__(self) -> None:
        super().__init__()
        # What each part shows now: a part is drawn again only when its text changes
        # (a status every two seconds must not cost a repaint of the same numbers).
        self._shown: dict[str, object] = {}

    def _changed(self, part: str, value: object) -> bool:
        if self._shown.get(part) == value:
            return False
        self._shown[part] = value
        return True

    def on_screen_resume(self) -> None:
        self._shown.clear()
        super().on_screen_resume()

    def show(self, changed: set[str]) -> None:
        model = self.model
        if changed & {"counts", "header", "queue", "connection"}:
            counts = self.counts_text()
            if self._changed("counts", counts):
                self.query_one("#counts", Static).update(counts)
            series = model.throughput.series(self.station.clock(), SPARK_MINUTES)
            bars = spark_text(series)
            if self._changed("spark", bars):
                self.query_one("#spark", Static).update(Text(bars, style="green"))
        rows = [
            (
                str(folder.get("name", "")),
                str(folder.get("converter", "")),
                bool(folder.get("enabled")),
                str(folder.get("processed", 0)),
                str(folder.get("rejected", 0)),
                _cut(str(folder.get("last_error") or ""), 40),
            )
            for folder in model.folders.values()
        ]
        if changed & {"folders", "connection"} and self._changed("folders", rows):
            table = self.query_one("#folders", DataTable)
            table.clear()
            for name, converter, enabled, processed, rejected, error in rows:
                table.add_row(
                    name,
                    converter,
                    "enabled" if enabled else Text("disabled", style="yellow"),
                    processed,
                    rejected,
                    Text(error, style="red"),
                )
        if changed & {"errors", "connection"}:
            errors = list(model.errors)[-12:]
            text = Text()
            if not errors:
                text.append("none since the TUI started", style="dim")
            for line in reversed(errors):
                text.append(f"{clock_text(line.at)} ", style="dim")
                text.append(line.text + "\n")
            text.rstrip()
            if self._changed("errors", text):
                self.query_one("#errors", Static).update(text)

    def export(self) -> tuple[str, str]:
        parts = [self.counts_text().plain, "", "Last errors"]
        parts += [f"{clock_text(e.at)} {e.text}" for e in reversed(self.model.errors)]
        return "dashboard", "\n".join(parts)
