"""The event envelope: building, encoding and decoding proftask events.

The messages themselves live in schemas/proftask/events/v1/events.proto; `events_pb2` is
generated from it by the build.
"""
from __future__ import annotations

import time
import uuid

from proftask.core.tasks import EventType, Task, TaskSpec
from proftask.events.v1 import events_pb2 as pb
from proftask.events.validity import InvalidEvent, read_event  # noqa: F401 - re-exported

DEFAULT_TENANT = "default"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_event(tenant: str, payload, *, event_id: str | None = None,
              occurred_at: int | None = None) -> pb.Envelope:
    """Wrap a payload message in an Envelope; `type` is the payload's message name."""
    name = type(payload).DESCRIPTOR.name
    field = _FIELD_BY_MESSAGE[name]
    env = pb.Envelope(
        event_id=event_id or str(uuid.uuid4()),
        tenant=tenant,
        occurred_at=now_ms() if occurred_at is None else occurred_at,
        type=name,
    )
    getattr(env, field).CopyFrom(payload)
    return env


def decode(data: bytes) -> pb.Envelope:
    """Parse only; consumers use read_event, which also checks the event is usable."""
    env = pb.Envelope()
    env.ParseFromString(data)
    return env


def payload_of(env: pb.Envelope):
    field = env.WhichOneof("payload")
    return None if field is None else getattr(env, field)


_FIELD_BY_MESSAGE = {
    f.message_type.name: f.name for f in pb.Envelope.DESCRIPTOR.oneofs_by_name["payload"].fields
}


def spec_to_pb(spec: TaskSpec) -> pb.TaskSpec:
    return pb.TaskSpec(
        service_id=spec.service_id,
        service_instance_ids=list(spec.service_instance_ids),
        events=pb.EventType.Value(spec.events.name),
        duration=spec.duration,
        dump_period=spec.dump_period,
    )


def spec_from_pb(msg: pb.TaskSpec) -> TaskSpec:
    return TaskSpec(
        service_id=msg.service_id,
        service_instance_ids=tuple(msg.service_instance_ids),
        events=EventType(msg.events),
        duration=msg.duration,
        dump_period=msg.dump_period,
    )


def task_from_pb(msg: pb.TaskCreated) -> Task:
    return Task(task_id=msg.task_id, spec=spec_from_pb(msg.spec), create_time=msg.create_time)
