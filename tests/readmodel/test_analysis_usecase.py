"""The analysis use case (services/query_svc/analysis.py) over the read model: profiles written
as the processor writes them, answered by the same code the HTTP route calls, without Kafka or
HTTP. Its cache answers a question asked again with the very bytes it built, and a new upload,
another instance set or another tenant is another question."""
from __future__ import annotations

import json
import uuid

import pytest

from proftask import events
from proftask.errors import Invalid
from proftask.events.v1 import events_pb2 as pb
from proftask.http.errors import ApiError
from proftask.pprof.encode import encode_profile
from proftask.processing.profile_rows import profile_rows
from proftask.processing.rows import task_rows
from proftask.processing.writer import RowWriter
from services.query_svc.analysis import Analyses, Question
from services.query_svc.analysis_cache import AnalysisCache

pytestmark = pytest.mark.readmodel

LIMIT = 512 * 1024 * 1024
TYPES = ["samples/count", "cpu/nanoseconds"]


def _profile(stacks: dict[tuple[str, ...], int]) -> bytes:
    """A CPU profile: each stack (root first) with `n` samples of n*10ms."""
    return encode_profile(TYPES, "cpu/nanoseconds", "cpu/nanoseconds", 10_000_000,
                          [([(f, 0, False) for f in frames], [n, n * 10_000_000]) for frames, n in stacks.items()])


def _write_task(loop, writer: RowWriter, tenant: str, task_id: str, instances: list[str]) -> None:
    spec = pb.TaskSpec(service_id="shop", service_instance_ids=instances, events=pb.EventType.CPU, duration=1)
    env = events.new_event(tenant, pb.TaskCreated(task_id=task_id, spec=spec, create_time=1))
    loop.run_until_complete(writer.insert("tasks", task_rows(env)))


def _upload(loop, writer: RowWriter, tenant: str, task_id: str, instance: str, content: bytes,
            profile_id: str | None = None, occurred_at: int | None = None) -> None:
    env = events.new_event(tenant, pb.ProfileUploaded(task_id=task_id, instance_id=instance,
                                                      profile_id=profile_id or str(uuid.uuid4()), content=content,
                                                      size=len(content)), occurred_at=occurred_at)
    loop.run_until_complete(writer.write_profile(profile_rows(env, LIMIT)))


def _new_task(loop, writer: RowWriter, instances: list[str]) -> str:
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    _write_task(loop, writer, "acme", task_id, instances)
    return task_id


def _nanoseconds(stacks: dict[tuple[str, ...], int]) -> bytes:
    """A profile of one sample type, each stack with the value given."""
    return encode_profile(["cpu/nanoseconds"], "cpu/nanoseconds", "cpu/nanoseconds", 10_000_000,
                          [([(f, 0, False) for f in frames], [v]) for frames, v in stacks.items()])


def _tree(body: bytes) -> tuple[dict, dict[tuple[str, ...], tuple[int, int]]]:
    """The answer's head, and its tree as node path → (total, self)."""
    answer = json.loads(body)
    paths: dict[str, tuple[str, ...]] = {}
    nodes = {}
    for e in answer.pop("tree")["elements"]:
        path = () if e["parentId"] == "-1" else paths[e["parentId"]] + (e["codeSignature"],)
        paths[e["id"]] = path
        nodes[path] = (e["total"], e["self"])
    return answer, nodes


@pytest.fixture(scope="module")
def task(loop, clickhouse):
    writer = RowWriter(clickhouse)
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    _write_task(loop, writer, "acme", task_id, ["pod-1", "pod-2"])
    _upload(loop, writer, "acme", task_id, "pod-1", _profile({("main", "a"): 5, ("main", "b"): 3}))
    _upload(loop, writer, "acme", task_id, "pod-2", _profile({("main", "a"): 2}))
    return writer, task_id


