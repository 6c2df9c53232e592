"""The Go fold (native/, proftask/pprof/native.py) against the Python fold, on every conformance
file: the same rows, the same sample types at the intake, and a profile it declines still
folded (by Python). Mutated profiles are compared too, by the decoder fuzz."""
from __future__ import annotations

import re

import pytest

from proftask import events
from proftask.events.v1 import events_pb2 as pb
from proftask.ingest.upload import check_profile
from proftask.pprof import native
from proftask.pprof.decode import (MAX_WIRE_ENTRIES, MAX_WIRE_FIELDS, MAX_WIRE_NUMBERS, ProfileError,
                                   check_wire_counts, decompress, parse_profile)
from proftask.processing.profile_rows import _python_rows, profile_rows
from tests.conformance.oracle import require_conformance
from tests.conformance.same_rows import assert_go_refuses_alike, assert_same_rows

LIMIT = 512 * 1024 * 1024
# Python decodes bad UTF-8 with U+FFFD; the Go fold leaves such profiles to it
DECLINED = {"edge/pyroscope-invalid_utf8.pb.gz"}


def corpus() -> list[str]:
    root = require_conformance()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.suffix != ".md")


@pytest.fixture(scope="module")
def library():
    assert native.available(), "the Go fold is not built: `make install` builds it"


@pytest.mark.parametrize("name", corpus())
def test_the_go_fold_gives_the_rows_of_the_python_fold(library, name):
    body = (require_conformance() / name).read_bytes()
    env = events.new_event("t1", pb.ProfileUploaded(task_id="task", instance_id="i", profile_id="p", content=body,
                                                   size=len(body)))
    raw = decompress(body, LIMIT)
    try:
        python = _python_rows(env, raw)
    except ProfileError as refused:  # Go refuses it in Python's words, or declines it (unsure)
        assert_go_refuses_alike(raw, may_decline=True)
        with pytest.raises(ProfileError, match=re.escape(str(refused))):
            profile_rows(env, LIMIT)
        return
    assert (native.fold(raw) is None) == (name in DECLINED)
    assert_same_rows(profile_rows(env, LIMIT), python)


@pytest.mark.parametrize("name", corpus())
def test_the_go_check_gives_the_sample_types_of_the_python_check(library, name):
    body = (require_conformance() / name).read_bytes()
    raw = decompress(body, LIMIT)
    try:
        parsed = parse_profile(raw)
    except ProfileError as refused:
        assert_go_refuses_alike(raw, may_decline=True)
        with pytest.raises(ProfileError, match=re.escape(str(refused))):
            check_profile(body, LIMIT)
        return
    strings = parsed.string_table
    python = [(strings[vt.type].decode("utf-8", "replace"), strings[vt.unit].decode("utf-8", "replace"))
              for vt in parsed.sample_type]
    assert native.sample_types(raw) == (None if name in DECLINED else python)
    assert check_profile(body, LIMIT) == python


def test_every_conformance_file_is_far_under_the_wire_bounds():
    # what decoding costs, counted on the wire (decode.check_wire_counts): the most of the
    # corpus is 113,269 entries, 1,934,626 numbers, 244,630 fields
    root = require_conformance()
    for name in corpus():
        entries, numbers, fields = check_wire_counts(decompress((root / name).read_bytes(), LIMIT))
        assert entries * 20 <= MAX_WIRE_ENTRIES, name
        assert numbers * 20 <= MAX_WIRE_NUMBERS, name
        assert fields * 20 <= MAX_WIRE_FIELDS, name
