"""Serving the application: the event loop, the listening socket, signals, and the answers
aiohttp gives by itself.

aiohttp answers some requests before any handler or middleware runs: a request line or header
over its limits, a bad Content-Length, a malformed chunked body. It answers those in plain text
and nothing counts them. The connection handler below gives them the API's JSON error shape and
counts them under their real status, which is why the service runs its own runner instead of
`web.run_app`.
"""

import asyncio
import logging
import os
import signal
from http import HTTPStatus
from typing import Any

import uvloop
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from .app import create_app
from .config import Settings
from .errors import ApiError
from .keys import METRICS
from .metrics import Metrics

log = logging.getLogger(__name__)

CLEANUP_MARGIN_SECONDS = 1.0
MIN_CANCEL_SECONDS = 0.5
LISTEN_BACKLOG = 1024
"""Connections the kernel queues for a busy process: a load target sees bursts of them."""


class _JsonErrorProtocol(RequestHandler):
    """aiohttp's connection handler, answering its own errors in the API's error shape."""

    __slots__ = ("_metrics",)

    def __init__(self, manager: "_JsonErrorServer", **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._metrics = manager.metrics

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, ConnectionError):
            # The client left (counted by the error middleware); aiohttp drops the connection
            # quietly when the handler ends with a ConnectionError.
            raise exc
        if request.writer.output_size > 0:
            raise ConnectionError("the response was already started; the connection is dropped")
        if status >= 500:
            log.error("error answering %s %s", request.method, request.path, exc_info=exc)
            error = ApiError(status, "internal", HTTPStatus(status).phrase)
        else:
            log.debug("refused a malformed request: %s", message)
            error = ApiError(status, "bad_request", message or HTTPStatus(status).phrase)
        self._metrics.http_requests.labels(request.method, "unmatched", str(status)).inc()
        response = error.response()
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    """Creates the JSON-error connection handler for each connection."""

    def __init__(self, *args: Any, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = metrics

    def __call__(self) -> RequestHandler:
        return _JsonErrorProtocol(self, loop=self._loop, **self._kwargs)


class WorkloadRunner(web.AppRunner):
    """An AppRunner whose connections answer protocol errors in JSON (used by tests too)."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return _JsonErrorServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=asyncio.get_running_loop(),
            metrics=self.app[METRICS],
            **server._kwargs,
        )


async def _serve(settings: Settings) -> None:
    runner = WorkloadRunner(
        create_app(settings), access_log=None, shutdown_timeout=settings.shutdown_grace_seconds
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        site = web.TCPSite(runner, settings.host, settings.port, backlog=LISTEN_BACKLOG)
        await site.start()
        log.info("serving on %s:%d as %s", settings.host, settings.port, settings.role)
        await stop.wait()
        log.info("stopping")
    finally:
        # The parts bound themselves by the shared deadline; this bounds the whole, so a stuck
        # close can never outlast the pod's grace period.
        deadline = loop.time() + settings.shutdown_grace_seconds + CLEANUP_MARGIN_SECONDS
        try:
            async with asyncio.timeout_at(deadline):
                await runner.cleanup()
        except TimeoutError:
            log.warning("shutdown outlived the grace period; exiting anyway")
        await _end_leftover_tasks(deadline)


async def _end_leftover_tasks(deadline: float) -> None:
    """Cancel what the Kafka clients left running, and exit regardless at the deadline.

    A client closed while Kafka is down can leave retry loops behind that ignore cancellation;
    asyncio would wait for them forever when the loop closes, so the process exits without them.
    """
    leftovers = asyncio.all_tasks() - {asyncio.current_task()}
    for task in leftovers:
        task.cancel()
    if not leftovers:
        return
    remaining = max(deadline - asyncio.get_running_loop().time(), MIN_CANCEL_SECONDS)
    _, stuck = await asyncio.wait(leftovers, timeout=remaining)
    if stuck:
        log.warning("%d background tasks ignored cancellation; exiting without them", len(stuck))
        logging.shutdown()
        os._exit(0)


def serve(settings: Settings) -> None:
    """Run the service until SIGTERM or SIGINT, on uvloop (measurably faster than asyncio's
    loop for many small requests)."""
    uvloop.run(_serve(settings))
