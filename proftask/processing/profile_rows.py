"""Message processor for ProfileUploaded: the pprof bytes become frame, stack, sample and
profile rows (pure; the same rows for the same event, which makes rewrites harmless).

Stacks and samples are columnar (numpy → Arrow), since a large profile has ~20k stacks and
~500k frame references."""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from proftask.core.node_table import NodePlaces, StackFold, sorted_lookup
from proftask.events.v1 import events_pb2 as pb
from proftask.pprof import native
from proftask.pprof.decode import ProfileError, decompress, parse_profile
from proftask.pprof.fold import FUNCTION, LINE, fold_stacks, frame_name, gather_segments
from proftask.pprof.prune import regexps_not_utf8
from proftask.pprof.v1 import profile_pb2



def hash64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def frame_id(name: str) -> int:
    return hash64(name.encode("utf-8", "surrogatepass"))


def _list_column(offsets: np.ndarray, flat: np.ndarray) -> pa.ListArray:
    return pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), pa.array(flat))


@dataclasses.dataclass
class ProfileRows:
    tenant: str
    task_id: str
    instance_id: str
    profile_id: str
    uploaded_at: int            # epoch ms of the upload event (what retention counts from)
    profile: dict               # the `profiles` row
    frame_names: pa.Table       # `frame_names` rows
    stack_ids: np.ndarray       # uint64 [n]
    stack_offsets: np.ndarray   # int64 [n + 1] into the flat frame arrays
    function_frames: np.ndarray  # uint64, flat
    line_frames: np.ndarray      # uint64, flat
    values: np.ndarray           # int64 [n, n_types]
    sample_types: list[str]
    # `function_files` rows (the frames that name a file) and a key of each (frame, file) pair,
    # made with the fold, off the writer's event loop (function_files)
    function_files: pa.Table
    function_file_keys: np.ndarray
    # the folded profile as numpy (what the CPU pool sends back; Arrow tables are made of it
    # where it is written): every node's place in the tree at both granularities, the root
    # once, and per (granularity, sample type) the node and function values
    node_paths: dict[str, np.ndarray] | None = None
    node_parts: list[dict] | None = None
    function_parts: list[dict] | None = None
    # where each granularity's node paths end (FUNCTION, LINE): the root is path 0, and each
    # granularity's paths follow the one before, ascending by node
    node_path_ends: list[int] | None = None

    def places(self, granularity: str, nodes: np.ndarray) -> NodePlaces:
        """Each node's place in the tree at a granularity: the root's is 0s. Every node of the
        granularity's parts has one."""
        paths, ends = self.node_paths or _no_paths(), self.node_path_ends or [1, 1]
        section = slice(1, ends[0]) if granularity == FUNCTION else slice(ends[0], ends[1])
        known = paths["node"][section]
        if len(nodes) == len(known) + 1 and nodes[0] == 0 and np.array_equal(nodes[1:], known):
            # the root and every node of the granularity (no stack of a zero value): the paths in
            # the same order, not looked up (~0.01 s a large profile)
            at, found = np.arange(-1, len(known)).clip(0), nodes != 0
        else:
            at, found = sorted_lookup(known, nodes)
        if not (found | (nodes == 0)).all():
            raise ValueError(f"profile {self.profile_id}: {int((~found & (nodes != 0)).sum())} {granularity} "
                             f"nodes without a path")

        def placed(name: str, dtype: type) -> np.ndarray:
            column = paths[name][section]
            return np.where(found, column[at] if len(column) else 0, 0).astype(dtype, copy=False)

        return NodePlaces(placed("parent", np.uint64), placed("depth", np.uint32), placed("frame_id", np.uint64))

    def node_paths_table(self, keep: np.ndarray | None = None) -> pa.Table:
        """`node_paths` rows, optionally only those where keep is True."""
        paths = self.node_paths or _no_paths()
        if keep is not None:
            paths = {name: column[keep] for name, column in paths.items()}
        return pa.table({"tenant": constant_column(self.tenant, len(paths["node"])),
                         **{name: pa.array(paths[name], typ) for name, typ in PATH_ARRAYS.items()}})

    def node_values_table(self) -> pa.Table:
        return _packed(self, self.node_parts or [], NODE_VALUE_ARRAYS)

    def function_values_table(self) -> pa.Table:
        return _packed(self, self.function_parts or [], FUNCTION_VALUE_ARRAYS)

    def folded_size(self) -> int:
        """How many values the folded tables hold (what a batch of profiles is bounded by)."""
        parts = (self.node_parts or []) + (self.function_parts or [])
        return len((self.node_paths or _no_paths())["node"]) + sum(len(p["values"][0]) for p in parts)

    def stacks_table(self, keep: np.ndarray | None = None) -> pa.Table:
        """`stacks` rows, optionally only those where keep is True."""
        off, ids = self.stack_offsets, self.stack_ids
        fn_flat, line_flat = self.function_frames, self.line_frames
        if keep is not None and not keep.all():
            picks = np.flatnonzero(keep)
            fn_flat, line_flat = gather_segments(fn_flat, off, picks), gather_segments(line_flat, off, picks)
            ids = ids[picks]
            off = np.concatenate(([0], np.cumsum(off[picks + 1] - off[picks])))
        return pa.table({
            "tenant": constant_column(self.tenant, len(ids)),
            "stack_id": pa.array(ids, pa.uint64()),
            "function_frames": _list_column(off, fn_flat),
            "line_frames": _list_column(off, line_flat),
        })

    def samples_table(self) -> pa.Table:
        n, k = self.values.shape
        n_rows = len(self.stack_ids)
        return pa.table({
            "tenant": constant_column(self.tenant, n_rows),
            "task_id": constant_column(self.task_id, n_rows),
            "instance_id": constant_column(self.instance_id, n_rows),
            "profile_id": constant_column(self.profile_id, n_rows),
            "stack_id": pa.array(self.stack_ids, pa.uint64()),
            "values": _list_column(np.arange(0, n * k + 1, k), self.values.reshape(-1)),
            "uploaded_at": pa.array(np.full(n_rows, self.uploaded_at, dtype=np.int64), pa.int64()),
        })


