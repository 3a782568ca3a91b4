"""The base of every main screen (:class:`StationScreen`) and the small dialogs they share.

A main screen has the header, a body and the footer (key hints). It redraws from the
app's :class:`~tui.model.StationModel` in :meth:`StationScreen.show` (called at most every
``--refresh`` seconds, with what changed), says which of its actions change something
(:attr:`StationScreen.CHANGING`: ``--read-only`` hides them from the footer, the help and
the palette, and refuses them), and what ``c`` copies and ``w`` saves
(:meth:`StationScreen.export`).
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from pywats.placing import place_bytes
from tui.model import StationModel
from tui.widgets import StationHeader

if TYPE_CHECKING:
    from tui.app import StationApp

__all__ = [
    "ConfirmScreen",
    "PaletteEntry",
    "SaveScreen",
    "StationScreen",
    "TextScreen",
    "copy_text",
    "start",
    "table",
]


def table(
    table_id: str, columns: Sequence[tuple[str, str]], *, cursor: bool = True
) -> DataTable[Any]:
    """A table with its columns (key, label) from the start: a redraw may come before
    the screen's mount, and rows must never meet a table without columns."""
    made: DataTable[Any] = DataTable(
        id=table_id, cursor_type="row" if cursor else "none", zebra_stripes=False
    )
    for key, label in columns:
        made.add_column(label, key=key)
    return made


def start(node: DOMNode, work: Callable[[], Awaitable[None]], group: str | None = None) -> None:
    """Run ``work`` in a Textual worker of ``node``; with ``group``, a newer one replaces
    the one still running (the newest answer wins).

    ``work`` is a function, not a coroutine: a worker replaced before it began never
    leaves an un-awaited coroutine behind. Failures are the function's own business
    (every caller reports them), so they never end the app.
    """
    node.run_worker(
        cast(Any, work),
        group=group or "default",
        exclusive=group is not None,
        exit_on_error=False,
    )


CLIPBOARD_MAX_BYTES = (1024 * 1024 - 8) // 4 * 3
"""The most text (UTF-8 bytes) ``c`` sends to the terminal's clipboard: 786,426 bytes.

The text travels base64-encoded in one OSC 52 escape sequence, and tmux (3.3) drops
without a word any escape sequence of 1 MiB or more (measured: 786,426 bytes arrive,
786,427 do not). Splitting does not help, as each OSC 52 replaces the clipboard. A
bigger text (a large report's JSON) is refused with a message to save it with ``w``
instead of being sent for nothing, which over a slow SSH link would also hold up the
screen while megabytes go by."""


def copy_text(app: App[Any], what: str, text: str) -> None:
    """Copy ``text`` (``what``: its name in the notice) to the terminal's clipboard with
    OSC 52, and say so; if it is empty or too big (:data:`CLIPBOARD_MAX_BYTES`), say
    that instead. The terminal never answers, so the notice names ``w`` for when it does
    not allow OSC 52."""
    if not text:
        app.notify("nothing to copy here", severity="warning")
        return
    size = len(text.encode())
    if size > CLIPBOARD_MAX_BYTES:
        app.notify(
            f"{what} is too big to copy ({size / 1024:,.0f} KiB; tmux takes at most"
            f" {CLIPBOARD_MAX_BYTES / 1024:,.0f} KiB): save it with w",
            severity="warning",
            timeout=10,
        )
        return
    app.copy_to_clipboard(text)
    app.notify(
        f"copied {what} ({len(text.splitlines())} lines) with OSC 52; if your terminal"
        " does not allow that, save it with w"
    )


ALL_CHANGES = frozenset(
    {"header", "counts", "folders", "events", "errors", "queue", "files", "connection"}
)

PaletteEntry = tuple[str, str, str]
"""A command of a screen for the palette and the help: title, action, help text."""


