"""The service in-process: start order, READY after every component, the view during
start-up, stop order with deadlines. Real store, real watch folders (inotify), a real
receiver on 127.0.0.1 and a real notify socket; no process boundary, so the order of
things can be seen event by event.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
import trio.testing

from pywats import config as config_mod
from pywats.events import Event, FileProcessed, FileRejected, ReportUploaded, Stats
from pywats.plan import plan
from pywats.receiver import Receiver, ReceiverConfig
from pywats.sdnotify import Notifier
from pywats.service import Service
from pywats.view import ServiceState
from tests.report.minimal import uut

LIMIT_S = 60.0


class NotifyLog:
    """A ``$NOTIFY_SOCKET`` read by a trio task: every message, in order, as fields."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[dict[str, str]] = []
        self.changed = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            await sock.bind(str(self.path))
            task_status.started()
            while True:
                data = await sock.recv(65536)
                self.messages.append(
                    dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
                )
                self.changed.set()
                self.changed = trio.Event()

    def sent(self) -> list[str]:
        return [key for message in self.messages for key in message]

    async def wait_for(self, key: str) -> None:
        while key not in self.sent():
            await self.changed.wait()


def make_plan(tmp_path: Path, server_url: str | None, **upload: Any) -> Any:
    document: dict[str, Any] = {
        "queue": {"path": str(tmp_path / "queue.db")},
        "upload": {"retry_base_s": 0.2, **upload},
        "converters": [
            {
                "name": "wsjf",
                "watch": str(tmp_path / "in"),
                "done_dir": str(tmp_path / "done"),
                "error_dir": str(tmp_path / "error"),
            }
        ],
    }
    if server_url is not None:
        document["server"] = {"url": server_url}
    return plan("test", config_mod.parse(document, source=tmp_path / "test.toml"), token=None)


def drop(folder: Path, name: str) -> str:
    report = uut()
    report["id"] = str(uuid.uuid4())
    tmp = folder / f".{name}.tmp"
    tmp.write_text(json.dumps(report))
    tmp.rename(folder / name)
    return str(report["id"])


@asynccontextmanager
async def receiving(**options: Any) -> AsyncIterator[Receiver]:
    receiver = Receiver(ReceiverConfig(**options))
    async with trio.open_nursery() as nursery:
        await nursery.start(receiver.run)
        yield receiver
        nursery.cancel_scope.cancel()


async def collect(events: list[Event], service: Service) -> None:
    with service.hub.subscribe(buffer=10_000) as subscription:
        async for event in subscription:
            events.append(event)


async def test_ready_comes_after_every_component_and_the_view_is_whole_from_the_start(
    tmp_path: Path,
) -> None:
    notify = NotifyLog(tmp_path / "notify.sock")
    events: list[Event] = []
    with trio.fail_after(LIMIT_S):
        async with receiving() as receiver, trio.open_nursery() as nursery:
            await nursery.start(notify.run)
            service = Service(
                make_plan(tmp_path, receiver.url),
                notifier=Notifier(str(notify.path)),
                handle_signals=False,
            )
            nursery.start_soon(collect, events, service)
            await trio.sleep(0)  # the subscriber is in before anything happens
            before = service.view.state  # a local: mypy would keep the narrowing past awaits
            assert before is ServiceState.STARTING
            returned = trio.Event()

            async def serve(*, task_status: trio.TaskStatus[None]) -> None:
                await service.run(task_status=task_status)
                returned.set()

            await nursery.start(serve)
            # started() comes after READY=1, and READY=1 after every component started.
            # (The datagram is in the socket by now; let the reading task take it.)
            await trio.testing.wait_all_tasks_blocked()
            assert "READY" in notify.sent()
            statuses = [m.get("STATUS", "") for m in notify.messages]
            assert statuses.index("opening the queue") < statuses.index("starting watchers")
            assert service.view.state is ServiceState.RUNNING
            snapshot = await service.view.status()
            assert snapshot.state is ServiceState.RUNNING
            assert [f.name for f in snapshot.folders] == ["wsjf"]
            assert snapshot.folders[0].enabled
            # The watchers watch: a file dropped right after READY is taken at once
            # (inotify; the periodic rescan would take 30 s).
            report_id = drop(tmp_path / "in", "first.json")
            with service.hub.subscribe() as sub:
                async for event in sub:
                    if isinstance(event, ReportUploaded) and event.report_id == report_id:
                        break
            assert receiver.get_report(report_id) is not None
            service.request_stop()
            await returned.wait()
            nursery.cancel_scope.cancel()  # the collector reads forever
    kinds = [
        (type(e).__name__, getattr(e, "component", ""), getattr(e, "state", "")) for e in events
    ]
    service_states = [state for _, component, state in kinds if component == "service"]
    assert service_states == ["starting", "running", "stopping"]
    # The uploader had its first state before the service called itself running.
    first_uploader = next(i for i, k in enumerate(kinds) if k[1] == "uploader")
    running = kinds.index(("ComponentStatus", "service", "running"))
    assert first_uploader < running
    # One stream: numbered from 1 without gaps.
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert any(isinstance(e, FileProcessed) for e in events)
    assert any(isinstance(e, Stats) for e in events)


