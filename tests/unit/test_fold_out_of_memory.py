"""A record whose fold runs out of memory (MemoryError, or its CPU worker killed: BrokenProcessPool)
is folded once more alone, in a new worker; failing there too it is dead-lettered with the reason
and counted, not retried forever before every other tenant's profiles. A record that only shared
the pool with the culprit is folded alone and kept."""
from __future__ import annotations

import asyncio
import gzip
import os
import signal
from concurrent.futures.process import BrokenProcessPool

import pytest

from proftask import events, metrics
from proftask.cpu_pool import CpuPool
from proftask.events.v1 import events_pb2 as pb
from proftask.pprof.encode import encode_profile
from proftask.pprof.v1 import profile_pb2
from proftask.processing.group_commit import GroupCommit
from proftask.processing.writer import RowWriter
from services.processor.service import ProcessorService

TOPIC = "t-profiles"


class Pool:
    """The CPU pool's two ways to run a fold, failing as told (None: folds)."""

    def __init__(self, shared: BaseException | None, alone: BaseException | None):
        self.shared, self.alone, self.calls = shared, alone, []

    async def run(self, fn, *args):
        self.calls.append("shared")
        if self.shared is not None:
            raise self.shared
        return fn(*args)

    async def run_alone(self, fn, *args):
        self.calls.append("alone")
        if self.alone is not None:
            raise self.alone
        return fn(*args)


class Sent:
    """A Faust topic's send: what was sent, delivered at once."""

    def __init__(self):
        self.values: list[bytes] = []

    async def send(self, key: bytes, value: bytes):
        self.values.append(value)
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def processor(pool: Pool) -> tuple[ProcessorService, Sent, Sent]:
    service = ProcessorService.__new__(ProcessorService)  # no Faust app, Kafka or ClickHouse: only the fold
    service.settings = type("Settings", (), {"decompressed_max_size": 64 << 20})()
    service.cpu = pool
    service.writer = RowWriter(None)  # its task folds count the profiles in progress; nothing is written
    service._writes = GroupCommit(service._write_group, service._abandon)
    letters, task_events = Sent(), Sent()
    service._dead_letters_out, service._task_events_out = letters, task_events
    return service, letters, task_events


def record() -> bytes:
    p = profile_pb2.Profile.FromString(gzip.decompress(encode_profile(
        ["samples/count"], "samples/count", "", 0, [([("main.f", 1, False)], [3])])))
    p.string_table.append(b"x" * (40 * 1024))  # not gzipped: past INLINE_BYTES, so folded in the pool
    body = p.SerializeToString()
    return events.new_event("t1", pb.ProfileUploaded(task_id="task-1", instance_id="pod-1", profile_id="p1",
                                                     content=body, size=len(body))).SerializeToString()


def dead_letters_counted() -> float:
    return metrics.DEAD_LETTERS.labels("profiles-to-clickhouse", TOPIC, "unprocessable")._value.get()


@pytest.mark.parametrize("failure", [MemoryError(), BrokenProcessPool("a worker died")], ids=type)
def test_a_record_that_runs_out_of_memory_alone_too_is_dead_lettered_with_the_reason(failure):
    service, letters, task_events = processor(Pool(failure, failure))
    before = dead_letters_counted()
    assert asyncio.run(service._fold(TOPIC, 0, 7, record())) is None
    assert service.cpu.calls == ["shared", "alone"]
    (letter,) = [events.decode(v).dead_letter for v in letters.values]
    assert (letter.offset, letter.reason_kind) == (7, "unprocessable")
    assert "ran out of memory" in letter.reason and "folded alone" in letter.reason
    assert dead_letters_counted() == before + 1
    (failed,) = [events.decode(v).task_failed_on_instance for v in task_events.values]
    assert failed.instance_id == "pod-1" and "ran out of memory" in failed.message


def test_a_record_that_only_shared_the_pool_with_the_culprit_is_folded_alone_and_kept():
    service, letters, task_events = processor(Pool(BrokenProcessPool("a neighbour's worker died"), None))
    folded = asyncio.run(service._fold(TOPIC, 0, 8, record()))
    assert folded is not None and folded[1].profile["totals"] == [3]
    assert service.cpu.calls == ["shared", "alone"] and letters.values == [] == task_events.values


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer ends a worker


def test_a_call_run_alone_dies_alone():
    async def main():
        pool = CpuPool(workers=1)
        await pool.start()
        try:
            shared = asyncio.ensure_future(pool.run(sum, [1, 2]))
            with pytest.raises(BrokenProcessPool):
                await pool.run_alone(die)
            assert await shared == 3 and await pool.run(sum, [4]) == 4  # the pool's worker lives on
            return await pool.run_alone(sum, [5, 6])
        finally:
            await pool.stop()

    assert asyncio.run(main()) == 11
