"""Workload throughput and latency, each as a ratio to a baseline measured in the same run.

    python -m benchmarks.workload_bench [--bootstrap 127.0.0.1:9092] [--seconds 5]
        [--phase http --phase ingest --phase tasks] [--tasks 200000] [--rounds 3]

Needs `wrk` (Debian package). Without `--bootstrap` it starts a Kafka broker of the test bed for
the run (the broker alone: the control plane would only add noise). Every baseline's producer
uses the workload's own delivery guarantee and batching settings (`producer.GUARANTEE`,
`producer.BATCHING`). Four comparisons:

1. HTTP: `POST /messages` with one record, driven by wrk against the workload (role api) and
   against a bare aiohttp handler that does `send_and_wait` on a raw aiokafka producer with the
   same guarantee (acks=all, idempotent): the baseline. A bare handler that only answers 202 is
   shown as the HTTP ceiling.
2. Latency at half load: p50/p99 of the workload at 50% of the rate wrk reached, measured by
   scalingdemo-load from intended send times (open loop).
3. Batch ingest: records/s through `POST /messages` with 1000-message batches from two
   concurrent clients, against a raw aiokafka producer sending the same records with the same
   guarantee from two concurrent loops, record by record (`send`) and, stricter, as one
   ready-made batch per 1000 records (aiokafka's batch API); and the cost of making each batch
   atomic with the transactional producer (one transaction at a time; docs/workload.md,
   "Batches").
4. Tasks: zero-duration tasks/s through the worker (consume, process, commit), against a raw
   aiokafka consumer with the same guarantee (at-least-once: it decodes every record of a fetch,
   then commits the offsets just past them and waits for the answer before fetching again);
   both from the first record fetched to the last one processed (steady state), and from start
   (group join included). Each reads the same records in a group of its own; the worker's
   messages topic is an empty one, so it has nothing else to do. The two alternate for
   `--rounds` rounds (raw first, then worker first, ...), and the ratio of the run is the
   median of the rounds' ratios: one round lasts about a second, where another process on the
   machine weighs a lot.

All traffic stays on 127.0.0.1 and every phase is bounded in time.
"""

import argparse
import asyncio
import io
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import NewTopic
from aiokafka.record import default_records
from rich.console import Console
from scalingdemo_workload.config import load_settings
from scalingdemo_workload.contract import Env, Role
from scalingdemo_workload.loadgen import bounded_argument, parse_args
from scalingdemo_workload.loadgen import run as run_load
from scalingdemo_workload.loop_metrics import LoopCounter
from scalingdemo_workload.metrics import Metrics
from scalingdemo_workload.producer import BATCHING, GUARANTEE
from scalingdemo_workload.worker import Worker

from benchmarks.rounds import Ratios
from tests.support import kafka_admin
from tests.testbed import assets
from tests.testbed.kafka import KafkaBroker

BARE_APP = """
import sys
from aiohttp import web
async def accept(request):
    await request.read()
    return web.json_response({"accepted": 1}, status=202)
app = web.Application()
app.router.add_post("/messages", accept)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""

BARE_PRODUCER_APP = """
import json, sys, uuid
from aiohttp import web
from aiokafka import AIOKafkaProducer
PRODUCER = web.AppKey("producer", AIOKafkaProducer)
async def produce(request):
    record = await request.json()
    record["id"] = str(uuid.uuid4())
    await request.app[PRODUCER].send_and_wait(sys.argv[3], json.dumps(record).encode())
    return web.json_response({"accepted": 1, "ids": [record["id"]]}, status=202)
async def producer(app):
    app[PRODUCER] = AIOKafkaProducer(bootstrap_servers=sys.argv[2], **json.loads(sys.argv[4]))
    await app[PRODUCER].start()
    yield
    await app[PRODUCER].stop()
