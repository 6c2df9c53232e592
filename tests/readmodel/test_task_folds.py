"""Each task's merged tree, summed by the processor as profiles are stored (task_folds.py):
opening a task reads it, and its answer is the very answer the profiles summed at query time
give, whatever happened on the way: another tenant with the same task id and stacks, a
processor restarted mid-task, an instance uploading again, two batches of one task written at
once, google/pprof's large profile. Compared byte for byte with the answer built with no
task fold (the rows removed), and with the sums `go tool pprof` gives the large profile."""
from __future__ import annotations

import asyncio
import gzip
import json
import uuid

import pytest

from proftask import events
from proftask.events.v1 import events_pb2 as pb
from proftask.pprof.v1 import profile_pb2
from proftask.processing.profile_rows import profile_rows
from proftask.processing.writer import RowWriter
from services.query_svc.analysis import Analyses, Question
from services.query_svc.analysis_cache import AnalysisCache
from tests.conformance.oracle import CONFORMANCE
from tests.readmodel.test_analysis_usecase import LIMIT, _profile, _tree, _write_task
from tests.unit.test_fold_out_of_memory import TOPIC, Pool, processor

pytestmark = pytest.mark.readmodel
MS = 10_000_000


def _rows(tenant: str, task_id: str, instance: str, content: bytes):
    env = events.new_event(tenant, pb.ProfileUploaded(task_id=task_id, instance_id=instance,
                                                      profile_id=str(uuid.uuid4()), content=content,
                                                      size=len(content)))
    return profile_rows(env, LIMIT)


def _store(loop, writer: RowWriter, *rows) -> None:
    loop.run_until_complete(writer.write_profiles(list(rows)))


def _folded_profiles(loop, clickhouse, tenant: str, task_id: str) -> list[list[str]]:
    """The profile sets of the task's fold rows, newest last."""
    rows = loop.run_until_complete(clickhouse.rows(
        "SELECT profile_ids FROM task_folds WHERE tenant = {t:String} AND task_id = {k:String} ORDER BY folded_at",
        {"t": tenant, "k": task_id}))
    return [sorted(r[0]) for r in rows]


def _answers(loop, clickhouse, tenant: str, task_id: str, max_nodes: int = 0,
             with_stats: bool = False) -> tuple[bytes, bytes]:
    """The task's tree from its fold, and the same question answered with no fold (its rows
    removed, then put back); with_stats: with each node's spread across the instances."""
    folded = loop.run_until_complete(Analyses(clickhouse, None, AnalysisCache()).tree(
        Question(tenant, task_id), max_nodes=max_nodes, with_stats=with_stats))
    where = {"t": tenant, "k": task_id}
    loop.run_until_complete(clickhouse.command(
        "CREATE TABLE IF NOT EXISTS task_folds_aside AS task_folds"))
    loop.run_until_complete(clickhouse.command("TRUNCATE TABLE task_folds_aside"))
    loop.run_until_complete(clickhouse.command(
        "INSERT INTO task_folds_aside SELECT * FROM task_folds WHERE tenant = {t:String} AND task_id = {k:String}",
        where))
    loop.run_until_complete(clickhouse.command(
        "DELETE FROM task_folds WHERE tenant = {t:String} AND task_id = {k:String}", where))
    summed = loop.run_until_complete(Analyses(clickhouse, None, AnalysisCache()).tree(
        Question(tenant, task_id), max_nodes=max_nodes, with_stats=with_stats))
    loop.run_until_complete(clickhouse.command("INSERT INTO task_folds SELECT * FROM task_folds_aside"))
    return folded, summed


def _spread(body: bytes) -> dict[tuple[str, ...], tuple[int, float, float]]:
    """The answer's spread: node path → (instances, shareMin, shareMax)."""
    answer = json.loads(body)
    paths: dict[str, tuple[str, ...]] = {}
    spread = {}
    for e in answer["tree"]["elements"]:
        path = () if e["parentId"] == "-1" else paths[e["parentId"]] + (e["codeSignature"],)
        paths[e["id"]] = path
        spread[path] = (e["instances"], e["shareMin"], e["shareMax"])
    return spread