def profile_rows(env: pb.Envelope, decompressed_limit: int, content: bytes | None = None) -> ProfileRows:
    """Raises proftask.pprof.decode.ProfileError when the bytes are not a valid profile. `content`
    is the profile's bytes when they are not inline (read back from its chunks). Folded by Go
    (proftask.pprof.native) when it takes the profile, else in Python: the same rows."""
    raw = decompress(env.profile_uploaded.content if content is None else content, decompressed_limit)
    folded = native.fold(raw)  # refused by Go: raises ProfileError, in parse_profile's words
    if folded is None and native.available():
        # Declined by Go: a profile Go is unsure of (strings not UTF-8, unknown groups; or one
        # parse_profile refuses in words Go does not replay). Then the same profile as Python
        # reads it, its strings decoded as the Python fold decodes them and nothing unknown, is
        # folded by Go: the same rows, and not the Python fold's ~30 s a million frames deep (a
        # tiny profile with one bad byte).
        profile = parse_profile(raw)
        profile.DiscardUnknownFields()
        if regexps_not_utf8(profile):  # they would compile once made UTF-8; pprof cuts nothing
            profile.drop_frames = profile.keep_frames = 0
        profile.string_table[:] = [s.decode("utf-8", "replace").encode() for s in profile.string_table]
        try:
            folded = native.fold(profile.SerializeToString())
        except ProfileError:  # written again it may count more on the wire (ids packed): Python's fold
            folded = None
        if folded is None:
            return _python_rows(env, raw, profile)
    elif folded is None:
        return _python_rows(env, raw)
    arrays, texts = folded.numbers, folded.texts
    sample_types = folded.strings("sample_types")
    n_types = len(sample_types)
    frame_names = _frame_names_table(env.tenant, arrays["frame_id"], texts["frame_name"], texts["function"],
                                     arrays["line"], arrays["is_address"], texts["file"])
    rows = _rows(env, sample_types, int(arrays["default_index"][0]), folded.strings("period_type")[0],
                 int(arrays["period"][0]), frame_names, arrays["stack_ids"], arrays["stack_offsets"],
                 arrays["function_frames"], arrays["line_frames"], arrays["values"].reshape(-1, n_types),
                 time_nanos=int(arrays["time_nanos"][0]), duration_nanos=int(arrays["duration_nanos"][0]),
                 default_named=bool(arrays["default_named"][0]))
    rows.node_paths = {name: arrays[f"path.{name}"] for name in PATH_ARRAYS}
    rows.node_path_ends = arrays["path.ends"].tolist()
    rows.node_parts, rows.function_parts = _parts(arrays, "node", n_types), _parts(arrays, "function", n_types)
    return rows


