"""Operator convergence for N ScalingDemos against a bare client doing the same work.

For each N: `kubectl apply` N ScalingDemos into a fresh namespace watched by a freshly started
operator, and time until every one reports status.observedGeneration == metadata.generation
(observed) and the Ready condition True (Ready). The baseline, in the same run and against the
same API server: `kubectl apply` the same N demos into another fresh namespace with no operator,
and a bare client does what the operator does for a new demo with no decisions to make, over
the same client stack (the operator's `Kube`: the official Python client in worker threads),
all demos at once: per demo one Kafka admin call creating
its topics (with --topic-management Operator), one server-side apply per child our builders
produce, the same Created events, and status.observedGeneration; once the Deployments are
Available it writes the Ready condition. The ratios operator/baseline are the figures to watch;
absolute seconds depend on the machine.

Each N is measured in --rounds rounds (see `benchmarks.rounds`): each round measures both sides
once as above, on fresh namespaces, the bare client first in odd rounds and the operator first
in even ones; every round's figures are printed, and per N the median of the rounds' ratios with
the lowest and highest.

The operator's API requests are counted from the API server's audit log by user agent (its own
client's and kopf's), so kopf's requests count, and the harness's polling does not; the bare
client's by its own `Kube` counter (the operator's counts the same way), with the audit log's
count beside it as a check. Beside convergence it reports the operator's CPU seconds, its RSS
above its idle baseline (taken once it has reconciled a warm-up demo), and the machine's load
average; with --edit, the time until that many demos edited at once are all observed again;
with --idle-seconds, the requests per minute of an operator restarted with --resync-seconds on
the converged demos, by verb, once its restart has settled (the watches' own requests included).
Both run once, right after the operator's convergence in the last round of the largest N.

Usage (against a running bed, e.g. `python -m tests.testbed up`; its kubeconfig, kubectl and
Kafka address are printed, the audit log is logs/audit.log in its run directory):
    python -m benchmarks.operator_convergence --kubeconfig KUBECONFIG --kubectl KUBECTL \
        --audit-log RUN_DIR/logs/audit.log --kafka-bootstrap HOST:PORT \
        --topic-management Operator --sizes 1,20,100
    python -m benchmarks.operator_convergence ... --topic-management None --sizes 1000 \
        --rounds 1 --edit 100 --idle-seconds 90
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import kubernetes
import psutil
import yaml
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from kubernetes import client
from scalingdemo_operator import metrics
from scalingdemo_operator.api import FIELD_MANAGER, GROUP, PLURAL, VERSION, Event, Owner
from scalingdemo_operator.builders import desired_children
from scalingdemo_operator.builders.common import event
from scalingdemo_operator.kafka.model import desired_topics
from scalingdemo_operator.kafka.plan import creation_event
from scalingdemo_operator.kube import Kube
from scalingdemo_operator.reconcile import now
from scalingdemo_operator.spec import parse
from scalingdemo_workload.loadgen import bounded_argument

from benchmarks.rounds import Ratios, Round, plan
from tests.operator_harness import OperatorProcess, install_crd

TIMEOUT_SECONDS = 1800
MAX_DEMOS = 10_000
"""A bound on N and on --edit that catches a slip of the keyboard: 10,000 demos are 40,000
objects for the bed's API server, ten times the largest run measured."""
POLL_SECONDS = 0.05
"""Fine enough that one demo's convergence, a fraction of a second, is not rounded to a poll."""
POLLED_PER_SECOND = 1000
"""The harness's polls list every demo (or Deployment): beyond this many objects per second
they would load the API server they measure, so larger runs poll less often."""
SETTLE_SECONDS = 3
"""After the last demo is Ready, trailing requests (kopf's annotations, events) still count."""
MIB = 1024 * 1024
OPERATOR_AGENTS = (FIELD_MANAGER, "kopf/")
BARE_AGENT = "scalingdemo-bare-client"
IDLE_RESYNC_SECONDS = 20
PROBE_TIMEOUT_SECONDS = 5
"""What the operator's Deployment gives its liveness probe (deploy/operator/deployment.yaml)."""
UNRESOLVABLE_BROKER = "kafka.kafka.svc.cluster.local:9092"
Answer = TypeVar("Answer")
WARM_UP = "warm-up"
"""The demo each operator reconciles to Ready before its idle RSS is taken (see `warm_up`)."""


