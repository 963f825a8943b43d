"""Configuration from environment variables.

Each setting is declared once, as a dataclass field carrying its variable name, parser and help
text, so parsing, `--help` and the `/info` view cannot disagree. Invalid values stop the start
with a message naming the variable: a pod that crash-loops with a clear reason beats one that runs
with a silently substituted default.
"""

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .contract import Defaults, Env, Role


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


Parser = Callable[[str], Any]


def number_in(kind: type[int] | type[float], low: float, high: float) -> Parser:
    """A parser for an int or float within [low, high]; ValueError says what was wrong."""

    def parse(raw: str) -> Any:
        try:
            value = kind(raw)
        except ValueError:
            kind_name = "an integer" if kind is int else "a number"
            raise ValueError(f"must be {kind_name}, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}, got {value:g}")
        return value

    return parse


def _choice(*choices: str) -> Parser:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {raw!r}")
        return raw

    return parse


def _name(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _bootstrap(raw: str) -> str:
    servers = [part.strip() for part in raw.split(",") if part.strip()]
    if not servers:
        raise ValueError("must list at least one host:port")
    for server in servers:
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"entry {server!r} is not host:port")
    return ",".join(servers)


def _existing_file(raw: str) -> str:
    if not Path(raw).is_file():
        raise ValueError(f"file {raw!r} does not exist")
    return raw


