"""The operator's settings: one frozen object, made from the command line, read everywhere.

Defaults live here and nowhere else; `__main__` offers each as an option.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    namespaces: tuple[str, ...] = ()
    """Watch only these namespaces; all namespaces when empty."""
    metrics_port: int | None = 9090
    """Port of /metrics; None serves no metrics."""
    metrics_address: str = "0.0.0.0"
    liveness: str | None = "http://0.0.0.0:8081/healthz"
    """kopf's liveness endpoint URL; None disables it."""
    resync_seconds: float = 300.0
    """Reconcile every ScalingDemo this often, to repair drift no event announced (0: never)."""
    retry_seconds: float = 10.0
    """First delay of the retry a reconcile asks for; it doubles per failed attempt..."""
    max_retry_seconds: float = 300.0
    """...up to this, so a broker that is down for long is not hammered."""
    concurrent_reconciles: int = 16
    """Demos reconciled at a time, operator-wide: new demos, child events, retries and the
    resync alike (controller-runtime's MaxConcurrentReconciles). A reconcile reads memory and
    sends its few writes together, so a handful keep the request threads busy; more only
    spread the API server's time over more demos, each finishing later."""
    coalesce_seconds: float = 0.2
    """A child event waits this long, so the burst of updates of a rollout is one reconcile (a
    reconcile reads memory; only a status that changed is written)."""
    scaling_status_seconds: float = 3.0
    """Least time between two writes of one demo's status.scaling: an HPA reports new values
    every sync while it scales, and the status need not follow each one."""
    topic_delete_attempts: int = 5
    """Attempts to delete the topics (deletionPolicy Delete) before the demo is let go; with the
    retry backoff (10, 20, 40, 80 s) the default is about two and a half minutes."""
    watch_server_seconds: int = 270
    """How long the API server keeps one watch open before kopf reopens it (whole seconds: the
    API server parses timeoutSeconds as an integer)."""
    watch_client_seconds: float = 300.0
    """How long kopf waits on one watch at most, should the server not close it."""
    request_seconds: float = 30.0
    """Bound of every single API request (the operator's own and kopf's)."""
    connect_seconds: float = 10.0
    """Bound of connecting to the API server."""
    verbose: bool = False

    def retry_delay(self, attempt: int) -> float:
        """Capped exponential backoff: attempt 0 waits retry_seconds."""
        return float(min(self.retry_seconds * 2**attempt, self.max_retry_seconds))
