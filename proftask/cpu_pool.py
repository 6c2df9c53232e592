"""A process pool for CPU-bound profile work (validation, folding).

Python holds the GIL while it folds a profile; in a process that also serves HTTP and runs
Faust, that stalls everything else and leaves the second core idle. Workers are spawned (not
forked: the parent has Kafka and chDB threads) and import only the pure pprof code.

Workers exit when the server dies, even by SIGKILL: each holds the read end of a pipe whose only
write end is the server's, and a thread waiting on it sees EOF the moment the kernel closes the
server's descriptors. (PR_SET_PDEATHSIG would fire on the death of whichever thread spawned the
worker, and ProcessPoolExecutor spawns from the thread that submits; the pipe follows the
process, needs no ctypes and no polling.)"""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import multiprocessing
import multiprocessing.connection
import os
import threading


def _exit_when_parent_dies(parent_alive: multiprocessing.connection.Connection) -> None:
    def watch() -> None:
        try:
            parent_alive.recv()  # nothing is ever sent: returns or raises only at EOF
        except (EOFError, OSError):
            pass
        os._exit(0)  # no one is left to take a result

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _init_worker(parent_alive: multiprocessing.connection.Connection) -> None:
    _exit_when_parent_dies(parent_alive)
    import proftask.pprof.fold  # noqa: F401 - import numpy and the generated protobuf once
    import proftask.processing.profile_rows  # noqa: F401


class CpuPool:
    def __init__(self, workers: int | None = None):
        self.workers = workers or min(2, os.cpu_count() or 1)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._parent_alive: multiprocessing.connection.Connection | None = None

    async def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        reader, self._parent_alive = context.Pipe(duplex=False)  # we keep the write end, never write
        self._pool = concurrent.futures.ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=_init_worker, initargs=(reader,))

    async def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def run(self, fn, *args):
        """fn and args must be picklable (module-level functions, bytes, numbers)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args))
