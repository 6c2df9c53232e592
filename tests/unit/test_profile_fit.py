"""Which profile a task of each event takes (issue 12 item 8): real Go profiles of every kind fit
their event, and no other kind's event."""
import pathlib

import pytest

from proftask.core.profile_fit import misfit
from proftask.core.tasks import EventType
from proftask.ingest.upload import check_profile
from tests.conformance.oracle import CONFORMANCE, require_conformance

E = EventType
LIMIT = 512 * 1024 * 1024
HERE = pathlib.Path(__file__).resolve().parents[1] / "conformance"

# Every real Go profile of the corpus, by the events that must take it.
MEMORY, CPU, CONTENTION = {E.HEAP, E.ALLOCS}, {E.CPU}, {E.BLOCK, E.MUTEX}
GO_PROFILES = {
    "parca-alloc_objects.pb.gz": MEMORY, "parca-alloc_space_delta.pb.gz": MEMORY,
    "parca-fgprof.pb.gz": CPU, "parca-fib.pb.gz": CPU, "parca-labels.pb.gz": CPU,
    **{f"parca-many-{n}.pb.gz": MEMORY for n in (
        1644509272337470000, 1644509275338070000, 1644509278338696000, 1644509281339135000,
        1644509284338649000, 1644509287338709000, 1644509290338056000, 1644509293338714000,
        1644509296350592000, 1644509299337903000)},
    "parca-profile-with-labels.pb.gz": CPU, "parca-profile1.pb.gz": CPU,
    "parca-single-stack.pb.gz": CPU, "parca-two-stacks.pb.gz": CPU, "pprof-sample.cpu.pb.gz": CPU,
    "pyroscope-cpu.pb.gz": CPU, "pyroscope-cpu_go_truncated_1.pb.gz": CPU,
    "pyroscope-go.cpu.labels.pprof": CPU, "pyroscope-heap": MEMORY, "pyroscope-heap.pb.gz": MEMORY,
    "pyroscope-heap_delta": MEMORY, "pyroscope-heap_go_truncated_1.pb.gz": MEMORY,
    "pyroscope-heap_go_truncated_3.pb.gz": MEMORY, "pyroscope-phlaredb-profile": CPU,
    "pyroscope-req_2.pprof": {E.GOROUTINE}, "pyroscope-req_3.pprof": CONTENTION,
    "pyroscope-req_4.pprof": CONTENTION, "pyroscope-req_5.pprof": MEMORY,
    "pyroscope-single_group_with_optional_span_id.pb.gz": CPU,
}


def sample_types(path: pathlib.Path) -> list[tuple[str, str]]:
    return check_profile(path.read_bytes(), LIMIT)


def test_every_go_profile_of_the_corpus_is_listed():
    listed = {p.name for p in (require_conformance() / "go").iterdir()}
    assert listed == set(GO_PROFILES)


@pytest.mark.parametrize("name", sorted(GO_PROFILES))
def test_a_real_go_profile_fits_its_event_and_no_other_kind(name):
    types = sample_types(require_conformance() / "go" / name)
    fits = {event for event in EventType if misfit(event, types) is None}
    assert fits == GO_PROFILES[name], types


def test_threadcreate_profile_fits_threadcreate_only():
    types = sample_types(HERE / "go-threadcreate.pb.gz")
    assert types == [("threadcreate", "count")]
    assert {event for event in EventType if misfit(event, types) is None} == {E.THREADCREATE}


def test_the_large_cpu_profile_fits_cpu():
    types = sample_types(require_conformance() / "large" / "pprof-large.cpu.pb.gz")
    assert misfit(E.CPU, types) is None
    assert misfit(E.HEAP, types) is not None


def test_the_reason_names_what_was_received_and_what_the_event_expects():
    reason = misfit(E.HEAP, [("samples", "count"), ("cpu", "nanoseconds")])
    assert reason == ("the profile does not fit a HEAP task: it carries sample types samples/count, "
                      "cpu/nanoseconds (a CPU profile?); a HEAP profile carries alloc_objects/count, "
                      "alloc_space/bytes, inuse_objects/count, inuse_space/bytes")
    assert "(a HEAP or ALLOCS profile?)" in misfit(E.CPU, [("inuse_space", "bytes")])
    assert misfit(E.GOROUTINE, [("contentions", "count"), ("delay", "nanoseconds")]) == (
        "the profile does not fit a GOROUTINE task: it carries sample types contentions/count, "
        "delay/nanoseconds (a BLOCK or MUTEX profile?); a GOROUTINE profile carries goroutine/count")


def test_units_count_too():
    assert misfit(E.CPU, [("cpu", "milliseconds"), ("inuse_space", "bytes")]) is not None


def test_types_go_never_writes_fit_any_event():
    """Other runtimes' profiles (Node's wall time and heap) say nothing about a Go event."""
    for types in ([("wall", "microseconds")], [("objects", "count"), ("space", "bytes")]):
        assert all(misfit(event, types) is None for event in EventType)


@pytest.mark.parametrize("name", sorted(p.name for p in (CONFORMANCE / "other").glob("*")))
def test_every_profile_of_other_runtimes_fits_some_event(name):
    types = sample_types(require_conformance() / "other" / name)
    assert any(misfit(event, types) is None for event in EventType), types


def test_an_extra_type_beside_the_events_does_not_refuse():
    dotnet = [("cpu", "nanoseconds"), ("exception", "count"), ("alloc_samples", "count"),
              ("alloc_size", "bytes"), ("lock_count", "count"), ("lock_time", "nanoseconds")]
    assert misfit(E.CPU, dotnet) is None
    assert misfit(E.MUTEX, dotnet) is not None


def test_unnamed_sample_types_fit_any_event():
    for event in EventType:
        assert misfit(event, [("", "")]) is None


def test_the_unnamed_edge_profile_is_accepted_by_every_event():
    types = sample_types(require_conformance() / "edge" / "parca-empty-sample-type.pb.gz")
    assert all(misfit(event, types) is None for event in EventType)
