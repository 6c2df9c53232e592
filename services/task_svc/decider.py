"""The creation decider: a Faust agent on `task-requests` whose table, keyed by tenant/service,
owns every creation decision of that service. Requests of one service share a partition, so
they are decided one at a time in order, whichever task_svc replica received them."""
from __future__ import annotations

import uuid

import faust

from proftask import events
from proftask.config import Settings
from proftask.core.creation import Decision, ServiceState, decide_creation, rejection_reason
from proftask.core.tasks import EventType
from proftask.events.v1 import events_pb2 as pb
from proftask.faust_app import create_faust_app, stored_events
from proftask.kafka import dead_letters
from proftask.kafka.delivery import send_until_acked
from proftask.kafka.topics import Topics

AGENT_NAME = "decide-task-creation"
_DECISION_NS = uuid.UUID("4b0c3f7e-5d0a-4d8e-9a55-0e1f8f4d2c11")


def state_from_bytes(raw: bytes | None) -> ServiceState:
    if not raw:
        return ServiceState()
    msg = pb.ServiceTaskState.FromString(raw)
    return ServiceState(msg.last_create_time, tuple(
        Decision(d.task_id, EventType(d.events), d.create_time, d.duration, d.created, d.conflicting_task_id,
                 d.conflicting_until)
        for d in msg.recent))


def state_to_bytes(state: ServiceState) -> bytes:
    return pb.ServiceTaskState(last_create_time=state.last_create_time, recent=[
        pb.ServiceTaskState.Decided(task_id=d.task_id, events=pb.EventType.Value(d.events.name),
                                    create_time=d.create_time,
                                    duration=d.duration, created=d.created,
                                    conflicting_task_id=d.conflicting_task_id,
                                    conflicting_until=d.conflicting_until)
        for d in state.recent]).SerializeToString()


def decision_event(env: pb.Envelope, decision: Decision) -> pb.Envelope:
    """The decision as an event. Its id derives from the task id, so a redelivered request
    yields the very same event and every sink sees it once."""
    req = env.task_creation_requested
    if decision.created:
        payload = pb.TaskCreated(task_id=req.task_id, spec=req.spec, create_time=decision.create_time)
    else:
        payload = pb.TaskCreationRejected(task_id=req.task_id, service_id=req.spec.service_id,
                                          code="ALREADY_PROFILING_ERROR",
                                          reason=rejection_reason(decision, req.spec.service_id),
                                          conflicting_task_id=decision.conflicting_task_id)
    return events.new_event(env.tenant, payload,
                            event_id=str(uuid.uuid5(_DECISION_NS, f"{env.tenant}/{req.task_id}")),
                            occurred_at=decision.create_time or env.occurred_at)


def create_decider_app(settings: Settings, topics: Topics) -> faust.App:
    app = create_faust_app(f"{settings.topic_prefix}decider", settings)
    requests = app.topic(topics.task_requests, key_type=bytes, value_type=bytes)
    decisions = app.topic(topics.tasks, key_type=bytes, value_type=bytes)
    states = app.Table("service-task-state", default=bytes, partitions=settings.partitions,
                       key_type=bytes, value_type=bytes)

    dead_letters_out = app.topic(topics.dead_letters, key_type=bytes, value_type=bytes)

    async def dead_letter(message, value: bytes, error: Exception, tenant: str = "") -> None:
        letter = dead_letters.dead_letter(AGENT_NAME, message.topic, message.partition, message.offset,
                                          dead_letters.reason_kind(error), str(error), value, tenant)
        await send_until_acked(dead_letters_out, dead_letters.dead_letter_key(message.topic, message.partition),
                               letter.SerializeToString(), "a dead letter")

    @app.agent(requests, name=AGENT_NAME)
    async def decide(stream):
        async for event in stored_events(stream):
            key, value = event.key, event.value
            try:
                env = events.read_event(value)
            except events.InvalidEvent as e:  # a poison record must not stop the decider
                await dead_letter(event.message, value, e)
                continue
            if env.WhichOneof("payload") != "task_creation_requested":
                continue
            req = env.task_creation_requested
            try:
                state = state_from_bytes(states.get(key))
                decision, new_state = decide_creation(state, req.task_id, events.spec_from_pb(req.spec),
                                                      env.occurred_at)
            except Exception as e:  # noqa: BLE001 - pure code refusing this request: skip it, not the rest
                await dead_letter(event.message, value, e, env.tenant)
                continue
            out = decision_event(env, decision)
            # Wait for the broker's ack before the state moves on: a crash in between replays
            # the request against the old state, which yields the same decision and event id.
            await send_until_acked(decisions, key, out.SerializeToString(), f"decision on task {req.task_id}")
            states[key] = state_to_bytes(new_state)

    return app
