"""Counters and histograms for the per-record path, updated without locks.

prometheus_client takes a lock on every update, because its metrics may be shared by threads.
The workload updates these metrics only on its event loop's thread, and scrapes them on that same
thread, so an update can never interleave with another or with a scrape: the lock is pure cost.
Measured on zero-duration tasks, those locked updates were most of the worker's own time per
record. These classes keep plain numbers per label set and hand them to prometheus_client's
exposition as custom collectors, so the scraped names and types stay the same.
"""

import bisect
import itertools
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import INF, floatToGoString


class CounterChild:
    """One label set's count."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError(f"a counter only goes up; got {amount}")
        self.value += amount


class HistogramChild:
    """One label set's observations: a count per bucket and their sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        # Bucket i holds the observations <= bounds[i]: bisect_left finds the first such bound.
        self.counts[bisect.bisect_left(self.bounds, amount)] += 1
        self.sum += amount

    def cumulative(self) -> list[int]:
        """Observations at or below each bound, as the exposition format counts them."""
        return list(itertools.accumulate(self.counts))


Child = TypeVar("Child", CounterChild, HistogramChild)


class _Family(Collector, Generic[Child]):
    """One metric name with a child per label set, exposed through `registry`."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.children: dict[tuple[str, ...], Child] = {}
        registry.register(self)

    @abstractmethod
    def _new_child(self) -> Child: ...

    def labels(self, *values: str) -> Child:
        """The child for these label values, created on first use (resolve it once and keep
        it: the lookup costs more than the update)."""
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {values}")
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = self._new_child()
        return child


class LoopCounter(_Family[CounterChild]):
    """A labelled counter for updates from the event loop's thread only."""

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self.children.items():
            family.add_metric(values, child.value)
        yield family


class LoopHistogram(_Family[HistogramChild]):
    """A labelled histogram for observations from the event loop's thread only."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry,
        buckets: Sequence[float],
    ) -> None:
        self._bounds = tuple(sorted({*map(float, buckets), INF}))
        self._le: list[str] = [floatToGoString(b) for b in self._bounds]  # type: ignore[no-untyped-call]
        super().__init__(name, documentation, labelnames, registry)

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self._bounds)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self.children.items():
            buckets = list(zip(self._le, child.cumulative(), strict=True))
            family.add_metric(list(values), buckets, child.sum)
        yield family
