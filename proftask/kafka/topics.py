"""The topics proftask owns: names, keys, partitions and configs (schemas/README.md explains
each). proftask creates them itself with explicit settings instead of relying on broker
auto-creation."""
from __future__ import annotations

import dataclasses
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from proftask.core.keys import joined_names

log = logging.getLogger(__name__)

# Profiles over CHUNK_BYTES travel as ProfileChunk records of at most CHUNK_BYTES (the size the
# gRPC protocol delivers them in); MAX_MESSAGE_BYTES still admits the whole-profile records that
# older versions wrote (30 MiB and the envelope), so every consumer can read the history.
MAX_MESSAGE_BYTES = 34_603_008
CHUNK_BYTES = 1024 * 1024
KEEP_FOREVER = "-1"
WEEK_MS = str(7 * 24 * 3600 * 1000)


@dataclasses.dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]


@dataclasses.dataclass(frozen=True)
class Topics:
    task_requests: str
    tasks: str
    task_events: str
    profiles: str
    profiles_dlq: str  # the processor's dead letters before dead_letters existed; no longer written
    dead_letters: str
    profile_chunks: str
    agents: str = "proftask.agents"  # live agents: AgentSeen per (tenant, service, instance)

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        return cls(
            task_requests=f"{prefix}task-requests",
            tasks=f"{prefix}tasks",
            task_events=f"{prefix}task-events",
            profiles=f"{prefix}profiles",
            profiles_dlq=f"{prefix}profiles-dlq",
            profile_chunks=f"{prefix}profile-chunks",
            dead_letters=f"{prefix}dead-letters",
            agents=f"{prefix}agents",
        )

    def specs(self, partitions: int) -> list[TopicSpec]:
        history = {"cleanup.policy": "delete", "retention.ms": KEEP_FOREVER,
                   "retention.bytes": "-1", "max.message.bytes": str(MAX_MESSAGE_BYTES)}
        return [
            # Inputs of the creation decider; the decisions on `tasks` are the record.
            TopicSpec(self.task_requests, partitions,
                      {"cleanup.policy": "delete", "retention.ms": WEEK_MS,
                       "max.message.bytes": str(MAX_MESSAGE_BYTES)}),
            TopicSpec(self.tasks, partitions, history),
            TopicSpec(self.task_events, partitions, history),
            TopicSpec(self.profiles, partitions, history),
            TopicSpec(self.profiles_dlq, partitions, history),
            # The bytes of the large profiles on `profiles`, read back by offset.
            TopicSpec(self.profile_chunks, partitions, history),
            # Every consumer's poison records, with reason and offset (proftask.kafka.dead_letters).
            TopicSpec(self.dead_letters, partitions, history),
            # Only each instance's last sighting matters.
            TopicSpec(self.agents, partitions, {"cleanup.policy": "compact"}),
        ]


def service_key(tenant: str, service_id: str) -> bytes:
    """Key of the per-service topics: one partition, hence one decider, per (tenant, service)."""
    return f"{tenant}/{service_id}".encode()


def agent_key(tenant: str, service: str, instance: str) -> bytes:
    """Key of the agents topic: compaction keeps each instance's last sighting (of each instance:
    names are escaped, joined_names)."""
    return joined_names(tenant, service, instance).encode()


def task_key(tenant: str, task_id: str) -> bytes:
    """Key of the per-task topics (task-events, profiles): a task's events stay in order."""
    return f"{tenant}/{task_id}".encode()


async def ensure_topics(bootstrap: str, specs: list[TopicSpec], replication_factor: int) -> None:
    """Create the missing topics; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        for spec in missing:
            try:
                await admin.create_topics([NewTopic(spec.name, spec.partitions, replication_factor,
                                                    topic_configs=spec.config)])
                log.info("created topic %s (%d partitions)", spec.name, spec.partitions)
            except TopicAlreadyExistsError:  # another process won the race
                pass
    finally:
        await admin.close()
