"""A CPU worker killed while it writes its result to /dev/shm (the OOM killer strikes at its
peak: the result held, and its copy being written) leaves no file there: the file is in RAM, and
only a restart of the server removed it."""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import threading
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pytest

from proftask import cpu_pool
from proftask.cpu_pool import CpuPool


RESULT = 256 << 20


def _kill_once_writing(directory: str, prefix: str) -> None:
    while not any(name.startswith(prefix) for name in os.listdir(directory)):
        pass  # the result file appears within a second; the worker has nothing else to do
    os.kill(os.getpid(), signal.SIGKILL)


def large_result_then_killed():
    prefix = f"{cpu_pool._PREFIX}{os.getppid()}-"
    threading.Thread(target=_kill_once_writing, args=(cpu_pool._shared_dir(), prefix), daemon=True).start()
    return np.ones(RESULT, dtype=np.uint8)  # written for a while


def server_files() -> list[str]:
    prefix = f"{cpu_pool._PREFIX}{os.getpid()}-"
    return [n for n in os.listdir(cpu_pool._shared_dir()) if n.startswith(prefix)]


@pytest.mark.parametrize("alone", [False, True], ids=["shared pool", "alone"])
def test_a_worker_killed_while_writing_its_result_leaves_no_file(alone):
    if shutil.disk_usage(cpu_pool._shared_dir()).free < 2 * RESULT:
        pytest.skip("no room for the result file: it goes through the pipe")
    async def main():
        pool = CpuPool(workers=1)
        await pool.start()
        try:
            with pytest.raises(BrokenProcessPool):
                await (pool.run_alone if alone else pool.run)(large_result_then_killed)
            return await pool.run(sum, [1, 2])
        finally:
            await pool.stop()

    assert server_files() == []
    assert asyncio.run(main()) == 3
    assert server_files() == []
