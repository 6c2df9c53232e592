"""Reads that name what the task does not have are refused with the name, not answered empty."""

from tests.conformance.oracle import require_conformance
from tests.integration.profiles import create_task, upload, wait_finished



def test_an_instance_the_task_does_not_have_is_a_400_naming_it(stack):
    task_id = create_task(stack, ["pod-1", "pod-2"])
    assert upload(stack, task_id, "pod-1", require_conformance() / "go/pyroscope-heap.pb.gz").status == 202
    wait_finished(stack, task_id, ["pod-1"])
    for path in (f"/api/v1/pprof/tasks/{task_id}/analysis?instanceIds=pod-1,pod-9",
                 f"/api/v1/pprof/tasks/{task_id}/export?format=folded&instanceIds=pod-9",
                 f"/api/v1/pprof/tasks/{task_id}/top?instanceIds=pod-9",
                 f"/api/v1/pprof/diff?baseTaskId={task_id}&baseInstanceIds=pod-1&compareInstanceIds=pod-9"):
        r = stack.get(path)
        assert r.status == 400 and r.json()["code"] == "ARGUMENT_ERROR", (path, r)
        assert r.json()["errorReason"] == (f'instance(s) "pod-9" are not instances of task "{task_id}" '
                                           f'(its instances: "pod-1", "pod-2")'), path
    r = stack.get(f"/api/v1/pprof/tasks/{task_id}/top?instanceIds=pod-7,pod-8,pod-1")
    assert r.status == 400 and 'instance(s) "pod-7", "pod-8" are not instances' in r.json()["errorReason"], r
    # an instance of the task without a profile yet is a fine choice: an empty tree
    r = stack.get(f"/api/v1/pprof/tasks/{task_id}/analysis?instanceIds=pod-2")
    assert r.status == 200 and r.json()["tree"]["elements"][0]["total"] == 0


def test_diff_with_a_task_that_does_not_exist_is_a_400_naming_it(stack):
    task_id = create_task(stack, ["pod-1"])
    for query in (f"baseTaskId={task_id}&compareTaskId=nope", f"baseTaskId=nope&compareTaskId={task_id}"):
        r = stack.get(f"/api/v1/pprof/diff?{query}")
        assert r.status == 400 and r.json() == {"code": "ARGUMENT_ERROR", "errorReason": 'task "nope" not found'}, r
