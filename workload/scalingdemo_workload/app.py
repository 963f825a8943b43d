"""The aiohttp application factory.

Kafka clients are started and stopped by cleanup contexts, so the same factory serves
`python -m scalingdemo_workload`, tests and benchmarks, and shutdown order is the reverse of
start-up: workers drain and commit before the producer flushes.
"""

import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

from .config import Settings
from .errors import ApiError, ClientDisconnected
from .keys import METRICS, PRODUCER, SETTINGS, SHUTDOWN, STARTED_AT, WORKER
from .metrics import Metrics
from .producer import Producer
from .routes import add_routes
from .shutdown import Shutdown
from .worker import Worker

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LINGER_SECONDS = 2.0

HTTP_ERROR_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


def _route(request: web.Request) -> str:
    """The route template, which keeps metric label values bounded (never the raw path)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give aiohttp's own errors (404, 405, 413, crashes) the API's JSON error shape."""
    try:
        return await handler(request)
    except ApiError as err:
        return err.response()
    except ClientDisconnected as err:
        log.debug("client left during %s %s: %s", request.method, request.path, err)
        request.app[METRICS].client_disconnects.labels(_route(request)).inc()
        raise ConnectionResetError(str(err)) from None
    except web.HTTPException as err:
        if err.status < 400:
            raise
        headers = {"Allow": err.headers["Allow"]} if "Allow" in err.headers else None
        code = HTTP_ERROR_CODES.get(err.status, "http_error")
        return ApiError(err.status, code, err.reason, headers=headers).response()
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return ApiError(500, "internal", "internal server error").response()


def metrics_middleware(metrics: Metrics) -> Middleware:
    """Count and time every request by route template, keeping label cardinality bounded."""
    # Label lookups take a lock and a dict probe; the label sets are few, so resolve each once.
    requests = functools.cache(metrics.http_requests.labels)
    durations = functools.cache(metrics.http_duration.labels)

    @web.middleware
    async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        response = await handler(request)
        labels = (request.method, _route(request), str(response.status))
        requests(*labels).inc()
        durations(*labels).observe(time.perf_counter() - started)
        return response

    return measure


class Component(Protocol):
    """A background part of the service with the lifecycle the contexts below drive."""

    def start(self) -> None: ...

    async def stop(self, deadline: float) -> None: ...


def _running(
    key: web.AppKey[Any], factory: Callable[[Settings, Metrics], Component]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that starts a component with the app and stops it on shutdown."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        component = factory(app[SETTINGS], app[METRICS])
        app[key] = component
        component.start()
        yield
        await component.stop(app[SHUTDOWN].remaining_deadline())

    return context


async def _mark_stopping(app: web.Application) -> None:
    app[SHUTDOWN].begin()


def create_app(settings: Settings, metrics: Metrics | None = None) -> web.Application:
    """Build the application for `settings.role`; Kafka clients start when the app starts."""
    metrics = metrics or Metrics()
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        # aiohttp's keep-alive timer also runs from the moment a connection opens until its
        # request headers are complete, so it doubles as the header timeout.
        # Lingering (reading a refused body so the client sees the answer) is kept short: a
        # client that declared gigabytes must not hold the connection for long.
        handler_args={
            "keepalive_timeout": settings.idle_timeout_seconds,
            "lingering_time": LINGER_SECONDS,
        },
        middlewares=[metrics_middleware(metrics), error_middleware],
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[STARTED_AT] = time.monotonic()
    app[SHUTDOWN] = Shutdown(settings.shutdown_grace_seconds)
    add_routes(app, serve_api=settings.runs_api)
    if settings.runs_api:
        app.cleanup_ctx.append(_running(PRODUCER, Producer))
    if settings.runs_worker:
        app.cleanup_ctx.append(_running(WORKER, Worker))
    app.on_shutdown.append(_mark_stopping)
    return app