def test_two_tenants_same_task_id_and_stacks_each_get_their_own_merged_tree(loop, clickhouse):
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    writer = RowWriter(clickhouse)
    for tenant in ("acme", "beta"):
        _write_task(loop, writer, tenant, task_id, ["pod-1", "pod-2"])
    same = _profile({("main", "a"): 5, ("main", "b"): 3})
    acme = [_rows("acme", task_id, "pod-1", same), _rows("acme", task_id, "pod-2", same)]
    beta = [_rows("beta", task_id, "pod-1", same), _rows("beta", task_id, "pod-2", _profile({("main", "a"): 1}))]
    _store(loop, writer, acme[0], beta[0])  # one batch of both tenants, then one each
    _store(loop, writer, acme[1])
    _store(loop, writer, beta[1])
    assert _folded_profiles(loop, clickhouse, "acme", task_id)[-1] == sorted(r.profile_id for r in acme)
    assert _folded_profiles(loop, clickhouse, "beta", task_id)[-1] == sorted(r.profile_id for r in beta)
    folded, summed = _answers(loop, clickhouse, "acme", task_id)
    assert folded == summed
    assert _tree(folded)[1] == {(): (16 * MS, 0), ("main",): (16 * MS, 0), ("main", "a"): (10 * MS, 10 * MS),
                                ("main", "b"): (6 * MS, 6 * MS)}
    folded, summed = _answers(loop, clickhouse, "beta", task_id)
    assert folded == summed
    assert _tree(folded)[1] == {(): (9 * MS, 0), ("main",): (9 * MS, 0), ("main", "a"): (6 * MS, 6 * MS),
                                ("main", "b"): (3 * MS, 3 * MS)}
    for tenant, b_share in (("acme", (2, 0.375, 0.375)), ("beta", (1, 0.0, 0.375))):
        folded, summed = _answers(loop, clickhouse, tenant, task_id, with_stats=True)
        assert folded == summed
        assert _spread(folded)[("main", "b")] == b_share


def test_a_restart_a_new_upload_and_concurrent_batches_keep_the_fold_exact(loop, clickhouse):
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    writer = RowWriter(clickhouse)
    _write_task(loop, writer, "acme", task_id, ["pod-1", "pod-2", "pod-3", "pod-4"])
    first = _rows("acme", task_id, "pod-1", _profile({("main", "a"): 5}))
    _store(loop, writer, first)
    # the processor restarted: the next profile's fold is summed from what is stored
    writer = RowWriter(clickhouse)
    second = _rows("acme", task_id, "pod-2", _profile({("main", "b"): 2}))
    _store(loop, writer, second)
    assert _folded_profiles(loop, clickhouse, "acme", task_id)[-1] == sorted([first.profile_id, second.profile_id])
    # pod-1 uploads again: its newer profile replaces the older one in the fold
    again = _rows("acme", task_id, "pod-1", _profile({("main", "c"): 7}))
    _store(loop, writer, again)
    # two batches of the task written at once (the writer held to concurrent callers)
    third, fourth = (_rows("acme", task_id, f"pod-{i}", _profile({("main", "a", "x"): i})) for i in (3, 4))

    async def both():
        await asyncio.gather(writer.write_profiles([third]), writer.write_profiles([fourth]))
    loop.run_until_complete(both())
    newest = sorted(r.profile_id for r in (again, second, third, fourth))
    assert _folded_profiles(loop, clickhouse, "acme", task_id)[-1] == newest
    folded, summed = _answers(loop, clickhouse, "acme", task_id)
    assert folded == summed
    assert _tree(folded)[1] == {
        (): (16 * MS, 0), ("main",): (16 * MS, 0), ("main", "a"): (7 * MS, 0), ("main", "a", "x"): (7 * MS, 7 * MS),
        ("main", "b"): (2 * MS, 2 * MS), ("main", "c"): (7 * MS, 7 * MS)}
    folded, summed = _answers(loop, clickhouse, "acme", task_id, with_stats=True)
    assert folded == summed
    assert _spread(folded)[("main", "a")] == (2, 0.0, 1.0) and _spread(folded)[("main", "c")] == (1, 0.0, 1.0)


