"""Config: the configuration as the service runs it (read-only, the token masked: only
where it comes from is shown) with where each value came from; "test connection" and
"send test report"."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from pywats.rpc.errors import RpcClientError, RpcError
from tui.screen import StationScreen, start, table

__all__ = ["ConfigScreen", "config_rows", "file_keys"]

BUILT_IN = "built-in defaults"
STATE_DIR = "state dir"
"""The source of a default that depends on the environment: a path under the instance's
state directory (``$STATE_DIRECTORY`` under systemd, else ``$XDG_DATA_HOME`` or
``~/.local/share``, then ``pywats/<instance>``)."""
STATE_DIR_NOTE = (
    "a default under the state directory: $STATE_DIRECTORY under systemd, else"
    " $XDG_DATA_HOME/pywats/<instance> or ~/.local/share/pywats/<instance>"
)
_UNDER_STATE_DIR = re.compile(r"queue\.path|converters\[\d+\]\.(done_dir|error_dir)")
_TOKEN_SOURCES = {
    "PYWATS_TOKEN": "environment PYWATS_TOKEN",
    "CREDENTIALS_DIRECTORY/token": "systemd credential",
}
"""How the token's sources that are not the file read (``config.get`` names them)."""
VALUE_WIDTH = 26
"""Characters of a value the table shows (the line under it shows all of it)."""
SOURCE_WIDTH = 14
_HIDDEN = frozenset({"instance", "file", "server_url_option", "file_keys", "state_dir_from"})


def file_keys(document: Mapping[str, Any], prefix: str = "") -> set[str]:
    """Every key path a TOML document sets (``server.url``, ``converters[0].watch``)."""
    keys: set[str] = set()
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            keys.add(path)
            keys |= file_keys(value, f"{path}.")
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for index, item in enumerate(value):
                keys.add(f"{path}[{index}]")
                keys |= file_keys(item, f"{path}[{index}].")
        else:
            keys.add(path)
    return keys


