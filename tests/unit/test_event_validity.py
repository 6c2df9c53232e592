"""read_event: what every consumer accepts as a usable event, and why it refuses the rest."""
import pytest

from proftask import events
from proftask.core.tasks import EventType, TaskSpec
from proftask.events.v1 import events_pb2 as pb
from proftask.events.validity import INVALID_PAYLOAD, NO_PAYLOAD, UNDECODABLE, InvalidEvent, read_event
from proftask.kafka.dead_letters import dead_letter, dead_letter_id

SPEC = events.spec_to_pb(TaskSpec("svc", ("i-1", "i-2"), EventType.CPU, 1, 0))


def refused(value: bytes | None) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        read_event(value)
    return caught.value


@pytest.mark.parametrize("payload", [
    pb.TaskCreationRequested(task_id="t", spec=SPEC),
    pb.TaskCreated(task_id="t", spec=SPEC, create_time=5),
    pb.TaskCreationRejected(task_id="t", service_id="svc", code="ALREADY_PROFILING_ERROR"),
    pb.InstanceNotified(task_id="t", instance_id="i-1"),
    pb.TaskFailedOnInstance(task_id="t", instance_id="i-1", reason=pb.TaskFailedOnInstance.PROFILE_TOO_LARGE),
    pb.ProfileUploaded(task_id="t", instance_id="i-1", profile_id="p", content=b"x"),
    pb.ProfileAccepted(task_id="t", instance_id="i-1", profile_id="p"),
    pb.ProfileStored(task_id="t", instance_id="i-1", profile_id="p"),
    pb.DeadLetter(source_topic="proftask.tasks", offset=3),
])
def test_every_event_proftask_makes_is_read_back(payload):
    env = events.new_event("acme", payload)
    assert read_event(env.SerializeToString()) == env


@pytest.mark.parametrize("value", [b"\xff" * 5, b"\x00garbage that is no envelope", b"\x0a\xff"])
def test_bytes_that_are_no_envelope_are_undecodable(value):
    error = refused(value)
    assert error.kind == UNDECODABLE and f"({len(value)} bytes)" in str(error)


def test_a_record_without_value_is_undecodable():
    assert refused(None).kind == UNDECODABLE


@pytest.mark.parametrize("env", [
    pb.Envelope(),
    pb.Envelope(event_id="e", tenant="default", type="InstanceNotified"),
    pb.Envelope.FromString(b"\xfa\x01\x00"),  # field 31: a payload from a newer schema
], ids=["empty", "type without payload", "unknown payload"])
def test_an_envelope_without_a_payload_it_knows(env):
    assert refused(env.SerializeToString()).kind == NO_PAYLOAD


@pytest.mark.parametrize("payload, problem", [
    (pb.TaskCreated(task_id="t", spec=pb.TaskSpec(service_id="svc", service_instance_ids=["i"], events=42)),
     "spec.events 42 is no known event type"),
    (pb.TaskCreationRequested(task_id="t", spec=pb.TaskSpec(service_id="svc", service_instance_ids=["i"],
                                                           events=-3)), "spec.events -3"),
    (pb.TaskCreated(task_id="", spec=SPEC), "task_id is empty"),
    (pb.TaskCreated(task_id="t"), "spec is missing"),
    (pb.TaskCreated(task_id="t", spec=pb.TaskSpec(service_instance_ids=["i"])), "spec.service_id is empty"),
    (pb.TaskCreated(task_id="t", spec=pb.TaskSpec(service_id="s")), "spec.service_instance_ids is empty"),
    (pb.TaskCreated(task_id="t", spec=pb.TaskSpec(service_id="s", service_instance_ids=["i", ""])),
     "holds an empty id"),
    (pb.TaskCreated(task_id="t", spec=pb.TaskSpec(service_id="s", service_instance_ids=["i"], duration=-1)),
     "cannot be negative"),
    (pb.TaskFailedOnInstance(task_id="t", instance_id="i", reason=77), "reason 77 is no known failure reason"),
    (pb.InstanceNotified(task_id="t"), "instance_id is empty"),
    (pb.ProfileUploaded(task_id="t", instance_id="i"), "profile_id is empty"),
    (pb.ProfileStored(instance_id="i", profile_id="p"), "task_id is empty"),
    (pb.TaskCreationRejected(), "task_id is empty"),
])
def test_a_payload_with_missing_ids_or_unknown_enums_is_invalid(payload, problem):
    error = refused(events.new_event("default", payload).SerializeToString())
    assert error.kind == INVALID_PAYLOAD and problem in str(error)


def test_the_envelope_needs_its_id_tenant_and_a_type_naming_the_payload():
    env = events.new_event("default", pb.InstanceNotified(task_id="t", instance_id="i"))
    env.event_id, env.tenant, env.type = "", "", "TaskCreated"
    error = refused(env.SerializeToString())
    assert error.kind == INVALID_PAYLOAD
    for problem in ("event_id is empty", "tenant is empty", "type 'TaskCreated' does not name its payload"):
        assert problem in str(error)


def test_a_dead_letter_names_its_record_and_is_the_same_event_when_redelivered():
    first = dead_letter("task-view", "p.tasks", 2, 17, UNDECODABLE, "bad", b"\xff")
    again = dead_letter("task-view", "p.tasks", 2, 17, UNDECODABLE, "bad", b"\xff")
    assert first.event_id == again.event_id == dead_letter_id("task-view", "p.tasks", 2, 17)
    assert dead_letter_id("processor", "p.tasks", 2, 17) != first.event_id
    letter = first.dead_letter
    assert (letter.source_topic, letter.partition, letter.offset, letter.reason, letter.original, letter.consumer,
            letter.reason_kind) == ("p.tasks", 2, 17, "bad", b"\xff", "task-view", UNDECODABLE)
    assert read_event(first.SerializeToString()) == first
