"""How the processor's profile actors hold and store their batches, against the real embedded
ClickHouse.

A batch of profile records that fails is not given back to Faust, which acknowledges a take's
events however the agent's loop ends: Kafka away is waited out and the batch stored after all;
any other failure is tried a few times, then every record of the batch is a dead letter and its
task is told, never acknowledged unstored and silent. And an actor holds one large profile at a
time."""
from __future__ import annotations

import uuid

from aiokafka.errors import KafkaConnectionError

from proftask import events
from services.processor import service as processor_service
from tests.readmodel.test_analysis_usecase import _tree, _write_task
from tests.readmodel.test_task_folds import MS, _answers, _record
from tests.unit.test_fold_out_of_memory import TOPIC, Pool, processor
from proftask.processing.writer import RowWriter


class FailingPool(Pool):
    """Folds in this process, after failing the first `failing` calls with `failure`."""

    def __init__(self, failure: BaseException, failing: int):
        super().__init__(None, None)
        self.failure, self.failing = failure, failing
        self.workers = 2

    async def run(self, fn, *args):
        self.calls.append("shared")
        if len(self.calls) <= self.failing:
            raise self.failure
        return fn(*args)


def _task_with_two_records(loop, writer: RowWriter) -> tuple[str, list]:
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    _write_task(loop, writer, "acme", task_id, ["pod-1", "pod-2"])
    first, _ = _record(task_id, "pod-1", {("main", "a"): 1}, pad=40 * 1024)
    second, _ = _record(task_id, "pod-2", {("main", "b"): 2}, pad=40 * 1024)
    return task_id, [(TOPIC, 0, 1, b"", first), (TOPIC, 0, 2, b"", second)]


def test_a_batch_whose_chunks_kafka_would_not_give_for_a_while_is_stored_when_it_does(loop, clickhouse, monkeypatch):
    monkeypatch.setattr(processor_service, "STORE_BACKOFF_S", 0.01)
    pool = FailingPool(KafkaConnectionError("the broker is away"), failing=4)  # more than STORE_ATTEMPTS
    service, letters, task_events = processor(pool)
    service.writer = RowWriter(clickhouse)
    task_id, records = _task_with_two_records(loop, service.writer)
    loop.run_until_complete(service.store_batch(records))
    assert letters.values == []
    stored = [events.decode(v).profile_stored.instance_id for v in task_events.values]
    assert sorted(stored) == ["pod-1", "pod-2"]
    folded, summed = _answers(loop, clickhouse, "acme", task_id)
    assert folded == summed and _tree(folded)[1][()] == (3 * MS, 0)


def test_a_batch_that_keeps_failing_becomes_dead_letters_and_its_tasks_are_told(loop, clickhouse, monkeypatch):
    monkeypatch.setattr(processor_service, "STORE_BACKOFF_S", 0.01)
    pool = FailingPool(RuntimeError("a fold that cannot be done"), failing=1000)
    service, letters, task_events = processor(pool)
    service.writer = RowWriter(clickhouse)
    task_id, records = _task_with_two_records(loop, service.writer)
    loop.run_until_complete(service.store_batch(records))
    letters_sent = [events.decode(v).dead_letter for v in letters.values]
    assert [letter.offset for letter in letters_sent] == [1, 2]
    assert all("not stored after 3 attempts" in letter.reason and "a fold that cannot be done" in letter.reason
               for letter in letters_sent)
    failed = [events.decode(v).task_failed_on_instance for v in task_events.values]
    assert sorted(f.instance_id for f in failed) == ["pod-1", "pod-2"]
    assert all(f.task_id == task_id and "could not be processed" in f.message for f in failed)
    assert not service.writer.task_folds._in_progress  # nothing of the task waits for them


class StoredCountingPool(Pool):
    """Folds in this process, noting for each fold how many profiles had been told stored."""

    def __init__(self, task_events):
        super().__init__(None, None)
        self.workers, self.task_events, self.stored_before = 2, task_events, []

    async def run(self, fn, *args):
        self.stored_before.append(len(self.task_events.values))
        return fn(*args)


def test_an_actor_folds_its_next_large_profile_once_the_one_before_is_written(loop, clickhouse, monkeypatch):
    """A large profile is a batch of its own: the actor holds one at a time (the other actors fold
    meanwhile), not one written and one folded ahead."""
    monkeypatch.setattr(processor_service, "PROFILE_BATCH_BYTES", 1)  # each profile a batch of its own
    service, letters, task_events = processor(Pool(None, None))
    service.cpu = pool = StoredCountingPool(task_events)
    service.writer = RowWriter(clickhouse)
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    names = ["pod-1", "pod-2", "pod-3"]
    _write_task(loop, service.writer, "acme", task_id, names)
    records = [(TOPIC, 0, i, b"", _record(task_id, name, {("main", "a"): 1}, pad=40 * 1024)[0])
               for i, name in enumerate(names)]
    loop.run_until_complete(service.store_batch(records))
    assert pool.stored_before == [0, 1, 2] and letters.values == []
    folded, summed = _answers(loop, clickhouse, "acme", task_id)
    assert folded == summed and _tree(folded)[1][()] == (3 * MS, 0)
