"""Folding a profile into stacks: root-to-leaf frame sequences with their summed values.

Columnar (numpy): a large Go CPU profile has ~20k distinct stacks of ~25 frames; walking them
frame by frame in Python would cost more than decoding the protobuf.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from itertools import chain

import numpy as np

from proftask.core.echo import echo
from proftask.errors import Invalid
from proftask.pprof.names import display_name
from proftask.pprof.prune import prune
from proftask.pprof.v1 import profile_pb2

FUNCTION = "function"
LINE = "line"
GRANULARITIES = (FUNCTION, LINE)

# (function name, line, is_address): a Line of a Location, or an address-only Location.
Frame = tuple[str, int, bool]


@dataclasses.dataclass
class FoldedProfile:
    sample_types: list[str]   # "type/unit", in the profile's order
    default_index: int        # pprof's default sample type
    frames: list[Frame]       # each distinct frame once
    stack_offsets: np.ndarray  # int64 [n_stacks + 1]: stack i is stack_frames[off[i]:off[i+1]]
    stack_frames: np.ndarray   # int64 frame indexes, each stack root→leaf
    values: np.ndarray         # int64 [n_stacks, n_types], summed over samples with that stack
    period_type: str = ""
    period: int = 0
    files: dict[str, str] = dataclasses.field(default_factory=dict)  # function name → its source file
    time_nanos: int = 0       # when the profile began (epoch ns; 0: not said)
    duration_nanos: int = 0   # how long it ran
    default_named: bool = True  # the profile names its default (else default_index is the last type)

    @property
    def stack_count(self) -> int:
        return len(self.stack_offsets) - 1

    def totals(self) -> list[int]:
        return self.values.sum(axis=0, dtype=np.int64).tolist() if self.stack_count else [0] * len(self.sample_types)


def frame_name(frame: Frame, granularity: str) -> str:
    """The codeSignature of a frame: `function` or `function:line`; an address stays `0x…`."""
    function, line, is_address = frame
    if is_address or granularity == FUNCTION:
        return function
    return f"{function}:{line}"


def _text(strings: list[str], index: int) -> str:
    return strings[index] if 0 <= index < len(strings) else ""


def gather_segments(seg_flat: np.ndarray, seg_off: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Concatenate segments seg_flat[seg_off[k]:seg_off[k+1]] for k in picks, in order."""
    lens = seg_off[picks + 1] - seg_off[picks]
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(seg_off[picks], lens)
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
    return seg_flat[starts + within]


