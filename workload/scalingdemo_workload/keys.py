"""Typed keys for what the application shares between handlers and cleanup contexts."""

from aiohttp import web

from .config import Settings
from .metrics import Metrics
from .producer import Producer
from .shutdown import Shutdown
from .worker import Worker

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
PRODUCER = web.AppKey("producer", Producer)
WORKER = web.AppKey("worker", Worker)
STARTED_AT = web.AppKey("started_at", float)
SHUTDOWN = web.AppKey("shutdown", Shutdown)
