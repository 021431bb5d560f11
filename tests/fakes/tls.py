"""A throw-away test certificate authority for the fake HTTPS servers.

One CA and one server certificate (``localhost`` and ``127.0.0.1``) are made
per test process and written to a temporary folder. Clients trust the CA the
standard way: ``REQUESTS_CA_BUNDLE=<ca_bundle>``.
"""
from __future__ import annotations

import atexit
import datetime as dt
import ipaddress
import shutil
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TLSMaterial:
    ca_bundle: str   # PEM of the test CA: point REQUESTS_CA_BUNDLE here
    cert_chain: str  # server certificate + CA
    key: str         # server private key

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_chain, self.key)
        return ctx


_lock = threading.Lock()
_material: "TLSMaterial | None" = None


def fake_tls() -> TLSMaterial:
    """The process-wide test CA and server certificate (made on first use)."""
    global _material
    with _lock:
        if _material is None:
            _material = _make()
        return _material


def _make() -> TLSMaterial:
    folder = Path(tempfile.mkdtemp(prefix="fake-tls-"))
    atexit.register(shutil.rmtree, folder, True)
    # Valid over a fixed, wide window: the tests freeze the clock at any date (tests/clock.py)
    # while OpenSSL checks validity against the real clock, so neither may fall outside it.
    not_before = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    not_after = dt.datetime(2099, 12, 31, tzinfo=dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Backupchecks test CA (fake)")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem = ca_cert.public_bytes(pem)
    (folder / "ca.pem").write_bytes(ca_pem)
    (folder / "server-chain.pem").write_bytes(cert.public_bytes(pem) + ca_pem)
    (folder / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return TLSMaterial(
        ca_bundle=str(folder / "ca.pem"),
        cert_chain=str(folder / "server-chain.pem"),
        key=str(folder / "server.key"),
    )
