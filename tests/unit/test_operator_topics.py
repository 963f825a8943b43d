"""Topic planning, results and error classification: what needs no broker."""

from __future__ import annotations

import ssl

import certifi
import pytest
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    NodeNotReadyError,
    PolicyViolationError,
    RequestTimedOutError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)
from scalingdemo_operator.api import Event
from scalingdemo_operator.kafka.admin import client_options, unavailable
from scalingdemo_operator.kafka.model import (
    DesiredTopic,
    KafkaConnection,
    ObservedTopic,
    TopicsDeleted,
    TopicStatus,
    TopicsUnavailable,
)
from scalingdemo_operator.kafka.plan import (
    Applied,
    Changes,
    ConfigChange,
    PartitionIncrease,
    TopicPlan,
    plan,
    result,
    unique,
)

pytestmark = pytest.mark.unit

RETENTION = {"retention.ms": "3600000"}


def desired(name: str = "orders", partitions: int = 6, rf: int = 1, **config: str) -> DesiredTopic:
    return DesiredTopic(name, partitions, rf, config or RETENTION)


def observed(
    name: str = "orders", partitions: int = 6, rf: int = 1, **config: str
) -> ObservedTopic:
    return ObservedTopic(name, partitions, rf, config or RETENTION)


def by_name(*topics: ObservedTopic) -> dict[str, ObservedTopic]:
    return {topic.name: topic for topic in topics}


class TestPlan:
    def test_in_sync_topics_need_nothing(self) -> None:
        topic_plan = plan([desired()], by_name(observed()))
        assert topic_plan == TopicPlan()
        assert topic_plan.changes.empty

    def test_missing_topics_are_created_with_their_config(self) -> None:
        wanted = [desired("orders"), desired("tasks", partitions=3)]
        topic_plan = plan(wanted, by_name(observed("orders")))
        assert topic_plan.changes.create == (desired("tasks", partitions=3),)
        assert not topic_plan.changes.increase
        assert not topic_plan.changes.reconfigure
        assert not topic_plan.changes.empty

    def test_more_partitions_are_added(self) -> None:
        topic_plan = plan([desired(partitions=12)], by_name(observed(partitions=6)))
        assert topic_plan.changes.increase == (PartitionIncrease("orders", 6, 12),)
        assert not topic_plan.refused

    def test_partition_decrease_is_refused_naming_topic_and_counts(self) -> None:
        topic_plan = plan([desired(partitions=3)], by_name(observed(partitions=6)))
        assert topic_plan.changes.empty
        (refusal,) = topic_plan.refused
        assert refusal.message.startswith("topic orders ")
        assert refusal.reason == "PartitionDecreaseRefused"
        assert "orders" in refusal.message
        assert "6 partitions" in refusal.message
        assert "asks for 3" in refusal.message

    def test_replication_factor_change_is_refused_both_ways(self) -> None:
        for current, wanted in [(1, 3), (3, 1)]:
            topic_plan = plan([desired(rf=wanted)], by_name(observed(rf=current)))
            (refusal,) = topic_plan.refused
            assert refusal.reason == "ReplicationFactorChangeRefused"
            assert f"replication factor {current}" in refusal.message
            assert f"asks for {wanted}" in refusal.message
            assert topic_plan.changes.empty

    def test_a_refusal_does_not_hold_back_the_topics_other_changes(self) -> None:
        topic_plan = plan(
            [desired(partitions=12, rf=3, **{"retention.ms": "60000"})],
            by_name(observed(partitions=6, rf=1)),
        )
        assert [r.reason for r in topic_plan.refused] == ["ReplicationFactorChangeRefused"]
        assert topic_plan.changes.increase == (PartitionIncrease("orders", 6, 12),)
        assert [c.topic for c in topic_plan.changes.reconfigure] == ["orders"]

    def test_decrease_and_config_change_together(self) -> None:
        topic_plan = plan(
            [desired(partitions=2, **{"cleanup.policy": "compact"})], by_name(observed())
        )
        assert [r.reason for r in topic_plan.refused] == ["PartitionDecreaseRefused"]
        assert not topic_plan.changes.increase
        assert len(topic_plan.changes.reconfigure) == 1

    def test_config_change_writes_the_complete_desired_set(self) -> None:
        want = {"retention.ms": "60000", "cleanup.policy": "compact"}
        (change,) = plan([desired(**want)], by_name(observed())).changes.reconfigure
        assert dict(change.config) == want
        assert dict(change.changed) == {
            "cleanup.policy": (None, "compact"),
            "retention.ms": ("3600000", "60000"),
        }

    def test_keys_missing_from_the_spec_go_back_to_the_default(self) -> None:
        current = observed(**{"retention.ms": "1", "max.message.bytes": "2048"})
        (change,) = plan([desired(**{"retention.ms": "1"})], by_name(current)).changes.reconfigure
        assert dict(change.config) == {"retention.ms": "1"}
        assert dict(change.changed) == {"max.message.bytes": ("2048", None)}

    def test_an_empty_spec_config_clears_hand_made_overrides(self) -> None:
        topic = DesiredTopic("orders", 6, 1, {})
        (change,) = plan([topic], by_name(observed())).changes.reconfigure
        assert dict(change.config) == {}
        assert dict(change.changed) == {"retention.ms": ("3600000", None)}

    def test_only_named_topics_are_considered(self) -> None:
        other = observed("someone-elses", partitions=1, **{"cleanup.policy": "compact"})
        assert plan([desired()], by_name(observed(), other)) == TopicPlan()

    def test_identical_repeats_collapse(self) -> None:
        assert plan([desired(), desired()], {}).changes.create == (desired(),)

    def test_conflicting_repeats_are_a_caller_bug(self) -> None:
        with pytest.raises(ValueError, match="orders is desired twice"):
            plan([desired(), desired(partitions=1)], {})

    def test_order_of_the_spec_is_kept(self) -> None:
        names = ["b", "a", "c"]
        assert [t.name for t in plan([desired(n) for n in names], {}).changes.create] == names


