"""The offset Faust commits never passes a message in flight (faust-streaming #606): a stop or a
kill after the commit would lose it, since a restart reads from the committed offset on."""
from __future__ import annotations

import faust
from faust.types import TP
from faust.types.tuples import ConsumerMessage as Message

from proftask import faust_commits
from proftask.faust_commits import committable_offset


def test_the_run_of_acked_offsets_from_the_last_commit_is_committed():
    assert committable_offset([5, 6, 7, 9], committed=5, in_flight=[8]) == (8, 3)


def test_nothing_is_committed_while_the_next_offset_to_read_is_in_flight():
    # Faust's own check, `min(acked) - committed > 1`, let this one through and committed 8
    assert committable_offset([6, 7], committed=5, in_flight=[5]) == (None, 0)
    assert committable_offset([6, 7], committed=5, in_flight=[]) == (None, 0)


def test_before_the_first_commit_the_run_stops_at_the_lowest_offset_in_flight():
    # a fresh group has no committed offset (Faust reads a committed 0 as none)
    assert committable_offset([1, 2, 3], committed=None, in_flight=[0, 4]) == (None, 0)
    assert committable_offset([0, 1, 3, 4], committed=None, in_flight=[2]) == (2, 2)
    assert committable_offset([0, 1, 2], committed=None, in_flight=[]) == (3, 3)


def test_nothing_acked_commits_nothing():
    assert committable_offset([], committed=3, in_flight=[3]) == (None, 0)


def _taken(app: faust.App, tp: TP, offset: int) -> Message:
    """A message as a stream of `app` takes it."""
    message = Message(tp.topic, tp.partition, offset, 0.0, 0, None, None, b"v", None, tp=tp,
                      generation_id=app.consumer_generation_id)
    message.tracked = True
    app.sensors.on_message_in(tp, offset, message)
    return message


def _ack(app: faust.App, message: Message) -> None:
    message.ack(app.consumer)


def _app(tmp_path) -> faust.App:
    app = faust.App("commits-test", broker="kafka://localhost:1", datadir=str(tmp_path),
                    web_enabled=False, autodiscover=False)
    faust_commits.install(app)
    app.topics.acking_topics.add("proftask.profiles")  # as an agent's subscription does
    return app


def test_an_offset_taken_and_dropped_unacked_holds_the_commit_back(tmp_path):
    # A stop cancels the actors and their batches stay unacked; the first commit of a partition
    # (none before) went past them.
    app = _app(tmp_path)
    tp = TP("proftask.profiles", 1)
    dropped = [_taken(app, tp, offset) for offset in (0, 1)]
    stored = _taken(app, tp, 2)
    _ack(app, stored)
    del dropped  # nothing of the messages themselves need be left
    assert app.consumer._filter_committable_offsets([tp]) == {}


def test_the_next_offset_to_read_in_flight_holds_the_commit_back_until_acked(tmp_path):
    app = _app(tmp_path)
    consumer = app.consumer
    tp = TP("proftask.profiles", 0)
    consumer._committed_offset[tp] = 5
    head, *later = [_taken(app, tp, offset) for offset in (5, 6, 7)]
    for message in later:
        _ack(app, message)
    assert consumer._filter_committable_offsets([tp]) == {}
    _ack(app, head)
    assert consumer._filter_committable_offsets([tp]) == {tp: 8}
    assert consumer._acked[tp] == []


def test_a_message_a_stream_skipped_unprocessed_is_not_committed(tmp_path):
    # taken during a rebalance, Faust skips it and acks it; the rebalance's seek reads it again
    app = _app(tmp_path)
    tp = TP("proftask.profiles", 0)
    skipped = Message(tp.topic, tp.partition, 0, 0.0, 0, None, None, b"v", None, tp=tp)
    _ack(app, skipped)
    assert app.consumer._filter_committable_offsets([tp]) == {}


