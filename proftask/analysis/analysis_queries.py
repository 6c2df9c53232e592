"""SQL over the profile tables: the flame graph and the top table summed from the node and
function tables the processor folded at ingest (m0004), and the merged stacks the exports are
made of (samples × stacks)."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from proftask import metrics
from proftask.clickhouse.client import ClickHouse
from proftask.core.flamegraph import NodeColumns
from proftask.core.node_table import NodePlaces, NodeShares, NodeSums
from proftask.core.spread import Spread
from proftask.core.top import FunctionRow
from proftask.pprof.encode import Timing
from proftask.analysis.answer_threads import off_loop

# Without this, chDB 26.9 may reorder these joins into a plan that never finishes.
JOIN_SETTINGS = "SETTINGS query_plan_optimize_join_order_limit = 0"
FRAME_COLUMNS = {"function": "function_frames", "line": "line_frames"}


@dataclasses.dataclass(frozen=True)
class StoredProfile:
    instance_id: str
    profile_id: str
    sample_types: list[str]
    default_index: int
    period_type: str
    period: int
    # per sample type, the sum of its positive values and of its negative ones (m0010); a row
    # written before has its signed totals' parts
    positive_totals: list[int] = dataclasses.field(default_factory=list)
    negative_totals: list[int] = dataclasses.field(default_factory=list)
    time_nanos: int = 0      # when it began (epoch ns; 0: unknown, as in rows written before m0011)
    duration_nanos: int = 0  # how long it ran
    default_named: bool = True  # the profile names its default (m0012; rows before count as naming it)

    @property
    def timing(self) -> Timing:
        return Timing(self.period, self.time_nanos, self.duration_nanos)

    def value_bounds(self, column: int) -> tuple[int, int]:
        """(positive sum, negative sum) of the values of the sample type at `column` (core.value_range)."""
        return self.positive_totals[column], self.negative_totals[column]


# Each instance's newest upload. Two uploads of the same millisecond are told apart by their
# profile ids: without that, argMax took whichever row it read first, which a merge could change.
LATEST_PROFILES = """
WITH (uploaded_at, profile_id) AS newest
SELECT instance_id, argMax(profile_id, newest), argMax(sample_types, newest),
       argMax(default_index, newest), argMax(period_type, newest), argMax(period, newest),
       argMax(totals, newest), argMax(positive_totals, newest), argMax(negative_totals, newest),
       argMax(time_nanos, newest), argMax(duration_nanos, newest), argMax(default_named, newest)