app = web.Application()
app.cleanup_ctx.append(producer)
app.router.add_post("/messages", produce)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"content": "benchmark message with a little payload", "attributes": {"k": "v"}}'
wrk.headers["Content-Type"] = "application/json"
"""

WORKLOAD = [sys.executable, "-m", "scalingdemo_workload"]
BATCH = 1000
CLIENTS = 2
"""Concurrent batch senders, through the API and on the raw producer alike."""
PARTITIONS = 3
PHASES = ("http", "ingest", "tasks")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, path: str = "/healthz") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listened on port {port}{path}")


@contextmanager
def server(argv: list[str], port: int, env: dict[str, str] | None = None):
    process = subprocess.Popen(argv, env={**os.environ, **(env or {})})
    try:
        wait_listening(port)
        yield
    finally:
        process.terminate()
        process.wait(timeout=60)


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    Path(script.name).unlink()
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise SystemExit(f"{url}: {non_2xx.group(1)} failed requests\n{out}")

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"rps": rps, "p50_ms": ms("50"), "p99_ms": ms("99")}


async def wait_ready(port: int) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("the workload never became ready")


def http_phase(
    env: dict[str, str], bootstrap: str, topic: str, seconds: int, connections: int
) -> dict[str, dict]:
    ports = {name: free_port() for name in ("ceiling", "baseline", "workload")}
    results = {}
    ceiling = [sys.executable, "-c", BARE_APP, str(ports["ceiling"])]
    with server(ceiling, ports["ceiling"]):
        results["ceiling"] = wrk(url(ports["ceiling"]), seconds, connections)
    settings = json.dumps({**GUARANTEE, **BATCHING})
    baseline = [
        sys.executable, "-c", BARE_PRODUCER_APP, str(ports["baseline"]), bootstrap, topic, settings
    ]  # fmt: skip
    with server(baseline, ports["baseline"]):
        wrk(url(ports["baseline"]), 1, connections)
        results["baseline"] = wrk(url(ports["baseline"]), seconds, connections)
    port = ports["workload"]
    with server(WORKLOAD, port, {**env, Env.PORT: str(port), Env.HOST: "127.0.0.1"}):
        asyncio.run(wait_ready(port))
        wrk(url(port), 1, connections)
        results["workload"] = wrk(url(port), seconds, connections)
        results["half_load"] = asyncio.run(
            open_loop_latency(port, results["workload"]["rps"] / 2, seconds)
        )
    return results


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}/messages"


async def open_loop_latency(port: int, rate: float, seconds: int) -> dict[str, float]:
    """p50/p99 from intended send times at `rate`, as scalingdemo-load measures them."""
    args = parse_args(
        [f"http://127.0.0.1:{port}", "--rate", f"{rate:.1f}", "--duration", str(seconds)]
    )
    stats = await run_load(args, Console(file=io.StringIO()))
    if stats.errors:
        raise SystemExit(f"half-load run had errors: {stats.outcomes}")
    return {
        "rate": rate,
        "not_sent": stats.not_sent,
        "sent": stats.sent,
        "p50_ms": stats.latency_seconds(50) * 1000,
        "p99_ms": stats.latency_seconds(99) * 1000,
    }


def batch_body() -> dict:
    return {"messages": [{"content": "benchmark message", "attributes": {"k": "v"}}] * BATCH}


async def ingest_via_api(port: int, seconds: float) -> float:
    body = json.dumps(batch_body())
    sent = 0
    deadline = time.monotonic() + seconds
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:

        async def client() -> None:
            nonlocal sent
            while time.monotonic() < deadline:
                url = f"http://127.0.0.1:{port}/messages"
                async with session.post(url, data=body, headers=headers) as response:
                    assert response.status == 202, await response.text()
                    sent += BATCH

        started = time.monotonic()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return sent / (time.monotonic() - started)


async def ingest_raw(
    bootstrap: str, topic: str, seconds: float, *, atomic: bool = False, batches: bool = False
) -> float:
    """Records/s from a raw producer with the workload's guarantee and batching, fed by as many
    concurrent loops as the API has clients, each sending 1000-record requests' worth: record by
    record with `send`, or with ``batches`` as one ready-made batch per request to a random
    partition (aiokafka's batch API). With ``atomic``, every 1000 records are one transaction
    (what all-or-nothing batches would cost), one at a time as a producer allows."""
    transactional_id = f"bench-{uuid.uuid4().hex[:8]}" if atomic else None
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=transactional_id, **GUARANTEE, **BATCHING
    )
    await producer.start()
    partitions = sorted(await producer.partitions_for(topic))
    record = {"id": str(uuid.uuid4()), "content": "benchmark message", "attributes": {"k": "v"}}
    sent = 0
    deadline = time.monotonic() + seconds

    async def send_records() -> None:
        if batches:
            batch = producer.create_batch()
            for n in range(BATCH):
                batch.append(
                    key=None, value=json.dumps({**record, "n": n}).encode(), timestamp=None
                )
            partition = random.choice(partitions)
            await (await producer.send_batch(batch, topic, partition=partition))
            return
        futures = [
            await producer.send(topic, json.dumps({**record, "n": n}).encode())
            for n in range(BATCH)
        ]
        await asyncio.gather(*futures)

    async def sender() -> None:
        nonlocal sent
        while time.monotonic() < deadline:
            if atomic:
                async with producer.transaction():
                    await send_records()
            else:
                await send_records()
            sent += BATCH

    started = time.monotonic()
    try:
        await asyncio.gather(*(sender() for _ in range(1 if atomic else CLIENTS)))
    finally:
        await producer.stop()
    return sent / (time.monotonic() - started)


def ingest_phase(env: dict[str, str], bootstrap: str, topic: str, seconds: float) -> dict:
    port = free_port()
    with server(WORKLOAD, port, {**env, Env.PORT: str(port), Env.HOST: "127.0.0.1"}):
        asyncio.run(wait_ready(port))
        workload = asyncio.run(ingest_via_api(port, seconds))
    return {
        "workload": workload,
        "raw": asyncio.run(ingest_raw(bootstrap, topic, seconds)),
        "raw_batches": asyncio.run(ingest_raw(bootstrap, topic, seconds, batches=True)),
        "transactional": asyncio.run(ingest_raw(bootstrap, topic, seconds, atomic=True)),
    }


async def fill_tasks(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        task = {"type": "cpu", "complexity": 1, "duration_ms": 0, "payload": None}
        futures = [
            await producer.send(topic, json.dumps({**task, "id": str(n)}).encode())
            for n in range(count)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@dataclass(frozen=True)
class Consumed:
    """One consumer's run over `count` records: from its start, from its first fetch, to the end."""

    count: int
    started: float
    first_fetch: float
    ended: float

    @property
    def steady(self) -> float:
        """Records/s from the first fetch on: the throughput, without the group join."""
        return self.count / (self.ended - self.first_fetch)

    @property
    def total(self) -> float:
        """Records/s from the consumer's start, the group join included."""
        return self.count / (self.ended - self.started)


async def consume_raw(bootstrap: str, topic: str, count: int) -> Consumed:
    """The baseline, at-least-once like the worker: auto-commit off; each fetch (at most 500
    records, as the worker's) is decoded record by record, and only then are the consumer's
    positions committed (`commit()` without offsets: just past the records the fetch returned,
    all processed), the answer awaited before the next fetch. It ends at the last record
    decoded, before that fetch's commit, as the worker's figure ends at its last record
    processed."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    started = time.monotonic()
    first_fetch = None
    await consumer.start()
    seen = 0
    ended = started
    try:
        while seen < count:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            if batches and first_fetch is None:
                first_fetch = time.monotonic()
            for records in batches.values():
                for record in records:
                    json.loads(record.value)
                seen += len(records)
            if seen >= count:
                ended = time.monotonic()
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()
    return Consumed(count, started, first_fetch or ended, ended)


def counted(counter: LoopCounter, topic: str) -> float:
    """One counter's value for `topic`, read without collecting the whole registry."""
    child = counter.children.get((topic,))
    return child.value if child is not None else 0.0


async def consume_worker(env: dict[str, str], count: int) -> Consumed:
    settings = load_settings({**env, Env.ROLE: Role.WORKER})
    metrics = Metrics()
    worker = Worker(settings, metrics)
    topic = settings.tasks_topic
    started = time.monotonic()
    first_fetch = None
    worker.start()
    try:
        while counted(metrics.processed, topic) < count:
            await asyncio.sleep(0.005)
            if first_fetch is None and counted(metrics.consumed, topic):
                first_fetch = time.monotonic()
        ended = time.monotonic()
    finally:
        await worker.stop(time.monotonic() + settings.shutdown_grace_seconds)
    return Consumed(count, started, first_fetch or ended, ended)


def tasks_phase(
    env: dict[str, str], bootstrap: str, topics: tuple[str, str], count: int, rounds: int
) -> list[dict[str, Consumed]]:
    """`rounds` rounds of both consumers over the same `count` task records, alternating which
    goes first; the worker's messages topic is `topics[1]`, kept empty."""
    tasks, idle = topics
    asyncio.run(fill_tasks(bootstrap, tasks, count))

    def consume(name: str) -> Consumed:
        if name == "raw":
            return asyncio.run(consume_raw(bootstrap, tasks, count))
        group = f"bench-{uuid.uuid4().hex[:8]}"
        worker_env = {**env, Env.MESSAGES_TOPIC: idle, Env.TASKS_GROUP: group}
        return asyncio.run(consume_worker(worker_env, count))

    order = ("raw", "workload")
    return [
        {name: consume(name) for name in (order if n % 2 == 0 else order[::-1])}
        for n in range(rounds)
    ]


async def create_topics(bootstrap: str, names: list[str]) -> None:
    async with kafka_admin(bootstrap) as admin:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in names])


