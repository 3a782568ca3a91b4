"""Events: the live notifications, filterable, with a follow mode that stops when the
user scrolls back (and starts again at the end: ``End`` or ``G``)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input, RichLog, Static

from tui.model import EventLine, clock_text
from tui.screen import StationScreen

__all__ = ["EventLog", "EventsScreen", "matches"]

_METHOD_STYLE = {
    "report.failed": "bold red",
    "file.rejected": "bold red",
    "report.retrying": "yellow",
    "events.gap": "bold yellow",
}
"""Only what needs attention has a colour: a line in one style is one run of text on the
wire, and a burst scrolls thousands of them through the log."""


def matches(line: EventLine, text: str) -> bool:
    """Whether ``line`` passes the filter ``text`` (every word, case-insensitive, in
    the event's name or its text)."""
    haystack = f"{line.method} {line.text}".lower()
    return all(word in haystack for word in text.lower().split())


class EventLog(RichLog):
    """A log that follows new lines only while it is scrolled to the end."""

    class FollowChanged(Message):
        """The log started or stopped following (the user scrolled back, or to the end)."""

        def __init__(self, following: bool) -> None:
            super().__init__()
            self.following = following

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        # The user scrolled back: stop following; back at the end: follow again.
        following = new >= self.max_scroll_y - 1
        if following != self.auto_scroll:
            self.auto_scroll = following
            self.post_message(self.FollowChanged(following))


class EventsScreen(StationScreen):
    """Every notification the service sends, newest at the bottom."""

    MODE = "events"
    AUTO_FOCUS = "#events-log"
    TITLE = "Events"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f,slash", "filter", "Filter"),
        Binding("end,G", "follow", "Follow"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("s", "stats", "Stats on/off"),
    ]
    PALETTE = (
        ("Events: filter", "filter", "f"),
        ("Events: follow new events", "follow", "End"),
    )
    COMMANDS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("the same in a shell", "pywats events --follow"),
    )
    DEFAULT_CSS = """
    EventsScreen #events-bar { height: 1; }
    EventsScreen #events-filter { display: none; height: 1; border: none; }
    EventsScreen #events-filter.shown { display: block; }
    EventsScreen EventLog { height: 1fr; overflow-x: hidden; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self.shown_seq = 0
        """The newest event written to the log (events are appended after it)."""
        self.with_stats = False
        self._shown_bar: Text | None = None
        """``stats`` events come every second while anything moves: hidden by default."""

    def compose_body(self) -> ComposeResult:
        yield Static(id="events-bar")
        yield Input(
            placeholder="filter: words the event must contain", id="events-filter", disabled=True
        )
        yield EventLog(id="events-log", max_lines=5000, wrap=False, markup=False)

    def on_mount(self) -> None:
        self.query_one(Input).cursor_blink = False

    def on_event_log_follow_changed(self, message: EventLog.FollowChanged) -> None:
        self._bar()

    def _wanted(self, line: EventLine) -> bool:
        if line.method == "stats" and not self.with_stats:
            return False
        return matches(line, self.filter_text) if self.filter_text else True

    def _render_line(self, line: EventLine) -> Text:
        text = Text(f"{clock_text(line.at)} ", no_wrap=True, overflow="ellipsis")
        text.append(f"{line.method:<16} ", style=_METHOD_STYLE.get(line.method))
        text.append(line.text)
        return text

    def _write(self, log: EventLog, lines: list[Text], *, first: bool = False) -> None:
        # Cut to the width: a line wider than the log would bring a horizontal
        # scrollbar, and every cell of that costs bytes at each scroll.
        width = max(20, log.scrollable_content_region.width or self.size.width - 2)
        for line in lines:
            line.truncate(width, overflow="ellipsis")
        if first:
            # Before its first layout the log keeps the lines for later: let it scroll
            # to the end itself once it has them.
            log.write(Text("\n").join(lines), scroll_end=True)
            return
        follow = log.auto_scroll
        log.write(Text("\n").join(lines), scroll_end=False)
        if follow:
            log.scroll_end(animate=False, immediate=True, x_axis=False)

    def rebuild(self) -> None:
        log = self.query_one(EventLog)
        log.clear()
        log.auto_scroll = True
        lines = [self._render_line(line) for line in self.model.events if self._wanted(line)]
        if lines:
            self._write(log, lines, first=True)
        self.shown_seq = self._newest()
        self._bar()

    def _newest(self) -> int:
        return self.model.received

    def on_screen_resume(self) -> None:
        self.rebuild()
        super().on_screen_resume()

    def show(self, changed: set[str]) -> None:
        if "events" not in changed:
            self._bar()
            return
        log = self.query_one(EventLog)
        # Append what is newer than the last line written: one write and at most one
        # scroll per redraw, so a burst costs one repaint of the log, not one per event.
        new = [line for line in self.model.events if line.n > self.shown_seq]
        wanted = [self._render_line(line) for line in new if self._wanted(line)]
        if wanted:
            self._write(log, wanted[-log.max_lines if log.max_lines else 0 :])
        self.shown_seq = self._newest()
        self._bar()

    def _bar(self) -> None:
        log = self.query_one(EventLog)
        bar = Text()
        if log.auto_scroll:
            bar.append(" following ", style="bold reverse green")
        else:
            bar.append(" paused: scrolled back (End follows) ", style="bold reverse yellow")
        if self.filter_text:
            bar.append(f"  filter '{self.filter_text}'", style="bold")
        bar.append(f"  {len(self.model.events)} kept")
        if not self.with_stats:
            bar.append("  (stats hidden: s)", style="dim")
        bar.no_wrap = True
        if bar != self._shown_bar:
            self._shown_bar = bar
            self.query_one("#events-bar", Static).update(bar)

    def action_follow(self) -> None:
        log = self.query_one(EventLog)
        log.auto_scroll = True
        log.scroll_end(animate=False)
        self._bar()

    def action_stats(self) -> None:
        self.with_stats = not self.with_stats
        self.rebuild()

    def action_filter(self) -> None:
        field = self.query_one(Input)
        field.value = self.filter_text
        field.disabled = False
        field.add_class("shown")
        field.focus()

    def action_clear_filter(self) -> None:
        field = self.query_one(Input)
        field.remove_class("shown")
        field.disabled = True
        self.query_one(EventLog).focus()
        if self.filter_text:
            self.filter_text = ""
            self.rebuild()

    @on(Input.Submitted, "#events-filter")
    def filtered(self, event: Input.Submitted) -> None:
        self.filter_text = event.value.strip()
        event.input.remove_class("shown")
        event.input.disabled = True
        self.query_one(EventLog).focus()
        self.rebuild()

    def export(self) -> tuple[str, str]:
        lines = [
            f"{clock_text(line.at)} {line.method:<16} {line.text}"
            for line in self.model.events
            if self._wanted(line)
        ]
        return "events", "\n".join(lines)