def _parts(arrays: dict[str, np.ndarray], kind: str, n_types: int) -> list[dict]:
    """The Go fold's parts of a kind, in order: granularity (function, line) major, sample type
    minor, each ascending by id. A part without ids has the previous part's (the same
    granularity, the sample type before): the same array, which the CPU pool's pickle sends
    once."""
    parts: list[dict] = []
    for i, (granularity, type_index) in enumerate((g, t) for g in (FUNCTION, LINE) for t in range(n_types)):
        ids = arrays.get(f"{kind}.{i}.id")
        if ids is None:
            ids = parts[-1]["values"][0]
        parts.append({"granularity": granularity, "type_index": type_index,
                      "values": (ids, arrays[f"{kind}.{i}.a"], arrays[f"{kind}.{i}.b"])})
    return parts


def _python_rows(env: pb.Envelope, raw: bytes, profile: profile_pb2.Profile | None = None) -> ProfileRows:
    folded = fold_stacks(parse_profile(raw) if profile is None else profile)
    names: dict[int, tuple] = {}

    def ids_for(granularity: str) -> np.ndarray:
        out = np.empty(len(folded.frames), dtype=np.uint64)
        for i, (function, line, is_address) in enumerate(folded.frames):
            name = frame_name((function, line, is_address), granularity)
            fid = frame_id(name)
            names[fid] = (name, function, line if granularity == LINE else 0, int(is_address),
                          "" if is_address else folded.files.get(function, ""))
            out[i] = fid
        return out

    function_ids, line_ids = ids_for(FUNCTION), ids_for(LINE)
    fn_flat = function_ids[folded.stack_frames]
    line_flat = line_ids[folded.stack_frames]
    off = folded.stack_offsets
    # A stack is named by its line-level frames: the same stack has the same id in every profile.
    stack_ids = np.fromiter((hash64(line_flat[off[i]:off[i + 1]].tobytes()) for i in range(folded.stack_count)),
                            dtype=np.uint64, count=folded.stack_count)
    values = folded.values
    unique_ids, first, inverse = np.unique(stack_ids, return_index=True, return_inverse=True)
    if len(unique_ids) != len(stack_ids):  # two frame lists that render alike: one stack
        merged = np.zeros((len(unique_ids), values.shape[1]), dtype=np.int64)
        np.add.at(merged, inverse, values)
        fn_flat, line_flat = gather_segments(fn_flat, off, first), gather_segments(line_flat, off, first)
        off = np.concatenate(([0], np.cumsum(off[first + 1] - off[first])))
        stack_ids, values = unique_ids, merged
    texts, functions, lines, is_address, files = list(zip(*names.values(), strict=True)) or [(), (), (), (), ()]
    frame_names = _frame_names_table(env.tenant, np.fromiter(names, dtype=np.uint64, count=len(names)),
                                     pa.array(texts, pa.string()), pa.array(functions, pa.string()),
                                     np.array(lines, dtype=np.int64), np.array(is_address, dtype=np.int64),
                                     pa.array(files, pa.string()))
    rows = _rows(env, folded.sample_types, folded.default_index, folded.period_type, folded.period, frame_names,
                 stack_ids, off, fn_flat, line_flat, values, time_nanos=folded.time_nanos,
                 duration_nanos=folded.duration_nanos, default_named=folded.default_named)
    rows.node_paths, rows.node_parts, rows.function_parts, rows.node_path_ends = fold_parts(rows)
    return rows


def _frame_names_table(tenant: str, frame_ids: np.ndarray, names: pa.Array, functions: pa.Array, lines: np.ndarray,
                       is_address: np.ndarray, files: pa.Array) -> pa.Table:
    return pa.table({"tenant": constant_column(tenant, len(frame_ids)), "frame_id": pa.array(frame_ids, pa.uint64()),
                     "name": names.cast(pa.string()), "function": functions.cast(pa.string()),
                     "line": pa.array(lines, pa.int64()), "is_address": pa.array(is_address.astype(np.uint8)),
                     "file": files.cast(pa.string())})