@contextmanager
def kafka(bootstrap: str | None) -> Iterator[str]:
    """The broker given, or a broker of the test bed started for this run alone."""
    if bootstrap is not None:
        yield bootstrap
        return
    with tempfile.TemporaryDirectory(prefix="workload-bench-") as run_dir:
        broker = KafkaBroker(Path(run_dir), assets.kafka_libs())
        broker.start()
        try:
            yield broker.bootstrap
        finally:
            broker.stop()


def report_http(http: dict[str, dict]) -> None:
    ceiling, base, work, half = (http[k] for k in ("ceiling", "baseline", "workload", "half_load"))
    print(
        f"POST /messages, 1 record: baseline (bare aiohttp + raw producer, acks=all, idempotent) "
        f"{base['rps']:.0f} req/s | workload {work['rps']:.0f} req/s | "
        f"ratio {work['rps'] / base['rps']:.2f} (goal >= 0.9) | HTTP-only ceiling "
        f"{ceiling['rps']:.0f} req/s (workload {work['rps'] / ceiling['rps']:.2f} of it)"
    )
    print(
        f"  wrk at full load: workload p50 {work['p50_ms']:.2f} ms p99 {work['p99_ms']:.2f} ms | "
        f"baseline p50 {base['p50_ms']:.2f} ms p99 {base['p99_ms']:.2f} ms"
    )
    print(
        f"  at 50% of the workload's max ({half['rate']:.0f} req/s, open loop, from intended "
        f"send times): p50 {half['p50_ms']:.2f} ms, p99 {half['p99_ms']:.2f} ms "
        f"({half['sent']} sent, {half['not_sent']} due but not sent by the generator)"
    )


