"""An instance has one final state in progress, whatever order its reports arrive in."""

from tests.conformance.oracle import require_conformance
from tests.integration.harness import wait_until
from tests.integration.profiles import create_task, logs_of, progress, upload, wait_finished



def test_an_error_reported_after_a_stored_upload_leaves_the_instance_finished(stack):
    task_id = create_task(stack, ["i-1", "i-2"])
    assert upload(stack, task_id, "i-1", require_conformance() / "go/pyroscope-heap.pb.gz").status == 202
    wait_finished(stack, task_id, ["i-1"])
    for instance in ("i-1", "i-2"):
        r = stack.post("/api/v1/pprof/agent/errors", {"taskId": task_id, "serviceInstance": instance,
                                                      "message": "upload timed out"})
        assert r.status == 202, r
    wait_until(lambda: len(logs_of(stack, task_id, "EXECUTION_TASK_ERROR")) == 2, message="both error logs")
    p = progress(stack, task_id)
    assert p["successInstanceIds"] == ["i-1"] and p["errorInstanceIds"] == ["i-2"]
