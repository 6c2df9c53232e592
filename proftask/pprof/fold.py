"""Folding a profile into stacks: root-to-leaf frame sequences with their summed values."""
from __future__ import annotations

import dataclasses
from itertools import chain

from proftask.pprof.names import display_name
from proftask.pprof.v1 import profile_pb2

FUNCTION = "function"
LINE = "line"
GRANULARITIES = (FUNCTION, LINE)

# (function name, line, is_address): a Line of a Location, or an address-only Location.
Frame = tuple[str, int, bool]


@dataclasses.dataclass
class FoldedProfile:
    sample_types: list[str]          # "type/unit", in the profile's order
    default_index: int               # pprof's default sample type
    frames: list[Frame]              # each distinct frame once
    stacks: dict[tuple[int, ...], list[int]]  # frame indexes root→leaf → values, one per sample type
    period_type: str = ""
    period: int = 0

    def totals(self) -> list[int]:
        sums = [0] * len(self.sample_types)
        for values in self.stacks.values():
            for i, v in enumerate(values):
                sums[i] += v
        return sums


def frame_name(frame: Frame, granularity: str) -> str:
    """The codeSignature of a frame: `function` or `function:line`; an address stays `0x…`."""
    function, line, is_address = frame
    if is_address or granularity == FUNCTION:
        return function
    return f"{function}:{line}"


def _text(strings: list[str], index: int) -> str:
    return strings[index] if 0 <= index < len(strings) else ""


def fold_stacks(p: profile_pb2.Profile) -> FoldedProfile:
    """Samples with the same frames are summed (labels are not kept apart)."""
    strings = [s.decode("utf-8", "replace") for s in p.string_table]
    types = [f"{_text(strings, vt.type)}/{_text(strings, vt.unit)}" for vt in p.sample_type]
    default_name = _text(strings, p.default_sample_type)
    default_index = next((i for i, vt in enumerate(p.sample_type)
                          if _text(strings, vt.type) == default_name), len(types) - 1)

    function_names = {f.id: display_name(_text(strings, f.name), _text(strings, f.system_name))
                      for f in p.function}
    frame_index: dict[Frame, int] = {}
    frames: list[Frame] = []

    def intern(frame: Frame) -> int:
        idx = frame_index.get(frame)
        if idx is None:
            idx = frame_index[frame] = len(frames)
            frames.append(frame)
        return idx

    location_frames: dict[int, tuple[int, ...]] = {}
    for loc in p.location:
        if loc.line:
            # The last Line is the caller into which the earlier ones were inlined.
            location_frames[loc.id] = tuple(
                intern((function_names.get(line.function_id, "??"), line.line, False))
                for line in reversed(loc.line))
        else:
            location_frames[loc.id] = (intern((f"{loc.address:#x}", 0, True)),)

    by_locations: dict[tuple[int, ...], list[int]] = {}
    for sample in p.sample:
        key = tuple(sample.location_id)
        values = by_locations.get(key)
        if values is None:
            by_locations[key] = list(sample.value)
        else:
            for i, v in enumerate(sample.value):
                values[i] += v

    stacks: dict[tuple[int, ...], list[int]] = {}
    for locations, values in by_locations.items():
        # location_id lists the leaf first; stacks read from the root.
        key = tuple(chain.from_iterable(location_frames[lid] for lid in reversed(locations)))
        existing = stacks.get(key)
        if existing is None:
            stacks[key] = values
        else:
            for i, v in enumerate(values):
                existing[i] += v

    period_type = (f"{_text(strings, p.period_type.type)}/{_text(strings, p.period_type.unit)}"
                   if p.HasField("period_type") else "")
    return FoldedProfile(types, default_index, frames, stacks, period_type, p.period)


def select_sample_type(sample_types: list[str], default_index: int, requested: str | None) -> int:
    """`type/unit` or just `type`; none: the default. Raises KeyError naming the choices."""
    if not requested:
        return default_index
    for i, t in enumerate(sample_types):
        if requested == t or requested == t.split("/")[0]:
            return i
    raise KeyError(f"unknown sample type {requested!r}; available: {', '.join(sample_types)}")
