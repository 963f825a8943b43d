"""Clients that send what no well-behaved client sends, against a real workload process and the
bed's Kafka broker: every one gets a 4xx in the JSON error shape, counted under its real status,
and none is mistaken for a Kafka outage or a bug of ours."""

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from scalingdemo_workload.contract import Env, Metric, Role
from scalingdemo_workload.validation import MAX_RECORD_BYTES

from tests.support import Wiring, WorkloadProcess, eventually_async
from tests.workload_support import fresh_topics, raw_exchange, scrape, value

BODY_TIMEOUT = 1
IDLE_TIMEOUT = 1


@pytest.fixture
async def api(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[WorkloadProcess]:
    async with fresh_topics(kafka_bootstrap) as wiring:
        process = api_process(wiring, tmp_path / "api.log")
        try:
            await process.wait_ready()
            yield process
        finally:
            process.stop(signal.SIGTERM)


def api_process(wiring: Wiring, log: Path) -> WorkloadProcess:
    env = wiring.env(
        Role.API,
        **{
            Env.BODY_TIMEOUT_SECONDS: str(BODY_TIMEOUT),
            Env.IDLE_TIMEOUT_SECONDS: str(IDLE_TIMEOUT),
        },
    )
    return WorkloadProcess(env, log)


async def post(process: WorkloadProcess, path: str, body: bytes) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://{process.address}{path}",
            data=body,
            headers={"Content-Type": "application/json"},
        ) as response,
    ):
        assert response.content_type == "application/json", await response.text()
        return response.status, await response.json()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


TASK = '{"payload": %s}'

HOSTILE_BODIES = [
    pytest.param("/tasks", TASK % ("1" * 4301), 400, "malformed_json", id="int-4301-digits"),
    pytest.param("/tasks", TASK % nested(2000), 400, "malformed_json", id="nesting-2000"),
    pytest.param("/tasks", TASK % nested(500), 422, "invalid", id="payload-nesting-500"),
    pytest.param("/tasks", '{"duration_ms": NaN}', 400, "malformed_json", id="nan"),
    pytest.param("/tasks", TASK % "1e999", 400, "malformed_json", id="infinite-number"),
    pytest.param(
        "/messages", '{"content": "x", "key": "\\ud800"}', 400, "malformed_json", id="surrogate"
    ),
    pytest.param(
        "/messages",
        json.dumps({"messages": [{"content": "a"}, {"content": "x" * MAX_RECORD_BYTES}]}),
        413,
        "record_too_large",
        id="record-over-1MiB",
    ),
]


@pytest.mark.parametrize(("path", "body", "status", "code"), HOSTILE_BODIES)
async def test_bad_bodies_are_client_errors_never_500_or_503(api, path, body, status, code):
    answered, payload = await post(api, path, body.encode())
    assert (answered, payload["error"]["code"]) == (status, code), payload
    assert payload["error"]["message"]
    samples = await scrape(api)
    route = path
    assert value(samples, Metric.HTTP_REQUESTS, method="POST", route=route, status=str(status))
    assert sum(v for (name, _), v in samples.items() if name == Metric.PRODUCER_ERRORS) == 0
    assert "Traceback" not in api.log.read_text()
    assert (await post(api, "/messages", b'{"content": "still fine"}'))[0] == 202


async def test_client_leaving_mid_body_is_counted_apart_not_as_a_500(api):
    host, port = api.address.rsplit(":", 1)
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000\r\n\r\n{"content": "'
    )
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()

    async def counted() -> float:
        return value(await scrape(api), Metric.HTTP_CLIENT_DISCONNECTS, route="/messages")

    await eventually_async(counted, "the disconnect to be counted", 10)
    samples = await scrape(api)
    assert not value(samples, Metric.HTTP_REQUESTS, method="POST", route="/messages", status="500")
    log = api.log.read_text()
    assert "ERROR" not in log
    assert "Traceback" not in log


def json_error_of(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/json" in head.lower(), raw[:500]
    return status, json.loads(body)


PROTOCOL_ERRORS = [
    pytest.param(
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", id="header-9k"
    ),
    pytest.param(
        b"POST /messages HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
        id="bad-content-length",
    ),
    pytest.param(
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n", id="bad-header-line"
    ),
]


@pytest.mark.parametrize("request_bytes", PROTOCOL_ERRORS)
async def test_protocol_errors_answer_json_and_are_counted(api, request_bytes):
    before = await scrape(api)
    status, body = json_error_of(await raw_exchange(api.address, request_bytes))
    assert status == 400
    assert body["error"]["code"] == "bad_request"
    assert body["error"]["message"]
    after = await scrape(api)
    labels = {"method": "UNKNOWN", "route": "unmatched", "status": "400"}
    assert (
        value(after, Metric.HTTP_REQUESTS, **labels)
        == value(before, Metric.HTTP_REQUESTS, **labels) + 1
    )


async def test_a_body_that_never_arrives_gets_408_and_the_connection_closes(api):
    raw = await raw_exchange(
        api.address,
        b"POST /messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 3000000\r\n\r\n" + b" " * 1024,
        wait=BODY_TIMEOUT + 15,
    )
    status, body = json_error_of(raw)
    assert (status, body["error"]["code"]) == (408, "body_timeout")


async def test_a_body_declared_larger_than_allowed_is_refused_at_once(api):
    raw = await raw_exchange(
        api.address,
        b"POST /messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 10000000000\r\n\r\n" + b" " * 1024,
    )
    status, body = json_error_of(raw)
    assert (status, body["error"]["code"]) == (413, "too_large")


@pytest.mark.parametrize(
    "partial",
    [
        pytest.param(b"", id="silent"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\n", id="headers-never-end"),
    ],
)
async def test_idle_and_slow_header_connections_are_closed(api, partial):
    # raw_exchange returns only when the server closes; its wait bounds the test.
    assert await raw_exchange(api.address, partial, wait=IDLE_TIMEOUT + 15) == b""


async def test_idle_keep_alive_connection_is_closed(api):
    raw = await raw_exchange(
        api.address, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", wait=IDLE_TIMEOUT + 15
    )
    assert raw.startswith(b"HTTP/1.1 200")
