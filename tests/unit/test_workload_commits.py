"""Coalesced offset commits: one request in flight, the rest merged, in order, flushable; a
revocation sends what is queued and the revoked partitions' processed prefix."""

import asyncio

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from scalingdemo_workload.commits import CoalescedCommits, Offsets
from scalingdemo_workload.config import load_settings
from scalingdemo_workload.consumers import Fetch, TopicWorker
from scalingdemo_workload.metrics import Metrics

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


class Consumer:
    """The one call of AIOKafkaConsumer a hand-over makes: commit, recorded."""

    def __init__(self) -> None:
        self.commits: list[Offsets] = []

    async def commit(self, offsets: Offsets) -> None:
        self.commits.append(offsets)


def processing(done: dict[TopicPartition, list[bool]]) -> Fetch:
    """A fetch of offsets 10, 11, 12 on each partition of `done`, with those flags."""
    fields = {"timestamp": 0, "timestamp_type": 0, "key": None, "value": b"{}", "checksum": None}
    sizes = {"serialized_key_size": 0, "serialized_value_size": 2, "headers": []}
    fetch = Fetch(
        {
            tp: [ConsumerRecord(tp.topic, tp.partition, n, **fields, **sizes) for n in (10, 11, 12)]
            for tp in done
        }
    )
    fetch.done = done
    return fetch


async def noop(record: ConsumerRecord) -> None:
    return None


async def test_a_revocation_commits_what_is_queued_and_the_revoked_processed_prefix():
    worker = TopicWorker(load_settings({}), Metrics(), "t", "g", noop, 2)
    consumer = Consumer()
    worker._consumer = consumer
    worker._commits.add({P0: 7, P1: 3})
    fetch = processing({P0: [True, True, False], P1: [True, False, False]})
    worker._fetch = fetch
    await worker.hand_over({P0})
    assert fetch.revoked == {P0}
    assert [tp for tp, _, _ in fetch.work()] == [P1] * 3
    committed: Offsets = {}
    for offsets in consumer.commits:
        committed.update(offsets)
    assert committed == {P0: 12, P1: 3}
