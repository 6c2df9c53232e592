"""Group commit: the writes that arrive while one is in progress go in together, as the next one.

Each profile agent's actor writes its own folded profiles, and ClickHouse takes one insert at a
time (one executor thread; chDB serialises its queries anyway). An insert has a fixed cost
(~5-20 ms a table, more as the table's parts pile up before a merge), and a large profile is a
batch of its own: ten of them uploaded at once were ten inserts into each of five tables, one
after another. Grouped, the profiles folded meanwhile go in as one insert per table, and a
lone profile waits for nothing it would not have waited for.

A write returns once its items are written (an actor then lets Faust acknowledge its records),
or raises what the write of its group raised: GroupWriteCancelled when that write was cancelled
(the processor stopping). Either way the group's write was given the items, and settles them."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupWriteCancelled(Exception):
    """The write that had taken these items was cancelled: they are not known to be written."""


class GroupCommit(Generic[T]):
    def __init__(self, write: Callable[[list[T]], Awaitable[None]], abandon: Callable[[list[T]], None]):
        """write(items) writes a group; abandon(items) is told of the items of a waiter that was
        cancelled before any write took them (they will not be written from here)."""
        self._write = write
        self._abandon = abandon
        self._waiting: list[tuple[list[T], asyncio.Future]] = []
        self._lock = asyncio.Lock()

    async def write(self, items: list[T]) -> None:
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        done.add_done_callback(lambda f: f.cancelled() or f.exception())  # read, even by a waiter gone
        entry = (items, done)
        self._waiting.append(entry)
        try:
            async with self._lock:
                if not done.done():  # no group took them while this waited: lead the next
                    await self._lead(done)
                    return
        except asyncio.CancelledError:
            if any(waiting is entry for waiting in self._waiting):
                self._waiting.remove(entry)
                self._abandon(items)
            raise
        done.result()  # written by another's group, or that group's failure raised

    async def _lead(self, own: asyncio.Future) -> None:
        group, self._waiting = self._waiting, []
        others = [done for _, done in group if done is not own]
        try:
            await self._write([item for items, _ in group for item in items])
        except asyncio.CancelledError:
            for done in others:
                done.set_exception(GroupWriteCancelled("the write of its group was cancelled"))
            raise
        except BaseException as e:
            for done in others:
                done.set_exception(e)
            raise
        for done in others:
            done.set_result(None)
