"""A folded profile's nodes placed in its tree (ProfileRows.places): every node's parent, depth
and frame as its path says, whether a part holds every node of its granularity (the paths taken
as they are) or some (a stack of value 0 for one sample type: looked up)."""
from __future__ import annotations

import gzip
import uuid

import numpy as np
import pytest

from proftask import events
from proftask.events.v1 import events_pb2 as pb
from proftask.pprof.encode import encode_profile
from proftask.pprof.fold import FUNCTION, LINE
from proftask.processing.profile_rows import _python_rows, profile_rows

TYPES = ["samples/count", "cpu/nanoseconds"]


def _rows(python_fold: bool):
    # ("main", "idle") has samples but no CPU time: the CPU parts lack its node
    stacks = [([("main", 1, False), ("work", 7, False)], [3, 30]), ([("main", 2, False), ("idle", 9, False)], [2, 0]),
              ([("main", 1, False), ("work", 8, False), ("leaf", 4, False)], [1, 10])]
    content = encode_profile(TYPES, "cpu/nanoseconds", "cpu/nanoseconds", 10, stacks)
    env = events.new_event("acme", pb.ProfileUploaded(task_id="t", instance_id="i", profile_id=str(uuid.uuid4()),
                                                      content=content, size=len(content)))
    return _python_rows(env, gzip.decompress(content)) if python_fold else profile_rows(env, 1 << 20)


@pytest.mark.parametrize("python_fold", [False, True])
def test_every_part_is_placed_as_its_nodes_paths_say(python_fold):
    rows = _rows(python_fold)
    paths = rows.node_paths
    assert paths is not None
    by_node = {int(n): (int(p), int(d), int(f)) for n, p, d, f in
               zip(paths["node"], paths["parent"], paths["depth"], paths["frame_id"], strict=True)}
    sizes = {}
    for part in rows.node_parts or []:
        nodes = part["values"][0]
        places = rows.places(part["granularity"], nodes)
        got = list(zip(places.parent.tolist(), places.depth.tolist(), places.frame_id.tolist(), strict=True))
        assert got == [by_node[int(n)] for n in nodes]
        assert places.parent.dtype == np.uint64 and places.depth.dtype == np.uint32
        sizes[part["granularity"], part["type_index"]] = len(nodes)
    # both ways were taken: every node (samples) and fewer (cpu: not idle, nor main:2 above it)
    assert sizes == {(FUNCTION, 0): 5, (FUNCTION, 1): 4, (LINE, 0): 7, (LINE, 1): 5}