FROM profiles
WHERE tenant = {tenant:String} AND task_id = {task_id:String}
GROUP BY instance_id
ORDER BY instance_id
"""

# stack_values: per stack, the chosen sample type summed over the chosen profiles. One value
# per (profile, stack): redelivered copies of a row count once. A stack only makes nodes where
# its value is not zero, as in pprof.
PROFILE_STACK_VALUES = """
    SELECT profile_id, stack_id,
           any(arrayElement(values, transform(profile_id, {profile_ids:Array(String)},
                                               {value_indexes:Array(UInt16)}, toUInt16(0)))) AS pv
    FROM samples
    WHERE tenant = {tenant:String} AND task_id = {task_id:String}
      AND profile_id IN {profile_ids:Array(String)}
    GROUP BY profile_id, stack_id
    HAVING pv != 0"""
CHOSEN_TYPE = "\nstack_values AS (SELECT stack_id, sum(pv) AS v FROM (" + PROFILE_STACK_VALUES + ") GROUP BY stack_id)"

# Per chosen profile and stack, its values: one row per (profile, stack), redelivered copies once.
PROFILE_STACK_ALL_VALUES = """
        SELECT profile_id, stack_id, any(values) AS pv FROM samples
        WHERE tenant = {tenant:String} AND task_id = {task_id:String}
          AND profile_id IN {profile_ids:Array(String)}
        GROUP BY profile_id, stack_id"""
# stack_values: per stack, every sample type summed (profiles of the same sample types).
ALL_TYPES = ("\nstack_values AS (\n    SELECT stack_id, sumForEach(pv) AS v\n    FROM (" + PROFILE_STACK_ALL_VALUES
             + "\n    )\n    GROUP BY stack_id\n)")
# stack_values: per stack, the merge's sample types summed, each profile's from its own columns
# ({columns}: 1-based, per profile in the order of {profile_ids}; found by transform, a hash
# lookup, once per profile and stack).
PICKED_TYPES = ("""
stack_values AS (
    SELECT stack_id,
           sumForEach(arrayMap(c -> pv[c], {columns:Array(Array(UInt16))}[
               transform(profile_id, {profile_ids:Array(String)}, {positions:Array(UInt32)}, toUInt32(0))])) AS v
    FROM (""" + PROFILE_STACK_ALL_VALUES + "\n    )\n    GROUP BY stack_id\n)")

# The frames of each chosen stack at the granularity of {frames_column}.
STACK_FRAMES = """
stack_frames AS (
    SELECT stack_id, any({frames_column}) AS frames FROM stacks
    WHERE tenant = {tenant:String} AND stack_id IN (SELECT stack_id FROM stack_values)
    GROUP BY stack_id
)"""

STACKS = """
SELECT sf.frames, sv.v FROM stack_values AS sv INNER JOIN stack_frames AS sf USING stack_id
"""

# Names of the frames of the chosen stacks, found by a subquery: a literal list of frame ids
# is parsed as SQL text, and ClickHouse takes ~40 s to parse 200k of them.
# A frame's file: the first in byte order of those its profiles named (m0013), whatever the
# order they were written in; else frame_names' (a processor older than m0013 wrote it alone).
FRAME_INFO = """
SELECT f.frame_id, f.name, f.function, f.line, f.is_address, if(ff.file != '', ff.file, f.file) FROM (
    SELECT frame_id, any(name) AS name, any(function) AS function, any(line) AS line, any(is_address) AS is_address,
           anyIf(file, file != '') AS file
    FROM frame_names
    WHERE tenant = {tenant:String} AND frame_id IN (SELECT arrayJoin(frames) FROM stack_frames)
    GROUP BY frame_id
) AS f LEFT JOIN (
    SELECT frame_id, min(file) AS file FROM function_files
    WHERE tenant = {tenant:String} AND frame_id IN (SELECT arrayJoin(frames) FROM stack_frames)
    GROUP BY frame_id
) AS ff USING frame_id
"""


# Each chosen profile's 1-based position of the chosen sample type.
CHOSEN_INDEX = "transform(profile_id, {profile_ids:Array(String)}, {value_indexes:Array(UInt16)}, toUInt16(0))"

# The node and function values (folded at ingest, m0005) of the chosen profiles, each at its own
# position of the chosen sample type; FINAL reads one copy of a profile however often it was written.
# A row written with no ids has those of the nearest row before it (the same profile and
# granularity, a lower sample type: profile_rows._packed), which the ASOF JOIN finds; a row
# with no values either (a sample type with no function) adds nothing and is not joined. (Reading
# both in one GROUP BY copies the arrays into aggregate states: 2.2× the time for ten profiles.)
CHOSEN_PARTS = """
    SELECT v.profile_id AS profile_id, i.{ids} AS {ids}, v.{a} AS {a}, v.{b} AS {b}
    FROM (SELECT profile_id, type_index, {a}, {b} FROM {table} FINAL
          WHERE tenant = {tenant:String} AND task_id = {task_id:String} AND granularity = {granularity:String}
            AND profile_id IN {profile_ids:Array(String)} AND type_index + 1 = """ + CHOSEN_INDEX + """
            AND notEmpty({b})) AS v
    ASOF INNER JOIN
         (SELECT profile_id, type_index, {ids} FROM {table} FINAL
          WHERE tenant = {tenant:String} AND task_id = {task_id:String} AND granularity = {granularity:String}
            AND profile_id IN {profile_ids:Array(String)} AND type_index < """ + CHOSEN_INDEX + """
            AND notEmpty({ids})) AS i
    ON v.profile_id = i.profile_id AND v.type_index >= i.type_index"""
CHOSEN_NODE_VALUES = (CHOSEN_PARTS.replace("{table}", "node_values").replace("{ids}", "node_ids")
                      .replace("{a}", "self_values").replace("{b}", "total_values"))
CHOSEN_FUNCTION_VALUES = (CHOSEN_PARTS.replace("{table}", "function_values").replace("{ids}", "frame_ids")
                          .replace("{a}", "flat_values").replace("{b}", "cum_values"))

# One GROUP BY node: a merged node's sums are the sums of the profiles' node values.
MERGED_SUMS = """
SELECT node, sum(node_total) AS total, sum(node_self) AS self
FROM (""" + CHOSEN_NODE_VALUES + """)
ARRAY JOIN node_ids AS node, total_values AS node_total, self_values AS node_self
GROUP BY node
"""

# Only one profile chosen: its node values are the sums, no GROUP BY (a profile's node ids are
# distinct: the processor folds each path once).
SINGLE_SUMS = """
SELECT node, node_total AS total, node_self AS self
FROM (""" + CHOSEN_NODE_VALUES + """)
ARRAY JOIN node_ids AS node, total_values AS node_total, self_values AS node_self
"""

# The task's merged tree as the processor summed it at ingest (proftask/processing/task_folds.py),
# when its row sums exactly the chosen profiles: no row, no nodes (the caller then sums them).
# Any row naming these profiles holds the same sums, so no FINAL: the newest rows of a task
# name other sets and are not read past their profile_ids. The row places its nodes itself
# (parents, depths, frame_ids: m0007), heaviest first; a row from before m0007 has no places
# and is not read (its task's analyses sum the profiles until the row is written again).
TASK_FOLD_ROW = """
SELECT node_ids, self_values, total_values, parents, depths, frame_ids{spread_row}{row_extra}
FROM task_folds
WHERE tenant = {tenant:String} AND task_id = {task_id:String} AND granularity = {granularity:String}
  AND sample_type = {sample_type:String} AND profile_ids = {sorted_profile_ids:Array(String)}
  AND length(parents) = length(node_ids)
LIMIT 1"""
TASK_FOLD_PLACED = """
SELECT node, parent, depth, frame_id, node_total AS total, node_self AS self{spread_out}
FROM (""" + TASK_FOLD_ROW.replace("{row_extra}", "") + """)
ARRAY JOIN node_ids AS node, total_values AS node_total, self_values AS node_self, parents AS parent,
           depths AS depth, frame_ids AS frame_id{spread_join}
"""
# The first view of a task: as HEAVIEST_OF below, from the row's prefix (its nodes are heaviest
# first, ancestors before their descendants: node_table.heaviest_first) up to the last node tied
# with the max_nodes-th; the whole tree's counts come from the arrays, nothing is sorted here.
TASK_FOLD_HEAVIEST_PLACED = """
SELECT node, parent, depth, frame_id, node_total AS total, node_self AS self, node_count, min_self,
       min_total{spread_out}
FROM (""" + TASK_FOLD_ROW.replace("{row_extra}", """,
             length(node_ids) AS node_count, arrayMin(self_values) AS min_self,
             arrayMin(arrayMap((n, t) -> if(n = 0, 0, t), node_ids, total_values)) AS min_total,
             arrayCount(t -> t >= total_values[least({max_nodes:UInt64}, node_count)], total_values) AS kept""") + """)
ARRAY JOIN arraySlice(node_ids, 1, kept) AS node, arraySlice(total_values, 1, kept) AS node_total,
           arraySlice(self_values, 1, kept) AS node_self, arraySlice(parents, 1, kept) AS parent,
           arraySlice(depths, 1, kept) AS depth, arraySlice(frame_ids, 1, kept) AS frame_id{spread_join}
"""
# With the row's spread of each node across the instances (m0009), when an answer asks for it
# (instanceStats; ~8 MB more for a large tree otherwise read for nothing). A row from before
# m0009 has none: its arrays are read as zeros, and has_spread 0.
SPREAD_ROW = ", instances, share_mins, share_maxes, length(instances) = length(node_ids) AS has_spread"
SPREAD_OUT = ", spread_instances, spread_min, spread_max, has_spread"


def _with_spread(sql: str, join: str) -> str:
    return sql.replace("{spread_row}", SPREAD_ROW).replace("{spread_out}", SPREAD_OUT).replace("{spread_join}", join)


def _without_spread(sql: str) -> str:
    return sql.replace("{spread_row}", "").replace("{spread_out}", "").replace("{spread_join}", "")


TASK_FOLD_PLACED_SPREAD = _with_spread(TASK_FOLD_PLACED, """,
           arrayResize(instances, length(node_ids)) AS spread_instances,
           arrayResize(share_mins, length(node_ids)) AS spread_min,
           arrayResize(share_maxes, length(node_ids)) AS spread_max""")
TASK_FOLD_HEAVIEST_PLACED_SPREAD = _with_spread(TASK_FOLD_HEAVIEST_PLACED, """,
           arrayResize(arraySlice(instances, 1, kept), kept) AS spread_instances,
           arrayResize(arraySlice(share_mins, 1, kept), kept) AS spread_min,
           arrayResize(arraySlice(share_maxes, 1, kept), kept) AS spread_max""")

# The heaviest nodes of the merged tree, ties at the cut included, with how many nodes the tree
# has and its least values: with no negative value a node is never lighter than its child, so
# these rows hold the first max_nodes of the tree's order (flamegraph._kept_rows) and every
# ancestor of them; with negative values (delta profiles) the caller reads the whole tree.
HEAVIEST_OF = """
SELECT node, total, self, count() OVER () AS node_count, min(self) OVER () AS min_self,
       min(if(node = 0, 0, total)) OVER () AS min_total
FROM ({sums})
ORDER BY total DESC
LIMIT {max_nodes:UInt64} WITH TIES
"""
HEAVIEST_SUMS = HEAVIEST_OF.replace("{sums}", MERGED_SUMS)

# Summed nodes with their place in the tree (parent, depth, frame) and their frame's name, in
# the query that sums them (no list of ids sent back, no second pass over the values). The
# summed rows are the side ClickHouse hashes (the right one) and the tenant's node_paths stream
# past them; then the placed nodes stream past the tenant's frame names, hashed (~50k names for
# ~425k nodes: 0.19 s for a large tree, where hashing the nodes again took 0.23 s). ANY: the
# copies of a row a ReplacingMergeTree has not merged yet are equal, one is taken. A node
# without a row (the root) gets parent, depth and frame 0 and `placed` 0 (which MERGED_SUMS_READ
# selects), a frame without a name `named` 0.
# The name comes as LowCardinality: one string per frame, not per node, and pyarrow reads it as
# a dictionary.
PLACED_NODES = """
SELECT node, parent, depth, frame_id, total, self{extra}
FROM (SELECT node, parent, depth, frame_id, toUInt8(1) AS placed FROM node_paths WHERE tenant = {tenant:String}) AS p
RIGHT ANY JOIN ({sums}) AS s USING node
"""
NAMED_PLACED = """
SELECT node, parent, depth, frame_id, total, self{extra}, toLowCardinality(f.name) AS name, f.named AS named
FROM ({placed}) AS n
LEFT ANY JOIN (SELECT frame_id, name, toUInt8(1) AS named FROM frame_names WHERE tenant = {tenant:String}) AS f
USING frame_id
"""


def _named_nodes_sql(sums: str, extra: str = "") -> str:
    return NAMED_PLACED.replace("{placed}", PLACED_NODES.replace("{sums}", sums)).replace("{extra}", extra)


MERGED_NODES = _named_nodes_sql(MERGED_SUMS)
# a task fold's answers by whether they carry the spread (m0009)
TASK_FOLD_NODES = {
    False: NAMED_PLACED.replace("{placed}", _without_spread(TASK_FOLD_PLACED)).replace("{extra}", ""),
    True: NAMED_PLACED.replace("{placed}", TASK_FOLD_PLACED_SPREAD).replace("{extra}", SPREAD_OUT)}
SINGLE_NODES = _named_nodes_sql(SINGLE_SUMS)
HEAVIEST_COUNTS = ", node_count, min_self, min_total"
HEAVIEST_NODES = _named_nodes_sql(HEAVIEST_SUMS, HEAVIEST_COUNTS)
SINGLE_HEAVIEST_NODES = _named_nodes_sql(HEAVIEST_OF.replace("{sums}", SINGLE_SUMS), HEAVIEST_COUNTS)
TASK_FOLD_HEAVIEST_NODES = {
    False: NAMED_PLACED.replace("{placed}", _without_spread(TASK_FOLD_HEAVIEST_PLACED)).replace(
        "{extra}", HEAVIEST_COUNTS),
    True: NAMED_PLACED.replace("{placed}", TASK_FOLD_HEAVIEST_PLACED_SPREAD).replace(
        "{extra}", HEAVIEST_COUNTS + SPREAD_OUT)}

# pprof's -top: flat and cum per function summed over the profiles (cum counts a function once
# per sample in each profile's function values, so the sums do too), with each function's name.
MERGED_FUNCTIONS = """
WITH merged AS (
    SELECT frame_id, sum(function_flat) AS flat, sum(function_cum) AS cum
    FROM (""" + CHOSEN_FUNCTION_VALUES + """)
    ARRAY JOIN frame_ids AS frame_id, flat_values AS function_flat, cum_values AS function_cum
    GROUP BY frame_id)
SELECT f.frame_id, n.name, n.named, f.flat, f.cum
FROM merged AS f
LEFT JOIN (SELECT frame_id, any(name) AS name, 1 AS named FROM frame_names
           WHERE tenant = {tenant:String} AND frame_id IN (SELECT frame_id FROM merged)
           GROUP BY frame_id) AS n USING frame_id
"""

# Each chosen profile's root total: the sum of its chosen sample type's values, which `profiles`
# holds (a few bytes a profile, where the node values are ~3 MB of arrays to search for the root).
PROFILE_ROOT_TOTALS = """
SELECT profile_id, any(arrayElement(totals, transform(profile_id, {profile_ids:Array(String)},
                                                     {value_indexes:Array(UInt16)}, toUInt16(0))))
FROM profiles
WHERE tenant = {tenant:String} AND task_id = {task_id:String} AND profile_id IN {profile_ids:Array(String)}
GROUP BY profile_id
"""

FOLDED_PROFILE_NODE_TOTALS = """
SELECT indexOf({profile_ids:Array(String)}, profile_id) - 1 AS profile, node, node_total
FROM (""" + CHOSEN_NODE_VALUES + """)
ARRAY JOIN node_ids AS node, total_values AS node_total
WHERE node != 0 AND node IN {nodes:Array(UInt64)}
"""


def _sql(stack_values: str, body: str, granularity: str) -> str:
    ctes = stack_values + "," + STACK_FRAMES.replace("{frames_column}", FRAME_COLUMNS[granularity])
    return "WITH " + ctes + "\n" + body + JOIN_SETTINGS


def _params(tenant: str, task_id: str, value_index_by_profile: dict[str, int]) -> dict:
    return {"tenant": tenant, "task_id": task_id, "profile_ids": list(value_index_by_profile),
            "value_indexes": list(value_index_by_profile.values())}


def _task_fold_params(params: dict, sample_type: str | None) -> dict | None:
    """The parameters of a TASK_FOLD_* query, None when no task fold can hold the selection."""
    if sample_type is None or not params["profile_ids"]:
        return None
    return {**params, "sample_type": sample_type, "sorted_profile_ids": sorted(params["profile_ids"])}


async def latest_profiles(ch: ClickHouse, tenant: str, task_id: str) -> list[StoredProfile]:
    """The newest upload of each instance of the task (a new upload replaces the old)."""
    rows = await ch.rows(LATEST_PROFILES, {"tenant": tenant, "task_id": task_id})
    return [StoredProfile(i, p, list(t), d, pt, per, *_value_bounds(totals, positive, negative), time, duration,
                          bool(named))
            for i, p, t, d, pt, per, totals, positive, negative, time, duration, named in rows]


def _value_bounds(totals: list[int], positive: list[int], negative: list[int]) -> tuple[list[int], list[int]]:
    if len(positive) == len(negative) == len(totals):
        return list(positive), list(negative)
    return [max(t, 0) for t in totals], [min(t, 0) for t in totals]  # written before m0010


async def _frame_info(ch: ClickHouse, stack_values: str, params: dict,
                      granularity: str) -> dict[int, tuple[str, str, int, bool, str]]:
    """frame id → (codeSignature, function, line, is_address, file) for the frames of the chosen
    stacks; file is "" where the profile named none (or its frame was written before m0008)."""
    with metrics.QUERY_SECONDS.labels("frame_names").time():
        t = await ch.arrow(_sql(stack_values, FRAME_INFO, granularity), params)
    return await off_loop(_frames_by_id, t)


def _frames_by_id(t) -> dict[int, tuple[str, str, int, bool, str]]:
    return {fid: (name, function, line, bool(is_address), file)
            for fid, name, function, line, is_address, file in _python_rows(t)}


def _python_rows(t) -> Iterator[tuple]:
    """An Arrow result's rows as Python tuples: made in an answer thread, not by ch.rows in
    ClickHouse's (a large task's stacks held it, and every other query and insert of the
    process, for most of a second)."""
    return zip(*(column.to_pylist() for column in t.columns), strict=True)


async def node_columns(ch: ClickHouse, tenant: str, task_id: str, value_index_by_profile: dict[str, int],
                       granularity: str, sample_type: str | None = None, with_spread: bool = False) -> NodeColumns:
    """Every node with its sums, the root included, as columns. value_index_by_profile: the
    1-based position of the chosen sample type (named sample_type) in each profile's values.
    with_spread: with the nodes' spread across instances where a task's merged tree holds it."""
    params = {**_params(tenant, task_id, value_index_by_profile), "granularity": granularity}
    folded = _task_fold_params(params, sample_type)
    if folded is not None:
        with metrics.QUERY_SECONDS.labels("task_fold_nodes").time():
            t = await ch.arrow(TASK_FOLD_NODES[with_spread], folded)
        if t.num_rows:
            return await off_loop(_node_columns, t)
    sql = SINGLE_NODES if len(value_index_by_profile) == 1 else MERGED_NODES
    with metrics.QUERY_SECONDS.labels("node_sums").time():
        t = await ch.arrow(sql, params)
    return await off_loop(_node_columns, t)


# MERGED_SUMS placed, sorted by node, with (on the root's row, node 0, which every profile's
# values hold) the profiles whose values were read: on a cluster a replica may not have them all
# yet, nor every node's path (`placed` 0: node_paths is sharded by node, node_values by task).
# And each node's shares of the profiles' totals (node_table.NodeShares), a profile's total
# being its root's (node 0; first among the ids the processor writes, not in rows m0005 copied).
MERGED_SUMS_READ = PLACED_NODES.replace("{sums}", """
    SELECT node, sum(node_total) AS total, sum(node_self) AS self, groupArrayIf(profile_id, node = 0) AS profiles,
           countIf(node_total != 0 AND root_total != 0) AS present,
           minIf(node_total / root_total, node_total != 0 AND root_total != 0) AS low,
           maxIf(node_total / root_total, node_total != 0 AND root_total != 0) AS high
    FROM (SELECT *, total_values[indexOf(node_ids, 0)] AS root_total FROM (""" + CHOSEN_NODE_VALUES + """))
    ARRAY JOIN node_ids AS node, total_values AS node_total, self_values AS node_self
    GROUP BY node""").replace("{extra}", ", profiles, placed, present, low, high") + "ORDER BY node\n"


async def merged_node_sums(ch: ClickHouse, tenant: str, task_id: str, value_index_by_profile: dict[str, int],
                           granularity: str) -> tuple[NodeSums, frozenset[str]]:
    """The chosen profiles' node values summed, sorted by node (what a task fold holds), and the
    profiles they sum: those whose values the read found, in one read. Placed, unless a node's
    path was not found (places None: no row is written from these sums)."""
    params = {**_params(tenant, task_id, value_index_by_profile), "granularity": granularity}
    t = await ch.arrow(MERGED_SUMS_READ, params)
    if t.num_rows == 0:
        return NodeSums.empty(), frozenset()
    node = t.column("node").to_numpy().astype(np.uint64, copy=False)
    read = frozenset(t.column("profiles")[0].as_py()) if node[0] == 0 else frozenset()
    places: NodePlaces | None = None
    if ((t.column("placed").to_numpy() == 1) | (node == 0)).all():
        places = NodePlaces(t.column("parent").to_numpy().astype(np.uint64, copy=False),
                            t.column("depth").to_numpy().astype(np.uint32, copy=False),
                            t.column("frame_id").to_numpy().astype(np.uint64, copy=False))
    present = t.column("present").to_numpy().astype(np.int64)
    shares = NodeShares(present, np.where(present > 0, t.column("low").to_numpy(), np.inf),
                        np.where(present > 0, t.column("high").to_numpy(), -np.inf))
    return NodeSums(node, t.column("self").to_numpy().astype(np.int64, copy=False),
                    t.column("total").to_numpy().astype(np.int64, copy=False), places, shares), read


async def heaviest_node_columns(ch: ClickHouse, tenant: str, task_id: str, value_index_by_profile: dict[str, int],
                                granularity: str, max_nodes: int, sample_type: str | None = None,
                                with_spread: bool = False) -> tuple[NodeColumns, int] | None:
    """The heaviest max_nodes nodes (and any tied with the last) with their ancestors, and how
    many nodes the whole tree has; None when the tree has negative values (read it whole).
    with_spread: as node_columns."""
    params = {**_params(tenant, task_id, value_index_by_profile), "granularity": granularity,
              "max_nodes": max_nodes}
    t = None
    folded = _task_fold_params(params, sample_type)
    if folded is not None:
        with metrics.QUERY_SECONDS.labels("task_fold_heaviest_nodes").time():
            t = await ch.arrow(TASK_FOLD_HEAVIEST_NODES[with_spread], folded)
    if t is None or t.num_rows == 0:  # no task fold of these profiles: they are summed here
        sql = SINGLE_HEAVIEST_NODES if len(value_index_by_profile) == 1 else HEAVIEST_NODES
        with metrics.QUERY_SECONDS.labels("heaviest_nodes").time():
            t = await ch.arrow(sql, params)
    if t.num_rows == 0:
        return NodeColumns.empty(), 1
    if t.column("min_self")[0].as_py() < 0 or t.column("min_total")[0].as_py() < 0:
        return None
    return await off_loop(_node_columns, t), int(t.column("node_count")[0].as_py())


def _node_columns(t) -> NodeColumns:
    """NodeColumns from the rows of NAMED_PLACED: names are the frames' names (the query's
    dictionary), "root" for the root, `<frame 0x…>` for a frame without a name row."""
    if t.num_rows == 0:
        return NodeColumns.empty()
    t = t.unify_dictionaries()
    name_column = t.column("name")
    names = name_column.chunk(0).dictionary.to_pylist() if name_column.num_chunks else []
    name = np.concatenate([chunk.indices.to_numpy(zero_copy_only=False) for chunk in name_column.chunks]
                          ).astype(np.int64)
    frame_id = t.column("frame_id").to_numpy()
    unnamed = np.flatnonzero(t.column("named").to_numpy() == 0)
    if len(unnamed):
        ids, first_row = np.unique(frame_id[unnamed], return_inverse=True)
        name[unnamed] = len(names) + first_row.reshape(-1)
        names += ["root" if f == 0 else f"<frame {f:#x}>" for f in ids.tolist()]
    node = t.column("node").to_numpy().astype(np.uint64, copy=False)
    spread = None
    if "has_spread" in t.column_names and t.column("has_spread")[0].as_py():  # a task fold's (m0009)
        depth = t.column("depth").to_numpy()
        instances = t.column("spread_instances").to_numpy().astype(np.int64)
        spread = Spread(instances, t.column("spread_min").to_numpy(), t.column("spread_max").to_numpy(),
                        int(instances[depth == 0][0]) if (depth == 0).any() else 0)
    return NodeColumns(
        node=node,
        parent=t.column("parent").to_numpy().astype(np.uint64, copy=False),
        depth=t.column("depth").to_numpy().astype(np.int64),
        name=name,
        total=t.column("total").to_numpy().astype(np.int64, copy=False),
        self_value=t.column("self").to_numpy().astype(np.int64, copy=False),
        names=names,
        spread=spread,
    )


async def top_rows(ch: ClickHouse, tenant: str, task_id: str, value_index_by_profile: dict[str, int],
                   granularity: str) -> tuple[list[FunctionRow], int]:
    """pprof's -top rows of the merged profiles (unsorted) and the merged root total."""
    params = {**_params(tenant, task_id, value_index_by_profile), "granularity": granularity}
    with metrics.QUERY_SECONDS.labels("top").time():
        merged = await ch.arrow(MERGED_FUNCTIONS, params)
        roots = await ch.rows(PROFILE_ROOT_TOTALS, params)
    return await off_loop(_function_rows, merged), sum(int(t) for _, t in roots)


