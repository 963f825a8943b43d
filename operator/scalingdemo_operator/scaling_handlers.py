"""kopf wiring of status.scaling: the watch on the HPAs KEDA owns and on the ScaledObjects.

Both are watches, so following a scale-up costs no request per change: kopf serves the
ScaledObjects from the same watch that triggers reconciles (one stream per resource), and the
HPAs from one more, selected by KEDA's label. Every event, the initial listing included, goes to
`ScalingStatus`, which keeps the latest of each and decides whether anything is written.
"""

from __future__ import annotations

from typing import Any

import kopf

from .api import CHILDREN, MANAGED
from .handlers import Operator
from .scaling_status import SCALED_OBJECT_LABEL

SCALED_OBJECT = CHILDREN["ScaledObject"]


@kopf.on.startup()
async def watch_kedas_hpas_only(settings: kopf.OperatorSettings, **_: Any) -> None:
    """The API server filters the HPA watch: the HPAs of anyone but KEDA never reach us."""
    settings.watching.label_selectors["autoscaling", "horizontalpodautoscalers"] = (
        SCALED_OBJECT_LABEL
    )


@kopf.on.cleanup()
async def stop_scaling_status(memo: Operator, **_: Any) -> None:
    memo.scaling.stop()


@kopf.on.event(
    "autoscaling", "v2", "horizontalpodautoscalers", labels={SCALED_OBJECT_LABEL: kopf.PRESENT}
)
async def hpa_event(type: str | None, body: kopf.Body, memo: Operator, **_: Any) -> None:
    memo.scaling.hpa_changed(body, deleted=type == "DELETED")


@kopf.on.event(SCALED_OBJECT.group, SCALED_OBJECT.version, SCALED_OBJECT.plural, labels=MANAGED)
async def scaled_object_event(type: str | None, body: kopf.Body, memo: Operator, **_: Any) -> None:
    memo.scaling.scaled_object_changed(body, deleted=type == "DELETED")
