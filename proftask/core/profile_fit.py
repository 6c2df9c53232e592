"""Does a profile fit its task's event? A HEAP task must not take a CPU profile (and then show a
cpu/nanoseconds graph under "HEAP task").

The rule follows what Go's runtime writes for each event (runtime/pprof):
- CPU: samples/count, cpu/nanoseconds (older or trimmed profiles carry only cpu/nanoseconds;
  fgprof's wall-time profile keeps samples/count beside time/nanoseconds);
- HEAP and ALLOCS: one profile serves both, alloc_objects/count, alloc_space/bytes,
  inuse_objects/count, inuse_space/bytes (a truncated or converted one may keep only one of them);
- BLOCK and MUTEX: contentions/count, delay/nanoseconds;
- GOROUTINE: goroutine/count; THREADCREATE: threadcreate/count.

A profile fits when at least one of its sample types is one its event writes: a profile made
for another event shares none (Go's kinds are disjoint), while a profile with an extra type
(fgprof's time/nanoseconds, .NET's lock and alloc types beside cpu/nanoseconds) still fits.
A profile none of whose types Go writes for any event says nothing about its kind and fits every
event: unnamed types (empty type and unit, allowed by pprof and seen in the wild) and other
runtimes' own (Node's wall/microseconds or objects/count and space/bytes) stay analysable.
"""
from __future__ import annotations

from collections.abc import Iterable

from proftask.core.tasks import EventType

_CPU = frozenset({("samples", "count"), ("cpu", "nanoseconds")})
_MEMORY = frozenset({("alloc_objects", "count"), ("alloc_space", "bytes"),
                     ("inuse_objects", "count"), ("inuse_space", "bytes")})
_CONTENTION = frozenset({("contentions", "count"), ("delay", "nanoseconds")})

EVENT_SAMPLE_TYPES: dict[EventType, frozenset[tuple[str, str]]] = {
    EventType.CPU: _CPU,
    EventType.HEAP: _MEMORY,
    EventType.ALLOCS: _MEMORY,
    EventType.BLOCK: _CONTENTION,
    EventType.MUTEX: _CONTENTION,
    EventType.GOROUTINE: frozenset({("goroutine", "count")}),
    EventType.THREADCREATE: frozenset({("threadcreate", "count")}),
}


def _spell(types: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"{t}/{u}" for t, u in types) or "none"


def misfit(event: EventType, sample_types: Iterable[tuple[str, str]]) -> str | None:
    """None when a profile of these (type, unit) sample types fits a task of `event`; otherwise
    the reason, naming what was received and what the event expects."""
    received = list(sample_types)
    expected = EVENT_SAMPLE_TYPES[event]
    # The events whose profile this looks like, to say what was sent instead.
    looks_like = [e.name for e, types in EVENT_SAMPLE_TYPES.items() if any(st in types for st in received)]
    if not looks_like or any(st in expected for st in received):
        return None
    guess = f" (a {' or '.join(looks_like)} profile?)"
    return (f"the profile does not fit a {event.name} task: it carries sample types {_spell(received)}{guess}; "
            f"a {event.name} profile carries {_spell(sorted(expected))}")
