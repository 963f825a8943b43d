"""Spec model: defaults, errors that name the field, cross-field checks the CRD cannot make."""

from __future__ import annotations

import pytest
from scalingdemo_operator.spec import KafkaAuth, SpecError, parse

pytestmark = pytest.mark.unit

MINIMAL = {"image": "registry.example/workload:1", "kafka": {"bootstrapServers": "kafka:9092"}}


def _with(**changes: object) -> dict:
    return {**MINIMAL, **changes}


def test_defaults_fill_a_minimal_spec() -> None:
    spec = parse(MINIMAL)
    assert spec.image_pull_policy == "IfNotPresent"
    assert spec.kafka.offset_reset == "earliest"
    assert spec.kafka.topics.tasks.partitions == 6
    assert (spec.api.replicas, spec.worker.replicas, spec.worker.concurrency) == (1, 1, 4)
    assert spec.api.resources.requests.cpu == "100m"
    assert spec.api.resources.limits.cpu is None
    assert not spec.worker.autoscaling.enabled
    assert list(spec.components()) == ["api", "worker"]


def test_integer_quantities_become_strings() -> None:
    spec = parse(_with(worker={"resources": {"requests": {"cpu": 2}}}))
    assert spec.worker.resources.requests.cpu == "2"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (_with(image=""), "spec.image"),
        (_with(imagePullPolicy="Sometimes"), "spec.imagePullPolicy"),
        (_with(kafka={"bootstrapServers": "no-port"}), "spec.kafka.bootstrapServers"),
        (_with(worker={"concurrency": 0}), "spec.worker.concurrency"),
        (_with(api={"replicas": 101}), "spec.api.replicas"),
        (_with(api={"env": [{"name": "1BAD"}]}), "spec.api.env[0].name"),
        (
            _with(api={"resources": {"requests": {"cpu": "lots"}}}),
            "spec.api.resources.requests.cpu",
        ),
        (_with(worker={"surprise": True}), "spec.worker.surprise"),
        ({"kafka": {"bootstrapServers": "kafka:9092"}}, "spec.image"),
    ],
)
def test_invalid_values_name_their_field(raw: dict, field: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse(raw)
    assert any(problem.startswith(f"{field}:") for problem in caught.value.problems), caught.value


def test_at_least_one_component_is_required() -> None:
    with pytest.raises(SpecError, match=r"spec\.api\.enabled: at least one"):
        parse(_with(api={"enabled": False}, worker={"enabled": False}))


def test_user_env_may_not_override_operator_managed_variables() -> None:
    raw = _with(
        worker={
            "env": [
                {"name": "SCALINGDEMO_TASK_UNIT_MS", "value": "5"},
                {"name": "SCALINGDEMO_TASK_CONCURRENCY", "value": "9"},
            ]
        }
    )
    with pytest.raises(SpecError) as caught:
        parse(raw)
    assert caught.value.problems == [
        "spec.worker.env[1].name: SCALINGDEMO_TASK_CONCURRENCY is set by the operator from the "
        "spec; change the corresponding spec field instead"
    ]


@pytest.mark.parametrize(
    ("auth", "protocol"),
    [
        ({}, "PLAINTEXT"),
        ({"tls": {}}, "SSL"),
        ({"tls": {"enabled": False}}, "PLAINTEXT"),
        ({"sasl": {"mechanism": "PLAIN", "secretName": "s"}}, "SASL_PLAINTEXT"),
        ({"sasl": {"mechanism": "SCRAM-SHA-512", "secretName": "s"}, "tls": {}}, "SASL_SSL"),
    ],
)
def test_security_protocol_follows_the_auth_sections(auth: dict, protocol: str) -> None:
    assert KafkaAuth.model_validate(auth).security_protocol == protocol


def _worker_autoscaling(triggers: list[dict], **autoscaling: object) -> dict:
    return _with(worker={"autoscaling": {"enabled": True, "triggers": triggers, **autoscaling}})


LAG = {"name": "lag", "kafkaLag": {}}
PRESET = {"name": "queue", "prometheus": {"preset": "queueDepth", "threshold": "5"}}


def test_autoscaling_defaults() -> None:
    autoscaling = parse(_worker_autoscaling([LAG])).worker.autoscaling
    assert (autoscaling.min_replicas, autoscaling.max_replicas) == (1, 10)
    (trigger,) = autoscaling.triggers
    assert trigger.kind == "kafka_lag"
    assert (trigger.kafka_lag.topic, trigger.kafka_lag.lag_threshold) == ("tasks", 10)
    vertical = parse(MINIMAL).worker.vertical_scaling
    assert (vertical.update_mode, vertical.controlled_resources) == ("Initial", ["cpu", "memory"])


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (_worker_autoscaling([LAG], minReplicas=5, maxReplicas=2), "worker.autoscaling", "minRep"),
        (_worker_autoscaling([]), "worker.autoscaling", "at least one trigger"),
        (_worker_autoscaling([LAG, LAG]), "worker.autoscaling", "unique"),
        (_worker_autoscaling([{"name": "1lag", "kafkaLag": {}}]), "triggers[0].name", "pattern"),
        (_worker_autoscaling([{"name": "both", "kafkaLag": {}, "cpu": {"value": 70}}]), "", "one"),
        (
            _worker_autoscaling([{"name": "q", "prometheus": {"threshold": "5"}}]),
            "triggers[0].prometheus",
            "query and preset",
        ),
        (
            _worker_autoscaling(
                [
                    {
                        "name": "k",
                        "kafkaLag": {"allowIdleConsumers": True, "limitToPartitionsWithLag": True},
                    }
                ]
            ),
            "triggers[0].kafkaLag",
            "exclusive",
        ),
        (
            _worker_autoscaling(
                [{"name": "q", "prometheus": {"preset": "queueDepth", "threshold": "5"}}]
            ),
            "triggers[0].prometheus",
            "spec.monitoring.prometheus.serverAddress",
        ),
        (
            _worker_autoscaling([{"name": "k", "kafkaLag": {"offsetResetPolicy": "latest"}}]),
            "triggers[0].kafkaLag.offsetResetPolicy",
            "spec.kafka.offsetReset",
        ),
        (
            _with(api={"autoscaling": {"enabled": True, "triggers": [LAG]}}),
            "spec.api.autoscaling.triggers[0].kafkaLag",
            "does not consume",
        ),
        (_with(worker={"verticalScaling": {"updateMode": "Auto"}}), "updateMode", "Off"),
        (
            _worker_autoscaling([{"name": "c", "cpu": {"value": 70}}], fallback={"replicas": 2}),
            "worker.autoscaling",
            "fallback needs",
        ),
        (
            _worker_autoscaling([{"name": "c", "cpu": {"value": 70}}], minReplicas=0),
            "worker.autoscaling",
            "minReplicas 0 needs",
        ),
        (
            _with(
                monitoring={"prometheus": {"serverAddress": "http://prometheus:9090"}},
                worker={"autoscaling": {"enabled": True, "minReplicas": 0, "triggers": [PRESET]}},
            ),
            "worker.autoscaling",
            "minReplicas 0 needs a kafkaLag trigger or a prometheus query",
        ),
        (
            _worker_autoscaling(
                [LAG], scalingModifiers={"formula": "lag + max(queue, 2)", "target": "5"}
            ),
            "worker.autoscaling",
            "scalingModifiers.formula names queue",
        ),
        (
            _with(
                worker={
                    "resources": {"requests": {"cpu": "0"}},
                    "autoscaling": {
                        "enabled": True,
                        "triggers": [{"name": "c", "cpu": {"value": 70}}],
                    },
                }
            ),
            "spec.worker.autoscaling.triggers[0].cpu",
            "spec.worker.resources.requests.cpu above 0",
        ),
        (
            _with(
                api={
                    "resources": {"requests": {"memory": None}},
                    "autoscaling": {
                        "enabled": True,
                        "triggers": [{"name": "m", "memory": {"value": 70}}],
                    },
                }
            ),
            "spec.api.autoscaling.triggers[0].memory",
            "spec.api.resources.requests.memory above 0",
        ),
        (
            _with(
                worker={
                    "verticalScaling": {
                        "minAllowed": {"cpu": "2", "memory": "64Mi"},
                        "maxAllowed": {"cpu": "1500m", "memory": "1Gi"},
                    }
                }
            ),
            "spec.worker.verticalScaling",
            "minAllowed.cpu (2) must not exceed maxAllowed.cpu (1500m)",
        ),
        (
            _with(kafka={"bootstrapServers": "kafka-0:9092,kafka-1:99999"}),
            "spec.kafka.bootstrapServers",
            "between 1 and 65535",
        ),
    ],
)
def test_invalid_autoscaling_is_refused_naming_the_field(raw: dict, field: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse(raw)
    assert any(field in problem and words in problem for problem in caught.value.problems), (
        caught.value
    )


def test_scale_from_zero_needs_a_trigger_that_sees_demand_without_the_pods() -> None:
    query = {"name": "q", "prometheus": {"query": "sum(up)", "threshold": "1"}}
    server = {"prometheus": {"serverAddress": "http://prometheus:9090"}}
    for triggers in ([LAG, PRESET], [query]):
        raw = _with(
            monitoring=server,
            worker={"autoscaling": {"enabled": True, "minReplicas": 0, "triggers": triggers}},
        )
        assert parse(raw).worker.autoscaling.wakes_from_zero


@pytest.mark.parametrize(
    ("formula", "names"),
    [
        ("(lag + queue) / 2", {"lag", "queue"}),
        ("max(lag, cpu) > 5 ? lag : float(cpu)", {"lag", "cpu"}),
        ('lag + len("queue depth") + 1e3', {"lag"}),
        ("lag > 2 and not (cpu < 1)", {"lag", "cpu"}),
    ],
)
def test_a_formula_reads_the_names_that_are_not_calls_strings_or_words(
    formula: str, names: set[str]
) -> None:
    raw = _worker_autoscaling(
        [LAG, {"name": "cpu", "cpu": {"value": 70}}, PRESET],
        scalingModifiers={"formula": formula, "target": "5"},
    )
    raw["monitoring"] = {"prometheus": {"serverAddress": "http://prometheus:9090"}}
    modifiers = parse(raw).worker.autoscaling.scaling_modifiers
    assert modifiers is not None
    assert modifiers.names() == names
