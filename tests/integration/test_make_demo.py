"""``make demo`` on a machine without kind or Docker, run the way a user runs it.

The local path brings the demo up on a bed of its own with a real node, KEDA and Prometheus,
runs the operator as a pod, applies examples/basic.yaml, leaves it running and prints how to
use it; ``make demo-down`` stops it and leaves nothing behind. The machine has one real node
(one bridge), so the session's node steps aside first; the next test that needs it starts it
again.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.testbed import bridge
from tests.testbed.bed import STATE_FILE, Bed
from tests.testbed.demo import REPOSITORY
from tests.testbed.node import NODE_NAME, owner_file
from tests.testbed.processes import alive

MAKE_TIMEOUT = 1200


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory shallow enough for containerd's unix sockets (pytest's tmp_path is not)."""
    directory = Path(tempfile.mkdtemp(prefix="sd-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def make(target: str, demo_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", target, "DEMO=local", f"DEMO_DIR={demo_dir}"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=False,
        timeout=MAKE_TIMEOUT,
    )


def printed(pattern: str, output: str) -> str:
    match = re.search(pattern, output)
    assert match, f"make demo did not print {pattern!r}:\n{output}"
    return match.group(1)


def test_make_demo_runs_locally_and_demo_down_leaves_nothing(bed: Bed, short_dir: Path) -> None:
    bed.stop_node()
    demo_dir = short_dir / "demo"
    up = make("demo", demo_dir)
    pids = json.loads((demo_dir / STATE_FILE).read_text())["pids"] if up.returncode == 0 else []
    try:
        assert up.returncode == 0, up.stdout[-4000:] + up.stderr[-4000:]
        kubeconfig = printed(r"export KUBECONFIG=(\S+)", up.stdout)
        kubectl = Path(printed(r"export PATH=(\S+):\$PATH", up.stdout)) / "kubectl"
        assert "kubectl port-forward -n default svc/basic-api 8080:8080" in up.stdout
        assert re.search(r"scalingdemo-load http://127\.0\.0\.1:8080 --kind tasks", up.stdout)
        prometheus = printed(r"Prometheus: (http://127\.0\.0\.1:\d+)", up.stdout)
        with urllib.request.urlopen(f"{prometheus}/-/ready", timeout=5) as response:
            assert response.status == 200

        def get(*args: str) -> str:
            return subprocess.run(
                [kubectl, f"--kubeconfig={kubeconfig}", "get", *args],
                capture_output=True,
                text=True,
                check=True,
            ).stdout

        ready = get(
            "scalingdemo", "basic", "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'
        )
        assert ready == "True"
        pods = json.loads(get("pods", "-A", "-o", "json"))["items"]
        placed = {
            pod["metadata"]["name"].rsplit("-", 2)[0]: pod["spec"]["nodeName"]
            for pod in pods
            if pod["status"]["phase"] == "Running"
        }
        assert placed["scalingdemo-operator"] == NODE_NAME
        assert placed["basic-api"] == placed["basic-worker"] == NODE_NAME
    finally:
        down = make("demo-down", demo_dir)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not bridge.exists()
    assert not owner_file().exists()
    assert not [pid for pid in pids if alive(pid)]