class StationScreen(Screen[None]):
    """A main screen: header, body (:meth:`compose_body`), footer."""

    MODE: ClassVar[str] = ""
    """The app mode this screen is (``dashboard``, ``queue``, ...)."""
    TITLE: ClassVar[str] = ""
    CHANGING: ClassVar[frozenset[str]] = frozenset()
    """Actions that change something in the service: hidden with ``--read-only``."""
    PALETTE: ClassVar[tuple[PaletteEntry, ...]] = ()
    """This screen's commands for the palette and the help."""
    COMMANDS_HELP: ClassVar[tuple[tuple[str, str], ...]] = ()
    """(what, the ``pywats ...`` command that does the same) for the help screen."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "Copy", show=False),
        Binding("w", "save", "Save", show=False),
    ]

    @property
    def station(self) -> StationApp:
        """The app, typed."""
        return cast("StationApp", self.app)

    @property
    def model(self) -> StationModel:
        return self.station.model

    def compose(self) -> ComposeResult:
        yield StationHeader(self.MODE)
        with Vertical(id="body"):
            yield from self.compose_body()
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets."""
        yield from ()

    def on_screen_resume(self) -> None:
        # Hidden screens do not redraw: catch up with everything on the way in.
        self.redraw(set(ALL_CHANGES))

    def redraw(self, changed: set[str]) -> None:
        """Redraw the header and whatever ``changed`` touches on this screen."""
        try:
            header = self.query_one(StationHeader)
        except NoMatches:
            return  # not composed yet: its resume draws everything
        header.show(self.model)
        self.show(changed)

    def show(self, changed: set[str]) -> None:
        """Redraw the body for ``changed`` (names as :meth:`StationModel.take_changes`)."""

    def connected_again(self) -> None:
        """The service is back (or another one): reload what this screen asked for."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (self.station.read_only and action in self.CHANGING)

    def palette(self) -> Iterable[PaletteEntry]:
        """The commands the palette offers here (none that change anything in read-only)."""
        for title, action, text in self.PALETTE:
            if not (self.station.read_only and action in self.CHANGING):
                yield title, action, text

    def export(self) -> tuple[str, str]:
        """What ``c`` copies and ``w`` saves: a short name and the text."""
        return self.MODE, ""

    def action_copy(self) -> None:
        copy_text(self.app, *self.export())

    def action_save(self) -> None:
        name, text = self.export()
        if not text:
            self.notify("nothing to save here", severity="warning")
            return
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.station.clock()))
        default = Path.home() / f"pywats-{self.model.instance}-{name}-{stamp}.txt"
        self.app.push_screen(SaveScreen(text, default))

    def changed_by(self, what: str, command: str) -> None:
        """Say that ``what`` was done, and the ``pywats`` command that does the same."""
        self.notify(f"{what}\nsame as: {self.station.cli(command)}", timeout=8)

    def failed(self, what: str, error: BaseException) -> None:
        message = getattr(error, "message", None) or str(error)
        self.notify(f"{what}: {message}", severity="error", timeout=10)


class ConfirmScreen(ModalScreen[bool]):
    """Ask yes or no (``y`` / ``n``, Enter / Escape); dismisses with the answer."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical {
        width: 70; max-width: 100%; height: auto; border: thick $warning;
        background: $surface; padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, command: str) -> None:
        super().__init__()
        self.question = question
        self.command = command

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question)
            yield Label(f"same as: {self.command}", classes="hint")
            yield Label("y: yes   n / Esc: no")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class SaveScreen(ModalScreen[None]):
    """Save a text to a file (works over any SSH client, unlike the clipboard)."""

    DEFAULT_CSS = """
    SaveScreen { align: center middle; }
    SaveScreen > Vertical {
        width: 76; max-width: 100%; height: auto; border: thick $accent;
        background: $surface; padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, text: str, default: Path) -> None:
        super().__init__()
        self.text = text
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Save to file (Enter saves, Esc cancels):")
            yield Input(str(self.default), id="save-path", select_on_focus=False)

    def on_mount(self) -> None:
        field = self.query_one(Input)
        field.cursor_blink = False  # a blinking cursor costs bytes on a slow link
        field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        path = Path(os.path.expanduser(event.value.strip() or str(self.default)))
        try:
            save_whole(path, self.text if self.text.endswith("\n") else self.text + "\n")
        except (OSError, UnicodeError) as exc:
            why = getattr(exc, "strerror", None) or exc
            self.notify(f"cannot save to {path}: {why}", severity="error")
            return
        self.notify(f"saved to {path}")
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


SAVE_SUFFIX = ".pywats-save"
"""The hidden name's suffix of a file being saved."""


def save_whole(path: Path, text: str) -> None:
    """Write ``text`` to a new file ``path``, which appears whole or not at all, never
    over a file the user has (:func:`pywats.placing.place_bytes`).

    Raises:
        FileExistsError: ``path`` exists; nothing was written.
        UnicodeError: ``text`` cannot be written as UTF-8; nothing was written.
        OSError: the folder cannot be written; nothing is left behind.
    """
    if os.path.lexists(path):  # before the text is encoded and written for nothing
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
    place_bytes(text.encode("utf-8"), path, SAVE_SUFFIX)


class TextScreen(ModalScreen[None]):
    """A scrollable text (the help) with copy and save."""

    DEFAULT_CSS = """
    TextScreen > Vertical { background: $surface; }
    TextScreen #text-body { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back"),
        Binding("c", "copy", "Copy"),
        Binding("w", "save", "Save"),
    ]

    def __init__(self, title: str, text: str, name: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text
        self.export_name = name

    def compose(self) -> ComposeResult:
        from textual.containers import VerticalScroll

        with Vertical():
            yield Label(self.title_text, classes="title")
            with VerticalScroll(id="text-body"):
                yield Static(self.text, markup=False)
            yield Footer(compact=True)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_copy(self) -> None:
        copy_text(self.app, self.export_name, self.text)

    def action_save(self) -> None:
        station = cast("StationApp", self.app)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(station.clock()))
        default = Path.home() / f"pywats-{station.model.instance}-{self.export_name}-{stamp}.txt"
        self.app.push_screen(SaveScreen(self.text, default))
