"""Not connected: which socket was tried, why it failed, what to do; it retries on its
own and goes away as soon as the service answers (the app rebuilds its state then)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui.widgets import StationHeader

if TYPE_CHECKING:
    from tui.app import StationApp

__all__ = ["DisconnectedScreen", "advice"]


def advice(kind: str, socket: str, instance: str) -> list[str]:
    """What a person can do about ``kind`` (``not_running``, ``refused``, ``lost``)."""
    if kind == "refused":
        return [
            "The service refuses this user. To fix it, either:",
            "  - run the TUI as the service's user:  sudo -u pywats pywats tui"
            f" --instance {instance}",
            "  - or add your user to the group named in the service's config,",
            '    [rpc] allowed_group = "<group>", restart the service, and log in again',
            "    so the new group membership counts (check with `id`).",
        ]
    if kind == "not_running":
        return [
            "Nothing listens on that socket: the service is not running (or restarting).",
            f"  - start it: systemctl start pywats@{instance}  (or: pywats serve"
            f" --instance {instance})",
            f"  - its log: journalctl -u pywats@{instance}",
            "  - another instance? press i to pick one.",
        ]
    return [
        "The connection broke (the service stopped or restarted).",
        f"  - pywats status --instance {instance}",
    ]


class DisconnectedScreen(Screen[None]):
    """Shown while there is no connection; the app pops it when one is up."""

    TITLE = "Not connected"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "retry", "Retry now"),
        Binding("i", "app.instances", "Instances"),
        Binding("question_mark", "app.help", "Help"),
        Binding("q", "app.quit", "Quit"),
    ]
    DEFAULT_CSS = """
    DisconnectedScreen #disconnected { padding: 1 2; height: 1fr; }
    """

    @property
    def station(self) -> StationApp:
        return cast("StationApp", self.app)

    def compose(self) -> ComposeResult:
        yield StationHeader("")
        with Vertical():
            yield Static(id="disconnected")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.redraw(set())

    def redraw(self, changed: set[str]) -> None:
        model = self.station.model
        try:
            self.query_one(StationHeader).show(model)
        except NoMatches:
            return  # not composed yet: its mount draws it
        kind = model.connection
        title = {
            "not_running": "The service is not running",
            "refused": "Permission refused",
            "lost": "The connection was lost",
            "connecting": "Connecting…",
        }.get(kind, "Not connected")
        text = Text()
        text.append(title + "\n\n", style="bold red" if kind != "connecting" else "bold")
        text.append("socket tried  ", style="bold")
        text.append(model.socket + "\n")
        if model.disconnect_message:
            text.append("what it said  ", style="bold")
            text.append(model.disconnect_message + "\n")
        text.append("\n")
        for line in advice(kind, model.socket, model.instance):
            text.append(line + "\n")
        text.append(
            "\nThis screen tries again on its own and goes away when the service answers"
            " (r: try now).",
            style="italic",
        )
        self.query_one("#disconnected", Static).update(text)

    def action_retry(self) -> None:
        self.station.backend.reconnect_now()
