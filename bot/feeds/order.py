"""The order of a poll cycle's feeds: their tasks started a slice at a time
(:func:`gather_staggered`), and their items queued for storage one feed at a time in a
fixed order (:class:`StoreTurns`), whenever each finishes fetching and parsing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TypeVar

_T = TypeVar("_T")

#: A cycle starts its feeds' tasks this many at a time (other tasks run in between).
START_SLICE = 50


class StoreTurns:
    """An ordered handoff: the feeds of a cycle store their items one at a time, in a
    fixed order (position 0, 1, 2...), whenever each finishes fetching and parsing.

    ``async with turns.turn(i)`` waits until every earlier position is done. A feed
    that stores nothing (failed, not modified) calls :meth:`done`: its turn passes as
    soon as the previous one has, without making the feed's task wait."""

    def __init__(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        self._done: list[asyncio.Future[None]] = [loop.create_future() for _ in range(count)]

    @asynccontextmanager
    async def turn(self, position: int) -> AsyncIterator[None]:
        if position > 0:
            await asyncio.shield(self._done[position - 1])
        try:
            yield
        finally:
            self._finish(position)

    def done(self, position: int) -> None:
        """Position ``position`` has nothing (more) to store."""
        if self._done[position].done():
            return
        if position == 0:
            self._finish(0)
        else:
            self._done[position - 1].add_done_callback(lambda _: self._finish(position))

    def _finish(self, position: int) -> None:
        if not self._done[position].done():
            self._done[position].set_result(None)

    def when_all_done(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` once every position has stored (or has nothing to)."""
        if not self._done:
            return
        self._done[-1].add_done_callback(lambda _: callback())


async def gather_staggered(coros: list[Coroutine[object, object, _T]]) -> list[_T]:
    """``asyncio.gather`` of ``coros``, their tasks started ``START_SLICE`` at a time:
    each task's first step runs when it starts, and 3,000 of them in one turn of the
    loop kept a chat command waiting for a fifth of a second."""
    tasks: list[asyncio.Task[_T]] = []
    try:
        for start in range(0, len(coros), START_SLICE):
            tasks.extend(asyncio.create_task(c) for c in coros[start : start + START_SLICE])
            await asyncio.sleep(0)
    except BaseException:
        for t in tasks:
            t.cancel()
        for c in coros[len(tasks) :]:
            c.close()
        raise
    return list(await asyncio.gather(*tasks))


__all__ = ["START_SLICE", "StoreTurns", "gather_staggered"]
