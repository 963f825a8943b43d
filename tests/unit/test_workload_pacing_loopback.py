"""The rate controller driving real HTTP requests: a step profile against a loopback server.

The server notes when each request arrives; inside every step (away from its edges, where a
request sent on time may land a moment later) the achieved rate must match the step's target.
Counts are compared, within a tolerance, never the time anything took.
"""

import asyncio
import io

import pytest
from aiohttp import web
from rich.console import Console
from scalingdemo_workload.loadgen import parse_args
from scalingdemo_workload.loadgen import run as run_load

pytestmark = pytest.mark.unit

PROFILE = "step:40/s@2s,160/s@2s,0/s@1s,80/s@2s"
EDGE = 0.25
"""Seconds left out at each edge of a step."""
TOLERANCE = 0.15


async def test_a_step_profile_is_driven_at_each_steps_rate():
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []

    async def accept(request: web.Request) -> web.Response:
        arrivals.append(loop.time())
        await request.read()
        return web.json_response({}, status=202)

    app = web.Application()
    app.router.add_post("/messages", accept)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        args = parse_args([f"http://127.0.0.1:{port}", "--profile", PROFILE])
        stats = await run_load(args, Console(file=io.StringIO()))
    finally:
        await runner.cleanup()

    profile = args.profile
    total = profile.target_requests(0, profile.seconds)
    assert stats.errors == 0
    assert total - 3 <= stats.accepted <= total
    first = arrivals[0]
    began = 0.0
    for segment in profile.segments:
        since, until = began + EDGE, began + segment.seconds - EDGE
        achieved = sum(1 for at in arrivals if since <= at - first < until)
        target = profile.target_requests(since, until)
        print(f"{segment}: achieved {achieved}, target {target:g}")
        assert achieved == pytest.approx(target, rel=TOLERANCE, abs=2), (segment, achieved)
        began += segment.seconds
