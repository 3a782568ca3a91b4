"""Widgets every screen shares: the header (:class:`StationHeader`) and a status line."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from tui.model import StationModel, duration_text

__all__ = ["SCREENS", "StationHeader", "header_lines"]

SCREENS: tuple[tuple[str, str, str], ...] = (
    ("1", "dashboard", "Dashboard"),
    ("2", "queue", "Queue"),
    ("3", "files", "Files"),
    ("4", "converters", "Converters"),
    ("5", "events", "Events"),
    ("6", "config", "Config"),
    ("7", "about", "About"),
)
"""Key, mode name and title of each main screen, in tab order."""

_STATE_STYLE = {
    "running": "bold green",
    "paused": "bold yellow",
    "starting": "yellow",
    "stopping": "yellow",
    "online": "green",
    "offline": "bold red",
    "none": "dim",
}


def _server_text(model: StationModel) -> Text:
    server = model.server
    state = str(server.get("state") or "?")
    text = Text("server ")
    if model.connection != "connected":
        return text.append("?", style="dim")
    if state == "none":
        return text.append("none set", style="dim")
    text.append(state, style=_STATE_STYLE.get(state, ""))
    if state == "online":
        if server.get("version"):
            text.append(f" {str(server['version'])[:12]}")
        if server.get("latency_ms") is not None:
            text.append(f" {float(server['latency_ms']):.0f} ms")
    return text


def _queue_text(model: StationModel) -> Text:
    queue = model.queue
    if model.connection != "connected" or not queue:
        return Text("queue ?", style="dim")
    failed = int(queue.get("failed") or 0)
    text = Text(f"{queue.get('pending', 0)} pending {queue.get('uploading', 0)} up ")
    text.append(f"{failed} failed", style="bold red" if failed else None)
    return text


def header_lines(model: StationModel, current: str) -> tuple[Text, Text, Text]:
    """The header's three parts: instance, states and counts; the screen tabs (with
    ``current`` marked); the warnings (empty when there are none)."""
    state = model.service_state
    line = Text()
    line.append(" pywats ", style="bold reverse")
    line.append(f" {model.instance} ", style="bold")
    line.append("│ ")
    line.append(state, style=_STATE_STYLE.get(state, "bold red"))
    line.append(" │ ")
    line.append_text(_server_text(model))
    line.append(" │ ")
    line.append_text(_queue_text(model))
    tabs = Text()
    for key, mode, title in SCREENS:
        tabs.append(f" {key} ", style="bold")
        tabs.append(title, style="bold reverse" if mode == current else None)
    warnings = []
    if model.connection == "connected":
        clock = model.clock_warning()
        if clock:
            warnings.append(clock)
        server = model.server
        if server.get("state") in ("offline", "paused") and server.get("reason"):
            warnings.append(f"uploads {server['state']}: {server['reason']}")
        oldest = model.queue.get("oldest_pending_age_s")
        if isinstance(oldest, int | float) and oldest > 3600:
            warnings.append(f"oldest report waiting {duration_text(oldest)}")
        if model.dropped:
            warnings.append(f"{model.dropped} event(s) missed (the TUI fell behind)")
    shown = Text("\n".join(f" ⚠ {w}" for w in warnings), style="bold yellow")
    return line, tabs, shown


class StationHeader(Vertical):
    """Instance, service state, server (online/offline, version, latency), queue counts,
    the screen tabs, and warnings (clock ahead of the server, uploads offline or paused).

    Three lines drawn apart, each only when its text changed: a burst of events changes
    the counts, and must not cost a repaint of the tabs.
    """

    DEFAULT_CSS = """
    StationHeader {
        height: auto;
        background: $panel;
        color: $foreground;
    }
    StationHeader > Static { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    StationHeader > #header-warnings { max-height: 3; }
    StationHeader > #header-warnings.empty { display: none; }
    """

    def __init__(self, current: str) -> None:
        super().__init__(id="station-header")
        self.current = current
        self._shown: tuple[Text, Text, Text] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="header-status")
        yield Static(id="header-tabs")
        yield Static(id="header-warnings", classes="empty")

    def show(self, model: StationModel) -> None:
        """Redraw from ``model`` (only what changed: every byte counts on SSH)."""
        parts = header_lines(model, self.current)
        old = self._shown
        self._shown = parts
        for index, name in enumerate(("status", "tabs", "warnings")):
            if old is None or old[index] != parts[index]:
                widget = self.query_one(f"#header-{name}", Static)
                widget.update(parts[index])
                if name == "warnings":
                    widget.set_class(not parts[index].plain, "empty")
