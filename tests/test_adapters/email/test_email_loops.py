"""What never becomes a customer message: auto-replies, bulk and list mail, bounces, our own
mail coming back."""

from __future__ import annotations

import corpus
import pytest

from adapters.email.loops import classify, suppresses_auto_replies
from adapters.email.parse import parse_mail

OURS = {"support@shop.example", "help@shop.example"}


def verdict(raw: bytes, accept_list_mail: bool = False):
    return classify(parse_mail(raw), OURS, accept_list_mail)


def test_customer_mail_is_routed():
    for raw in (
        corpus.plain(),
        corpus.alternative(),
        corpus.gb2312_foxmail(),
        corpus.big5_outlook(),
    ):
        assert verdict(raw).routed


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (corpus.auto_submitted("<ours@shop.example>"), "auto_reply"),
        (corpus.exchange_oof("<ours@shop.example>"), "auto_reply"),
        (corpus.x_autoreply(), "auto_reply"),
        (corpus.precedence_bulk(), "bulk"),
        (corpus.mailing_list(), "list"),
        (corpus.plain(sender="Support <support@shop.example>"), "own"),
        (corpus.plain(sender="help@shop.example"), "own"),
        (corpus.plain(headers="X-Zhongtai-Mailbox: abc/support"), "own"),
    ],
)
def test_automatic_mail_is_not_routed(raw, kind):
    result = verdict(raw)
    assert not result.routed and result.kind == kind


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        ("Precedence: junk", "bulk"),
        ("Precedence: bulk", "bulk"),
        ("Precedence: list", "list"),
        ("Precedence: JUNK", "bulk"),
        ("Precedence:  Bulk ", "bulk"),
        ("X-Precedence: junk", "bulk"),
    ],
)
def test_precedence_mail_is_never_routed(header, kind):
    # A person's mail in every other respect: only the Precedence header tells.
    assert verdict(corpus.plain()).routed
    result = verdict(corpus.plain(headers=header))
    assert not result.routed and result.kind == kind


def test_auto_replies_carry_the_mail_they_answer():
    result = verdict(corpus.auto_submitted("<ours@shop.example>"))
    assert result.original_ids == ["<ours@shop.example>"]


def test_list_mail_can_be_accepted():
    assert verdict(corpus.mailing_list(), accept_list_mail=True).routed


def test_auto_submitted_no_is_a_person():
    assert verdict(corpus.plain(headers="Auto-Submitted: no")).routed


def test_dsn_bounce_names_the_failed_mail_and_recipient():
    result = verdict(corpus.dsn_bounce("<m1.abc@shop.example>", "nobody@example.com"))
    assert result.kind == "bounce"
    assert result.original_ids == ["<m1.abc@shop.example>"]
    assert "nobody@example.com" in result.detail and "5.1.1" in result.detail
    assert "User" in result.detail  # the diagnostic, for the agent


def test_delayed_dsn_is_not_a_failure():
    result = verdict(corpus.dsn_delayed("<m1.abc@shop.example>"))
    assert result.kind == "delayed" and not result.routed


def test_plain_text_bounce_is_recognised():
    result = verdict(corpus.qmail_bounce("<m2.abc@shop.example>", "gone@example.net"))
    assert result.kind == "bounce"
    assert "<m2.abc@shop.example>" in result.original_ids


def test_x_auto_response_suppress_asks_for_no_auto_replies():
    assert suppresses_auto_replies(
        parse_mail(corpus.plain(headers="X-Auto-Response-Suppress: OOF, AutoReply"))
    )
    assert not suppresses_auto_replies(parse_mail(corpus.plain()))
