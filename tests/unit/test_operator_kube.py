"""What the API access sends, recorded below the HTTP client (no cluster needed)."""

from __future__ import annotations

from typing import Any

import pytest
from scalingdemo_operator.kube import Kube

from tests.unit.conftest import OWNER

pytestmark = pytest.mark.unit


class Recording(Kube):
    """Records each request instead of sending it."""

    def __init__(self) -> None:
        super().__init__(client=None)
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def _send(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        self.sent.append((method, path, kwargs))
        return {}


async def test_a_status_patch_carries_the_resource_version_that_was_read() -> None:
    kube = Recording()
    await kube.patch_status(OWNER, {"endpoint": ""}, "42")
    ((method, path, request),) = kube.sent
    assert (method, path) == (
        "PATCH",
        "/apis/scalingdemo.dev/v1alpha1/namespaces/team/scalingdemos/demo/status",
    )
    assert request["body"] == {"metadata": {"resourceVersion": "42"}, "status": {"endpoint": ""}}
    assert request["content_type"] == "application/merge-patch+json"
