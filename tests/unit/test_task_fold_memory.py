"""The processor keeps each task's merged tree in memory (task_folds.py) within MAX_VALUES node
sums' worth of memory (24 bytes a node), however small the tasks: an idle service's profiles
fold into the root alone, and a task's sums then cost ~2 KB of Python objects (with its places), not 24 bytes."""
from __future__ import annotations

import tracemalloc
import uuid

import numpy as np

from proftask.core.node_table import NodePlaces, NodeSums, add_node_values
from proftask.processing import task_folds
from proftask.processing.task_folds import TaskFolds, _TaskSums


def test_many_tasks_of_one_node_stay_within_the_memory_of_max_values(monkeypatch):
    monkeypatch.setattr(task_folds, "MAX_VALUES", 20_000)  # 480 KB of node sums
    folds = TaskFolds(None, None)
    tracemalloc.start()
    try:
        for _ in range(5_000):  # each the root of two empty profiles, placed
            profiles = frozenset(str(uuid.uuid4()) for _ in range(2))
            sums = add_node_values(NodeSums.empty(), np.zeros(1, np.uint64), np.zeros(1, np.int64),
                                   np.zeros(1, np.int64), NodePlaces(np.zeros(1, np.uint64), np.zeros(1, np.uint32),
                                                                     np.zeros(1, np.uint64)))
            assert sums.places is not None
            folds._keep(("acme", f"task-{uuid.uuid4().hex[:8]}", "cpu/nanoseconds"),
                        _TaskSums(profiles, sums, profiles))
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held <= 20_000 * 24, held
