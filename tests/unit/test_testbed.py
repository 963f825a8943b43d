"""The bed's pure pieces: wrapper go.mod text, certificates, kubeconfig, fake nodes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.testbed import assets, control_plane, pki
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
    assert node["status"]["allocatable"]["pods"] == "110"


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
