"""Migrations apply to a data directory an older proftask made, rows and all: m0004 to one of
the first three, m0005 to one whose profiles m0004 folded (their rows are copied into the
packed tables, and the analyses read the same), m0008 to frames written without their files,
m0010 to profiles written without their value bounds."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from proftask import events
from proftask.clickhouse.client import ClickHouse
from proftask.clickhouse.cluster_ddl import migration_ddl
from proftask.clickhouse.migrate import MIGRATIONS_TABLE, migrate
from proftask.events.v1 import events_pb2 as pb
from proftask.http.errors import ApiError
from proftask.pprof.encode import encode_profile
from proftask.processing.profile_rows import ProfileRows, profile_rows
from proftask.processing.writer import RowWriter
from proftask.analysis import analysis_queries
from proftask.analysis.selection import select
from proftask.processing.rows import task_rows
from tests.conformance.oracle import require_conformance

pytestmark = pytest.mark.readmodel

LIMIT = 512 * 1024 * 1024


async def _older_proftask(ch: ClickHouse, last_version: int) -> None:
    """The tables and the record of migrations up to last_version, as an older proftask left them."""
    await ch.command(MIGRATIONS_TABLE)
    for version, name, statements in migration_ddl():
        if version <= last_version:
            for statement in statements:
                await ch.command(statement)
            await ch.insert("proftask_migrations", [(version, name)], ["version", "name"])


@contextlib.asynccontextmanager
async def _older_data_dir(path, last_version: int):
    """An embedded ClickHouse over `path` as a proftask of migrations up to last_version left it."""
    ch = ClickHouse(f"chdb://{path}")
    await ch.open()
    try:
        await _older_proftask(ch, last_version)
        yield ch
    finally:
        await ch.close()


def test_a_data_directory_of_the_first_three_migrations_gains_the_folded_tables(tmp_path):
    async def run():
        async with _older_data_dir(tmp_path, 3) as ch:
            await ch.insert("profiles", [("acme", "t-1", "pod-1", "p-1", 1, ["samples/count"], 0, [5], "", 0, 1, 1,
                                          "e-1")],
                            ["tenant", "task_id", "instance_id", "profile_id", "uploaded_at", "sample_types",
                             "default_index", "totals", "period_type", "period", "size_bytes", "stack_count",
                             "event_id"])
            assert await migrate(ch) == [4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
            assert await migrate(ch) == []
            assert await ch.rows("SELECT profile_id FROM profiles") == [("p-1",)]
            # m0012: a profile written before counts as naming its default (merges stay as they were)
            assert await ch.rows("SELECT default_named FROM profiles") == [(1,)]
            assert await ch.rows("SELECT count() FROM node_values") == [(0,)]
            assert await ch.rows("SELECT count() FROM function_values") == [(0,)]
            assert await ch.rows("SELECT count() FROM task_folds") == [(0,)]

    asyncio.run(run())


def _m0004_rows(rows: ProfileRows) -> tuple[pa.Table, pa.Table]:
    """The rows m0004's processor wrote for a profile: one per node (or function) per sample
    type and granularity, each node with its parent, depth and frame."""
    paths = rows.node_paths
    order = np.argsort(paths["node"], kind="stable")
    nodes, functions = [], []
    for part, fn_part in zip(rows.node_parts, rows.function_parts, strict=True):
        node, self_value, total = part["values"]
        at = order[np.searchsorted(paths["node"], node, sorter=order)]
        key = {"tenant": rows.tenant, "task_id": rows.task_id, "instance_id": rows.instance_id,
               "profile_id": rows.profile_id, "granularity": part["granularity"], "type_index": part["type_index"]}
        nodes.append(pa.table({**{k: [v] * len(node) for k, v in key.items()}, "node": node,
                               "parent": paths["parent"][at], "depth": paths["depth"][at],
                               "frame_id": paths["frame_id"][at], "self": self_value, "total": total,
                               "uploaded_at": np.full(len(node), rows.uploaded_at)}))
        frame_id, flat, cum = fn_part["values"]
        functions.append(pa.table({**{k: [v] * len(frame_id) for k, v in key.items()}, "frame_id": frame_id,
                                   "flat": flat, "cum": cum, "uploaded_at": np.full(len(frame_id), rows.uploaded_at)}))
    return pa.concat_tables(nodes), pa.concat_tables(functions)


def _env(tenant: str, task_id: str, instance: str, profile_id: str) -> pb.Envelope:
    content = (require_conformance() / "go" / "pprof-sample.cpu.pb.gz").read_bytes()
    return events.new_event(tenant, pb.ProfileUploaded(task_id=task_id, instance_id=instance,
                                                       profile_id=profile_id, content=content, size=len(content)))


class WriterBeforeM0013(RowWriter):
    """A processor of before m0013, which wrote no function_files."""

    async def insert_arrow(self, table, arrow_table) -> None:
        if table != "function_files":
            await super().insert_arrow(table, arrow_table)


class WriterBeforeM0008(WriterBeforeM0013):
    """A processor of before m0008, which wrote frames without their files."""

    async def insert_arrow(self, table, arrow_table) -> None:
        if table == "frame_names":
            arrow_table = [t.drop_columns(["file"]) for t in arrow_table] if isinstance(arrow_table, list) \
                else arrow_table.drop_columns(["file"])
        await super().insert_arrow(table, arrow_table)


def _before_m0012(rows: ProfileRows) -> ProfileRows:
    """The rows without whether the profile names its default sample type, which m0012 added."""
    return dataclasses.replace(rows, profile={k: v for k, v in rows.profile.items() if k != "default_named"})


def _before_m0011(rows: ProfileRows) -> ProfileRows:
    """The rows without the profile's time and duration, which m0011 added (nor what came later)."""
    added = ("time_nanos", "duration_nanos")
    rows = _before_m0012(rows)
    return dataclasses.replace(rows, profile={k: v for k, v in rows.profile.items() if k not in added})


