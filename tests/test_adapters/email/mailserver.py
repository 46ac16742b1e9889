"""An SMTP server for the tests (aiosmtpd's Controller, in its own thread, on a free port)
that keeps every mail it accepts and can be told to refuse the next ones, the way real
servers do (451 try later, 550 no such user). Optionally with STARTTLS or implicit TLS, and
AUTH, using a self-signed certificate made here."""

from __future__ import annotations

import dataclasses
import datetime
import email
import ipaddress
import ssl
import threading
from email import policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from helpers import free_port


@dataclasses.dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        with self.sink.lock:
            if self.sink.failures:
                return self.sink.failures.pop(0)
            self.sink.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 2.0.0 OK"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class SmtpSink:
    def __init__(
        self,
        *,
        certificate: tuple[Path, Path] | None = None,
        starttls: bool = False,
        implicit_tls: bool = False,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.logins: list[str] = []
        kwargs: dict = {}
        ssl_context = None
        if certificate is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*map(str, certificate))
            if implicit_tls:
                ssl_context = context
            if starttls:
                kwargs["tls_context"] = context
                kwargs["require_starttls"] = True
        if login is not None:
            kwargs["authenticator"] = self._authenticator(login)
            kwargs["auth_required"] = True
        self.controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=ssl_context,
            **kwargs,
        )

    def _authenticator(self, login: tuple[str, str]):  # type: ignore[no-untyped-def]
        def check(server, session, envelope, mechanism, auth_data) -> AuthResult:  # type: ignore[no-untyped-def]
            if isinstance(auth_data, LoginPassword):
                user, password = auth_data.login.decode(), auth_data.password.decode()
                self.logins.append(user)
                # handled=False: aiosmtpd then answers 535 itself.
                return AuthResult(success=(user, password) == login, handled=False)
            return AuthResult(success=False, handled=False)

        return check

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def fail_next(self, reply: str, times: int = 1) -> None:
        """Answer the next DATA commands with this reply, e.g. "451 4.3.0 try again later"."""
        with self.lock:
            self.failures.extend([reply] * times)

    def count(self) -> int:
        with self.lock:
            return len(self.received)
