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


def test_an_instance_whose_name_holds_a_comma_is_chosen_by_its_name(stack):
    """instanceIds lists names comma-separated, and may be repeated; a value that is an
    instance's whole name is that instance, so a name with a comma can be chosen at all."""
    comma, other = "pod-a,zone-1", "pod-b"
    task_id = create_task(stack, [comma, other], events="HEAP")
    heap, parca = require_conformance() / "go/pyroscope-heap.pb.gz", require_conformance() / "go/parca-alloc_space_delta.pb.gz"
    assert upload(stack, task_id, comma, heap).status == 202
    assert upload(stack, task_id, other, parca).status == 202
    wait_finished(stack, task_id, [comma, other])
    base = f"/api/v1/pprof/tasks/{task_id}"

    def total(query: str) -> tuple[list[str], int]:
        r = stack.get(f"{base}/analysis?{query}")
        assert r.status == 200, (query, r)
        return r.json()["instanceIds"], r.json()["tree"]["elements"][0]["total"]

    alone, both = total("instanceIds=pod-a%2Czone-1"), total("")
    assert alone[0] == [comma] and 0 < alone[1] < both[1]
    assert total(f"instanceIds=pod-a%2Czone-1&instanceIds={other}") == both
    assert total(f"instanceIds={other}")[0] == [other]
    top = stack.get(f"{base}/top?instanceIds=pod-a%2Czone-1").json()
    assert top["instanceIds"] == [comma] and top["total"] == alone[1]
    folded = stack.get(f"{base}/export?format=folded&instanceIds=pod-a%2Czone-1").body.decode()
    assert sum(int(line.rpartition(" ")[2]) for line in folded.splitlines()) == alone[1]
    r = stack.get(f"/api/v1/pprof/diff?baseTaskId={task_id}&baseInstanceIds=pod-a%2Czone-1&compareInstanceIds={other}")
    assert r.status == 200 and r.json()["base"]["instanceIds"] == [comma], r
    # a name that is no instance is still read as a list, and its unknown parts named
    r = stack.get(f"{base}/analysis?instanceIds=pod-a,zone-2")
    assert r.status == 400 and 'instance(s) "pod-a", "zone-2" are not instances' in r.json()["errorReason"], r
