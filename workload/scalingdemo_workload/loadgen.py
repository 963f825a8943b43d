"""`scalingdemo-load`: drive the workload's API and report what happened.

It talks to a URL only, so it works from a laptop through `kubectl port-forward` as well as
inside the cluster. Load is bounded twice (a duration and a cap on requests in flight) so a typo
cannot turn it into an unbounded flood.
"""

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from .config import number_in
from .loadstats import LoadStats
from .validation import COMPLEXITY_RANGE, DURATION_MS_RANGE

MAX_IN_FLIGHT = 256


def _bounded(kind: type[int] | type[float], low: float, high: float) -> Callable[[str], Any]:
    """argparse wants ArgumentTypeError to show our message instead of a generic one."""
    parse = number_in(kind, low, high)

    def checked(raw: str) -> Any:
        try:
            return parse(raw)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return checked


def _url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"expected http(s)://host:port, got {raw!r}")
    return raw.rstrip("/")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scalingdemo-load",
        description="Send messages or tasks to a ScalingDemo workload at a target rate or "
        "concurrency, with a live progress bar and a summary table.",
        epilog="Example: kubectl port-forward svc/demo-api 8080 & "
        "scalingdemo-load http://127.0.0.1:8080 --kind tasks --complexity 5 --rate 20 "
        "--duration 60",
    )
    parser.add_argument("url", type=_url, help="base URL of the workload API")
    parser.add_argument("--kind", choices=("messages", "tasks"), default="messages")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--rate", type=_bounded(float, 0.1, 100_000), help="requests per second (open loop)"
    )
    mode.add_argument(
        "--concurrency",
        type=_bounded(int, 1, MAX_IN_FLIGHT),
        help="requests kept in flight (closed loop; the default, with 8)",
    )
    parser.add_argument(
        "--duration", type=_bounded(float, 0.1, 86_400), default=30.0, help="seconds (default 30)"
    )
    parser.add_argument(
        "--batch", type=_bounded(int, 1, 100_000), default=1, help="records per request"
    )
    parser.add_argument(
        "--complexity", type=_bounded(int, *COMPLEXITY_RANGE), default=1, help="task complexity"
    )
    parser.add_argument(
        "--duration-ms",
        type=_bounded(int, *DURATION_MS_RANGE),
        help="CPU milliseconds per task (overrides --complexity)",
    )
    parser.add_argument(
        "--timeout", type=_bounded(float, 0.1, 600), default=10.0, help="per-request timeout"
    )
    return parser


def request_body(args: argparse.Namespace) -> dict[str, Any]:
    """The JSON body every request sends."""
    if args.kind == "messages":
        item: dict[str, Any] = {"content": "scalingdemo-load"}
    elif args.duration_ms is not None:
        item = {"duration_ms": args.duration_ms}
    else:
        item = {"complexity": args.complexity}
    return {args.kind: [item] * args.batch} if args.batch > 1 else item


class LoadRun:
    """One bounded run against one endpoint."""

    def __init__(self, args: argparse.Namespace, session: aiohttp.ClientSession) -> None:
        self._args = args
        self._session = session
        self._endpoint = f"{args.url}/{args.kind}"
        self._body = request_body(args)
        self._deadline = 0.0
        self.stats = LoadStats()

    async def _one(self) -> None:
        started = time.perf_counter()
        try:
            async with self._session.post(self._endpoint, json=self._body) as response:
                await response.read()
                outcome = str(response.status)
        except (aiohttp.ClientError, TimeoutError) as err:
            outcome = type(err).__name__
        self.stats.record(outcome, time.perf_counter() - started, self._args.batch)

    async def _closed_loop(self) -> None:
        async def user() -> None:
            while time.monotonic() < self._deadline:
                await self._one()

        await asyncio.gather(*(user() for _ in range(self._args.concurrency or 8)))

    async def _open_loop(self) -> None:
        interval = 1 / self._args.rate
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        pending: set[asyncio.Task] = set()
        next_at = time.monotonic()

        async def one() -> None:
            async with slots:
                await self._one()

        while next_at < self._deadline:
            await asyncio.sleep(max(next_at - time.monotonic(), 0))
            task = asyncio.create_task(one())
            pending.add(task)
            task.add_done_callback(pending.discard)
            next_at += interval
        await asyncio.gather(*pending)

    async def run(self, progress: Progress) -> float:
        """Send load until the duration ends; the elapsed seconds."""
        started = time.monotonic()
        self._deadline = started + self._args.duration
        bar = progress.add_task(self._endpoint, total=self._args.duration)
        load = asyncio.create_task(self._open_loop() if self._args.rate else self._closed_loop())
        while not load.done():
            stats = self.stats
            progress.update(
                bar,
                completed=min(time.monotonic() - started, self._args.duration),
                description=f"sent {stats.sent}  accepted {stats.accepted}  errors {stats.errors}",
            )
            await asyncio.wait({load}, timeout=0.2)
        await load
        return time.monotonic() - started


async def run(args: argparse.Namespace, console: Console) -> LoadStats:
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT)
    columns = (TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn())
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        load = LoadRun(args, session)
        with Progress(*columns, console=console, transient=True) as progress:
            elapsed = await load.run(progress)
    console.print(load.stats.summary(elapsed))
    return load.stats


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    stats = asyncio.run(run(args, Console()))
    raise SystemExit(0 if stats.sent and stats.errors == 0 else 1)


if __name__ == "__main__":
    main()
