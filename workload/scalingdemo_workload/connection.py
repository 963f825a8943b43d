"""Connection options shared by every Kafka client the workload creates.

Producer, consumers and the admin client must authenticate the same way; building their keyword
arguments in one place keeps a SASL/TLS change from reaching only some of them.
"""

from typing import Any

from aiokafka.helpers import create_ssl_context

from .config import Settings


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
    auth = settings.auth
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": f"{settings.service_name}-{settings.pod_name}",
        "security_protocol": auth.security_protocol,
    }
    if auth.uses_tls:
        options["ssl_context"] = create_ssl_context(
            cafile=auth.tls_ca_file,
            certfile=auth.tls_cert_file,
            keyfile=auth.tls_key_file,
        )
    if auth.uses_sasl:
        options["sasl_mechanism"] = auth.sasl_mechanism
        options["sasl_plain_username"] = auth.sasl_username
        options["sasl_plain_password"] = auth.sasl_password
    return options
