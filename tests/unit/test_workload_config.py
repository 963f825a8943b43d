"""Configuration: defaults, validation naming the variable, secrets from files, /info view."""

import pytest
from scalingdemo_workload.config import ConfigError, describe_settings, load_settings
from scalingdemo_workload.contract import Defaults, Env, Role

pytestmark = pytest.mark.unit


def test_defaults_match_the_contract():
    settings = load_settings({})
    assert settings.role == Role.ALL
    assert settings.port == Defaults.PORT
    assert (settings.tasks_topic, settings.tasks_group) == (
        Defaults.TASKS_TOPIC,
        Defaults.TASKS_GROUP,
    )
    assert settings.runs_api
    assert settings.runs_worker


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        (Env.PORT, "http", Env.PORT),
        (Env.PORT, "70000", Env.PORT),
        (Env.ROLE, "both", Env.ROLE),
        (Env.TASK_CONCURRENCY, "0", Env.TASK_CONCURRENCY),
        (Env.PRODUCE_TIMEOUT_SECONDS, "soon", Env.PRODUCE_TIMEOUT_SECONDS),
        (Env.BOOTSTRAP_SERVERS, "kafka", Env.BOOTSTRAP_SERVERS),
        (Env.BOOTSTRAP_SERVERS, " , ", Env.BOOTSTRAP_SERVERS),
        (Env.OFFSET_RESET, "earliest-ish", Env.OFFSET_RESET),
        (Env.MESSAGES_TOPIC, "  ", Env.MESSAGES_TOPIC),
        (Env.TLS_CA_FILE, "/nonexistent/ca.pem", Env.TLS_CA_FILE),
        (Env.SECURITY_PROTOCOL, "SASL_SSL", Env.SASL_MECHANISM),
    ],
)
def test_invalid_values_name_the_variable(env, value, named):
    with pytest.raises(ConfigError) as caught:
        load_settings({env: value})
    assert str(caught.value).startswith(f"{named}: ")


def test_sasl_requires_credentials_and_reads_them_from_files(tmp_path):
    env = {Env.SECURITY_PROTOCOL: "SASL_PLAINTEXT", Env.SASL_MECHANISM: "SCRAM-SHA-512"}
    with pytest.raises(ConfigError, match=Env.SASL_USERNAME):
        load_settings(env)
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    settings = load_settings(
        {**env, Env.SASL_USERNAME: "demo", Env.SASL_PASSWORD_FILE: str(password)}
    )
    assert settings.auth.sasl_password == "s3cret"
    view = settings.public_view()
    assert view[Env.SASL_USERNAME] == "demo"
    assert Env.SASL_PASSWORD not in view
    assert "s3cret" not in repr(view)


def test_unreadable_secret_file_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match=Env.SASL_PASSWORD_FILE):
        load_settings({Env.SASL_PASSWORD_FILE: str(tmp_path / "missing")})


def test_client_certificate_needs_key_and_tls(tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match=Env.TLS_KEY_FILE):
        load_settings({Env.TLS_CERT_FILE: str(cert)})
    with pytest.raises(ConfigError, match=Env.SECURITY_PROTOCOL):
        load_settings({Env.TLS_CERT_FILE: str(cert), Env.TLS_KEY_FILE: str(cert)})


def test_help_lists_every_variable_read_directly():
    text = describe_settings()
    file_variants = {Env.SASL_USERNAME_FILE, Env.SASL_PASSWORD_FILE}
    for name, value in vars(Env).items():
        if name.isupper() and value not in file_variants:
            assert value in text