def test_the_large_profile_opens_from_its_fold_with_go_pprofs_numbers(loop, clickhouse):
    """Three instances holding google/pprof's large.cpu (425,051 nodes): the first view
    (maxNodes=5000) and the whole tree from the fold are byte for byte the summed answers, and
    the root is three times `go tool pprof`'s 240.29 s."""
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    writer = RowWriter(clickhouse)
    _write_task(loop, writer, "acme", task_id, ["a", "b", "c"])
    content = (CONFORMANCE / "large" / "pprof-large.cpu.pb.gz").read_bytes()
    stored = [_rows("acme", task_id, i, content) for i in ("a", "b", "c")]
    _store(loop, writer, stored[0])
    _store(loop, writer, stored[1], stored[2])
    assert _folded_profiles(loop, clickhouse, "acme", task_id)[-1] == sorted(r.profile_id for r in stored)
    folded, summed = _answers(loop, clickhouse, "acme", task_id, max_nodes=5000)
    assert folded == summed
    answer = json.loads(folded)
    assert answer["truncated"] > 400_000
    assert answer["tree"]["elements"][0]["total"] == 3 * 240_290_000_000
    folded, summed = _answers(loop, clickhouse, "acme", task_id)
    assert folded == summed and len(json.loads(folded)["tree"]["elements"]) == 425_052
    folded, summed = _answers(loop, clickhouse, "acme", task_id, max_nodes=5000, with_stats=True)
    assert folded == summed and all(s == (3, 0.0, 0.0) or s[0] == 3 and s[1] == s[2] > 0
                                    for s in _spread(folded).values())


def test_the_first_view_reads_the_fold_that_names_its_profiles_and_only_that_one(loop, clickhouse):
    """A fold row naming the task's newest profiles is what the analysis answers from (a row
    put in by hand with other sums shows, and with another spread across instances); one naming
    other profiles is not read, nor one without its nodes' places (written before m0007)."""
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    writer = RowWriter(clickhouse)
    _write_task(loop, writer, "acme", task_id, ["pod-1", "pod-2"])
    stored = [_rows("acme", task_id, f"pod-{i}", _profile({("main", "a"): i})) for i in (1, 2)]
    _store(loop, writer, *stored)

    def fold_row(profile_ids: list[str], root_total: int, placed: bool = True) -> None:
        places = "[0], [0], [0]" if placed else "[], [], []"
        loop.run_until_complete(clickhouse.command(
            "INSERT INTO task_folds (tenant, task_id, granularity, sample_type, profile_ids, node_ids, self_values, "
            "total_values, parents, depths, frame_ids, folded_at) VALUES ({t:String}, {k:String}, 'function', "
            f"'cpu/nanoseconds', {{p:Array(String)}}, [0], [0], [{{v:Int64}}], {places}, 1)",
            {"t": "acme", "k": task_id, "p": profile_ids, "v": root_total}))

    def root_total() -> int:
        body = loop.run_until_complete(Analyses(clickhouse, None, AnalysisCache()).tree(
            Question("acme", task_id), max_nodes=5000))
        return _tree(body)[1][()][0]

    assert root_total() == 3 * MS
    loop.run_until_complete(clickhouse.command("DELETE FROM task_folds WHERE task_id = {k:String}", {"k": task_id}))
    fold_row([stored[0].profile_id, "another"], 11)
    assert root_total() == 3 * MS  # summed from the profiles
    fold_row(sorted(r.profile_id for r in stored), 5, placed=False)
    assert root_total() == 3 * MS
    fold_row(sorted(r.profile_id for r in stored), 7)
    assert root_total() == 7

    def instance_count() -> int:
        body = loop.run_until_complete(Analyses(clickhouse, None, AnalysisCache()).tree(
            Question("acme", task_id), max_nodes=5000, with_stats=True))
        return json.loads(body)["instanceCount"]

    assert instance_count() == 2  # a row without the spread (before m0009): looked up in the profiles
    loop.run_until_complete(clickhouse.command("DELETE FROM task_folds WHERE task_id = {k:String}", {"k": task_id}))
    loop.run_until_complete(clickhouse.command(
        "INSERT INTO task_folds (tenant, task_id, granularity, sample_type, profile_ids, node_ids, self_values, "
        "total_values, parents, depths, frame_ids, instances, share_mins, share_maxes, folded_at) VALUES "
        "('acme', {k:String}, 'function', 'cpu/nanoseconds', {p:Array(String)}, [0], [0], [7], [0], [0], [0], "
        "[5], [1], [1], 1)", {"k": task_id, "p": sorted(r.profile_id for r in stored)}))
    assert instance_count() == 5  # the row's spread, put in by hand