def _before_m0010(rows: ProfileRows) -> ProfileRows:
    """The rows without the profile's value bounds, which m0010 added (nor what came later)."""
    added = ("positive_totals", "negative_totals")
    rows = _before_m0011(rows)
    return dataclasses.replace(rows, profile={k: v for k, v in rows.profile.items() if k not in added})


async def _write_as_m0004_did(writer: RowWriter, rows: ProfileRows, copies: int = 1) -> None:
    """A profile as m0004's processor stored it (`copies` > 1: redelivered)."""
    nodes, functions = _m0004_rows(rows)
    for _ in range(copies):
        await writer.insert_arrow("nodes", nodes)
        await writer.insert_arrow("functions", functions)
    await writer.insert_arrow("frame_names", rows.frame_names.drop_columns(["file"]))  # m0008 added it
    await writer.insert_arrow("stacks", rows.stacks_table())
    await writer.insert_arrow("samples", rows.samples_table())
    await writer.insert("profiles", [_before_m0010(rows).profile])


def _analyses(ch: ClickHouse, tenant: str, task_id: str, chosen: dict[str, int], granularity: str):
    async def run():
        whole = await analysis_queries.node_columns(ch, tenant, task_id, chosen, granularity)
        cut, count = await analysis_queries.heaviest_node_columns(ch, tenant, task_id, chosen, granularity, 40)
        top, total = await analysis_queries.top_rows(ch, tenant, task_id, chosen, granularity)
        spread = await analysis_queries.profile_node_totals(ch, tenant, task_id, chosen, granularity,
                                                            np.sort(whole.node)[:30].tolist())

        def tree(c):
            return sorted(zip(c.node.tolist(), c.parent.tolist(), c.depth.tolist(),
                              [c.names[i] for i in c.name.tolist()], c.total.tolist(), c.self_value.tolist(),
                              strict=True))

        return (tree(whole), tree(cut), count, sorted((r.name, r.flat, r.cum) for r in top), total,
                sorted(spread[0].rows()), spread[1])

    return run()


