"""What a worker does with each record it consumes.

Malformed records are counted as failed and then committed like any other: retrying a record
that can never parse would block its partition forever.
"""

import json
import logging
import time

from aiokafka import ConsumerRecord

from .metrics import Metrics
from .tasks import CpuPool, task_seconds

log = logging.getLogger(__name__)


class Processor:
    """Handlers for message and task records."""

    def __init__(self, metrics: Metrics, pool: CpuPool, unit_ms: int) -> None:
        self._metrics = metrics
        self._pool = pool
        self._unit_ms = unit_ms

    def _decode(self, record: ConsumerRecord) -> dict | None:
        try:
            value = json.loads(record.value)
        except (TypeError, ValueError):
            value = None
        if not isinstance(value, dict):
            self._metrics.failed.labels(record.topic).inc()
            log.warning(
                "undecodable record %s[%d]@%d", record.topic, record.partition, record.offset
            )
            return None
        return value

    async def message(self, record: ConsumerRecord) -> None:
        value = self._decode(record)
        if value is not None:
            self._metrics.processed.labels(record.topic).inc()
            log.debug("processed message id=%s", value.get("id"))

    async def task(self, record: ConsumerRecord) -> None:
        value = self._decode(record)
        if value is None:
            return
        metrics = self._metrics
        started = time.perf_counter()
        with metrics.tasks_in_progress.track_inprogress():
            try:
                await self._pool.burn(task_seconds(value, self._unit_ms))
            except Exception:
                metrics.failed.labels(record.topic).inc()
                log.exception("task id=%s failed", value.get("id"))
                return
        metrics.task_duration.labels(record.topic).observe(time.perf_counter() - started)
        metrics.processed.labels(record.topic).inc()
        log.debug("processed task id=%s", value.get("id"))
