"""`scalingdemo-load --watch` on the bed: a step profile drives the worker up and down, and the
report tells the story the HPA lived.

examples/basic.yaml runs with the real operator, real KEDA and the real HPA controller; its pods
run on kwok's nodes, so nothing consumes the tasks until the test does. A real workload api
process takes the load and produces the tasks; the step's backlog makes KEDA scale the worker to
its cap, and once the step is over the test consumes the backlog as the workers' group, so the
HPA scales back down while the profile's quiet tail is still being watched.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import math
import re
import signal
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest
from rich.console import Console
from scalingdemo_workload.contract import Env, Role
from scalingdemo_workload.loadgen import parse_args
from scalingdemo_workload.loadgen import run as run_load
from scalingdemo_workload.report_chart import chart, chart_title, draw
from scalingdemo_workload.timeline import Timeline

from tests.integration.cluster import Cluster
from tests.operator_harness import (
    OperatorProcess,
    basic_example_on_the_bed,
    without_running_workers,
)
from tests.support import (
    SCALE_TIMEOUT,
    Wiring,
    WorkloadProcess,
    eventually,
    group_consumer,
    wait_for_topics,
)
from tests.workload_support import drawn_series

NAME = "basic"
HPA = f"keda-hpa-{NAME}-worker"
NEW_SIZE = re.compile(r"New size: (\d+);")
SCALED = re.compile(r"worker (\d+)→(\d+): ")
POLLING_INTERVAL = 1
SCALE_DOWN_WINDOW = 10
STEP_RATE, STEP_SECONDS, QUIET_SECONDS = 20, 10, 100
PROFILE = f"step:{STEP_RATE}/s@{STEP_SECONDS}s,0/s@{QUIET_SECONDS}s"
"""200 tasks: lag 200 at the example's lagThreshold 10 asks for 20 workers, capped at 4; the quiet
tail leaves time for the scale-down window after the backlog is consumed."""


async def consume(bootstrap: str, topic: str, group: str, until: asyncio.Event) -> int:
    """Consume `topic` as `group`, committing each batch, until `until` is set: the workers'
    part, done by the test (kwok's pods run nothing). Records the api produces late still
    land in the group, so its lag ends at 0."""
    async with group_consumer(bootstrap, topic, group) as consumer:
        seen = 0
        while not until.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            if batches:
                seen += sum(len(records) for records in batches.values())
                await consumer.commit()
    return seen


def hpa_rescales(cluster: Cluster) -> list[tuple[float, int]]:
    """The HPA controller's own record of its rescales, in order: (when, new size) from its
    SuccessfulRescale events."""
    found = cluster.core.list_namespaced_event(
        cluster.namespace,
        field_selector=f"involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={HPA}",
    )
    rescales = []
    for item in found.items:
        size = NEW_SIZE.match(item.message or "")
        if item.reason == "SuccessfulRescale" and size is not None:
            when = item.first_timestamp or item.event_time
            rescales.append((when.timestamp(), int(size[1])))
    return sorted(rescales)


def check_the_chart_is_drawn_from_the_timeline(report: Path) -> None:
    """The PNG parses, is the picture of the saved timeline's numbers, and every series drawn
    is one of the timeline's."""
    written = matplotlib.image.imread(report / "chart.png")
    assert written.shape[:2] == (990, 1210)
    timeline = Timeline.read(report / "timeline.json")
    redrawn = draw(timeline, report.parent / "redrawn.png", chart_title(NAME))
    assert (matplotlib.image.imread(redrawn) == written).all()
    lines = drawn_series(chart(timeline, chart_title(NAME)))
    samples = timeline.samples
    assert lines["target rate"] == [s.target_rate for s in samples]
    assert lines["achieved rate"] == [s.achieved_rate for s in samples]
    assert lines["backlog"] == [s.backlog for s in samples]
    for kind in ("current", "desired"):
        assert lines[f"worker {kind}"] == [
            getattr(s.components["worker"], kind) if "worker" in s.components else None
            for s in samples
        ]


@pytest.mark.usefixtures("keda")
async def test_a_step_profile_is_reported_as_the_hpa_scaled_it(
    bed: Any,
    cluster: Cluster,
    operator: OperatorProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = without_running_workers(
        basic_example_on_the_bed(
            cluster.namespace,
            bed.kafka_bootstrap,
            bed.prometheus.url,
            POLLING_INTERVAL,
            SCALE_DOWN_WINDOW,
        )
    )
    kafka = body["spec"]["kafka"]
    messages, tasks = (kafka["topics"][role]["name"] for role in ("messages", "tasks"))
    group = kafka["consumerGroups"]["tasks"]
    cluster.create(body)
    await wait_for_topics(
        bed.kafka_bootstrap, [messages, tasks], kafka["topics"]["tasks"]["partitions"]
    )
    eventually(
        lambda: cluster.get(NAME).get("status", {}).get("scaling", {}).get("summary"),
        "status.scaling to show the idle worker",
        SCALE_TIMEOUT,
        accept=lambda found: found == "worker 1/1",
    )
    # A probe interval for a shared machine: a broker slow to answer a probe now and then
    # must not turn the api's requests away.
    wiring = Wiring(bed.kafka_bootstrap, messages, tasks, cluster.namespace)
    api = WorkloadProcess(
        wiring.env(Role.API, **{Env.PROBE_INTERVAL_SECONDS: "5"}), tmp_path / "api.log"
    )
    report = tmp_path / "report"
    monkeypatch.setenv("KUBECONFIG", str(bed.kubeconfig))
    try:
        await api.wait_ready()
        args = parse_args(
            [
                f"http://{api.address}", "--kind", "tasks", "--duration-ms", "0",
                "--profile", PROFILE, "--watch", f"sdemo/{NAME}", "-n", cluster.namespace,
                "--report", str(report),
            ]
        )  # fmt: skip
        console = Console(file=io.StringIO(), width=160, record=True)
        load = asyncio.create_task(run_load(args, console))
        # After the step, and after its slowest request could still have been produced.
        await asyncio.sleep(STEP_SECONDS + args.timeout)
        done = asyncio.Event()
        consumed = asyncio.create_task(consume(bed.kafka_bootstrap, tasks, group, done))
        stats = await load
        done.set()
        drained = await consumed
    finally:
        api.stop(signal.SIGTERM)
    output = console.export_text()
    print(output)

    # The load was driven as the profile says; on a machine that starves the broker some
    # requests may time out, though their records still land and count in the backlog.
    assert stats.sent == STEP_RATE * STEP_SECONDS, output
    assert drained >= stats.records_accepted, output
    assert drained > 0, output
    saved = json.loads((report / "timeline.json").read_text())
    summary, events = saved["summary"], saved["scale_events"]
    # Up to the cap on the backlog, down to one once it is gone. The HPA's first evaluation
    # may see the backlog still building and stop short of the cap for one sync.
    rescaled = [(e["before"], e["after"]) for e in events]
    ups = list(itertools.takewhile(lambda pair: pair[1] > pair[0], rescaled))
    assert [before for before, _ in ups[:1]] == [1], events
    assert ups[-1][1] == 4, events
    assert rescaled[-1][1] == 1, events
    # The HPA controller's own record agrees: the same new sizes in the same order, the first
    # at the same moment (both stamps have a resolution of one second).
    rescales = hpa_rescales(cluster)
    assert [size for _, size in rescales] == [e["after"] for e in events], (rescales, events)
    first_rescale = rescales[0][0] - saved["started"]
    assert abs(first_rescale - summary["time_to_first_scale_up_s"]) <= 1, (rescales, summary)
    assert summary["max_replicas"] == max(size for _, size in rescales)
    # The operator told each rescale as a Scaled event (listed by name, not in order).
    scaled = [message for _, reason, message in cluster.events(NAME) if reason == "Scaled"]
    told = {(int(found[1]), int(found[2])) for found in map(SCALED.match, scaled) if found}
    assert told == set(rescaled), scaled
    assert any(message.startswith(f"worker 1→{ups[0][1]}: taskLag ") for message in scaled)
    assert summary["time_to_first_scale_up_s"] == events[0]["seconds"]
    assert summary["max_replicas"] == 4
    assert summary["peak_backlog"] >= STEP_RATE * STEP_SECONDS / 2
    assert summary["drain_time_s"] is not None
    assert summary["lost_requests"] == stats.errors + stats.not_sent
    assert summary["replica_seconds"] > QUIET_SECONDS
    # The scale-up came after the load began (the HPA stamps whole seconds: not before the
    # second the load began in), the scale-down after the backlog had stood and once it was gone.
    samples = saved["samples"]
    assert saved["started"] + events[0]["seconds"] >= math.floor(saved["started"]), events
    assert any(s["backlog"] for s in samples if s["seconds"] < events[-1]["seconds"]), samples
    assert samples[-1]["backlog"] == 0, samples[-1]
    rows = list(csv.DictReader((report / "timeline.csv").open()))
    assert len(rows) == len(samples)
    assert max(int(row["worker_desired"] or 0) for row in rows) == 4
    check_the_chart_is_drawn_from_the_timeline(report)
    assert "Scaling summary" in output
