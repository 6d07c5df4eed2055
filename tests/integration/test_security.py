"""TLS and mutual TLS with certificates made at test time; no pickles in shipped code."""

from __future__ import annotations

import datetime
import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vitrine.client import Unavailable, VitrineClient
from vitrine.serving.embedded import EmbeddedTriton, ServerTls, free_port
from vitrine.serving.serve import embedded_repository

ROOT = Path(__file__).resolve().parents[2]
PIXELS = np.full((16, 16, 3), 120, np.uint8)


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _certificate(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server and a client certificate, all made now."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("vitrine test CA", ca_key, None, ca=True)
    files = {"ca": folder / "ca.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for role in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(f"vitrine {role}", key, (ca.subject, ca_key))
        files[f"{role}_cert"] = folder / f"{role}.pem"
        files[f"{role}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[f"{role}_key"] = _write_key(key, folder / f"{role}.key")
    return files


def _server(tls: ServerTls) -> EmbeddedTriton:
    ports = {name: free_port() for name in ("grpc_port", "http_port", "metrics_port")}
    return EmbeddedTriton(embedded_repository(), tls=tls, **ports)


@pytest.fixture(scope="module")
def tls_server(pki: dict[str, Path]) -> Iterator[EmbeddedTriton]:
    with _server(ServerTls(pki["server_cert"], pki["server_key"])) as server:
        yield server


@pytest.fixture(scope="module")
def mtls_server(pki: dict[str, Path]) -> Iterator[EmbeddedTriton]:
    tls = ServerTls(pki["server_cert"], pki["server_key"], client_ca=pki["ca"])
    with _server(tls) as server:
        yield server


def _url(server: EmbeddedTriton) -> str:
    return f"localhost:{server.grpc_port}"


@pytest.mark.integration
def test_tls_client_is_served(tls_server: EmbeddedTriton, pki: dict[str, Path]) -> None:
    with VitrineClient(_url(tls_server), ssl=True, root_certificates=str(pki["ca"])) as client:
        assert client.super_resolve_array(PIXELS, scale=2).array.shape == (32, 32, 3)


@pytest.mark.integration
def test_plaintext_client_is_refused_by_tls_server(tls_server: EmbeddedTriton) -> None:
    with (
        VitrineClient(_url(tls_server), timeout=3.0, retries=0) as client,
        pytest.raises(Unavailable),
    ):
        client.super_resolve_array(PIXELS, scale=2)


@pytest.mark.integration
def test_mutual_tls_needs_a_client_certificate(
    mtls_server: EmbeddedTriton, pki: dict[str, Path]
) -> None:
    anonymous = VitrineClient(
        _url(mtls_server), timeout=3.0, retries=0, ssl=True, root_certificates=str(pki["ca"])
    )
    with anonymous, pytest.raises(Unavailable):
        anonymous.super_resolve_array(PIXELS, scale=2)
    with VitrineClient(
        _url(mtls_server),
        ssl=True,
        root_certificates=str(pki["ca"]),
        private_key=str(pki["client_key"]),
        certificate_chain=str(pki["client_cert"]),
    ) as client:
        assert client.super_resolve_array(PIXELS, scale=2).array.shape == (32, 32, 3)


SHIPPED_CODE = ("vitrine", "client", "training", "export", "serving", "loadtest")
UNSAFE_LOADS = re.compile(r"\b(torch\.load|pickle\.loads?|cPickle|dill\.load|joblib\.load)\b")


def test_no_pickle_loading_in_shipped_code() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in SHIPPED_CODE
        for path in (ROOT / folder).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if UNSAFE_LOADS.search(line)
    ]
    assert not offenders, f"pickle-based loading in shipped code: {offenders}"


def test_python_steps_never_write_request_data_to_disk() -> None:
    writers = re.compile(r"\b(open\(|write_bytes|write_text|tempfile|\.save\()")
    for step in (ROOT / "export" / "python_models").glob("*.py"):
        assert not writers.search(step.read_text()), f"{step.name} writes files"
