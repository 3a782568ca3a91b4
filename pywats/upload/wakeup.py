"""A "something changed" signal for trio tasks that wait with timeouts."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import trio


class Wakeup:
    """ "Something changed": tasks wait on it (with a timeout, or alongside another wait),
    any code wakes them all.

    A task that awaits something else between looking at the state and waiting passes
    the :meth:`mark` it took before looking, so a wake-up that came in between is not
    lost (the same idea as ``Store.generation``).
    """

    def __init__(self) -> None:
        self._scopes: set[trio.CancelScope] = set()
        self._fired = 0

    def mark(self) -> int:
        """A token for :meth:`wait`'s ``since``."""
        return self._fired

    def fire(self) -> None:
        self._fired += 1
        for scope in list(self._scopes):
            scope.cancel()

    async def wait(
        self,
        timeout: float = math.inf,
        until: Callable[[], Awaitable[object]] | None = None,
        *,
        since: int | None = None,
    ) -> None:
        """Return when fired (or fired since ``since``), after ``timeout`` s, or when
        ``until()`` returns."""
        if since is not None and since != self._fired:
            await trio.lowlevel.checkpoint()
            return
        with trio.move_on_after(max(0.0, timeout)) as scope:
            self._scopes.add(scope)
            try:
                if until is None:
                    await trio.sleep_forever()
                else:
                    await until()
            finally:
                self._scopes.discard(scope)
