"""Delivering tasks to agents, NOTIFIED once, agent errors in progress."""
import threading
import time
import uuid

import pytest

from tests.conformance.oracle import require_conformance
from proftask.kafka.topics import MAX_MESSAGE_BYTES
from tests.integration.harness import new_topic_prefix, set_max_message_bytes, wait_until
from tests.integration.profiles import upload



def new_task(stack, events="HEAP", instances=("i-1", "i-2"), **kw):
    service = f"svc-{uuid.uuid4().hex[:8]}"
    r = stack.post("/api/v1/pprof/tasks", {"serviceId": service, "serviceInstanceIds": list(instances),
                                            "events": events, **kw})
    assert r.status == 201, r
    task = stack.get(f"/api/v1/pprof/tasks/{r.json()['id']}").json()
    return service, task


def commands(stack, service, instance, last=0, **extra):
    q = "&".join(f"{k}={v}" for k, v in {"service": service, "serviceInstance": instance,
                                          "lastCommandTime": last, **extra}.items())
    r = stack.get(f"/api/v1/pprof/agent/commands?{q}")
    assert r.status == 200, r
    return r.json()["commands"]


def progress(stack, task_id):
    r = stack.get(f"/api/v1/pprof/tasks/{task_id}/progress")
    return r.json() if r.status == 200 else None


def test_command_has_the_six_args_and_notifies_once(stack):
    service, task = new_task(stack, events="MUTEX", duration=2, dumpPeriod=5)
    (cmd,) = commands(stack, service, "i-1")
    assert cmd["command"] == "PprofTaskQuery"
    args = [(a["key"], a["value"]) for a in cmd["args"]]
    assert [k for k, _ in args] == ["SerialNumber", "TaskId", "Events", "Duration", "CreateTime", "DumpPeriod"]
    assert dict(args) | {"SerialNumber": "-"} == {"SerialNumber": "-", "TaskId": task["id"], "Events": "mutex",
                                                  "Duration": "2", "CreateTime": str(task["createTime"]),
                                                  "DumpPeriod": "5"}
    assert commands(stack, service, "i-1")  # polling again still returns it...
    notified = wait_until(lambda: [entry for entry in (progress(stack, task["id"]) or {"logs": []})["logs"]
                                   if entry["operationType"] == "NOTIFIED"], message="NOTIFIED in progress")
    assert [(entry["instanceId"], entry["id"]) for entry in notified] == [("i-1", task["id"])]
    # ...but the log has exactly one NOTIFIED for i-1, even after everything is processed
    assert commands(stack, service, "i-2")
    wait_until(lambda: len([entry for entry in progress(stack, task["id"])["logs"] if entry["operationType"] == "NOTIFIED"]) == 2)
    logs = progress(stack, task["id"])["logs"]
    assert sorted(entry["instanceId"] for entry in logs if entry["operationType"] == "NOTIFIED") == ["i-1", "i-2"]


def test_no_command_for_other_instance_or_at_create_time(stack):
    service, task = new_task(stack)
    assert commands(stack, service, "not-in-task") == []
    assert commands(stack, service, "i-1", last=task["createTime"]) == []
    assert commands(stack, "other-service", "i-1") == []


def test_oldest_task_first_then_the_next(stack):
    service, heap = new_task(stack, events="HEAP")
    r = stack.post("/api/v1/pprof/tasks", {"serviceId": service, "serviceInstanceIds": ["i-1"],
                                            "events": "GOROUTINE"})
    goroutine_id = r.json()["id"]
    (first,) = commands(stack, service, "i-1")
    assert {a["key"]: a["value"] for a in first["args"]}["TaskId"] == heap["id"]
    (second,) = commands(stack, service, "i-1", last=heap["createTime"])
    assert {a["key"]: a["value"] for a in second["args"]}["TaskId"] == goroutine_id


def test_long_poll_returns_as_soon_as_a_task_exists(stack):
    service = f"svc-{uuid.uuid4().hex[:8]}"
    result = {}

    def poll():
        result["commands"] = commands(stack, service, "i-1", wait=20)
        result["answered"] = time.monotonic()

    poller = threading.Thread(target=poll)
    poller.start()
    # the poll has arrived once its agent is listed (it is recorded before the poll waits)
    wait_until(lambda: stack.get(f"/api/v1/pprof/services/{service}/instances").json().get("instances"))
    assert poller.is_alive()  # waiting: nothing to hand it yet
    created = time.monotonic()
    assert stack.post("/api/v1/pprof/tasks", {"serviceId": service, "serviceInstanceIds": ["i-1"],
                                               "events": "HEAP"}).status == 201
    poller.join(25)
    assert len(result["commands"]) == 1
    assert result["answered"] - created < 5  # answered at creation, not at the 20 s wait


