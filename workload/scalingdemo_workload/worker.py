"""The worker half of the service: consumers, CPU pool and lag monitor, started and drained
together."""

import asyncio

from .config import Settings
from .consumers import TopicWorker
from .lag import LagMonitor
from .metrics import Metrics
from .processing import Processor
from .tasks import CpuPool


class Worker:
    """Owns everything a worker role runs, started and stopped as one."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._settings = settings
        self._pool = CpuPool(settings.task_concurrency)
        processor = Processor(metrics, self._pool, settings.task_unit_ms)
        self.consumers = [
            TopicWorker(settings, metrics, topic, group, handle, settings.task_concurrency)
            for topic, group, handle in (
                (settings.messages_topic, settings.messages_group, processor.message),
                (settings.tasks_topic, settings.tasks_group, processor.task),
            )
        ]
        self.lag = LagMonitor(settings, metrics, [(c.topic, c.group) for c in self.consumers])

    @property
    def crashed(self) -> bool:
        """A consumer loop ended on its own: only a restart brings it back."""
        return any(c.crashed for c in self.consumers)

    def checks(self) -> dict[str, bool]:
        checks = {f"consumer:{c.group}": c.joined and c.alive for c in self.consumers}
        return {"kafka:worker": self.lag.reachable.value, **checks}

    def start(self) -> None:
        for consumer in self.consumers:
            consumer.start()
        self.lag.start()

    async def stop(self, deadline: float) -> None:
        await asyncio.gather(*(c.stop(deadline) for c in self.consumers))
        await self.lag.stop()
        self._pool.close()
