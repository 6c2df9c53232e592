"""A batch of profiles from several tenants, the same stacks in each, written by one insert per
table: every tenant's analysis is whole and exact (against `go tool pprof`), and a batch that
redelivers a profile beside new ones counts it once."""
from __future__ import annotations

import asyncio
import json

import pytest

from proftask import events
from proftask.core.flamegraph import preorder, render_elements
from proftask.events.v1 import events_pb2 as pb
from proftask.processing.profile_rows import profile_rows
from proftask.processing.writer import RowWriter
from proftask.analysis import analysis_queries
from tests.conformance.oracle import oracle_tree, require_conformance
from tests.integration.profiles import as_oracle_shape

LIMIT = 512 * 1024 * 1024


def _env(tenant: str, task_id: str, instance: str, content: bytes) -> pb.Envelope:
    return events.new_event(tenant, pb.ProfileUploaded(task_id=task_id, instance_id=instance,
                                                       profile_id=f"{tenant}-{task_id}-{instance}",
                                                       content=content, size=len(content)))


def _analysis(loop, ch, tenant: str, task_id: str, granularity: str, max_nodes: int = 0,
              heaviest: bool = False) -> dict:
    stored = loop.run_until_complete(analysis_queries.latest_profiles(ch, tenant, task_id))
    chosen = {p.profile_id: p.default_index + 1 for p in stored}
    if heaviest:
        columns, _ = loop.run_until_complete(analysis_queries.heaviest_node_columns(
            ch, tenant, task_id, chosen, granularity, max_nodes))
    else:
        columns = loop.run_until_complete(analysis_queries.node_columns(ch, tenant, task_id, chosen, granularity))
    ordered, parent_pos, _ = preorder(columns, max_nodes)
    return {"sampleType": stored[0].sample_types[stored[0].default_index],
            "tree": {"elements": json.loads(render_elements(columns, ordered, parent_pos))}}


def test_a_batch_mixing_tenants_and_a_redelivery_gives_each_tenant_its_whole_exact_tree(loop, clickhouse):
    conformance = require_conformance()
    cpu_path = conformance / "go" / "pprof-sample.cpu.pb.gz"
    heap_path = conformance / "go" / "pyroscope-heap.pb.gz"
    cpu, heap = cpu_path.read_bytes(), heap_path.read_bytes()
    writer = RowWriter(clickhouse)
    first = [_env("acme", "cpu-task", "pod-1", cpu), _env("beta", "cpu-task", "pod-1", cpu),
             _env("acme", "cpu-task", "pod-2", cpu), _env("beta", "heap-task", "pod-1", heap)]
    loop.run_until_complete(writer.write_profiles([profile_rows(e, LIMIT) for e in first]))
    # a redelivery of acme's pod-1 beside a new tenant's copy, by a restarted processor
    second = [first[0], _env("gamma", "cpu-task", "pod-1", cpu)]
    loop.run_until_complete(RowWriter(clickhouse).write_profiles([profile_rows(e, LIMIT) for e in second]))
    for granularity in ("function", "line"):
        one_cpu = oracle_tree([cpu_path], None, granularity)
        two_cpu = oracle_tree([cpu_path, cpu_path], None, granularity)
        assert len(one_cpu["nodes"]) > 10
        assert as_oracle_shape(_analysis(loop, clickhouse, "acme", "cpu-task", granularity)) == two_cpu
        assert as_oracle_shape(_analysis(loop, clickhouse, "beta", "cpu-task", granularity)) == one_cpu
        assert as_oracle_shape(_analysis(loop, clickhouse, "gamma", "cpu-task", granularity)) == one_cpu
        assert as_oracle_shape(_analysis(loop, clickhouse, "beta", "heap-task", granularity)) == \
            oracle_tree([heap_path], None, granularity)
        # the cut tree reads its nodes' paths by a list: the same cut as the whole tree's, in each tenant
        for tenant in ("beta", "gamma"):
            cut = as_oracle_shape(_analysis(loop, clickhouse, tenant, "cpu-task", granularity, 8, heaviest=True))
            assert cut == as_oracle_shape(_analysis(loop, clickhouse, tenant, "cpu-task", granularity, 8))
            assert 5 < len(cut["nodes"]) < len(one_cpu["nodes"])
            assert all(one_cpu["nodes"][path] == value for path, value in cut["nodes"].items())


