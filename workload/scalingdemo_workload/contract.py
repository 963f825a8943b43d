"""Names shared by the workload and the operator.

The operator builds Deployments, ScaledObjects and dashboards that must agree with the workload on
environment variable and metric names. Both sides import them from here so a rename is one edit
and cannot drift. This module must stay free of third-party imports: the operator imports it
without pulling in aiohttp or aiokafka.
"""

from typing import Final

ENV_PREFIX: Final = "SCALINGDEMO_"


class Env:
    """Environment variables the workload reads (the operator sets them on its Deployments)."""

    ROLE: Final = "SCALINGDEMO_ROLE"
    HOST: Final = "SCALINGDEMO_HOST"
    PORT: Final = "SCALINGDEMO_PORT"
    SERVICE_NAME: Final = "SCALINGDEMO_SERVICE_NAME"
    POD_NAME: Final = "SCALINGDEMO_POD_NAME"
    LOG_LEVEL: Final = "SCALINGDEMO_LOG_LEVEL"

    BOOTSTRAP_SERVERS: Final = "SCALINGDEMO_KAFKA_BOOTSTRAP_SERVERS"
    MESSAGES_TOPIC: Final = "SCALINGDEMO_MESSAGES_TOPIC"
    TASKS_TOPIC: Final = "SCALINGDEMO_TASKS_TOPIC"
    MESSAGES_GROUP: Final = "SCALINGDEMO_MESSAGES_GROUP"
    TASKS_GROUP: Final = "SCALINGDEMO_TASKS_GROUP"
    OFFSET_RESET: Final = "SCALINGDEMO_OFFSET_RESET"

    TASK_CONCURRENCY: Final = "SCALINGDEMO_TASK_CONCURRENCY"
    TASK_UNIT_MS: Final = "SCALINGDEMO_TASK_UNIT_MS"
    MAX_BATCH: Final = "SCALINGDEMO_MAX_BATCH"
    MAX_BODY_BYTES: Final = "SCALINGDEMO_MAX_BODY_BYTES"
    PRODUCE_TIMEOUT_SECONDS: Final = "SCALINGDEMO_PRODUCE_TIMEOUT_SECONDS"
    SHUTDOWN_GRACE_SECONDS: Final = "SCALINGDEMO_SHUTDOWN_GRACE_SECONDS"
    LAG_INTERVAL_SECONDS: Final = "SCALINGDEMO_LAG_INTERVAL_SECONDS"
    PROBE_INTERVAL_SECONDS: Final = "SCALINGDEMO_PROBE_INTERVAL_SECONDS"
    BODY_TIMEOUT_SECONDS: Final = "SCALINGDEMO_BODY_TIMEOUT_SECONDS"
    IDLE_TIMEOUT_SECONDS: Final = "SCALINGDEMO_IDLE_TIMEOUT_SECONDS"

    SECURITY_PROTOCOL: Final = "SCALINGDEMO_KAFKA_SECURITY_PROTOCOL"
    SASL_MECHANISM: Final = "SCALINGDEMO_KAFKA_SASL_MECHANISM"
    SASL_USERNAME: Final = "SCALINGDEMO_KAFKA_SASL_USERNAME"
    SASL_USERNAME_FILE: Final = "SCALINGDEMO_KAFKA_SASL_USERNAME_FILE"
    SASL_PASSWORD: Final = "SCALINGDEMO_KAFKA_SASL_PASSWORD"
    SASL_PASSWORD_FILE: Final = "SCALINGDEMO_KAFKA_SASL_PASSWORD_FILE"
    TLS_CA_FILE: Final = "SCALINGDEMO_KAFKA_TLS_CA_FILE"
    TLS_CERT_FILE: Final = "SCALINGDEMO_KAFKA_TLS_CERT_FILE"
    TLS_KEY_FILE: Final = "SCALINGDEMO_KAFKA_TLS_KEY_FILE"


class Role:
    """Values of Env.ROLE: which halves of the workload a process runs."""

    API: Final = "api"
    WORKER: Final = "worker"
    ALL: Final = "all"
    CHOICES: Final = (API, WORKER, ALL)


class Defaults:
    """Defaults the operator needs to know to generate matching KEDA triggers."""

    PORT: Final = 8080
    MESSAGES_TOPIC: Final = "app-messages"
    TASKS_TOPIC: Final = "app-tasks"
    MESSAGES_GROUP: Final = "messages-consumer"
    TASKS_GROUP: Final = "tasks-consumer"
    OFFSET_RESET: Final = "earliest"


class Paths:
    """HTTP paths the operator wires into probes and scrape configs."""

    LIVENESS: Final = "/healthz"
    READINESS: Final = "/readyz"
    METRICS: Final = "/metrics"


class Metric:
    """Prometheus metric names as they appear in a scrape (counters include `_total`)."""

    HTTP_REQUESTS: Final = "scalingdemo_http_requests_total"
    HTTP_REQUEST_DURATION: Final = "scalingdemo_http_request_duration_seconds"
    HTTP_CLIENT_DISCONNECTS: Final = "scalingdemo_http_client_disconnects_total"
    CPU_UTILIZATION: Final = "scalingdemo_process_cpu_utilization_ratio"
    MEMORY_RSS: Final = "scalingdemo_process_resident_memory_bytes"
    RECORDS_PRODUCED: Final = "scalingdemo_records_produced_total"
    RECORDS_CONSUMED: Final = "scalingdemo_records_consumed_total"
    RECORDS_PROCESSED: Final = "scalingdemo_records_processed_total"
    RECORDS_FAILED: Final = "scalingdemo_records_failed_total"
    PRODUCER_ERRORS: Final = "scalingdemo_producer_errors_total"
    CONSUMER_LAG: Final = "scalingdemo_consumer_lag_records"
    CONSUMER_REBALANCES: Final = "scalingdemo_consumer_rebalances_total"
    CONSUMER_ASSIGNED_PARTITIONS: Final = "scalingdemo_consumer_assigned_partitions"
    TASKS_IN_PROGRESS: Final = "scalingdemo_tasks_in_progress"
    TASK_DURATION: Final = "scalingdemo_task_duration_seconds"
    KAFKA_READY: Final = "scalingdemo_kafka_ready"


SEED_METRIC_QUERIES: Final[dict[str, str]] = {
    "kafka_queue_depth": f"max by (topic) ({Metric.CONSUMER_LAG})",
    "app_processing_tasks": f"sum({Metric.TASKS_IN_PROGRESS})",
    "app_cpu_utilization": f"100 * {Metric.CPU_UTILIZATION}",
    "app_memory_utilization_bytes": Metric.MEMORY_RSS,
    "kafka_messages_produced_total": (
        f'sum({Metric.RECORDS_PRODUCED}{{topic="{Defaults.MESSAGES_TOPIC}"}})'
    ),
    "kafka_tasks_produced_total": (
        f'sum({Metric.RECORDS_PRODUCED}{{topic="{Defaults.TASKS_TOPIC}"}})'
    ),
}
"""PromQL that answers what each of the seed's metric names answered, for migrating queries."""
