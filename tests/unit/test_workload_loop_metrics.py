"""The lock-free metrics scrape exactly as prometheus_client's own classes would."""

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from scalingdemo_workload.loop_metrics import LoopCounter, LoopHistogram

pytestmark = pytest.mark.unit

BUCKETS = (0.01, 0.1, 1.0)
OBSERVED = (0.0, 0.01, 0.010001, 0.5, 1.0, 3.0, 0.05)


def exposition(registry: CollectorRegistry) -> set[str]:
    """Sample lines, without prometheus_client's `_created` series (not part of the contract)."""
    lines = generate_latest(registry).decode().splitlines()
    return {line for line in lines if "_created" not in line}


def test_counter_scrapes_like_prometheus_clients():
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopCounter("demo_records_total", "Records.", ("topic",), ours)
    locked = Counter("demo_records", "Records.", ("topic",), registry=theirs)
    for topic, amount in (("a", 1), ("b", 2.5), ("a", 3)):
        loop.labels(topic).inc(amount)
        locked.labels(topic).inc(amount)
    assert exposition(ours) == exposition(theirs)
    assert ours.get_sample_value("demo_records_total", {"topic": "a"}) == 4


def test_histogram_scrapes_like_prometheus_clients():
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopHistogram("demo_seconds", "Durations.", ("topic",), ours, BUCKETS)
    locked = Histogram("demo_seconds", "Durations.", ("topic",), registry=theirs, buckets=BUCKETS)
    for amount in OBSERVED:
        loop.labels("t").observe(amount)
        locked.labels("t").observe(amount)
    assert exposition(ours) == exposition(theirs)


def test_a_label_set_appears_on_first_use():
    registry = CollectorRegistry()
    counter = LoopCounter("demo_total", "Records.", ("topic",), registry)
    assert registry.get_sample_value("demo_total", {"topic": "a"}) is None
    assert counter.labels("a") is counter.labels("a")
    assert registry.get_sample_value("demo_total", {"topic": "a"}) == 0


def test_wrong_labels_and_decrements_are_refused():
    counter = LoopCounter("demo_total", "Records.", ("topic",), CollectorRegistry())
    with pytest.raises(ValueError, match="expected labels"):
        counter.labels("a", "b")
    with pytest.raises(ValueError, match="only goes up"):
        counter.labels("a").inc(-1)
