"""What `scalingdemo-load --watch sdemo/NAME` reads each second, from outside the demo's pods.

The pods' own metrics vanish when a component scales to zero, so nothing here asks them:
- the ScalingDemo's status.scaling, which the operator fills from the HPA that KEDA owns and the
  ScaledObject (replicas current and desired, each trigger's value against its target, the
  HPA's last scale time);
- the backlog as Kafka itself reports it: the lag of the consumer group on the topic that each
  Kafka trigger of the demo's ScaledObjects names, from the trigger's own bootstrapServers
  (the address KEDA uses; `--kafka-bootstrap` replaces it when the load runs outside the
  cluster network, e.g. through a port-forward).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from .lag import group_lag
from .pacing_kafka import paced_admin, paced_consumer
from .timeline import Component, Trigger

GROUP, VERSION, PLURAL = "scalingdemo.dev", "v1alpha1", "scalingdemos"
KINDS = ("sdemo", "scalingdemo", "scalingdemos", "scalingdemo.scalingdemo.dev")
INSTANCE_LABEL = "app.kubernetes.io/instance"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
READ_SECONDS = 5.0
"""Bound of each read, so a slow API server or broker cannot stall the one-second view."""


class WatchError(ValueError):
    """The demo to watch cannot be found or read; the message names the option at fault."""


def demo_name(text: str) -> str:
    """NAME from `sdemo/NAME` (kubectl's way of naming one object)."""
    kind, slash, name = text.partition("/")
    if not slash or kind.lower() not in KINDS or not name:
        raise WatchError(f"expected sdemo/NAME, got {text!r}")
    return name


@dataclass(frozen=True)
class Backlog:
    """Where one Kafka trigger's lag is read: what KEDA reads."""

    bootstrap: str
    topic: str
    group: str
    offset_reset: str


def _load_config() -> str:
    """Configure the client (in-cluster, else the kubeconfig); the default namespace.

    KUBECONFIG is read now: the client's own default is read once, when it is imported."""
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubeconfig = os.environ.get("KUBECONFIG")
        try:
            kubernetes.config.load_kube_config(config_file=kubeconfig)
        except (kubernetes.config.ConfigException, OSError) as err:
            raise WatchError(f"no cluster to watch: {err}") from None
        _, context = kubernetes.config.list_kube_config_contexts(config_file=kubeconfig)
        return str(context.get("context", {}).get("namespace") or "default")
    return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()


def backlogs(scaled_objects: list[Mapping[str, Any]], bootstrap: str | None) -> list[Backlog]:
    """One Backlog per distinct Kafka trigger of the demo's ScaledObjects."""
    found = []
    for scaled_object in scaled_objects:
        for trigger in scaled_object.get("spec", {}).get("triggers", []):
            if trigger.get("type") != "kafka":
                continue
            meta = trigger.get("metadata", {})
            found.append(
                Backlog(
                    bootstrap or meta["bootstrapServers"],
                    meta["topic"],
                    meta["consumerGroup"],
                    meta.get("offsetResetPolicy", "latest"),
                )
            )
    return list(dict.fromkeys(found))


def components(status: Mapping[str, Any]) -> dict[str, Component]:
    """status.scaling's entries as timeline values."""
    scaling = status.get("scaling") or {}
    return {
        name: Component(
            entry.get("currentReplicas"),
            entry.get("desiredReplicas"),
            entry.get("lastScaleTime"),
            tuple(
                Trigger(item["name"], item.get("value"), item.get("target"), item.get("active"))
                for item in entry.get("triggers", [])
            ),
        )
        for name, entry in scaling.items()
        if isinstance(entry, Mapping)
    }


class DemoWatch:
    """Reads one ScalingDemo's scaling status and its Kafka backlog on demand."""

    def __init__(self, target: str, namespace: str | None, bootstrap: str | None) -> None:
        self.name = demo_name(target)
        self._namespace = namespace
        self._bootstrap = bootstrap
        self._custom: Any = None
        self._kafka: dict[str, tuple[AIOKafkaAdminClient, AIOKafkaConsumer]] = {}
        self._backlogs: list[Backlog] = []

    @property
    def namespace(self) -> str:
        return self._namespace or "default"

    async def start(self) -> None:
        """Find the demo (a clear error when it is not there) and connect to its Kafka."""
        default = await asyncio.to_thread(_load_config)
        self._namespace = self._namespace or default
        api = kubernetes.client.ApiClient()
        self._custom = kubernetes.client.CustomObjectsApi(api)
        try:
            await self._demo()
        except kubernetes.client.ApiException as err:
            where = f"{self.namespace}/{self.name}"
            if err.status == 404:
                raise WatchError(f"ScalingDemo {where} not found") from None
            raise WatchError(f"ScalingDemo {where} cannot be read: {err.reason}") from None
        listing = await asyncio.to_thread(
            self._custom.list_namespaced_custom_object,
            "keda.sh",
            "v1alpha1",
            self.namespace,
            "scaledobjects",
            label_selector=f"{INSTANCE_LABEL}={self.name}",
        )
        self._backlogs = backlogs(listing.get("items", []), self._bootstrap)
        for bootstrap in {item.bootstrap for item in self._backlogs}:
            admin = paced_admin(bootstrap_servers=bootstrap)
            offsets = paced_consumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
            self._kafka[bootstrap] = (admin, offsets)
            await admin.start()
            await offsets.start()

    async def _demo(self) -> Mapping[str, Any]:
        found: Mapping[str, Any] = await asyncio.to_thread(
            self._custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            self.name,
            _request_timeout=READ_SECONDS,
        )
        return found

    async def scaling(self) -> dict[str, Component]:
        """status.scaling as the operator last wrote it (empty when it cannot be read now)."""
        try:
            return components((await self._demo()).get("status") or {})
        except (kubernetes.client.ApiException, OSError):
            return {}

    async def backlog(self) -> int | None:
        """Kafka's lag summed over the demo's Kafka triggers (None: none, or Kafka silent)."""
        if not self._backlogs:
            return None
        total = 0
        for item in self._backlogs:
            admin, offsets = self._kafka[item.bootstrap]
            try:
                total += await asyncio.wait_for(
                    group_lag(admin, offsets, item.topic, item.group, item.offset_reset),
                    READ_SECONDS,
                )
            except (KafkaError, TimeoutError, OSError):
                return None
        return total

    async def close(self) -> None:
        for admin, offsets in self._kafka.values():
            with contextlib.suppress(KafkaError, OSError):
                await offsets.stop()
            with contextlib.suppress(KafkaError, OSError):
                await admin.close()