def _demos(count: int, bootstrap: str, topic_management: str, prefix: str) -> list[dict]:
    """N demos with api and worker; topics named after the namespace (one broker serves all)."""
    return [_demo(f"demo{index}", bootstrap, topic_management, prefix) for index in range(count)]


def _demo(name: str, bootstrap: str, topic_management: str, prefix: str) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ScalingDemo",
        "metadata": {"name": name},
        "spec": {
            "image": "registry.example/scalingdemo-workload:1",
            "kafka": {
                "bootstrapServers": bootstrap,
                "topicManagement": topic_management,
                "topics": {
                    "messages": {"name": f"{prefix}-{name}-messages"},
                    "tasks": {"name": f"{prefix}-{name}-tasks"},
                },
            },
        },
    }


class AuditLog:
    """Requests the API server recorded after a mark, by user agent."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size

    def records(self, since: int, agents: tuple[str, ...]) -> Iterator[dict[str, Any]]:
        with self.path.open() as lines:
            lines.seek(since)
            for line in lines:
                record = json.loads(line)
                if record.get("stage") != "ResponseComplete":
                    continue
                if record.get("userAgent", "").startswith(agents):
                    yield record

    def count(self, since: int, agents: tuple[str, ...]) -> int:
        return sum(1 for _ in self.records(since, agents))

    def verbs(self, since: int, agents: tuple[str, ...]) -> collections.Counter[str]:
        return collections.Counter(record["verb"] for record in self.records(since, agents))

    def status_writes(self, since: int, agents: tuple[str, ...]) -> collections.Counter[int]:
        """Writes to the demos' status subresource, by response code (409: refused because
        the demo changed since it was read)."""
        return collections.Counter(
            record["responseStatus"].get("code", 0)
            for record in self.records(since, agents)
            if record.get("objectRef", {}).get("subresource") == "status"
            and _is_write(record["verb"])
        )

    def timeline(self, since: int, namespace: str) -> list[str]:
        """The demo's creation, then each request of the operator's about the namespace:
        seconds from the creation to when it was received and answered."""
        agents = ("kubectl/", *OPERATOR_AGENTS)
        found = [
            record
            for record in self.records(since, agents)
            if record.get("objectRef", {}).get("namespace") == namespace
            and record["verb"] != "watch"
        ]
        start = _seconds(found[0]["requestReceivedTimestamp"]) if found else 0.0
        return [
            f"{_seconds(record['requestReceivedTimestamp']) - start:7.3f} "
            f"{_seconds(record['stageTimestamp']) - start:7.3f} "
            f"{record['userAgent'].split(' ')[0]:22} {record['verb']:7} "
            f"{_resource(record['objectRef'])} {record['objectRef'].get('name', '')} "
            f"{record['responseStatus'].get('code')}"
            for record in found
        ]


class Bench:
    def __init__(self, arguments: argparse.Namespace, workdir: Path) -> None:
        self.kubectl, self.kubeconfig = arguments.kubectl, arguments.kubeconfig
        self.bootstrap = arguments.kafka_bootstrap or UNRESOLVABLE_BROKER
        self.topic_management = arguments.topic_management
        self.workdir = workdir
        self.audit = AuditLog(arguments.audit_log)
        self.operator_arguments = tuple(arguments.operator_args.split())
        self.api = kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig))
        self.custom = client.CustomObjectsApi(self.api)
        self.apps = client.AppsV1Api(self.api)

    def kubectl_run(self, *argv: str) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        subprocess.run([str(self.kubectl), *argv], env=env, check=True, capture_output=True)

    def namespace(self, prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.kubectl_run("create", "namespace", name)
        return name

    def drop(self, namespaces: list[str], wait: bool) -> None:
        """Delete namespaces; waiting keeps their garbage collection out of the next run."""
        self.kubectl_run(
            "delete",
            "namespace",
            *namespaces,
            f"--wait={str(wait).lower()}",
            f"--timeout={TIMEOUT_SECONDS}s",
        )

    def apply_demos(self, namespace: str, count: int) -> None:
        self._apply(namespace, _demos(count, self.bootstrap, self.topic_management, namespace))

    def apply_warm_up(self, namespace: str) -> None:
        self._apply(namespace, [_demo(WARM_UP, self.bootstrap, self.topic_management, namespace)])

    def _apply(self, namespace: str, demos: list[dict]) -> None:
        manifest = self.workdir / f"{namespace}-{len(demos)}.yaml"
        manifest.write_text(yaml.safe_dump_all(demos))
        self.kubectl_run("apply", "--server-side", "-n", namespace, "-f", str(manifest))

    def demos(self, namespace: str) -> list[dict]:
        """The measured demos of the namespace (not the operator's warm-up demo)."""
        found: list[dict] = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL
        )["items"]
        return [item for item in found if item["metadata"]["name"] != WARM_UP]

    def wait(self, namespace: str, count: int, done: Callable[[dict], bool]) -> Progress:
        """When `done` held for half of the `count` demos, and for all (the monotonic clock):
        how the first half fares tells a backlog worked through in order from one that
        finishes every demo late."""
        deadline = time.monotonic() + TIMEOUT_SECONDS
        half = None
        while (finished := sum(1 for item in self.demos(namespace) if done(item))) != count:
            if half is None and 2 * finished >= count:
                half = time.monotonic()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{namespace}: not converged after {TIMEOUT_SECONDS}s")
            time.sleep(_poll_seconds(count))
        finished_at = time.monotonic()
        return Progress(finished_at if half is None else half, finished_at)

    def wait_available(self, namespace: str, count: int) -> None:
        """Every Deployment of the namespace Available (the harness's poll, not counted)."""
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while True:
            items = self.apps.list_namespaced_deployment(namespace).items
            available = sum(1 for item in items if (item.status.available_replicas or 0) >= 1)
            if len(items) == count and available == count:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{namespace}: Deployments not available")
            time.sleep(_poll_seconds(count))

    def edit(self, namespace: str, count: int) -> float:
        """Edit `count` demos at once (the worker's concurrency); seconds until all observed."""
        names = [item["metadata"]["name"] for item in self.demos(namespace)][:count]
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(
                pool.map(
                    lambda name: self.custom.patch_namespaced_custom_object(
                        GROUP,
                        VERSION,
                        namespace,
                        PLURAL,
                        name,
                        {"spec": {"worker": {"concurrency": 7}}},
                    ),
                    names,
                )
            )
        total = len(self.demos(namespace))
        return self.wait(namespace, total, _observed).all - started


