"""Kafka client options: every client authenticates the way the configuration says."""

import ssl

import pytest
from scalingdemo_workload.config import load_settings
from scalingdemo_workload.connection import client_options
from scalingdemo_workload.contract import Env

pytestmark = pytest.mark.unit


def test_plaintext_has_no_credentials_or_tls():
    options = client_options(load_settings({Env.BOOTSTRAP_SERVERS: "a:1,b:2"}))
    assert options["bootstrap_servers"] == "a:1,b:2"
    assert options["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in options
    assert "sasl_plain_password" not in options


def test_sasl_ssl_passes_credentials_and_a_tls_context():
    options = client_options(
        load_settings(
            {
                Env.SECURITY_PROTOCOL: "SASL_SSL",
                Env.SASL_MECHANISM: "SCRAM-SHA-256",
                Env.SASL_USERNAME: "demo",
                Env.SASL_PASSWORD: "s3cret",
            }
        )
    )
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("demo", "s3cret")
    assert isinstance(options["ssl_context"], ssl.SSLContext)