def test_the_row_waits_for_the_tasks_last_profile_in_progress_even_one_that_is_dead_lettered(loop, clickhouse):
    """A burst's profiles write the task's row once, with the last of them; when that last one
    goes to the dead letters instead, the row is written without it (refresh)."""
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    writer = RowWriter(clickhouse)
    _write_task(loop, writer, "acme", task_id, ["pod-1", "pod-2", "pod-3"])
    stored = [_rows("acme", task_id, f"pod-{i}", _profile({("main", "a"): i})) for i in (1, 2)]
    folds = writer.task_folds
    for rows in stored:  # as the processor does when it takes the records
        folds.expect("acme", task_id, rows.profile_id)
    folds.expect("acme", task_id, "poison")
    _store(loop, writer, stored[0])
    folds.settle("acme", task_id, stored[0].profile_id)
    _store(loop, writer, stored[1])
    folds.settle("acme", task_id, stored[1].profile_id)
    assert _folded_profiles(loop, clickhouse, "acme", task_id) == []  # "poison" is still in progress
    folds.settle("acme", task_id, "poison")
    loop.run_until_complete(folds.refresh("acme", task_id))
    assert _folded_profiles(loop, clickhouse, "acme", task_id) == [sorted(r.profile_id for r in stored)]
    folded, summed = _answers(loop, clickhouse, "acme", task_id)
    assert folded == summed and _tree(folded)[1][()] == (3 * MS, 0)


def _record(task_id: str, instance: str, stacks: dict, pad: int = 0) -> tuple[bytes, str]:
    """A ProfileUploaded record of a CPU profile, padded past INLINE_BYTES (so folded in the CPU
    pool) when `pad` is given; and its profile id."""
    p = profile_pb2.Profile.FromString(gzip.decompress(_profile(stacks)))
    if pad:
        p.string_table.append(b"x" * pad)
    body, profile_id = p.SerializeToString(), str(uuid.uuid4())
    return events.new_event("acme", pb.ProfileUploaded(task_id=task_id, instance_id=instance, profile_id=profile_id,
                                                       content=body, size=len(body))).SerializeToString(), profile_id


