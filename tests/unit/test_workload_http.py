"""HTTP behaviour that needs no broker: error bodies, probes, OpenAPI completeness, metrics.

The app is pointed at a port where nothing listens, so its producer never becomes ready: that is
also how the "Kafka unavailable answers 503 at once" path is checked without a broker.
"""

import asyncio
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer
from scalingdemo_workload.app import create_app
from scalingdemo_workload.config import load_settings
from scalingdemo_workload.contract import SEED_METRIC_QUERIES, Env, Metric, Role

pytestmark = pytest.mark.unit

NOWHERE = "127.0.0.1:9"


@pytest.fixture
async def client():
    settings = load_settings(
        {Env.BOOTSTRAP_SERVERS: NOWHERE, Env.ROLE: Role.API, Env.MAX_BODY_BYTES: "2048"}
    )
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


async def error_of(response) -> dict:
    assert response.content_type == "application/json"
    return (await response.json())["error"]


async def test_liveness_and_alias(client):
    for path in ("/healthz", "/health"):
        response = await client.get(path)
        assert response.status == 200


async def test_not_ready_without_kafka(client):
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["checks"]["kafka:producer"] is False


async def test_produce_without_kafka_answers_503_with_retry_after(client):
    started = time.monotonic()
    response = await client.post("/messages", json={"content": "x"})
    assert response.status == 503
    assert time.monotonic() - started < 2.0
    assert int(response.headers["Retry-After"]) >= 1
    assert (await error_of(response))["code"] == "kafka_unavailable"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code", "field"),
    [
        ("GET", "/nope", {}, 404, "not_found", None),
        ("DELETE", "/messages", {}, 405, "method_not_allowed", None),
        ("POST", "/messages", {"data": "x", "headers": {"Content-Type": "text/plain"}}, 415,
         "unsupported_media_type", "Content-Type"),
        ("POST", "/messages", {"data": "{", "headers": {"Content-Type": "application/json"}}, 400,
         "malformed_json", "body"),
        ("POST", "/tasks", {"json": {"complexity": 0}}, 422, "invalid", "complexity"),
        ("POST", "/tasks?count=x", {}, 400, "bad_parameter", "count"),
        ("POST", "/messages", {"json": {"content": "x" * 4096}}, 413, "too_large", "body"),
    ],
)  # fmt: skip
async def test_error_bodies(client, method, path, kwargs, status, code, field):
    response = await client.request(method, path, **kwargs)
    assert response.status == status
    error = await error_of(response)
    assert error["code"] == code
    assert error.get("field") == field
    assert error["message"]
    if status == 405:
        assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize("role", Role.CHOICES)
async def test_openapi_describes_every_route_of_the_role_and_nothing_else(role):
    settings = load_settings({Env.BOOTSTRAP_SERVERS: NOWHERE, Env.ROLE: role})
    async with TestClient(TestServer(create_app(settings))) as role_client:
        document = await (await role_client.get("/openapi.json")).json()
        served = {
            (route.resource.canonical, route.method)
            for route in role_client.server.app.router.routes()
            if route.method != "HEAD"
        }
    documented = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    assert documented == served
    assert (("/messages", "POST") in documented) == (role != Role.WORKER)


async def test_openapi_schemas_name_the_accepted_fields(client):
    document = await (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert set(schemas["Message"]["properties"]) == {"content", "key", "attributes"}
    assert set(schemas["Task"]["properties"]) == {"type", "complexity", "duration_ms", "payload"}


async def test_info_has_no_secrets_and_names_the_wiring(client):
    body = await (await client.get("/info")).json()
    assert body["role"] == Role.API
    assert body["kafka"]["bootstrap_servers"] == [NOWHERE]
    assert Env.SASL_PASSWORD not in body["config"]
    assert body["uptime_seconds"] >= 0


async def test_metrics_expose_the_contract_names(client):
    await client.get("/healthz")
    await client.post("/tasks", json={"complexity": 0})
    text = await (await client.get("/metrics")).text()
    assert 'route="/healthz",status="200"' in text
    assert 'route="/tasks",status="422"' in text
    for name in (
        Metric.HTTP_REQUESTS,
        Metric.HTTP_REQUEST_DURATION + "_bucket",
        Metric.CPU_UTILIZATION,
        Metric.MEMORY_RSS,
        Metric.TASKS_IN_PROGRESS,
        Metric.KAFKA_READY,
    ):
        assert f"\n{name}" in text, name


def test_seed_queries_use_contract_names():
    names = {value for key, value in vars(Metric).items() if key.isupper()}
    for query in SEED_METRIC_QUERIES.values():
        assert any(name in query for name in names), query


async def test_all_roles_start_and_stop_while_kafka_is_unreachable():
    settings = load_settings({Env.BOOTSTRAP_SERVERS: NOWHERE})
    async with TestClient(TestServer(create_app(settings))) as test_client:
        assert (await test_client.get("/healthz")).status == 200
        await asyncio.sleep(0)
