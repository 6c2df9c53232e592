"""Reads that name what the task does not have are refused with the name, not answered empty."""
import pytest

from tests.conformance.oracle import require_conformance
from tests.integration.profiles import create_task, upload, wait_finished

pytestmark = pytest.mark.integration


def test_an_instance_the_task_does_not_have_is_a_400_naming_it(stack):
    task_id = create_task(stack, ["pod-1", "pod-2"])
    assert upload(stack, task_id, "pod-1", require_conformance() / "go/pyroscope-heap.pb.gz").status == 202
    wait_finished(stack, task_id, ["pod-1"])
    for path in (f"/api/v1/pprof/tasks/{task_id}/analysis?instanceIds=pod-1,pod-9",
                 f"/api/v1/pprof/tasks/{task_id}/export?format=folded&instanceIds=pod-9",
                 f"/api/v1/pprof/diff?baseTaskId={task_id}&baseInstanceIds=pod-1&compareInstanceIds=pod-9"):
        r = stack.get(path)
        assert r.status == 400 and r.json()["code"] == "ARGUMENT_ERROR", (path, r)
        assert '"pod-9" is not an instance of task' in r.json()["errorReason"]
        assert "pod-1, pod-2" in r.json()["errorReason"]
    # an instance of the task without a profile yet is a fine choice: an empty tree
    r = stack.get(f"/api/v1/pprof/tasks/{task_id}/analysis?instanceIds=pod-2")
    assert r.status == 200 and r.json()["tree"]["elements"][0]["total"] == 0
