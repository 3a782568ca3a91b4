"""About: what ``pywats info`` prints (versions, paths, token source), the TUI's own log
file and settings, copyable; and the instance picker built from ``pywats instances``.

Both run the ``pywats`` command itself (a subprocess), so what they show is exactly what
the command prints in a shell."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label, Static

from tui.screen import StationScreen, start, table

__all__ = ["AboutScreen", "InstancesScreen", "run_pywats"]

COMMAND_TIMEOUT_S = 20.0


async def run_pywats(*args: str) -> tuple[int, str]:
    """Run ``pywats ARGS`` (this Python's) and return its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pywats.cli",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        return 1, f"pywats {' '.join(args)} did not answer within {COMMAND_TIMEOUT_S:g} s"
    return process.returncode or 0, out.decode(errors="replace")


class AboutScreen(StationScreen):
    """``pywats info`` for this instance, and the TUI's own details."""

    MODE = "about"
    TITLE = "About"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "Copy"),
        Binding("w", "save", "Save"),
        Binding("g", "reload", "Refresh"),
    ]
    COMMANDS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("the same", "pywats info"),
        ("every instance", "pywats instances"),
    )
    DEFAULT_CSS = """
    AboutScreen VerticalScroll { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.info = ""

    def compose_body(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("loading `pywats info`…", id="about-text", markup=False)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if not self.info:
            self.action_reload()

    def action_reload(self) -> None:
        start(self, self._load, "about")

    def tui_lines(self) -> list[str]:
        station = self.station
        import textual

        return [
            "",
            "pywats tui",
            f"log       {station.log_file or '(none)'}",
            f"socket    {station.model.socket}",
            f"textual   {textual.__version__}",
            f"refresh   at most every {station.refresh_s:g} s",
            f"mode      {'read-only' if station.read_only else 'read-write'}",
            "keys      ? help, ctrl+p commands, 1-7 screens, i instances, q quit",
        ]

    async def _load(self) -> None:
        code, out = await self.station.pywats("info", "--instance", self.model.instance)
        self.info = out.rstrip() + ("" if code == 0 else f"\n(pywats info exited {code})")
        self.query_one("#about-text", Static).update(
            "$ pywats info --instance "
            + self.model.instance
            + "\n"
            + self.info
            + "\n".join(["", *self.tui_lines()])
        )

    def export(self) -> tuple[str, str]:
        return "info", self.info + "\n" + "\n".join(self.tui_lines())


class InstancesScreen(ModalScreen[tuple[str, Path] | None]):
    """Pick another instance on this machine (Enter); dismisses with (name, socket)."""

    DEFAULT_CSS = """
    InstancesScreen { align: center middle; }
    InstancesScreen > Vertical {
        width: 90%; height: 80%; border: thick $accent; background: $surface;
    }
    InstancesScreen DataTable { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back"),
        Binding("enter", "pick", "Connect"),
        Binding("g", "reload", "Refresh"),
    ]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current
        self.rows: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Instances on this machine (`pywats instances`): Enter connects")
            yield Static("loading…", id="instances-note", markup=False)
            yield table("instances-table", [(c, c) for c in ("instance", "state", "pid", "socket")])
            yield Footer(compact=True)

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        start(self, self._load, "load")

    async def _load(self) -> None:
        from tui.app import StationApp

        assert isinstance(self.app, StationApp)
        code, out = await self.app.pywats("instances", "--json")
        note = self.query_one("#instances-note", Static)
        try:
            rows = json.loads(out) if code == 0 else None
        except ValueError:
            rows = None
        if rows is None:
            note.update(f"pywats instances failed ({code}): {out.strip()}")
            return
        self.rows = [r for r in rows if r.get("socket")]
        note.update(f"{len(self.rows)} instance(s); now: {self.current}")
        table = self.query_one(DataTable)
        table.clear()
        for row in self.rows:
            table.add_row(
                row["instance"] + (" *" if row["instance"] == self.current else ""),
                str(row.get("service_state") or row.get("state")),
                "-" if row.get("pid") is None else str(row["pid"]),
                str(row.get("socket")),
                key=row["instance"],
            )

    @on(DataTable.RowSelected)
    def chosen(self, event: DataTable.RowSelected) -> None:
        self.action_pick()

    def action_pick(self) -> None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return
        row = self.rows[table.cursor_row]
        self.dismiss((str(row["instance"]), Path(str(row["socket"]))))

    def action_close(self) -> None:
        self.dismiss(None)