async def test_stop_runs_in_order_and_uploads_in_flight_get_their_deadline(
    tmp_path: Path, autojump: trio.testing.MockClock
) -> None:
    notify = NotifyLog(tmp_path / "notify.sock")
    deadline_s = 3.0
    with trio.fail_after(LIMIT_S):
        # Uploads hang (the probe does not): they are in flight when the stop comes.
        async with receiving(latency_s=1000.0) as receiver, trio.open_nursery() as nursery:
            await nursery.start(notify.run)
            service = Service(
                make_plan(tmp_path, receiver.url, shutdown_deadline_s=deadline_s),
                notifier=Notifier(str(notify.path)),
                handle_signals=False,
            )
            returned = trio.Event()

            async def serve(*, task_status: trio.TaskStatus[None]) -> None:
                await service.run(task_status=task_status)
                returned.set()

            await nursery.start(serve)
            report_id = drop(tmp_path / "in", "hangs.json")
            while (await service.view.status()).server.in_flight < 1:
                await trio.sleep(0.05)
            began = trio.current_time()
            service.request_stop()
            await notify.wait_for("STOPPING")
            assert service.view.state is ServiceState.STOPPING
            await returned.wait()
            took = trio.current_time() - began
            nursery.cancel_scope.cancel()
    # The upload got its deadline, no less and not much more.
    assert deadline_s <= took <= deadline_s + 1.0
    statuses = [m.get("STATUS", "") for m in notify.messages]
    stopping = next(i for i, m in enumerate(notify.messages) if "STOPPING" in m)
    assert statuses.index("stopping: finishing uploads in flight") > stopping
    # The report is back to pending, its attempt not counted; its file was filed.
    from pywats.store import QueueReader, QueueState

    with QueueReader.open(tmp_path / "queue.db") as reader:
        got = reader.get(report_id)
    assert (got.state, got.attempts) == (QueueState.PENDING, 0)
    assert (tmp_path / "done" / "hangs.json").exists()


async def test_the_configured_memory_budget_is_the_one_the_service_keeps(tmp_path: Path) -> None:
    # [convert] memory_budget_mb = 1: a 200 KB report needs more than that to convert,
    # so it goes to the error folder saying which key to raise (the default takes it).
    document: dict[str, Any] = {
        "queue": {"path": str(tmp_path / "queue.db")},
        "convert": {"memory_budget_mb": 1},
        "converters": [
            {
                "name": "wsjf",
                "watch": str(tmp_path / "in"),
                "done_dir": str(tmp_path / "done"),
                "error_dir": str(tmp_path / "error"),
            }
        ],
    }
    service = Service(
        plan("test", config_mod.parse(document, source=tmp_path / "test.toml"), token=None),
        handle_signals=False,
    )
    report = uut()
    report["id"] = str(uuid.uuid4())
    report["miscInfos"] = [{"description": f"pad {n}", "text": "x" * 90} for n in range(2000)]
    with trio.fail_after(LIMIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            with service.hub.subscribe(buffer=100) as subscription:
                (tmp_path / "in" / "big.json").write_text(json.dumps(report))
                async for event in subscription:
                    if isinstance(event, FileRejected):
                        break
            service.request_stop()
    assert "memory_budget_mb" in event.reason
    assert (tmp_path / "error" / "big.json").exists()
