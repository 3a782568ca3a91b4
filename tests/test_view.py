"""The ServiceView's verbs on a running service (in-process, real store, real folders, a
real receiver on 127.0.0.1): what the control protocol will call, and what each does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from pywats.events import (
    ComponentStatus,
    Event,
    EventHub,
    FileProcessed,
    ReportDeleted,
    ReportFailed,
    ReportRequeued,
    ReportUploaded,
)
from pywats.service import Service
from pywats.view import ServiceStartingError, ServiceState, ServiceView
from tests.test_service import drop, make_plan, receiving

LIMIT_S = 60.0


@asynccontextmanager
async def running(tmp_path: Path, url: str | None) -> AsyncIterator[Service]:
    service = Service(make_plan(tmp_path, url), handle_signals=False)
    with trio.fail_after(LIMIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            yield service
            service.request_stop()


@asynccontextmanager
async def expect(
    service: Service, kind: type[Event], **match: object
) -> AsyncIterator[list[Event]]:
    """Subscribe, run the body (the action), then wait for the first matching event."""
    found: list[Event] = []
    with service.hub.subscribe() as sub:
        yield found
        async for event in sub:
            if isinstance(event, kind) and all(getattr(event, k) == v for k, v in match.items()):
                found.append(event)
                return


async def test_verbs_need_the_components_and_say_so_before_they_exist() -> None:
    view = ServiceView("x", EventHub(), request_stop=lambda: None)
    with pytest.raises(ServiceStartingError, match="starting"):
        view.pause_uploads()
    snapshot = await view.status()
    assert (snapshot.state, snapshot.queue, snapshot.folders) == (ServiceState.STARTING, None, ())
    assert snapshot.server.state == "none"


async def test_pause_resume_delete_and_requeue(tmp_path: Path) -> None:
    async with receiving() as receiver, running(tmp_path, receiver.url) as service:
        view = service.view
        view.pause_uploads()
        assert view.state is ServiceState.PAUSED
        assert (await view.status()).server.state == "paused"
        async with expect(service, FileProcessed):
            kept = drop(tmp_path / "in", "kept.json")
        async with expect(service, FileProcessed):
            gone = drop(tmp_path / "in", "gone.json")
        assert (await view.status()).queue.pending == 2  # type: ignore[union-attr]

        async with expect(service, ReportDeleted, report_id=gone):
            assert await view.delete([gone, "no-such-id"]) == ["no-such-id"]
        async with expect(service, ReportUploaded, report_id=kept):
            view.resume_uploads()
        assert view.state is ServiceState.RUNNING
        assert receiver.get_report(kept) is not None
        assert receiver.get_report(gone) is None

        # A report the server refuses for good, then requeued by the operator.
        receiver.set_faults(fail_first=1, fail_first_status=400)
        async with expect(service, ReportFailed):
            bad = drop(tmp_path / "in", "bad.json")
        assert (await view.status()).queue.failed == 1  # type: ignore[union-attr]
        async with (
            expect(service, ReportUploaded, report_id=bad),
            expect(service, ReportRequeued),
        ):
            assert await view.requeue_failed() == 1
        assert receiver.get_report(bad) is not None
        assert (await view.status()).queue.failed == 0  # type: ignore[union-attr]


async def test_disable_and_enable_a_folder_at_run_time(tmp_path: Path) -> None:
    async with running(tmp_path, None) as service:
        view = service.view
        async with expect(service, ComponentStatus, component="folder:wsjf") as found:
            view.disable_folder("wsjf")
        assert found[0].state == "disabled"  # type: ignore[attr-defined]
        [folder] = (await view.status()).folders
        assert not folder.enabled
        waiting = tmp_path / "in" / "waits.json"
        report_id = drop(tmp_path / "in", "waits.json")
        await trio.sleep(0.5)  # what inotify would need to hand it over (a few ms)
        assert waiting.exists()  # not taken while the folder is off
        async with expect(service, FileProcessed, report_ids=(report_id,)):
            view.enable_folder("wsjf")
        assert not waiting.exists()
        [folder] = (await view.status()).folders
        assert (folder.enabled, folder.processed) == (True, 1)
        with pytest.raises(KeyError):
            view.disable_folder("nope")


async def test_test_server_probes_now_and_says_what_it_found(tmp_path: Path) -> None:
    async with receiving() as receiver, running(tmp_path, receiver.url) as service:
        found = await service.view.test_server()
        assert found.state == "online"
        assert found.version
        assert found.latency_ms is not None
        receiver.set_faults(fail_rate=1.0, fail_status=503, fail_health=True)
        found = await service.view.test_server()
        assert found.state == "offline"
        assert "503" in found.reason


async def test_stop_is_the_graceful_stop(tmp_path: Path) -> None:
    service = Service(make_plan(tmp_path, None), handle_signals=False)
    with trio.fail_after(LIMIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            async with expect(service, ComponentStatus, component="service") as found:
                service.view.stop()
    # run() returned (the nursery closed) on its own, through the stopping state.
    assert found[0].state == "stopping"  # type: ignore[attr-defined]
    assert service.view.state is ServiceState.STOPPING
