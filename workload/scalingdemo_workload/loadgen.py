"""`scalingdemo-load`: drive the workload's API and report what happened.

It talks to a URL only, so it works from a laptop through `kubectl port-forward` as well as
inside the cluster. Load is bounded three ways (a duration that ends the run, a cap on requests
in flight, and a back-off after connection failures) so a typo cannot turn it into a flood.

With `--rate` or `--profile`, latency is measured from each request's intended send time (see
pacing.py and loadstats.py): a saturated target shows its queueing in the percentiles, and
requests that were due but could not go out before the end are reported as not sent.

Pacing, latency and the run's end read the event loop's clock (`loop.time()`, time.monotonic()
on a real loop), so a test can run the whole sender on a loop whose time is simulated and count
what it sent in each step exactly, whatever the machine's load.
"""

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from .config import number_in
from .demo_watch import DemoWatch, WatchError, demo_name
from .health import Backoff
from .loadstats import LoadStats
from .pacing import Profile, Schedule
from .profiles import ProfileError, parse_profile
from .scenario import Scenario
from .validation import COMPLEXITY_RANGE, DURATION_MS_RANGE

MAX_IN_FLIGHT = 256
DEFAULT_DURATION = 30.0
DEFAULT_CONCURRENCY = 8
DEFAULT_COMPLEXITY = 1
TASK_ONLY_OPTIONS = ("complexity", "duration_ms")
CONNECT_RETRY_FIRST_SECONDS = 0.1
CONNECT_RETRY_LAST_SECONDS = 5.0
WATCH_ONLY_OPTIONS = ("namespace", "report", "kafka_bootstrap")


def bounded_argument(
    kind: type[int] | type[float], low: float, high: float
) -> Callable[[str], Any]:
    """An argparse type for a number within [low, high] (the benchmarks' too); argparse wants
    ArgumentTypeError to show our message instead of a generic one."""
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