def test_a_record_that_could_not_be_decoded_does_not_stop_the_commits(tmp_path):
    # the conductor acks it for every channel, untracked (no stream took it); refused, no commit
    # of the partition ever passed it again
    app = _app(tmp_path)
    app.flow_control.resume()
    tp = TP("proftask.profiles", 0)
    app.consumer._committed_offset[tp] = 5
    undecodable = Message(tp.topic, tp.partition, 5, 0.0, 0, None, None, b"v", None, tp=tp,
                          generation_id=app.consumer_generation_id)
    undecodable.incref()
    undecodable.ack(app.consumer)
    _ack(app, _taken(app, tp, 6))
    assert app.consumer._filter_committable_offsets([tp]) == {tp: 7}


def _rebalance(app: faust.App, tp: TP) -> None:
    """A rebalance that gives `tp` back to this member: Faust forgets the partition's acks and
    committed offset on revoke (Consumer.on_partitions_revoked), and the committed offset is read
    again only once the recovery seeks (perform_seek); the new generation's messages are taken
    only after that. Faust does not stop the actors: a batch taken before is still being stored."""
    consumer = app.consumer
    for state in (consumer._gap, consumer._acked, consumer._acked_index, consumer._read_offset,
                  consumer._committed_offset):
        state.pop(tp, None)
    app.consumer_generation_id += 1


def test_a_batch_taken_before_a_rebalance_holds_the_first_commit_back(tmp_path):
    # a fresh group (nothing committed): an actor stores 0 and 1, another stored 2; a rebalance in
    # between, and 2's ack committed 3 past them (a stop then dropped them, lost)
    app = _app(tmp_path)
    tp = TP("proftask.profiles", 0)
    app.consumer_generation_id = 1
    held = [_taken(app, tp, offset) for offset in (0, 1)]
    stored = _taken(app, tp, 2)
    _rebalance(app, tp)
    _ack(app, stored)
    assert app.consumer._filter_committable_offsets([tp]) == {}
    for message in held:
        _ack(app, message)
    assert app.consumer._filter_committable_offsets([tp]) == {tp: 3}


def test_a_batch_taken_before_a_rebalance_holds_the_commit_back_until_the_seek(tmp_path):
    # the partition was committed up to 100; until the recovery seeks, Faust reads it as never
    # committed, and the commit handler (each second) committed 103 past 100 and 101
    app = _app(tmp_path)
    consumer = app.consumer
    tp = TP("proftask.profiles", 0)
    app.consumer_generation_id = 1
    consumer._committed_offset[tp] = 100
    held = [_taken(app, tp, offset) for offset in (100, 101)]
    stored = _taken(app, tp, 102)
    _rebalance(app, tp)
    _ack(app, stored)
    assert consumer._filter_committable_offsets([tp]) == {}
    consumer._committed_offset[tp] = 100  # perform_seek; the new generation reads 100 on again
    assert consumer._filter_committable_offsets([tp]) == {}
    again = [_taken(app, tp, offset) for offset in (100, 101, 102)]
    for message in again[:2]:
        _ack(app, message)
    assert consumer._filter_committable_offsets([tp]) == {tp: 103}
    del held


def test_offsets_below_the_committed_one_never_hold_a_commit_back_and_are_forgotten(tmp_path):
    # taken in an earlier generation, and committed past meanwhile by another member: never
    # acked here (Faust refuses acks below the committed offset), nor read again
    app = _app(tmp_path)
    consumer = app.consumer
    tp = TP("proftask.profiles", 0)
    app.consumer_generation_id = 1
    stale = [_taken(app, tp, offset) for offset in (40, 41)]
    _rebalance(app, tp)
    consumer._committed_offset[tp] = 100  # perform_seek
    for message in stale:
        _ack(app, message)
    _ack(app, _taken(app, tp, 100))
    assert consumer._filter_committable_offsets([tp]) == {tp: 101}
    assert faust_commits._taken_offsets(consumer).taken[tp] == set()
