"""charts/scalingdemo-operator without Helm: its defaults are the operator's and deploy/operator's.

Helm itself lints and renders the chart in tests/integration/test_chart.py (it is built by the
bed); what can be checked by reading the files is checked here, at unit speed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from scalingdemo_operator.__main__ import _arguments

from tests.support import INSTALL_DIRECTORY, REPOSITORY

pytestmark = pytest.mark.unit

CHART = REPOSITORY / "charts" / "scalingdemo-operator"


@pytest.fixture
def values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def test_the_chart_ships_the_crd_of_crds() -> None:
    """Helm installs only files inside the chart, and warns at every command about a symbolic
    link: the chart holds a copy of crds/, which stays the source."""
    shipped = CHART / "crds" / "scalingdemo.dev_scalingdemos.yaml"
    source = REPOSITORY / "crds" / shipped.name
    assert shipped.read_bytes() == source.read_bytes(), f"cp {source} {shipped}"


def test_defaults_are_the_operator_defaults(values: dict[str, Any]) -> None:
    defaults = _arguments([])
    assert values["resyncSeconds"] == defaults.resync_seconds
    assert values["topicDeleteAttempts"] == defaults.topic_delete_attempts
    assert values["concurrentReconciles"] == defaults.concurrent_reconciles
    assert values["metrics"]["port"] == defaults.metrics_port
    assert values["healthPort"] == urlsplit(defaults.liveness).port
    assert values["watchNamespaces"] == defaults.namespace == []
    assert values["logLevel"] == "info"
    assert defaults.verbose is False


def test_the_default_image_is_the_kustomize_image(values: dict[str, Any]) -> None:
    kustomization = yaml.safe_load((INSTALL_DIRECTORY / "kustomization.yaml").read_text())
    (image,) = kustomization["images"]
    assert (values["image"]["repository"], values["image"]["tag"]) == (
        image["newName"],
        image["newTag"],
    )


def test_the_service_monitor_is_off_by_default(values: dict[str, Any]) -> None:
    assert values["metrics"]["serviceMonitor"]["enabled"] is False


def test_kustomize_and_chart_read_one_cluster_role() -> None:
    kustomization = yaml.safe_load((INSTALL_DIRECTORY / "kustomization.yaml").read_text())
    shared = (INSTALL_DIRECTORY / "../../charts/scalingdemo-operator/files/rbac").resolve()
    assert shared == (CHART / "files" / "rbac").resolve()
    assert "../../charts/scalingdemo-operator/files/rbac" in kustomization["resources"]
    kinds = [
        item["kind"] for item in yaml.safe_load_all((INSTALL_DIRECTORY / "rbac.yaml").read_text())
    ]
    assert "ClusterRole" not in kinds, "the rules live in one file only"
