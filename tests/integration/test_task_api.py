"""The task API against a real broker and a real `proftask serve all`."""
import datetime
import uuid

import pytest



def new_service() -> str:
    return f"svc-{uuid.uuid4().hex[:8]}"


def create(stack, service, events="CPU", instances=("i-1", "i-2"), **kw):
    return stack.post("/api/v1/pprof/tasks", {"serviceId": service, "serviceInstanceIds": list(instances),
                                               "events": events, **kw})


def test_valid_cpu_task_is_created_and_readable(stack):
    service = new_service()
    r = create(stack, service, duration=1)
    assert r.status == 201, r
    body = r.json()
    assert body["code"] == "SUCCESS" and body["id"] and body["errorReason"] is None
    task = stack.get(f"/api/v1/pprof/tasks/{body['id']}").json()
    assert task["serviceId"] == service and task["serviceInstanceIds"] == ["i-1", "i-2"]
    assert task["events"] == "CPU" and task["duration"] == 1 and task["createTime"] > 0


def test_overlapping_cpu_conflicts_but_heap_does_not(stack):
    service = new_service()
    first = create(stack, service, duration=5).json()["id"]
    r = create(stack, service, events="cpu", instances=["other"], duration=1)
    assert r.status == 409 and r.json()["code"] == "ALREADY_PROFILING_ERROR", r
    ends = stack.get(f"/api/v1/pprof/tasks/{first}").json()["createTime"] + 5 * 60_000
    ends_iso = datetime.datetime.fromtimestamp(ends / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    assert r.json()["errorReason"] == (
        f'service "{service}" already has a CPU task running: task {first} runs until {ends_iso[:-3]}Z '
        f"({ends} epoch ms); a service runs one task per event type at a time"), r
    assert create(stack, service, events="HEAP").status == 201
    assert create(stack, new_service(), duration=5).status == 201  # another service is free


@pytest.mark.parametrize("body,reason", [
    ({"serviceInstanceIds": ["a"], "events": "CPU", "duration": 1},
     "serviceId must be a non-blank string of at most 512 characters, got null"),
    ({"serviceId": "s", "serviceInstanceIds": ["a"], "duration": 1},
     "events must be one of CPU, HEAP, BLOCK, MUTEX, GOROUTINE, THREADCREATE, ALLOCS, got null"),
    ({"serviceId": "s", "serviceInstanceIds": ["a"], "events": "CPU", "duration": 0},
     "duration must be a whole number of minutes from 1 to 15 for CPU tasks, got 0"),
    ({"serviceId": "s", "serviceInstanceIds": ["a"], "events": "CPU", "duration": 1.5},
     "duration must be a whole number of minutes from 1 to 15 for CPU tasks, got 1.5"),
    ({"serviceId": "s", "serviceInstanceIds": ["a"], "events": "MUTEX", "duration": 1},
     "dumpPeriod must be a whole number from 1 to 2147483647 for MUTEX tasks (the mutex profile fraction: "
     "one in that many contention events sampled), got null"),
    ({"serviceId": "s", "serviceInstanceIds": [], "events": "HEAP"},
     "serviceInstanceIds must be a non-empty list of instance ids, got []"),
])
def test_invalid_requests_get_skywalkings_code_and_a_reason_naming_field_rule_and_value(stack, body, reason):
    r = stack.post("/api/v1/pprof/tasks", body)
    assert r.status == 400 and r.json() == {"code": "ARGUMENT_ERROR", "id": None, "errorReason": reason}, r


@pytest.mark.parametrize("kind,raw", [
    ("malformed JSON", b'{"serviceId": "s",'),
    ("wrong type", b'{"serviceId": "s", "serviceInstanceIds": ["a"], "events": "CPU", "duration": "1"}'),
    ("unknown event", b'{"serviceId": "s", "serviceInstanceIds": ["a"], "events": "WALL"}'),
    ("not an object", b'[1, 2, 3]'),
    ("10,000 instance ids", ('{"serviceId": "s", "events": "HEAP", "serviceInstanceIds": [%s]}'
                             % ",".join(f'"i-{n}"' for n in range(10_000))).encode()),
])
def test_bad_input_is_a_clear_400(stack, kind, raw):
    r = stack.post("/api/v1/pprof/tasks", raw=raw)
    assert r.status == 400, (kind, r)
    assert r.json()["code"] == "ARGUMENT_ERROR" and r.json()["errorReason"]
    assert stack.get("/healthz").status == 200


def test_ten_megabyte_body_is_refused_and_service_stays_up(stack):
    r = stack.post("/api/v1/pprof/tasks", raw=b'{"serviceId": "' + b"x" * (10 * 1024 * 1024) + b'"}')
    assert r.status == 413 and r.json()["code"] == "PAYLOAD_TOO_LARGE", r
    assert stack.get("/readyz").status == 200


def test_list_newest_first_with_filters(stack):
    service = new_service()
    ids = [create(stack, service, events=e).json()["id"] for e in ("HEAP", "GOROUTINE", "ALLOCS")]
    tasks = stack.get(f"/api/v1/pprof/tasks?serviceId={service}").json()["tasks"]
    assert [t["id"] for t in tasks] == ids[::-1]
    assert [t["id"] for t in stack.get(f"/api/v1/pprof/tasks?serviceId={service}&limit=2").json()["tasks"]] \
        == ids[:0:-1]
    t_mid = tasks[1]["createTime"]
    window = stack.get(f"/api/v1/pprof/tasks?serviceId={service}&startTime={t_mid}&endTime={t_mid}").json()
    assert [t["id"] for t in window["tasks"]] == [ids[1]]
    assert stack.get("/api/v1/pprof/tasks?limit=abc").status == 400


def test_unknown_task_is_404(stack):
    assert stack.get("/api/v1/pprof/tasks/does-not-exist").status == 404
    r = stack.get("/api/v1/pprof/tasks/does-not-exist/progress")
    assert r.status == 404 and r.json()["code"] == "NOT_FOUND"


def test_health_readiness_and_metrics(stack):
    assert stack.get("/healthz").status == 200
    ready = stack.get("/readyz").json()
    assert ready["ready"] and all(ready["checks"].values())
    text = stack.get("/metrics").body.decode()
    assert "proftask_http_requests_total" in text and "proftask_events_produced_total" in text
