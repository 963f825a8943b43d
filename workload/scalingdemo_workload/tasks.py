"""CPU work for tasks, run in worker processes.

Tasks burn real CPU so CPU-based autoscaling has something to see. Running them in a process pool
keeps the event loop (and with it /healthz and /metrics) responsive and lets a worker use several
cores; a thread pool would serialise on the GIL.
"""

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

SPIN = 10_000
SLICE_SECONDS = 0.1


def burn_cpu(seconds: float) -> None:
    """Spin until this process has used `seconds` of CPU time (not wall time)."""
    deadline = time.process_time() + seconds
    acc = 0
    while time.process_time() < deadline:
        for step in range(SPIN):
            acc = (acc * 31 + step) % 1_000_003


def task_seconds(task: dict[str, Any], unit_ms: int) -> float:
    """CPU seconds a task asks for: its duration_ms if given, else complexity units."""
    duration_ms = task.get("duration_ms")
    if duration_ms is not None:
        return float(duration_ms) / 1000
    return int(task.get("complexity", 1)) * unit_ms / 1000


class CpuPool:
    """A bounded pool of processes that burn CPU on request."""

    def __init__(self, processes: int) -> None:
        self._executor = ProcessPoolExecutor(
            max_workers=processes, mp_context=multiprocessing.get_context("forkserver")
        )

    async def burn(self, seconds: float) -> None:
        """Burn in slices so a cancelled task frees its process within one slice, which keeps
        shutdown prompt even for minute-long tasks."""
        loop = asyncio.get_running_loop()
        remaining = seconds
        while remaining > 0:
            step = min(remaining, SLICE_SECONDS)
            await loop.run_in_executor(self._executor, burn_cpu, step)
            remaining -= step

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
