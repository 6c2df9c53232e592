"""Racing task_svc replicas, and state that survives a restart (event log + data directory)."""
import concurrent.futures
import uuid

import pytest

from tests.integration.harness import new_topic_prefix, wait_until

pytestmark = pytest.mark.integration


def test_twenty_racing_creates_over_two_task_svc_processes_yield_one_task(spawn):
    prefix = new_topic_prefix()
    replica_a = spawn("all", prefix=prefix)
    replica_b = spawn("task", prefix=prefix)  # a second task_svc: same topics, same decider group
    service = f"svc-{uuid.uuid4().hex[:8]}"
    body = {"serviceId": service, "serviceInstanceIds": ["i-1"], "events": "CPU", "duration": 5}
    targets = [replica_a, replica_b] * 10
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda p: p.post("/api/v1/pprof/tasks", body), targets))
    statuses = sorted(r.status for r in results)
    assert statuses == [201] + [409] * 19, results
    winner = next(r.json()["id"] for r in results if r.status == 201)
    for replica in (replica_a, replica_b):  # both replicas know the one task
        tasks = replica.get(f"/api/v1/pprof/tasks?serviceId={service}").json()["tasks"]
        assert [t["id"] for t in tasks] == [winner]


def progress_with_logs(proc, task_id, n):
    r = proc.get(f"/api/v1/pprof/tasks/{task_id}/progress")
    return r.json() if r.status == 200 and len(r.json()["logs"]) == n else None


def test_everything_survives_a_restart_without_duplicates(spawn, tmp_path):
    prefix, data_dir = new_topic_prefix(), tmp_path / "data"
    first = spawn("all", prefix=prefix, data_dir=data_dir)
    service = f"svc-{uuid.uuid4().hex[:8]}"
    cpu = first.post("/api/v1/pprof/tasks", {"serviceId": service, "serviceInstanceIds": ["i-1", "i-2"],
                                              "events": "CPU", "duration": 10}).json()["id"]
    first.post("/api/v1/pprof/tasks", {"serviceId": service, "serviceInstanceIds": ["i-1"], "events": "HEAP"})
    for instance in ("i-1", "i-2"):
        assert first.get(f"/api/v1/pprof/agent/commands?service={service}&serviceInstance={instance}").status == 200
    first.post("/api/v1/pprof/agent/errors", {"taskId": cpu, "serviceInstance": "i-2", "message": "boom"})
    before_progress = wait_until(lambda: progress_with_logs(first, cpu, 3), message="three logs")
    before_tasks = first.get(f"/api/v1/pprof/tasks?serviceId={service}").json()
    assert len(before_tasks["tasks"]) == 2
    first.stop()

    second = spawn("all", prefix=prefix, data_dir=data_dir)
    assert second.get(f"/api/v1/pprof/tasks?serviceId={service}").json() == before_tasks
    assert second.get(f"/api/v1/pprof/tasks/{cpu}/progress").json() == before_progress
    # The decider's table came back from its changelog: the CPU task still blocks another.
    r = second.post("/api/v1/pprof/tasks", {"serviceId": service, "serviceInstanceIds": ["i-3"],
                                             "events": "CPU", "duration": 1})
    assert r.status == 409, r
    # Polling again after the restart must not notify i-1 a second time.
    assert second.get(f"/api/v1/pprof/agent/commands?service={service}&serviceInstance=i-1").json()["commands"]
    # A marker on the same task shares the partition of any NOTIFIED that poll could have
    # emitted, so once the marker is in progress such a NOTIFIED would be there too.
    assert second.post("/api/v1/pprof/agent/errors",
                       {"taskId": cpu, "serviceInstance": "i-1", "message": "marker"}).status == 202
    after = wait_until(lambda: progress_with_logs(second, cpu, 4), message="marker processed")
    assert [l for l in after["logs"] if l["message"] != "marker"] == before_progress["logs"]
    assert sum(l["operationType"] == "NOTIFIED" for l in after["logs"]) == 2
    metrics = second.get("/metrics").body.decode()
    assert 'proftask_events_produced_total{type="InstanceNotified"}' not in metrics
    assert 'proftask_events_produced_total{type="TaskFailedOnInstance"} 1.0' in metrics
