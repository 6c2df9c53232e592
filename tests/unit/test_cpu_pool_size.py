"""How many profiles a process folds at once: one worker per core it may run on (a machine of
many cores folds on up to eight of them, a process pinned to one core on one), or what
proftask.cpu.workers says."""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys

import pytest

from proftask.config import load_settings
from proftask.cpu_pool import DEFAULT_MAX_WORKERS, CpuPool


def meet(barrier) -> int:
    barrier.wait(timeout=30)  # passes only when every party runs at the same time
    return os.getpid()


def test_the_configured_workers_all_fold_at_once():
    settings = load_settings(env={"PROFTASK_CPU_WORKERS": "3"})
    assert settings.cpu_workers == 3

    async def main(barrier) -> set[int]:
        pool = CpuPool(settings.cpu_workers)
        await pool.start()
        try:
            return set(await asyncio.gather(*(pool.run(meet, barrier) for _ in range(3))))
        finally:
            await pool.stop()

    with multiprocessing.get_context("spawn").Manager() as manager:
        assert len(asyncio.run(main(manager.Barrier(3)))) == 3


def test_by_default_a_worker_per_core_the_process_may_use():
    def workers(cores: set[int]) -> int:
        out = subprocess.run([sys.executable, "-c", "from proftask.cpu_pool import DEFAULT_MAX_WORKERS, CpuPool; print(CpuPool().workers)"],
                             preexec_fn=lambda: os.sched_setaffinity(0, cores), capture_output=True, text=True,
                             check=True)
        return int(out.stdout)

    allowed = os.sched_getaffinity(0)
    assert workers({min(allowed)}) == 1
    assert workers(allowed) == min(len(allowed), DEFAULT_MAX_WORKERS) == CpuPool().workers
    assert load_settings(env={}).cpu_workers == 0  # 0: one per core


@pytest.mark.parametrize("raw", ["-1", "257", "2.5", "true"])
def test_a_worker_count_out_of_range_is_refused(raw):
    with pytest.raises(ValueError, match="cpu.workers"):
        load_settings(env={"PROFTASK_CPU_WORKERS": raw})
