"""unless_stopped: `proftask serve`'s wait for a broker that may never answer ends on SIGTERM."""
from __future__ import annotations

import asyncio

import pytest

from proftask.runtime import unless_stopped


async def _forever(cancelled: list[bool]) -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        cancelled.append(True)
        raise


def test_a_stop_ends_work_that_would_never_end():
    async def run():
        stop, cancelled = asyncio.Event(), []
        asyncio.get_running_loop().call_later(0.01, stop.set)
        return await unless_stopped(_forever(cancelled), stop), cancelled
    assert asyncio.run(run()) == (False, [True])


def test_work_that_ends_before_any_stop_goes_on():
    async def run():
        return await unless_stopped(asyncio.sleep(0), asyncio.Event())
    assert asyncio.run(run()) is True


def test_work_that_fails_fails_the_start():
    async def fail():
        raise OSError("no route")

    async def run():
        return await unless_stopped(fail(), asyncio.Event())
    with pytest.raises(OSError, match="no route"):
        asyncio.run(run())


def test_a_stop_already_set_starts_nothing():
    async def run():
        stop = asyncio.Event()
        stop.set()
        return await unless_stopped(asyncio.sleep(0), stop)
    assert asyncio.run(run()) is False
