"""The row agents (tasks, task logs) never raise out of a batch they hold: Faust restarts a crashed
actor, but the batch it took stays unacked and is not read again (only a rebalance seeks back), so
Faust's commits of its partitions stopped there (proftask.faust_commits) while the lag grew. A
poison record's dead letter sent while Kafka is away is waited out, as store_batch waits it out."""
from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaConnectionError

from proftask import events
from proftask.events.v1 import events_pb2 as pb
from services.processor import service as processor
from tests.unit.test_fold_out_of_memory import Sent

TOPIC = "t-tasks"


class Message:
    topic, partition = TOPIC, 0

    def __init__(self, offset: int):
        self.offset, self.refcount = offset, 1  # the conductor's reference

    def incref(self):
        self.refcount += 1

    def decref(self):
        self.refcount -= 1


class Event:
    def __init__(self, offset: int, value: bytes):
        self.message, self.value = Message(offset), value


class Stream:
    """take_events as Faust's: its batch acked (a reference dropped) once the body asks for more."""

    def __init__(self, batch: list[Event]):
        self.batch = batch

    async def take_events(self, max_events, within):
        try:
            yield self.batch
        finally:
            for event in self.batch:
                event.message.decref()


class App:
    def topic(self, name, **kwargs):
        return name

    def agent(self, topic, name):
        def register(fun):
            self.agents = {**getattr(self, "agents", {}), name: fun}
            return fun
        return register


class KafkaAwayOnce(Sent):
    async def send(self, key: bytes, value: bytes):
        if not getattr(self, "failed", False):
            self.failed = True
            raise KafkaConnectionError()
        return await super().send(key, value)


class Writer:
    def __init__(self):
        self.rows: list = []

    async def insert(self, table, rows):
        self.rows.extend(rows)


def test_a_dead_letter_sent_while_kafka_is_away_is_waited_out_and_the_batch_released(monkeypatch):
    monkeypatch.setattr(processor, "STORE_BACKOFF_S", 0.01)
    service = processor.ProcessorService.__new__(processor.ProcessorService)
    service.app, service.writer, service._dead_letters_out = App(), Writer(), KafkaAwayOnce()
    service._add_row_agent(TOPIC, "tasks-to-clickhouse", "tasks", lambda env: [{"task_id": env.event_id}])
    spec = pb.TaskSpec(service_id="svc", service_instance_ids=["i-1"], events=pb.CPU, duration=60)
    good = events.new_event("t1", pb.TaskCreated(task_id="task-1", create_time=1, spec=spec)).SerializeToString()
    batch = [Event(0, b"\xff not an event"), Event(1, good)]
    asyncio.run(service.app.agents["tasks-to-clickhouse"](Stream(batch)))
    (letter,) = [events.decode(value).dead_letter for value in service._dead_letters_out.values]
    assert letter.offset == 0
    assert len(service.writer.rows) == 1
    assert [event.message.refcount for event in batch] == [0, 0]  # both acked: their offsets may be committed
