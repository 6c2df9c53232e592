"""TaskView's end-offset lookups (behind find() of an unknown id): shared by the callers that
arrive while one runs, never answered from a lookup that started before the caller asked."""
import asyncio

from aiokafka import TopicPartition

from proftask.kafka.topics import Topics
from proftask.task_view import TaskView

TASKS = Topics.with_prefix("p.").tasks


class Offsets:
    """Stands in for the lookup consumer: each end_offsets call is one round the test releases."""

    def __init__(self):
        self.rounds: list[asyncio.Event] = []
        self.end = 0

    async def end_offsets(self, parts):
        released = asyncio.Event()
        self.rounds.append(released)
        asked_at = self.end
        await released.wait()
        return {tp: asked_at for tp in parts}


class ViewConsumer:
    def assignment(self):
        return {TopicPartition(TASKS, 0)}


def view_with(offsets: Offsets) -> TaskView:
    view = TaskView("unused:9092", Topics.with_prefix("p."))
    view._consumer, view._offsets = ViewConsumer(), offsets
    return view


def test_callers_arriving_during_a_lookup_share_the_next_one():
    async def scenario():
        offsets = Offsets()
        view = view_with(offsets)
        first = asyncio.ensure_future(view._ends_as_of_now())
        await asyncio.sleep(0)
        assert len(offsets.rounds) == 1
        offsets.end = 7  # a task is written while the first lookup is on its way
        later = [asyncio.ensure_future(view._ends_as_of_now()) for _ in range(20)]
        await asyncio.sleep(0)
        assert len(offsets.rounds) == 1  # they wait for a round of their own
        offsets.rounds[0].set()
        assert (await first)[TopicPartition(TASKS, 0)] == 0
        await asyncio.sleep(0)
        assert len(offsets.rounds) == 2  # one round for all twenty
        offsets.rounds[1].set()
        assert {r[TopicPartition(TASKS, 0)] for r in await asyncio.gather(*later)} == {7}
        assert view._ends_lookup is None or view._ends_lookup.done()

    asyncio.run(scenario())


def test_back_to_back_callers_each_get_a_fresh_lookup():
    async def scenario():
        offsets = Offsets()
        view = view_with(offsets)
        for n in range(3):
            offsets.end = n
            pending = asyncio.ensure_future(view._ends_as_of_now())
            await asyncio.sleep(0)
            offsets.rounds[-1].set()
            assert (await pending)[TopicPartition(TASKS, 0)] == n
        assert len(offsets.rounds) == 3

    asyncio.run(scenario())
