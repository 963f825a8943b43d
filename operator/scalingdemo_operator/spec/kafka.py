"""The Kafka section: brokers, topics, consumer groups, and the one home of the auth facts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import SpecModel

TOPIC_ROLES = ("messages", "tasks")
"""The demo's two topics: records the API produces, and tasks the worker processes."""
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
"""The SASL mechanisms the workload, the admin client and KEDA all support."""
SecretReference = tuple[str, str]
"""(Secret name, key) of a credential."""
MAX_PORT = 65535


class TopicSpec(SpecModel):
    name: str | None = Field(None, min_length=1, max_length=249, pattern=r"^[a-zA-Z0-9._-]+$")
    partitions: int = Field(6, ge=1, le=1000)
    replication_factor: int = Field(1, ge=1, le=10)
    config: dict[str, str] = Field(default_factory=dict, max_length=32)


class Topics(SpecModel):
    messages: TopicSpec = TopicSpec()
    tasks: TopicSpec = TopicSpec()


class ConsumerGroups(SpecModel):
    messages: str | None = Field(None, min_length=1, max_length=255)
    tasks: str | None = Field(None, min_length=1, max_length=255)


class SaslAuth(SpecModel):
    mechanism: SaslMechanism
    secret_name: str = Field(min_length=1, max_length=253)
    username_key: str = Field("username", min_length=1)
    password_key: str = Field("password", min_length=1)

    @property
    def username_reference(self) -> SecretReference:
        return (self.secret_name, self.username_key)

    @property
    def password_reference(self) -> SecretReference:
        return (self.secret_name, self.password_key)


class TlsAuth(SpecModel):
    enabled: bool = True
    ca_secret_name: str | None = Field(None, min_length=1, max_length=253)
    ca_key: str = Field("ca.crt", min_length=1)


class KafkaAuth(SpecModel):
    """The one home of the Kafka auth facts every consumer of them (workload env and mounts,
    KEDA's TriggerAuthentication, the admin connection) derives its own shape from."""

    sasl: SaslAuth | None = None
    tls: TlsAuth | None = None

    @property
    def tls_enabled(self) -> bool:
        return self.tls is not None and self.tls.enabled

    @property
    def ca_reference(self) -> SecretReference | None:
        """Where the CA that verifies the brokers is, when TLS is on and names one."""
        if self.tls is None or not self.tls.enabled or self.tls.ca_secret_name is None:
            return None
        return (self.tls.ca_secret_name, self.tls.ca_key)

    @property
    def security_protocol(self) -> str:
        """Kafka's security.protocol implied by which sections are present."""
        if self.sasl is not None:
            return "SASL_SSL" if self.tls_enabled else "SASL_PLAINTEXT"
        return "SSL" if self.tls_enabled else "PLAINTEXT"

    def secret_references(self) -> list[SecretReference]:
        """Every credential in a fixed order: SASL user name, SASL password, then the TLS CA
        (each only when the spec names it)."""
        found = []
        if self.sasl is not None:
            found += [self.sasl.username_reference, self.sasl.password_reference]
        if self.ca_reference is not None:
            found.append(self.ca_reference)
        return found


@dataclass(frozen=True)
class KafkaNames:
    """Topic and consumer group names by topic role (messages, tasks)."""

    topics: dict[str, str]
    groups: dict[str, str]


class Kafka(SpecModel):
    bootstrap_servers: str = Field(
        max_length=1024, pattern=r"^[^\s,:]+:[0-9]{1,5}(,[^\s,:]+:[0-9]{1,5})*$"
    )
    topic_management: Literal["Operator", "Strimzi", "None"] = "Operator"
    strimzi_cluster: str | None = Field(None, min_length=1, max_length=63)
    deletion_policy: Literal["Retain", "Delete"] = "Retain"
    offset_reset: Literal["earliest", "latest"] = "earliest"
    topics: Topics = Topics()
    consumer_groups: ConsumerGroups = ConsumerGroups()
    auth: KafkaAuth | None = None

    def secret_references(self) -> list[SecretReference]:
        return self.auth.secret_references() if self.auth is not None else []

    @field_validator("bootstrap_servers")
    @classmethod
    def _ports_in_range(cls, servers: str) -> str:
        """The pattern allows five digits; a port above 65535 would fail every Kafka client
        (the topic step, KEDA, the workload) at connect time instead of here."""
        ports = [int(server.rpartition(":")[2]) for server in servers.split(",")]
        if not all(1 <= port <= MAX_PORT for port in ports):
            raise ValueError(f"every port must be between 1 and {MAX_PORT}")
        return servers

    @model_validator(mode="after")
    def _strimzi_needs_cluster(self) -> Kafka:
        if self.topic_management == "Strimzi" and self.strimzi_cluster is None:
            raise ValueError("strimziCluster is required when topicManagement is Strimzi")
        return self
