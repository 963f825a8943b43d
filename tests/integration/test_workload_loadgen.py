"""scalingdemo-load against an api it saturates on purpose.

One request in flight at a time, each a 1000-task batch, offered at far more than that allows (an
api on 2 cores answers about 110 such requests a second, so 2,000 leaves room for much faster
machines): requests queue in the generator. Measured from their intended send times, the
reported p99 must include that queueing (the old generator reported 1 s where the real waits
were about 6 s), the run must end at --duration, and what could not be sent is reported as not
sent.
"""

import io
import signal
from pathlib import Path

from rich.console import Console
from scalingdemo_workload.contract import Role
from scalingdemo_workload.loadgen import parse_args
from scalingdemo_workload.loadgen import run as run_load

from tests.support import WorkloadProcess
from tests.workload_support import fresh_topics

DURATION = 4.0
OFFERED_RATE = 2000
END_MARGIN = 2.0
"""Time allowed past --duration for cancelling what is in flight and printing the summary."""


async def test_saturated_api_shows_queueing_in_p99_and_the_run_ends_on_time(
    kafka_bootstrap: str, tmp_path: Path
):
    async with fresh_topics(kafka_bootstrap) as wiring:
        api = WorkloadProcess(wiring.env(Role.API), tmp_path / "api.log")
        try:
            await api.wait_ready()
            args = parse_args(
                [
                    f"http://{api.address}", "--kind", "tasks", "--duration-ms", "0",
                    "--batch", "1000", "--rate", str(OFFERED_RATE), "--max-in-flight", "1",
                    "--duration", str(DURATION),
                ]
            )  # fmt: skip
            console = Console(file=io.StringIO(), width=160, record=True)
            stats = await run_load(args, console)
        finally:
            api.stop(signal.SIGTERM)
    summary = console.export_text()
    print(summary)
    assert stats.errors == 0, summary
    assert stats.accepted > 0
    service_p99 = stats.service_seconds(99)
    latency_p99 = stats.latency_seconds(99)
    # Requests offered in the first second waited for every earlier one: the queue grows for the
    # whole run, so the tail is a large part of the run, far above one request's service time.
    assert latency_p99 > 5 * service_p99, summary
    assert latency_p99 > DURATION / 4, summary
    assert stats.not_sent > stats.sent, summary
    assert "Load summary" in summary
    assert stats.elapsed <= DURATION + END_MARGIN, summary