def _function_rows(t) -> list[FunctionRow]:
    # a frame of a function without a name is named "", as in the tree; one without a name row
    # (not written yet) is named by its id
    return [FunctionRow(name if named else f"<frame {int(fid):#x}>", int(flat), int(cum))
            for fid, name, named, flat, cum in _python_rows(t)]


async def stacks(ch: ClickHouse, tenant: str, task_id: str, value_index_by_profile: dict[str, int],
                 granularity: str) -> list[tuple[list[str], int]]:
    """Merged stacks (frame names root→leaf) with the chosen sample type's value."""
    params = _params(tenant, task_id, value_index_by_profile)
    with metrics.QUERY_SECONDS.labels("stacks").time():
        t = await ch.arrow(_sql(CHOSEN_TYPE, STACKS, granularity), params)
    info = await _frame_info(ch, CHOSEN_TYPE, params, granularity)
    return await off_loop(_named_stacks, t, info)


def _named_stacks(t, info: dict[int, tuple[str, str, int, bool, str]]) -> list[tuple[list[str], int]]:
    return [([info[f][0] for f in frames], v) for frames, v in _python_rows(t)]


async def stacks_all_values(ch: ClickHouse, tenant: str, task_id: str, profile_ids: list[str],
                            columns: list[list[int]] | None = None
                            ) -> tuple[list[tuple[list[tuple[str, int, bool]], list[int]]], dict[str, str]]:
    """Merged line-level stacks as (function, line, is_address) frames with the values of each
    profile's `columns` (0-based, core.merged_sample_types; None: every value of profiles of the
    same sample types) summed, and the source file of each of their functions that has one."""
    params: dict = {"tenant": tenant, "task_id": task_id, "profile_ids": profile_ids}
    stack_values = ALL_TYPES
    if columns is not None:
        stack_values = PICKED_TYPES
        params |= {"columns": [[c + 1 for c in picked] for picked in columns],
                   "positions": list(range(1, len(profile_ids) + 1))}
    with metrics.QUERY_SECONDS.labels("stacks_all_values").time():
        # in the order of their ids: the same profiles make the same bytes (the file's locations
        # are numbered in the order of its samples)
        t = await ch.arrow(_sql(stack_values, STACKS + "ORDER BY stack_id\n", "line"), params)
    info = await _frame_info(ch, stack_values, params, "line")
    return await off_loop(_stacks_with_files, t, info)


