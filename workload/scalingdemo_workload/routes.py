"""HTTP handlers. Each one is thin: validation, producing and metrics live in their modules."""

import importlib.metadata
import time

from aiohttp import web

from .contract import Paths
from .jsonio import json_response
from .keys import METRICS, PRODUCER, SETTINGS, SHUTDOWN, STARTED_AT, WORKER
from .openapi import openapi_document
from .validation import Outgoing, parse_messages, parse_tasks, read_json

VERSION = importlib.metadata.version("scalingdemo")


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the event loop answers and no consumer loop died. Kafka being unreachable does
    not count: a restart would not bring it back."""
    if WORKER in request.app and request.app[WORKER].crashed:
        return json_response({"status": "a consumer loop stopped"}, status=503)
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    checks: dict[str, bool] = {"serving": not app[SHUTDOWN].started}
    if PRODUCER in app:
        checks["kafka:producer"] = app[PRODUCER].ready.value
    if WORKER in app:
        checks.update(app[WORKER].checks())
    ready = all(checks.values())
    return json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)


async def info(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    return json_response(
        {
            "service": settings.service_name,
            "version": VERSION,
            "role": settings.role,
            "pod": settings.pod_name,
            "kafka": {
                "bootstrap_servers": settings.bootstrap_servers.split(","),
                "topics": {"messages": settings.messages_topic, "tasks": settings.tasks_topic},
                "consumer_groups": {
                    "messages": settings.messages_group,
                    "tasks": settings.tasks_group,
                },
            },
            "uptime_seconds": round(time.monotonic() - app[STARTED_AT], 3),
            "config": settings.public_view(),
        }
    )


async def _produce(request: web.Request, topic: str, records: list[Outgoing]) -> web.Response:
    ids = await request.app[PRODUCER].send_many(topic, records)
    return json_response({"accepted": len(ids), "ids": ids}, status=202)


async def post_messages(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    records = parse_messages(
        request.query, await read_json(request, settings.body_timeout_seconds), settings.max_batch
    )
    return await _produce(request, settings.messages_topic, records)


async def post_tasks(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    records = parse_tasks(
        request.query, await read_json(request, settings.body_timeout_seconds), settings.max_batch
    )
    return await _produce(request, settings.tasks_topic, records)


async def metrics(request: web.Request) -> web.Response:
    body, content_type = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": content_type})


async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document(request.app[SETTINGS]))


def add_routes(app: web.Application, *, serve_api: bool) -> None:
    """Register the routes; only processes that produce accept POSTs."""
    app.router.add_get(Paths.LIVENESS, healthz)
    app.router.add_get("/health", healthz)
    app.router.add_get(Paths.READINESS, readyz)
    app.router.add_get("/info", info)
    app.router.add_get(Paths.METRICS, metrics)
    app.router.add_get("/openapi.json", openapi)
    if serve_api:
        app.router.add_post("/messages", post_messages)
        app.router.add_post("/tasks", post_tasks)
