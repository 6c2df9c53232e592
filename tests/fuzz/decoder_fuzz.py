"""Fuzz the profile decoder (decompress, parse, validate, fold, rows: what the processor runs on
every upload) with mutated conformance files. Run by tests/unit/test_decoder_fuzz.py in a child
process under a memory limit; standalone: `python -m tests.fuzz.decoder_fuzz --examples 2000`.

A mutated profile must be either decoded or refused with ProfileError; any other exception, a
run over the deadline, or memory over the limit is a bug. The Go fold must refuse what Python
refuses, in Python's words unless it declines, and give Python's rows for the rest."""
from __future__ import annotations

import argparse
import gzip
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proftask import events
from proftask.events.v1 import events_pb2 as pb
from proftask.pprof.decode import ProfileError, decompress
from proftask.pprof import native
from proftask.pprof.v1 import profile_pb2
from proftask.processing.profile_rows import _python_rows, profile_rows
from tests.conformance.oracle import oracle_files
from tests.conformance.same_rows import assert_go_refuses_alike, assert_same_rows

DECOMPRESSED_LIMIT = 64 * 1024 * 1024
SMALL = 2 * 1024 * 1024  # mutate the files that decode quickly; the large one only by truncation


def seeds() -> list[bytes]:
    raws = [decompress(p.read_bytes(), DECOMPRESSED_LIMIT) for p in oracle_files()]
    return [r for r in raws if len(r) <= SMALL]


def mutate(raw: bytes, ops: list[tuple[str, float, int, int]]) -> bytes:
    data = bytearray(raw)
    for kind, where, value, length in ops:
        if not data:
            data = bytearray(b"\x00")
        i = int(where * len(data)) % len(data)
        if kind == "flip":
            data[i] ^= 1 << (value % 8)
        elif kind == "set":
            data[i] = value
        elif kind == "insert":
            data[i:i] = bytes([value]) * length
        elif kind == "delete":
            del data[i:i + length]
        elif kind == "truncate":
            del data[i:]
        elif kind == "duplicate":
            data[i:i] = data[i:i + length]
        elif kind == "varint":  # a huge length or count where the parser expects a small one
            data[i:i + 1] = b"\xff\xff\xff\xff\x0f"
    return bytes(data)


EDGES = (0, 1, 2, 3, -1, 7, 100, 2**31, 2**62, 2**63 - 1, -(2**63))


def tamper(raw: bytes, ops: list[tuple[str, float, float, int]]) -> bytes:
    """Mutations that keep the protobuf readable and break what it says: ids, references,
    indexes, values and strings set to edge cases (what a byte flip rarely reaches)."""
    p = profile_pb2.Profile.FromString(raw)

    def pick(seq, at: float):
        return seq[int(at * len(seq)) % len(seq)] if len(seq) else None

    groups = b""
    for kind, at, at2, edge in ops:
        value = EDGES[edge % len(EDGES)]
        unsigned = value % 2**64
        sample, location, function = pick(p.sample, at), pick(p.location, at), pick(p.function, at)
        if kind == "sample.location_id" and sample is not None and sample.location_id:
            sample.location_id[int(at2 * len(sample.location_id)) % len(sample.location_id)] = unsigned
        elif kind == "sample.value" and sample is not None and sample.value:
            sample.value[int(at2 * len(sample.value)) % len(sample.value)] = value
        elif kind == "sample.drop_value" and sample is not None and sample.value:
            del sample.value[-1]
        elif kind == "sample.label" and sample is not None:
            sample.label.add(key=value, str=int(at2 * 10))
        elif kind == "line.function_id" and location is not None and location.line:
            location.line[int(at2 * len(location.line)) % len(location.line)].function_id = unsigned
        elif kind == "location.id" and location is not None:
            location.id = unsigned
        elif kind == "location.no_lines" and location is not None:
            del location.line[:]
        elif kind == "function.id" and function is not None:
            function.id = unsigned
        elif kind == "function.name" and function is not None:
            function.name = value
        elif kind == "function.system_name" and function is not None:
            function.system_name = value
        elif kind == "string" and p.string_table:
            p.string_table[int(at * len(p.string_table)) % len(p.string_table)] = \
                [b"", b"\xff\xfe", b"f<int>(x)", b"a::b[c]", b"main.(*T[...]).M"][edge % 5]
        elif kind == "sample_type" and p.sample_type:
            pick(p.sample_type, at).type = value
        elif kind == "default_sample_type":
            p.default_sample_type = value
        elif kind == "unknown_groups":  # field 100, unknown, as groups nested 50..150 deep (upb: at most 100)
            groups = b"\xa3\x06" * (50 + edge) + b"\xa4\x06" * (50 + edge)
    return p.SerializeToString() + groups


TAMPERS = ("sample.location_id", "sample.value", "sample.drop_value", "sample.label", "line.function_id", "location.id",
           "location.no_lines", "function.id", "function.name", "function.system_name", "string", "sample_type",
           "default_sample_type", "unknown_groups")
TAMPER = st.lists(st.tuples(st.sampled_from(TAMPERS),
                            st.floats(0, 1, allow_nan=False), st.floats(0, 1, allow_nan=False), st.integers(0, 100)),
                  min_size=1, max_size=4)


OPS = st.lists(st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "duplicate", "varint"]),
                         st.floats(0, 1, allow_nan=False), st.integers(0, 255), st.integers(1, 64)),
               min_size=1, max_size=8)


OUTCOMES = {"decoded": 0, "refused": 0, "folded by go": 0, "refused by go": 0}


def _refused_by_go(raw: bytes) -> bool:
    try:
        native.sample_types(raw)
    except ProfileError:
        return True
    return False


def check(body: bytes) -> None:
    """Decoded or refused; and the Go fold (proftask.pprof.native) takes only what the Python
    fold takes, into the same rows."""
    env = events.new_event("fuzz", pb.ProfileUploaded(task_id="t", instance_id="i", profile_id="p", content=body,
                                                     size=len(body)))
    try:
        rows = profile_rows(env, DECOMPRESSED_LIMIT)
        OUTCOMES["decoded"] += 1
    except ProfileError:
        OUTCOMES["refused"] += 1
        rows = None
    try:
        raw = decompress(body, DECOMPRESSED_LIMIT)
    except ProfileError:
        return
    if rows is None:  # refused by Go in Python's words, or declined (and refused by Python)
        assert_go_refuses_alike(raw, may_decline=True)
        OUTCOMES["refused by go"] += _refused_by_go(raw)
        return
    by_go = native.fold(raw)  # raises if Go refuses a profile Python takes
    assert_same_rows(rows, _python_rows(env, raw))
    OUTCOMES["folded by go"] += by_go is not None


def run(examples: int) -> None:
    corpus = seeds()

    @settings(max_examples=examples, deadline=10_000, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, len(corpus) - 1), ops=OPS | TAMPER, compress=st.booleans())
    def fuzz(seed, ops, compress):
        body = tamper(corpus[seed], ops) if ops[0][0] in TAMPERS else mutate(corpus[seed], ops)
        check(gzip.compress(body, 1) if compress else body)

    fuzz()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=500)
    run(parser.parse_args().examples)
    print(f"decoder fuzz: ok, {len(seeds())} seed files, {OUTCOMES['decoded']} mutants decoded, "
          f"{OUTCOMES['refused']} refused with ProfileError ({OUTCOMES['refused by go']} in the same words by Go), "
          f"{OUTCOMES['folded by go']} of the decoded folded by Go "
          f"into the Python rows", file=sys.stderr)
