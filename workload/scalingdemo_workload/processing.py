"""What a worker does with each record it consumes.

Malformed records are counted as failed and then committed like any other: retrying a record
that can never parse would block its partition forever.
"""

import functools
import logging
import time
from typing import Any

from aiokafka import ConsumerRecord

from .jsonio import JSONDecodeError, loads
from .metrics import Metrics
from .tasks import CpuPool, task_seconds

log = logging.getLogger(__name__)


class Processor:
    """Handlers for message and task records."""

    def __init__(self, metrics: Metrics, pool: CpuPool, unit_ms: int) -> None:
        self._pool = pool
        self._unit_ms = unit_ms
        # Counted here and read by the gauge at scrape time: no metric update per record.
        self._in_progress = 0
        metrics.tasks_in_progress.set_function(lambda: self._in_progress)
        # Resolve each topic's metric children once, not per record.
        self._processed = functools.cache(metrics.processed.labels)
        self._failed = functools.cache(metrics.failed.labels)
        self._duration = functools.cache(metrics.task_duration.labels)

    def _decode(self, record: ConsumerRecord) -> dict[str, Any] | None:
        try:
            value = loads(record.value)
        except (TypeError, JSONDecodeError):
            value = None
        if not isinstance(value, dict):
            self._failed(record.topic).inc()
            log.warning(
                "undecodable record %s[%d]@%d", record.topic, record.partition, record.offset
            )
            return None
        return value

    async def message(self, record: ConsumerRecord) -> None:
        value = self._decode(record)
        if value is not None:
            self._processed(record.topic).inc()
            log.debug("processed message id=%s", value.get("id"))

    async def task(self, record: ConsumerRecord) -> None:
        value = self._decode(record)
        if value is None:
            return
        started = time.perf_counter()
        self._in_progress += 1
        try:
            seconds = task_seconds(value, self._unit_ms)
            if seconds > 0:
                await self._pool.burn(seconds)
        except Exception:
            self._failed(record.topic).inc()
            log.exception("task id=%s failed", value.get("id"))
            return
        finally:
            self._in_progress -= 1
        self._duration(record.topic).observe(time.perf_counter() - started)
        self._processed(record.topic).inc()
        log.debug("processed task id=%s", value.get("id"))
