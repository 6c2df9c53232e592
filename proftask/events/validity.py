"""What makes a record a usable proftask event, checked the same way by every consumer (task
view, decider, processor, replay) before it acts on one. Pure.

A record that fails is a poison record: the consumer dead-letters it (proftask.kafka.dead_letters)
and goes on. A well-formed event of a type a consumer does not handle is not poison; consumers
skip those, as they always did (a topic may carry new event types later).
"""
from __future__ import annotations

from google.protobuf.message import DecodeError

from proftask.events.v1 import events_pb2 as pb

# InvalidEvent.kind: short and fixed, since it is a metric label.
UNDECODABLE = "undecodable"        # not an Envelope at all (or no value)
NO_PAYLOAD = "no_payload"          # an Envelope without a payload (or one from a newer schema)
INVALID_PAYLOAD = "invalid_payload"  # a payload missing ids or holding unknown enum values

_EVENT_TYPES = frozenset(pb.EventType.values())
_FAILURE_REASONS = frozenset(pb.TaskFailedOnInstance.Reason.values())


class InvalidEvent(ValueError):
    """A record no consumer can use: `kind` says which way (one of the constants above), str()
    says exactly what is wrong."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind


def read_event(value: bytes | None) -> pb.Envelope:
    """The record value as an Envelope that every consumer can act on, or InvalidEvent."""
    if value is None:
        raise InvalidEvent(UNDECODABLE, "the record has no value")
    try:
        env = pb.Envelope.FromString(value)
    except DecodeError as e:
        raise InvalidEvent(UNDECODABLE, f"not a proftask event envelope ({len(value)} bytes): {e}") from None
    field = env.WhichOneof("payload")
    if field is None:
        raise InvalidEvent(NO_PAYLOAD, f"the envelope has no payload (type {env.type!r}, event_id {env.event_id!r})")
    problems = envelope_problems(env)
    if problems:
        raise InvalidEvent(INVALID_PAYLOAD, f"{env.type or field} {env.event_id!r}: " + "; ".join(problems))
    return env


def envelope_problems(env: pb.Envelope) -> list[str]:
    """Everything wrong with a decoded envelope that has a payload; empty when it is usable."""
    problems = []
    if not env.event_id:
        problems.append("event_id is empty")
    if not env.tenant:
        problems.append("tenant is empty")
    field = env.WhichOneof("payload")
    payload = getattr(env, field)
    name = type(payload).DESCRIPTOR.name
    if env.type != name:
        problems.append(f"type {env.type!r} does not name its payload {name}")
    check = _PAYLOAD_CHECKS.get(name)
    if check is not None:
        problems += check(payload)
    return problems


def _required(msg, *fields: str) -> list[str]:
    return [f"{f} is empty" for f in fields if not getattr(msg, f)]


def _spec_problems(spec: pb.TaskSpec) -> list[str]:
    problems = [f"spec.{p}" for p in _required(spec, "service_id", "service_instance_ids")]
    if any(not i for i in spec.service_instance_ids):
        problems.append("spec.service_instance_ids holds an empty id")
    if spec.events not in _EVENT_TYPES:
        problems.append(f"spec.events {spec.events} is no known event type")
    if spec.duration < 0 or spec.dump_period < 0:
        problems.append("spec.duration and spec.dump_period cannot be negative")
    return problems


def _task_with_spec(msg) -> list[str]:
    problems = _required(msg, "task_id")
    if not msg.HasField("spec"):
        return problems + ["spec is missing"]
    return problems + _spec_problems(msg.spec)


def _failure_problems(msg: pb.TaskFailedOnInstance) -> list[str]:
    problems = _required(msg, "task_id", "instance_id")
    if msg.reason not in _FAILURE_REASONS:
        problems.append(f"reason {msg.reason} is no known failure reason")
    return problems


_PAYLOAD_CHECKS = {
    "TaskCreationRequested": _task_with_spec,
    "TaskCreated": _task_with_spec,
    "TaskCreationRejected": lambda m: _required(m, "task_id"),
    "InstanceNotified": lambda m: _required(m, "task_id", "instance_id"),
    "TaskFailedOnInstance": _failure_problems,
    "ProfileUploaded": lambda m: _required(m, "task_id", "instance_id", "profile_id"),
    "ProfileAccepted": lambda m: _required(m, "task_id", "instance_id", "profile_id"),
    "ProfileStored": lambda m: _required(m, "task_id", "instance_id", "profile_id"),
    "DeadLetter": lambda m: _required(m, "source_topic"),
    "AgentSeen": lambda m: _required(m, "service", "instance", "last_seen"),
}
