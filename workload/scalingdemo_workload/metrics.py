"""Prometheus metrics, one registry per application.

A registry per app (rather than the library's global one) lets tests and benchmarks run several
apps in one process without duplicate-registration errors, and keeps the exposition to exactly
the names the contract promises. Metrics updated per request or per record are lock-free
(`loop_metrics`); the rest use prometheus_client's own classes.
"""

from collections.abc import Iterator

import psutil
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .contract import Metric
from .loop_metrics import LoopCounter, LoopHistogram

TASK_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _counter_name(name: str) -> str:
    """prometheus-client appends `_total` itself; the contract spells the scraped name."""
    return name.removesuffix("_total")


class PsutilCollector(Collector):
    """CPU and memory of this process, read at scrape time so they are never stale."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._process.cpu_percent(None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._process.oneshot():
            cpu = self._process.cpu_percent(None) / 100.0
            rss = self._process.memory_info().rss
        yield GaugeMetricFamily(
            Metric.CPU_UTILIZATION,
            "CPU used by this process since the previous scrape, in cores (1.0 = one core busy).",
            value=cpu,
        )
        yield GaugeMetricFamily(Metric.MEMORY_RSS, "Resident memory of this process.", value=rss)


class Metrics:
    """Every metric the workload exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.http_requests = LoopCounter(
            Metric.HTTP_REQUESTS,
            "HTTP requests answered.",
            ("method", "route", "status"),
            registry,
        )
        self.http_duration = LoopHistogram(
            Metric.HTTP_REQUEST_DURATION,
            "Time to answer an HTTP request.",
            ("method", "route", "status"),
            registry,
            Histogram.DEFAULT_BUCKETS,
        )
        self.client_disconnects = Counter(
            _counter_name(Metric.HTTP_CLIENT_DISCONNECTS),
            "Requests whose client went away before its body arrived (not answered).",
            ("route",),
            registry=registry,
        )
        self.produced = self._per_topic(Metric.RECORDS_PRODUCED, "Records acknowledged by Kafka.")
        self.consumed = self._per_topic(Metric.RECORDS_CONSUMED, "Records fetched by workers.")
        self.processed = self._per_topic(
            Metric.RECORDS_PROCESSED, "Records processed successfully."
        )
        self.failed = self._per_topic(Metric.RECORDS_FAILED, "Records whose processing failed.")
        self.producer_errors = self._per_topic(
            Metric.PRODUCER_ERRORS, "Records Kafka did not acknowledge in time."
        )
        self.lag = Gauge(
            Metric.CONSUMER_LAG,
            "Records not yet committed by the group: log-end minus committed offset, summed "
            "over the topic's partitions.",
            ("topic", "group"),
            registry=registry,
        )
        self.rebalances = Counter(
            _counter_name(Metric.CONSUMER_REBALANCES),
            "Partition assignments this consumer received from its group (the first join "
            "included): each one follows a rebalance.",
            ("topic", "group"),
            registry=registry,
        )
        self.assigned_partitions = Gauge(
            Metric.CONSUMER_ASSIGNED_PARTITIONS,
            "Partitions of the topic assigned to this consumer now; 0 for a member the group "
            "left idle (more consumers than partitions).",
            ("topic", "group"),
            registry=registry,
        )
        self.tasks_in_progress = Gauge(
            Metric.TASKS_IN_PROGRESS, "Records being processed right now.", registry=registry
        )
        self.task_duration = LoopHistogram(
            Metric.TASK_DURATION, "Time to process one record.", ("topic",), registry, TASK_BUCKETS
        )
        self.kafka_ready = Gauge(
            Metric.KAFKA_READY,
            "1 when the component's last Kafka check succeeded.",
            ("component",),
            registry=registry,
        )
        ProcessCollector(registry=registry)
        registry.register(PsutilCollector())

    def _per_topic(self, name: str, documentation: str) -> LoopCounter:
        return LoopCounter(name, documentation, ("topic",), self.registry)

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
