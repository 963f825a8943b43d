"""The OpenAPI document equals the behaviour: schemathesis, with every check it has, drives both
roles of a real workload process against the bed's Kafka broker.

Checks include status-code, content-type, header and response-schema conformance, positive data
acceptance and negative data rejection, not only "no 5xx". The seed is fixed so a failure
reproduces; the case count is asserted so the run cannot quietly shrink.
"""

import re
import signal
import subprocess
import sys
from pathlib import Path

from scalingdemo_workload.contract import Env, Role

from tests.support import WorkloadProcess
from tests.workload_support import fresh_topics

SEED = "20261129"
EXAMPLES_PER_OPERATION = {Role.API: "500", Role.WORKER: "100"}
MINIMUM_CASES = 1000
CONFIG = """
[checks.positive_data_acceptance]
# 413: a schema-valid request can still exceed a size limit (count copies x batch records over
# SCALINGDEMO_MAX_BATCH), which the document describes but JSON Schema cannot express.
expected-statuses = ["2XX", "413"]

[checks.negative_data_rejection]
# schemathesis's defaults plus 413: a batch over maxItems is refused as too large, not as 400.
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428",
                     "429", "5XX"]
"""
MAX_BATCH = "20"
"""A small batch limit keeps generated bodies, and with them the run, short."""


def schemathesis(process: WorkloadProcess, role: str, workdir: Path) -> str:
    config = workdir / "schemathesis.toml"
    config.write_text(CONFIG)
    finished = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(config),
            "run", f"http://{process.address}/openapi.json",
            "--checks", "all",
            "--max-examples", EXAMPLES_PER_OPERATION[role],
            "--seed", SEED,
            "--request-timeout", "30",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        cwd=workdir,
        timeout=600,
        check=False,
    )  # fmt: skip
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output[-6000:]
    return output


def cases(output: str) -> int:
    return int(re.search(r"(\d+) generated", output).group(1))


async def test_both_roles_conform_to_their_openapi_document(kafka_bootstrap: str, tmp_path: Path):
    total = 0
    async with fresh_topics(kafka_bootstrap) as wiring:
        for role in (Role.API, Role.WORKER):
            env = wiring.env(role, **{Env.MAX_BATCH: MAX_BATCH})
            process = WorkloadProcess(env, tmp_path / f"{role}.log")
            try:
                await process.wait_ready()
                ran = cases(schemathesis(process, role, tmp_path))
                print(f"schemathesis, role {role}: {ran} cases")
                total += ran
            finally:
                process.stop(signal.SIGTERM)
    assert total >= MINIMUM_CASES, f"only {total} cases ran"
    print(f"schemathesis: {total} cases over both roles")
