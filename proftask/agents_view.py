"""Live agents: which services and instances have an agent polling, with first and last seen.

Recorded as AgentSeen events on the compacted `agents` topic (at most one per instance per
`interval_s` of polling, from each process) and folded by every process that serves them from
the topic's beginning, so replicas and restarts agree. Separate from TaskView: its own
consumer, no group."""
from __future__ import annotations

import asyncio
import dataclasses
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from proftask import events
from proftask.errors import Unavailable
from proftask.kafka import dead_letters
from proftask.events.v1 import events_pb2 as pb
from proftask.kafka.producer import EventProducer
from proftask.kafka.topics import Topics, agent_key

log = logging.getLogger(__name__)
SEEN_INTERVAL_S = 60.0
RETRY_S = 2.0


@dataclasses.dataclass
class LiveAgent:
    service: str
    instance: str
    first_seen: int
    last_seen: int
    via: str


class AgentsView:
    def __init__(self, bootstrap: str, topics: Topics, producer: EventProducer | None = None,
                 interval_s: float = SEEN_INTERVAL_S):
        self._bootstrap, self._topic, self._producer = bootstrap, topics.agents, producer
        self._interval_s = interval_s
        self._agents: dict[tuple[str, str, str], LiveAgent] = {}  # (tenant, service, instance)
        self._sent: dict[tuple[str, str, str], float] = {}  # loop time of this process's last AgentSeen
        self._pending: set[asyncio.Task] = set()
        self._consumer: AIOKafkaConsumer | None = None
        self._runner: asyncio.Task | None = None
        self.caught_up = asyncio.Event()

    # ---- reads ----
    def require_ready(self) -> AgentsView:
        """This view, once it has read the agents topic; before, a list would leave agents out."""
        if not self.caught_up.is_set():
            raise Unavailable("the live agents are still loading")
        return self

    def services(self, tenant: str) -> list[str]:
        return sorted({s for (t, s, _) in self._agents if t == tenant})

    def instances(self, tenant: str, service: str) -> list[LiveAgent]:
        return sorted((a for (t, s, _), a in self._agents.items() if t == tenant and s == service),
                      key=lambda a: a.instance)

    # ---- writes ----
    def seen(self, tenant: str, service: str, instance: str, via: str) -> None:
        """An agent polled. Records AgentSeen in the background (a poll never waits for it, nor
        fails with it), at most once per interval per instance from this process."""
        if self._producer is None or not service or not instance:
            return
        key = (tenant, service, instance)
        now = asyncio.get_running_loop().time()
        last = self._sent.get(key)
        if last is not None and now - last < self._interval_s:
            return
        self._sent[key] = now
        known = self._agents.get(key)
        seen_at = events.now_ms()
        event = events.new_event(tenant, pb.AgentSeen(
            service=service, instance=instance, first_seen=known.first_seen if known else seen_at,
            last_seen=seen_at, via=via))
        task = asyncio.ensure_future(self._send(key, event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, key, event: pb.Envelope) -> None:
        assert self._producer is not None, "an AgentsView that records polls has a producer"
        try:
            await self._producer.send(self._topic, agent_key(*key), event)
        except Exception as e:  # noqa: BLE001 - the next poll tries again
            self._sent.pop(key, None)
            log.warning("could not record that agent %s/%s/%s polls: %r", *key, e)

    def _apply(self, env: pb.Envelope) -> None:
        seen = env.agent_seen
        key = (env.tenant, seen.service, seen.instance)
        known = self._agents.get(key)
        first = seen.first_seen or seen.last_seen
        if known is None:
            self._agents[key] = LiveAgent(seen.service, seen.instance, first, seen.last_seen, seen.via)
        else:
            known.first_seen = min(known.first_seen, first)
            if seen.last_seen >= known.last_seen:
                known.last_seen, known.via = seen.last_seen, seen.via

    # ---- lifecycle ----
    async def start(self) -> None:
        self._runner = asyncio.create_task(self._run())

    async def stop(self) -> None:
        for task in list(self._pending):
            try:
                await asyncio.wait_for(asyncio.shield(task), 5)
            except Exception:  # noqa: BLE001
                pass
        if self._runner is not None:
            self._runner.cancel()
            try:
                await self._runner
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - read again from the start
                log.warning("agents view: reading %s failed: %r; retrying", self._topic, e)
                if self._consumer is not None:
                    await self._consumer.stop()
                    self._consumer = None
                await asyncio.sleep(RETRY_S)

    async def _follow(self) -> None:
        self._consumer = consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False,
                                                     group_id=None, auto_offset_reset="earliest")
        await consumer.start()
        partitions = consumer.partitions_for_topic(self._topic) or set()
        while not partitions:
            await consumer._client.force_metadata_update()  # the topic was just created
            partitions = consumer.partitions_for_topic(self._topic) or set()
        tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while True:
            if not self.caught_up.is_set() and all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                self.caught_up.set()
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    try:
                        env = events.read_event(record.value)
                    except events.InvalidEvent as e:  # logged and counted, as the task view does
                        dead_letters.dead_letter("agents-view", record.topic, record.partition, record.offset,
                                                 dead_letters.reason_kind(e), str(e), record.value)
                        continue
                    if env.WhichOneof("payload") == "agent_seen":
                        self._apply(env)