class TestEvents:
    def test_config_change_event_lists_before_and_after(self) -> None:
        change = ConfigChange(
            "orders",
            {"cleanup.policy": "compact"},
            {"cleanup.policy": (None, "compact"), "retention.ms": ("1", None)},
        )
        assert change.event == Event(
            "Normal",
            "TopicConfigChanged",
            "topic orders: cleanup.policy (broker default) -> compact, "
            "retention.ms 1 -> (broker default)",
        )

    def test_changes_announce_creations_increases_and_config_changes(self) -> None:
        changes = Changes(
            create=(desired("new", partitions=3),),
            increase=(PartitionIncrease("orders", 6, 12),),
            reconfigure=(ConfigChange("tasks", {}, {"retention.ms": ("1", None)}),),
        )
        assert [(e.message.split()[1].rstrip(":"), e.reason) for e in changes.events] == [
            ("new", "TopicCreated"),
            ("orders", "TopicPartitionsIncreased"),
            ("tasks", "TopicConfigChanged"),
        ]
        created, increased, _ = (e.message for e in changes.events)
        assert created == (
            "topic new created with 3 partitions, replication factor 1 "
            "and config retention.ms=3600000"
        )
        assert increased == "topic orders: partitions raised from 6 to 12"

    def test_creation_without_config_says_so_briefly(self) -> None:
        (event,) = Changes(create=(DesiredTopic("t", 1, 1, {}),)).events
        assert event.message == "topic t created with 1 partitions, replication factor 1"

    def test_deletion_events_name_only_deleted_topics(self) -> None:
        failure = Event("Warning", "TopicAuthorizationFailed", "topic b: deleting it failed: no")
        deleted = TopicsDeleted(deleted=("a",), failed=(failure,))
        assert deleted.done == (Event("Normal", "TopicDeleted", "topic a deleted"),)


