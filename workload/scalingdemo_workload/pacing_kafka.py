"""Spacing aiokafka's forced metadata refreshes while they keep failing.

aiokafka refreshes cluster metadata whenever a partition's leader is unknown, and its producer's
sender (and its consumer's fetcher) ask again as soon as a refresh fails. With the broker down a
refresh fails within a millisecond (connection refused), so records in flight at the moment
Kafka went away turned this into thousands of connection attempts a second and most of a core.
aiokafka has no setting for it (its retry_backoff_ms does not apply to this path), so each
client's refresh entry point is wrapped: after a failed refresh the next one waits a jittered,
growing delay; a successful one resets it.
"""

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient

from .health import Backoff

FIRST_DELAY_SECONDS = 0.1
LAST_DELAY_SECONDS = 2.0
CONSUMER_RETRY_BACKOFF_MS = 500
"""aiokafka's fetcher retries a failed fetch after retry_backoff_ms (100 ms by default), each
retry a new connection attempt while the broker is down; half a second keeps an outage quiet
and delays recovery by at most that."""


class MetadataPacer:
    """Replaces `client.force_metadata_update` on one client instance with a paced version."""

    def __init__(self, client: AIOKafkaClient) -> None:
        self._refresh = client.force_metadata_update
        self._backoff = Backoff(FIRST_DELAY_SECONDS, LAST_DELAY_SECONDS)
        self._allowed_at = 0.0
        self._delayed: asyncio.Task[Any] | None = None
        client.force_metadata_update = self.force_metadata_update

    def force_metadata_update(self) -> "asyncio.Future[Any]":
        """Same contract as aiokafka's: a future of whether the refresh succeeded."""
        loop = asyncio.get_running_loop()
        wait = self._allowed_at - loop.time()
        if wait <= 0:
            return self._refresh_now()
        if self._delayed is None or self._delayed.done():
            self._delayed = loop.create_task(self._refresh_later(wait))
        return asyncio.shield(self._delayed)

    def _refresh_now(self) -> "asyncio.Future[Any]":
        refreshed: asyncio.Future[Any] = self._refresh()
        refreshed.add_done_callback(self._observe)
        return refreshed

    async def _refresh_later(self, delay: float) -> Any:
        await asyncio.sleep(delay)
        return await self._refresh_now()

    def _observe(self, refreshed: "asyncio.Future[Any]") -> None:
        succeeded = (
            not refreshed.cancelled()
            and refreshed.exception() is None
            and refreshed.result() is not False
        )
        if succeeded:
            self._backoff.reset()
            self._allowed_at = 0.0
        else:
            self._allowed_at = asyncio.get_running_loop().time() + self._backoff.next_delay()


def paced_consumer(**options: Any) -> AIOKafkaConsumer:
    """An AIOKafkaConsumer whose retries and metadata refreshes stay slow while Kafka is down."""
    consumer = AIOKafkaConsumer(retry_backoff_ms=CONSUMER_RETRY_BACKOFF_MS, **options)
    MetadataPacer(consumer._client)
    return consumer


def paced_admin(**options: Any) -> AIOKafkaAdminClient:
    """An AIOKafkaAdminClient whose retries and metadata refreshes stay slow while Kafka is
    down."""
    admin = AIOKafkaAdminClient(retry_backoff_ms=CONSUMER_RETRY_BACKOFF_MS, **options)
    MetadataPacer(admin._client)
    return admin