def _rows(env: pb.Envelope, sample_types: list[str], default_index: int, period_type: str, period: int,
          frame_names: pa.Table, stack_ids: np.ndarray, offsets: np.ndarray, fn_flat: np.ndarray,
          line_flat: np.ndarray, values: np.ndarray, *, time_nanos: int, duration_nanos: int,
          default_named: bool) -> ProfileRows:
    up, tenant = env.profile_uploaded, env.tenant
    def summed(v: np.ndarray) -> list[int]:
        return v.sum(axis=0, dtype=np.int64).tolist() if len(stack_ids) else [0] * len(sample_types)

    # the positive and negative sums bound what a merge with other profiles sums (core.value_range);
    # each fits, as the profile's own were checked when it was decoded
    totals, positive_totals, negative_totals = summed(values), summed(values.clip(min=0)), summed(values.clip(max=0))
    profile = dict(tenant=tenant, task_id=up.task_id, instance_id=up.instance_id, profile_id=up.profile_id,
                   uploaded_at=env.occurred_at, sample_types=sample_types, default_index=default_index,
                   default_named=int(default_named),
                   totals=totals, positive_totals=positive_totals, negative_totals=negative_totals,
                   period_type=period_type, period=period, time_nanos=time_nanos, duration_nanos=duration_nanos,
                   size_bytes=up.size,
                   stack_count=len(stack_ids), event_id=env.event_id)
    file_keys, files = function_files(tenant, frame_names)
    return ProfileRows(tenant, up.task_id, up.instance_id, up.profile_id, env.occurred_at, profile, frame_names,
                       stack_ids, offsets, fn_flat, line_flat, values, sample_types, function_files=files,
                       function_file_keys=file_keys)


def function_files(tenant: str, frame_names: pa.Table) -> tuple[np.ndarray, pa.Table]:
    """A key of each (frame, file) pair of a profile's frames that name a file, for the writer's
    KnownKeys (a frame seen with one file is written again with another), and their
    `function_files` rows."""
    named = frame_names.filter(pc.not_equal(frame_names.column("file"), ""))
    frame_ids = named.column("frame_id").to_numpy()
    encoded = pc.dictionary_encode(named.column("file")).combine_chunks()  # a profile names few files
    file_hashes = np.array([hash64(f.encode("utf-8", "surrogatepass")) for f in encoded.dictionary.to_pylist()],
                           dtype=np.uint64)
    keys = frame_ids ^ (file_hashes[encoded.indices.to_numpy(zero_copy_only=False)] * np.uint64(0x9E3779B97F4A7C15))
    return keys, pa.table({"tenant": constant_column(tenant, named.num_rows), "frame_id": named.column("frame_id"),
                           "file": named.column("file")})


