"""What the processor remembers having written (so it skips rewriting shared rows) and what
the query service keeps of finished analyses: keyed by tenant, bounded, never wrong when it
forgets."""
from __future__ import annotations

import numpy as np

from proftask.processing.writer import KnownKeys
from services.query_svc.analysis_cache import AnalysisCache


def test_known_keys_are_per_tenant_and_a_key_another_tenant_wrote_is_still_unknown():
    known = KnownKeys(capacity=1_000)
    acme = np.array([5, 1, 9, 1 << 63], dtype=np.uint64)
    known.add("acme", acme)
    asked = np.array([1, 2, 9, 1 << 63, 0], dtype=np.uint64)
    assert known.unknown_mask("acme", asked).tolist() == [False, True, False, False, True]
    assert known.unknown_mask("beta", asked).tolist() == [True] * 5
    known.add("acme", np.array([2], dtype=np.uint64))
    assert known.unknown_mask("acme", asked).tolist() == [False, False, False, False, True]


def test_known_keys_past_their_capacity_forget_the_oldest_tenants_first():
    known = KnownKeys(capacity=10)
    known.add("acme", np.arange(6, dtype=np.uint64))
    known.add("beta", np.arange(100, 106, dtype=np.uint64))  # 12 > 10: acme is forgotten
    assert known.unknown_mask("acme", np.arange(6, dtype=np.uint64)).all()
    assert not known.unknown_mask("beta", np.arange(100, 106, dtype=np.uint64)).any()
    known.add("gamma", np.arange(50, dtype=np.uint64))  # alone over the capacity: keeps 10 of its own
    assert (~known.unknown_mask("gamma", np.arange(50, dtype=np.uint64))).sum() == 10


def test_known_keys_taken_in_any_order_and_added_twice_stay_one_sorted_set():
    known = KnownKeys(capacity=100)
    known.add("acme", np.array([9, 3, 3, 7], dtype=np.uint64))  # a profile's frame ids: any order
    known.add("acme", np.array([7, 1], dtype=np.uint64))
    asked = np.array([1, 2, 3, 7, 9, 10], dtype=np.uint64)
    assert known.unknown_mask("acme", asked).tolist() == [False, True, False, False, False, True]


def test_the_cache_keeps_answers_within_its_budget_newest_used_last_out():
    cache = AnalysisCache(budget_bytes=100)
    cache.put(("a",), b"x" * 20)
    cache.put(("b",), b"y" * 20)
    assert cache.get(("a",)) == b"x" * 20  # a is now the most recently used
    cache.put(("c",), b"z" * 20)
    cache.put(("d",), b"w" * 20)
    cache.put(("e",), b"v" * 20)  # 100 bytes: all fit
    cache.put(("f",), b"u" * 20)  # b, the least recently used, goes
    assert cache.get(("b",)) is None and cache.get(("a",)) == b"x" * 20
    assert cache.size <= 100
    cache.put(("huge",), b"h" * 26)  # over a quarter of the budget: never kept
    assert cache.get(("huge",)) is None and cache.get(("a",)) is not None
