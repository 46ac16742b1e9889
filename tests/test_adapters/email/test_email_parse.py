"""Parsing the corpus of real-world shapes: what the agent sees, what is kept, what is noted."""

from __future__ import annotations

import corpus
import pytest

from adapters.email.headers import decode_bytes, decode_header
from adapters.email.parse import parse_mail
from adapters.email.quotes import fold_quotes


def test_multipart_alternative_prefers_the_text_part():
    mail = parse_mail(corpus.alternative("<alt-1@mail.gmail.com>"))
    assert mail.message_id == "<alt-1@mail.gmail.com>"
    assert mail.subject == "订单还没到"
    assert (mail.from_name, mail.from_address) == ("张三", "zhang.san@gmail.com")
    assert mail.text.startswith("您好，\n\n我的订单 1234 还没有到。")
    assert not mail.from_html
    assert mail.attachments == [] and mail.notes == []


def test_html_only_mail_is_made_readable():
    raw = corpus.alternative().replace(b'Content-Type: text/plain; charset="UTF-8"', b"X-Gone: 1")
    # Without a usable text part the HTML one is read.
    html = parse_mail(
        corpus.crlf(
            "From: a@example.com\nSubject: h\nContent-Type: text/html; charset=utf-8\n\n"
            "<html><head><style>p{color:red}</style><script>x()</script></head><body>"
            "<p>Hello&nbsp;there,</p><ul><li>one</li><li>two</li></ul>"
            '<p>See <a href="https://shop.example/o/1">your order</a>.</p></body></html>'
        )
    )
    assert html.from_html
    assert html.visible == (
        "Hello there,\n\n- one\n- two\n\nSee your order (https://shop.example/o/1)."
    )
    assert "color" not in html.text and "x()" not in html.text
    assert parse_mail(raw).text  # still something to read


def test_gb2312_label_with_gbk_characters_and_a_split_encoded_word():
    mail = parse_mail(corpus.gb2312_foxmail())
    assert mail.subject == "关于订单１２３４的退款问题（朱镕基）"
    assert mail.from_name == "李四" and mail.from_address == "lisi@163.com"
    assert "退款什么时候到账？订单号 1234。" in mail.visible
    assert mail.notes == []


def test_big5_subject_and_body():
    mail = parse_mail(corpus.big5_outlook())
    assert mail.subject == "訂單查詢：退貨流程"
    assert mail.from_name == "王小明"
    assert "請問退貨流程是什麼？" in mail.visible


def test_raw_gbk_bytes_in_headers_and_filename():
    mail = parse_mail(corpus.raw_gbk_headers())
    assert mail.subject == "发票抬头错了"
    assert mail.visible == "请重开发票。"
    [pdf] = mail.attachments
    assert pdf.name == "发票.pdf" and pdf.data and pdf.data.startswith(b"%PDF")


def test_attachments_are_listed_with_name_type_size_and_content():
    mail = parse_mail(corpus.with_attachments())
    assert mail.visible == "The invoice and a photo of the damage."
    pdf, png = mail.attachments
    assert (pdf.name, pdf.content_type, pdf.size, pdf.data) == (
        "发票.pdf",
        "application/pdf",
        len(corpus.PDF),
        corpus.PDF,
    )
    assert (png.name, png.content_type, png.inline, png.content_id) == (
        "damage.png",
        "image/png",
        True,
        "img1@x",
    )


def test_a_forward_is_not_folded():
    mail = parse_mail(corpus.gmail_forward())
    assert not mail.folded
    assert "Order 1234: total 99.00" in mail.visible
    assert mail.visible.startswith("See below, the amount is wrong.")


def test_a_forward_as_attachment_is_an_eml_attachment():
    mail = parse_mail(corpus.forward_as_attachment())
    assert mail.visible == "Please check the attached receipt."
    [eml] = mail.attachments
    assert eml.content_type == "message/rfc822" and eml.name == "Receipt 1234.eml"
    assert b"Total: 99.00" in (eml.data or b"")


