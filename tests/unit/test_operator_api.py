"""The ground module's kind table drives the rest: the handlers, the API paths, the env rules."""

from __future__ import annotations

from typing import Any, get_args

import kopf
import pytest
from scalingdemo_operator import handlers  # importing registers the handlers with kopf
from scalingdemo_operator.api import (
    CHILD_KINDS,
    CHILDREN,
    CREDENTIALS_LABEL,
    GROUP,
    MANAGED_BY_LABEL,
    PLURAL,
    VERSION,
    ChildKind,
    Listing,
    resources,
)
from scalingdemo_operator.builders import desired_children
from scalingdemo_operator.builders.env import environment
from scalingdemo_operator.builders.keda import SASL_MECHANISMS
from scalingdemo_operator.cache import Cache
from scalingdemo_operator.kafka.model import SASL_MECHANISMS as ADMIN_SASL_MECHANISMS
from scalingdemo_operator.reconciler import Reconciler
from scalingdemo_operator.settings import Settings
from scalingdemo_operator.spec import RESERVED_ENV, SaslMechanism, parse

from tests.unit.conftest import OWNER

pytestmark = pytest.mark.unit

CRDS = handlers.CRDS
SECRETS = handlers.SECRETS

EVERYTHING = {
    "image": "registry.example/workload:1",
    "kafka": {
        "bootstrapServers": "kafka:9092",
        "topicManagement": "Strimzi",
        "strimziCluster": "main",
        "auth": {
            "sasl": {"mechanism": "PLAIN", "secretName": "kafka-user"},
            "tls": {"caSecretName": "kafka-ca"},
        },
    },
    "api": {"verticalScaling": {"enabled": True}},
    "worker": {
        "autoscaling": {"enabled": True, "triggers": [{"name": "lag", "kafkaLag": {}}]},
    },
    "monitoring": {"alerts": {"enabled": True}},
}


def test_every_variable_the_builder_sets_is_reserved() -> None:
    for worker in (True, False):
        spec = parse({**EVERYTHING, "worker": {**EVERYTHING["worker"], "enabled": worker}})
        for component in spec.components():
            names = {item["name"] for item in environment(spec, OWNER, component)}
            assert names <= RESERVED_ENV, names - RESERVED_ENV


def test_every_built_child_is_a_listed_kind_with_a_known_path() -> None:
    children = desired_children(parse(EVERYTHING), OWNER, "v1")
    assert {child["kind"] for child in children} == set(CHILDREN)
    for child in children:
        assert (child["apiVersion"], child["kind"]) in resources()


def _selected(handlers: Any) -> set[tuple[str | None, str | None, str | None]]:
    return {
        (handler.selector.group, handler.selector.version, handler.selector.plural)
        for handler in handlers
    }


def _chosen_version(child: ChildKind) -> str | None:
    """kopf watches a kind whose version discovery chooses in the cluster's preferred one."""
    return None if child.listing is Listing.SERVED else child.version


def test_the_watched_kinds_are_the_ones_kopf_watches() -> None:
    """Events of the watched children trigger reconciles; the ScalingDemo CRD's own event
    marks the cache complete; the demos are watched for a paused annotation set or removed that
    the status does not answer yet (handlers.answer_pause) and for their deletion; a labelled
    Secret's change reconciles the demos naming it."""
    registered = _selected(kopf.get_default_registry()._watching.get_all_handlers())
    assert registered == {
        (child.group, _chosen_version(child), child.plural)
        for child in CHILD_KINDS
        if child.watched
    } | {CRDS, (GROUP, VERSION, PLURAL), SECRETS}


def test_every_child_kind_the_demos_the_add_on_crds_and_the_credentials_are_indexed() -> None:
    registered = _selected(kopf.get_default_registry()._indexing.get_all_handlers())
    assert registered == {
        (child.group, _chosen_version(child), child.plural) for child in CHILD_KINDS
    } | {CRDS, (GROUP, VERSION, PLURAL), SECRETS}


async def test_the_watches_ask_the_api_server_for_the_labelled_objects_only() -> None:
    settings, cache = kopf.OperatorSettings(), Cache()
    quiet = Settings(metrics_port=None, resync_seconds=0)
    memo = handlers.Operator(quiet, Any, cache, Reconciler(Any, cache, quiet), Any)
    registered = kopf.get_default_registry()._indexing.get_all_handlers()
    await handlers.configure(settings, memo, **{str(handler.id): {} for handler in registered})
    selectors = settings.watching.label_selectors
    resource = kopf.Resource("", "v1", "secrets", kind="Secret", namespaced=True)
    assert selectors.collect(resource) == [f"{CREDENTIALS_LABEL}=true"]
    for child in CHILD_KINDS:
        resource = kopf.Resource(child.group, child.version, child.plural, kind=child.kind)
        assert selectors.collect(resource) == [f"{MANAGED_BY_LABEL}=scalingdemo-operator"]
    assert selectors.collect(kopf.Resource("", "v1", "pods", kind="Pod")) == []


def test_the_sasl_mechanisms_are_the_specs_everywhere() -> None:
    assert set(SASL_MECHANISMS) == set(get_args(SaslMechanism)) == ADMIN_SASL_MECHANISMS
