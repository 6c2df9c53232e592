"""Every real profile of the corpus, uploaded as a task instance: the analysis equals
`go tool pprof` (the shared oracle) node for node and value for value."""
import pytest

from tests.conformance.oracle import CONFORMANCE, oracle_files, oracle_tree, raw_sample_types, require_conformance
from tests.integration.profiles import analysis, as_oracle_shape, create_task, events_for, upload, wait_finished


FILES = oracle_files() if CONFORMANCE.is_dir() else []
IDS = [f"{p.parent.name}/{p.name}" for p in FILES]


@pytest.fixture(scope="module")
def uploaded(stack):
    """One task per file with the file as its only instance, all uploaded before any check."""
    require_conformance()
    tasks = {}
    for path in FILES:
        task_id = create_task(stack, ["i-1"], **events_for(path))
        r = upload(stack, task_id, "i-1", path)
        assert r.status == 202, (path, r)
        tasks[path] = task_id
    for task_id in tasks.values():
        wait_finished(stack, task_id, ["i-1"])
    return tasks


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_single_profile_equals_the_oracle(stack, uploaded, path):
    task_id = uploaded[path]
    types = raw_sample_types(path)
    for sample_type in [None, *types]:
        for granularity in ("function", "line"):
            got = analysis(stack, task_id, sampleType=sample_type, granularity=granularity)
            assert got["sampleTypes"] == types
            assert as_oracle_shape(got) == oracle_tree([path], sample_type, granularity), (sample_type, granularity)


def test_ten_parca_many_profiles_merge_as_ten_instances(stack):
    files = sorted((require_conformance() / "go").glob("parca-many-*"))
    instances = [f"pod-{n}" for n in range(len(files))]
    task_id = create_task(stack, instances)
    for instance, path in zip(instances, files, strict=False):
        assert upload(stack, task_id, instance, path).status == 202
    wait_finished(stack, task_id, instances)
    for sample_type in (None, "alloc_objects/count", "alloc_space", "inuse_objects"):
        for granularity in ("function", "line"):
            assert as_oracle_shape(analysis(stack, task_id, sampleType=sample_type, granularity=granularity)) \
                == oracle_tree(files, sample_type, granularity)
    # an instance subset merges only those instances
    subset = analysis(stack, task_id, instanceIds="pod-0,pod-9")
    assert subset["instanceIds"] == ["pod-0", "pod-9"]
    assert as_oracle_shape(subset) == oracle_tree([files[0], files[9]])


def test_large_profile_merged_with_others_of_its_kind(stack):
    base = require_conformance()
    files = [base / "large" / "pprof-large.cpu.pb.gz", base / "go" / "pprof-sample.cpu.pb.gz",
             base / "go" / "parca-fib.pb.gz"]
    instances = ["a", "b", "c"]
    task_id = create_task(stack, instances, events="CPU", duration=1)
    for instance, path in zip(instances, files, strict=False):
        assert upload(stack, task_id, instance, path).status == 202
    wait_finished(stack, task_id, instances)
    for sample_type in (None, "samples"):
        assert as_oracle_shape(analysis(stack, task_id, sampleType=sample_type)) == oracle_tree(files, sample_type)


def test_max_nodes_keeps_the_heaviest_and_never_an_orphan(stack, uploaded):
    path = require_conformance() / "large" / "pprof-large.cpu.pb.gz"
    full = analysis(stack, uploaded[path])
    cut = analysis(stack, uploaded[path], maxNodes=1000)
    elements = cut["tree"]["elements"]
    assert len(elements) == 1000
    assert cut["truncated"] == len(full["tree"]["elements"]) - 1000
    ids = {e["id"] for e in elements}
    assert all(e["parentId"] in ids for e in elements[1:])
    full_totals = sorted((e["total"] for e in full["tree"]["elements"][1:]), reverse=True)
    kept_totals = sorted((e["total"] for e in elements[1:]), reverse=True)
    assert kept_totals[0] == full_totals[0] and min(kept_totals) >= full_totals[999 + 200]  # heaviest ones


def test_tree_is_pre_order_with_children_by_descending_total(stack, uploaded):
    path = require_conformance() / "go" / "pyroscope-heap.pb.gz"
    elements = analysis(stack, uploaded[path])["tree"]["elements"]
    assert elements[0] == {**elements[0], "id": "0", "parentId": "-1", "codeSignature": "root"}
    seen, last_child_total = {"0"}, {}
    for e in elements[1:]:
        assert e["parentId"] in seen  # parents come before children
        seen.add(e["id"])
        assert last_child_total.get(e["parentId"], float("inf")) >= e["total"]
        last_child_total[e["parentId"]] = e["total"]


def test_unknown_sample_type_is_400_listing_the_available(stack, uploaded):
    path = require_conformance() / "go" / "pprof-sample.cpu.pb.gz"
    r = stack.get(f"/api/v1/pprof/tasks/{uploaded[path]}/analysis?sampleType=wall")
    assert r.status == 400 and "samples/count, cpu/nanoseconds" in r.json()["errorReason"], r
    assert stack.get(f"/api/v1/pprof/tasks/{uploaded[path]}/analysis?granularity=file").status == 400
    assert stack.get(f"/api/v1/pprof/tasks/{uploaded[path]}/analysis?maxNodes=-1").status == 400
    assert stack.get("/api/v1/pprof/tasks/nope/analysis").status == 404
