"""The pywats terminal UI: :class:`StationApp`.

The app holds a :class:`~tui.model.StationModel` fed by a :class:`~tui.backend.Backend`
(in production :class:`tui.bridge.TrioBridge`) and shows it on seven screens (Textual
modes, one per key ``1``-``7``), each with the header and key hints. It redraws at most
every ``refresh_s`` seconds, and only what changed, with no animations: an SSH session
over a slow link gets few bytes (``docs/performance.md``).

Every way out (``q``, ``ctrl+c``, the palette's Quit, a signal through :mod:`tui.run`, the
end of the terminal's input, a failure) goes through :meth:`StationApp.quit_app`, which
stops the backend and waits for it before the app exits; :meth:`on_unmount` does the same
for an exit the app did not ask for (an exception), so the app never returns while the
backend's trio run still runs.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.driver import Driver
from textual.screen import Screen

from tui.about import AboutScreen, InstancesScreen, run_pywats
from tui.backend import MUTATING_METHODS, Backend, ReadOnlyError
from tui.config import ConfigScreen
from tui.converters import ConvertersScreen
from tui.dashboard import DashboardScreen
from tui.disconnected import DisconnectedScreen
from tui.eventlog import EventsScreen
from tui.files import FilesScreen
from tui.help import make_help
from tui.messages import (
    BackendFailed,
    Connected,
    Disconnected,
    InputEnded,
    Notified,
    StatusPolled,
)
from tui.model import StationModel
from tui.queue import QueueScreen
from tui.screen import StationScreen, start
from tui.widgets import SCREENS

__all__ = ["DEFAULT_REFRESH_S", "StationApp"]

DEFAULT_REFRESH_S = 0.5
"""Shortest time between two redraws of tables and counters (``--refresh``)."""

PywatsRunner = Callable[..., Awaitable[tuple[int, str]]]


def read_bytes(path: str) -> bytes:
    """A file's bytes (the config screen reads the config file with it)."""
    with open(path, "rb") as f:
        return f.read()


