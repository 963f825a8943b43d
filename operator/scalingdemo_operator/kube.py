"""The one place that talks to the Kubernetes API.

A thin async wrapper over the official client: generic get/list/apply/delete by apiVersion and
kind (plural names come from the kinds listed in `api`), server-side apply with the fixed
field manager and forced conflicts, and retries with exponential backoff for transient failures
(throttling, server errors, dropped connections). Blocking client calls run in worker threads so
the kopf event loop stays responsive.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException as ApiException
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from . import metrics
from .api import API_VERSION, FIELD_MANAGER, KIND, Manifest, Owner, resources

RESOURCES = resources()
"""Plural resource names of every (apiVersion, kind) the operator reads or writes."""

TRANSIENT_STATUSES = frozenset({0, 429, 500, 502, 503, 504})
RETRY_ATTEMPTS = 5


def is_transient(error: BaseException) -> bool:
    """Worth retrying: the same request may succeed later without anyone changing anything."""
    if isinstance(error, ApiException):
        return (error.status or 0) in TRANSIENT_STATUSES
    return isinstance(error, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


def client_from_environment() -> kubernetes.client.ApiClient:
    """In-cluster service account when running in a pod, else the kubeconfig (KUBECONFIG).

    Its requests carry the field manager as user agent, so an audit log tells them apart.
    """
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    client = kubernetes.client.ApiClient()
    client.user_agent = FIELD_MANAGER
    return client


def _path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = f"{base}/namespaces/{namespace}/{RESOURCES[(api_version, kind)]}"
    return f"{path}/{name}" if name else path


class Kube:
    """Async Kubernetes access for the reconcile; one instance per operator process."""

    def __init__(self, client: kubernetes.client.ApiClient, request_seconds: float = 30) -> None:
        self._client = client
        self._request_seconds = request_seconds
        self._keeps_tolerance: bool | None = None
        self._events = ThreadPoolExecutor(thread_name_prefix="events")
        """Events go out on threads of their own: a new demo posts one per child, and that
        burst must not queue ahead of other demos' applies and status writes, which use
        asyncio's default threads."""

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method, url, headers, body, _ = self._client.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._client.call_api(
            method, url, header_params=headers, body=body, _request_timeout=self._request_seconds
        )
        data = response.read()
        if not 200 <= response.status <= 299:
            raise ApiException(http_resp=response)
        found: dict[str, Any] = json.loads(data) if data else {}
        return found

    async def _call(
        self,
        verb: str,
        kind: str,
        method: str,
        path: str,
        executor: Executor | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Send one request with retries, on `executor`'s threads (asyncio's default ones when
        None); every attempt is counted, failures by status."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_transient),
            wait=wait_exponential_jitter(multiplier=0.2, max=5),
            stop=stop_after_attempt(RETRY_ATTEMPTS),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                metrics.API_REQUESTS.labels(verb, kind).inc()
                try:
                    send = functools.partial(self._send, method, path, **kwargs)
                    return await asyncio.get_running_loop().run_in_executor(executor, send)
                except ApiException as error:
                    metrics.ERRORS.labels(kind, str(error.status or 0)).inc()
                    raise
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Manifest | None:
        """The object, or None when it does not exist."""
        try:
            return await self._call("get", kind, "GET", _path(api_version, kind, namespace, name))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def keeps_hpa_tolerance(self, namespace: str) -> bool | None:
        """Whether the API server keeps an HPA's behavior tolerance; None when not allowed to ask.

        The field exists only while the HPAConfigurableTolerance feature gate is on, and an API
        server with the gate off drops it silently; its OpenAPI schema lists the field either
        way. So an HPA that sets it is created as a server-side dry run (nothing is stored) and
        read back. The gate changes only with an API server restart: asked once per process.
        """
        if self._keeps_tolerance is not None:
            return self._keeps_tolerance
        probe = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"generateName": "scalingdemo-tolerance-probe-", "namespace": namespace},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "probe"},
                "maxReplicas": 1,
                "behavior": {"scaleUp": {"tolerance": "0.05"}},
            },
        }
        path = _path("autoscaling/v2", "HorizontalPodAutoscaler", namespace)
        try:
            created = await self._call(
                "create",
                "HorizontalPodAutoscaler",
                "POST",
                path,
                query=[("dryRun", "All"), ("fieldManager", FIELD_MANAGER)],
                body=probe,
            )
        except ApiException as error:
            if error.status == 403:
                return None
            raise
        self._keeps_tolerance = "tolerance" in created["spec"].get("behavior", {}).get(
            "scaleUp", {}
        )
        return self._keeps_tolerance

    async def apply(self, manifest: Manifest) -> Manifest:
        """Server-side apply with the operator's field manager, taking over conflicting fields."""
        metadata = manifest["metadata"]
        path = _path(
            manifest["apiVersion"], manifest["kind"], metadata["namespace"], metadata["name"]
        )
        return await self._call(
            "apply",
            manifest["kind"],
            "PATCH",
            path,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            body=manifest,
            content_type="application/apply-patch+yaml",
        )

    async def delete(self, manifest: Mapping[str, Any]) -> None:
        """Delete in the background (dependents go to the garbage collector); gone is fine."""
        metadata = manifest["metadata"]
        path = _path(
            manifest["apiVersion"], manifest["kind"], metadata["namespace"], metadata["name"]
        )
        body = {"propagationPolicy": "Background", "preconditions": {"uid": metadata["uid"]}}
        try:
            await self._call("delete", manifest["kind"], "DELETE", path, body=body)
        except ApiException as error:
            if error.status not in (404, 409):
                raise

    async def create(self, manifest: Manifest) -> Manifest:
        """Create an Event (POST, no apply: it is only ever counted on, by `patch_event`)."""
        path = _path(manifest["apiVersion"], manifest["kind"], manifest["metadata"]["namespace"])
        return await self._call(
            "create", manifest["kind"], "POST", path, self._events, body=manifest
        )

    async def patch_event(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        """Merge-patch an Event posted before (its count of repeats and their last time)."""
        path = _path("v1", "Event", namespace, name)
        await self._call(
            "patch",
            "Event",
            "PATCH",
            path,
            self._events,
            body=dict(patch),
            content_type="application/merge-patch+json",
        )

    async def patch_status(
        self, owner: Owner, status: Mapping[str, Any], resource_version: str | None = None
    ) -> Manifest:
        """Merge-patch the status subresource (lists such as conditions are replaced whole).

        With `resource_version` the API server refuses the patch (409 Conflict) when the object
        changed since it was read: a status computed from an older object is not written.
        """
        path = _path(API_VERSION, KIND, owner.namespace, owner.name) + "/status"
        body: dict[str, Any] = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        return await self._call(
            "patch", KIND, "PATCH", path, body=body, content_type="application/merge-patch+json"
        )
