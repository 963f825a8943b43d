"""How closely `scalingdemo-load` drives a profile on real time: achieved over target per step.

    .venv/bin/python -m benchmarks.load_pacing [--profile step:40/s@2s,160/s@2s,0/s@1s,80/s@2s]

A loopback aiohttp server that answers 202 notes when each request arrives. For every step of
the profile, away from its edges (a request sent on time may land a moment later), the arrivals
are counted and divided by what the profile's integral asks for over the same window: 1.00
means the step was driven at its rate. The baseline is the profile itself, so the ratio holds
on any machine; a busy one shows as ratios below 1 and as requests reported not sent.

The exact counts on a simulated clock are a unit test (tests/unit/test_workload_pacing_sender.py);
this is the same sender on the machine's own clock, measured and printed, never asserted.
All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import io

from aiohttp import web
from rich.console import Console
from scalingdemo_workload.loadgen import parse_args
from scalingdemo_workload.loadgen import run as run_load

DEFAULT_PROFILE = "step:40/s@2s,160/s@2s,0/s@1s,80/s@2s"
EDGE_SECONDS = 0.25
"""Left out at each edge of a step."""


async def arrivals_for(profile: str) -> tuple[argparse.Namespace, list[float], int, int]:
    """Run the profile against a loopback server: (args, arrival offsets, sent, not sent)."""
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []

    async def accept(request: web.Request) -> web.Response:
        arrivals.append(loop.time())
        await request.read()
        return web.json_response({}, status=202)

    app = web.Application()
    app.router.add_post("/messages", accept)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        args = parse_args([f"http://127.0.0.1:{port}", "--profile", profile])
        started = loop.time()
        stats = await run_load(args, Console(file=io.StringIO()))
    finally:
        await runner.cleanup()
    return args, [at - started for at in arrivals], stats.sent, stats.not_sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default=DEFAULT_PROFILE, help="a step or ramp profile")
    options = parser.parse_args()
    args, arrivals, sent, not_sent = asyncio.run(arrivals_for(options.profile))
    profile = args.profile
    print(f"profile {options.profile}: {sent} sent, {not_sent} due but not sent")
    print(f"{'step':<24} {'target':>8} {'achieved':>9} {'ratio':>6}")
    began = 0.0
    for segment in profile.segments:
        since, until = began + EDGE_SECONDS, began + segment.seconds - EDGE_SECONDS
        target = profile.target_requests(since, until)
        achieved = sum(1 for at in arrivals if since <= at < until)
        ratio = f"{achieved / target:.2f}" if target else "-"
        rates = f"{segment.start_rate:g}/s" + (
            "" if segment.end_rate == segment.start_rate else f"..{segment.end_rate:g}/s"
        )
        print(f"{rates + ' for ' + format(segment.seconds, 'g') + 's':<24} "
              f"{target:>8.1f} {achieved:>9} {ratio:>6}")  # fmt: skip
        began += segment.seconds
    total = profile.target_requests(0, profile.seconds)
    print(f"{'whole run':<24} {total:>8.1f} {len(arrivals):>9} {len(arrivals) / total:>6.2f}")


if __name__ == "__main__":
    main()
