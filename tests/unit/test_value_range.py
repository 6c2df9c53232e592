"""Whether a merge of profiles can be summed in 64 bits (proftask/core/value_range.py), at the
edges of the range, against Python's exact sums of every subset of the values."""
from __future__ import annotations

import itertools
import random

from proftask.core.value_range import INT64_MAX, INT64_MIN, merged_sum_beyond_int64

BIG = 2**62


def test_the_edges_of_the_range():
    assert merged_sum_beyond_int64([]) is None
    assert merged_sum_beyond_int64([(BIG, 0), (BIG - 1, 0)]) is None           # 2^63 - 1: the largest
    assert merged_sum_beyond_int64([(BIG, 0), (BIG, 0)]) == 2**63
    assert merged_sum_beyond_int64([(0, -BIG), (0, -BIG)]) is None             # -2^63: the smallest
    assert merged_sum_beyond_int64([(0, -BIG), (0, -BIG - 1)]) == -(2**63) - 1
    # values of both signs do not cancel: a node may hold only the positive ones
    assert merged_sum_beyond_int64([(BIG, -BIG), (BIG, -BIG)]) == 2**63
    assert merged_sum_beyond_int64([(INT64_MAX, 0), (0, INT64_MIN)]) is None


def test_a_merge_it_lets_through_sums_every_subset_of_its_values_within_the_range():
    rng = random.Random(7)
    for _ in range(300):
        profiles = [[rng.choice([1, -1]) * rng.randrange(0, 2**61) for _ in range(rng.randrange(1, 5))]
                    for _ in range(rng.randrange(1, 6))]
        bounds = [(sum(v for v in p if v > 0), sum(v for v in p if v < 0)) for p in profiles]
        values = [v for p in profiles for v in p]
        subset_sums = [sum(c) for n in range(1, len(values) + 1) for c in itertools.combinations(values, n)]
        fits = all(INT64_MIN <= s <= INT64_MAX for s in subset_sums)
        assert (merged_sum_beyond_int64(bounds) is None) == fits, profiles
