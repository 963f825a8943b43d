"""Certificates and keys for one bed: a CA, the API server's serving cert,
an admin client cert (system:masters) and the service-account signing key.

Generated fresh for every bed so nothing secret is cached or committed.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import bridge

VALIDITY = datetime.timedelta(days=2)
FIRST_SERVICE_IP = "10.0.0.1"
ADMIN_USER = "scalingdemo-admin"
FRONT_PROXY_USER = "front-proxy-client"


@dataclass(frozen=True)
class Pki:
    """Paths of the generated files."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    front_proxy_cert: Path
    front_proxy_key: Path
    service_account_key: Path
    service_account_public_key: Path

    @classmethod
    def at(cls, directory: Path) -> Pki:
        """The file layout inside one bed's certificate directory."""
        return cls(
            ca_cert=directory / "ca.crt",
            ca_key=directory / "ca.key",
            serving_cert=directory / "apiserver.crt",
            serving_key=directory / "apiserver.key",
            admin_cert=directory / "admin.crt",
            admin_key=directory / "admin.key",
            front_proxy_cert=directory / "front-proxy-client.crt",
            front_proxy_key=directory / "front-proxy-client.key",
            service_account_key=directory / "sa.key",
            service_account_public_key=directory / "sa.pub",
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _sign(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    usages: list[x509.ObjectIdentifier] | None = None,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def generate(directory: Path) -> Pki:
    """Create every certificate and key the control plane needs in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki.at(directory)
    ca_key = _key()
    ca_name = _name("scalingdemo-testbed-ca")
    _write_key(pki.ca_key, ca_key)
    _write_cert(pki.ca_cert, _sign(ca_name, ca_key.public_key(), ca_name, ca_key, ca=True))

    serving_key = _key()
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default.svc"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address(FIRST_SERVICE_IP)),
        # Pods on the real node reach the API server through the bed's bridge.
        x509.IPAddress(ipaddress.ip_address(bridge.ADDRESS)),
    ]
    _write_key(pki.serving_key, serving_key)
    _write_cert(
        pki.serving_cert,
        _sign(
            _name("kube-apiserver"),
            serving_key.public_key(),
            ca_name,
            ca_key,
            usages=[ExtendedKeyUsageOID.SERVER_AUTH],
            sans=sans,
        ),
    )

    _issue_client(ca_name, ca_key, pki.admin_cert, pki.admin_key, ADMIN_USER, ["system:masters"])
    # The aggregation layer (KEDA's metrics adapter) trusts requests that the API
    # server proxies with this identity.
    _issue_client(ca_name, ca_key, pki.front_proxy_cert, pki.front_proxy_key, FRONT_PROXY_USER, [])

    service_account_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(pki.service_account_key, service_account_key)
    pki.service_account_public_key.write_bytes(
        service_account_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


def client_certificate(
    pki: Pki, directory: Path, user: str, groups: list[str]
) -> tuple[Path, Path]:
    """Issue a client certificate for ``user`` in ``groups``, e.g. a non-admin for RBAC tests."""
    ca_name, ca_key = _load_ca(pki)
    cert_path, key_path = directory / f"{user}.crt", directory / f"{user}.key"
    _issue_client(ca_name, ca_key, cert_path, key_path, user, groups)
    return cert_path, key_path


def _issue_client(
    ca_name: x509.Name,
    ca_key: ec.EllipticCurvePrivateKey,
    cert_path: Path,
    key_path: Path,
    user: str,
    groups: list[str],
) -> None:
    """The API server reads the user from the CN and the groups from the O attributes."""
    key = _key()
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, user)]
        + [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    )
    _write_key(key_path, key)
    _write_cert(
        cert_path,
        _sign(subject, key.public_key(), ca_name, ca_key, usages=[ExtendedKeyUsageOID.CLIENT_AUTH]),
    )


def service_certificate(pki: Pki, directory: Path, name: str, dns_names: list[str]) -> None:
    """Write ``ca.crt``, ``tls.crt`` and ``tls.key`` for a component that serves on loopback
    and also dials its peers with the same identity (KEDA's operator and adapter do both)."""
    ca_name, ca_key = _load_ca(pki)
    key = _key()
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        *(x509.DNSName(dns) for dns in dns_names),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    directory.mkdir(parents=True, exist_ok=True)
    _write_key(directory / "tls.key", key)
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    _write_cert(
        directory / "tls.crt",
        _sign(_name(name), key.public_key(), ca_name, ca_key, usages=usages, sans=sans),
    )
    shutil.copyfile(pki.ca_cert, directory / "ca.crt")


def _load_ca(pki: Pki) -> tuple[x509.Name, ec.EllipticCurvePrivateKey]:
    key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return x509.load_pem_x509_certificate(pki.ca_cert.read_bytes()).subject, key