def test_a_batch_inserted_in_slices_gives_each_tenant_its_whole_exact_tree(loop, clickhouse, monkeypatch):
    # a batch past ARROW_CHUNK_ROWS goes in as slices of the combined table (lists, dictionaries
    # and uint64 ids at an offset), which chDB reads in place through Python(): small slices here
    from proftask.processing import writer as writer_module

    conformance = require_conformance()
    cpu_path, heap_path = conformance / "go" / "pprof-sample.cpu.pb.gz", conformance / "go" / "pyroscope-heap.pb.gz"
    cpu, heap = cpu_path.read_bytes(), heap_path.read_bytes()
    monkeypatch.setattr(writer_module, "ARROW_CHUNK_ROWS", 97)
    batch = [_env("delta", "cpu-task", "pod-1", cpu), _env("delta", "heap-task", "pod-1", heap),
             _env("delta", "cpu-task", "pod-2", cpu)]
    loop.run_until_complete(RowWriter(clickhouse).write_profiles([profile_rows(e, LIMIT) for e in batch]))
    for granularity in ("function", "line"):
        assert as_oracle_shape(_analysis(loop, clickhouse, "delta", "cpu-task", granularity)) == \
            oracle_tree([cpu_path, cpu_path], None, granularity)
        assert as_oracle_shape(_analysis(loop, clickhouse, "delta", "heap-task", granularity)) == \
            oracle_tree([heap_path], None, granularity)


def test_a_profile_whose_stacks_a_cut_short_write_left_is_whole_when_its_stacks_come_again(loop, clickhouse,
                                                                                            monkeypatch):
    # a profile whose stacks this process wrote skips writing its node paths: a write stopped
    # (shutdown) between the stacks and the node paths must not count its stacks as written
    cpu_path = require_conformance() / "go" / "pprof-sample.cpu.pb.gz"
    cpu = cpu_path.read_bytes()
    writer = RowWriter(clickhouse)
    insert_arrow = clickhouse.insert_arrow

    async def stopped_at_node_paths(table, arrow_table):
        if table == "node_paths":
            raise asyncio.CancelledError
        await insert_arrow(table, arrow_table)

    monkeypatch.setattr(clickhouse, "insert_arrow", stopped_at_node_paths)
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(writer.write_profiles([profile_rows(_env("epsilon", "cut-task", "pod-1", cpu), LIMIT)]))
    monkeypatch.setattr(clickhouse, "insert_arrow", insert_arrow)
    loop.run_until_complete(writer.write_profiles([profile_rows(_env("epsilon", "cpu-task", "pod-2", cpu), LIMIT)]))
    for granularity in ("function", "line"):
        assert as_oracle_shape(_analysis(loop, clickhouse, "epsilon", "cpu-task", granularity)) == \
            oracle_tree([cpu_path], None, granularity)


def test_a_batch_through_clickhouse_connects_arrow_stream_gives_each_tenant_its_whole_exact_tree(loop, clickhouse,
                                                                                                monkeypatch):
    # a ClickHouse server takes Arrow through clickhouse-connect, as a stream with one dictionary
    # per column: a batch's tables (each profile with its own dictionaries) are made one first
    conformance = require_conformance()
    cpu_path, heap_path = conformance / "go" / "pprof-sample.cpu.pb.gz", conformance / "go" / "pyroscope-heap.pb.gz"
    cpu, heap = cpu_path.read_bytes(), heap_path.read_bytes()
    monkeypatch.setattr(clickhouse, "_in_process", None)  # what a server DSN has
    batch = [_env("zeta", "cpu-task", "pod-1", cpu), _env("eta", "cpu-task", "pod-1", cpu),
             _env("zeta", "heap-task", "pod-1", heap), _env("zeta", "cpu-task", "pod-2", cpu)]
    # bounded: the writer retries a refused insert until it goes in
    loop.run_until_complete(asyncio.wait_for(
        RowWriter(clickhouse).write_profiles([profile_rows(e, LIMIT) for e in batch]), timeout=120))
    monkeypatch.undo()
    for granularity in ("function", "line"):
        one_cpu = oracle_tree([cpu_path], None, granularity)
        assert as_oracle_shape(_analysis(loop, clickhouse, "zeta", "cpu-task", granularity)) == \
            oracle_tree([cpu_path, cpu_path], None, granularity)
        assert as_oracle_shape(_analysis(loop, clickhouse, "eta", "cpu-task", granularity)) == one_cpu
        assert as_oracle_shape(_analysis(loop, clickhouse, "zeta", "heap-task", granularity)) == \
            oracle_tree([heap_path], None, granularity)
