"""Kubernetes resource quantities ("250m", "1Gi") as numbers, for comparisons and PromQL.

The one module outside `kube` that imports the Kubernetes client package, by an explicit
exception in the import contracts: `kubernetes.utils.parse_quantity` is pure text-to-Decimal
parsing (no I/O), and the API server's own rules are better taken from it than rewritten.
"""

from __future__ import annotations

from decimal import Decimal

from kubernetes.utils import parse_quantity


def amount(text: str | int | float) -> Decimal:
    """The quantity in base units (cores, bytes); ValueError names a text that is not one."""
    try:
        found: Decimal = parse_quantity(text)
    except ValueError:
        raise ValueError(f"not a resource quantity: {text!r}") from None
    return found