@dataclass(frozen=True)
class Progress:
    """Moments on the monotonic clock."""

    half: float
    all: float


def _poll_seconds(objects: int) -> float:
    return max(POLL_SECONDS, objects / POLLED_PER_SECOND)


def _resource(reference: dict[str, str]) -> str:
    subresource = reference.get("subresource")
    return (
        f"{reference.get('resource')}/{subresource}"
        if subresource
        else f"{reference.get('resource')}"
    )


def _seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def _observed(item: dict) -> bool:
    return item.get("status", {}).get("observedGeneration") == item["metadata"]["generation"]


def _ready(item: dict) -> bool:
    conditions = item.get("status", {}).get("conditions", [])
    return _observed(item) and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conditions
    )


class BareClient:
    """The baseline: the operator's work for new demos, without decisions, on the same stack
    (the operator's own `Kube`: the official client's requests in worker threads)."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        api = kubernetes.config.new_client_from_config(config_file=str(bench.kubeconfig))
        api.user_agent = BARE_AGENT
        self.kube = Kube(api)

    async def _demo(self, body: dict, admin: AIOKafkaAdminClient | None) -> None:
        owner = Owner.from_body(body)
        spec = parse(body["spec"])
        children = desired_children(spec, owner)
        steps: list[Awaitable[Any]] = [self.kube.apply(child) for child in children]
        events = [Event("Normal", "Created", _created(child)) for child in children]
        if admin is not None:
            wanted = desired_topics(spec, owner).values()
            events += [creation_event(topic) for topic in wanted]
            topics = [
                NewTopic(
                    topic.name,
                    topic.partitions,
                    topic.replication_factor,
                    topic_configs=dict(topic.config),
                )
                for topic in wanted
            ]
            steps.append(admin.create_topics(topics))
        await asyncio.gather(*steps)
        host, reference = socket.gethostname(), owner.object_reference()
        await asyncio.gather(
            *(
                self.kube.create(
                    event(reference, item.type, item.reason, item.message, host, now())
                )
                for item in events
            )
        )
        await self.kube.patch_status(owner, {"observedGeneration": body["metadata"]["generation"]})

    async def converge(self, namespace: str) -> None:
        demos = self.bench.demos(namespace)
        admin = None
        if self.bench.topic_management == "Operator":
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bench.bootstrap)
            await admin.start()
        try:
            await asyncio.gather(*(self._demo(body, admin) for body in demos))
        finally:
            if admin is not None:
                await admin.close()

    async def ready(self, namespace: str) -> None:
        condition = {"type": "Ready", "status": "True", "reason": "Ready", "message": ""}
        await asyncio.gather(
            *(
                self.kube.patch_status(
                    Owner.from_body(body),
                    {"conditions": [{**condition, "lastTransitionTime": now()}]},
                )
                for body in self.bench.demos(namespace)
            )
        )


def _created(child: dict) -> str:
    return f"Created {child['kind']} {child['metadata']['name']}"


@dataclass
class Figures:
    count: int
    observed: float = 0
    half_observed: float = 0
    ready: float = 0
    requests: int = 0
    status_writes: collections.Counter[int] | None = None
    bare_observed: float = 0
    bare_ready: float = 0
    bare_requests: int = 0
    bare_audited: int = 0
    cpu_seconds: float = 0
    cold_rss: float = 0
    idle_rss: float = 0
    converged_rss: float = 0
    load: float = 0
    bare_load: float = 0
    edit_seconds: float | None = None
    idle: collections.Counter[str] | None = None
    idle_minutes: float = 0
    restart_writes: int = 0
    catch_up_seconds: float = 0
    slowest_answer: dict[str, float] = field(default_factory=dict)
    unanswered: collections.Counter[str] = field(default_factory=collections.Counter)
    timeline: list[str] | None = None

    @property
    def observed_ratio(self) -> float:
        return self.observed / self.bare_observed

    @property
    def ready_ratio(self) -> float:
        return self.ready / self.bare_ready

    @property
    def requests_ratio(self) -> float:
        return self.requests / self.bare_requests

    def answered(self, endpoint: str, seconds: float | None) -> None:
        """One poll of the restarted operator's `endpoint`: its answer time, None if none came
        within PROBE_TIMEOUT_SECONDS."""
        if seconds is None:
            self.unanswered[endpoint] += 1
        else:
            self.slowest_answer[endpoint] = max(seconds, self.slowest_answer.get(endpoint, 0))


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _load() -> float:
    """The machine's load average over the last minute: the bed and whatever else runs."""
    return os.getloadavg()[0]