def _flatten(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _value_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "[]"
    return str(value)


def config_rows(config: Mapping[str, Any], keys: set[str] | None) -> list[tuple[str, str, str]]:
    """``(key, value, from)`` for every setting of a ``config.get`` answer.

    ``keys`` are the key paths the file sets (:func:`file_keys`), ``None`` when the file
    could not be read (then a value is "file or default"). The token's value is never
    there: ``config.get`` answers only where it comes from.
    """
    rows: list[tuple[str, str, str]] = []
    option = config.get("server_url_option")
    defaults_only = config.get("file") == BUILT_IN
    for key, value in _flatten({k: v for k, v in config.items() if k not in _HIDDEN}, ""):
        if key.startswith("server.token"):
            continue
        if key == "server.url" and option:
            source = "--server-url"
        elif keys is None and not defaults_only:
            source = "file or default"
        elif keys is not None and key in keys:
            source = "file"
        elif _UNDER_STATE_DIR.fullmatch(key):
            source = STATE_DIR  # a path the file leaves out: under the state directory
        else:
            source = "default"
        rows.append((key, _value_text(value), source))
    token = (config.get("server") or {}).get("token")
    if token is None:
        shown = ("server.token", "(none)", "-")
    else:
        path = token.get("path")
        where = str(token.get("source"))
        shown = (
            "server.token",
            "*** (hidden)",
            _TOKEN_SOURCES.get(where, where) + (f" {path}" if path else ""),
        )
    # Right after the server's URL, where a person looks for it.
    at = next((i + 1 for i, row in enumerate(rows) if row[0] == "server.url"), len(rows))
    rows.insert(at, shown)
    return rows


class ConfigScreen(StationScreen):
    """The effective configuration, and the two server checks."""

    MODE = "config"
    TITLE = "Config"
    CHANGING = frozenset({"send_report", "reload_config"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "test", "Test connection"),
        Binding("T", "send_report", "Send test report"),
        Binding("L", "reload_config", "Reload file"),
        Binding("g", "reload", "Refresh", show=False),
    ]
    PALETTE = (
        ("Config: test the connection to the server", "test", "t"),
        ("Config: send a test report to the server", "send_report", "T"),
        ("Config: read the config file again (as SIGHUP)", "reload_config", "L"),
    )
    COMMANDS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("test the connection", "pywats server test"),
        ("send a test report", "pywats server test --send-report"),
        ("check the file", "pywats config check"),
        ("reload the file", "pywats config reload"),
    )
    DEFAULT_CSS = """
    ConfigScreen #config-bar { height: auto; max-height: 3; }
    ConfigScreen #config-table { height: 1fr; }
    ConfigScreen #config-value { height: auto; max-height: 3; border-top: solid $panel-lighten-2; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.config: dict[str, Any] | None = None
        self.rows: list[tuple[str, str, str]] = []
        self.note = ""
        self.test_result = ""

    def compose_body(self) -> ComposeResult:
        yield Static(id="config-bar", markup=False)
        yield table("config-table", [("key", "key"), ("value", "value"), ("from", "from")])
        yield Static("", id="config-value", markup=False)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self.config is None:
            self.action_reload()

    def connected_again(self) -> None:
        self.config = None
        if self.is_current:
            self.action_reload()

    def action_reload(self) -> None:
        if self.model.connection != "connected":
            return
        self.note = "loading…"
        self._bar()
        start(self, self._load, "config")

    async def _load(self) -> None:
        try:
            config = await self.station.rpc("config.get")
        except (RpcError, RpcClientError) as exc:
            self.note = getattr(exc, "message", None) or str(exc)
            self._bar()
            return
        keys: set[str] | None
        file = str(config.get("file") or "")
        self.note = f"file {file}"
        given = config.get("file_keys")
        if isinstance(given, list):
            keys = {str(key) for key in given}  # the service says (it can read the file)
        elif file and file != BUILT_IN:
            try:
                keys = file_keys(tomllib.loads(self.station.read_file(file).decode()))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                keys = None
                self.note += f" (cannot read it here: {getattr(exc, 'strerror', None) or exc})"
        else:
            keys = set()
        self.config = config
        self.rows = config_rows(config, keys)
        table = self.query_one(DataTable)
        table.clear()
        for key, value, source in self.rows:
            style = "dim" if source == "default" else "bold"
            shown = Text(_cut(source, SOURCE_WIDTH), style=style)
            table.add_row(key, _cut(value, VALUE_WIDTH), shown, key=key)
        self._bar()
        self._value()

    def _bar(self) -> None:
        text = Text(self.note)
        if self.test_result:
            text.append("\n" + self.test_result, style="bold")
        self.query_one("#config-bar", Static).update(text)

    def _value(self) -> None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return
        row = table.cursor_row
        if 0 <= row < len(self.rows):
            key, value, source = self.rows[row]
            why = source
            if source == STATE_DIR:
                # The service names what chose the directory (an older one does not).
                where = (self.config or {}).get("state_dir_from")
                why = (
                    f"a default under the state directory, from {where}"
                    if where
                    else STATE_DIR_NOTE
                )
            self.query_one("#config-value", Static).update(f"{key} = {value}   (from {why})")

    @on(DataTable.RowHighlighted)
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._value()

    def action_test(self) -> None:
        self.test_result = "testing the connection…"
        self._bar()
        start(self, partial(self._test, False), "test")

    def action_send_report(self) -> None:
        self.test_result = "sending a test report (up to 45 s)…"
        self._bar()
        start(self, partial(self._test, True), "test")

    async def _test(self, send_report: bool) -> None:
        params = {"send_report": True} if send_report else {}
        try:
            result = await self.station.rpc("server.test", **params)
        except (RpcError, RpcClientError) as exc:
            self.test_result = f"test failed: {getattr(exc, 'message', None) or exc}"
            self._bar()
            return
        parts = [f"server {result.get('state')}"]
        if result.get("version"):
            parts.append(f"WATS {result['version']}")
        if result.get("latency_ms") is not None:
            parts.append(f"{float(result['latency_ms']):.0f} ms")
        if result.get("state") != "online" and result.get("reason"):
            parts.append(str(result["reason"]))
        report = result.get("report")
        if report is not None:
            parts.append(f"test report {report.get('outcome')}: {report.get('message')}")
        self.test_result = ", ".join(parts)
        self._bar()
        command = "server test --send-report" if send_report else "server test"
        self.changed_by("server test done", command)

    def action_reload_config(self) -> None:
        start(self, self._reload_config, "test")

    async def _reload_config(self) -> None:
        try:
            result = await self.station.rpc("config.reload")
        except (RpcError, RpcClientError) as exc:
            self.failed("config reload", exc)
            return
        self.test_result = str(result.get("summary") or "")
        self._bar()
        self.changed_by("\n".join(result.get("lines") or []), "config reload")
        self.config = None
        self.action_reload()

    def export(self) -> tuple[str, str]:
        lines = [self.note, ""] + [f"{k} = {v}    # {s}" for k, v, s in self.rows]
        return "config", "\n".join(lines)
