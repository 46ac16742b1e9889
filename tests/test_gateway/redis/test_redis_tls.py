"""rediss://: the gateway on a TLS-only redis-server whose certificate it verifies against the
test's own CA, routing a conversation end to end (the multiplexed connection and the pool
both over TLS)."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from harness import accept_offer, agent, agent_client, customer, make_config, running
from helpers import free_port, wait_until

from gateway.redis.embedded import find_redis_server


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 that it signed: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("zhongtai test CA"))
        .issuer_name(_name("zhongtai test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.crt", directory / "redis.crt", directory / "redis.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, paths[2])
    return paths


@pytest_asyncio.fixture
async def tls_redis_url(tmp_path: Path) -> AsyncIterator[str]:
    binary = find_redis_server()
    if binary is None:
        pytest.skip("redis-server not found: apt-get install redis-server")
    ca, cert, key = make_certificates(tmp_path)
    port = free_port()
    log = tmp_path / "redis.log"
    process = subprocess.Popen(
        [
            binary,
            "--port", "0",
            "--tls-port", str(port),
            "--bind", "127.0.0.1",
            "--tls-cert-file", str(cert),
            "--tls-key-file", str(key),
            "--tls-ca-cert-file", str(ca),
            "--tls-auth-clients", "no",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(tmp_path),
            "--logfile", str(log),
        ],
    )  # fmt: skip
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={quote(str(ca))}"

    async def up() -> str | bool:
        if process.poll() is not None:
            return "exited"
        return await _answers(url)

    try:
        if await wait_until(up, timeout=15, message="TLS redis-server") == "exited":
            told = log.read_text()[-300:] if log.exists() else ""
            pytest.skip(f"this redis-server cannot serve TLS (Debian's redis-server can): {told}")
        yield url
    finally:
        process.terminate()
        process.wait(10)


async def _answers(url: str) -> bool:
    client = aioredis.Redis.from_url(url)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


async def test_the_gateway_routes_over_tls_and_verifies_the_server(tenant, tls_redis_url):
    # A client that does not trust the test's CA is refused.
    untrusting = tls_redis_url.split("?", 1)[0]
    assert not await _answers(untrusting)

    config = make_config(tenant, agents=[agent("alice")])
    async with (
        running(config, tls_redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as visitor,
    ):
        await visitor.send(type="message", text="hello over TLS")
        conversation = await accept_offer(alice)
        await alice.send(
            type="reply", conversation_id=conversation, text="secured", client_msg_id="r1"
        )
        await alice.expect("reply_ack", client_msg_id="r1")
        reply = await visitor.expect("message")
        while reply["message"]["text"] != "secured":
            reply = await visitor.expect("message")