def warm_up(bench: Bench, namespace: str, process: psutil.Process, figures: Figures) -> None:
    """The idle RSS baseline is taken after the operator has reconciled one demo to Ready.

    The first reconcile costs memory that does not grow with the number of demos: the request
    threads are started and each gets its own malloc arena, the connection pool opens its
    connections, the builders and the spec model run their first time. Taken from a freshly
    listed operator, that fixed cost would be divided by N and count as a per-demo cost, the
    more so the fewer demos (it made N=20 look costlier per demo than N=100 and 1,000). The
    demo is named apart and left out of every count, and its rollout is over before the
    measurement starts.
    """
    figures.cold_rss = process.memory_info().rss / MIB
    bench.apply_warm_up(namespace)
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not any(_ready(item) for item in _warm_up_demo(bench, namespace)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{namespace}: the warm-up demo never became Ready")
        time.sleep(POLL_SECONDS)
    time.sleep(SETTLE_SECONDS)
    figures.idle_rss = process.memory_info().rss / MIB


def _warm_up_demo(bench: Bench, namespace: str) -> list[dict]:
    found: list[dict] = bench.custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, field_selector=f"metadata.name={WARM_UP}"
    )["items"]
    return found


def measure_operator(
    bench: Bench, figures: Figures, label: str, edit: int, idle_seconds: float
) -> str:
    """The operator's figures; returns the namespace, left in place until the round's other
    side is measured too, so that no garbage collection runs during either (`measure_round`)."""
    count = figures.count
    namespace = bench.namespace(f"bench-op-{count}")
    log = bench.workdir / f"operator-{namespace}.log"
    operator = OperatorProcess(bench.kubeconfig, [namespace], log, 0, bench.operator_arguments)
    operator.start()
    operator.wait_listed()
    assert operator.process is not None
    process = psutil.Process(operator.process.pid)
    warm_up(bench, namespace, process, figures)
    cpu = _cpu(process)
    mark = bench.audit.mark()
    started = time.monotonic()
    bench.apply_demos(namespace, count)
    observed = bench.wait(namespace, count, _observed)
    figures.half_observed, figures.observed = observed.half - started, observed.all - started
    figures.load = _load()
    figures.ready = bench.wait(namespace, count, _ready).all - started
    time.sleep(SETTLE_SECONDS)
    figures.requests = bench.audit.count(mark, OPERATOR_AGENTS)
    figures.status_writes = bench.audit.status_writes(mark, OPERATOR_AGENTS)
    if count == 1:
        figures.timeline = bench.audit.timeline(mark, namespace)
    figures.cpu_seconds = _cpu(process) - cpu
    figures.converged_rss = process.memory_info().rss / MIB
    report_operator(figures, label)
    if edit:
        figures.edit_seconds = bench.edit(namespace, min(edit, count))
        _say(label, f"edited at once, all observed again after {figures.edit_seconds:.2f} s")
        bench.wait(namespace, count, _ready)  # the edited rollouts are over before idling
        time.sleep(SETTLE_SECONDS)
    if idle_seconds:
        operator.stop()
        resyncing = OperatorProcess(
            bench.kubeconfig, [namespace], log, IDLE_RESYNC_SECONDS, bench.operator_arguments
        )
        mark = bench.audit.mark()
        resyncing.start()
        _resumed(resyncing, count, figures)
        figures.restart_writes = sum(
            n for verb, n in bench.audit.verbs(mark, OPERATOR_AGENTS).items() if _is_write(verb)
        )
        report_catch_up(figures, label)
        mark = bench.audit.mark()
        time.sleep(idle_seconds)
        figures.idle = bench.audit.verbs(mark, OPERATOR_AGENTS)
        figures.idle_minutes = idle_seconds / 60
        report_idle(figures, label)
        resyncing.stop()
    else:
        operator.stop()
    return namespace


