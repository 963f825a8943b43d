"""The pure pieces of the image builds and the real node: build-step reporting, the pause
version, namespace wrapping, generated configs, how kernel state is put back, which pods get
scraped, and what the local demo changes in what a user applies."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from cryptography import x509

from tests.testbed import (
    bridge,
    demo,
    images,
    kernel_state,
    namespaces,
    node,
    pki,
    pod_targets,
    versions,
)
from tests.testbed.toolchain import BedError

pytestmark = pytest.mark.unit

BUILD_LOG = """[1/2] STEP 1/7: FROM localhost/scalingdemo-base:bookworm AS build
--> Using cache 0123
[2/2] STEP 5/8: RUN groupadd --system --gid 10001 operator
groupadd: group 'operator' already exists
Error: building at STEP "RUN groupadd": exit status 9
"""


def test_a_failed_build_names_its_last_step() -> None:
    assert images.failed_step(BUILD_LOG) == "STEP 5/8: RUN groupadd --system --gid 10001 operator"


def test_a_build_that_failed_before_any_step_says_so() -> None:
    assert images.failed_step("Error: no such file") == "before the first step"


def test_pause_version_comes_from_the_release_makefile() -> None:
    assert images.pause_tag("REGISTRY ?= x\nTAG ?= 3.10.2\nREV = y\n") == "3.10.2"


def test_a_makefile_without_the_pause_tag_is_an_error() -> None:
    with pytest.raises(BedError, match="TAG"):
        images.pause_tag("REGISTRY ?= x\n")


def test_base_key_follows_the_package_list(monkeypatch: pytest.MonkeyPatch) -> None:
    before = images.base_key()
    monkeypatch.setattr(versions, "BASE_PACKAGES", (*versions.BASE_PACKAGES, "curl"))
    assert images.base_key() != before
    assert images.base_key().startswith(f"{versions.DEBIAN_SUITE}-")


def test_build_time_mounts_are_read_only_trust_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, pip_config = tmp_path / "ca.pem", tmp_path / "pip.conf"
    bundle.write_text("certs")
    pip_config.write_text("[global]\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setenv("PIP_CONFIG_FILE", str(pip_config))
    assert images._build_time_mounts() == [
        f"--volume={bundle}:{images.IMAGE_CA_BUNDLE}:ro",
        f"--volume={pip_config}:{images.IMAGE_PIP_CONFIG}:ro",
    ]
    monkeypatch.setenv("PIP_CONFIG_FILE", str(tmp_path / "absent.conf"))
    assert images._build_time_mounts() == [f"--volume={bundle}:{images.IMAGE_CA_BUNDLE}:ro"]


def test_dockerignore_lets_in_exactly_what_the_dockerfiles_copy() -> None:
    allowed = {
        line[1:]
        for line in (images.REPOSITORY / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for dockerfile in images.IMAGES.values():
        copied = set()
        for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile.read_text(), re.M):
            copied |= set(sources.split())
        assert copied == allowed, dockerfile.name


def test_private_namespace_binds_then_runs_the_command() -> None:
    argv = namespaces.private({Path("/bed/run"): Path("/run")}, ["containerd", "--config=x"])
    assert argv[:4] == ["unshare", "--mount", "--propagation", "private"]
    assert argv[-5:] == ["/bed/run", "/run", "--", "containerd", "--config=x"]
    assert "--pid" not in argv


def test_own_pids_makes_the_command_init_of_a_pid_namespace() -> None:
    argv = namespaces.private({}, ["containerd"], own_pids=True)
    assert {"--pid", "--fork", "--kill-child", "--mount-proc"} <= set(argv)


def test_cni_config_gives_pods_no_way_out(tmp_path: Path) -> None:
    plugin = node.cni_config(tmp_path)["plugins"][0]
    assert plugin["bridge"] == bridge.NAME
    assert plugin["isGateway"] is False
    assert plugin["ipMasq"] is False
    assert plugin["ipam"]["ranges"][0][0]["subnet"] == str(bridge.SUBNET)
    assert plugin["ipam"]["dataDir"].startswith(str(tmp_path))


def test_kubelet_serves_on_loopback_and_taints_its_node(tmp_path: Path) -> None:
    config = node.kubelet_config(tmp_path, 10250, 10248)
    assert config["address"] == config["healthzBindAddress"] == "127.0.0.1"
    assert config["readOnlyPort"] == 0
    assert config["registerWithTaints"] == [node.TAINT]
    assert config["containerRuntimeEndpoint"] == f"unix://{tmp_path}/containerd/containerd.sock"


def test_containerd_keeps_its_state_in_the_node_directory(tmp_path: Path) -> None:
    config = node.containerd_config(tmp_path, "localhost/pause:3.10.2")
    assert 'sandbox_image = "localhost/pause:3.10.2"' in config
    assert f'root = "{tmp_path}/containerd/root"' in config
    assert "restrict_oom_score_adj = true" in config


def test_revert_deletes_new_rules_before_new_chains() -> None:
    before = ["-P INPUT ACCEPT"]
    after = [
        "-P INPUT ACCEPT",
        "-N KUBE-FIREWALL",
        '-A INPUT -m comment --comment "kubernetes firewall" -j KUBE-FIREWALL',
        "-A KUBE-FIREWALL -j DROP",
    ]
    assert kernel_state.revert_commands(before, after) == [
        ["-D", "INPUT", "-m", "comment", "--comment", "kubernetes firewall", "-j", "KUBE-FIREWALL"],
        ["-D", "KUBE-FIREWALL", "-j", "DROP"],
        ["-F", "KUBE-FIREWALL"],
        ["-X", "KUBE-FIREWALL"],
    ]


def test_nothing_to_revert_when_nothing_changed() -> None:
    rules = ["-P INPUT ACCEPT", "-N MINE", "-A INPUT -j MINE"]
    assert kernel_state.revert_commands(rules, rules) == []


def _pod(name: str, ip: str | None, labels: dict[str, str], scrape: bool = True) -> SimpleNamespace:
    annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"} if scrape else {}
    return SimpleNamespace(
        metadata=SimpleNamespace(
            name=name,
            namespace="demo",
            labels=labels,
            annotations=annotations,
            deletion_timestamp=None,
        ),
        status=SimpleNamespace(pod_ip=ip, phase="Running"),
    )


def _service(name: str, selector: dict[str, str]) -> SimpleNamespace:
    return SimpleNamespace(
        metadata=SimpleNamespace(name=name, namespace="demo"),
        spec=SimpleNamespace(selector=selector),
    )


def test_pod_targets_carry_the_labels_kubernetes_discovery_gives() -> None:
    worker = _pod("basic-worker-1", "10.244.0.12", {"app": "worker", "demo": "basic"})
    services = [_service("basic-api", {"app": "api"}), _service("basic-worker", {"app": "worker"})]
    assert pod_targets.targets([worker], services) == [
        {
            "targets": ["10.244.0.12:8080"],
            "labels": {"namespace": "demo", "pod": "basic-worker-1", "service": "basic-worker"},
        }
    ]


def test_only_annotated_pods_on_the_bridge_are_scraped() -> None:
    pods = [
        _pod("kwok-pod", "10.1.0.5", {}),
        _pod("pending", None, {}),
        _pod("quiet", "10.244.0.13", {}, scrape=False),
    ]
    assert pod_targets.targets(pods, []) == []


def test_the_operator_overlay_changes_only_placement_and_the_api_route(tmp_path: Path) -> None:
    overlay = yaml.safe_load(
        (demo.operator_overlay(tmp_path, 43210) / "kustomization.yaml").read_text()
    )
    assert (tmp_path / overlay["resources"][0]).resolve() == demo.INSTALL
    assert overlay["images"] == [
        {"name": demo.OPERATOR, "newName": demo.OPERATOR, "newTag": images.TAG}
    ]
    namespace_patch = yaml.safe_load(overlay["patches"][0]["patch"])
    assert namespace_patch["metadata"]["annotations"] == node.placement_annotations()
    env = json.loads(overlay["patches"][1]["patch"])[0]["value"]
    assert env == [
        {"name": "KUBERNETES_SERVICE_HOST", "value": bridge.ADDRESS},
        {"name": "KUBERNETES_SERVICE_PORT", "value": "43210"},
    ]


def test_the_local_demo_changes_only_the_example_addresses() -> None:
    original = yaml.safe_load(demo.EXAMPLE.read_text())
    changed = demo.example_with_addresses("10.244.0.1:9092", "http://127.0.0.1:9090")
    assert changed["spec"]["kafka"].pop("bootstrapServers") == "10.244.0.1:9092"
    assert changed["spec"]["monitoring"]["prometheus"].pop("serverAddress") == (
        "http://127.0.0.1:9090"
    )
    del original["spec"]["kafka"]["bootstrapServers"]
    del original["spec"]["monitoring"]["prometheus"]["serverAddress"]
    assert changed == original


def test_the_bridge_address_is_in_the_api_server_certificate(tmp_path: Path) -> None:
    certs = pki.generate(tmp_path)
    serving = x509.load_pem_x509_certificate(certs.serving_cert.read_bytes())
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address(bridge.ADDRESS) in names.get_values_for_type(x509.IPAddress)


def test_a_node_directory_too_deep_for_containerds_sockets_is_refused_by_name() -> None:
    node._check_socket_room(Path("/tmp/sd-demo/node"))
    deep = Path("/tmp") / ("d" * 80) / "node"
    with pytest.raises(BedError, match=r"run directory /tmp/d+ is too deep.*--run-dir"):
        node._check_socket_room(deep)


def test_a_node_too_close_to_a_full_disk_is_refused_naming_the_room_it_needs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The kubelet would report DiskPressure and keep the node tainted (a CI run timed out so)."""
    gib = 2**30
    monkeypatch.setattr(
        node.shutil, "disk_usage", lambda path: SimpleNamespace(total=100 * gib, free=3.5 * gib)
    )
    with pytest.raises(BedError, match=rf"3\.5 GiB free on the filesystem of {tmp_path}.*4\.0 GiB"):
        node._check_disk_room(tmp_path)
    monkeypatch.setattr(
        node.shutil, "disk_usage", lambda path: SimpleNamespace(total=100 * gib, free=4 * gib)
    )
    node._check_disk_room(tmp_path)
