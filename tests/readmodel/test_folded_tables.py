"""The node and function tables the processor folds at ingest, for two tenants holding the very
same profile (same task, instance and profile ids): each tenant's analysis and top table are
its own and whole, and a redelivered profile counts once."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from proftask import events
from proftask.core.top import sort_rows, top_table
from proftask.events.v1 import events_pb2 as pb
from proftask.processing.profile_rows import profile_rows
from proftask.processing.writer import RowWriter
from proftask.analysis import analysis_queries
from tests.conformance.oracle import require_conformance

pytestmark = pytest.mark.readmodel

LIMIT = 512 * 1024 * 1024


def _env(tenant: str, content: bytes, instance: str, profile_id: str) -> pb.Envelope:
    return events.new_event(tenant, pb.ProfileUploaded(task_id="task-same", instance_id=instance,
                                                       profile_id=profile_id, content=content, size=len(content)))


def _tree(c):
    names = [c.names[i] for i in c.name.tolist()]
    return sorted(zip(c.node.tolist(), c.parent.tolist(), c.depth.tolist(), names, c.total.tolist(),
                      c.self_value.tolist(), strict=False))


def test_two_tenants_with_the_same_profile_each_get_it_whole_and_a_redelivery_counts_once(loop, clickhouse):
    conformance = require_conformance()
    cpu = (conformance / "go" / "pprof-sample.cpu.pb.gz").read_bytes()
    writer = RowWriter(clickhouse)
    rows = {}
    for tenant in ("acme", "beta"):
        for instance, profile_id, content in (("pod-1", "p-1", cpu), ("pod-2", "p-2", cpu)):
            rows[tenant, profile_id] = r = profile_rows(_env(tenant, content, instance, profile_id), LIMIT)
            loop.run_until_complete(writer.write_profile(r))
    # a redelivery of acme's first profile writes its rows again
    loop.run_until_complete(RowWriter(clickhouse).write_profile(rows["acme", "p-1"]))
    # beta alone has a third instance
    rows["beta", "p-3"] = r = profile_rows(_env("beta", cpu, "pod-3", "p-3"), LIMIT)
    loop.run_until_complete(writer.write_profile(r))

    def run(coro):
        return loop.run_until_complete(coro)

    for granularity in ("function", "line"):
        one = run(analysis_queries.node_columns(clickhouse, "acme", "task-same", {"p-1": 1}, granularity))
        two = run(analysis_queries.node_columns(clickhouse, "acme", "task-same", {"p-1": 1, "p-2": 1}, granularity))
        assert len(one.node) > 10
        # the merged tree of two copies: the same nodes, every value doubled
        assert [(n, p, d, name, 2 * t, 2 * s) for n, p, d, name, t, s in _tree(one)] == _tree(two)
        # beta's copy of the same profiles is whole, whatever acme's rows
        assert _tree(run(analysis_queries.node_columns(clickhouse, "beta", "task-same", {"p-1": 1, "p-2": 1},
                                                       granularity))) == _tree(two)
        # the top table summed from the function tables = the one computed from the merged tree
        for tenant in ("acme", "beta"):
            got, total = run(analysis_queries.top_rows(clickhouse, tenant, "task-same", {"p-1": 1, "p-2": 1},
                                                       granularity))
            assert sort_rows(got, "flat", granularity) == top_table(two, granularity)
            assert total == int(two.total[two.depth == 0].sum())
        # the stats per instance read each profile's own rows
        nodes = two.node[:50].tolist()
        totals, roots = run(analysis_queries.profile_node_totals(clickhouse, "beta", "task-same",
                                                                 {"p-1": 1, "p-2": 1}, granularity, nodes))
        root_total = int(one.total[one.depth == 0][0])
        assert roots == {"p-1": root_total, "p-2": root_total}
        assert len(totals.rows()) == 2 * len([n for n in nodes if n != 0])


def test_the_heaviest_nodes_read_alone_make_the_same_cut_tree_as_the_whole_tree(loop, clickhouse):
    from proftask.core.flamegraph import preorder, render_elements

    content = (require_conformance() / "go" / "pprof-sample.cpu.pb.gz").read_bytes()
    env = events.new_event("acme", pb.ProfileUploaded(task_id="task-cut", instance_id="pod-1", profile_id="c-1",
                                                      content=content, size=len(content)))
    loop.run_until_complete(RowWriter(clickhouse).write_profile(profile_rows(env, LIMIT)))
    for granularity in ("function", "line"):
        whole = loop.run_until_complete(analysis_queries.node_columns(
            clickhouse, "acme", "task-cut", {"c-1": 1}, granularity))
        for max_nodes in (1, 2, 7, 50, 300, 10_000_000):
            cut, node_count = loop.run_until_complete(analysis_queries.heaviest_node_columns(
                clickhouse, "acme", "task-cut", {"c-1": 1}, granularity, max_nodes))
            assert node_count == len(whole.node)
            want_order, want_parents, want_dropped = preorder(whole, max_nodes)
            got_order, got_parents, _ = preorder(cut, max_nodes)
            assert render_elements(cut, got_order, got_parents) == render_elements(whole, want_order, want_parents)
            assert node_count - len(got_order) == want_dropped


def test_a_node_path_and_a_frame_name_written_twice_and_not_merged_yet_make_one_node(loop, clickhouse):
    """node_paths and frame_names are joined to the sums by node and by frame: the copies a
    restarted processor writes again (it forgot which it wrote) make no second node, as long as
    ReplacingMergeTree has not merged them yet, too."""
    from proftask.core.flamegraph import preorder, render_elements

    content = (require_conformance() / "go" / "pprof-sample.cpu.pb.gz").read_bytes()

    def write(instance: str, profile_id: str) -> None:
        env = events.new_event("acme", pb.ProfileUploaded(task_id="task-twice", instance_id=instance,
                                                          profile_id=profile_id, content=content, size=len(content)))
        loop.run_until_complete(RowWriter(clickhouse).write_profile(profile_rows(env, LIMIT)))

    def run(coro):
        return loop.run_until_complete(coro)

    write("pod-1", "t-1")
    whole_once = {g: run(analysis_queries.node_columns(clickhouse, "acme", "task-twice", {"t-1": 1}, g))
                  for g in ("function", "line")}
    for table in ("node_paths", "frame_names"):
        run(clickhouse.command(f"SYSTEM STOP MERGES {table}"))
    try:
        write("pod-2", "t-2")  # another writer: every node path and frame name written again
        copies = run(clickhouse.rows("SELECT count() - uniqExact(node) FROM node_paths WHERE tenant = 'acme'"))
        assert copies[0][0] > 0
        for granularity, once in whole_once.items():
            for chosen in ({"t-1": 1}, {"t-1": 1, "t-2": 1}):
                k = len(chosen)
                whole = run(analysis_queries.node_columns(clickhouse, "acme", "task-twice", chosen, granularity))
                assert _tree(whole) == [(n, p, d, name, k * t, k * s) for n, p, d, name, t, s in _tree(once)]
                cut, node_count = run(analysis_queries.heaviest_node_columns(
                    clickhouse, "acme", "task-twice", chosen, granularity, 20))
                assert node_count == len(once.node)
                got, want = preorder(cut, 20), preorder(whole, 20)
                assert render_elements(cut, *got[:2]) == render_elements(whole, *want[:2])
    finally:
        for table in ("node_paths", "frame_names"):
            run(clickhouse.command(f"SYSTEM START MERGES {table}"))


def test_a_sample_type_written_without_its_ids_reads_those_of_the_type_before_as_rows_written_with_them(
        loop, clickhouse):
    """A heap profile's four sample types make two sets of nodes (alloc_*, inuse_*): its rows of
    alloc_space and inuse_space are written with no ids, and read those of the type before. Rows
    written before that (every type with its ids) read the same, and the two merge."""
    content = (require_conformance() / "go" / "pyroscope-heap.pb.gz").read_bytes()

    def run(coro):
        return loop.run_until_complete(coro)

    rows = {}
    for profile_id in ("h-now", "h-before"):
        rows[profile_id] = r = profile_rows(_env("acme", content, f"pod-{profile_id}", profile_id), LIMIT)
        run(RowWriter(clickhouse).write_profile(r))
    stored = run(clickhouse.rows(
        "SELECT granularity, type_index, length(node_ids), length(total_values) FROM node_values FINAL "
        "WHERE tenant = 'acme' AND profile_id = 'h-now' ORDER BY granularity, type_index"))
    assert [(g, t, ids > 0) for g, t, ids, _ in stored] == [
        (g, t, t in (0, 2)) for g in ("function", "line") for t in range(4)]
    # h-before as written before the ids were shared: each row with its ids (written again with the
    # same key, which replaces the first rows)
    before = rows["h-before"]
    for table, ids_column, written, parts in (
            ("node_values", "node_ids", before.node_values_table(), before.node_parts),
            ("function_values", "frame_ids", before.function_values_table(), before.function_parts)):
        every_ids = [part["values"][0] for part in parts]
        offsets = np.concatenate(([0], np.cumsum([len(ids) for ids in every_ids])))
        column = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(np.concatenate(every_ids)))
        run(clickhouse.insert_arrow(table, written.set_column(written.schema.get_field_index(ids_column),
                                                              ids_column, column)))
    assert run(clickhouse.rows("SELECT countIf(empty(node_ids)) FROM node_values FINAL "
                               "WHERE tenant = 'acme' AND profile_id = 'h-before'")) == [(0,)]

    for granularity in ("function", "line"):
        folded = {p["type_index"]: p["values"] for p in rows["h-now"].node_parts if p["granularity"] == granularity}
        for index in range(1, 5):
            ids, self_value, total = folded[index - 1]
            want = sorted(zip(ids.tolist(), total.tolist(), self_value.tolist(), strict=True))
            trees = {}
            for profile_id in ("h-now", "h-before"):
                c = run(analysis_queries.node_columns(clickhouse, "acme", "task-same", {profile_id: index},
                                                      granularity))
                assert sorted(zip(c.node.tolist(), c.total.tolist(), c.self_value.tolist(), strict=True)) == want
                trees[profile_id] = _tree(c)
            assert trees["h-now"] == trees["h-before"]
            both = {"h-now": index, "h-before": index}
            merged = run(analysis_queries.node_columns(clickhouse, "acme", "task-same", both, granularity))
            assert _tree(merged) == [(n, p, d, name, 2 * t, 2 * s) for n, p, d, name, t, s in trees["h-now"]]
            tops = [sort_rows(run(analysis_queries.top_rows(clickhouse, "acme", "task-same", chosen, granularity))[0],
                              "flat", granularity) for chosen in ({"h-now": index}, {"h-before": index})]
            assert tops[0] == tops[1] and len(tops[0]) > 5


def test_a_sample_type_with_no_function_beside_one_with_some_reads_as_empty(loop, clickhouse):
    """A heap profile with nothing in use has functions for alloc_* and none for inuse_*: that
    type's rows have no ids and no values (not the ids of the type before). Its tree is the root
    alone and its top table empty; the other type's are whole."""
    from proftask.pprof.encode import encode_profile

    content = encode_profile(["alloc_space/bytes", "inuse_space/bytes"], "inuse_space/bytes", "space/bytes", 512,
                             [([("main.a", 0, False), ("main.b", 0, False)], [4096, 0]),
                              ([("main.a", 0, False)], [1024, 0])])

    def run(coro):
        return loop.run_until_complete(coro)

    run(RowWriter(clickhouse).write_profile(profile_rows(_env("acme", content, "pod-z", "z-1"), LIMIT)))
    for granularity in ("function", "line"):
        empty = run(analysis_queries.node_columns(clickhouse, "acme", "task-same", {"z-1": 2}, granularity))
        assert empty.node.tolist() == [0] and empty.total.tolist() == [0]
        rows, total = run(analysis_queries.top_rows(clickhouse, "acme", "task-same", {"z-1": 2}, granularity))
        assert rows == [] and total == 0
        alloc = run(analysis_queries.node_columns(clickhouse, "acme", "task-same", {"z-1": 1}, granularity))
        assert int(alloc.total[alloc.depth == 0][0]) == 5120 and len(alloc.node) == 3
        rows, total = run(analysis_queries.top_rows(clickhouse, "acme", "task-same", {"z-1": 1}, granularity))
        assert total == 5120 and sorted((r.flat, r.cum) for r in rows) == [(1024, 5120), (4096, 4096)]


def test_a_function_without_a_name_is_a_top_row_named_as_in_the_tree(loop, clickhouse):
    """Go's threadcreate stacks are lines of a function without a name: the tree names that frame
    "" (as the shared oracle reads `go tool pprof -raw`), and so does the top table, with
    `go tool pprof -top`'s values for its `<unknown>` (4 flat, 4 cum); not the frame's id, which
    could be found nowhere else."""
    import pathlib

    content = (pathlib.Path(__file__).resolve().parents[1] / "conformance" / "go-threadcreate.pb.gz").read_bytes()
    loop.run_until_complete(RowWriter(clickhouse).write_profile(
        profile_rows(_env("acme", content, "pod-t", "t-1"), LIMIT)))
    rows, total = loop.run_until_complete(analysis_queries.top_rows(clickhouse, "acme", "task-same", {"t-1": 1},
                                                                    "function"))
    assert total == 4 and [(r.name, r.flat, r.cum) for r in rows] == [("", 4, 4)]
    tree = loop.run_until_complete(analysis_queries.node_columns(clickhouse, "acme", "task-same", {"t-1": 1},
                                                                  "function"))
    assert {tree.names[i] for i in tree.name.tolist()} == {"root", ""}