def _is_write(verb: str) -> bool:
    return verb in {"create", "update", "patch", "delete", "deletecollection"}


def _resumed(operator: OperatorProcess, count: int, figures: Figures) -> None:
    """Until the restarted operator has reconciled every demo once, and a little longer.

    Meanwhile each poll also times kopf's /healthz, which is served on the operator's event
    loop: in a cluster, a catch-up that kept the loop from answering for the liveness probe's
    timeout three times in a row would get the operator restarted, and the catch-up would begin
    again. /metrics is served by prometheus_client's own thread; a slow answer is counted, not
    fatal, since it is the harness's view and not what is measured.
    """
    started = time.monotonic()
    deadline = started + TIMEOUT_SECONDS
    health = f"http://127.0.0.1:{operator.liveness_port}/healthz"
    reconciled: float | None = None
    while reconciled is None or reconciled < count:
        if time.monotonic() > deadline:
            raise TimeoutError("the restarted operator never reconciled every demo")
        figures.answered("/healthz", _timed(lambda: _get(health))[0])
        seconds, reconciled = _timed(
            lambda: operator.metric("scalingdemo_operator_reconciles_total")
        )
        figures.answered("/metrics", seconds)
        time.sleep(POLL_SECONDS)
    figures.catch_up_seconds = time.monotonic() - started
    time.sleep(SETTLE_SECONDS)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_SECONDS) as response:
        body: bytes = response.read()
    return body


def _timed(call: Callable[[], Answer]) -> tuple[float | None, Answer | None]:
    """How long `call`, an HTTP request, took to answer, and its answer; (None, None) when it
    timed out."""
    began = time.monotonic()
    try:
        answer = call()
    except (TimeoutError, urllib.error.URLError) as error:
        if isinstance(error, urllib.error.URLError) and not isinstance(error.reason, TimeoutError):
            raise
        return None, None
    return time.monotonic() - began, answer


