"""A large result of the CPU pool comes back through a file in /dev/shm (proftask/cpu_pool.py),
not the pipe: the arrays arrive whole and writable, and no file is left behind, whether the
result was taken, its caller gave up waiting, or the server that should have taken it died."""
from __future__ import annotations

import asyncio
import os
import resource
import signal
import time
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pytest

from proftask import cpu_pool
from proftask.cpu_pool import CpuPool


def big_result(seed: int, delay: float = 0.0, started: str = "") -> dict:
    if started:
        open(started, "w").close()
    time.sleep(delay)  # the worker is busy: the caller's wait is what the test cancels
    rng = np.random.default_rng(seed)
    return {"ids": rng.integers(0, 2**63, 400_000, dtype=np.int64).astype(np.uint64),
            "values": np.arange(300_001, dtype=np.int64), "name": "large", "seed": seed}


def result_files() -> list[str]:
    prefix = f"proftask-result-{os.getpid()}-"
    return [n for n in os.listdir(cpu_pool._shared_dir()) if n.startswith(prefix)]


async def until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_a_large_result_arrives_whole_and_leaves_no_file():
    async def main():
        pool = CpuPool(workers=2)
        await pool.start()
        try:
            results = await asyncio.gather(*(pool.run(big_result, seed) for seed in (1, 2, 3)))
        finally:
            await pool.stop()
        return results

    for seed, result in zip((1, 2, 3), asyncio.run(main()), strict=True):
        expected = big_result(seed)
        assert result["name"] == "large" and result["seed"] == seed
        assert np.array_equal(result["ids"], expected["ids"]) and result["ids"].dtype == np.uint64
        assert np.array_equal(result["values"], expected["values"])
        result["values"][0] = 7  # writable: a private mapping
    assert result_files() == []


def test_a_result_nobody_waits_for_any_more_leaves_no_file(tmp_path):
    started = tmp_path / "started"

    async def main():
        pool = CpuPool(workers=1)
        await pool.start()
        try:
            waiting = asyncio.ensure_future(pool.run(big_result, 4, 0.5, str(started)))
            await until(started.exists)  # the worker has taken it: cancelling cannot stop it
            waiting.cancel()
            await until(lambda: waiting.done())
            assert await pool.run(big_result, 5) is not None  # the worker is free again: the first is back
            await until(lambda: result_files() == [])
        finally:
            await pool.stop()

    asyncio.run(main())


def test_files_of_a_dead_server_are_removed_when_a_pool_starts():
    directory = cpu_pool._shared_dir()
    dead = os.path.join(directory, "proftask-result-999999999-abc")
    alive = os.path.join(directory, f"proftask-result-{os.getpid()}-keep")
    for path in (dead, alive):
        with open(path, "wb") as f:
            f.write(b"x")
    try:
        async def main():
            pool = CpuPool(workers=1)
            await pool.start()
            await pool.stop()

        asyncio.run(main())
        assert not os.path.exists(dead)
        assert os.path.exists(alive)
    finally:
        for path in (dead, alive):
            if os.path.exists(path):
                os.unlink(path)


def test_a_result_file_written_short_is_not_taken_for_the_result():
    # a full /dev/shm (or any file-size limit) cuts a write short without an error: the result
    # comes through the pipe instead, whole, rather than a truncated or shifted file
    def result():
        return {"a": np.arange(1 << 17, dtype=np.int64), "b": np.arange(1 << 17, dtype=np.int64) * 3}  # 1 MiB each

    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    previous_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (3 << 19, previous_limit[1]))  # 1.5 MiB: "b" is written short
    try:
        sent = cpu_pool._run_in_worker(result)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous_limit)
        signal.signal(signal.SIGXFSZ, previous_handler)
    received = cpu_pool._received(sent)
    assert np.array_equal(received["a"], np.arange(1 << 17)) and np.array_equal(received["b"], np.arange(1 << 17) * 3)
    assert result_files() == []


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer or a fatal Go runtime error ends a worker


def test_a_worker_that_dies_fails_its_call_and_the_next_calls_get_new_workers():
    async def main():
        pool = CpuPool(workers=1)
        await pool.start()
        try:
            with pytest.raises(BrokenProcessPool):
                await pool.run(die)
            return await pool.run(big_result, 4)
        finally:
            await pool.stop()

    result = asyncio.run(main())
    assert result["seed"] == 4 and np.array_equal(result["values"], big_result(4)["values"])


def test_a_result_written_after_its_server_died_is_named_after_that_server(monkeypatch):
    # A worker outlives its server by a moment (its watcher exits it on the pipe's EOF): a result
    # file it writes then must carry the dead server's pid, so the next server removes it.
    # os.getppid() is 1 by then, a pid that is always alive: such a file stayed forever.
    gone = os.fork()
    if gone == 0:
        os._exit(0)
    os.waitpid(gone, 0)  # a pid that was a server and is no more
    monkeypatch.setattr(cpu_pool, "_server_pid", gone, raising=False)
    monkeypatch.setattr(os, "getppid", lambda: 1)  # reparented to init, as after the server's death
    sent = cpu_pool._run_in_worker(big_result, 6)
    assert os.path.basename(sent.path).startswith(f"proftask-result-{gone}-")
    cpu_pool._remove_orphans()
    assert not os.path.exists(sent.path)
