"""Shared by every test under ``tests/``: which event loop runs an async test.

Trio mode (pytest-trio) is on for every test outside ``tests/tui/``: an async test gets the
``trio`` mark and runs under ``trio.run``, and an async fixture becomes a trio fixture (so
the ``nursery``, ``autojump_clock`` and ``mock_clock`` fixtures work as documented).
Tests under ``tests/tui/`` run on asyncio instead, Textual's loop, through
``tests/tui/conftest.py``.

Why here and not ``trio_mode = true`` in pyproject.toml, nor pytest-trio's
``from pytest_trio.enable_trio_mode import *`` in a conftest beside the trio tests: both
mark *every* async test of the session. pytest hands ``pytest_collection_modifyitems`` all
collected items whichever conftest defines it (pytest-dev/pytest#7212), so a conftest
cannot scope that hook by its folder; and the service's tests sit at the top of
``tests/``, beside ``tests/tui/``. So these two hooks are pytest-trio's own
(``pytest_trio.enable_trio_mode`` is exactly them), with ``tests/tui/`` left out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio.testing
from pytest_trio.plugin import automark, choose_run, handle_fixture

from tests.clock import pausing_autojump_in_threads

ASYNCIO_TESTS = Path(__file__).parent / "tui"
"""Async tests under this folder run on asyncio, not trio."""


def runs_on_asyncio(path: Path) -> bool:
    """True for a test (or a fixture request) under :data:`ASYNCIO_TESTS`."""
    return path.is_relative_to(ASYNCIO_TESTS)


LONG_TESTS = os.environ.get("PYWATS_LONG") == "1"
"""Whether full-size fault and load tests (``@pytest.mark.long``) run: ``PYWATS_LONG=1``.

By default each of them has a short version that runs instead, so the suite stays under
ten minutes in CI; ``PYWATS_LONG=1 make test`` runs the campaign at the issue's sizes.
"""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    automark([item for item in items if not runs_on_asyncio(item.path)], run=choose_run(config))
    if not LONG_TESTS:
        skip = pytest.mark.skip(reason="full-size fault test: run with PYWATS_LONG=1")
        for item in items:
            if item.get_closest_marker("long") is not None:
                item.add_marker(skip)


def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
) -> object | None:
    if runs_on_asyncio(request.node.path):
        return None
    return handle_fixture(fixturedef, request, force_trio_mode=True)


@pytest.fixture
def autojump() -> trio.testing.MockClock:
    """Virtual time for tests that also use the store, scans or sockets.

    It jumps to the next deadline after 0.02 s of real idleness, and never while a thread
    call (the store's worker, a scan, a file move) is in flight: trio cannot see a thread
    working, so with pytest-trio's ``autojump_clock`` virtual time would race ahead while
    a commit runs (see :mod:`tests.clock`). pytest-trio runs a test on a clock only when
    the *test function* names the fixture (a fixture depending on it is not enough).
    """
    return trio.testing.MockClock(autojump_threshold=0.02)


@pytest.fixture(autouse=True, scope="session")
def _pause_autojump_in_threads() -> Iterator[None]:
    # Every mock clock of the session, pytest-trio's autojump_clock included.
    with pausing_autojump_in_threads():
        yield