def measure_bare(bench: Bench, figures: Figures, label: str) -> str:
    count = figures.count
    namespace = bench.namespace(f"bench-bare-{count}")
    bare = BareClient(bench)
    mark, sent = bench.audit.mark(), _sent()
    started = time.monotonic()
    bench.apply_demos(namespace, count)
    asyncio.run(bare.converge(namespace))
    figures.bare_observed = bench.wait(namespace, count, _observed).all - started
    figures.bare_load = _load()
    bench.wait_available(namespace, 2 * count)
    asyncio.run(bare.ready(namespace))
    figures.bare_ready = bench.wait(namespace, count, _ready).all - started
    time.sleep(SETTLE_SECONDS)
    figures.bare_requests = round(_sent() - sent)
    figures.bare_audited = bench.audit.count(mark, (BARE_AGENT,))
    report_bare(figures, label)
    return namespace


def _sent() -> float:
    """Requests the bare client has sent from this process, every attempt (its `Kube` counts
    them as the operator's does): a count that does not depend on reading the audit log."""
    return sum(
        sample.value
        for family in metrics.API_REQUESTS.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    )


def _say(label: str, text: str) -> None:
    """Each figure is printed as soon as it is measured, so that a run that fails later (a
    1,000-demo run takes over 20 minutes) still shows what it measured."""
    print(f"{label}: {text}", flush=True)


def report_operator(figures: Figures, label: str) -> None:
    n = figures.count
    _say(
        label,
        _convergence("operator", n, figures.observed, figures.ready, figures.requests)
        + f"; half observed after {figures.half_observed:.2f} s",
    )
    _say(
        label,
        f"operator CPU {figures.cpu_seconds:.1f} s to converge; RSS listed "
        f"{figures.cold_rss:.1f} MiB, idle after the warm-up demo {figures.idle_rss:.1f} MiB, "
        f"converged {figures.converged_rss:.1f} MiB "
        f"({(figures.converged_rss - figures.idle_rss) / n:.3f} MiB per demo above idle; "
        f"{(figures.converged_rss - figures.cold_rss) / n:.3f} above listed)",
    )
    if figures.status_writes is not None:
        _say(
            label,
            f"status writes {sum(figures.status_writes.values())}, of which "
            f"{figures.status_writes[409]} refused with 409 Conflict",
        )
    if figures.timeline is not None:
        _say(label, "timeline (s from kubectl's create: received, answered; who, verb, object)")
        print("\n".join(f"  {line}" for line in figures.timeline), flush=True)


def report_bare(figures: Figures, label: str) -> None:
    n = figures.count
    _say(
        label,
        _convergence(
            "bare client", n, figures.bare_observed, figures.bare_ready, figures.bare_requests
        )
        + f" (in the audit log {figures.bare_audited / n:.1f})",
    )


def _convergence(side: str, count: int, observed: float, ready: float, requests: int) -> str:
    return (
        f"{side} observed all {count} after {observed:.2f} s, all Ready after {ready:.2f} s; "
        f"API requests per demo {requests / count:.1f}"
    )


def report_catch_up(figures: Figures, label: str) -> None:
    slowest = ", ".join(f"{url} {seconds:.2f} s" for url, seconds in figures.slowest_answer.items())
    unanswered = ", ".join(f"{url} {n}" for url, n in figures.unanswered.items()) or "none"
    _say(
        label,
        f"restarted with --resync-seconds {IDLE_RESYNC_SECONDS}: every demo reconciled after "
        f"{figures.catch_up_seconds:.1f} s, with {figures.restart_writes} writes; slowest answer "
        f"meanwhile {slowest}; polls unanswered within {PROBE_TIMEOUT_SECONDS} s: {unanswered}",
    )


def report_idle(figures: Figures, label: str) -> None:
    assert figures.idle is not None
    per_minute = {verb: count / figures.idle_minutes for verb, count in figures.idle.items()}
    writes = sum(count for verb, count in figures.idle.items() if _is_write(verb))
    _say(
        label,
        f"then idle {figures.idle_minutes:.1f} min: {writes} writes, "
        f"{figures.idle['list']} LIST, {figures.idle['get']} GET; per minute by verb "
        + (", ".join(f"{verb} {rate:.1f}" for verb, rate in sorted(per_minute.items())) or "none"),
    )