def _taken_again_then_pod_1_uploads_twice(loop, clickhouse, service, task_id: str, records: list, first_id: str,
                                          second_id: str) -> None:
    """The records taken again from their offsets, then pod-1's two new uploads: each time the
    fold row names the newest profiles (nothing of the failed take is still waited for)."""
    loop.run_until_complete(service.store_profiles(records))
    assert _folded_profiles(loop, clickhouse, "acme", task_id)[-1] == sorted([first_id, second_id])
    for offset, stacks in ((3, {("main", "c"): 3}), (4, {("main", "d"): 4})):
        again, again_id = _record(task_id, "pod-1", stacks)
        loop.run_until_complete(service.store_profiles([(TOPIC, 0, offset, b"", again)]))
        assert _folded_profiles(loop, clickhouse, "acme", task_id)[-1] == sorted([again_id, second_id])


def test_a_batch_that_fails_after_folding_a_profile_leaves_no_profile_waited_for(loop, clickhouse):
    """A batch of records fails (reading a chunked record's chunks fails, or a rebalance stops
    the agent) after one profile was folded and before it was written: the batch is taken again,
    and the task's later rows are written; none waits forever for the profile of the failed take."""
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    pool = Pool(RuntimeError("Kafka is unavailable"), None)
    pool.workers = 2
    service, _, _ = processor(pool)
    service.writer = RowWriter(clickhouse)
    _write_task(loop, service.writer, "acme", task_id, ["pod-1", "pod-2"])
    first, first_id = _record(task_id, "pod-1", {("main", "a"): 1})
    second, second_id = _record(task_id, "pod-2", {("main", "b"): 2}, pad=40 * 1024)
    records = [(TOPIC, 0, 1, b"", first), (TOPIC, 0, 2, b"", second)]
    with pytest.raises(RuntimeError):
        loop.run_until_complete(service.store_profiles(records))
    pool.shared = None
    _taken_again_then_pod_1_uploads_twice(loop, clickhouse, service, task_id, records, first_id, second_id)
    folded, summed = _answers(loop, clickhouse, "acme", task_id)
    assert folded == summed and _tree(folded)[1][()] == (6 * MS, 0)


def test_a_fold_summed_again_names_only_the_profiles_whose_values_it_read(loop, clickhouse):
    """On a cluster a read may reach a replica (or a Distributed insert queue) that has a
    profile's `profiles` row and not yet its node values. A fold summed again from ClickHouse then
    names only the profiles whose values it summed: once the values arrive, the first view is
    the sum of every profile, never a row that names a profile and lacks its values."""
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    writer = RowWriter(clickhouse)
    _write_task(loop, writer, "acme", task_id, ["pod-1", "pod-2", "pod-3"])
    first = _rows("acme", task_id, "pod-1", _profile({("main", "a"): 1}))
    late = _rows("acme", task_id, "pod-2", _profile({("main", "b"): 2}))
    _store(loop, writer, first, late)
    where = {"p": late.profile_id}
    loop.run_until_complete(clickhouse.command("CREATE TABLE IF NOT EXISTS node_values_late AS node_values"))
    loop.run_until_complete(clickhouse.command(
        "INSERT INTO node_values_late SELECT * FROM node_values WHERE profile_id = {p:String}", where))
    loop.run_until_complete(clickhouse.command("DELETE FROM node_values WHERE profile_id = {p:String}", where))
    writer = RowWriter(clickhouse)  # a processor restarted: the task's sums are read from ClickHouse
    third = _rows("acme", task_id, "pod-3", _profile({("main", "c"): 4}))
    _store(loop, writer, third)
    loop.run_until_complete(clickhouse.command(  # the replica catches up
        "INSERT INTO node_values SELECT * FROM node_values_late WHERE profile_id = {p:String}", where))
    folded, summed = _answers(loop, clickhouse, "acme", task_id)
    assert folded == summed and _tree(folded)[1][()] == (7 * MS, 0)
    folded, summed = _answers(loop, clickhouse, "acme", task_id, with_stats=True)
    assert folded == summed and _spread(folded)[("main", "c")] == (1, 0.0, 1.0)


