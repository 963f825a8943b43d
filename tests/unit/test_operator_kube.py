"""What the status write sends, recorded below the HTTP client (no cluster needed)."""

from __future__ import annotations

from typing import Any

import pytest
from scalingdemo_operator.cache import Cache
from scalingdemo_operator.kube import ApiException, Kube
from scalingdemo_operator.reconcile import _write_status

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


class Conflicting:
    """API access whose first status patch meets an object that moved on to `fresh`."""

    def __init__(self, fresh: dict[str, Any]) -> None:
        self.fresh = fresh
        self.versions: list[str | None] = []
        self.cache = Cache()
        self.cache.bind({(OWNER.namespace, OWNER.name): [fresh]}, {}, {}, {})

    async def patch_status(self, owner: Any, patch: Any, version: str | None) -> dict[str, Any]:
        self.versions.append(version)
        if len(self.versions) == 1:
            raise ApiException(status=409, reason="Conflict")
        return {**self.fresh, "status": {"endpoint": "new"}}


def _body(version: str, generation: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"uid": "1234", "generation": generation, "resourceVersion": version},
        "status": {"endpoint": "old"},
    }


async def test_a_conflict_over_metadata_alone_resends_the_status_with_the_new_version() -> None:
    kube = Conflicting(_body("43"))
    await _write_status(kube, kube.cache, OWNER, _body("42"), {"endpoint": "new"})
    assert kube.versions == ["42", "43"]
    assert kube.cache.demo(OWNER)["status"] == {"endpoint": "new"}, "read back until watched"


async def test_a_conflict_over_the_spec_goes_up_for_a_fresh_reconcile() -> None:
    kube = Conflicting(_body("43", generation=2))
    with pytest.raises(ApiException):
        await _write_status(kube, kube.cache, OWNER, _body("42"), {"endpoint": "new"})
    assert kube.versions == ["42"]