def _setting(env: str, parse: Parser, default: Any, help_text: str, *, secret: bool = False) -> Any:
    """Declare a field with the metadata that ties it to its environment variable."""
    metadata = {"env": env, "parse": parse, "help": help_text, "secret": secret}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class KafkaAuth:
    """How to authenticate to Kafka; every secret can come from a mounted file."""

    security_protocol: str = _setting(
        Env.SECURITY_PROTOCOL,
        _choice("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
        "PLAINTEXT",
        "Kafka security protocol.",
    )
    sasl_mechanism: str | None = _setting(
        Env.SASL_MECHANISM,
        _choice("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
        None,
        "SASL mechanism; required with SASL_PLAINTEXT and SASL_SSL.",
    )
    sasl_username: str | None = _setting(
        Env.SASL_USERNAME, _name, None, f"SASL user name (or a file in {Env.SASL_USERNAME_FILE})."
    )
    sasl_password: str | None = _setting(
        Env.SASL_PASSWORD,
        _name,
        None,
        f"SASL password (or a file in {Env.SASL_PASSWORD_FILE}); never shown in /info.",
        secret=True,
    )
    tls_ca_file: str | None = _setting(
        Env.TLS_CA_FILE, _existing_file, None, "PEM CA bundle that signs the brokers' certificates."
    )
    tls_cert_file: str | None = _setting(
        Env.TLS_CERT_FILE, _existing_file, None, "PEM client certificate for mutual TLS."
    )
    tls_key_file: str | None = _setting(
        Env.TLS_KEY_FILE, _existing_file, None, "PEM private key of the client certificate."
    )

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol.endswith("SSL")


@dataclass(frozen=True)
class Settings:
    """Everything the workload reads from its environment."""

    role: str = _setting(
        Env.ROLE,
        _choice(*Role.CHOICES),
        Role.ALL,
        "api (HTTP and produce), worker (consume) or all (both).",
    )
    host: str = _setting(Env.HOST, _name, "0.0.0.0", "Address the HTTP server binds.")
    port: int = _setting(Env.PORT, number_in(int, 1, 65535), Defaults.PORT, "HTTP port.")
    service_name: str = _setting(
        Env.SERVICE_NAME, _name, "scalingdemo-workload", "Name reported by /info."
    )
    pod_name: str = _setting(
        Env.POD_NAME, _name, socket.gethostname(), "Pod name reported by /info (downward API)."
    )
    log_level: str = _setting(
        Env.LOG_LEVEL,
        _choice("DEBUG", "INFO", "WARNING", "ERROR"),
        "INFO",
        "Log level; DEBUG logs every processed task id.",
    )
    bootstrap_servers: str = _setting(
        Env.BOOTSTRAP_SERVERS, _bootstrap, "localhost:9092", "Comma-separated Kafka host:port list."
    )
    messages_topic: str = _setting(
        Env.MESSAGES_TOPIC, _name, Defaults.MESSAGES_TOPIC, "Topic POST /messages produces to."
    )
    tasks_topic: str = _setting(
        Env.TASKS_TOPIC, _name, Defaults.TASKS_TOPIC, "Topic POST /tasks produces to."
    )
    messages_group: str = _setting(
        Env.MESSAGES_GROUP, _name, Defaults.MESSAGES_GROUP, "Consumer group reading messages."
    )
    tasks_group: str = _setting(
        Env.TASKS_GROUP, _name, Defaults.TASKS_GROUP, "Consumer group reading tasks."
    )
    offset_reset: str = _setting(
        Env.OFFSET_RESET,
        _choice("earliest", "latest"),
        Defaults.OFFSET_RESET,
        "Where a group without committed offsets starts (match KEDA's offsetResetPolicy).",
    )
    task_concurrency: int = _setting(
        Env.TASK_CONCURRENCY,
        number_in(int, 1, 256),
        2,
        "Records each consumer processes at once; also the number of CPU processes for tasks.",
    )
    task_unit_ms: int = _setting(
        Env.TASK_UNIT_MS,
        number_in(int, 0, 60_000),
        100,
        "CPU milliseconds one unit of complexity burns.",
    )
    max_batch: int = _setting(
        Env.MAX_BATCH, number_in(int, 1, 100_000), 1000, "Most records one request may carry."
    )
    max_body_bytes: int = _setting(
        Env.MAX_BODY_BYTES, number_in(int, 1024, 1 << 30), 4 << 20, "Largest request body accepted."
    )
    produce_timeout_seconds: float = _setting(
        Env.PRODUCE_TIMEOUT_SECONDS,
        number_in(float, 0.1, 300.0),
        1.0,
        "How long a request waits for Kafka before answering 503.",
    )
    shutdown_grace_seconds: float = _setting(
        Env.SHUTDOWN_GRACE_SECONDS,
        number_in(float, 0.0, 3600.0),
        20.0,
        "How long SIGTERM waits for in-flight records (keep below terminationGracePeriodSeconds).",
    )
    lag_interval_seconds: float = _setting(
        Env.LAG_INTERVAL_SECONDS,
        number_in(float, 0.1, 3600.0),
        5.0,
        "How often consumer lag is measured.",
    )
    probe_interval_seconds: float = _setting(
        Env.PROBE_INTERVAL_SECONDS,
        number_in(float, 0.1, 3600.0),
        2.0,
        "How often Kafka reachability is checked for /readyz.",
    )
    body_timeout_seconds: float = _setting(
        Env.BODY_TIMEOUT_SECONDS,
        number_in(float, 0.1, 3600.0),
        10.0,
        "Longest time to receive a request body before answering 408.",
    )
    idle_timeout_seconds: float = _setting(
        Env.IDLE_TIMEOUT_SECONDS,
        number_in(float, 0.1, 3600.0),
        30.0,
        "How long a connection may sit idle, or take to send its request headers, before it "
        "is closed.",
    )
    auth: KafkaAuth = field(default_factory=KafkaAuth)

    @property
    def runs_api(self) -> bool:
        return self.role in (Role.API, Role.ALL)

    @property
    def runs_worker(self) -> bool:
        return self.role in (Role.WORKER, Role.ALL)

    def public_view(self) -> dict[str, Any]:
        """The effective configuration keyed by variable name, secrets left out."""
        return {name: value for name, value, secret in _walk(self) if not secret}


def _walk(obj: Any) -> list[tuple[str, Any, bool]]:
    out: list[tuple[str, Any, bool]] = []
    for item in fields(obj):
        value = getattr(obj, item.name)
        if "env" in item.metadata:
            out.append((item.metadata["env"], value, item.metadata["secret"]))
        else:
            out.extend(_walk(value))
    return out


def _read(cls: type, environ: Mapping[str, str]) -> Any:
    values: dict[str, Any] = {}
    for item in fields(cls):
        if "env" not in item.metadata:
            continue
        env = item.metadata["env"]
        raw = environ.get(env)
        file_env = f"{env}_FILE"
        if raw is None and environ.get(file_env):
            raw = _read_secret_file(file_env, environ[file_env])
        if raw is None or raw == "":
            continue
        try:
            values[item.name] = item.metadata["parse"](raw)
        except ValueError as err:
            raise ConfigError(f"{env}: {err}") from None
    return cls(**values)


def _read_secret_file(env: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ConfigError(f"{env}: cannot read {path!r}: {err.strerror}") from None


def _check_auth(auth: KafkaAuth) -> None:
    if auth.uses_sasl:
        for env, value in (
            (Env.SASL_MECHANISM, auth.sasl_mechanism),
            (Env.SASL_USERNAME, auth.sasl_username),
            (Env.SASL_PASSWORD, auth.sasl_password),
        ):
            if value is None:
                raise ConfigError(f"{env}: required when the security protocol is SASL")
    if (auth.tls_cert_file is None) != (auth.tls_key_file is None):
        raise ConfigError(f"{Env.TLS_KEY_FILE}: set together with {Env.TLS_CERT_FILE}")
    if auth.tls_cert_file and not auth.uses_tls:
        raise ConfigError(f"{Env.SECURITY_PROTOCOL}: a client certificate needs SSL or SASL_SSL")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse settings from `environ` (default: the process environment)."""
    env = os.environ if environ is None else environ
    auth = _read(KafkaAuth, env)
    _check_auth(auth)
    settings: Settings = replace(_read(Settings, env), auth=auth)
    return settings


def describe_settings() -> str:
    """Help text listing every variable with its default, for `--help`."""
    lines = []
    for cls in (Settings, KafkaAuth):
        for item in fields(cls):
            if "env" not in item.metadata:
                continue
            default = "" if item.default is None else f" [default: {item.default}]"
            lines.append(f"  {item.metadata['env']}\n      {item.metadata['help']}{default}")
    return "\n".join(lines)
