"""Which fields of a desired manifest the live object does not match.

Deciding this locally is what keeps the steady state free of write requests: an apply is sent
only when a desired field differs from the live object, or when the applied-hash annotation
shows that the desired manifest itself changed (which also catches fields the spec dropped, as a
live object keeps them). The API server adds defaults and normalises quantities, so the
comparison treats the desired manifest as a subset and compares quantities by value.
"""

from __future__ import annotations

from typing import Any

from .api import APPLIED_HASH_ANNOTATION
from .quantities import amount


def _same_scalar(desired: Any, live: Any) -> bool:
    if desired == live:
        return True
    if isinstance(desired, str) and isinstance(live, str | int):
        try:
            return amount(desired) == amount(live)
        except ValueError:
            return False
    return False


def _walk(desired: Any, live: Any, path: str, found: list[str]) -> None:
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            found.append(path or ".")
            return
        for key, value in desired.items():
            _walk(value, live.get(key), f"{path}.{key}" if path else key, found)
    elif isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            found.append(path)
            return
        for index, (want, have) in enumerate(zip(desired, live, strict=True)):
            label = want.get("name", index) if isinstance(want, dict) else index
            _walk(want, have, f"{path}[{label}]", found)
    elif not _same_scalar(desired, live):
        found.append(path)


def differences(desired: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """Paths (spec.replicas, spec.template...env[NAME]) where live does not match desired."""
    found: list[str] = []
    _walk({**desired, "metadata": _comparable_metadata(desired)}, live, "", found)
    return found


def _comparable_metadata(desired: dict[str, Any]) -> dict[str, Any]:
    """Labels, ownerReferences and our annotations matter (KEDA acts on one: a paused-replicas
    annotation removed by hand is put back); the hash annotation is compared on its own."""
    metadata = desired["metadata"]
    found = {key: metadata[key] for key in ("labels", "ownerReferences") if key in metadata}
    annotations = {
        key: value
        for key, value in metadata.get("annotations", {}).items()
        if key != APPLIED_HASH_ANNOTATION
    }
    if annotations:
        found["annotations"] = annotations
    return found


def needs_apply(desired: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """Why an apply is needed: differing paths, or the hash when only dropped fields differ."""
    found = differences(desired, live)
    want = desired["metadata"].get("annotations", {}).get(APPLIED_HASH_ANNOTATION)
    have = live.get("metadata", {}).get("annotations", {}).get(APPLIED_HASH_ANNOTATION)
    if not found and want != have:
        found.append(f"metadata.annotations[{APPLIED_HASH_ANNOTATION}]")
    return found
