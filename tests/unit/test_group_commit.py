"""Group commit (proftask/processing/group_commit.py): writes that arrive during a write are made
one write, each returns only once its own items are written, and a failure or a stop loses
nothing silently."""
import asyncio

import pytest

from proftask.processing.group_commit import GroupCommit, GroupWriteCancelled


class Sink:
    """Records each group written. Every write waits until the test lets it go (`release`), so
    that others can arrive meanwhile, and fails if the test says so."""

    def __init__(self):
        self.groups: list[list[str]] = []
        self.calls: list[tuple[list[str], asyncio.Future]] = []
        self.abandoned: list[list[str]] = []

    async def write(self, items: list[str]) -> None:
        outcome = asyncio.get_running_loop().create_future()
        self.calls.append((items, outcome))
        error = await outcome
        if error is not None:
            raise error
        self.groups.append(items)

    def abandon(self, items: list[str]) -> None:
        self.abandoned.append(items)

    async def release(self, call: int, error: BaseException | None = None) -> None:
        await _until(lambda: len(self.calls) > call)
        self.calls[call][1].set_result(error)


async def _until(condition) -> None:
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never came true")


async def _a_written_while_b_and_c_wait() -> tuple[Sink, GroupCommit, asyncio.Task, asyncio.Task]:
    """A write of ["a"] in progress while ["b"] and ["c"] arrive; returns once "a" is written."""
    sink = Sink()
    commit = GroupCommit(sink.write, sink.abandon)
    first = asyncio.create_task(commit.write(["a"]))
    await _until(lambda: len(sink.calls) == 1)
    second = asyncio.create_task(commit.write(["b"]))
    third = asyncio.create_task(commit.write(["c"]))
    await _until(lambda: len(commit._waiting) == 2)
    assert not second.done() and not third.done()
    await sink.release(0)
    await first
    return sink, commit, second, third


def test_writes_that_arrive_during_a_write_go_in_together_as_the_next_one():
    async def scenario():
        sink = Sink()
        commit = GroupCommit(sink.write, sink.abandon)
        first = asyncio.create_task(commit.write(["a"]))
        await _until(lambda: len(sink.calls) == 1)
        later = [asyncio.create_task(commit.write([name])) for name in ("b", "c", "d")]
        await _until(lambda: len(commit._waiting) == 3)
        await sink.release(0)
        await first
        assert not any(t.done() for t in later)  # nobody returns before its items are written
        await sink.release(1)
        await asyncio.gather(*later)
        return sink.groups

    assert asyncio.run(scenario()) == [["a"], ["b", "c", "d"]]


def test_a_lone_write_goes_in_at_once():
    async def scenario():
        sink = Sink()
        commit = GroupCommit(sink.write, sink.abandon)
        for call, items in enumerate((["a", "b"], ["c"])):
            write = asyncio.create_task(commit.write(items))
            await sink.release(call)
            await write
        return sink.groups

    assert asyncio.run(scenario()) == [["a", "b"], ["c"]]


def test_every_writer_of_a_failed_group_gets_its_error_and_the_next_group_is_written():
    async def scenario():
        sink, commit, second, third = await _a_written_while_b_and_c_wait()
        await sink.release(1, RuntimeError("ClickHouse refused"))  # the group of b and c fails
        results = await asyncio.gather(second, third, return_exceptions=True)
        last = asyncio.create_task(commit.write(["d"]))
        await sink.release(2)
        await last
        return sink.groups, results

    groups, results = asyncio.run(scenario())
    assert groups == [["a"], ["d"]]
    assert [str(r) for r in results] == ["ClickHouse refused", "ClickHouse refused"]


def test_the_others_of_a_group_whose_write_is_cancelled_are_told_it_was():
    async def scenario():
        sink, commit, second, third = await _a_written_while_b_and_c_wait()
        await _until(lambda: len(sink.calls) == 2)  # b leads the group of b and c, and is stopped
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        with pytest.raises(GroupWriteCancelled):
            await third  # not written, and not returned as if it were
        last = asyncio.create_task(commit.write(["d"]))  # the next write leads a group of its own
        await sink.release(2)
        await last
        return sink.groups, sink.calls[1][0], sink.abandoned

    groups, cancelled_group, abandoned = asyncio.run(scenario())
    assert groups == [["a"], ["d"]]
    assert cancelled_group == ["b", "c"]
    assert abandoned == []  # b and c were given to a write (the processor's settles what it was given)


def test_a_writer_stopped_before_any_write_took_its_items_hands_them_back():
    async def scenario():
        sink = Sink()
        commit = GroupCommit(sink.write, sink.abandon)
        first = asyncio.create_task(commit.write(["a"]))
        await _until(lambda: len(sink.calls) == 1)
        waiting = asyncio.create_task(commit.write(["b"]))
        await _until(lambda: len(commit._waiting) == 1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await sink.release(0)
        await first
        last = asyncio.create_task(commit.write(["c"]))
        await sink.release(1)
        await last
        return sink.groups, sink.abandoned

    groups, abandoned = asyncio.run(scenario())
    assert groups == [["a"], ["c"]]  # b was never written: the caller settles it
    assert abandoned == [["b"]]
