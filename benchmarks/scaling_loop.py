"""How fast the scaling loop reacts to a backlog, against the minimum its intervals allow.

Each repetition runs examples/basic.yaml as the end-to-end test does (bed broker and
Prometheus, namespaced topic names, short pollingInterval and scale-down window, nobody
consuming), waits until KEDA calls the ScaledObject Ready and the worker sits at minReplicas,
produces a backlog of tasks (lag / lagThreshold far above the 4 partitions) and clocks, from
the moment the backlog is flushed to Kafka:

- active: KEDA's ScaledObject condition Active turns True;
- desired: the HPA's status.desiredReplicas rises above minReplicas;
- scaled: the worker Deployment's spec.replicas rises above minReplicas;
- target: spec.replicas reaches the cap (4 partitions = maxReplicas);
- ready: 4 pods Ready on kwok's nodes.

The model of the minimum. The backlog lands at a random phase of the HPA controller's clock (the
benchmark waits a random fraction of the sync period before producing it):
- The HPA controller re-evaluates each HPA every sync period S (5 s on the bed). Each
  evaluation reads the external metric through the aggregation layer from KEDA's metrics
  adapter, which has KEDA's operator query Kafka at that moment (the generated triggers do
  not set useCachedMetrics, so nothing is cached in between). The first evaluation after the
  backlog sees the full lag: a wait uniform in [0, S), S/2 on average. The HPA's default
  scale-up rule (no stabilization, at most +100% or +4 pods per 15 s, whichever is more) lets
  1 -> 4 happen in that one evaluation, and the HPA writes spec.replicas in the same pass, so
  desired, scaled and target share this minimum.
- pollingInterval P does not pace any of that. With minReplicaCount >= 1, no idleReplicaCount,
  no useCachedMetrics and no scalingModifiers, KEDA 2.21's scale loop does not query the
  triggers while the HPA is querying: every P it derives Active from the value the HPA last
  fetched. Active therefore follows the HPA's evaluation by up to one more P: S/2 + P/2 on
  average.
- Pods becoming Ready is the Deployment and ReplicaSet controllers, the scheduler and kwok:
  no interval bounds it, so it gets no ratio.
The ratios printed are median measured / average minimum; 1.0 would mean no cost beyond waiting
for the next tick. The bound for any single phase is the full interval (S, or S + P).

With --from-zero it runs examples/scale-to-zero.yaml instead (minReplicas 0, its lagThreshold
10 and activation threshold 2, the same 4-partition cap), settled at zero workers, and clocks
the 0 -> 1 path too:

- active: KEDA's Active condition turns True;
- activated: the Deployment's spec.replicas leaves 0;
- first: its first pod is Ready;
- scaled, target, ready: as above, from 1 to the cap.

The model of that minimum. At zero replicas the HPA is disabled (ScalingDisabled): it reads no
metric, so the HPA sync does not pace activation. KEDA's scale loop queries the trigger every
pollingInterval P and, the first time the lag exceeds the activation threshold, writes
spec.replicas 1 itself and sets Active in the same pass: a wait uniform in [0, P), P/2 on
average, for both active and activated. The backlog lands at a random phase of that loop (the
settled demo is seen just after the tick that took it to zero, so the benchmark waits a random
fraction of P first). 1 -> N is then the HPA's: it resumes at its next sync after the
Deployment has a replica, a further wait uniform in [0, S), so scaled and target have an
average minimum of P/2 + S/2.

Usage (starts and stops its own bed, with KEDA):
    .venv/bin/python -m benchmarks.scaling_loop --repetitions 7
    .venv/bin/python -m benchmarks.scaling_loop --from-zero --polling-interval 10 --repetitions 7
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.operator_harness import (
    OperatorProcess,
    basic_example_on_the_bed,
    install_crd,
    scale_to_zero_example_on_the_bed,
    without_running_workers,
)
from tests.support import produce, wait_for_topics
from tests.testbed import bed as testbed
from tests.testbed.control_plane import HPA_SYNC_SECONDS

BACKLOG = 200
SCALE_DOWN_WINDOW = 10
COOLDOWN_PERIOD = 30
READY_SECONDS = 180
MEASURE_SECONDS = 120
POLL_SECONDS = 0.05

State = tuple[bool, int, tuple[int, int]]
"""What one clock poll reads: KEDA's Active, the HPA's desiredReplicas, the Deployment's
(spec.replicas, readyReplicas)."""


@dataclass(frozen=True)
class ScalingPath:
    """One scaling path: the demo it runs, where it rests, and the events it clocks."""

    name: str
    rest: int
    """Replicas at rest: minReplicas."""
    events: dict[str, Callable[[State, int], bool]]
    """Event -> whether it has happened, given the state and the cap (maxReplicas)."""

    @property
    def worker(self) -> str:
        return f"{self.name}-worker"


SCALE_OUT = {
    "scaled": lambda state, _: state[2][0] > 1,
    "target": lambda state, cap: state[2][0] == cap,
    "ready": lambda state, cap: state[2] == (cap, cap),
}
FROM_ONE = ScalingPath(
    "basic",
    1,
    {
        "active": lambda state, _: state[0],
        "desired": lambda state, _: state[1] > 1,
        **SCALE_OUT,
    },
)
FROM_ZERO = ScalingPath(
    "scale-to-zero",
    0,
    {
        "active": lambda state, _: state[0],
        "activated": lambda state, _: state[2][0] >= 1,
        "first": lambda state, _: state[2][1] >= 1,
        **SCALE_OUT,
    },
)


class Demo:
    """One repetition's ScalingDemo and the reads the clock needs."""

    def __init__(self, api: client.ApiClient, namespace: str, path: ScalingPath) -> None:
        self.namespace = namespace
        self.path = path
        self.worker = path.worker
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.autoscaling = client.AutoscalingV2Api(api)

    def keda(self) -> dict[str, str]:
        try:
            found = self.custom.get_namespaced_custom_object(
                "keda.sh", "v1alpha1", self.namespace, "scaledobjects", self.worker
            )
        except ApiException as error:
            if error.status == 404:
                return {}
            raise
        conditions = found.get("status", {}).get("conditions", [])
        return {item["type"]: item["status"] for item in conditions}

    def desired(self) -> int:
        try:
            hpa = self.autoscaling.read_namespaced_horizontal_pod_autoscaler(
                f"keda-hpa-{self.worker}", self.namespace
            )
        except ApiException as error:
            if error.status == 404:
                return 0
            raise
        return hpa.status.desired_replicas or 0

    def diagnosis(self) -> str:
        """What the HPA and KEDA say, for a repetition that never got where it should."""
        try:
            hpa = self.autoscaling.read_namespaced_horizontal_pod_autoscaler(
                f"keda-hpa-{self.worker}", self.namespace
            )
            conditions = [
                f"{item.type}={item.status} ({item.message})"
                for item in hpa.status.conditions or []
            ]
        except ApiException as error:
            conditions = [f"HPA unreadable: {error.status}"]
        return f"HPA: {'; '.join(conditions)}; KEDA: {self.keda()}; replicas: {self.replicas()}"

    def replicas(self) -> tuple[int, int]:
        found = self.apps.read_namespaced_deployment(self.worker, self.namespace)
        return found.spec.replicas, found.status.ready_replicas or 0

    def idle(self) -> bool:
        """Ready and at rest: at minReplicas 1 once the HPA has evaluated it; at 0 once KEDA
        has taken the Deployment there (the HPA is disabled at zero)."""
        rest = self.path.rest
        hpa_seen = rest == 0 or self.desired() == rest
        return self.keda().get("Ready") == "True" and hpa_seen and self.replicas() == (rest, rest)


