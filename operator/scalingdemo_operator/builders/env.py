"""The workload's environment-variable contract, applied to a spec.

The only builder module that knows variable names; they come from scalingdemo_workload.contract
so the operator and the workload cannot disagree. Credentials are mounted from Secrets as files
(the workload reads the *_FILE variables), never copied into the pod spec.
"""

from __future__ import annotations

from typing import Any

from scalingdemo_workload.contract import Defaults, Env, Role

from ..api import Owner
from ..spec import ScalingDemoSpec

PORT = Defaults.PORT
PORT_NAME = "http"
"""Name of the container and Service port: probes, Services and ServiceMonitors refer to it."""
SASL_DIR = "/var/run/secrets/scalingdemo/kafka-sasl"
CA_DIR = "/var/run/secrets/scalingdemo/kafka-ca"


def role(spec: ScalingDemoSpec, component: str) -> str:
    """The API runs the combined role when there is no worker to process its records."""
    if component == "api":
        return Role.API if spec.worker.enabled else Role.ALL
    return Role.WORKER


def _kafka_names(spec: ScalingDemoSpec, owner: Owner) -> dict[str, str]:
    """The topic and group names by the workload variable that carries each."""
    names = spec.kafka_names(owner)
    return {
        Env.MESSAGES_TOPIC: names.topics["messages"],
        Env.TASKS_TOPIC: names.topics["tasks"],
        Env.MESSAGES_GROUP: names.groups["messages"],
        Env.TASKS_GROUP: names.groups["tasks"],
    }


def _plain(name: str, value: object) -> dict[str, Any]:
    return {"name": name, "value": str(value)}


def environment(spec: ScalingDemoSpec, owner: Owner, component: str) -> list[dict[str, Any]]:
    """Container env: the contract variables first, then the user's extras in their order."""
    auth = spec.kafka.auth
    env = [
        _plain(Env.ROLE, role(spec, component)),
        _plain(Env.PORT, PORT),
        _plain(Env.SERVICE_NAME, owner.child_name(component)),
        {"name": Env.POD_NAME, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        _plain(Env.LOG_LEVEL, spec.log_level),
        _plain(Env.BOOTSTRAP_SERVERS, spec.kafka.bootstrap_servers),
        *(_plain(name, value) for name, value in _kafka_names(spec, owner).items()),
        _plain(Env.OFFSET_RESET, spec.kafka.offset_reset),
        _plain(Env.SECURITY_PROTOCOL, auth.security_protocol if auth else "PLAINTEXT"),
    ]
    if component == "worker" or role(spec, component) == Role.ALL:
        env.append(_plain(Env.TASK_CONCURRENCY, spec.worker.concurrency))
    if auth and auth.sasl:
        env += [
            _plain(Env.SASL_MECHANISM, auth.sasl.mechanism),
            _plain(Env.SASL_USERNAME_FILE, f"{SASL_DIR}/username"),
            _plain(Env.SASL_PASSWORD_FILE, f"{SASL_DIR}/password"),
        ]
    if auth and auth.ca_reference:
        env.append(_plain(Env.TLS_CA_FILE, f"{CA_DIR}/ca.crt"))
    user = spec.component(component).env
    return env + [_plain(variable.name, variable.value) for variable in user]


def secret_volumes(spec: ScalingDemoSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Volumes and mounts for the Kafka credentials named in spec.kafka.auth."""
    auth = spec.kafka.auth
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if auth and auth.sasl:
        items = [
            {"key": auth.sasl.username_key, "path": "username"},
            {"key": auth.sasl.password_key, "path": "password"},
        ]
        volumes.append(
            {"name": "kafka-sasl", "secret": {"secretName": auth.sasl.secret_name, "items": items}}
        )
        mounts.append({"name": "kafka-sasl", "mountPath": SASL_DIR, "readOnly": True})
    if auth and auth.ca_reference:
        secret, key = auth.ca_reference
        items = [{"key": key, "path": "ca.crt"}]
        volumes.append({"name": "kafka-ca", "secret": {"secretName": secret, "items": items}})
        mounts.append({"name": "kafka-ca", "mountPath": CA_DIR, "readOnly": True})
    return volumes, mounts