class TestResult:
    def test_sizes_follow_what_the_broker_acknowledged(self) -> None:
        wanted = [desired("grown", partitions=12), desired("new", partitions=3), desired("kept")]
        current = by_name(observed("grown"), observed("kept"))
        topic_plan = plan(wanted, current)
        applied = Applied(done=topic_plan.changes)
        topics = result(wanted, current, topic_plan, applied)
        assert topics.topics == (
            TopicStatus("grown", 12, 1),
            TopicStatus("new", 3, 1),
            TopicStatus("kept", 6, 1),
        )
        assert not topics.refused
        assert not topics.failed
        assert len(topics.done) == 2

    def test_failed_changes_leave_the_observed_size(self) -> None:
        wanted = [desired("grown", partitions=12), desired("new", rf=3)]
        current = by_name(observed("grown"))
        topic_plan = plan(wanted, current)
        failures = (
            Event("Warning", "PolicyViolation", "topic grown: raising partitions failed"),
            Event("Warning", "InvalidReplicationFactor", "topic new: creating it failed"),
        )
        topics = result(wanted, current, topic_plan, Applied(failed=failures))
        assert topics.topics == (TopicStatus("grown", 6, 1), TopicStatus("new", None, None))
        assert topics.failed == failures
        assert not topics.done

    def test_refusals_make_the_result_not_ready(self) -> None:
        wanted = [desired(partitions=3)]
        current = by_name(observed())
        topic_plan = plan(wanted, current)
        topics = result(wanted, current, topic_plan, Applied())
        assert topics.topics == (TopicStatus("orders", 6, 1),)
        assert topics.refused == topic_plan.refused


class TestValues:
    def test_desired_topic_config_is_a_read_only_copy(self) -> None:
        config = {"retention.ms": "1"}
        topic = DesiredTopic("orders", 1, 1, config)
        config["retention.ms"] = "2"
        assert topic.config == {"retention.ms": "1"}
        with pytest.raises(TypeError):
            topic.config["retention.ms"] = "3"  # type: ignore[index]

    @pytest.mark.parametrize(("name", "partitions", "rf"), [("", 1, 1), ("t", 0, 1), ("t", 1, 0)])
    def test_desired_topic_rejects_impossible_sizes(
        self, name: str, partitions: int, rf: int
    ) -> None:
        with pytest.raises(ValueError, match="topic"):
            DesiredTopic(name, partitions, rf)

    def test_unique_keeps_first_occurrence_order(self) -> None:
        assert [t.name for t in unique([desired("b"), desired("a"), desired("b")])] == ["b", "a"]


