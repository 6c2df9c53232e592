"""Writing a merged profile back as pprof (gzip-compressed protobuf, what `go tool pprof` reads)."""
from __future__ import annotations

import dataclasses
import gzip
from collections.abc import Iterable, Mapping, Sequence

from proftask.pprof.fold import Frame  # stacks root→leaf, as proftask stores line-level frames
from proftask.pprof.v1 import profile_pb2


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


@dataclasses.dataclass(frozen=True)
class Timing:
    """What a profile says of its sampling beside its samples: the period, when it began and how
    long it ran (epoch ns and ns; 0: not said)."""
    period: int = 0
    time_nanos: int = 0
    duration_nanos: int = 0

    @staticmethod
    def merged(timings: Iterable[Timing]) -> Timing:
        """As pprof merges profiles (profile.Merge, what `go tool pprof a b` shows): the longest
        period, the earliest start of those said, the durations summed, held within 64 bits
        (pprof's sum wraps round; two durations of 2^62 ns made an export refuse with a 500)."""
        timings = list(timings)
        starts = [t.time_nanos for t in timings if t.time_nanos]
        duration = sum(t.duration_nanos for t in timings)
        return Timing(max((t.period for t in timings), default=0), min(starts, default=0),
                      min(max(duration, INT64_MIN), INT64_MAX))


def encode_profile(sample_types: Sequence[str], default_type: str, period_type: str, period: int,
                   stacks: Iterable[tuple[Sequence[Frame], Sequence[int]]],
                   files: Mapping[str, str] | None = None, time_nanos: int = 0, duration_nanos: int = 0) -> bytes:
    """One Sample per stack, one Location per distinct frame (each with a single Line, so the
    frames come back exactly as they were, inlined ones included), one Function per name, with
    its source file from `files` (function name → file) where it has one."""
    files = files or {}
    p = profile_pb2.Profile()
    strings: dict[str, int] = {"": 0}

    def s(text: str) -> int:
        idx = strings.get(text)
        if idx is None:
            idx = strings[text] = len(strings)
        return idx

    for t in sample_types:
        typ, _, unit = t.partition("/")
        p.sample_type.add(type=s(typ), unit=s(unit))
    p.default_sample_type = s(default_type.partition("/")[0])
    if period_type:
        typ, _, unit = period_type.partition("/")
        p.period_type.type, p.period_type.unit = s(typ), s(unit)
    p.period = period
    p.time_nanos, p.duration_nanos = time_nanos, duration_nanos

    functions: dict[str, int] = {}
    locations: dict[Frame, int] = {}
    for frames, values in stacks:
        ids = []
        for frame in reversed(frames):  # pprof lists the leaf first
            loc_id = locations.get(frame)
            if loc_id is None:
                loc_id = locations[frame] = len(locations) + 1
                function, line, is_address = frame
                loc = p.location.add(id=loc_id)
                if is_address:
                    loc.address = int(function, 16)
                else:
                    fn_id = functions.get(function)
                    if fn_id is None:
                        fn_id = functions[function] = len(functions) + 1
                        # no system name: pprof takes the name as demangled already. Given the
                        # same, it "demangles" the name again, stripping (...) and <...>
                        p.function.add(id=fn_id, name=s(function), filename=s(files.get(function, "")))
                    loc.line.add(function_id=fn_id, line=line)
            ids.append(loc_id)
        p.sample.add(location_id=ids, value=list(values))
    p.string_table.extend(text.encode("utf-8", "surrogatepass") for text in strings)
    return gzip.compress(p.SerializeToString(), 6, mtime=0)  # no time in the header: the same profile, the same bytes