def test_the_tree_merges_the_instances_newest_profiles_and_is_cached_by_what_determines_it(loop, clickhouse, task):
    writer, task_id = task
    analyses = Analyses(clickhouse, None, AnalysisCache())
    first = loop.run_until_complete(analyses.tree(Question("acme", task_id)))
    head, nodes = _tree(first)
    assert head == {"taskId": task_id, "sampleType": "cpu/nanoseconds", "sampleTypes": TYPES,
                    "instanceIds": ["pod-1", "pod-2"], "truncated": 0}
    ms = 10_000_000
    assert nodes == {(): (10 * ms, 0), ("main",): (10 * ms, 0), ("main", "a"): (7 * ms, 7 * ms),
                     ("main", "b"): (3 * ms, 3 * ms)}
    # asked again: the very bytes built the first time, from the cache
    assert loop.run_until_complete(analyses.tree(Question("acme", task_id))) is first
    # the same profiles asked by the type's name alone resolve to the same type, and the cache
    # keys the resolved selection: the answer built first
    assert loop.run_until_complete(analyses.tree(Question("acme", task_id, sample_type="cpu"))) is first
    # another sample type, instance set or cut is another answer
    head, nodes = _tree(loop.run_until_complete(analyses.tree(Question("acme", task_id, sample_type="samples"))))
    assert head["sampleType"] == "samples/count" and nodes[()] == (10, 0)
    head, nodes = _tree(loop.run_until_complete(analyses.tree(Question("acme", task_id, frozenset({"pod-2"})))))
    assert head["instanceIds"] == ["pod-2"] and nodes[()] == (2 * ms, 0)
    head, nodes = _tree(loop.run_until_complete(analyses.tree(Question("acme", task_id), max_nodes=2)))
    assert head["truncated"] == 2 and set(nodes) == {(), ("main",)}
    # a new upload is a new profile id: the next question is answered from it, not the cache
    _upload(loop, writer, "acme", task_id, "pod-2", _profile({("main", "b"): 4}))
    head, nodes = _tree(loop.run_until_complete(analyses.tree(Question("acme", task_id))))
    assert nodes[("main", "b")] == (7 * ms, 7 * ms) and nodes[("main", "a")] == (5 * ms, 5 * ms)


def test_another_tenant_asking_the_same_task_id_finds_no_task_even_with_a_warm_cache(loop, clickhouse, task):
    _, task_id = task
    analyses = Analyses(clickhouse, None, AnalysisCache())
    loop.run_until_complete(analyses.tree(Question("acme", task_id)))
    with pytest.raises(ApiError) as missing:
        loop.run_until_complete(analyses.tree(Question("beta", task_id)))
    assert missing.value.status == 404


def test_focus_instance_stats_and_top(loop, clickhouse, task):
    _, task_id = task
    analyses = Analyses(clickhouse, None, AnalysisCache())
    q = Question("acme", task_id, frozenset({"pod-1"}))
    head, nodes = _tree(loop.run_until_complete(analyses.tree(q, with_stats=True, focus=("main", "b"))))
    assert head["focus"] == ["main", "b"] and head["instanceCount"] == 1
    assert set(nodes) == {(), ("main",), ("main", "b")}
    with pytest.raises(Invalid, match='no frame "zz"'):
        loop.run_until_complete(analyses.tree(q, focus=("main", "zz")))
    top = loop.run_until_complete(analyses.top(q, limit=1))
    assert json.loads(top)["rows"] == [{"name": "a", "flat": 50_000_000, "cum": 50_000_000}]
    assert loop.run_until_complete(analyses.top(q, limit=1)) is top


def test_a_new_instance_without_the_chosen_type_is_in_the_next_answer_not_a_cached_one(loop, clickhouse):
    writer = RowWriter(clickhouse)
    task_id = _new_task(loop, writer, ["pod-1", "pod-2"])
    analyses = Analyses(clickhouse, None, AnalysisCache())
    _upload(loop, writer, "acme", task_id, "pod-1", _profile({("main", "a"): 5}))
    head, _ = _tree(loop.run_until_complete(analyses.tree(Question("acme", task_id, sample_type="cpu"))))
    assert head["instanceIds"] == ["pod-1"]
    goroutines = encode_profile(["goroutine/count"], "goroutine/count", "", 0, [([("main", 0, False)], [3])])
    _upload(loop, writer, "acme", task_id, "pod-2", goroutines)  # no cpu values: the cpu sums are the same
    head, nodes = _tree(loop.run_until_complete(analyses.tree(Question("acme", task_id, sample_type="cpu"))))
    assert head["instanceIds"] == ["pod-1", "pod-2"] and head["sampleTypes"] == [*TYPES, "goroutine/count"]
    assert nodes[()] == (50_000_000, 0)
    top = json.loads(loop.run_until_complete(analyses.top(Question("acme", task_id, sample_type="cpu"))))
    assert top["instanceIds"] == ["pod-1", "pod-2"]


