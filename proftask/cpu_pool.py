"""A process pool for CPU-bound profile work (validation, folding).

Python holds the GIL while it folds a profile; in a process that also serves HTTP and runs
Faust, that stalls everything else and leaves the second core idle. Workers are spawned (not
forked: the parent has Kafka and chDB threads) and import only the pure pprof code."""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import multiprocessing
import os


def _warm_up() -> None:
    import proftask.pprof.fold  # noqa: F401 - import numpy and the generated protobuf once
    import services.processor.profile_rows  # noqa: F401


class CpuPool:
    def __init__(self, workers: int | None = None):
        self.workers = workers or min(2, os.cpu_count() or 1)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    async def start(self) -> None:
        self._pool = concurrent.futures.ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_warm_up)

    async def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def run(self, fn, *args):
        """fn and args must be picklable (module-level functions, bytes, numbers)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args))