def fold_stacks(p: profile_pb2.Profile) -> FoldedProfile:
    """Samples with the same frames are summed (labels are not kept apart). Its drop_frames are
    applied first, as pprof reads a profile (prune.py: in place)."""
    strings = [s.decode("utf-8", "replace") for s in p.string_table]
    prune(p, strings)
    types = [f"{_text(strings, vt.type)}/{_text(strings, vt.unit)}" for vt in p.sample_type]
    default_name = _text(strings, p.default_sample_type)
    # pprof's SampleIndexByName: a default named "" is no name (the last type), not a type named ""
    default_index = next((i for i, vt in enumerate(p.sample_type)
                          if default_name and _text(strings, vt.type) == default_name), len(types) - 1)
    default_named = bool(default_name)  # pprof's merge takes the first named, a type of it or not (then the last)
    n_types = len(types)
    period_type = (f"{_text(strings, p.period_type.type)}/{_text(strings, p.period_type.unit)}"
                   if p.HasField("period_type") else "")

    shown: dict[tuple[int, int], str] = {}  # each (name, system name) once: functions may share a long name
    function_names = {f.id: shown[pair] if pair in shown else shown.setdefault(
                          pair, display_name(_text(strings, f.name), _text(strings, f.system_name)))
                      for f in p.function for pair in ((f.name, f.system_name),)}
    files: dict[str, str] = {}  # the first file named for a function (as the Go fold keeps it)
    for f in p.function:
        name = function_names[f.id]
        if not files.get(name):
            files[name] = _text(strings, f.filename)
    frame_index: dict[Frame, int] = {}
    frames: list[Frame] = []

    def intern(frame: Frame) -> int:
        idx = frame_index.get(frame)
        if idx is None:
            idx = frame_index[frame] = len(frames)
            frames.append(frame)
        return idx

    # Per location (dense index k), its frames caller-first: a location's last Line is the
    # caller into which the earlier ones were inlined; a location without lines is its address.
    # A line of a function without a name (Go's threadcreate profile: a chain of them) is a
    # frame named "", as `go tool pprof -raw` prints it (` :0:0`) and the DESIGN's oracle reads it.
    loc_frames: list[int] = []
    loc_off = [0]
    for loc in p.location:
        if loc.line:
            loc_frames.extend(intern((function_names.get(line.function_id, "??"), line.line, False))
                              for line in reversed(loc.line))
        else:
            loc_frames.append(intern((f"{loc.address:#x}", 0, True)))
        loc_off.append(len(loc_frames))

    # Samples with the same location list first (cheap tuple keys), values summed.
    by_locations: dict[tuple[int, ...], int] = {}
    rows = [by_locations.setdefault(tuple(sample.location_id), len(by_locations)) for sample in p.sample]
    n_loc_stacks = len(by_locations)
    sample_values = np.array([list(s.value) for s in p.sample], dtype=np.int64).reshape(len(rows), n_types)
    loc_stack_values = np.zeros((n_loc_stacks, n_types), dtype=np.int64)
    if rows:
        np.add.at(loc_stack_values, np.asarray(rows, dtype=np.int64), sample_values)

    # Location lists (leaf first) → dense location indexes (root first) → frames, all in numpy.
    keys = list(by_locations)
    occ_per_stack = np.fromiter(map(len, keys), dtype=np.int64, count=n_loc_stacks)
    occ_off = np.concatenate(([0], np.cumsum(occ_per_stack)))
    raw_ids = np.fromiter(chain.from_iterable(keys), dtype=np.uint64, count=int(occ_off[-1]))
    occ_stack = np.repeat(np.arange(n_loc_stacks), occ_per_stack)
    position = np.arange(len(raw_ids)) - occ_off[occ_stack]
    reversed_ids = raw_ids[occ_off[occ_stack] + occ_per_stack[occ_stack] - 1 - position]
    location_ids = np.fromiter((loc.id for loc in p.location), dtype=np.uint64, count=len(p.location))
    order = np.argsort(location_ids)
    occ = order[np.searchsorted(location_ids, reversed_ids, sorter=order)].astype(np.int64)
    loc_off_arr = np.asarray(loc_off, dtype=np.int64)
    flat = gather_segments(np.asarray(loc_frames, dtype=np.int64), loc_off_arr, occ)
    frames_per_occ = loc_off_arr[occ + 1] - loc_off_arr[occ]
    frames_per_stack = np.bincount(occ_stack, weights=frames_per_occ, minlength=n_loc_stacks).astype(np.int64)
    offsets = np.concatenate(([0], np.cumsum(frames_per_stack))).astype(np.int64)

    # Different location lists can spell the same frames (two PCs on one line): merge them.
    merged: dict[bytes, int] = {}
    target = np.empty(n_loc_stacks, dtype=np.int64)
    for i in range(n_loc_stacks):
        target[i] = merged.setdefault(flat[offsets[i]:offsets[i + 1]].tobytes(), len(merged))
    if len(merged) == n_loc_stacks:
        return FoldedProfile(types, default_index, frames, offsets, flat, loc_stack_values, period_type, p.period,
                             files, p.time_nanos, p.duration_nanos, default_named)
    keep = np.unique(target, return_index=True)[1]  # first stack of each merged group, in group order
    values = np.zeros((len(merged), n_types), dtype=np.int64)
    np.add.at(values, target, loc_stack_values)
    new_off = np.concatenate(([0], np.cumsum(frames_per_stack[keep])))
    new_flat = gather_segments(flat, offsets, keep)
    return FoldedProfile(types, default_index, frames, new_off, new_flat, values, period_type, p.period, files,
                         p.time_nanos, p.duration_nanos, default_named)


class UnknownSampleType(Invalid):
    """A requested sample type that none of the profiles has; `sampleTypes` lists the choices."""


def select_sample_type(sample_types: Sequence[str], default_index: int, requested: str | None) -> int:
    """pprof's rule for `-sample_index`: `type/unit` or just `type`, the first that matches;
    none requested: the default. The one home of the rule, for a profile (its own types and
    default) and for a merge of several (proftask.analysis.selection: their types in order of
    appearance, the first profile's default). Raises UnknownSampleType naming the choices."""
    if not requested:
        return default_index
    for i, t in enumerate(sample_types):
        if requested == t or requested == t.split("/")[0]:
            return i
    raise UnknownSampleType(f"unknown sample type {echo(requested)}; available: {', '.join(sample_types)}",
                            sampleTypes=list(sample_types))