class StationApp(App[int]):
    """The TUI of one instance (another one is a key away: ``i``).

    Args:
        backend: what talks to the service (started on mount, stopped on every way out).
        read_only: offer nothing that changes the service (and refuse such calls).
        refresh_s: shortest time between two redraws.
        clock: wall-clock time (tests give a fixed one).
        log_file: where this TUI logs (shown on the About screen and in the help).
        pywats: runs ``pywats ARGS`` for the About screen and the instance picker.
        read_file: reads a file (the config file, to say which values it sets).
        driver_class: Textual's driver (:class:`tui.driver.StationDriver` from the CLI).
    """

    TITLE = "pywats"
    CSS = """
    .title { text-style: bold; background: $panel; width: 100%; }
    .hint { color: $text-muted; }
    #body { height: 1fr; }
    /* Cells are cut to fit: a horizontal scrollbar would repaint at every scroll. */
    DataTable { overflow-x: hidden; }
    """
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        "dashboard": DashboardScreen,
        "queue": QueueScreen,
        "files": FilesScreen,
        "converters": ConvertersScreen,
        "events": EventsScreen,
        "config": ConfigScreen,
        "about": AboutScreen,
    }
    DEFAULT_MODE = "dashboard"
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(key, f"goto('{mode}')", title, show=False) for key, mode, title in SCREENS),
        Binding("question_mark", "help", "Help"),
        Binding("f1", "help", "Help", show=False),
        Binding("i", "instances", "Instances", show=False),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        backend: Backend,
        *,
        read_only: bool = False,
        refresh_s: float = DEFAULT_REFRESH_S,
        clock: Callable[[], float] = time.time,
        log_file: Path | None = None,
        pywats: PywatsRunner = run_pywats,
        read_file: Callable[[str], bytes] = read_bytes,
        driver_class: type[Driver] | None = None,
    ) -> None:
        super().__init__(driver_class=driver_class)
        # No animations: each frame of one would cost bytes on the SSH link.
        self.animation_level = "none"
        self.backend = backend
        self.read_only = read_only
        self.refresh_s = refresh_s
        self.clock = clock
        self.log_file = log_file
        self._pywats = pywats
        self.read_file = read_file
        self.model = StationModel(backend.instance, str(backend.socket))
        self.last_search = ""
        """The queue's search, kept across screens (``/`` starts from it)."""
        self.exit_reason = ""
        self.quitting = False

    # --- lifetime ---------------------------------------------------------------------

    def on_mount(self) -> None:
        self.backend.start(self.post_message)
        self.set_interval(self.refresh_s, self.redraw)

    async def on_unmount(self) -> None:
        # The backstop for an exit nobody asked for (an exception): never return while
        # the backend still runs.
        await self.backend.stop()

    async def quit_app(self, code: int = 0, reason: str = "") -> None:
        """Stop the backend, wait for it, then exit with ``code``."""
        if self.quitting:
            return
        self.quitting = True
        self.exit_reason = reason
        await self.backend.stop()
        self.exit(code)

    async def action_quit(self) -> None:
        await self.quit_app(0)

    def on_input_ended(self, message: InputEnded) -> None:
        start(self, partial(self.quit_app, 0, "the terminal's input ended"))

    def on_backend_failed(self, message: BackendFailed) -> None:
        start(self, partial(self.quit_app, 1, message.error))

    # --- what the backend says ----------------------------------------------------------

    def on_connected(self, message: Connected) -> None:
        self.model.connected(message.status, message.socket, message.stream, self.clock())
        self._leave_disconnected()
        for screen in self._station_screens():
            screen.connected_again()
        start(self, self._load_counts, "counts")
        self.redraw()

    def on_disconnected(self, message: Disconnected) -> None:
        self.model.disconnected(message.kind, message.socket, message.message)
        if not any(isinstance(s, DisconnectedScreen) for s in self.screen_stack):
            self.push_screen(DisconnectedScreen())
        self.redraw()

    def on_notified(self, message: Notified) -> None:
        self.model.apply_notes(message.notes)
        if any(method == "events.gap" for method, _ in message.notes):
            # Events were lost on the way: read the counts again rather than drift.
            start(self, self._load_counts, "counts")

    def on_status_polled(self, message: StatusPolled) -> None:
        self.model.apply_status(message.status, self.clock())

    def _leave_disconnected(self) -> None:
        while any(isinstance(s, DisconnectedScreen) for s in self.screen_stack[1:]):
            self.pop_screen()

    def _station_screens(self) -> Iterable[StationScreen]:
        for screen in self.screen_stack:
            if isinstance(screen, StationScreen):
                yield screen
        for mode in self.MODES:
            if mode != self.current_mode:
                for screen in self._screen_stacks.get(mode, []):
                    if isinstance(screen, StationScreen):
                        yield screen

    async def _load_counts(self) -> None:
        """Today's counts and the reports waiting for a retry, read once per connection
        and after lost events (from then on the events keep them up to date)."""
        from tui.counts import load_counts

        await load_counts(self)

    def redraw(self) -> None:
        """Redraw what changed on the screen in front (at most every ``refresh_s``)."""
        changed = self.model.take_changes()
        if not changed:
            return
        screen = self.screen
        if isinstance(screen, StationScreen | DisconnectedScreen):
            screen.redraw(changed)
        else:
            # A dialog is in front: the screen under it catches up when it is back.
            pass

    # --- calls --------------------------------------------------------------------------

    async def rpc(self, method: str, /, **params: Any) -> Any:
        """Call the service (refused with ``--read-only`` if it would change something)."""
        changing = method in MUTATING_METHODS or (
            method == "server.test" and bool(params.get("send_report"))
        )
        if self.read_only and changing:
            raise ReadOnlyError(f"read-only: {method} is not allowed", self.backend.socket)
        return await self.backend.call(method, **params)

    async def pywats(self, *args: str) -> tuple[int, str]:
        """Run ``pywats ARGS`` and return its exit code and output."""
        return await self._pywats(*args)

    def cli(self, command: str) -> str:
        """The shell command that does ``command`` to this instance."""
        return f"pywats {command} --instance {self.model.instance}"

    # --- keys ---------------------------------------------------------------------------

    def action_goto(self, mode: str) -> None:
        if any(isinstance(s, DisconnectedScreen) for s in self.screen_stack):
            self.notify("not connected: the screens come back with the service", timeout=3)
            return
        if mode != self.current_mode:
            self.switch_mode(mode)

    def action_help(self) -> None:
        screen = self.screen
        self.push_screen(make_help(screen, self))

    def action_instances(self) -> None:
        def picked(choice: tuple[str, Path] | None) -> None:
            if choice is not None and choice[0] != self.model.instance:
                self.switch_instance(*choice)

        self.push_screen(InstancesScreen(self.model.instance), picked)

    def switch_instance(self, instance: str, socket: Path) -> None:
        """Drop this instance's connection and connect to ``instance`` instead."""
        self.model = StationModel(instance, str(socket))
        self.backend.switch(instance, socket)
        self.notify(f"connecting to {instance} ({socket})")

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for key, mode, title in SCREENS:
            yield SystemCommand(f"Go to {title}", f"key {key}", partial(self.action_goto, mode))
        yield SystemCommand("Instances", "pick another instance (i)", self.action_instances)
        yield SystemCommand("Help", "keys and commands of this screen (?)", self.action_help)
        if isinstance(screen, StationScreen):
            yield SystemCommand("Copy", "copy this screen's text (c, OSC 52)", screen.action_copy)
            yield SystemCommand("Save", "save this screen's text to a file (w)", screen.action_save)
            for title, action, key in screen.palette():
                yield SystemCommand(title, f"key {key}", partial(screen.run_action, action))
        yield from super().get_system_commands(screen)
