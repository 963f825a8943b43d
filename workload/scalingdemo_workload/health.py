"""Background readiness checks and start-up retries for Kafka clients.

Kafka may be down when a pod starts or go away later. The process must stay alive (liveness) and
report not-ready (readiness) rather than crash-loop, so clients are started and checked by loops
that never give up, and readiness is a flag those loops maintain.
"""

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .throttle import ThrottledLog

log = logging.getLogger(__name__)

T = TypeVar("T")
MIN_CLOSE_SECONDS = 0.1
FIRST_RETRY_SECONDS = 0.5
LAST_RETRY_SECONDS = 10.0


class Backoff:
    """Exponential delays with full jitter, capped: retries stay rare during a long outage, and
    many replicas that lost Kafka together do not reconnect in lockstep."""

    def __init__(self, first: float = FIRST_RETRY_SECONDS, cap: float = LAST_RETRY_SECONDS) -> None:
        self._first = first
        self._cap = cap
        self._attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self._cap, self._first * 2**self._attempt)
        self._attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempt = 0


class Flag:
    """A readiness bit with the metric that mirrors it."""

    def __init__(self, on_change: Callable[[bool], None]) -> None:
        self._on_change = on_change
        self.value = False
        on_change(False)

    def set(self, value: bool) -> None:
        if value != self.value:
            self.value = value
            self._on_change(value)


async def start_with_retry(
    name: str, factory: Callable[[], T], start: Callable[[T], Awaitable[object]]
) -> T:
    """Create and start a client, replacing it after each failure (a failed start cannot resume)."""
    backoff = Backoff()
    failures = ThrottledLog(log)
    while True:
        client = factory()
        try:
            await start(client)
        except Exception as err:
            delay = backoff.next_delay()
            failures.warning("%s could not start, retrying in %.1fs: %r", name, delay, err)
            await _close_quietly(client)
            await asyncio.sleep(delay)
        else:
            log.info("%s started", name)
            return client


async def _close_quietly(client: object) -> None:
    for method in ("stop", "close"):
        closer = getattr(client, method, None)
        if closer is not None:
            try:
                await closer()
            except Exception:
                log.debug("closing a failed client raised", exc_info=True)
            return


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel background loops and wait until they have really ended."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def probe_loop(
    name: str, check: Callable[[], Awaitable[object]], flag: Flag, interval: float
) -> None:
    """Keep `flag` equal to whether `check` succeeds within `interval` seconds."""
    while True:
        try:
            await asyncio.wait_for(check(), timeout=interval)
        except Exception as err:
            if flag.value:
                log.warning("%s lost Kafka: %r", name, err)
            flag.set(False)
        else:
            if not flag.value:
                log.info("%s reached Kafka", name)
            flag.set(True)
        await asyncio.sleep(interval)


async def close_within(close: Callable[[], Awaitable[object]], deadline: float, what: str) -> None:
    """Close a Kafka client, giving up at `deadline` (a time.monotonic() value).

    aiokafka's consumer can end its close with a CancelledError of its own (its fetcher awaits
    the fetch tasks it just cancelled); that one is not ours and must not abort the shutdown.
    """
    try:
        async with asyncio.timeout(max(deadline - time.monotonic(), MIN_CLOSE_SECONDS)):
            await close()
    except TimeoutError:
        log.warning("%s could not close within the grace period", what)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        log.debug("%s raised a stray CancelledError while closing", what)