def _stacks_with_files(t, info: dict[int, tuple[str, str, int, bool, str]]
                       ) -> tuple[list[tuple[list[tuple[str, int, bool]], list[int]]], dict[str, str]]:
    files: dict[str, str] = {}  # a function's: the first in byte order of its frames' (a file per line)
    for _, function, _, is_address, file in info.values():
        if file and not is_address and (function not in files or file < files[function]):
            files[function] = file
    return [([info[f][1:4] for f in frames], list(v)) for frames, v in _python_rows(t)], files


@dataclasses.dataclass
class ProfileNodeTotals:
    """Per chosen profile, the totals of some nodes, as columns (a row per profile and node it has)."""
    profile_ids: list[str]
    profile: np.ndarray  # int64: the row's profile, a position in profile_ids
    node: np.ndarray     # uint64
    total: np.ndarray    # int64

    @classmethod
    def empty(cls) -> ProfileNodeTotals:
        return cls([], np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.int64))

    def rows(self) -> list[tuple[str, int, int]]:
        return [(self.profile_ids[p], n, t)
                for p, n, t in zip(self.profile.tolist(), self.node.tolist(), self.total.tolist(), strict=True)]


async def profile_node_totals(ch: ClickHouse, tenant: str, task_id: str, value_index_by_profile: dict[str, int],
                              granularity: str, nodes: list[int]) -> tuple[ProfileNodeTotals, dict[str, int]]:
    """The given nodes' totals in each profile (columns: ~100k rows for 10k nodes of ten large
    profiles), and every profile's root total."""
    params = {**_params(tenant, task_id, value_index_by_profile), "granularity": granularity, "nodes": nodes}
    with metrics.QUERY_SECONDS.labels("profile_node_totals").time():
        t = await ch.arrow(FOLDED_PROFILE_NODE_TOTALS, params)
        roots = await ch.rows(PROFILE_ROOT_TOTALS, params)
    totals = ProfileNodeTotals(params["profile_ids"], t.column("profile").to_numpy().astype(np.int64),
                               t.column("node").to_numpy().astype(np.uint64, copy=False),
                               t.column("node_total").to_numpy().astype(np.int64, copy=False))
    return totals, {p: int(v) for p, v in roots}
