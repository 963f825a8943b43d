"""Whether an API server keeps the HPA's tolerance, asked the way the operator asks it.

The HPAConfigurableTolerance feature gate decides, and the bed's API server runs with its
default (on since Kubernetes 1.35). The other answer comes from a second API server, with its
own etcd and certificates, started with the gate off: a few seconds, and the only way to see
what such a cluster does with the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from scalingdemo_operator.kube import Kube

from tests.testbed import assets, pki
from tests.testbed.component import Stack
from tests.testbed.control_plane import Etcd, KubeApiServer, write_kubeconfig

GATE_OFF = {"--feature-gates": "HPAConfigurableTolerance=false"}


def _kube(kubeconfig: Path) -> Kube:
    return Kube(kubernetes.config.new_client_from_config(config_file=str(kubeconfig)))


@pytest.fixture(scope="module")
def gate_off(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The kubeconfig of an API server that does not serve the HPA's tolerance."""
    if not bed.local:
        pytest.skip("needs the local bed's binaries to start a second API server")
    run_dir = tmp_path_factory.mktemp("gate-off")
    binaries = assets.prepare().binaries
    certs = pki.generate(run_dir / "pki")
    stack = Stack()
    try:
        etcd = Etcd(run_dir, binaries.etcd)
        stack.start(etcd)
        server = KubeApiServer(run_dir, binaries.kube_apiserver, etcd, certs, GATE_OFF)
        stack.start(server)
        yield write_kubeconfig(
            run_dir / "kubeconfig",
            server.server,
            certs.ca_cert,
            certs.admin_cert,
            certs.admin_key,
            pki.ADMIN_USER,
        )
    finally:
        stack.stop()


async def test_the_beds_api_server_keeps_the_tolerance(bed: Any, namespace: str) -> None:
    assert await _kube(bed.kubeconfig).keeps_hpa_tolerance(namespace) is True


async def test_an_api_server_with_the_gate_off_drops_it_and_the_operator_notices(
    gate_off: Path,
) -> None:
    assert await _kube(gate_off).keeps_hpa_tolerance("default") is False
