"""A small record is folded in the processor itself (cheaper than the CPU pool's round trip), in
a thread: 29 KB can spell two million frames, a fold of a second or more, and the event loop
(Kafka heartbeats, other tenants' batches being written) must go on meanwhile."""
from __future__ import annotations

import asyncio
import time
import uuid

from proftask import events
from proftask.events.v1 import events_pb2 as pb
from services.processor.service import INLINE_BYTES
from tests.unit.test_fold_out_of_memory import TOPIC, Pool, processor
from tests.unit.test_stack_frames import deep


def test_a_small_record_with_millions_of_frames_folds_while_the_loop_goes_on():
    body = deep(4096, 256, stacks=2).SerializeToString()  # 4096 inlined lines 256 deep: 2^20 frames
    value = events.new_event("acme", pb.ProfileUploaded(task_id="t-1", instance_id="pod-1",
                                                        profile_id=str(uuid.uuid4()), content=body,
                                                        size=len(body))).SerializeToString()
    assert len(value) <= INLINE_BYTES
    service, _, _ = processor(Pool(AssertionError("folded in the pool"), AssertionError("folded alone")))

    async def fold_and_tick():
        gaps: list[float] = []
        folding = asyncio.ensure_future(service._fold(TOPIC, 0, 1, value))
        started = last = time.perf_counter()
        while not folding.done():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now
        return await folding, time.perf_counter() - started, max(gaps)

    folded, took, longest_gap = asyncio.run(fold_and_tick())
    assert folded is not None and len(folded[1].node_paths["node"]) == 2 * 2**20 + 1  # both granularities, root
    # on the loop, the loop stood still for the whole fold
    assert longest_gap < took / 3, (longest_gap, took)