def test_two_uploads_of_an_instance_in_the_same_millisecond_pick_the_same_one_before_and_after_a_merge(
        loop, clickhouse):
    writer = RowWriter(clickhouse)
    task_id = _new_task(loop, writer, ["pod-1"])
    analyses = Analyses(clickhouse, None, AnalysisCache())
    # written in two inserts (two parts), the greater profile id first
    _upload(loop, writer, "acme", task_id, "pod-1", _nanoseconds({("main", "b"): 7}), "p-b", 1_700_000_000_000)
    _upload(loop, writer, "acme", task_id, "pod-1", _nanoseconds({("main", "a"): 5}), "p-a", 1_700_000_000_000)
    q = Question("acme", task_id)

    def picked() -> dict:
        return _tree(loop.run_until_complete(analyses.tree(q)))[1]

    before = picked()
    loop.run_until_complete(clickhouse.command("OPTIMIZE TABLE profiles FINAL"))
    analyses.cache = AnalysisCache()
    assert picked() == before == {(): (7, 0), ("main",): (7, 0), ("main", "b"): (7, 7)}


BIG = 2**62


def test_instances_whose_values_sum_past_64_bits_are_refused_not_shown_wrapped(loop, clickhouse):
    writer = RowWriter(clickhouse)
    task_id = _new_task(loop, writer, ["pod-1", "pod-2", "pod-3", "pod-4", "pod-5"])
    analyses = Analyses(clickhouse, None, AnalysisCache())
    _upload(loop, writer, "acme", task_id, "pod-1", _nanoseconds({("main", "a"): BIG}))
    _upload(loop, writer, "acme", task_id, "pod-2", _nanoseconds({("main", "b"): BIG - 1, ("main", "c"): -5}))
    _upload(loop, writer, "acme", task_id, "pod-3", _nanoseconds({("main", "b"): 1}))
    _upload(loop, writer, "acme", task_id, "pod-4", _nanoseconds({("main", "d"): 2 - BIG, ("main", "e"): -BIG}))
    _upload(loop, writer, "acme", task_id, "pod-5", _nanoseconds({("main", "f"): BIG}))

    def tree(*instances: str) -> dict:
        return _tree(loop.run_until_complete(analyses.tree(Question("acme", task_id, frozenset(instances)))))[1]

    # the positive values of pod-1 and pod-2 sum to 2^63 - 1, the largest total there is: shown exactly
    assert tree("pod-1", "pod-2")[("main", "a")] == (BIG, BIG)
    assert tree("pod-1", "pod-2")[("main",)] == (2**63 - 6, 0)
    assert tree("pod-4")[()] == (2 - 2**63, 0)  # one profile's negative sum: within the range
    for chosen in [("pod-1", "pod-2", "pod-3"), ("pod-2", "pod-4"), ()]:  # one past the top, or past the bottom
        for ask in (lambda q: analyses.tree(q), lambda q: analyses.top(q), lambda q: analyses.tree(q, max_nodes=2)):
            with pytest.raises(ApiError) as refused:
                loop.run_until_complete(ask(Question("acme", task_id, frozenset(chosen))))
            assert refused.value.status == 422 and refused.value.code == "VALUES_OUT_OF_RANGE", chosen
            assert 'sample type "cpu/nanoseconds"' in str(refused.value) and "choose fewer instances" in str(refused.value)
    assert "sum to 9223372036854775808" in _refusal(loop, analyses, task_id, "pod-1", "pod-2", "pod-3")
    assert "sum to -9223372036854775811" in _refusal(loop, analyses, task_id, "pod-2", "pod-4")

    # profiles written before m0010 have no bounds of their own: their signed totals stand in
    loop.run_until_complete(clickhouse.command(
        "ALTER TABLE profiles UPDATE positive_totals = [], negative_totals = [] WHERE task_id = {task_id:String} "
        "SETTINGS mutations_sync = 1", {"task_id": task_id}))
    analyses.cache = AnalysisCache()
    assert tree("pod-1", "pod-2")[("main", "a")] == (BIG, BIG)
    assert "sum to 9223372036854775808" in _refusal(loop, analyses, task_id, "pod-1", "pod-5")


def _refusal(loop, analyses: Analyses, task_id: str, *instances: str) -> str:
    with pytest.raises(ApiError) as refused:
        loop.run_until_complete(analyses.tree(Question("acme", task_id, frozenset(instances))))
    return str(refused.value)
