"""The IMAP client's plumbing (aioimaplib): connecting with TLS, logging out, checking a
response, reading UIDs and literals out of one, folder names in modified UTF-7, and the one
append a reply's copy in Sent needs. Kept apart from the mailbox reader (imap.py), which is
about never losing or repeating a mail, so that each reads on its own.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Callable
from typing import Any

import aioimaplib

from adapters.email.config import ImapConfig


class ImapError(Exception):
    """The server refused a command, or answered something we cannot use."""


def mailbox_name(name: str) -> str:
    """A folder name as an IMAP quoted string, non-ASCII in modified UTF-7 (RFC 3501 5.1.3):
    Chinese providers' folders are called 已发送, 已删除..."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    encoded = "".join(out)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check(response: Any, what: str) -> Any:
    if response.result != "OK":
        text = b" ".join(line if isinstance(line, bytes) else b"<data>" for line in response.lines)[
            :300
        ]
        raise ImapError(f"{what} failed: {response.result} {text.decode(errors='replace')}")
    return response


def _tls_context(config: ImapConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=config.ca_file)
    if not config.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def connect(
    config: ImapConfig, on_lost: Callable[[Exception | None], None] | None = None
) -> aioimaplib.IMAP4:
    """A logged-in client. (IMAP4 with an SSL context rather than IMAP4_SSL: only IMAP4 takes
    the connection-lost callback.)"""
    client = aioimaplib.IMAP4(
        host=config.host,
        port=config.port,
        timeout=config.timeout_s,
        conn_lost_cb=on_lost,
        ssl_context=_tls_context(config) if config.tls else None,
    )
    try:
        await client.wait_hello_from_server()
        check(
            await client.login(aioimaplib.aioimaplib.quoted(config.user), config.password), "LOGIN"
        )
    except BaseException:
        _drop(client)
        raise
    return client


def _drop(client: aioimaplib.IMAP4) -> None:
    transport = getattr(client.protocol, "transport", None)
    if transport is not None:
        transport.close()


async def disconnect(client: aioimaplib.IMAP4) -> None:
    task = asyncio.current_task()
    try:
        if not (task and task.cancelling()):
            await asyncio.wait_for(client.logout(), 2.0)
    except Exception:
        pass
    finally:
        _drop(client)


async def append(config: ImapConfig, folder: str, data: bytes) -> None:
    """Append a mail to a folder (the reply's copy in Sent), flagged \\Seen."""
    client = await connect(config)
    target = mailbox_name(folder)
    try:
        response = await client.append(data, mailbox=target, flags="(\\Seen)")
        if response.result == "NO" and any(
            b"TRYCREATE" in line for line in response.lines if isinstance(line, bytes)
        ):
            # The folder does not exist yet (a new mailbox): make it, then append.
            await client.create(target)
            response = await client.append(data, mailbox=target, flags="(\\Seen)")
        check(response, f"APPEND to {folder}")
    finally:
        await disconnect(client)


def numbers(response: Any) -> list[int]:
    found: list[int] = []
    for line in response.lines[:-1]:
        if isinstance(line, bytes | bytearray):
            found.extend(int(t) for t in bytes(line).split() if t.isdigit())
    return found


def literal(response: Any) -> bytes | None:
    for line in response.lines:
        if isinstance(line, bytearray):
            return bytes(line)
    return None