def test_an_agent_stopped_as_a_profile_finishes_folding_leaves_no_profile_waited_for(loop, clickhouse):
    """A rebalance stops the agent just as a record's fold finishes (its result not yet taken):
    the profile is not waited for by the task's later rows."""
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    pool = Pool(None, None)
    pool.workers = 2
    service, _, _ = processor(pool)
    service.writer = RowWriter(clickhouse)
    _write_task(loop, service.writer, "acme", task_id, ["pod-1", "pod-2"])
    first, first_id = _record(task_id, "pod-1", {("main", "a"): 1})
    second, second_id = _record(task_id, "pod-2", {("main", "b"): 2})
    records = [(TOPIC, 0, 1, b"", first), (TOPIC, 0, 2, b"", second)]
    fold = service._fold

    async def stopped():
        store = asyncio.current_task()

        async def fold_then_stop(*args):
            folded = await fold(*args)
            asyncio.get_running_loop().call_soon(store.cancel)  # before the agent takes the result
            return folded
        service._fold = fold_then_stop
        try:
            await service.store_profiles(records[:1])
        finally:
            service._fold = fold
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(stopped())
    _taken_again_then_pod_1_uploads_twice(loop, clickhouse, service, task_id, records, first_id, second_id)


def test_a_task_of_one_profile_opens_from_its_row_too(loop, clickhouse):
    """A task's first profile writes its row (opening it reads a prefix of that row, not the
    profile's node values sorted whole), and the next profile's row replaces it."""
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    writer = RowWriter(clickhouse)
    _write_task(loop, writer, "acme", task_id, ["pod-1", "pod-2"])
    first = _rows("acme", task_id, "pod-1", _profile({("main", "a"): 1, ("main", "b", "c"): 4}))
    _store(loop, writer, first)
    assert _folded_profiles(loop, clickhouse, "acme", task_id) == [[first.profile_id]]
    folded, summed = _answers(loop, clickhouse, "acme", task_id, max_nodes=2)  # the two and their ties
    assert folded == summed
    assert _tree(folded)[1] == {(): (5 * MS, 0), ("main",): (5 * MS, 0)}
    folded, summed = _answers(loop, clickhouse, "acme", task_id)
    assert folded == summed
    assert _tree(folded)[1] == {(): (5 * MS, 0), ("main",): (5 * MS, 0), ("main", "a"): (MS, MS),
                                ("main", "b"): (4 * MS, 0), ("main", "b", "c"): (4 * MS, 4 * MS)}
    second = _rows("acme", task_id, "pod-2", _profile({("main", "b"): 2}))
    _store(loop, writer, second)
    assert _folded_profiles(loop, clickhouse, "acme", task_id)[-1] == sorted([first.profile_id, second.profile_id])


def test_of_two_rows_of_one_task_the_merge_keeps_the_one_folded_from_the_newer_read(loop, clickhouse):
    """Two processors (a rebalance) may write one task's row out of order: the row folded from
    the later read of the task's profiles is the one ClickHouse keeps."""
    task_id = f"task-{uuid.uuid4().hex[:8]}"

    def fold_row(profile_ids: list[str], folded_at: int) -> None:
        loop.run_until_complete(clickhouse.command(
            "INSERT INTO task_folds (tenant, task_id, granularity, sample_type, profile_ids, node_ids, self_values, "
            "total_values, folded_at) VALUES ('acme', {k:String}, 'function', 'cpu/nanoseconds', "
            "{p:Array(String)}, [0], [0], [1], {v:Int64})", {"k": task_id, "p": profile_ids, "v": folded_at}))

    fold_row(["p-1", "p-2", "p-3"], 2000)  # the newer read, written first
    fold_row(["p-1", "p-2"], 1000)         # the older read, written late
    loop.run_until_complete(clickhouse.command("OPTIMIZE TABLE task_folds FINAL"))
    assert _folded_profiles(loop, clickhouse, "acme", task_id) == [["p-1", "p-2", "p-3"]]


