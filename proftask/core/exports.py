"""Text exports of merged stacks: folded lines and speedscope JSON. Pure."""
from __future__ import annotations

from collections.abc import Sequence

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"
_SPEEDSCOPE_UNITS = {"nanoseconds": "nanoseconds", "microseconds": "microseconds",
                     "milliseconds": "milliseconds", "seconds": "seconds", "bytes": "bytes"}


# The folded format has no escapes: a `;` splits frames and a line break ends the stack. Real Go
# names hold `;` (`main.Work[go.shape.struct { A int; B string }]`), a hostile profile anything.
# Within a name, `;` is written `,` and a line break a space (the pprof export keeps names whole).
_FOLDED_NAME = str.maketrans({";": ",", "\n": " ", "\r": " "})


def folded_frame(name: str) -> str:
    """A frame's name as a folded line can carry it: one frame, on the line."""
    return name.translate(_FOLDED_NAME)


def to_folded(stacks: Sequence[tuple[Sequence[str], int]]) -> str:
    """Brendan Gregg's folded format: `root;child;leaf value`, one line per distinct stack,
    sorted. Stored stacks that differ only below the granularity (two lines of one function)
    fold into one line, their values summed; so do stacks whose names differ only by what
    folded_frame rewrites, which the format cannot tell apart."""
    values: dict[str, int] = {}
    for frames, value in stacks:
        if frames and value:
            key = ";".join(map(folded_frame, frames))
            values[key] = values.get(key, 0) + value
    return "".join(f"{key} {value}\n" for key, value in sorted(values.items()) if value)


def to_speedscope(name: str, sample_type: str, stacks: Sequence[tuple[Sequence[str], int]]) -> dict:
    """A speedscope "sampled" profile, one sample per stack, in the order of their frames (as the
    folded export's lines): the same stacks in any order make the same file."""
    frame_index: dict[str, int] = {}
    samples, weights = [], []
    for frames, value in sorted(((list(frames), value) for frames, value in stacks)):
        if not frames or not value:
            continue
        samples.append([frame_index.setdefault(f, len(frame_index)) for f in frames])
        weights.append(value)
    unit = _SPEEDSCOPE_UNITS.get(sample_type.partition("/")[2], "none")
    return {
        "$schema": SPEEDSCOPE_SCHEMA,
        "name": name,
        "exporter": "proftask",
        "activeProfileIndex": 0,
        "shared": {"frames": [{"name": f} for f in frame_index]},
        "profiles": [{"type": "sampled", "name": f"{name} {sample_type}", "unit": unit,
                      "startValue": 0, "endValue": sum(weights), "samples": samples, "weights": weights}],
    }
