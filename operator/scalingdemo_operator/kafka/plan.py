"""The pure plan: desired versus observed topics -> what to write, and what to refuse.

Semantics (docs/topics.md explains them for users):

- Partitions only grow. A smaller count in the spec is refused (Kafka cannot remove partitions)
  and so is a different replication factor (that needs a partition reassignment, which this
  path does not do). A refusal concerns only that setting: the topic's other changes are made.
- The spec's config is the topic's COMPLETE set of dynamic (per-topic) configs. Kafka's
  AlterConfigs, the only config call aiokafka offers, replaces the whole set: keys left out go
  back to the broker default. We make that the contract instead of emulating an incremental
  update: when the dynamic configs on the broker differ from the spec in any way (a value, a key
  set by hand, a key dropped from the spec), the spec's full set is written. Broker-wide
  defaults and static broker settings are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace

from ..api import Event
from .model import DesiredTopic, ObservedTopic, TopicSettings, TopicsResult, TopicStatus


@dataclass(frozen=True)
class PartitionIncrease:
    """Partitions to add to an existing topic (Kafka can add them, never remove them)."""

    topic: str
    current: int
    desired: int

    @property
    def event(self) -> Event:
        return Event(
            "Normal",
            "TopicPartitionsIncreased",
            f"topic {self.topic}: partitions raised from {self.current} to {self.desired}",
        )


@dataclass(frozen=True)
class ConfigChange:
    """The complete config to write, and what differs: key -> (before, after), None if unset."""

    topic: str
    config: Mapping[str, str]
    changed: Mapping[str, tuple[str | None, str | None]]

    @property
    def event(self) -> Event:
        changes = ", ".join(
            f"{key} {_shown(before)} -> {_shown(after)}"
            for key, (before, after) in self.changed.items()
        )
        return Event("Normal", "TopicConfigChanged", f"topic {self.topic}: {changes}")


def _shown(value: str | None) -> str:
    return "(broker default)" if value is None else value


def creation_event(topic: DesiredTopic) -> Event:
    """Says everything the topic was created with: the spec may change before anyone looks."""
    config = ", ".join(f"{key}={value}" for key, value in sorted(topic.config.items()))
    return Event(
        "Normal",
        "TopicCreated",
        f"topic {topic.name} created with {topic.partitions} partitions, replication factor "
        f"{topic.replication_factor}" + (f" and config {config}" if config else ""),
    )


@dataclass(frozen=True)
class Changes:
    """Writes to the broker: those a plan wants, or the part the broker acknowledged."""

    create: tuple[DesiredTopic, ...] = ()
    increase: tuple[PartitionIncrease, ...] = ()
    reconfigure: tuple[ConfigChange, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.create or self.increase or self.reconfigure)

    @property
    def events(self) -> tuple[Event, ...]:
        """One event per change, to announce the acknowledged ones."""
        return (
            *(creation_event(topic) for topic in self.create),
            *(increase.event for increase in self.increase),
            *(change.event for change in self.reconfigure),
        )


@dataclass(frozen=True)
class TopicPlan:
    """What to change on the broker, and what the spec asks for that cannot be done."""

    changes: Changes = Changes()
    refused: tuple[Event, ...] = ()


@dataclass(frozen=True)
class Applied:
    """The changes the broker acknowledged, and its per-topic errors for the others."""

    done: Changes = Changes()
    failed: tuple[Event, ...] = ()


def unique(desired: Iterable[DesiredTopic]) -> tuple[DesiredTopic, ...]:
    """Desired topics without repeats; one name with two definitions is a caller's bug."""
    by_name: dict[str, DesiredTopic] = {}
    for topic in desired:
        if by_name.setdefault(topic.name, topic) != topic:
            raise ValueError(f"topic {topic.name} is desired twice with different settings")
    return tuple(by_name.values())


def plan(desired: Iterable[DesiredTopic], observed: Mapping[str, ObservedTopic]) -> TopicPlan:
    """Compare desired with observed topics (missing from `observed` = does not exist)."""
    create: list[DesiredTopic] = []
    increase: list[PartitionIncrease] = []
    reconfigure: list[ConfigChange] = []
    refused: list[Event] = []
    for topic in unique(desired):
        current = observed.get(topic.name)
        if current is None:
            create.append(topic)
            continue
        refused.extend(_refusals(topic, current))
        if topic.partitions > current.partitions:
            increase.append(PartitionIncrease(topic.name, current.partitions, topic.partitions))
        change = _config_change(topic, current)
        if change is not None:
            reconfigure.append(change)
    return TopicPlan(Changes(tuple(create), tuple(increase), tuple(reconfigure)), tuple(refused))


def _refusals(topic: DesiredTopic, current: ObservedTopic) -> Iterator[Event]:
    if topic.partitions < current.partitions:
        yield Event(
            "Warning",
            "PartitionDecreaseRefused",
            f"topic {topic.name} has {current.partitions} partitions and the spec asks for "
            f"{topic.partitions}: Kafka cannot remove partitions, the topic keeps "
            f"{current.partitions}",
        )
    if topic.replication_factor != current.replication_factor:
        yield Event(
            "Warning",
            "ReplicationFactorChangeRefused",
            f"topic {topic.name} has replication factor {current.replication_factor} and the "
            f"spec asks for {topic.replication_factor}: that needs a partition reassignment, "
            f"which the operator does not do, the topic keeps {current.replication_factor}",
        )


def _config_change(topic: DesiredTopic, current: ObservedTopic) -> ConfigChange | None:
    keys = sorted(topic.config.keys() | current.config.keys())
    changed = {
        key: (current.config.get(key), topic.config.get(key))
        for key in keys
        if current.config.get(key) != topic.config.get(key)
    }
    return ConfigChange(topic.name, topic.config, changed) if changed else None


def result(
    desired: Iterable[DesiredTopic],
    observed: Mapping[str, ObservedTopic],
    topic_plan: TopicPlan,
    applied: Applied,
) -> TopicsResult:
    """Sizes as observed, updated by the changes the broker acknowledged.

    Acknowledged rather than read back: the broker's metadata lags its controller by a
    moment, so a read right after a change can still show the old state.
    """
    after = {name: _status(topic) for name, topic in observed.items()}
    after |= {topic.name: _status(topic) for topic in applied.done.create}
    for increase in applied.done.increase:
        after[increase.topic] = replace(after[increase.topic], partitions=increase.desired)
    return TopicsResult(
        topics=tuple(
            after.get(topic.name, TopicStatus(topic.name, None, None)) for topic in unique(desired)
        ),
        done=applied.done.events,
        refused=topic_plan.refused,
        failed=applied.failed,
    )


def _status(topic: TopicSettings) -> TopicStatus:
    return TopicStatus(topic.name, topic.partitions, topic.replication_factor)
