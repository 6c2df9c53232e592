from proftask import events
from proftask.core.tasks import EventType, TaskSpec
from proftask.events.v1 import events_pb2 as pb
from proftask.processing.rows import task_log_rows, task_rows
from services.task_svc.decider import state_from_bytes, state_to_bytes
from proftask.core.creation import ServiceState, decide_creation


def test_envelope_round_trip_keeps_tenant_type_and_payload():
    env = events.new_event("default", pb.InstanceNotified(task_id="t", instance_id="i"))
    back = events.decode(env.SerializeToString())
    assert back.type == "InstanceNotified" and back.tenant == "default" and back.event_id
    assert events.payload_of(back) == pb.InstanceNotified(task_id="t", instance_id="i")


def test_task_created_becomes_one_task_row():
    spec = TaskSpec("svc", ("a", "b"), EventType.BLOCK, 2, 100)
    env = events.new_event("default", pb.TaskCreated(task_id="t", spec=events.spec_to_pb(spec), create_time=7))
    (row,) = task_rows(env)
    assert {k: v for k, v in row.items() if k != "event_id"} == dict(
        tenant="default", task_id="t", service_id="svc", service_instance_ids=["a", "b"], events="BLOCK",
        duration=2, dump_period=100, create_time=7)
    assert task_rows(events.new_event("default", pb.TaskCreationRejected(task_id="x"))) == []


def test_notified_rows_share_a_dedup_key_and_errors_do_not():
    n1 = events.new_event("default", pb.InstanceNotified(task_id="t", instance_id="a"))
    n2 = events.new_event("default", pb.InstanceNotified(task_id="t", instance_id="a"))
    assert task_log_rows(n1)[0]["dedup_key"] == task_log_rows(n2)[0]["dedup_key"] == ""
    e = events.new_event("default", pb.TaskFailedOnInstance(
        task_id="t", instance_id="a", reason=pb.TaskFailedOnInstance.PROFILE_TOO_LARGE, message="big"))
    (row,) = task_log_rows(e)
    assert (row["operation_type"], row["dedup_key"], row["message"]) == (
        "PPROF_UPLOAD_FILE_TOO_LARGE_ERROR", e.event_id, "big")


def test_decider_state_survives_its_table_encoding():
    _, state = decide_creation(ServiceState(), "t1", TaskSpec("s", ("a",), EventType.CPU, 3, 0), 1000)
    assert state_from_bytes(state_to_bytes(state)) == state
    assert state_from_bytes(b"") == ServiceState()
