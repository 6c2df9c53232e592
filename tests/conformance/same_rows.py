"""The assertions shared by the tests of the Go fold: its rows are the Python fold's rows, and its
refusals are Python's, in the same words.

Both list every part's nodes (and functions) ascending by id, as the task folds take them."""
from __future__ import annotations

import numpy as np

from proftask.pprof import native
from proftask.pprof.decode import ProfileError, parse_profile
from proftask.processing.profile_rows import ProfileRows


def _as_listed(part: dict) -> tuple:
    ids, *columns = part["values"]
    assert (ids[1:] > ids[:-1]).all(), f"{part['granularity']} part of type {part['type_index']} not ascending by id"
    return (part["granularity"], part["type_index"], ids.tolist(), *(c.tolist() for c in columns))


def _paths(rows: ProfileRows) -> list[tuple]:
    paths = rows.node_paths or {}
    return sorted(zip(*(paths[name].tolist() for name in ("node", "parent", "depth", "frame_id")), strict=True))


def assert_same_rows(native: ProfileRows, python: ProfileRows) -> None:
    assert native.profile == python.profile
    assert native.sample_types == python.sample_types
    assert native.frame_names.equals(python.frame_names)
    for name in ("stack_ids", "stack_offsets", "function_frames", "line_frames", "values"):
        a, b = getattr(native, name), getattr(python, name)
        assert a.shape == b.shape and np.array_equal(a, b), name
        assert a.dtype.kind == b.dtype.kind, name
    assert _paths(native) == _paths(python)
    assert native.node_path_ends == python.node_path_ends
    nodes, ends = (python.node_paths or {})["node"], python.node_path_ends or []
    for start, end in zip([1, *ends[:-1]], ends, strict=True):  # each granularity's paths ascending by node
        assert (nodes[start + 1:end] > nodes[start:end - 1]).all()
    for native_parts, python_parts in ((native.node_parts, python.node_parts),
                                       (native.function_parts, python.function_parts)):
        assert [_as_listed(p) for p in native_parts or []] == [_as_listed(p) for p in python_parts or []]


def assert_go_refuses_alike(raw: bytes, may_decline: bool = False) -> str:
    """parse_profile refuses raw; the Go check and the Go fold refuse it too, in the same words
    (or, may_decline, leave it to Python: what Go is unsure of). Answers the words."""
    try:
        parse_profile(raw)
    except ProfileError as e:
        words = str(e)
    else:
        raise AssertionError("parse_profile takes the profile")
    for go in (native.sample_types, native.fold):
        try:
            answer = go(raw)
        except ProfileError as e:
            assert str(e) == words, f"Go's {go.__name__} refuses in other words: {e} (Python: {words})"
        else:
            assert answer is None, f"Go's {go.__name__} takes a profile Python refuses: {words}"
            assert may_decline, f"Go's {go.__name__} declines a profile it should refuse: {words}"
    return words
