"""The [email] table: decoded strictly, located errors, passwords from the environment."""

from __future__ import annotations

import pytest
from harness import make_config

from adapters.email.config import EmailConfig, apply_environment, env_name
from gateway.config import ConfigError

MAILBOX = {
    "name": "support",
    "address": "Support@Shop.example",
    "imap": {"host": "imap.example.com", "user": "support", "password": "x", "folder": "INBOX"},
    "smtp": {"host": "smtp.example.com", "port": 587, "tls": False, "user": "support"},
}


def config(**email):
    return make_config("t", email=email, webchat=None)


def test_the_interfaces_shape_decodes_with_defaults():
    parsed = config(mailboxes=[MAILBOX]).adapters["email"]
    assert isinstance(parsed, EmailConfig)
    [mailbox] = parsed.mailboxes
    assert mailbox.address == "support@shop.example"  # normalised
    assert mailbox.imap is not None and mailbox.imap.port == 993 and mailbox.imap.tls
    assert mailbox.smtp is not None and mailbox.smtp.starttls == "auto"
    assert parsed.reopen_within_s == 7 * 86400 and parsed.smtp_in is None


@pytest.mark.parametrize(
    ("email", "where"),
    [
        ({"mailboxes": [MAILBOX | {"imap": MAILBOX["imap"] | {"prot": 1}}]}, "prot"),
        ({"mailboxes": [MAILBOX | {"address": "not-an-address"}]}, "address"),
        ({"mailboxes": [MAILBOX, MAILBOX]}, "duplicate mailbox name"),
        ({"mailboxes": [MAILBOX | {"name": "has space"}]}, "name"),
        ({"mailboxes": [MAILBOX | {"poll_s": 0}]}, "poll_s"),
        ({"mailboxes": [MAILBOX], "smtp_in": {"default_mailbox": "nope"}}, "default_mailbox"),
        ({"mailboxes": [MAILBOX], "smtp_in": {"allowed_networks": ["10.0.0.0/33"]}}, "10.0.0.0/33"),
        ({"mailboxes": [MAILBOX | {"imap": None, "sent_folder": "Sent"}]}, "sent_folder"),
        ({"mailboxs": []}, "mailboxs"),
    ],
)
def test_bad_keys_are_reported_with_their_place(email, where):
    with pytest.raises(ConfigError) as error:
        config(**email)
    # "<test>: [email.mailboxes[0].imap] prot: ...", or for checks across keys of the
    # table, "<test>: email: smtp_in: ...".
    assert str(error.value).startswith(("<test>: [email", "<test>: email"))
    assert where in str(error.value)


def test_passwords_come_from_the_environment():
    parsed = config(mailboxes=[MAILBOX | {"name": "after-sales.cn"}]).adapters["email"]
    env = {
        env_name("after-sales.cn", "IMAP"): "imap-secret",
        env_name("after-sales.cn", "SMTP"): "smtp-secret",
    }
    assert list(env) == [
        "ZHONGTAI_EMAIL_AFTER_SALES_CN_IMAP_PASSWORD",
        "ZHONGTAI_EMAIL_AFTER_SALES_CN_SMTP_PASSWORD",
    ]
    apply_environment(parsed, env)
    [mailbox] = parsed.mailboxes
    assert mailbox.imap.password == "imap-secret" and mailbox.smtp.password == "smtp-secret"
    # Set but empty is ignored.
    apply_environment(parsed, {env_name("after-sales.cn", "IMAP"): ""})
    assert mailbox.imap.password == "imap-secret"