class TestConnection:
    @pytest.mark.parametrize(
        ("settings", "protocol"),
        [
            ({}, "PLAINTEXT"),
            ({"tls": True}, "SSL"),
            (
                {"sasl_mechanism": "PLAIN", "sasl_username": "u", "sasl_password": "p"},
                "SASL_PLAINTEXT",
            ),
            (
                {
                    "sasl_mechanism": "SCRAM-SHA-512",
                    "sasl_username": "u",
                    "sasl_password": "p",
                    "tls": True,
                },
                "SASL_SSL",
            ),
        ],
    )
    def test_security_protocol_follows_sasl_and_tls(self, settings: dict, protocol: str) -> None:
        connection = KafkaConnection("kafka:9092", **settings)
        assert connection.security_protocol == protocol
        assert client_options(connection)["security_protocol"] == protocol

    def test_client_options_carry_sasl_credentials_and_timeouts(self) -> None:
        connection = KafkaConnection(
            "kafka:9092",
            sasl_mechanism="SCRAM-SHA-256",
            sasl_username="demo",
            sasl_password="s3cret",
            request_timeout_seconds=2.5,
        )
        options = client_options(connection)
        assert options["sasl_mechanism"] == "SCRAM-SHA-256"
        assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
            "demo",
            "s3cret",
        )
        assert options["request_timeout_ms"] == 2500
        assert "ssl_context" not in options

    def test_tls_without_a_ca_uses_the_system_trust(self) -> None:
        options = client_options(KafkaConnection("kafka:9092", tls=True))
        assert isinstance(options["ssl_context"], ssl.SSLContext)

    @pytest.mark.parametrize("source", ["tls_ca_file", "tls_ca_pem"])
    def test_a_given_ca_is_trusted(self, source: str) -> None:
        bundle = certifi.where()
        ca = (
            {"tls_ca_file": bundle}
            if source == "tls_ca_file"
            else {"tls_ca_pem": certifi.contents()}
        )
        context = client_options(KafkaConnection("kafka:9092", tls=True, **ca))["ssl_context"]
        assert context.cert_store_stats()["x509_ca"] > 0

    def test_an_unusable_ca_is_a_tls_problem(self, tmp_path) -> None:
        connection = KafkaConnection("kafka:9092", tls=True, tls_ca_file=str(tmp_path / "missing"))
        with pytest.raises(TopicsUnavailable) as raised:
            client_options(connection)
        assert raised.value.reason == "TlsConfigInvalid"

    def test_secrets_never_appear_in_repr(self) -> None:
        connection = KafkaConnection(
            "kafka:9092", sasl_mechanism="PLAIN", sasl_username="demo-user", sasl_password="s3cret"
        )
        assert "s3cret" not in repr(connection)
        assert "demo-user" not in repr(connection)
        assert "kafka:9092" in repr(connection)

    @pytest.mark.parametrize(
        ("settings", "message"),
        [
            ({"bootstrap_servers": " "}, "empty"),
            ({"sasl_mechanism": "GSSAPI", "sasl_username": "u", "sasl_password": "p"}, "one of"),
            ({"sasl_mechanism": "PLAIN", "sasl_username": "u"}, "together"),
            ({"sasl_username": "u", "sasl_password": "p"}, "together"),
            ({"tls_ca_file": "/ca.crt"}, "tls is False"),
            ({"timeout_seconds": 0}, "positive"),
        ],
    )
    def test_inconsistent_settings_are_refused(self, settings: dict, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            KafkaConnection(**{"bootstrap_servers": "kafka:9092", **settings})


class TestUnavailable:
    @pytest.mark.parametrize(
        ("error", "reason"),
        [
            (ConnectionRefusedError(111, "Connect call failed"), "BrokerUnreachable"),
            (KafkaConnectionError("Unable to bootstrap"), "BrokerUnreachable"),
            (NodeNotReadyError("node 1"), "BrokerUnreachable"),
            (TimeoutError(), "BrokerTimeout"),
            (RequestTimedOutError(), "BrokerTimeout"),
            (SaslAuthenticationFailed("bad password"), "AuthenticationFailed"),
            (IllegalSaslStateError("no SASL on this listener"), "AuthenticationFailed"),
            (ssl.SSLCertVerificationError("certificate verify failed"), "TlsHandshakeFailed"),
            (TopicAuthorizationFailedError(), "TopicAuthorizationFailed"),
            (PolicyViolationError("no"), "PolicyViolation"),
        ],
    )
    def test_reason_is_camel_case_and_specific(self, error: BaseException, reason: str) -> None:
        assert unavailable(error).reason == reason

    def test_detail_keeps_the_clients_text_and_names_the_broker(self) -> None:
        error = SaslAuthenticationFailed("Authentication failed: Invalid username or password")
        classified = unavailable(error, "kafka-0:9093")
        assert classified.detail.startswith("kafka-0:9093: ")
        assert "Invalid username or password" in classified.detail
        assert str(classified) == f"AuthenticationFailed: {classified.detail}"

    def test_an_error_without_text_is_named_by_its_type(self) -> None:
        assert unavailable(ConnectionResetError()).detail == "ConnectionResetError"
