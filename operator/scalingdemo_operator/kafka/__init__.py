"""Kafka topics managed through the admin API: model, pure plan, admin I/O, topic reconcile.

Only `admin` imports aiokafka; the rest is testable without a broker.
"""