def test_profiles_folded_by_m0004_read_the_same_after_m0005(tmp_path):
    async def run():
        async with _older_data_dir(tmp_path, 4) as ch:
            writer = RowWriter(ch)
            # what m0004's processor wrote: two tenants, two instances each, one profile redelivered
            for tenant in ("acme", "beta"):
                for instance, profile_id in (("pod-1", "p-1"), ("pod-2", "p-2")):
                    rows = profile_rows(_env(tenant, "old-task", instance, profile_id), LIMIT)
                    await _write_as_m0004_did(writer, rows, copies=2 if profile_id == "p-1" else 1)
            assert await migrate(ch) == [5, 6, 7, 8, 9, 10, 11, 12, 13]
            assert await ch.rows("EXISTS TABLE nodes") == [(0,)]
            # the same profiles written by today's processor, in another task
            for instance, profile_id in (("pod-1", "n-1"), ("pod-2", "n-2")):
                await writer.write_profile(profile_rows(_env("acme", "new-task", instance, profile_id), LIMIT))
            for granularity in ("function", "line"):
                new = await _analyses(ch, "acme", "new-task", {"n-1": 1, "n-2": 2}, granularity)
                for tenant in ("acme", "beta"):
                    old = await _analyses(ch, tenant, "old-task", {"p-1": 1, "p-2": 2}, granularity)
                    assert len(old[0]) > 10
                    # the same trees and tables; only the profile ids of the spread differ
                    assert old[:5] == new[:5], (tenant, granularity)
                    assert [(n, t) for _, n, t in old[5]] == [(n, t) for _, n, t in new[5]]
                    assert sorted(old[6].values()) == sorted(new[6].values())

    asyncio.run(run())


@pytest.mark.parametrize("done", ["copies", "first drop"])
def test_m0005_cut_short_resumes_on_the_next_start(tmp_path, done):
    """proftask stopped (killed, `make down`) in the middle of m0005, after its copies or after it
    dropped `nodes`: the next start completes it, and the old profiles read as before."""
    def env(task_id, instance, profile_id):
        return _env("acme", task_id, instance, profile_id)

    async def run():
        async with _older_data_dir(tmp_path, 4) as ch:
            writer = RowWriter(ch)
            await _write_as_m0004_did(writer, profile_rows(env("old-task", "pod-1", "p-1"), LIMIT))
            # m0005's statements up to where it stopped, not recorded as applied
            statements = dict((v, s) for v, _, s in migration_ddl())[5]
            first_drop = next(i for i, s in enumerate(statements) if s.startswith("DROP TABLE"))
            for statement in statements[:first_drop + (done == "first drop")]:
                await ch.command(statement)
            assert await migrate(ch) == [5, 6, 7, 8, 9, 10, 11, 12, 13]
            assert await ch.rows("EXISTS TABLE nodes") == [(0,)]
            assert await ch.rows("EXISTS TABLE functions") == [(0,)]
            await writer.write_profile(profile_rows(env("new-task", "pod-1", "n-1"), LIMIT))
            for granularity in ("function", "line"):
                old = await _analyses(ch, "acme", "old-task", {"p-1": 1}, granularity)
                new = await _analyses(ch, "acme", "new-task", {"n-1": 1}, granularity)
                assert len(old[0]) > 10
                assert old[:5] == new[:5], granularity

    asyncio.run(run())


def test_frames_written_before_m0008_gain_their_files_when_written_again(tmp_path):
    """m0008 adds `file` to frame_names: the frames an older processor wrote have none (an export
    names no file for them), and a processor started after the migration writes each frame again
    the first time it meets it (its known frames are this process's), with its file."""
    async def run():
        async with _older_data_dir(tmp_path, 7) as ch:
            rows = profile_rows(_env("acme", "task", "pod-1", "p-1"), LIMIT)
            await WriterBeforeM0008(ch).write_profile(_before_m0010(rows))
            assert await migrate(ch) == [8, 9, 10, 11, 12, 13]
            _, files = await analysis_queries.stacks_all_values(ch, "acme", "task", ["p-1"])
            assert files == {}
            await RowWriter(ch).write_profile(profile_rows(_env("acme", "task", "pod-2", "p-2"), LIMIT))
            stacks, files = await analysis_queries.stacks_all_values(ch, "acme", "task", ["p-1"])
            functions = {function for frames, _ in stacks for function, _, is_address in frames if not is_address}
            assert set(files) == functions and files["main.main"].endswith(".go")

    asyncio.run(run())