def report_ingest(ingest: dict[str, float]) -> None:
    raw, work, batches = ingest["raw"], ingest["workload"], ingest["raw_batches"]
    print(
        f"Batch ingest ({BATCH}/request, {CLIENTS} clients): raw producer (send per record) "
        f"{raw:.0f} msg/s | workload {work:.0f} msg/s | ratio {work / raw:.2f} (goal >= 0.8)"
    )
    print(
        f"  raw producer with aiokafka's batch API (one batch per request): {batches:.0f} msg/s, "
        f"workload {work / batches:.2f} of it | one transaction per 1000 records: "
        f"{ingest['transactional']:.0f} msg/s, {ingest['transactional'] / raw:.2f} of send per "
        f"record"
    )


def report_tasks(rounds: list[dict[str, Consumed]]) -> None:
    for n, consumed in enumerate(rounds, 1):
        raw, work = consumed["raw"], consumed["workload"]
        first = next(iter(consumed))
        print(
            f"Tasks round {n} ({first} first, duration 0, {raw.count}) from the first fetch: raw "
            f"consumer {raw.steady:.0f}/s | worker {work.steady:.0f}/s | ratio "
            f"{work.steady / raw.steady:.2f}; from start, group join included: raw "
            f"{raw.total:.0f}/s | worker {work.total:.0f}/s | ratio {work.total / raw.total:.2f}"
        )
    ratios = Ratios(tuple(c["workload"].steady / c["raw"].steady for c in rounds))
    print(
        f"Tasks, worker / raw consumer from the first fetch: median of {len(rounds)} rounds "
        f"{ratios.median:.2f} (goal >= 0.8), lowest {min(ratios.values):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bootstrap", help="Kafka host:port (loopback only); default: a broker for this run"
    )
    parser.add_argument("--seconds", type=int, default=5, help="length of each timed phase")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument(
        "--tasks",
        type=bounded_argument(int, 1, 100_000_000),
        default=200_000,
        help="records in the task phase",
    )
    parser.add_argument(
        "--rounds",
        type=bounded_argument(int, 1, 1000),
        default=3,
        help="rounds of both consumers in the task phase",
    )
    parser.add_argument(
        "--phase", action="append", choices=PHASES, help="run only these phases (repeatable)"
    )
    args = parser.parse_args()
    phases = args.phase or PHASES
    print(f"load average before: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    c_extension = default_records.DefaultRecordBatchBuilder.__module__
    print(f"aiokafka record codec: {c_extension} (C extension: {'_crecords' in c_extension})")
    suffix = uuid.uuid4().hex[:8]
    messages, tasks, idle = (f"bench-{name}-{suffix}" for name in ("messages", "tasks", "idle"))
    with kafka(args.bootstrap) as bootstrap:
        asyncio.run(create_topics(bootstrap, [messages, tasks, idle]))
        env = {
            Env.ROLE: Role.API,
            Env.BOOTSTRAP_SERVERS: bootstrap,
            Env.MESSAGES_TOPIC: messages,
            Env.TASKS_TOPIC: tasks,
            Env.LOG_LEVEL: "WARNING",
        }
        if "http" in phases:
            report_http(http_phase(env, bootstrap, messages, args.seconds, args.connections))
        if "ingest" in phases:
            report_ingest(ingest_phase(env, bootstrap, messages, args.seconds))
        if "tasks" in phases:
            report_tasks(tasks_phase(env, bootstrap, (tasks, idle), args.tasks, args.rounds))
    print(f"load average after: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()