def _watch_target(raw: str) -> str:
    try:
        demo_name(raw)
    except WatchError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return raw


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
        "--rate", type=bounded_argument(float, 0.1, 100_000), help="requests per second (open loop)"
    )
    mode.add_argument(
        "--concurrency",
        type=bounded_argument(int, 1, MAX_IN_FLIGHT),
        help=f"requests kept in flight (closed loop; the default, with {DEFAULT_CONCURRENCY})",
    )
    mode.add_argument(
        "--profile",
        metavar="KIND:SPEC",
        help="requests per second changing over time (open loop): constant:20/s, "
        "step:10/s@30s,50/s@60s,0/s@60s, ramp:0/s..100/s@2m, spike:10/s,200/s@30s+10s; "
        "step and ramp set the run's length, constant and spike run for --duration",
    )
    parser.add_argument(
        "--duration",
        type=bounded_argument(float, 0.1, 86_400),
        help=f"seconds (default {DEFAULT_DURATION:g}; a step or ramp profile sets its own)",
    )
    parser.add_argument(
        "--batch", type=bounded_argument(int, 1, 100_000), default=1, help="records per request"
    )
    parser.add_argument(
        "--max-in-flight",
        type=bounded_argument(int, 1, MAX_IN_FLIGHT),
        default=MAX_IN_FLIGHT,
        help=f"with --rate: most requests outstanding at once (default {MAX_IN_FLIGHT})",
    )
    parser.add_argument(
        "--complexity",
        type=bounded_argument(int, *COMPLEXITY_RANGE),
        help=f"task complexity (tasks only; default {DEFAULT_COMPLEXITY})",
    )
    parser.add_argument(
        "--duration-ms",
        type=bounded_argument(int, *DURATION_MS_RANGE),
        help="CPU milliseconds per task (tasks only; overrides --complexity)",
    )
    parser.add_argument(
        "--timeout",
        type=bounded_argument(float, 0.1, 600),
        default=10.0,
        help="per-request timeout",
    )
    watch = parser.add_argument_group(
        "scenario report",
        "Watch a ScalingDemo while the load runs: a live view every second, then the timeline "
        "(CSV, JSON), a PNG chart and a summary of how it scaled.",
    )
    watch.add_argument(
        "--watch", type=_watch_target, metavar="sdemo/NAME", help="the ScalingDemo to watch"
    )
    watch.add_argument(
        "-n", "--namespace", help="its namespace (default: the kubeconfig context's namespace)"
    )
    watch.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="where the timeline and chart go (default: scalingdemo-report-NAME)",
    )
    watch.add_argument(
        "--kafka-bootstrap",
        metavar="HOST:PORT",
        help="read the backlog from this Kafka address instead of the one in the demo's "
        "ScaledObject (e.g. through a port-forward)",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and refuse options that do nothing for the chosen kind or mode."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.kind != "tasks":
        for name in TASK_ONLY_OPTIONS:
            if getattr(args, name) is not None:
                option = "--" + name.replace("_", "-")
                parser.error(f"argument {option}: applies only to --kind tasks")
    if args.watch is None:
        for name in WATCH_ONLY_OPTIONS:
            if getattr(args, name) is not None:
                option = "--" + name.replace("_", "-")
                parser.error(f"argument {option}: applies only with --watch")
    elif args.report is None:
        args.report = Path(f"scalingdemo-report-{demo_name(args.watch)}")
    if args.rate is None and args.profile is None and args.max_in_flight != MAX_IN_FLIGHT:
        parser.error("argument --max-in-flight: applies only with --rate or --profile")
    if args.profile is not None:
        try:
            args.profile = parse_profile(args.profile, args.duration)
        except ProfileError as err:
            parser.error(f"argument --profile: {err}")
        args.duration = args.profile.seconds
    elif args.rate is not None:
        args.profile = Profile.constant(args.rate)
    if args.duration is None:
        args.duration = DEFAULT_DURATION
    return args


def request_body(args: argparse.Namespace) -> dict[str, Any]:
    """The JSON body every request sends."""
    if args.kind == "messages":
        item: dict[str, Any] = {"content": "scalingdemo-load"}
    elif args.duration_ms is not None:
        item = {"duration_ms": args.duration_ms}
    else:
        item = {"complexity": args.complexity or DEFAULT_COMPLEXITY}
    return {args.kind: [item] * args.batch} if args.batch > 1 else item


def loop_time() -> float:
    """The running event loop's clock: the one its sleeps and timeouts are measured on."""
    return asyncio.get_running_loop().time()


class ConnectionGate:
    """Holds requests back after connection failures, with a growing jittered delay, so an
    unreachable URL gets a few attempts a second instead of thousands."""

    def __init__(self) -> None:
        self._backoff = Backoff(CONNECT_RETRY_FIRST_SECONDS, CONNECT_RETRY_LAST_SECONDS)
        self._closed_until = 0.0

    @property
    def open(self) -> bool:
        return loop_time() >= self._closed_until

    async def wait_open(self) -> None:
        await asyncio.sleep(max(self._closed_until - loop_time(), 0))

    def failed(self) -> None:
        self._closed_until = loop_time() + self._backoff.next_delay()

    def succeeded(self) -> None:
        self._backoff.reset()


def current_task() -> "asyncio.Task[Any]":
    task = asyncio.current_task()
    assert task is not None, "called outside a task"
    return task


async def _outcome(response: aiohttp.ClientResponse) -> tuple[str, str]:
    """("202", "") or ("422 invalid", the server's message) for an answered request."""
    status = str(response.status)
    if response.status == 202:
        await response.read()
        return status, ""
    try:
        error = (await response.json(content_type=None))["error"]
        return f"{status} {error['code']}", str(error["message"])
    except (ValueError, KeyError, TypeError, aiohttp.ContentTypeError):
        return status, (await response.text(errors="replace"))[:200]


class LoadRun:
    """One bounded run against one endpoint."""

    def __init__(self, args: argparse.Namespace, session: aiohttp.ClientSession) -> None:
        self._args = args
        self._session = session
        self.endpoint = f"{args.url}/{args.kind}"
        self._body = request_body(args)
        self._schedule: Schedule | None = args.profile
        self._gate = ConnectionGate()
        self._ended = asyncio.Event()
        self._in_flight = 0
        self.stats = LoadStats()

    def end(self) -> None:
        """End the run now (Ctrl-C): what is in flight is abandoned, the summary still shown."""
        self._ended.set()

    async def _send(self, intended: float) -> None:
        sent = loop_time()
        queued = sent - intended
        self._in_flight += 1
        try:
            async with self._session.post(self.endpoint, json=self._body) as response:
                outcome, message = await _outcome(response)
            self._gate.succeeded()
        except aiohttp.ClientConnectorError as err:
            self._gate.failed()
            outcome, message = "connection failed", str(err)
        except (aiohttp.ClientError, TimeoutError) as err:
            outcome, message = type(err).__name__, str(err)
        finally:
            self._in_flight -= 1
        service = loop_time() - sent
        self.stats.record(outcome, queued + service, service, self._args.batch, message)

    async def _closed_loop(self) -> None:
        async def user() -> None:
            while True:
                await self._gate.wait_open()
                await self._send(loop_time())

        await asyncio.gather(
            *(user() for _ in range(self._args.concurrency or DEFAULT_CONCURRENCY))
        )

    async def _open_loop(self, schedule: Schedule, start: float, end: float) -> None:
        slots = asyncio.Semaphore(self._args.max_in_flight)
        spawned: set[asyncio.Task[None]] = set()
        queued: set[asyncio.Task[None]] = set()

        async def one(intended: float) -> None:
            async with slots:
                queued.discard(current_task())
                if not self._gate.open:
                    self.stats.miss("held back after connection failures")
                    return
                await self._send(intended)

        try:
            for intended in schedule.send_times(start, end):
                await asyncio.sleep(max(intended - loop_time(), 0))
                task = asyncio.create_task(one(intended))
                spawned.add(task)
                queued.add(task)
                task.add_done_callback(spawned.discard)
            await asyncio.Event().wait()
        finally:
            for task in spawned:
                if task in queued:
                    self.stats.miss("due, but not sent before the end")
                task.cancel()
            await asyncio.gather(*spawned, return_exceptions=True)

    async def run(self, progress: Progress) -> float:
        """Send load until the duration ends (or end() is called); the elapsed seconds."""
        started = loop_time()
        end = started + self._args.duration
        bar = progress.add_task(self.endpoint, total=self._args.duration)
        if self._schedule is not None:
            load = asyncio.create_task(self._open_loop(self._schedule, started, end))
        else:
            load = asyncio.create_task(self._closed_loop())
        ended = asyncio.create_task(self._ended.wait())
        while loop_time() < end and not ended.done() and not load.done():
            stats = self.stats
            progress.update(
                bar,
                completed=min(loop_time() - started, self._args.duration),
                description=f"sent {stats.sent}  accepted {stats.accepted}  errors {stats.errors}",
            )
            await asyncio.wait({load, ended}, timeout=min(0.2, max(end - loop_time(), 0)))
        self.stats.unfinished = self._in_flight
        load.cancel()
        ended.cancel()
        await asyncio.gather(load, ended, return_exceptions=True)
        return loop_time() - started


async def _watched(load: LoadRun, scenario: Scenario, console: Console) -> float:
    """The run with the scenario's live view instead of the progress bar."""
    with Live(scenario, console=console, refresh_per_second=1):
        sampling = asyncio.create_task(scenario.sample(lambda: load.stats.sent))
        try:
            return await load.run(Progress(disable=True))
        finally:
            sampling.cancel()
            await asyncio.gather(sampling, return_exceptions=True)


async def run(args: argparse.Namespace, console: Console) -> LoadStats:
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT)
    columns = (TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn())
    watch = DemoWatch(args.watch, args.namespace, args.kafka_bootstrap) if args.watch else None
    scenario = None
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        load = LoadRun(args, session)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, load.end)
        mode = (
            f"{args.rate:g} req/s"
            if args.rate
            else "the profile's rates"
            if args.profile
            else f"{args.concurrency or DEFAULT_CONCURRENCY} in flight"
        )
        try:
            if watch is not None:
                await watch.start()
                scenario = Scenario(watch, args.profile, args.report)
            console.print(
                f"sending to {load.endpoint} at {mode} for {args.duration:g} s (Ctrl-C ends early)"
            )
            if scenario is not None:
                load.stats.elapsed = await _watched(load, scenario, console)
            else:
                with Progress(*columns, console=console, transient=True) as progress:
                    load.stats.elapsed = await load.run(progress)
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
            if watch is not None:
                await watch.close()
    console.print(load.stats.summary())
    if scenario is not None:
        console.print(scenario.finish(load.stats.errors + load.stats.not_sent))
    return load.stats


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        stats = asyncio.run(run(args, Console()))
    except WatchError as err:
        build_parser().error(f"argument --watch: {err}")
    healthy = stats.sent and stats.errors == 0 and stats.not_sent == 0
    raise SystemExit(0 if healthy else 1)


if __name__ == "__main__":
    main()
