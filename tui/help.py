"""``?``: the keys of the screen in front and of the app, and the ``pywats`` commands that
do the same in a shell."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.binding import Binding
from textual.screen import Screen

from tui.screen import StationScreen, TextScreen
from tui.widgets import SCREENS

if TYPE_CHECKING:
    from tui.app import StationApp

__all__ = ["help_text", "make_help"]

GLOBAL_KEYS = (
    ("1-7", "Dashboard, Queue, Files, Converters, Events, Config, About"),
    ("i", "instances on this machine (connect to another)"),
    ("?", "this help"),
    ("ctrl+p", "command palette"),
    ("c / w", "copy (OSC 52) / save to a file what the screen shows"),
    ("q, ctrl+c", "quit"),
)


def _keys_of(screen: Screen[object], app: StationApp) -> list[tuple[str, str]]:
    found = []
    for binding in screen.BINDINGS:
        if not isinstance(binding, Binding) or not binding.description:
            continue
        if screen.check_action(binding.action, ()) is False:
            continue  # read-only: not offered at all
        keys = [
            app.get_key_display(Binding(key.strip(), binding.action))
            for key in binding.key.split(",")
        ]
        found.append((" / ".join(keys), binding.description))
    return found


def help_text(screen: Screen[object], app: StationApp) -> str:
    """The help for ``screen`` (what ``?`` shows)."""
    title = getattr(screen, "TITLE", "") or type(screen).__name__
    lines = [f"{title}: keys", ""]
    lines += [f"  {key:<12} {what}" for key, what in _keys_of(screen, app)]
    lines += ["", "Everywhere", ""]
    lines += [f"  {key:<12} {what}" for key, what in GLOBAL_KEYS]
    if isinstance(screen, StationScreen) and screen.COMMANDS_HELP:
        lines += ["", "The same in a shell (add --instance " + app.model.instance + ")", ""]
        lines += [f"  {what:<28} {command}" for what, command in screen.COMMANDS_HELP]
    if app.read_only:
        lines += ["", "Read-only (--read-only): nothing that changes the service is offered."]
    lines += ["", "Screens: " + ", ".join(f"{key} {title}" for key, _, title in SCREENS)]
    lines += [f"Log of this TUI: {app.log_file or '(none)'}"]
    return "\n".join(lines)


def make_help(screen: Screen[object], app: StationApp) -> TextScreen:
    return TextScreen("Help (Esc closes)", help_text(screen, app), "help")