def test_agent_error_is_kept_with_its_message(stack):
    service, task = new_task(stack)
    commands(stack, service, "i-2")
    r = stack.post("/api/v1/pprof/agent/errors", {"taskId": task["id"], "service": service,
                                                   "serviceInstance": "i-2",
                                                   "message": "cpu profiling already in use"})
    assert r.status == 202, r
    p = wait_until(lambda: (lambda p: p if p and p["errorInstanceIds"] else None)(progress(stack, task["id"])),
                   message="error in progress")
    assert p["errorInstanceIds"] == ["i-2"] and p["successInstanceIds"] == []
    (err,) = [entry for entry in p["logs"] if entry["operationType"] == "EXECUTION_TASK_ERROR"]
    assert err["message"] == "cpu profiling already in use" and err["instanceId"] == "i-2"


@pytest.mark.parametrize("body,status", [
    ({"taskId": "nope", "serviceInstance": "i-1", "message": "x"}, 404),
    ({"serviceInstance": "i-1", "message": "x"}, 400),
    ({"taskId": 5, "serviceInstance": "i-1"}, 400),
])
def test_agent_error_bad_input(stack, body, status):
    assert stack.post("/api/v1/pprof/agent/errors", body).status == status


def test_agent_error_for_instance_outside_task_is_409(stack):
    service, task = new_task(stack)
    r = stack.post("/api/v1/pprof/agent/errors", {"taskId": task["id"], "serviceInstance": "stranger"})
    assert r.status == 409, r


def test_bad_commands_query_is_400(stack):
    assert stack.get("/api/v1/pprof/agent/commands?serviceInstance=i").status == 400
    assert stack.get("/api/v1/pprof/agent/commands?service=s&serviceInstance=i&lastCommandTime=x").status == 400
    assert stack.get("/api/v1/pprof/agent/commands?service=s&serviceInstance=i&wait=31").status == 400


def test_an_instance_whose_upload_was_accepted_is_not_handed_the_task_again_while_it_is_stored(spawn):
    """Between the 202 and the processor's ProfileStored (a second, or as long as ClickHouse is
    away), a restarted agent polling from 0 was handed its task again and ran it again. Here no
    processor runs at all until the end: the instance is settled by the upload alone, in the
    process that took it and, through Kafka, in another; the same upload again is a duplicate."""
    prefix = new_topic_prefix()
    front = spawn("task,ingest", prefix=prefix)
    other = spawn("task", prefix=prefix)
    service, task = new_task(front, instances=("r-1", "r-2"))
    (cmd,) = commands(front, service, "r-1")
    assert cmd["args"][1] == {"key": "TaskId", "value": task["id"]}
    heap = require_conformance() / "go" / "pyroscope-heap.pb.gz"
    first = upload(front, task["id"], "r-1", heap, key="k-1")
    assert first.status == 202 and first.json()["duplicate"] is False, first
    assert commands(front, service, "r-1") == []  # the agent restarted: it polls from 0
    assert commands(front, service, "r-2")  # the other instance still has it to do
    wait_until(lambda: commands(other, service, "r-1") == [], message="the other task process settles r-1")
    again = upload(front, task["id"], "r-1", heap, key="k-1")
    assert again.status == 202 and again.json() == {**first.json(), "duplicate": True}, again
    reader = spawn("processor,query", prefix=prefix)  # now stored: one EXECUTION_FINISHED, no other log
    wait_until(lambda: progress(reader, task["id"]) and progress(reader, task["id"])["successInstanceIds"] == ["r-1"],
               timeout=120, message="r-1 finished")
    logs = progress(reader, task["id"])["logs"]
    assert sorted((entry["instanceId"], entry["operationType"]) for entry in logs) == [
        ("r-1", "EXECUTION_FINISHED"), ("r-1", "NOTIFIED"), ("r-2", "NOTIFIED")]


def test_after_kafka_refused_a_notified_every_task_is_handed_to_agents_again(spawn):
    """A send Kafka refuses leaves aiokafka's idempotent producer out of step with the broker
    on that partition: without a new producer, every later NOTIFIED there failed (503 to every
    poll, for good), so its tasks were never handed out. Seen on a fresh broker whose partitions
    were still changing leaders."""
    prefix = new_topic_prefix()
    desk = spawn("task", prefix=prefix)
    service, task = new_task(desk, instances=("i-1", "i-2", "i-3"))
    assert commands(desk, service, "i-1")  # its NOTIFIED: the producer has written to the partition
    set_max_message_bytes(desk.broker, f"{prefix}task-events", 64)  # less than a NOTIFIED
    try:
        refused = desk.get(f"/api/v1/pprof/agent/commands?service={service}&serviceInstance=i-2&lastCommandTime=0")
    finally:
        set_max_message_bytes(desk.broker, f"{prefix}task-events", MAX_MESSAGE_BYTES)
    assert refused.status == 503 and "could not record the delivery" in refused.json()["errorReason"], refused
    for instance in ("i-2", "i-3"):  # the agent polls again, the next one polls
        (cmd,) = commands(desk, service, instance)
        assert dict((a["key"], a["value"]) for a in cmd["args"])["TaskId"] == task["id"]