def constant_column(value: str, n: int) -> pa.DictionaryArray:
    """A string column with one value, dictionary-encoded: 4 bytes a row, not the string."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value], pa.string()))


def _scoped(rows: ProfileRows, n: int, columns: dict) -> pa.Table:
    """A table of n rows of this profile: its key columns, then `columns`."""
    return pa.table({
        "tenant": constant_column(rows.tenant, n),
        "task_id": constant_column(rows.task_id, n),
        "instance_id": constant_column(rows.instance_id, n),
        "profile_id": constant_column(rows.profile_id, n),
        **columns,
        "uploaded_at": pa.array(np.full(n, rows.uploaded_at, dtype=np.int64), pa.int64()),
    })


PATH_ARRAYS = {"node": pa.uint64(), "parent": pa.uint64(), "depth": pa.uint32(), "frame_id": pa.uint64()}
# each part's arrays, as (column, Arrow type of an element), in the order of part["values"]
NODE_VALUE_ARRAYS = (("node_ids", pa.uint64()), ("self_values", pa.int64()), ("total_values", pa.int64()))
FUNCTION_VALUE_ARRAYS = (("frame_ids", pa.uint64()), ("flat_values", pa.int64()), ("cum_values", pa.int64()))


def _no_paths() -> dict[str, np.ndarray]:
    return {name: np.zeros(0, dtype=np.uint32 if name == "depth" else np.uint64) for name in PATH_ARRAYS}


def fold_parts(rows: ProfileRows) -> tuple[dict[str, np.ndarray], list[dict], list[dict], list[int]]:
    """The profile folded once, so that an analysis only sums: its nodes' paths (and where each
    granularity's end), and its node and function values for every sample type at both
    granularities."""
    paths: list[dict[str, np.ndarray]] = [{"node": np.zeros(1, np.uint64), "parent": np.zeros(1, np.uint64),
                                           "depth": np.zeros(1, np.uint32), "frame_id": np.zeros(1, np.uint64)}]
    node_parts: list[dict] = []
    fn_parts: list[dict] = []
    for granularity, flat in ((FUNCTION, rows.function_frames), (LINE, rows.line_frames)):
        fold = StackFold(rows.stack_offsets, flat)
        paths.append({"node": fold.node, "parent": fold.parent, "depth": fold.depth.astype(np.uint32),
                      "frame_id": fold.frame_id})
        for type_index in range(rows.values.shape[1]):
            v = rows.values[:, type_index]
            n, f = fold.nodes(v), fold.functions(v)
            node_parts.append({"granularity": granularity, "type_index": type_index,
                               "values": (n.node, n.self_value, n.total)})
            fn_parts.append({"granularity": granularity, "type_index": type_index,
                             "values": (f.frame_id, f.flat, f.cum)})
    node_paths = {name: np.concatenate([p[name] for p in paths]) for name in PATH_ARRAYS}
    ends = np.cumsum([len(p["node"]) for p in paths])[1:].tolist()  # the root is path 0
    return node_paths, node_parts, fn_parts, ends


def _packed(rows: ProfileRows, parts: list[dict], arrays: tuple) -> pa.Table:
    """One row per part (granularity, sample type): the profile's key and the part's arrays. Each
    row is a chunk of its own, whose lists are views of the part's numpy arrays: a large profile's
    34 MB of node values are not copied into one list column on the way to ClickHouse.

    A part whose ids are its previous part's (the same granularity, the sample type before; a CPU
    profile's two types make the same nodes) is written with no ids: they are random 64-bit
    hashes, which do not compress, and were half of a large profile's 14.5 MB on disk. Readers
    take the ids of the nearest row before that has them (analysis_queries.CHOSEN_PARTS). A part
    with no ids at all (a sample type with no function: its values are all zero) has no values
    either, and readers skip it."""
    if not parts:
        return _scoped(rows, 0, {"granularity": pa.array([], pa.string()), "type_index": pa.array([], pa.uint16()),
                                 **{name: pa.array([], pa.list_(typ)) for name, typ in arrays}})
    tables, previous = [], None
    for part in parts:
        ids, *values = part["values"]
        same_ids = len(ids) > 0 and previous is not None and previous["granularity"] == part["granularity"] and (
            previous["values"][0] is ids or np.array_equal(previous["values"][0], ids))
        tables.append(_scoped(rows, 1, {
            "granularity": pa.array([part["granularity"]], pa.string()),
            "type_index": pa.array([part["type_index"]], pa.uint16()),
            **{name: pa.ListArray.from_arrays(pa.array([0, len(column)], pa.int32()), pa.array(column, typ))
               for (name, typ), column in zip(arrays, (ids[:0] if same_ids else ids, *values), strict=True)}}))
        previous = part
    return pa.concat_tables(tables)


def profile_rows_from_record(value: bytes, decompressed_limit: int) -> ProfileRows:
    """profile_rows from the record value as it is on Kafka (for the CPU pool: bytes in, rows out)."""
    env = pb.Envelope()
    env.ParseFromString(value)
    return profile_rows(env, decompressed_limit)


def profile_rows_from_spool(value: bytes, path: str, decompressed_limit: int) -> ProfileRows:
    """profile_rows of a chunked profile whose bytes the processor spooled to `path` (the worker
    reads the file, so the content is never pickled across)."""
    env = pb.Envelope()
    env.ParseFromString(value)
    with open(path, "rb") as f:
        return profile_rows(env, decompressed_limit, f.read())
