"""Textual's Linux driver, made safe for a terminal that goes away: :class:`StationDriver`.

When an SSH session drops, the terminal's input reaches its end (``read`` returns
nothing, or fails with ``EIO``) and its output fails. Textual's own input thread keeps
selecting a descriptor that is always readable and reads nothing, at 100 % CPU
(Textualize/textual, a known issue), and a failed write kills its output thread, after
which the app blocks on a full write queue. This driver reads until the end and then
tells the app (:class:`~tui.messages.InputEnded`, so it quits), and drops output once the
terminal is gone.
"""

from __future__ import annotations

import os
import selectors
from codecs import getincrementaldecoder
from typing import IO, TYPE_CHECKING, Any

from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

from tui.messages import InputEnded

if TYPE_CHECKING:
    from textual.app import App

__all__ = ["SafeOutput", "StationDriver"]


class SafeOutput:
    """A text file that stops writing (silently) once a write failed: the terminal is
    gone, and nothing is left to tell."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file
        self.broken = False

    def write(self, text: str) -> int:
        if self.broken:
            return len(text)
        try:
            return self._file.write(text)
        except (OSError, ValueError):
            self.broken = True
            return len(text)

    def flush(self) -> None:
        if self.broken:
            return
        try:
            self._file.flush()
        except (OSError, ValueError):
            self.broken = True

    def fileno(self) -> int:
        return self._file.fileno()

    def isatty(self) -> bool:
        return not self.broken and self._file.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


class StationDriver(LinuxDriver):
    """:class:`LinuxDriver` that ends on end of input and survives a vanished terminal."""

    def __init__(
        self,
        app: App[Any],
        *,
        debug: bool = False,
        mouse: bool = True,
        size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(app, debug=debug, mouse=mouse, size=size)
        self._file = SafeOutput(self._file)  # type: ignore[assignment,arg-type]
        self.input_ended = False

    def run_input_thread(self) -> None:
        """Read the terminal and feed the parser until told to stop or the input ends."""
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode
        try:
            while not self.exit_event.is_set():
                for _key, mask in selector.select(0.1):
                    if not mask & selectors.EVENT_READ:
                        continue
                    try:
                        data = os.read(self.fileno, 4096)
                    except OSError:
                        data = b""  # EIO: the terminal is gone
                    if not data:
                        self.input_ended = True
                        self._app.post_message(InputEnded())
                        return
                    for event in parser.feed(decode(data)):
                        self.process_message(event)
                for event in parser.tick():
                    self.process_message(event)
        finally:
            selector.close()
