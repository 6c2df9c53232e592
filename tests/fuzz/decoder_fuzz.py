"""Fuzz the profile decoder (decompress, parse, validate, fold, rows: what the processor runs on
every upload) with mutated conformance files. Run by tests/unit/test_decoder_fuzz.py in a child
process under a memory limit; standalone: `python -m tests.fuzz.decoder_fuzz --examples 2000`.

A mutated profile must be either decoded or refused with ProfileError; any other exception, a
run over the deadline, or memory over the limit is a bug."""
from __future__ import annotations

import argparse
import gzip
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proftask import events
from proftask.events.v1 import events_pb2 as pb
from proftask.pprof.decode import ProfileError, decompress
from proftask.processing.profile_rows import profile_rows
from tests.conformance.oracle import oracle_files

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


OPS = st.lists(st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "duplicate", "varint"]),
                         st.floats(0, 1, allow_nan=False), st.integers(0, 255), st.integers(1, 64)),
               min_size=1, max_size=8)


OUTCOMES = {"decoded": 0, "refused": 0}


def check(body: bytes) -> None:
    env = events.new_event("fuzz", pb.ProfileUploaded(task_id="t", instance_id="i", profile_id="p", content=body,
                                                     size=len(body)))
    try:
        profile_rows(env, DECOMPRESSED_LIMIT)
        OUTCOMES["decoded"] += 1
    except ProfileError:
        OUTCOMES["refused"] += 1


def run(examples: int) -> None:
    corpus = seeds()

    @settings(max_examples=examples, deadline=10_000, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, len(corpus) - 1), ops=OPS, compress=st.booleans())
    def fuzz(seed, ops, compress):
        body = mutate(corpus[seed], ops)
        check(gzip.compress(body, 1) if compress else body)

    fuzz()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=500)
    run(parser.parse_args().examples)
    print(f"decoder fuzz: ok, {len(seeds())} seed files, {OUTCOMES['decoded']} mutants decoded, "
          f"{OUTCOMES['refused']} refused with ProfileError", file=sys.stderr)
