"""Files that did not convert: each watch folder's error files with the text of their
``.error.txt`` beside them, and "move back to the watch folder" once the cause is fixed."""

from __future__ import annotations

import shlex
import time
from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from pywats.rpc.errors import RpcClientError, RpcError
from tui.model import duration_text
from tui.screen import ConfirmScreen, StationScreen, start, table

__all__ = ["FilesScreen"]

LIMIT = 500
"""Files listed at most (newest first)."""


class FilesScreen(StationScreen):
    """The error folders' files, and why each one was refused."""

    MODE = "files"
    TITLE = "Files that did not convert"
    CHANGING = frozenset({"restore"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("m", "restore", "Move back"),
        Binding("g", "reload", "Refresh"),
    ]
    PALETTE = (
        ("Files: move the selected file back to its watch folder", "restore", "m"),
        ("Files: read the error folders again", "reload", "g"),
    )
    COMMANDS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("list them, with why", "pywats files list [--full]"),
        ("move one back", "pywats files restore FOLDER NAME"),
    )
    DEFAULT_CSS = """
    FilesScreen #files-bar { height: 1; }
    FilesScreen #files-table { height: 1fr; min-height: 5; }
    FilesScreen #files-why { height: 1fr; border-top: solid $panel-lighten-2; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.files: list[dict[str, Any]] = []
        self.truncated = False
        self.busy = False
        self.problem = ""

    def compose_body(self) -> ComposeResult:
        yield Static(id="files-bar")
        columns = [("folder", "folder"), ("name", "file"), ("age", "age"), ("size", "size")]
        yield table("files-table", columns)
        with VerticalScroll(id="files-why"):
            yield Static("", id="files-text", markup=False)

    def connected_again(self) -> None:
        self.action_reload()

    def show(self, changed: set[str]) -> None:
        if "files" in changed and self.is_current and not self.busy:
            self.action_reload()

    def action_reload(self) -> None:
        if self.model.connection != "connected":
            return
        self.busy = True
        self._bar()
        start(self, self._load, "files")

    async def _load(self) -> None:
        try:
            answer = await self.station.rpc("files.errors", limit=LIMIT)
        except (RpcError, RpcClientError) as exc:
            self.problem = getattr(exc, "message", None) or str(exc)
            self.busy = False
            self._bar()
            return
        self.busy = False
        self.problem = ""
        files = list(answer.get("files") or [])
        self.truncated = bool(answer.get("truncated"))
        if files != self.files:
            self.files = files
            self._fill()
        self._bar()

    def _bar(self) -> None:
        bar = Text(f"{len(self.files)} file(s) in the error folders")
        if self.truncated:
            bar.append(f" (the newest {LIMIT} shown)")
        if self.busy:
            bar.append("  loading…", style="italic")
        if self.problem:
            bar.append(f"  {self.problem}", style="bold red")
        bar.no_wrap = True
        bar.overflow = "ellipsis"
        self.query_one("#files-bar", Static).update(bar)

    def _key(self, entry: dict[str, Any]) -> str:
        return f"{entry.get('folder')}\0{entry.get('name')}"

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        selected = self.selected()
        table.clear()
        now = self.station.clock()
        for entry in self.files:
            table.add_row(
                str(entry.get("folder")),
                str(entry.get("name")),
                duration_text(now - float(entry.get("mtime") or now)),
                str(entry.get("size")),
                key=self._key(entry),
            )
        if selected is not None and self._key(selected) in table.rows:
            table.move_cursor(row=table.get_row_index(self._key(selected)))
        self._explain()

    def selected(self) -> dict[str, Any] | None:
        table = self.query_one(DataTable)
        if not table.row_count or not self.files:
            return None
        row = table.cursor_row
        if 0 <= row < len(self.files):
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            return next((f for f in self.files if self._key(f) == key), None)
        return None

    def _explain(self) -> None:
        entry = self.selected()
        text = self.query_one("#files-text", Static)
        if entry is None:
            text.update("No file was refused." if not self.files else "")
            return
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.get("mtime") or 0))
        why = entry.get("error") or "(no .error.txt beside it)"
        companions = entry.get("companions") or []
        with_it = f"\nwith {', '.join(map(str, companions))}" if companions else ""
        text.update(f"{entry.get('path')}{with_it}\nrefused about {when}\n\n{why}")

    @on(DataTable.RowHighlighted)
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._explain()

    def action_restore(self) -> None:
        entry = self.selected()
        if entry is None:
            self.notify("no file selected", severity="warning")
            return
        folder, name = str(entry.get("folder")), str(entry.get("name"))
        companions = entry.get("companions") or []
        group = f" with {len(companions)} companion(s)" if companions else ""

        def answered(yes: bool | None) -> None:
            if yes:
                start(self, partial(self._restore, folder, name))

        self.app.push_screen(
            ConfirmScreen(
                f"Move {name}{group} back to the watch folder of {folder}, to be converted"
                " again?\nIts .error.txt is removed; a file of that name there is never"
                " overwritten (nor is a companion's).",
                self.station.cli(f"files restore {folder} {shlex.quote(name)}"),
            ),
            answered,
        )

    async def _restore(self, folder: str, name: str) -> None:
        try:
            moved = await self.station.rpc("files.restore", folder=folder, name=name)
        except (RpcError, RpcClientError) as exc:
            self.failed(f"cannot move {name} back", exc)
            return
        companions = moved.get("companions") or []
        group = f" with {len(companions)} companion(s)" if companions else ""
        self.changed_by(
            f"{name}{group} moved back to {moved['path']}; it is converted again",
            f"files restore {folder} {shlex.quote(name)}",
        )
        self.action_reload()

    def export(self) -> tuple[str, str]:
        parts = []
        for entry in self.files:
            parts.append(f"== {entry.get('folder')}: {entry.get('path')}")
            parts.append(str(entry.get("error") or "(no .error.txt)").rstrip())
            parts.append("")
        return "error-files", "\n".join(parts)
