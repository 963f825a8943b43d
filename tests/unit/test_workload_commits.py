"""Coalesced offset commits: one request in flight, the rest merged, in order, flushable."""

import asyncio

import pytest
from aiokafka import TopicPartition
from scalingdemo_workload.commits import CoalescedCommits, Offsets

pytestmark = pytest.mark.unit

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)


class Coordinator:
    """Records each commit request and holds it until the test lets it through."""

    def __init__(self) -> None:
        self.requests: list[Offsets] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.gate = asyncio.Event()

    async def commit(self, offsets: Offsets) -> None:
        self.requests.append(offsets)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await self.gate.wait()
        self.in_flight -= 1


async def test_offsets_queued_during_a_commit_go_out_merged_as_the_next_one():
    coordinator = Coordinator()
    commits = CoalescedCommits(coordinator.commit)
    commits.add({P0: 10})
    await asyncio.sleep(0)
    commits.add({P0: 20, P1: 5})
    commits.add({P0: 30})
    await asyncio.sleep(0)
    assert coordinator.requests == [{P0: 10}]
    coordinator.gate.set()
    await commits.flush()
    assert coordinator.requests == [{P0: 10}, {P0: 30, P1: 5}]
    assert coordinator.most_in_flight == 1


async def test_flush_waits_for_what_is_queued_while_it_waits():
    coordinator = Coordinator()
    commits = CoalescedCommits(coordinator.commit)
    commits.add({P0: 1})
    flushed = asyncio.create_task(commits.flush())
    await asyncio.sleep(0)
    commits.add({P0: 2})
    coordinator.gate.set()
    await flushed
    assert coordinator.requests == [{P0: 1}, {P0: 2}]
    assert coordinator.in_flight == 0


async def test_a_new_commit_starts_after_the_last_one_ended():
    coordinator = Coordinator()
    coordinator.gate.set()
    commits = CoalescedCommits(coordinator.commit)
    commits.add({P0: 1})
    await commits.flush()
    commits.add({})
    commits.add({P1: 4})
    await commits.flush()
    assert coordinator.requests == [{P0: 1}, {P1: 4}]


async def test_a_failure_that_is_not_kafkas_comes_out_of_flush():
    async def broken(offsets: Offsets) -> None:
        raise RuntimeError("bug")

    commits = CoalescedCommits(broken)
    commits.add({P0: 1})
    with pytest.raises(RuntimeError, match="bug"):
        await commits.flush()


async def test_a_failure_that_is_not_kafkas_comes_out_of_the_next_add():
    async def broken(offsets: Offsets) -> None:
        raise RuntimeError("bug")

    commits = CoalescedCommits(broken)
    commits.add({P0: 1})
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="bug"):
        commits.add({P0: 2})
