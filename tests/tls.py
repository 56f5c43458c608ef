"""TLS parts for tests: self-signed certificates made at test time, TLS handshakes from Python, and what SIPp needs
to speak SIP over TLS itself (tests/harness.py ``sipp(..., tls=...)``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import os
import socket
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests import harness


@dataclasses.dataclass(frozen=True)
class CertificateFiles:
    cert: Path
    key: Path

    def der(self) -> bytes:
        """The certificate as DER: what a TLS peer presents."""
        return x509.load_pem_x509_certificate(self.cert.read_bytes()).public_bytes(serialization.Encoding.DER)


def self_signed_certificate(directory: Path, name: str = "sip-tls", host: str = "127.0.0.1") -> CertificateFiles:
    """A fresh P-256 key and a self-signed certificate for ``host`` (IP SAN), valid a day; the key file 0600."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"callcenter test {name}")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.unlink(missing_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return CertificateFiles(cert_path, key_path)


def sipp_tls(directory: Path, trusted: CertificateFiles) -> harness.SippTls:
    """SIPp over TLS trusting only ``trusted``: SIPp drops a connection whose server certificate it does not chain
    to it. SIPp needs a certificate of its own too, made here, which Asterisk never asks for."""
    own = self_signed_certificate(directory, name="sipp-device")
    return harness.SippTls(cert=own.cert, key=own.key, trusted=trusted.cert)


def client_context(trusted: CertificateFiles) -> ssl.SSLContext:
    """A TLS client trusting only ``trusted``, checking the server's address against it."""
    context = ssl.create_default_context(cafile=str(trusted.cert))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def handshake(host: str, port: int, context: ssl.SSLContext, timeout: float = 5.0) -> tuple[str, bytes]:
    """One TLS handshake with ``host:port``: (the protocol version agreed, the server's certificate as DER).
    Raises ssl.SSLError when the server refuses what ``context`` offers (or is not trusted by it)."""
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        return str(tls.version()), tls.getpeercert(binary_form=True) or b""
