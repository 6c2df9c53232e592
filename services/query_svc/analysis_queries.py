"""SQL for the flame graph: per node (path of frames from the root) total and self, computed in
ClickHouse over the chosen profiles (shared/reference/peers.md §3.5, layout A)."""
from __future__ import annotations

import dataclasses

from proftask import metrics
from proftask.clickhouse.client import ClickHouse
import numpy as np

from proftask.core.flamegraph import NodeColumns

# Without this, chDB 26.9 may reorder these joins into a plan that never finishes.
JOIN_SETTINGS = "SETTINGS query_plan_optimize_join_order_limit = 0"


@dataclasses.dataclass(frozen=True)
class StoredProfile:
    instance_id: str
    profile_id: str
    sample_types: list[str]
    default_index: int
    period_type: str
    period: int


LATEST_PROFILES = """
SELECT instance_id, argMax(profile_id, uploaded_at), argMax(sample_types, uploaded_at),
       argMax(default_index, uploaded_at), argMax(period_type, uploaded_at), argMax(period, uploaded_at)
FROM profiles
WHERE tenant = {tenant:String} AND task_id = {task_id:String}
GROUP BY instance_id
ORDER BY instance_id
"""

# One value per (profile, stack): redelivered copies of a row count once. A stack only makes
# nodes where its value is not zero, as in pprof.
_STACK_VALUES = """
stack_values AS (
    SELECT stack_id, sum(pv) AS v
    FROM (
        SELECT profile_id, stack_id,
               any(arrayElement(values, transform(profile_id, {profile_ids:Array(String)},
                                                   {value_indexes:Array(UInt16)}, toUInt16(0)))) AS pv
        FROM samples
        WHERE tenant = {tenant:String} AND task_id = {task_id:String}
          AND profile_id IN {profile_ids:Array(String)}
        GROUP BY profile_id, stack_id
    )
    WHERE pv != 0
    GROUP BY stack_id
)"""

# {frames_column} is function_frames or line_frames, chosen from a fixed set (_with_frames).
# Depth 0 is the root: total = every value, self = stacks without frames.
NODE_SUMS = """
WITH """ + _STACK_VALUES + """
SELECT if(depth = 0, 0, h[depth + 1]) AS node, if(depth = 0, 0, h[depth]) AS parent, depth,
       if(depth = 0, 0, frames[depth]) AS frame_id, sum(v) AS total, sumIf(v, depth = length(frames)) AS self
FROM (
    SELECT sv.v AS v, s.frames AS frames,
           arrayFold((acc, x) -> arrayPushBack(acc, sipHash64(acc[-1], x)), s.frames, [toUInt64(0)]) AS h
    FROM stack_values AS sv
    INNER JOIN (
        SELECT stack_id, any({frames_column}) AS frames
        FROM stacks
        WHERE tenant = {tenant:String} AND stack_id IN (SELECT stack_id FROM stack_values)
        GROUP BY stack_id
    ) AS s USING stack_id
)
ARRAY JOIN arrayConcat([0], arrayEnumerate(frames)) AS depth
GROUP BY node, parent, depth, frame_id
""" + JOIN_SETTINGS

STACKS = """
WITH """ + _STACK_VALUES + """
SELECT s.frames, sv.v
FROM stack_values AS sv
INNER JOIN (
    SELECT stack_id, any({frames_column}) AS frames FROM stacks
    WHERE tenant = {tenant:String} AND stack_id IN (SELECT stack_id FROM stack_values)
    GROUP BY stack_id
) AS s USING stack_id
""" + JOIN_SETTINGS

# Every sample type at once, for profiles that share their sample types (pprof export).
STACKS_ALL_VALUES = """
WITH stack_values AS (
    SELECT stack_id, sumForEach(pv) AS v
    FROM (
        SELECT profile_id, stack_id, any(values) AS pv FROM samples
        WHERE tenant = {tenant:String} AND task_id = {task_id:String}
          AND profile_id IN {profile_ids:Array(String)}
        GROUP BY profile_id, stack_id
    )
    GROUP BY stack_id
)
SELECT s.frames, sv.v
FROM stack_values AS sv
INNER JOIN (
    SELECT stack_id, any(line_frames) AS frames FROM stacks
    WHERE tenant = {tenant:String} AND stack_id IN (SELECT stack_id FROM stack_values)
    GROUP BY stack_id
) AS s USING stack_id
""" + JOIN_SETTINGS

