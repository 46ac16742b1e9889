"""Replies as mail, and sending them over SMTP: headers, parts, TLS, AUTH, retries."""

from __future__ import annotations

import pytest
from helpers import wait_until
from mailserver import SmtpSink, make_certificate

from adapters.contract import DeliveryError
from adapters.email.config import MailboxConfig, SmtpConfig
from adapters.email.smtp_out import Reply, build_message, send_message
from adapters.email.threading import reply_subject


def mailbox(**smtp) -> MailboxConfig:
    return MailboxConfig(
        name="support",
        address="support@shop.example",
        display_name="Shop Support",
        smtp=SmtpConfig(host="127.0.0.1", **({"port": 25, "tls": False} | smtp)),
    )


def reply(**fields) -> Reply:
    values = {
        "to_address": "ann@example.com",
        "to_name": "Ann Lee",
        "subject": "Re: Damaged item [#0123456789]",
        "message_id": "<m1.abc@shop.example>",
        "in_reply_to": "<c2@mail.example.com>",
        "references": ["<c1@mail.example.com>", "<m0.abc@shop.example>", "<c2@mail.example.com>"],
        "text": "Hello Ann,\n\nA replacement ships today: https://shop.example/t/1\n\n<b>Alice</b>",
        "agent_name": "Alice",
    }
    return Reply(**(values | fields))


def test_reply_headers_and_parts():
    msg = build_message(mailbox(), reply(), "abc")
    assert msg["From"] == "Alice via Shop Support <support@shop.example>"
    assert msg["To"] == "Ann Lee <ann@example.com>"
    assert msg["Subject"] == "Re: Damaged item [#0123456789]"
    assert msg["Message-ID"] == "<m1.abc@shop.example>"
    assert msg["In-Reply-To"] == "<c2@mail.example.com>"
    assert msg["References"].split() == [
        "<c1@mail.example.com>",
        "<m0.abc@shop.example>",
        "<c2@mail.example.com>",
    ]
    assert msg["Auto-Submitted"] is None
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert text.startswith("Hello Ann,\n\nA replacement ships today")
    assert "&lt;b&gt;Alice&lt;/b&gt;" in html and "<b>" not in html
    assert '<a href="https://shop.example/t/1">' in html


def test_automatic_messages_say_so():
    msg = build_message(mailbox(), reply(agent_name=None, automatic=True), "abc")
    assert msg["From"] == "Shop Support <support@shop.example>"
    assert msg["Auto-Submitted"] == "auto-replied"


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "Re: hi\r\nBcc: everyone@example.com"},
        {"subject": "Re: hi\nX-Evil: 1"},
        {"agent_name": "Alice\r\nBcc: x@example.com"},
        {"to_name": "Ann\nBcc: x@example.com"},
        {"to_address": "ann@example.com\r\nBcc: x@example.com"},
    ],
)
def test_header_injection_is_refused(fields):
    with pytest.raises(DeliveryError) as error:
        build_message(mailbox(), reply(**fields), "abc")
    assert error.value.code == "bad_header"
    assert "line break" in error.value.detail


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Damaged item", "Re: Damaged item [#0123456789]"),
        ("Re: Damaged item", "Re: Damaged item [#0123456789]"),
        ("RE: Re: re: Damaged item", "Re: Damaged item [#0123456789]"),
        ("Re: Damaged item [#0123456789]", "Re: Damaged item [#0123456789]"),
        ("回复：退款", "Re: 退款 [#0123456789]"),
        ("Re[2]: AW: Rechnung", "Re: Rechnung [#0123456789]"),
        ("", "Re: (no subject) [#0123456789]"),
    ],
)
def test_reply_subject(subject, expected):
    assert reply_subject(subject, "0123456789") == expected


async def test_sent_over_plain_smtp(smtp_sink):
    box = mailbox(port=smtp_sink.port)
    msg = build_message(box, reply(), "abc")
    await send_message(box.smtp, msg, box.address, ["ann@example.com"], 1, 0)
    [got] = smtp_sink.received
    assert got.mail_from == "support@shop.example" and got.rcpt_tos == ["ann@example.com"]
    assert got.message["Message-ID"] == "<m1.abc@shop.example>"


async def test_transient_failures_are_retried(smtp_sink):
    smtp_sink.fail_next("451 4.3.0 try again later", times=2)
    box = mailbox(port=smtp_sink.port)
    await send_message(
        box.smtp, build_message(box, reply(), "abc"), box.address, ["a@b.cd"], 3, 0.01
    )
    assert smtp_sink.count() == 1


async def test_permanent_failures_are_not_retried(smtp_sink):
    smtp_sink.fail_next("550 5.1.1 no such user", times=1)
    box = mailbox(port=smtp_sink.port)
    with pytest.raises(DeliveryError) as error:
        await send_message(
            box.smtp, build_message(box, reply(), "abc"), box.address, ["a@b.cd"], 3, 0.01
        )
    assert error.value.code == "smtp_550" and "no such user" in error.value.detail
    assert not error.value.retryable
    assert smtp_sink.count() == 0 and smtp_sink.failures == []


async def test_an_unreachable_server_is_a_retryable_error():
    from helpers import free_port

    box = mailbox(port=free_port(), timeout_s=2)
    with pytest.raises(DeliveryError) as error:
        await send_message(
            box.smtp, build_message(box, reply(), "abc"), box.address, ["a@b.cd"], 2, 0.01
        )
    assert error.value.code == "smtp_unavailable" and error.value.retryable


async def test_starttls_and_auth(tmp_path):
    certificate = make_certificate(tmp_path)
    sink = SmtpSink(certificate=certificate, starttls=True, login=("support", "pw")).start()
    try:
        box = mailbox(
            port=sink.port,
            starttls="required",
            user="support",
            password="pw",
            ca_file=str(certificate[0]),
        )
        await send_message(
            box.smtp, build_message(box, reply(), "abc"), box.address, ["a@b.cd"], 1, 0
        )
        await wait_until(lambda: sink.count() == 1)
        assert sink.logins == ["support"]

        wrong = mailbox(
            port=sink.port,
            starttls="required",
            user="support",
            password="nope",
            ca_file=str(certificate[0]),
        )
        with pytest.raises(DeliveryError) as error:
            await send_message(
                wrong.smtp, build_message(wrong, reply(), "abc"), box.address, ["a@b.cd"], 3, 0
            )
        assert error.value.code == "smtp_535" and "login" in error.value.detail

        untrusted = mailbox(port=sink.port, starttls="required", user="support", password="pw")
        with pytest.raises(DeliveryError) as error:
            await send_message(
                untrusted.smtp,
                build_message(untrusted, reply(), "abc"),
                box.address,
                ["a@b.cd"],
                1,
                0,
            )
        assert error.value.code == "smtp_tls"
    finally:
        sink.stop()


async def test_implicit_tls(tmp_path):
    certificate = make_certificate(tmp_path)
    sink = SmtpSink(certificate=certificate, implicit_tls=True).start()
    try:
        box = mailbox(port=sink.port, tls=True, ca_file=str(certificate[0]))
        await send_message(
            box.smtp, build_message(box, reply(), "abc"), box.address, ["a@b.cd"], 1, 0
        )
        assert sink.count() == 1
    finally:
        sink.stop()
