"""ScalingDemo workload: the HTTP + Kafka service that every ScalingDemo runs and scales."""
