"""Converters: each watch folder entry with its folder, patterns, state, processed and
rejected counts and last error; enable or disable one at run time."""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from pywats.rpc.errors import RpcClientError, RpcError
from tui.screen import StationScreen, start, table

__all__ = ["ConvertersScreen"]


class ConvertersScreen(StationScreen):
    """The watch folders and their converters."""

    MODE = "converters"
    TITLE = "Converters"
    CHANGING = frozenset({"enable", "disable"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "enable", "Enable"),
        Binding("x", "disable", "Disable"),
    ]
    PALETTE = (
        ("Converters: enable the selected watch folder", "enable", "e"),
        ("Converters: disable the selected watch folder", "disable", "x"),
    )
    COMMANDS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("list them", "pywats converters list"),
        ("enable / disable", "pywats converters enable|disable NAME"),
    )
    DEFAULT_CSS = """
    ConvertersScreen #conv-table { height: auto; max-height: 60%; }
    ConvertersScreen #conv-detail { height: 1fr; border-top: solid $panel-lighten-2; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[str, dict[str, Any]] = {}
        """Each entry of config.get's converters, by folder name (patterns, watch)."""

    def compose_body(self) -> ComposeResult:
        names = ("name", "converter", "state", "processed", "rejected", "last error")
        yield table("conv-table", [(c, c) for c in names])
        yield Static("", id="conv-detail", markup=False)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self._load_config()

    def connected_again(self) -> None:
        self._load_config()

    def _load_config(self) -> None:
        if self.model.connection == "connected":
            start(self, self._config, "conv")

    async def _config(self) -> None:
        try:
            config = await self.station.rpc("config.get")
        except (RpcError, RpcClientError):
            return  # the table works without: the patterns are what is missing
        self.entries = {
            str(e.get("folder") or e.get("name")): e for e in config.get("converters") or []
        }
        self._detail()

    def show(self, changed: set[str]) -> None:
        if not changed & {"folders", "connection"}:
            return
        table = self.query_one(DataTable)
        selected = self.selected()
        table.clear()
        for name, folder in self.model.folders.items():
            state = (
                Text("enabled", style="green")
                if folder.get("enabled")
                else Text("disabled", style="bold yellow")
            )
            table.add_row(
                name,
                str(folder.get("converter") or ""),
                state,
                str(folder.get("processed", 0)),
                str(folder.get("rejected", 0)),
                Text(" ".join(str(folder.get("last_error") or "").split())[:40], style="red"),
                key=name,
            )
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected))
        self._detail()

    def selected(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        value = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return None if value is None else str(value)

    def _detail(self) -> None:
        name = self.selected()
        detail = self.query_one("#conv-detail", Static)
        if name is None:
            detail.update("No watch folders are configured.")
            return
        folder = self.model.folders.get(name, {})
        entry = self.entries.get(name, {})
        patterns = ", ".join(entry.get("patterns") or []) or "(the converter's)"
        lines = [
            f"watch folder  {folder.get('path') or entry.get('watch')}",
            f"patterns      {patterns}",
            f"converter     {folder.get('converter')}"
            + (f" {entry['converter_version']}" if entry.get("converter_version") else ""),
            f"state         {'enabled' if folder.get('enabled') else 'disabled'}",
            f"processed     {folder.get('processed', 0)}   rejected {folder.get('rejected', 0)}",
            f"done folder   {entry.get('done_dir') or '-'}",
            f"error folder  {entry.get('error_dir') or '-'}",
            f"post action   {entry.get('post_action') or '-'}",
            f"last error    {folder.get('last_error') or '-'}",
        ]
        detail.update("\n".join(lines))

    @on(DataTable.RowHighlighted)
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail()

    def action_enable(self) -> None:
        self._switch(True)

    def action_disable(self) -> None:
        self._switch(False)

    def _switch(self, enable: bool) -> None:
        name = self.selected()
        if name is None:
            self.notify("no watch folder selected", severity="warning")
            return
        start(self, partial(self._do_switch, name, enable))

    async def _do_switch(self, name: str, enable: bool) -> None:
        verb = "enable" if enable else "disable"
        try:
            await self.station.rpc(f"converters.{verb}", name=name)
        except (RpcError, RpcClientError) as exc:
            self.failed(f"cannot {verb} {name}", exc)
            return
        folder = self.model.folders.get(name)
        if folder is not None:
            folder["enabled"] = enable
            self.model.changed.add("folders")
        self.changed_by(f"{name}: {verb}d", f"converters {verb} {name}")

    def export(self) -> tuple[str, str]:
        lines = ["name\tconverter\tstate\tprocessed\trejected\twatch\tlast error"]
        for name, f in self.model.folders.items():
            lines.append(
                f"{name}\t{f.get('converter')}\t{'enabled' if f.get('enabled') else 'disabled'}"
                f"\t{f.get('processed', 0)}\t{f.get('rejected', 0)}\t{f.get('path')}"
                f"\t{f.get('last_error') or ''}"
            )
        return "converters", "\n".join(lines)