def test_profiles_written_before_m0010_bound_a_merge_by_their_totals(tmp_path):
    """m0010 adds each profile's positive and negative sums; profiles written before have none,
    and their signed totals bound the merge instead: two whose values sum past 64 bits together
    are refused, each alone is shown."""
    big = encode_profile(["cpu/nanoseconds"], "cpu/nanoseconds", "cpu/nanoseconds", 1,
                         [([("main", 0, False)], [2**62])])

    def env(instance: str) -> pb.Envelope:
        return events.new_event("acme", pb.ProfileUploaded(task_id="task", instance_id=instance, profile_id=instance,
                                                           content=big, size=len(big)))

    async def run():
        async with _older_data_dir(tmp_path, 9) as ch:
            writer = WriterBeforeM0013(ch)
            spec = pb.TaskSpec(service_id="shop", service_instance_ids=["pod-1", "pod-2"], events=pb.EventType.CPU,
                               duration=1)
            await writer.insert("tasks", task_rows(events.new_event("acme", pb.TaskCreated(task_id="task", spec=spec))))
            for instance in ("pod-1", "pod-2"):
                await writer.write_profile(_before_m0010(profile_rows(env(instance), LIMIT)))
            assert await migrate(ch) == [10, 11, 12, 13]
            alone = await select(ch, None, "acme", "task", {"pod-1"}, None, "function")
            assert [(p.positive_totals, p.negative_totals) for p in alone.profiles] == [([2**62], [0])]
            with pytest.raises(ApiError) as refused:
                await select(ch, None, "acme", "task", set(), None, "function")
            assert refused.value.status == 422 and "sum to 9223372036854775808" in str(refused.value)

    asyncio.run(run())


def test_profiles_written_before_m0011_export_no_time_and_the_next_upload_says_its_own(tmp_path):
    """m0011 adds each profile's time and duration: a profile written before has neither (0, as
    pprof writes "not said"), and an upload after the migration keeps the profile's own."""
    async def run():
        async with _older_data_dir(tmp_path, 10) as ch:
            await WriterBeforeM0013(ch).write_profile(_before_m0011(profile_rows(_env("acme", "task", "pod-1", "p-1"),
                                                                               LIMIT)))
            writer = RowWriter(ch)
            assert await migrate(ch) == [11, 12, 13]
            await writer.write_profile(profile_rows(_env("acme", "task", "pod-2", "p-2"), LIMIT))
            stored = await analysis_queries.latest_profiles(ch, "acme", "task")
            # go/pprof-sample.cpu.pb.gz: `go tool pprof -raw` says Time 2017-09-29 20:57:59.25723537, Duration 2.00
            assert [(p.instance_id, p.time_nanos, p.duration_nanos) for p in stored] == [
                ("pod-1", 0, 0), ("pod-2", 1506718679257235370, 2002012950)]

    asyncio.run(run())


def _naming(file: str, tenant: str, instance: str) -> ProfileRows:
    """A profile whose main.work is in `file`."""
    body = encode_profile(["cpu/nanoseconds"], "cpu/nanoseconds", "", 0,
                          [([("main.main", 1, False), ("main.work", 7, False)], [5])],
                          files={"main.main": "/src/main.go", "main.work": file})
    return profile_rows(events.new_event(tenant, pb.ProfileUploaded(task_id="task", instance_id=instance,
                                                                    profile_id=instance, content=body,
                                                                    size=len(body))), LIMIT)


@pytest.mark.parametrize("order", ["b first", "a first"])
def test_an_export_names_the_first_in_byte_order_of_a_function_s_files_whatever_the_history(tmp_path, order):
    """Two builds name main.work's file differently. frame_names keeps one row per frame once
    merged, the last written, and a processor writes a frame once: the file an export named
    followed the order of the uploads, restarts and merges. m0013 keeps every (frame, file),
    written before it (in frame_names) or after."""
    builds = ["/b/build/work.go", "/a/build/work.go"] if order == "b first" else ["/a/build/work.go",
                                                                                  "/b/build/work.go"]

    async def run():
        async with _older_data_dir(tmp_path, 12) as ch:
            await WriterBeforeM0013(ch).write_profile(_naming(builds[0], "acme", "pod-1"))
            assert await migrate(ch) == [13]
            for tenant in ("acme", "beta"):  # after a restart: a new writer, with nothing known
                writer = RowWriter(ch)
                if tenant == "beta":
                    await writer.write_profile(_naming(builds[0], tenant, "pod-1"))
                await writer.write_profile(_naming(builds[1], tenant, "pod-2"))
                await RowWriter(ch).write_profile(_naming(builds[0], tenant, "pod-3"))
                await ch.command("OPTIMIZE TABLE frame_names FINAL")
                await ch.command("OPTIMIZE TABLE function_files FINAL")
                _, files = await analysis_queries.stacks_all_values(ch, tenant, "task", ["pod-1", "pod-2", "pod-3"])
                assert files == {"main.main": "/src/main.go", "main.work": "/a/build/work.go"}, (tenant, files)

    asyncio.run(run())