def test_a_fold_row_clickhouse_refuses_holds_up_nothing(loop, clickhouse):
    """The profiles' rows are retried until ClickHouse takes them (nothing is lost); a task's
    merged tree is not retried: refused (a real ClickHouse error: a constraint no row meets), the
    batch is done and the analysis sums the profiles."""
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    writer = RowWriter(clickhouse)
    _write_task(loop, writer, "acme", task_id, ["pod-1", "pod-2"])
    loop.run_until_complete(clickhouse.command("ALTER TABLE task_folds ADD CONSTRAINT refused CHECK 0"))
    try:
        stored = [_rows("acme", task_id, f"pod-{i}", _profile({("main", "a"): i})) for i in (1, 2)]
        loop.run_until_complete(asyncio.wait_for(writer.write_profiles(stored), 60))
    finally:
        loop.run_until_complete(clickhouse.command("ALTER TABLE task_folds DROP CONSTRAINT refused"))
    assert _folded_profiles(loop, clickhouse, "acme", task_id) == []
    body = loop.run_until_complete(Analyses(clickhouse, None, AnalysisCache()).tree(Question("acme", task_id)))
    assert _tree(body)[1][()] == (3 * MS, 0)


def test_a_task_opens_from_its_row_alone_whatever_the_tenants_node_paths_hold(loop, clickhouse):
    """The row places its nodes (m0007): the first view and the whole tree of a task read no
    node path, so their cost does not grow with every node the tenant ever stored (node_paths is
    never expired row by row). Shown here by answering the same with the tenant's paths gone."""
    tenant, task_id = f"t-{uuid.uuid4().hex[:8]}", f"task-{uuid.uuid4().hex[:8]}"
    writer = RowWriter(clickhouse)
    _write_task(loop, writer, tenant, task_id, ["pod-1", "pod-2"])
    stored = [_rows(tenant, task_id, "pod-1", _profile({("main", "a", "x"): 5, ("main", "b"): 3})),
              _rows(tenant, task_id, "pod-2", _profile({("main", "a", "y"): 2, ("main", "b"): 1}))]
    _store(loop, writer, *stored)
    assert _folded_profiles(loop, clickhouse, tenant, task_id) == [sorted(r.profile_id for r in stored)]

    def answers() -> list[bytes]:
        analyses = Analyses(clickhouse, None, AnalysisCache())
        return [loop.run_until_complete(analyses.tree(Question(tenant, task_id), max_nodes=n)) for n in (0, 2, 5000)]

    before = answers()
    assert _tree(before[0])[1] == {(): (11 * MS, 0), ("main",): (11 * MS, 0), ("main", "a"): (7 * MS, 0),
                                   ("main", "a", "x"): (5 * MS, 5 * MS), ("main", "a", "y"): (2 * MS, 2 * MS),
                                   ("main", "b"): (4 * MS, 4 * MS)}
    loop.run_until_complete(clickhouse.command("DELETE FROM node_paths WHERE tenant = {t:String}", {"t": tenant}))
    assert answers() == before


def test_a_task_is_told_its_profiles_are_stored_when_they_answer_whole_before_its_merged_tree_is_summed(
        loop, clickhouse):
    """The processor sends ProfileStored (EXECUTION_FINISHED) from `written`: the profiles must
    answer whole then, summed at query time, and the task's row follows without holding it up."""
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    writer = RowWriter(clickhouse)
    _write_task(loop, writer, "acme", task_id, ["pod-1", "pod-2"])
    profiles = [_rows("acme", task_id, "pod-1", _profile({("main", "a"): 5, ("main", "b"): 3})),
                _rows("acme", task_id, "pod-2", _profile({("main", "a"): 2}))]
    seen: dict = {}

    async def written() -> None:
        seen["rows"] = await clickhouse.rows(
            "SELECT count() FROM task_folds WHERE tenant = 'acme' AND task_id = {k:String}", {"k": task_id})
        seen["tree"] = await Analyses(clickhouse, None, AnalysisCache()).tree(Question("acme", task_id))

    loop.run_until_complete(writer.write_profiles(profiles, written))
    assert seen["rows"] == [(0,)]
    assert _tree(seen["tree"])[1] == {(): (10 * MS, 0), ("main",): (10 * MS, 0), ("main", "a"): (7 * MS, 7 * MS),
                                      ("main", "b"): (3 * MS, 3 * MS)}
    assert _folded_profiles(loop, clickhouse, "acme", task_id) == [sorted(p.profile_id for p in profiles)]


