"""Every example is accepted by the real API server (schema, defaults, CEL rules)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.operator_harness import install_crd
from tests.testbed.bed import Bed
from tests.testbed.control_plane import kubectl_run

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_example_passes_server_side_dry_run(bed: Bed, namespace: str, example: Path) -> None:
    install_crd(bed.kubectl, bed.kubeconfig)
    output = kubectl_run(
        bed.kubectl,
        bed.kubeconfig,
        "apply",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        str(example),
    )
    assert "created (server dry run)" in output
