"""Prometheus scraping: a ServiceMonitor per component, and scrape annotations on the pods.

Two kinds of Prometheus setups exist side by side (DESIGN.md): the Prometheus Operator
(kube-prometheus-stack) discovers targets only through ServiceMonitors selected by label and
ignores annotations; other setups discover pods by their `prometheus.io/*` annotations. Both
point at the same port and path, taken from the workload contract. A ServiceMonitor gives every
series the `namespace`, `service` and `pod` labels that `promql.scope` matches on.
"""

from __future__ import annotations

from scalingdemo_workload.contract import Paths

from ..api import CHILDREN, Manifest, Owner
from ..spec import ScalingDemoSpec
from . import env
from .common import metadata, selector_labels, stamp

SERVICE_MONITOR_API_VERSION = CHILDREN["ServiceMonitor"].api_version()
SCRAPE_ANNOTATION_PREFIX = "prometheus.io"


def pod_annotations(spec: ScalingDemoSpec) -> dict[str, str]:
    """The annotations annotation-based scrape configs look for; none when the spec says no."""
    if not spec.monitoring.pod_annotations:
        return {}
    return {
        f"{SCRAPE_ANNOTATION_PREFIX}/scrape": "true",
        f"{SCRAPE_ANNOTATION_PREFIX}/port": str(env.PORT),
        f"{SCRAPE_ANNOTATION_PREFIX}/path": Paths.METRICS,
    }


def service_monitor(spec: ScalingDemoSpec, owner: Owner, name: str) -> Manifest:
    """Scrape the component's Service endpoints, found by the Service's own selector labels."""
    wanted = spec.monitoring.service_monitor
    return stamp(
        {
            "apiVersion": SERVICE_MONITOR_API_VERSION,
            "kind": "ServiceMonitor",
            "metadata": metadata(owner, name, owner.child_name(name), wanted.labels),
            "spec": {
                "selector": {"matchLabels": selector_labels(owner, name)},
                "namespaceSelector": {"matchNames": [owner.namespace]},
                "endpoints": [
                    {"port": env.PORT_NAME, "path": Paths.METRICS, "interval": wanted.interval}
                ],
            },
        }
    )
