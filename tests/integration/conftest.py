"""Fixtures shared by the process-level tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration import harness


@pytest.fixture(autouse=True)
def _close_notify_sockets() -> Iterator[None]:
    yield
    while harness.OPEN_SOCKETS:
        harness.OPEN_SOCKETS.pop().close()
