"""Tenants that upload the very same profile each get the whole of it: the processor's caches
of rows it already wrote are keyed like the tables, by (tenant, id)."""
from __future__ import annotations

import json
import uuid


from proftask import events
from proftask.core.flamegraph import preorder, render_elements
from proftask.events.v1 import events_pb2 as pb
from proftask.processing.profile_rows import profile_rows
from proftask.processing.writer import RowWriter
from proftask.analysis import analysis_queries
from tests.conformance.oracle import oracle_tree, require_conformance
from tests.integration.profiles import as_oracle_shape


LIMIT = 512 * 1024 * 1024


def _envelope(tenant: str, content: bytes) -> pb.Envelope:
    return events.new_event(tenant, pb.ProfileUploaded(
        task_id=f"task-{uuid.uuid4().hex[:8]}", instance_id="pod-1", profile_id=str(uuid.uuid4()),
        content=content, size=len(content)))


def _analysis(loop, ch, env: pb.Envelope, granularity: str) -> dict:
    up = env.profile_uploaded
    (stored,) = loop.run_until_complete(analysis_queries.latest_profiles(ch, env.tenant, up.task_id))
    index = stored.sample_types.index(stored.sample_types[stored.default_index]) + 1
    columns = loop.run_until_complete(analysis_queries.node_columns(
        ch, env.tenant, up.task_id, {stored.profile_id: index}, granularity))
    ordered, parent_pos, _ = preorder(columns)
    elements = json.loads(render_elements(columns, ordered, parent_pos))
    return {"sampleType": stored.sample_types[stored.default_index], "tree": {"elements": elements}}


def test_the_same_profile_in_three_tenants_is_whole_in_each_even_after_a_restart(loop, clickhouse):
    path = require_conformance() / "go" / "pprof-sample.cpu.pb.gz"
    content = path.read_bytes()
    writer = RowWriter(clickhouse)
    acme, beta = _envelope("acme", content), _envelope("beta", content)
    for env in (acme, beta):
        loop.run_until_complete(writer.write_profile(profile_rows(env, LIMIT)))
    # a restarted processor has empty caches; a third tenant then finds nothing to skip
    restarted = RowWriter(clickhouse)
    gamma = _envelope("gamma", content)
    loop.run_until_complete(restarted.write_profile(profile_rows(gamma, LIMIT)))
    # and the first writer, which wrote acme's rows, still writes a fourth tenant's whole
    delta = _envelope("delta", content)
    loop.run_until_complete(writer.write_profile(profile_rows(delta, LIMIT)))
    for granularity in ("function", "line"):
        want = oracle_tree([path], None, granularity)
        assert len(want["nodes"]) > 10
        for env in (acme, beta, gamma, delta):
            assert as_oracle_shape(_analysis(loop, clickhouse, env, granularity)) == want, (env.tenant, granularity)
