"""The offset Faust commits for a partition: never past a message taken and not yet stored.

A restart reads from the committed offset on, so an offset committed past a message in flight
loses that message. faust-streaming 0.15.3 (`Consumer._new_offset`) commits the first run of
consecutive acked offsets, and with several actors on one partition acks come out of order:
- it checks the run's head against the last commit with `min(acked) - committed > 1` (upstream
  issue #606, PR #707 unmerged); the committed offset is the next one to read, so with that one
  in flight and the next acked it committed past it;
- with no commit yet (Faust also reads a committed 0 as none) it commits whatever run was
  acked first, whatever is still in flight below it: after a SIGTERM mid-burst, whose stop
  leaves the actors' batches unacked, 2 to 4 of 10 profiles were lost that way
  (tests/integration/test_graceful_stop.py);
- Faust does not stop the actors on a rebalance, and forgets the committed offset on revoke: a
  batch taken before it, still being stored after it, is in flight for the new generation too;
- its pure-Python stream iterator (not the Cython one) acks, and so commits, a message it
  skipped unprocessed during a rebalance.

`committable_offset` is the rule, pure; `TakenOffsets` records every offset taken until it is
committed; `install` puts both in place. Faust's gap handling (offsets with no message, such as
transaction markers) is kept as it was."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import faust
from faust import Sensor
from faust.transport.consumer import Consumer
from faust.types import TP, Message


def committable_offset(acked: list[int], committed: int | None,
                       in_flight: Iterable[int]) -> tuple[int | None, int]:
    """The offset to commit and how many of the sorted `acked` it covers: the run of
    consecutive acked offsets that starts at the last commit (`committed`, the next offset to
    read; None before the first) and stops before the lowest offset still in flight."""
    if not acked:
        return None, 0
    if committed is not None and acked[0] > committed:
        return None, 0  # the next offset to read is not acked yet
    head = min(in_flight, default=None)
    run = 0
    while run < len(acked) and (run == 0 or acked[run] == acked[run - 1] + 1):
        if head is not None and acked[run] >= head:
            break
        run += 1
    if run == 0:
        return None, 0
    return acked[run - 1] + 1, run


class TakenOffsets(Sensor):
    """Every offset a stream of this app has taken, by partition, until it is committed: what
    Faust's commit does not consult. A message taken and then dropped unacked (its actor stopped
    mid-batch) stays in flight, and holds the partition's commits back until a rebalance."""

    def __init__(self) -> None:
        super().__init__()
        self.taken: dict[TP, set[int]] = defaultdict(set)

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        self.taken[tp].add(offset)

    def in_flight(self, tp: TP, acked: set[int]) -> list[int]:
        """Whatever generation took them: Faust does not stop the actors on a rebalance, so a
        batch taken before one is still being stored after it, and until the new generation's
        seek (Faust forgets the committed offset on revoke) or before a partition's first commit
        nothing else keeps the commit behind it. What is below the committed offset was forgotten
        (forget_below): it is never read again (another member committed past it; Faust refuses
        its acks)."""
        return [offset for offset in self.taken[tp] if offset not in acked]

    def forget_below(self, tp: TP, offset: int) -> None:  # all acked, or committed past
        taken = self.taken[tp]
        if taken and min(taken) < offset:
            self.taken[tp] = {taken_at for taken_at in taken if taken_at >= offset}


def _taken_offsets(consumer: Consumer) -> TakenOffsets:
    return next(sensor for sensor in consumer.app.sensors if isinstance(sensor, TakenOffsets))


def _new_offset(self: Consumer, tp: TP) -> int | None:
    acked = self._acked[tp]
    if not acked:
        return None
    gaps = self._gap[tp]
    if gaps:  # as Faust does: offsets known to hold no message count as acked
        highest = max(acked)
        candidates = sorted(gaps.overlap(0, highest), key=lambda interval: interval.begin)
        if candidates:
            filled = [offset for interval in candidates
                      for offset in range(interval.begin, interval.end)]
            acked.extend(filled)
            gaps.chop(0, max(filled[-1], highest + 1))
    acked.sort()
    taken = _taken_offsets(self)
    committed = self._committed_offset[tp]
    if committed is not None:
        taken.forget_below(tp, committed)
    in_flight = taken.in_flight(tp, self._acked_index[tp])
    offset, covered = committable_offset(acked, committed, in_flight)
    if offset is not None:
        self._acked_index[tp].difference_update(acked[:covered])
        del acked[:covered]
        taken.forget_below(tp, offset)
    return offset


def _ack(self: Consumer, message: Message) -> bool:
    # A message Faust's pure-Python stream iterator skipped (flow stopped for a rebalance, or of
    # a revoked generation: its own test) was never processed, yet it acks it; it is read again
    # after the rebalance's seek. (The Cython iterator acks no skipped message.) Other untracked
    # acks, a record the conductor could not decode, count: refused, no later commit passed it.
    app = self.app
    if not message.tracked and (not app.flow_control.is_active()
                                or message.generation_id != app.consumer_generation_id):
        return False
    return _faust_ack(self, message)


_faust_ack = Consumer.ack


def install(app: faust.App) -> None:
    """Put the rule in place of Faust's (once per process) and record what `app` takes."""
    Consumer._new_offset = _new_offset  # type: ignore[method-assign]
    Consumer.ack = _ack  # type: ignore[method-assign]
    if not any(isinstance(sensor, TakenOffsets) for sensor in app.sensors):
        app.sensors.add(TakenOffsets())
