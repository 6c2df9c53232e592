"""The task view of task_svc and ingest_svc: every task and every NOTIFIED delivery, rebuilt
from the `tasks` and `task-events` topics at start and followed live.

Each process reads all partitions itself (no consumer group), so any replica answers for any
task; there is no ClickHouse behind it and nothing to lose on restart.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from proftask import events, metrics
from proftask.config import RetentionPolicy
from proftask.core.tasks import Task
from proftask.errors import Unavailable
from proftask.events.v1 import events_pb2 as pb
from proftask.kafka import dead_letters
from proftask.kafka.topics import MAX_MESSAGE_BYTES, Topics

UNKNOWN_TASK_SYNC_S = 5.0  # how long find() waits for the view to catch up with an unknown task
RETRY_MIN_S, RETRY_MAX_S = 0.5, 10.0  # after the consumer failed, before reading again
DAY_MS = 86_400_000
log = logging.getLogger(__name__)


class TaskView:
    def __init__(self, bootstrap: str, topics: Topics, name: str = "task-view",
                 retention: RetentionPolicy | None = None):
        self._bootstrap = bootstrap
        self._retention = retention or RetentionPolicy()
        self._topics = topics
        self._name = name
        self._consumer: AIOKafkaConsumer | None = None
        self._runner: asyncio.Task | None = None
        self.tasks: dict[tuple[str, str], Task] = {}  # (tenant, task_id) → task
        self._by_service: dict[tuple[str, str], list[Task]] = collections.defaultdict(list)
        self._notified: set[tuple[str, str, str]] = set()  # (tenant, task_id, instance)
        self._accepted_profiles: set[tuple[str, str]] = set()  # (tenant, profile_id): on Kafka or stored
        # (tenant, instance) → ids of the tasks it uploaded for (ProfileAccepted), finished
        # (ProfileStored) or failed
        self._settled: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
        self._decisions: dict[str, asyncio.Future] = {}
        self._changed = asyncio.Condition()
        self.waits_ended = False  # the process is stopping: long polls answer now (end_waits)
        self._advanced = asyncio.Condition()  # notified after every batch the view has applied
        self.caught_up = asyncio.Event()
        self.failure: str | None = None  # why the last read failed, until one succeeds again
        self._offsets: AIOKafkaConsumer | None = None  # end-offset lookups only (see sync)
        self._ends_lookup: asyncio.Task | None = None
        self._ends_next: asyncio.Future | None = None

    # ---- reads ----
    def require_ready(self) -> TaskView:
        """This view, once it holds the whole task history; until then every answer from it
        would be a guess (a task not found that exists), so the caller is told to try again."""
        if not self.caught_up.is_set():
            raise Unavailable("task view is still loading the task history")
        return self

    def _kept(self, tenant: str, task: Task) -> bool:
        """False once the tenant's retention has passed since the task was created: ClickHouse's
        TTL removes its rows from then on (the topics keep its events), and shown without its
        logs it would read as failed. Gone, as in SkyWalking, whose records expire by TTL."""
        days = self._retention.days_for(tenant)
        return not days or task.create_time + days * DAY_MS > time.time() * 1000

    def get(self, tenant: str, task_id: str) -> Task | None:
        task = self.tasks.get((tenant, task_id))
        return task if task is not None and self._kept(tenant, task) else None

    async def find(self, tenant: str, task_id: str) -> Task | None:
        """get(), but an unknown task first syncs the view to the topic's end: a task another
        replica created a moment ago is found (read-your-writes across replicas)."""
        if (tenant, task_id) in self.tasks:  # known: kept or past its retention, nothing to wait for
            return self.get(tenant, task_id)
        if await self.sync(UNKNOWN_TASK_SYNC_S):
            return self.get(tenant, task_id)
        return None

    def tasks_of_service(self, tenant: str, service_id: str) -> list[Task]:
        return [t for t in self._by_service.get((tenant, service_id), []) if self._kept(tenant, t)]

    def all_tasks(self, tenant: str) -> list[Task]:
        return [t for (ten, _), t in self.tasks.items() if ten == tenant and self._kept(tenant, t)]

    def claim_notification(self, tenant: str, task_id: str, instance_id: str) -> bool:
        """True exactly once per (task, instance) in this process; the caller then emits
        InstanceNotified (and calls release_notification if that fails)."""
        key = (tenant, task_id, instance_id)
        if key in self._notified:
            return False
        self._notified.add(key)
        return True

    def release_notification(self, tenant: str, task_id: str, instance_id: str) -> None:
        self._notified.discard((tenant, task_id, instance_id))

    def settled_tasks(self, tenant: str, instance_id: str) -> set[str]:
        """Ids of the tasks this instance uploaded for, finished or failed (never to be handed to
        it again)."""
        return self._settled.get((tenant, instance_id), set())

    def profile_accepted(self, tenant: str, profile_id: str) -> bool:
        """The profile is on Kafka (its ProfileAccepted or ProfileStored was seen, or this process
        sent it: note_accepted)."""
        return (tenant, profile_id) in self._accepted_profiles

    def note_accepted(self, tenant: str, payload: pb.ProfileAccepted | pb.ProfileStored) -> None:
        """The profile is on Kafka and its instance settled: a ProfileAccepted or ProfileStored
        read, or a ProfileAccepted this process sent, applied at once (the agent's next poll or
        retry may come before the view reads it back)."""
        self._accepted_profiles.add((tenant, payload.profile_id))
        self._settled[(tenant, payload.instance_id)].add(payload.task_id)

    def expect_decision(self, task_id: str) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self._decisions[task_id] = fut
        return fut

    def forget_decision(self, task_id: str) -> None:
        self._decisions.pop(task_id, None)

    async def sync(self, timeout: float) -> bool:
        """Wait until the view holds every task on the topic as of now, so that a task another
        replica created a moment ago is known here (read-your-writes across replicas). False
        when that takes longer than timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            ends = await asyncio.wait_for(asyncio.shield(self._ends_as_of_now()), timeout)
        except (TimeoutError, KafkaError) as e:
            log.warning("%s: the end offsets of %s are unknown: %r", self._name, self._topics.tasks, e)
            return False

        async def behind() -> bool:
            for tp, end in ends.items():
                if await self._running.position(tp) < end:
                    return True
            return False

        async with self._advanced:
            while await behind():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                try:
                    await asyncio.wait_for(self._advanced.wait(), remaining)
                except TimeoutError:
                    return False
        return True

    def _ends_as_of_now(self) -> asyncio.Future:
        """The end offsets of the tasks topic, looked up after this call. Lookups run one at a
        time and every caller that arrives while one runs shares the next: a burst of unknown
        ids costs one round trip per lookup, not one per request, and no caller is answered
        with offsets read before it asked (that would miss a task created in between).

        They go through a consumer of their own: the view's consumer has a fetch waiting on the
        broker (up to fetch_max_wait_ms, 500 ms) and the broker answers one connection's
        requests in order, so a lookup there waited for it (0.15-0.75 s per unknown id)."""
        result = self._ends_next
        if result is None:
            result = self._ends_next = asyncio.get_running_loop().create_future()
            result.add_done_callback(lambda f: f.cancelled() or f.exception())  # waiters may be gone
            if self._ends_lookup is None:
                self._start_ends_lookup()
        return result

    @property
    def _running(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "the view's consumer is started before it is read"
        return self._consumer

    def _start_ends_lookup(self) -> None:
        result, self._ends_next = self._ends_next, None
        assert result is not None  # started only for a waiting lookup
        self._ends_lookup = asyncio.create_task(self._look_up_ends(result), name=f"{self._name}-ends")

    async def _look_up_ends(self, result: asyncio.Future) -> None:
        try:
            if self._offsets is None:
                offsets = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None,
                                           enable_auto_commit=False)
                await offsets.start()
                self._offsets = offsets
            parts = [tp for tp in self._running.assignment() if tp.topic == self._topics.tasks]
            ends = await self._offsets.end_offsets(parts)
            if not result.done():
                result.set_result(ends)
        except BaseException as e:  # noqa: BLE001 - every waiter gets the failure
            if not result.done():
                result.set_exception(e if not isinstance(e, asyncio.CancelledError) else KafkaError(repr(e)))
            if isinstance(e, asyncio.CancelledError):
                raise
        finally:
            self._ends_lookup = None
            if self._ends_next is not None:
                self._start_ends_lookup()

    async def wait_for_change(self, timeout: float) -> None:
        """Returns when a task was added, or after timeout (for long-polling agents), or at once
        once end_waits was called."""
        async with self._changed:
            if self.waits_ended:
                return
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                pass

    async def end_waits(self) -> None:
        """The process is stopping: every long poll answers now, rather than hold the stop for up
        to its 30 s (the HTTP server waits for the requests in hand)."""
        self.waits_ended = True
        async with self._changed:
            self._changed.notify_all()

    # ---- lifecycle ----
    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        )
        await self._consumer.start()
        wanted = (self._topics.tasks, self._topics.task_events)
        parts: list[TopicPartition] = []
        for _ in range(100):  # topics created a moment ago may not be in the metadata yet
            # consumer.topics() would not tell the partitions of topics it is not subscribed to
            cluster = await self._consumer._client.fetch_all_metadata()
            parts = [TopicPartition(topic, p) for topic in wanted
                     for p in sorted(cluster.partitions_for_topic(topic) or ())]
            if all(cluster.partitions_for_topic(t) for t in wanted):
                break
            await asyncio.sleep(0.2)
        else:
            raise RuntimeError(f"topics {', '.join(wanted)} do not exist")
        self._consumer.assign(parts)
        await self._consumer.seek_to_beginning(*parts)
        self._end_at_start = await self._consumer.end_offsets(parts)
        self._runner = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._runner:
            self._runner.cancel()
            try:
                await self._runner
            except (asyncio.CancelledError, Exception):
                pass
        if self._consumer:
            await self._consumer.stop()
        if self._ends_lookup is not None:
            self._ends_lookup.cancel()
        if self._offsets is not None:
            await self._offsets.stop()

    @property
    def healthy(self) -> bool:
        """Following the topics: the runner is alive and its last attempt to read did not fail."""
        return self._runner is not None and not self._runner.done() and self.failure is None

    async def _run(self) -> None:
        """Follows the topics for as long as the process lives: a failure of the consumer is
        logged, counted, shown in /readyz (healthy is False) and retried from where it stopped,
        never a silent end."""
        backoff = RETRY_MIN_S
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - whatever it is, the view must go on
                # failure is None again once a read succeeded: the backoff starts over
                backoff = RETRY_MIN_S if self.failure is None else min(backoff * 2, RETRY_MAX_S)
                self.failure = f"{type(e).__name__}: {e}"
                metrics.CONSUMER_FAILURES.labels(self._name).inc()
                log.exception("%s stopped following %s and %s; retrying in %.1fs", self._name,
                              self._topics.tasks, self._topics.task_events, backoff)
                await asyncio.sleep(backoff)

    async def _follow(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        await self._check_caught_up()
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            self.failure = None
            changed = False
            for records in batches.values():
                for record in records:
                    changed |= self._apply_record(record)
            if changed:
                async with self._changed:
                    self._changed.notify_all()
            async with self._advanced:
                self._advanced.notify_all()
            await self._check_caught_up()
            lag = 0
            for tp in consumer.assignment():
                lag += max(0, (consumer.highwater(tp) or 0) - await consumer.position(tp))
            metrics.CONSUMER_LAG.labels(self._name).set(lag)

    def _apply_record(self, record) -> bool:
        """_apply, but a record the view cannot use is logged, counted and skipped. The view has
        no consumer group: every replica re-reads the history at each start, so it publishes no
        DeadLetter itself; the processor's group does, once, for these topics."""
        try:
            return self._apply(events.read_event(record.value))
        except Exception as e:  # noqa: BLE001 - one bad record must not take the view down
            dead_letters.dead_letter(self._name, record.topic, record.partition, record.offset,
                                     dead_letters.reason_kind(e), str(e), record.value)
            return False

    async def _check_caught_up(self) -> None:
        if self.caught_up.is_set():
            return
        for tp, end in self._end_at_start.items():
            if await self._running.position(tp) < end:
                return
        self.caught_up.set()
        log.info("%s caught up: %d tasks", self._name, len(self.tasks))

    def _apply(self, env: pb.Envelope) -> bool:
        """Fold one event into the view; True when a task was added."""
        metrics.EVENTS_CONSUMED.labels(self._name, env.type).inc()
        payload = events.payload_of(env)
        if isinstance(payload, pb.TaskCreated):
            task = events.task_from_pb(payload)
            key = (env.tenant, task.task_id)
            added = key not in self.tasks
            if added:
                self.tasks[key] = task
                self._by_service[(env.tenant, task.spec.service_id)].append(task)
            self._resolve(task.task_id, payload)
            return added
        if isinstance(payload, pb.TaskCreationRejected):
            self._resolve(payload.task_id, payload)
        elif isinstance(payload, pb.InstanceNotified):
            self._notified.add((env.tenant, payload.task_id, payload.instance_id))
        elif isinstance(payload, pb.ProfileAccepted | pb.ProfileStored):
            self.note_accepted(env.tenant, payload)
        elif isinstance(payload, pb.TaskFailedOnInstance):
            self._settled[(env.tenant, payload.instance_id)].add(payload.task_id)
        return False

    def _resolve(self, task_id: str, decision) -> None:
        fut = self._decisions.pop(task_id, None)
        if fut is not None and not fut.done():
            fut.set_result(decision)