FRAME_INFO = """
SELECT frame_id, any(name), any(function), any(line), any(is_address) FROM frame_names
WHERE tenant = {tenant:String} AND frame_id IN {frame_ids:Array(UInt64)}
GROUP BY frame_id
"""

FRAME_NAMES = """
SELECT frame_id, any(name) FROM frame_names
WHERE tenant = {tenant:String} AND frame_id IN {frame_ids:Array(UInt64)}
GROUP BY frame_id
"""


def _with_frames(sql: str, granularity: str) -> str:
    return sql.replace("{frames_column}", {"function": "function_frames", "line": "line_frames"}[granularity])


def _params(tenant: str, task_id: str, value_index_by_profile: dict[str, int]) -> dict:
    return {"tenant": tenant, "task_id": task_id, "profile_ids": list(value_index_by_profile),
            "value_indexes": list(value_index_by_profile.values())}


async def frame_info(ch: ClickHouse, tenant: str, frame_ids) -> dict[int, tuple[str, str, int, bool]]:
    """frame id → (codeSignature, function, line, is_address)."""
    rows = await ch.rows(FRAME_INFO, {"tenant": tenant, "frame_ids": list(frame_ids)})
    return {fid: (name, function, line, bool(is_address)) for fid, name, function, line, is_address in rows}


async def stacks(ch: ClickHouse, tenant: str, task_id: str, value_index_by_profile: dict[str, int],
                 granularity: str) -> list[tuple[list[str], int]]:
    """Merged stacks (frame names root→leaf) with the chosen sample type's value."""
    with metrics.QUERY_SECONDS.labels("stacks").time():
        rows = await ch.rows(_with_frames(STACKS, granularity), _params(tenant, task_id, value_index_by_profile))
    info = await frame_info(ch, tenant, {f for frames, _ in rows for f in frames})
    return [([info[f][0] for f in frames], v) for frames, v in rows]


async def stacks_all_values(ch: ClickHouse, tenant: str, task_id: str, profile_ids: list[str]
                            ) -> list[tuple[list[tuple[str, int, bool]], list[int]]]:
    """Merged line-level stacks as (function, line, is_address) frames with every sample type."""
    with metrics.QUERY_SECONDS.labels("stacks_all_values").time():
        rows = await ch.rows(STACKS_ALL_VALUES, {"tenant": tenant, "task_id": task_id, "profile_ids": profile_ids})
    info = await frame_info(ch, tenant, {f for frames, _ in rows for f in frames})
    return [([info[f][1:] for f in frames], list(v)) for frames, v in rows]


async def latest_profiles(ch: ClickHouse, tenant: str, task_id: str) -> list[StoredProfile]:
    """The newest stored profile of each instance of the task (a new upload replaces the old)."""
    rows = await ch.rows(LATEST_PROFILES, {"tenant": tenant, "task_id": task_id})
    return [StoredProfile(i, p, list(t), d, pt, per) for i, p, t, d, pt, per in rows]


async def node_columns(ch: ClickHouse, tenant: str, task_id: str, value_index_by_profile: dict[str, int],
                       granularity: str) -> NodeColumns:
    """Every node with its sums, the root included, as columns. value_index_by_profile: the
    1-based position of the chosen sample type in each profile's values."""
    params = _params(tenant, task_id, value_index_by_profile)
    with metrics.QUERY_SECONDS.labels("node_sums").time():
        t = await ch.arrow(_with_frames(NODE_SUMS, granularity), params)
    if t.num_rows == 0:
        return NodeColumns.empty()
    frame_ids = np.asarray(t.column("frame_id").to_numpy(), dtype=np.uint64)
    unique_ids, name_index = np.unique(frame_ids, return_inverse=True)
    with metrics.QUERY_SECONDS.labels("frame_names").time():
        names = dict(await ch.rows(FRAME_NAMES, {"tenant": tenant, "frame_ids": unique_ids.tolist()}))
    return NodeColumns(
        node=np.asarray(t.column("node").to_numpy(), dtype=np.uint64),
        parent=np.asarray(t.column("parent").to_numpy(), dtype=np.uint64),
        depth=np.asarray(t.column("depth").to_numpy(), dtype=np.int64),
        name=name_index.astype(np.int64),
        total=np.asarray(t.column("total").to_numpy(), dtype=np.int64),
        self_value=np.asarray(t.column("self").to_numpy(), dtype=np.int64),
        names=[names.get(int(f), "root" if f == 0 else f"<frame {int(f):#x}>") for f in unique_ids],
    )
