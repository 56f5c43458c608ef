"""TLS parts for tests: self-signed certificates made at test time, and a relay that carries SIPp's SIP over TLS.

Debian 12's SIPp (sip-tester 3.6) is built without TLS, so SIPp speaks SIP over TCP to :class:`TlsRelay` on
loopback, which opens a real TLS connection to Asterisk's TLS transport for each of SIPp's connections, checking
Asterisk's certificate against the one the test made. Asterisk sees a TLS client; the SIP on it is SIPp's, byte for
byte (its Via names TCP, SIPp's own transport: Asterisk answers on the connection a request came on, whatever Via
says, and rewrites the contact to that TLS connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import ipaddress
import os
import socket
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.harness import free_tcp_port


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


class TlsRelay:
    """SIPp's TCP connections on loopback, each carried on to ``target`` over TLS (see the module's docstring)."""

    def __init__(self, target_host: str, target_port: int, context: ssl.SSLContext) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.context = context
        self.port = free_tcp_port()
        self.handshakes = 0  # TLS connections opened to the target, read on the relay's loop
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()  # both ends of every carried connection

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> TlsRelay:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", self.port), self._loop).result(10)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _close(self) -> None:
        """Stop listening and close the connections still carried: their pumps see the end and finish, so nothing
        is left pending on the loop."""
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.transport.abort()  # at once: a TLS close would wait for the peer's close_notify
        carried = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        if carried:
            await asyncio.wait(carried, timeout=5)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.wait_for(asyncio.open_connection(
                self.target_host, self.target_port, ssl=self.context, server_hostname=self.target_host), 10)
        except (OSError, TimeoutError):
            client_writer.close()
            return
        self.handshakes += 1
        self._writers.update((client_writer, server_writer))
        await asyncio.gather(self._pump(client_reader, server_writer), self._pump(server_reader, client_writer),
                             return_exceptions=True)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()
