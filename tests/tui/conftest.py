"""Tests of the Textual TUI run on asyncio, Textual's own loop; not on trio.

``tests/conftest.py`` leaves this folder out of trio mode, and this hook runs each async
test function here in a fresh event loop (``asyncio.run``, closed after the test), which is
all ``App.run_test()`` and its Pilot need. No pytest-asyncio: one loop per test is the
whole of what these tests need from it.

Async fixtures are not run here: pytest warns about one, and this suite makes warnings
errors. Open what a test needs inside it (``async with app.run_test() as pilot:``), or
from a sync fixture.
"""

from __future__ import annotations

import asyncio
import inspect

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    test = pyfuncitem.obj
    if not inspect.iscoroutinefunction(test):
        return None  # a plain test: pytest calls it
    # The arguments the way pytest's own pytest_pyfunc_call picks them: the test's
    # parameters only, not every fixture in funcargs (autouse ones are there too).
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(test(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True
