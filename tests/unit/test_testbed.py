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

UPSTREAM_GO_MOD = """module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require k8s.io/api v0.0.0
replace k8s.io/api => ./staging/src/k8s.io/api
"""


def test_wrapper_keeps_upstream_go_and_godebug_lines() -> None:
    assert assets._go_directives(UPSTREAM_GO_MOD) == "go 1.26.0\ngodebug default=go1.26\n"


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