def demo_body(
    bed: testbed.Bed, namespace: str, path: ScalingPath, polling_interval: int
) -> dict[str, Any]:
    if path is FROM_ZERO:
        return scale_to_zero_example_on_the_bed(
            namespace, bed.kafka_bootstrap, polling_interval, COOLDOWN_PERIOD
        )
    return without_running_workers(
        basic_example_on_the_bed(
            namespace, bed.kafka_bootstrap, bed.prometheus.url, polling_interval, SCALE_DOWN_WINDOW
        )
    )


def repetition(
    bed: testbed.Bed, demo: Demo, polling_interval: int, phase: float
) -> dict[str, float]:
    """Set the demo up, produce the backlog about ``phase`` s after it settled, clock events.

    The demo is seen settled right after a tick of the clock that paces the path (an HPA
    evaluation wrote its status, or KEDA's scale loop took it to zero), so without the random
    phase every backlog would land just after a tick and wait a whole period. The result's
    ``phase`` is the measured time from settled to the backlog being flushed.
    """
    body = demo_body(bed, demo.namespace, demo.path, polling_interval)
    topics = body["spec"]["kafka"]["topics"]
    partitions = topics["tasks"]["partitions"]
    demo.custom.create_namespaced_custom_object(
        "scalingdemo.dev", "v1alpha1", demo.namespace, "scalingdemos", body
    )
    names = [topic["name"] for topic in topics.values()]
    asyncio.run(wait_for_topics(bed.kafka_bootstrap, names, partitions))
    deadline = time.monotonic() + READY_SECONDS
    while not demo.idle():
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{demo.namespace}: never settled at {demo.path.rest}: {demo.diagnosis()}"
            )
        time.sleep(POLL_SECONDS)
    settled = time.monotonic()
    target = body["spec"]["worker"]["autoscaling"]["maxReplicas"]
    time.sleep(phase)
    asyncio.run(
        produce(bed.kafka_bootstrap, topics["tasks"]["name"], [b"{}"] * BACKLOG, partitions)
    )
    start = time.monotonic()
    events = demo.path.events
    seen: dict[str, float] = {}
    while len(seen) < len(events):
        read_at = time.monotonic() - start
        if read_at > MEASURE_SECONDS:
            raise TimeoutError(
                f"{demo.namespace}: only {sorted(seen)} after {MEASURE_SECONDS}s: "
                + demo.diagnosis()
            )
        state = (demo.keda().get("Active") == "True", demo.desired(), demo.replicas())
        for event, happened in events.items():
            if event not in seen and happened(state, target):
                seen[event] = read_at
        time.sleep(POLL_SECONDS)
    return {**seen, "phase": start - settled}


