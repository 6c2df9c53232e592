"""A 201 means the task exists for every read that follows, on every replica: progress (served
by query_svc from ClickHouse, which learns of a task only once the processor wrote it) and GET
/tasks/{id} answer at once, never 404."""
import concurrent.futures
import uuid


from tests.integration.harness import new_topic_prefix, wait_until



def test_fifty_tasks_are_readable_on_both_replicas_right_after_the_201(spawn):
    prefix = new_topic_prefix()
    standalone = spawn("all", prefix=prefix)
    # a second replica of task_svc and query_svc on the same topics; its ClickHouse has no
    # processor behind it, so only the Kafka truth can tell it a task exists
    replica = spawn("task,query", prefix=prefix)
    service = f"svc-{uuid.uuid4().hex[:8]}"
    # the creation decider's consumer group settles once both replicas joined (until then a
    # create may answer 503 "not decided"); what is measured here is reading after a 201
    for n, proc in enumerate((standalone, replica)):
        wait_until(lambda: proc.post("/api/v1/pprof/tasks", {"serviceId": f"{service}-warm-{n}", "events": "HEAP",  # noqa: B023 - awaited within the iteration
                                                             "serviceInstanceIds": ["i-1"]}).status == 201,
                   timeout=120, interval=0.5, message="the decider answers")

    def create_and_read(n):
        creator, other = (standalone, replica) if n % 2 else (replica, standalone)
        body = {"serviceId": f"{service}-{n}", "serviceInstanceIds": ["i-1", "i-2"], "events": "HEAP"}
        r = creator.post("/api/v1/pprof/tasks", body)
        assert r.status == 201, r
        task_id = r.json()["id"]
        reads = []
        for proc in (creator, other):
            reads.append(proc.get(f"/api/v1/pprof/tasks/{task_id}/progress"))
            reads.append(proc.get(f"/api/v1/pprof/tasks/{task_id}"))
        return task_id, reads

    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        results = list(pool.map(create_and_read, range(50)))
    for task_id, reads in results:
        assert [r.status for r in reads] == [200, 200, 200, 200], (task_id, reads)
        progress = reads[0].json()
        # nothing happened yet: every instance pending
        assert progress["successInstanceIds"] == [] and progress["errorInstanceIds"] == []
        assert reads[1].json()["id"] == task_id and reads[3].json()["serviceInstanceIds"] == ["i-1", "i-2"]
    # an id no replica knows is still a 404 on both
    for proc in (standalone, replica):
        r = proc.get("/api/v1/pprof/tasks/no-such-task/progress")
        assert r.status == 404 and r.json()["code"] == "NOT_FOUND", r