def report(figures: Figures, label: str) -> None:
    """The round's comparison, once both sides are measured."""
    _say(
        label,
        f"operator / bare: observed {figures.observed_ratio:.2f}x, all Ready "
        f"{figures.ready_ratio:.2f}x, API requests per demo {figures.requests_ratio:.2f}x; "
        f"load average (1 min) when all were observed: operator {figures.load:.2f}, "
        f"bare {figures.bare_load:.2f}",
    )


def summary(rounds: list[Figures]) -> str:
    """The run's figures for one N: the median of the rounds' ratios, with their spread."""
    observed = Ratios(tuple(figures.observed_ratio for figures in rounds))
    ready = Ratios(tuple(figures.ready_ratio for figures in rounds))
    requests = Ratios(tuple(figures.requests_ratio for figures in rounds))
    return (
        f"N={rounds[0].count}, {len(rounds)} rounds, operator / bare: observed {observed}; "
        f"all Ready {ready}; API requests per demo {requests}"
    )


def measure_round(bench: Bench, step: Round, arguments: argparse.Namespace) -> Figures:
    """Both sides once, in the round's order, each on its own fresh namespace; the namespaces
    stay until both are measured, so that no garbage collection runs during either."""
    figures = Figures(step.count)
    edit, idle_seconds = (arguments.edit, arguments.idle_seconds) if step.extras else (0, 0)
    measures = {
        "operator": lambda: measure_operator(bench, figures, step.label, edit, idle_seconds),
        "bare": lambda: measure_bare(bench, figures, step.label),
    }
    print(f"{step.label}: {' first, then '.join(step.sides)}", flush=True)
    used = [measures[side]() for side in step.sides]
    report(figures, step.label)
    bench.drop(used, wait=not step.last)
    return figures


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, default=Path(os.environ.get("KUBECONFIG", "")))
    parser.add_argument("--kubectl", type=Path, default=Path("kubectl"))
    parser.add_argument("--audit-log", type=Path, required=True)
    parser.add_argument("--kafka-bootstrap", help="the broker; needed for Operator topics")
    parser.add_argument("--topic-management", choices=("Operator", "None"), default="None")
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[1, 20, 100],
        help=f"comma-separated N, each 1 to {MAX_DEMOS:,} (default: 1,20,100)",
    )
    parser.add_argument(
        "--rounds",
        type=bounded_argument(int, 1, 1000),
        default=3,
        help="measurements of each side per N, alternating which goes first; the median of "
        "their ratios is reported (default: %(default)s)",
    )
    parser.add_argument(
        "--edit",
        type=bounded_argument(int, 0, MAX_DEMOS),
        default=0,
        help="demos to edit at once; once, after the operator's convergence in the last round "
        "of the largest N",
    )
    parser.add_argument(
        "--idle-seconds",
        type=bounded_argument(float, 0, TIMEOUT_SECONDS),
        default=0,
        help="idle window to count; once, after the operator's convergence (and --edit) in the "
        "last round of the largest N",
    )
    parser.add_argument(
        "--operator-args",
        default="",
        help="more options for the operator, e.g. '--concurrent-reconciles 4', to compare "
        "settings against the same baseline",
    )
    arguments = parser.parse_args(argv)
    if arguments.topic_management == "Operator" and not arguments.kafka_bootstrap:
        parser.error("--topic-management Operator needs --kafka-bootstrap")
    return arguments


def _sizes(raw: str) -> list[int]:
    size = bounded_argument(int, 1, MAX_DEMOS)
    return [size(part.strip()) for part in raw.split(",")]


def main() -> None:
    arguments = parse_arguments()
    install_crd(arguments.kubectl, arguments.kubeconfig)
    with tempfile.TemporaryDirectory() as workdir:
        bench = Bench(arguments, Path(workdir))
        sizes: list[int] = arguments.sizes
        measured: list[Figures] = []
        for step in plan(sizes, arguments.rounds):
            measured.append(measure_round(bench, step, arguments))
            if step.number == step.rounds:
                print(summary(measured), flush=True)
                measured = []


if __name__ == "__main__":
    main()