def test_gmail_reply_folds_the_quote_and_keeps_threading_headers():
    raw = corpus.gmail_reply(
        "<ours-1@shop.example>",
        ["<root@mail.example.com>", "<ours-1@shop.example>"],
        "Re: Damaged item [#0123456789]",
        "Thanks, a replacement is fine.",
    )
    mail = parse_mail(raw)
    assert mail.in_reply_to == ["<ours-1@shop.example>"]
    assert mail.references == ["<root@mail.example.com>", "<ours-1@shop.example>"]
    assert mail.visible == "Thanks, a replacement is fine."
    assert mail.folded and "We will check." in mail.text


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        (corpus.gmail_reply_zh(), "好的，谢谢！"),
        (corpus.outlook_reply_text(), "Yes, please send a new one.\n\nAnn"),
        (corpus.qq_reply_text(), "收到，谢谢。"),
        (corpus.outlook_zh_reply_text(), "好的。"),
        (corpus.bottom_posted(), "Size M, please."),
        ("Only new text.\n", "Only new text."),
        ("> all quoted\n> nothing new\n", "> all quoted\n> nothing new"),
        ("Answer one.\n> question two\nAnswer two.\n> trailing quote\n", None),
    ],
)
def test_quote_folding(text, visible):
    folded, _ = fold_quotes(text, "Re: something")
    if visible is None:  # interleaved answers keep their context
        assert folded == "Answer one.\n> question two\nAnswer two."
    else:
        assert folded == visible


def test_outlook_html_reply_is_folded():
    raw = corpus.crlf(
        "From: ann@example.com\nSubject: RE: Damaged item\nMessage-ID: <o1@x>\n"
        "Content-Type: text/html; charset=utf-8\n\n" + corpus.outlook_reply_html()
    )
    mail = parse_mail(raw)
    assert mail.visible == "Yes, please send a new one.\n\nAnn"
    assert mail.folded and "Shall we send a replacement?" in mail.text


def test_malformed_mime_is_kept_with_notes():
    mail = parse_mail(corpus.no_boundary())
    assert "Some text the client meant as the body." in mail.visible
    assert any("boundary" in note for note in mail.notes)


def test_broken_encodings_are_read_as_far_as_possible():
    mail = parse_mail(corpus.bad_base64_and_charset())
    assert mail.subject.endswith("退款") and "hello" in mail.subject
    assert any("unknown charset" in note for note in mail.notes)
    # The unknown charset's part is still read (by guessing), the broken UTF-8 one with
    # replacement characters, and the damaged attachment is listed.
    assert "退款" in mail.text
    assert "caf" in mail.text
    assert [a.name for a in mail.attachments] == ["data.bin"]


def test_a_truncated_mail_keeps_what_was_read_and_says_so():
    raw = corpus.truncated_multipart()
    mail = parse_mail(raw, truncated_from=len(raw) * 2)
    assert mail.truncated and mail.visible == "The invoice and a photo of the damage."
    assert any("only the first" in note for note in mail.notes)
    assert mail.attachments[-1].data is None


def test_a_subject_cannot_carry_a_header_line():
    mail = parse_mail(corpus.subject_injection())
    assert "\n" not in mail.subject and "\r" not in mail.subject
    assert mail.subject == "hello  Bcc: victim@example.com"


def test_mail_without_message_id_gets_a_stable_one():
    raw = corpus.plain().replace(b"Message-ID:", b"X-Old-Id:")
    first, second = parse_mail(raw), parse_mail(raw)
    assert first.message_id is None
    assert first.external_id == second.external_id and first.external_id.startswith("<sha256-")


def test_garbage_never_raises():
    for raw in (b"", b"\x00\xff" * 100, b"Subject: =?utf-8?B?####?=\r\n\r\n", b"From:\r\n\r\n"):
        mail = parse_mail(raw)
        assert isinstance(mail.text, str)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("=?GB2312?B?xOO6ww==?=", "你好"),
        ("=?gbk?Q?=C4=E3=BA=C3?=", "你好"),
        ("=?GB18030?B?xOO6ww==?=", "你好"),
        ("=?big5?B?p0Gmbg==?=", "你好"),
        ("=?utf-8?B?5L2g?= =?utf-8?B?5aW9?=", "你好"),
        ("=?utf-8?q?caf=C3=A9?= au lait", "café au lait"),
        ("plain ascii", "plain ascii"),
    ],
)
def test_header_decoding(raw, text):
    assert decode_header(raw)[0] == text


def test_unlabelled_bytes_are_guessed_gbk_before_big5():
    assert decode_bytes("中文".encode("gbk"), None, "x") == ("中文", None)
    assert decode_bytes("中文".encode(), "iso-8859-1", "x") == ("中文", None)
