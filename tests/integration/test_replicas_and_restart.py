"""Racing task_svc replicas, and state that survives a restart (event log + data directory)."""
import asyncio
import concurrent.futures
import time
import uuid


from proftask.core import skywalking_ids as ids
from tests.conformance.oracle import require_conformance
from tests.integration.harness import new_topic_prefix, wait_until
from tests.integration.profiles import create_task, upload, wait_finished



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
    assert [entry for entry in after["logs"] if entry["message"] != "marker"] == before_progress["logs"]
    assert sum(entry["operationType"] == "NOTIFIED" for entry in after["logs"]) == 2
    metrics = second.get("/metrics").body.decode()
    assert 'proftask_events_produced_total{type="InstanceNotified"}' not in metrics
    assert 'proftask_events_produced_total{type="TaskFailedOnInstance"} 1.0' in metrics


def test_a_task_view_syncs_to_a_task_it_has_not_read_yet(broker):
    """Read-your-writes across replicas: a replica asked about a task another one created a
    moment ago (an upload, GET /tasks/{id}) syncs its view to the topic's end before a 404.
    Right after the broker acknowledges a TaskCreated, this view has usually not read it yet;
    after sync() it always has."""
    from proftask import events
    from proftask.core.tasks import EventType, TaskSpec
    from proftask.events.v1 import events_pb2 as pb
    from proftask.kafka.producer import EventProducer
    from proftask.kafka.topics import Topics, ensure_topics, service_key
    from proftask.task_view import TaskView

    async def run() -> int:
        topics = Topics.with_prefix(new_topic_prefix())
        await ensure_topics(broker.bootstrap, topics.specs(4), 1)
        producer, view = EventProducer(broker.bootstrap), TaskView(broker.bootstrap, topics)
        await producer.start()
        await view.start()
        unread_at_ack = 0
        try:
            await asyncio.wait_for(view.caught_up.wait(), 60)
            for i in range(20):
                task_id = str(uuid.uuid4())
                spec = TaskSpec(f"svc-{i}", ("pod-1",), EventType.HEAP, 0, 0)
                created = events.new_event("default", pb.TaskCreated(task_id=task_id, spec=events.spec_to_pb(spec),
                                                                     create_time=events.now_ms()))
                await producer.send(topics.tasks, service_key("default", spec.service_id), created)
                unread_at_ack += view.get("default", task_id) is None
                assert await view.sync(5)
                assert view.get("default", task_id) is not None
            assert await view.sync(5)  # nothing new: returns at once
        finally:
            await view.stop()
            await producer.stop()
        return unread_at_ack

    unread = asyncio.run(run())
    print(f"{unread} of 20 tasks were not yet in the view when the broker acknowledged them")


def test_a_restarted_server_answers_a_task_it_has_not_read_yet_with_503_never_500_or_404(spawn, tmp_path):
    """From the moment a restarted server listens until its task view has read the task history,
    a read of a task that exists is "try again" (503), as the task and upload routes already
    answered: analysis, top and progress answered 500 (the view's consumer not started yet)
    and then 404 (not found, read from a view that had read nothing), and GraphQL's service and
    instance lists answered without the task's."""
    prefix, data_dir = new_topic_prefix(), tmp_path / "data"
    first = spawn("all", prefix=prefix, data_dir=data_dir)
    service = f"svc-{uuid.uuid4().hex[:8]}"
    task_id = create_task(first, ["i-1"], events="CPU", service=service, duration=1)
    assert upload(first, task_id, "i-1", require_conformance() / "go" / "pprof-sample.cpu.pb.gz").status == 202
    wait_finished(first, task_id, ["i-1"])
    reads = {path: first.get(path).json() for path in (
        f"/api/v1/pprof/tasks/{task_id}/progress", f"/api/v1/pprof/tasks/{task_id}/analysis?maxNodes=10",
        f"/api/v1/pprof/tasks/{task_id}/top?limit=5")}
    lists = {"{ listServices { name } }": {"listServices": [{"name": service}]},
             f'{{ listInstances(serviceId: "{ids.service_id(service)}") {{ name }} }}': {"listInstances": [{"name": "i-1"}]}}
    first.kill()

    second = spawn("all", prefix=prefix, data_dir=data_dir, wait=False)
    seen: dict[tuple[str, int], int] = {}
    answered: set[str] = set()
    wrong: list[tuple[str, int, str]] = []
    deadline = time.monotonic() + 120
    while len(answered) < len(reads) + len(lists) and time.monotonic() < deadline:
        for path, expected in reads.items():
            r = second.get(path)
            seen[path, r.status] = seen.get((path, r.status), 0) + 1
            if r.status == 200:
                answered.add(path)
                if r.json() != expected:
                    wrong.append((path, r.status, r.body.decode()[:300]))
            elif r.status not in (0, 503):  # 0: not listening yet
                wrong.append((path, r.status, r.body.decode()[:300]))
        for query, expected in lists.items():
            r = second.post("/graphql", {"query": query})
            if r.status == 0:
                continue
            body = r.json()
            if body.get("data") and body["data"] == expected:
                answered.add(query)
            elif not (body.get("errors") and body["errors"][0]["extensions"]["code"] == "UNAVAILABLE"):
                wrong.append((query, r.status, r.body.decode()[:300]))
    assert not wrong, (wrong, seen)
    assert len(answered) == len(reads) + len(lists), seen
