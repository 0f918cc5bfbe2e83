"""TLS through the guard: the connection goes to the checked IP, and the certificate is still
verified against the host name (SNI and hostname check use the name, not the address)."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from flowrunner.outbound import AddressPolicy, guarded_client
from tests.http_server import TestServer, running_server

NAME = "secure.test"


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signer = issuer or (name, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), False)
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for ``secure.test`` only (not for 127.0.0.1)."""
    root = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Test CA", ca_key, None)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert(NAME, key, (ca.subject, ca_key))
    ca_file, cert_file, key_file = root / "ca.pem", root / "cert.pem", root / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


@pytest.fixture(scope="module")
def server(tls_files: tuple[Path, Path, Path]) -> Iterator[TestServer]:
    _, cert, key = tls_files
    with running_server(tls=(str(cert), str(key))) as running:
        yield running


async def resolve_to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


async def test_tls_to_a_pinned_address_verifies_the_certificate_of_the_name(
    server: TestServer, tls_files: tuple[Path, Path, Path]
) -> None:
    context = ssl.create_default_context(cafile=str(tls_files[0]))
    policy = AddressPolicy.from_settings(False, "127.0.0.1/32")
    async with guarded_client(policy, resolve=resolve_to_loopback, ssl_context=context) as client:
        response = await client.get(f"https://{NAME}:{server.port}/echo")
        assert response.json()["headers"]["host"] == f"{NAME}:{server.port}"
        # The same address under another name: its certificate does not match, refused.
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            await client.get(f"https://other.test:{server.port}/echo")
        # And by IP: the certificate is for the name, not the address.
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            await client.get(f"https://127.0.0.1:{server.port}/echo")


async def test_a_guarded_client_loads_the_trust_store_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # httpx's transport builds a pool of its own (with a context) that the guard replaces.
    loaded: list[object] = []
    load = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loaded.append(args or kwargs)
        load(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    async with guarded_client(AddressPolicy()):
        pass
    assert len(loaded) == 1
