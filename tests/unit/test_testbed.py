"""The bed's pure pieces: wrapper go.mod and Maven pom text, Java versions, certificates,
kubeconfig, fake nodes."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.testbed import assets, control_plane, pki
from tests.testbed.component import Component, Stack
from tests.testbed.toolchain import BedError, require

pytestmark = pytest.mark.unit

UPSTREAM = {
    "Go": "1.26.0",
    "Replace": [
        {"Old": {"Path": "k8s.io/api"}, "New": {"Path": "./staging/src/k8s.io/api"}},
        {"Old": {"Path": "k8s.io/kubectl"}, "New": {"Path": "./staging/src/k8s.io/kubectl"}},
        {
            "Old": {"Path": "example.com/a", "Version": "v0.1.0"},
            "New": {"Path": "example.com/a", "Version": "v0.1.1"},
        },
        {
            "Old": {"Path": "example.com/b"},
            "New": {"Path": "example.com/fork", "Version": "v2.0.0"},
        },
    ],
}


def test_wrapper_repeats_only_versioned_replaces() -> None:
    assert assets._versioned_replaces(UPSTREAM) == [
        "example.com/a@v0.1.0=example.com/a@v0.1.1",
        "example.com/b=example.com/fork@v2.0.0",
    ]


def test_staging_modules_map_to_their_published_versions() -> None:
    assert assets.staging_replaces(UPSTREAM, "1.36.3") == (
        "k8s.io/api=k8s.io/api@v0.36.3",
        "k8s.io/kubectl=k8s.io/kubectl@v0.36.3",
    )


def test_no_staging_replaces_is_an_error() -> None:
    with pytest.raises(BedError, match="no staging replace directives"):
        assets.staging_replaces({"Replace": []}, "1.36.3")


def test_certificates_chain_to_the_bed_ca(tmp_path: Path) -> None:
    certs = pki.generate(tmp_path)
    ca = x509.load_pem_x509_certificate(certs.ca_cert.read_bytes())
    admin = x509.load_pem_x509_certificate(certs.admin_cert.read_bytes())
    admin.verify_directly_issued_by(ca)
    organizations = admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert [attribute.value for attribute in organizations] == ["system:masters"]
    serving = x509.load_pem_x509_certificate(certs.serving_cert.read_bytes())
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)


def test_client_certificate_names_user_and_groups(tmp_path: Path) -> None:
    certs = pki.generate(tmp_path)
    cert_path, _ = pki.client_certificate(certs, tmp_path, "alice", ["team-a", "team-b"])
    subject = x509.load_pem_x509_certificate(cert_path.read_bytes()).subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    groups = [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert groups == ["team-a", "team-b"]


def test_kubeconfig_points_at_files(tmp_path: Path) -> None:
    path = control_plane.write_kubeconfig(
        tmp_path / "kubeconfig", "https://127.0.0.1:6443", Path("/ca"), Path("/c"), Path("/k"), "me"
    )
    loaded = yaml.safe_load(path.read_text())
    assert loaded["clusters"][0]["cluster"] == {
        "server": "https://127.0.0.1:6443",
        "certificate-authority": "/ca",
    }
    assert loaded["users"][0]["user"] == {"client-certificate": "/c", "client-key": "/k"}


def test_fake_node_is_selected_by_kwok() -> None:
    node = control_plane.fake_node("kwok-node-9")
    assert node["metadata"]["annotations"] == {control_plane.KWOK_NODE_ANNOTATION: "fake"}
    assert node["status"]["allocatable"]["pods"] == "2500"


def test_missing_prerequisite_is_named() -> None:
    with pytest.raises(BedError, match="prerequisite 'no-such-tool-xyz' not found"):
        require("no-such-tool-xyz", "do nothing")


def test_kubebuilder_assets_are_used_when_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("etcd", "kube-apiserver"):
        (tmp_path / name).write_text("")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    assert assets._kubebuilder_assets() == {
        "etcd": tmp_path / "etcd",
        "kube-apiserver": tmp_path / "kube-apiserver",
    }


def test_kubebuilder_assets_without_apiserver_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etcd").write_text("")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    with pytest.raises(BedError, match="must hold etcd and kube-apiserver"):
        assets._kubebuilder_assets()


def test_maven_pom_lists_dependencies_and_imports_boms() -> None:
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    pom = ElementTree.fromstring(
        assets.maven_pom(
            "crds",
            [assets.Artifact("io.strimzi", "api", "1.2.0")],
            [assets.Artifact("io.strimzi", "strimzi", "1.2.0", kind="pom", scope="import")],
        )
    )

    def coordinates(path: str) -> list[tuple[str | None, ...]]:
        fields = ("groupId", "artifactId", "version", "type", "scope")
        return [
            tuple(d.findtext(f"m:{f}", namespaces=namespace) for f in fields)
            for d in pom.findall(path, namespace)
        ]

    assert pom.findtext("m:artifactId", namespaces=namespace) == "crds"
    assert coordinates("m:dependencies/m:dependency") == [
        ("io.strimzi", "api", "1.2.0", "jar", "compile")
    ]
    assert coordinates("m:dependencyManagement/m:dependencies/m:dependency") == [
        ("io.strimzi", "strimzi", "1.2.0", "pom", "import")
    ]


def test_maven_pom_without_managed_versions_has_no_management_section() -> None:
    pom = assets.maven_pom("kafka", [assets.Artifact("org.slf4j", "slf4j-api", "2.0.20")], [])
    assert "dependencyManagement" not in pom
    ElementTree.fromstring(pom)


@pytest.mark.parametrize(
    ("banner", "release"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('openjdk version "25.0.3" 2026-04-21 LTS', 25),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
    ],
)
def test_java_major_reads_the_feature_release(banner: str, release: int) -> None:
    assert assets.java_major(banner) == release


def test_java_major_rejects_an_unknown_banner() -> None:
    with pytest.raises(BedError, match="cannot read a Java version"):
        assets.java_major("command not found")


def fake_java_home(directory: Path, banner: str) -> Path:
    java = directory / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho '{banner}' >&2\n")
    java.chmod(0o755)
    return java


def test_java_home_is_preferred_when_new_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    java = fake_java_home(tmp_path, 'openjdk version "99.0.1" 2099-01-01')
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    assert assets.java_at_least(99, "test") == str(java)


def test_no_java_new_enough_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_java_home(tmp_path, 'openjdk version "11.0.2" 2019-01-15')
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(BedError, match="no Java 999 or newer found"):
        assets.java_at_least(999, "run something")


class _Echo(Component):
    """A component whose process is a shell that sleeps: enough to start, probe and stop."""

    name = "echo"

    def command(self) -> list[str | Path]:
        return ["sh", "-c", "sleep 30", "echo"]

    def default_flags(self) -> dict[str, str | None]:
        return {"--port": "1", "--verbose": None, "--mode": "fast"}

    def ready(self) -> bool:
        return True


def test_component_flags_merge_overrides_over_defaults(tmp_path: Path) -> None:
    component = _Echo(tmp_path, {"--port": "2", "--mode": None, "--extra": "x"})
    assert component.argv()[4:] == ["--port=2", "--verbose", "--extra=x"]


def test_component_logs_under_the_run_directory(tmp_path: Path) -> None:
    assert _Echo(tmp_path).log == tmp_path / "logs" / "echo.log"
    assert _Echo(tmp_path).directory == tmp_path / "echo"


def test_stack_stops_in_reverse_start_order(tmp_path: Path) -> None:
    stopped: list[str] = []

    class Recorded(_Echo):
        def stop(self) -> None:
            stopped.append(str(self.run_dir.name))
            super().stop()

    first, second = Recorded(tmp_path / "first"), Recorded(tmp_path / "second")
    stack = Stack()
    stack.start(first, second)
    try:
        assert stack.pids() == [first.pid, second.pid]
    finally:
        stack.stop()
    assert stopped == ["second", "first"]
    assert first.process.popen is not None
    assert first.process.popen.poll() is not None