@dataclass(frozen=True)
class Model:
    """The minimum a path's events can take, given the intervals that pace them."""

    clock: float
    """The interval the backlog's phase is drawn over: the one that paces the first step."""
    first_step: tuple[str, ...]
    """Events due at the first tick of that clock after the backlog."""
    average: dict[str, float]
    """Average minimum per event (None: no interval bounds it)."""


def model(path: ScalingPath, polling_interval: int) -> Model:
    if path is FROM_ZERO:
        activation = polling_interval / 2
        return Model(
            polling_interval,
            ("active", "activated"),
            {
                "active": activation,
                "activated": activation,
                "scaled": activation + HPA_SYNC_SECONDS / 2,
                "target": activation + HPA_SYNC_SECONDS / 2,
            },
        )
    return Model(
        HPA_SYNC_SECONDS,
        ("desired", "scaled", "target"),
        {
            "active": (HPA_SYNC_SECONDS + polling_interval) / 2,
            "desired": HPA_SYNC_SECONDS / 2,
            "scaled": HPA_SYNC_SECONDS / 2,
            "target": HPA_SYNC_SECONDS / 2,
        },
    )


def phase_model(pacing: Model, event: str, phase: float) -> float | None:
    """The minimum for one repetition whose backlog came ``phase`` s after a tick.

    The demo counts as settled one clock poll (50 ms and three reads) after the tick that
    settled it, so the next tick is due (clock - phase) mod clock after the backlog. Events
    after the first step also wait for a second clock the model cannot place: they get none.
    """
    if event not in pacing.first_step:
        return None
    return (pacing.clock - phase) % pacing.clock


def report(results: list[dict[str, float]], path: ScalingPath, polling_interval: int) -> None:
    pacing = model(path, polling_interval)
    print(
        f"{path.name}: minReplicas {path.rest}, pollingInterval {polling_interval} s, HPA sync "
        f"period {HPA_SYNC_SECONDS} s, backlog {BACKLOG} tasks, {len(results)} repetitions"
    )
    print(
        f"{'event':9} {'median':>7} {'min':>6} {'max':>6} {'IQR':>6} {'avg min':>7} "
        f"{'ratio':>6} {'over phase model: median [min, max]':>36}"
    )
    for event in path.events:
        values = sorted(result[event] for result in results)
        median = statistics.median(values)
        quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else [median] * 3
        floor = pacing.average.get(event)
        ratio = f"{median / floor:6.2f}" if floor else f"{'-':>6}"
        floor_text = f"{floor:7.1f}" if floor else f"{'-':>7}"
        excess = sorted(
            result[event] - minimum
            for result in results
            if (minimum := phase_model(pacing, event, result["phase"])) is not None
        )
        excess_text = (
            f"{statistics.median(excess):+.2f} [{excess[0]:+.2f}, {excess[-1]:+.2f}]"
            if excess
            else "-"
        )
        print(
            f"{event:9} {median:7.2f} {values[0]:6.2f} {values[-1]:6.2f} "
            f"{quartiles[2] - quartiles[0]:6.2f} {floor_text} {ratio} {excess_text:>36}"
        )
    print("(seconds from the backlog being flushed to Kafka; ratio = median / avg min)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--polling-interval", type=int, default=1)
    parser.add_argument(
        "--from-zero",
        action="store_true",
        help="run examples/scale-to-zero.yaml and clock the 0 -> 1 path as well",
    )
    parser.add_argument("--seed", type=int, default=0, help="for the random backlog phases")
    parser.add_argument("--workdir", type=Path, help="keep the bed's logs here")
    args = parser.parse_args()
    phases = random.Random(args.seed)
    path = FROM_ZERO if args.from_zero else FROM_ONE
    clock = model(path, args.polling_interval).clock
    with tempfile.TemporaryDirectory(prefix="scaling-loop-") as scratch:
        workdir = args.workdir or Path(scratch)
        bed = testbed.start(workdir / "bed")
        try:
            bed.start_keda()
            install_crd(bed.kubectl, bed.kubeconfig)
            api = config.new_client_from_config(config_file=str(bed.kubeconfig))
            core = client.CoreV1Api(api)
            namespaces = [f"scaling-loop-{uuid.uuid4().hex[:6]}" for _ in range(args.repetitions)]
            for namespace in namespaces:
                core.create_namespace(
                    client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
                )
            operator = OperatorProcess(bed.kubeconfig, namespaces, workdir / "operator.log")
            operator.start()
            try:
                results = []
                for namespace in namespaces:
                    phase = phases.uniform(0, clock)
                    demo = Demo(api, namespace, path)
                    result = repetition(bed, demo, args.polling_interval, phase)
                    print(f"{namespace}: " + " ".join(f"{k}={v:.2f}" for k, v in result.items()))
                    results.append(result)
                    core.delete_namespace(namespace)
            finally:
                operator.stop()
            report(results, path, args.polling_interval)
        finally:
            bed.stop()


if __name__ == "__main__":
    main()
