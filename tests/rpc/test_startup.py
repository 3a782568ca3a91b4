"""A client on the control socket during start-up: the socket listens once the store is
open, before the uploader and the pipeline start, so a client sees ``starting`` and then
the ``status.changed`` to ``running``.

The start is slowed by a real condition, not a patch: a recursive watch folder with
thousands of subfolders, which the watcher lists (in a thread, the event loop free to
serve the socket) before the pipeline reports itself started.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import trio

from pywats import config as config_mod
from pywats.plan import plan
from pywats.rpc.client import RpcClient
from pywats.rpc.server import RpcSettings
from pywats.service import Service

LIMIT_S = 60.0
SUBFOLDERS = 4000
"""Enough to keep the watcher's first listing busy for a good part of a second."""


class Listening(logging.Handler):
    """Sets :attr:`event` when the control socket says it listens (its INFO log line)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.event = trio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("control socket listening"):
            self.event.set()


def recursive_plan(tmp_path: Path) -> Any:
    """A plan with one recursive watch folder (and no server: nothing to upload)."""
    document: dict[str, Any] = {
        "queue": {"path": str(tmp_path / "queue.db")},
        "converters": [
            {
                "name": "wsjf",
                "watch": str(tmp_path / "in"),
                "recursive": True,
                "done_dir": str(tmp_path / "done"),
                "error_dir": str(tmp_path / "error"),
            }
        ],
    }
    return plan("test", config_mod.parse(document, source=tmp_path / "test.toml"), token=None)


async def test_a_client_sees_starting_then_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(SUBFOLDERS):
        (tmp_path / "in" / f"line{n // 100}" / f"station{n}").mkdir(parents=True)
    settings = RpcSettings(tmp_path / "run" / "control.sock")
    service = Service(recursive_plan(tmp_path), handle_signals=False, rpc=settings)
    caplog.set_level(logging.INFO, logger="pywats.rpc")
    listening = Listening()
    logging.getLogger("pywats.rpc").addHandler(listening)
    ready = trio.Event()
    try:
        with trio.fail_after(LIMIT_S):
            async with trio.open_nursery() as nursery:

                async def run(task_status: trio.TaskStatus[None]) -> None:
                    task_status.started()
                    await nursery.start(service.run)  # returns after READY=1
                    ready.set()

                await nursery.start(run)
                await listening.event.wait()
                async with RpcClient(settings.path) as client:
                    # Subscribed first: a change after the status below cannot be missed.
                    notes = await client.subscribe()
                    status = await client.call("service.status")
                    assert status["state"] == "starting"
                    assert not ready.is_set()
                    async for note in notes:
                        params = note.params
                        if note.method == "status.changed" and params["component"] == "service":
                            assert params["state"] == "running"
                            break
                    after = await client.call("service.status")
                    assert after["state"] == "running"
                    assert after["stream"] == notes.stream
                await ready.wait()
                service.request_stop()
    finally:
        logging.getLogger("pywats.rpc").removeHandler(listening)
