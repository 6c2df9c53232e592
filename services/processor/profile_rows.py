"""Message processor for ProfileUploaded: the pprof bytes become frame, stack, sample and
profile rows (pure; the same rows for the same event, which makes rewrites harmless)."""
from __future__ import annotations

import dataclasses
import hashlib
from array import array

from proftask.events.v1 import events_pb2 as pb
from proftask.pprof.decode import decompress, parse_profile
from proftask.pprof.fold import FUNCTION, LINE, fold_stacks, frame_name

PROFILE_COLUMNS = ("tenant", "task_id", "instance_id", "profile_id", "stored_at", "sample_types",
                   "default_index", "totals", "period_type", "period", "size_bytes", "stack_count",
                   "event_id")
FRAME_NAME_COLUMNS = ("tenant", "frame_id", "name", "function", "line", "is_address")
STACK_COLUMNS = ("tenant", "stack_id", "function_frames", "line_frames")
SAMPLE_COLUMNS = ("tenant", "task_id", "instance_id", "profile_id", "stack_id", "values")


def hash64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def frame_id(name: str) -> int:
    return hash64(name.encode("utf-8", "surrogatepass"))


@dataclasses.dataclass
class ProfileRows:
    profile: tuple
    frame_names: list[tuple]
    stacks: list[tuple]
    samples: list[tuple]
    sample_types: list[str]


def profile_rows(env: pb.Envelope, decompressed_limit: int, stored_at: int) -> ProfileRows:
    """Raises proftask.pprof.decode.ProfileError when the bytes are not a valid profile."""
    up = env.profile_uploaded
    tenant = env.tenant
    folded = fold_stacks(parse_profile(decompress(up.content, decompressed_limit)))

    names: dict[int, tuple] = {}

    def ids_for(granularity: str) -> list[int]:
        out = []
        for function, line, is_address in folded.frames:
            name = frame_name((function, line, is_address), granularity)
            fid = frame_id(name)
            names[fid] = (name, function, line if granularity == LINE else 0, int(is_address))
            out.append(fid)
        return out

    function_ids, line_ids = ids_for(FUNCTION), ids_for(LINE)
    stacks: dict[int, tuple] = {}
    values_by_stack: dict[int, list[int]] = {}
    for frames, values in folded.stacks.items():
        line = array("Q", (line_ids[i] for i in frames))
        stack_id = hash64(line.tobytes())
        if stack_id not in stacks:
            stacks[stack_id] = (tenant, stack_id, [function_ids[i] for i in frames], line.tolist())
            values_by_stack[stack_id] = list(values)
        else:  # different frames that render the same (e.g. an address named like a function)
            values_by_stack[stack_id] = [a + b for a, b in zip(values_by_stack[stack_id], values)]
    samples = [(tenant, up.task_id, up.instance_id, up.profile_id, sid, vals)
               for sid, vals in values_by_stack.items()]
    profile = (tenant, up.task_id, up.instance_id, up.profile_id, stored_at, folded.sample_types,
               folded.default_index, folded.totals(), folded.period_type, folded.period, up.size,
               len(stacks), env.event_id)
    return ProfileRows(profile, [(tenant, fid, *info) for fid, info in names.items()],
                       list(stacks.values()), samples, folded.sample_types)