def test_a_task_gets_its_row_when_its_last_profile_could_not_tell_it_is_stored(loop, clickhouse):
    """pod-1's row is left to pod-2, in progress (folded at once by the processor's other agent);
    pod-2's rows are written, and sending its ProfileStored fails (Kafka unavailable): the task's
    merged tree of both is written still, not left waiting for the batch to be taken again."""
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    writer = RowWriter(clickhouse)
    _write_task(loop, writer, "acme", task_id, ["pod-1", "pod-2"])
    first = _rows("acme", task_id, "pod-1", _profile({("main", "a"): 5}))
    second = _rows("acme", task_id, "pod-2", _profile({("main", "b"): 3}))
    writer.task_folds.expect("acme", task_id, second.profile_id)  # as ProcessorService._fold does

    async def unavailable() -> None:
        raise ConnectionError("Kafka is unavailable")

    loop.run_until_complete(writer.write_profiles([first]))
    assert _folded_profiles(loop, clickhouse, "acme", task_id) == []  # left to pod-2
    with pytest.raises(ConnectionError):
        loop.run_until_complete(writer.write_profiles([second], unavailable))
    writer.task_folds.settle("acme", task_id, second.profile_id)  # as ProcessorService._write_group does
    assert _folded_profiles(loop, clickhouse, "acme", task_id) == [sorted([first.profile_id, second.profile_id])]
    folded, summed = _answers(loop, clickhouse, "acme", task_id)
    assert folded == summed


def test_the_spread_across_instances_comes_from_the_row_as_the_profiles_give_it(loop, clickhouse):
    """The UI opens a task of several instances with each node's spread across them (how many
    have it, the lowest and highest share of their own total). The row keeps it (m0009): equal
    to looking each node up in every profile, with an instance lacking a node, one with nothing
    of the sample type (left out), and negative values (a delta profile)."""
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    writer = RowWriter(clickhouse)
    _write_task(loop, writer, "acme", task_id, ["pod-1", "pod-2", "pod-3", "pod-4"])
    stored = [_rows("acme", task_id, "pod-1", _profile({("main", "a"): 3, ("main", "b"): 1})),
              _rows("acme", task_id, "pod-2", _profile({("main", "a"): 1})),
              _rows("acme", task_id, "pod-3", _profile({("main", "a"): 0})),
              _rows("acme", task_id, "pod-4", _profile({("main", "a"): 4, ("main", "b"): -2}))]
    _store(loop, writer, stored[0], stored[1])
    _store(loop, writer, stored[2], stored[3])
    spread_rows = loop.run_until_complete(clickhouse.rows(
        "SELECT length(instances) FROM task_folds FINAL WHERE tenant = 'acme' AND task_id = {k:String}",
        {"k": task_id}))
    assert spread_rows and all(n > 0 for n, in spread_rows)
    for max_nodes in (2, 0):  # the cut tree, then the whole
        folded, summed = _answers(loop, clickhouse, "acme", task_id, max_nodes=max_nodes, with_stats=True)
        assert folded == summed
    spread = _spread(folded)
    assert json.loads(folded)["instanceCount"] == 3
    assert spread[()] == (3, 1.0, 1.0)
    assert spread[("main", "a")] == (3, 0.75, 2.0)
    assert spread[("main", "b")] == (2, -1.0, 0.25)
