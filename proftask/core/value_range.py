"""Whether a merge of profiles can be shown in 64 bits: ClickHouse and numpy sum node values
as Int64, and a sum past its range wraps to a wrong number (with the opposite sign) rather than
failing. A single profile is refused at upload when its own values could not be summed
(proftask.pprof.decode.check_sums_fit); a merge of profiles that each fit may still not."""
from __future__ import annotations

from collections.abc import Sequence

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def merged_sum_beyond_int64(bounds: Sequence[tuple[int, int]]) -> int | None:
    """`bounds`: per profile, the sum of its positive values of a sample type and the sum of
    its negative ones. Every node of their merged tree (its total, its self, a function's flat
    and cum) sums some of those values, so all fit when the positive sums together and the
    negative ones together do. The first of those two sums that does not, else None."""
    positive = sum(p for p, _ in bounds)
    if positive > INT64_MAX:
        return positive
    negative = sum(n for _, n in bounds)
    if negative < INT64_MIN:
        return negative
    return None
