"""The operator's own Prometheus metrics, served on /metrics by handlers' startup."""

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "scalingdemo_operator_reconciles_total",
    "Reconciles of a ScalingDemo by result (applied, invalid, error).",
    ["result"],
)
RECONCILE_DURATION = Histogram(
    "scalingdemo_operator_reconcile_duration_seconds",
    "Wall time of one reconcile, API calls included.",
)
API_REQUESTS = Counter(
    "scalingdemo_operator_api_requests_total",
    "Requests the operator's reconcile sent to the Kubernetes API, by verb and kind.",
    ["verb", "kind"],
)
ERRORS = Counter(
    "scalingdemo_operator_errors_total",
    "Failed Kubernetes API requests by child kind and HTTP status (0: no response).",
    ["kind", "status"],
)
CACHE_COMPLETE = Gauge(
    "scalingdemo_operator_cache_complete",
    "1 once every watched kind has been listed into memory (reconciles wait until then).",
)
