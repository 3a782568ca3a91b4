"""Fixtures shared by the process-level tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import harness
from tests.integration.harness import ReceiverProcess


@pytest.fixture(autouse=True)
def _close_notify_sockets() -> Iterator[None]:
    yield
    while harness.OPEN_SOCKETS:
        harness.OPEN_SOCKETS.pop().close()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[ReceiverProcess]:
    """A real ``pywats receiver`` on 127.0.0.1 for one test, stopped after it."""
    proc = ReceiverProcess(tmp_path / "receiver.db")
    try:
        yield proc
    finally:
        proc.stop()
