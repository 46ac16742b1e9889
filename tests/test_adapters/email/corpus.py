"""Mail in the shapes real clients and servers produce, built here rather than stored, so
each shape is readable next to what it tests: Gmail, Outlook, Foxmail and QQ Mail headers
and quoting, GB2312/GBK/Big5 encodings, attachments, forwards, auto-replies, delivery status
notifications, and broken mail.

Every builder returns the raw bytes (CRLF line ends) as a mail server would store them.
"""

from __future__ import annotations

import base64
import quopri
import uuid


def crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8", "surrogateescape")


def b64(data: bytes, width: int = 76) -> str:
    encoded = base64.b64encode(data).decode()
    return "\n".join(encoded[i : i + width] for i in range(0, len(encoded), width))


def word(text: str, charset: str, encoding: str = "B") -> str:
    """An RFC 2047 encoded word."""
    data = text.encode(charset)
    if encoding == "B":
        return f"=?{charset}?B?{base64.b64encode(data).decode()}?="
    q = quopri.encodestring(data, header=True).decode().replace("=\n", "")
    return f"=?{charset}?Q?{q}?="


def new_id(domain: str = "mail.example.com") -> str:
    return f"<{uuid.uuid4().hex}@{domain}>"


def plain(
    sender: str = "Ann Lee <ann@example.com>",
    to: str = "support@shop.example",
    subject: str = "Where is my parcel?",
    body: str = "Hello, my order 1234 has not arrived.",
    message_id: str | None = None,
    headers: str = "",
) -> bytes:
    message_id = message_id or new_id()
    extra = headers.strip("\n") + "\n" if headers else ""
    return crlf(
        f"From: {sender}\nTo: {to}\nSubject: {subject}\nDate: Tue, 02 Jan 2024 10:00:00 +0800\n"
        f"Message-ID: {message_id}\n{extra}MIME-Version: 1.0\n"
        f'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: 8bit\n\n{body}\n'
    )


def alternative(message_id: str | None = None) -> bytes:
    """Gmail's usual shape: multipart/alternative, both parts in UTF-8, the text part
    quoted-printable and the HTML base64."""
    text = "您好，\n\n我的订单 1234 还没有到。\n\n谢谢\n张三\n"
    html = (
        '<div dir="ltr"><div>您好，</div><div><br></div><div>我的订单 <b>1234</b> 还没有到。'
        "</div><div><br></div><div>谢谢</div><div>张三</div></div>\n"
    )
    qp = quopri.encodestring(text.encode("utf-8")).decode()
    return crlf(
        f"""MIME-Version: 1.0
Date: Tue, 2 Jan 2024 10:00:00 +0800
Message-ID: {message_id or new_id("mail.gmail.com")}
Subject: {word("订单还没到", "UTF-8")}
From: {word("张三", "UTF-8")} <zhang.san@gmail.com>
To: support@shop.example
Content-Type: multipart/alternative; boundary="000000000000a1b2c3"

--000000000000a1b2c3
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

{qp}
--000000000000a1b2c3
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: base64

{b64(html.encode("utf-8"))}
--000000000000a1b2c3--
"""
    )


def gb2312_foxmail() -> bytes:
    """Foxmail / 163 Mail: GB2312 labels (holding GBK characters: 镕 is not in GB2312), the
    subject an encoded word split in the middle of a character, the body base64."""
    subject = "关于订单１２３４的退款问题（朱镕基）"
    data = subject.encode("gbk")
    cut = 7  # inside the fourth character
    first = base64.b64encode(data[:cut]).decode()
    second = base64.b64encode(data[cut:]).decode()
    body = "你好：\n\n退款什么时候到账？订单号 1234。\n\n李四\n".encode("gbk")
    return crlf(
        f"""Date: Tue, 2 Jan 2024 10:00:00 +0800
From: "{word("李四", "gb2312")}" <lisi@163.com>
To: "support" <support@shop.example>
Subject: =?gb2312?B?{first}?=
 =?gb2312?B?{second}?=
Message-ID: <202401021000001234567@163.com>
X-Mailer: Foxmail 7.2.25.375[cn]
Mime-Version: 1.0
Content-Type: text/plain;
\tcharset="gb2312"
Content-Transfer-Encoding: base64

{b64(body)}
"""
    )


def big5_outlook() -> bytes:
    """Outlook in Taiwan: Big5 subject (cp950 characters), body quoted-printable Big5."""
    subject = "訂單查詢：退貨流程"
    body = "您好，\n\n請問退貨流程是什麼？\n\n王小明\n"
    qp = quopri.encodestring(body.encode("cp950")).decode()
    name = base64.b64encode("王小明".encode("cp950")).decode()
    return crlf(
        f"""From: =?big5?B?{name}?= <ming@example.com.tw>
To: <support@shop.example>
Subject: {word(subject, "big5")}
Date: Tue, 2 Jan 2024 10:00:00 +0800
Message-ID: <000001da3d5e$1a2b3c40$4e5f6a70$@example.com.tw>
MIME-Version: 1.0
Content-Type: text/plain; charset="big5"
Content-Transfer-Encoding: quoted-printable
X-Mailer: Microsoft Outlook 16.0

{qp}
"""
    )


def raw_gbk_headers() -> bytes:
    """A client that writes GBK bytes straight into the headers and filename, no encoding
    at all (old Chinese webmail, some phones)."""
    subject = "发票抬头错了".encode("gbk")
    name = "发票.pdf".encode("gbk")
    text = "请重开发票。".encode("gbk")
    return (
        b"From: wang@example.cn\r\nTo: support@shop.example\r\nSubject: "
        + subject
        + b"\r\nMessage-ID: <raw-gbk-1@example.cn>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain; charset=gbk\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + text
        + b"\r\n--b1\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="' + name + b'"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n"
    )


PDF = b"%PDF-1.4\n" + b"0" * 2000 + b"\n%%EOF\n"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def with_attachments(big: int = 0, message_id: str | None = None) -> bytes:
    """multipart/mixed: text, a PDF with an RFC 2231 Chinese filename, an inline image, and
    (big > 0) a large file."""
    parts = [
        "Content-Type: text/plain; charset=utf-8\n\nThe invoice and a photo of the damage.\n",
        'Content-Type: application/pdf; name="=?UTF-8?B?5Y+R56WoLnBkZg==?="\n'
        "Content-Disposition: attachment; filename*=UTF-8''%E5%8F%91%E7%A5%A8.pdf\n"
        f"Content-Transfer-Encoding: base64\n\n{b64(PDF)}\n",
        'Content-Type: image/png; name="damage.png"\nContent-Disposition: inline; '
        f'filename="damage.png"\nContent-ID: <img1@x>\nContent-Transfer-Encoding: base64\n\n'
        f"{b64(PNG)}\n",
    ]
    if big:
        parts.append(
            'Content-Type: application/zip; name="logs.zip"\n'
            'Content-Disposition: attachment; filename="logs.zip"\n'
            f"Content-Transfer-Encoding: base64\n\n{b64(b'PK' + b'x' * big)}\n"
        )
    body = "".join(f"--mixed42\n{p}" for p in parts) + "--mixed42--\n"
    return crlf(
        f"From: Ann Lee <ann@example.com>\nTo: support@shop.example\n"
        f"Subject: Damaged item\nMessage-ID: {message_id or new_id()}\nMIME-Version: 1.0\n"
        f'Content-Type: multipart/mixed; boundary="mixed42"\n\n{body}'
    )


def gmail_forward() -> bytes:
    """Gmail's inline forward: the forwarded mail is what the customer wants us to see."""
    return plain(
        subject="Fwd: Your order confirmation",
        body=(
            "See below, the amount is wrong.\n\n"
            "---------- Forwarded message ---------\n"
            "From: Shop <orders@shop.example>\n"
            "Date: Mon, Jan 1, 2024 at 9:00 AM\n"
            "Subject: Your order confirmation\n"
            "To: <ann@example.com>\n\n"
            "Order 1234: total 99.00\n"
        ),
    )


def forward_as_attachment() -> bytes:
    """Outlook's "forward as attachment": a message/rfc822 part."""
    inner = (
        "From: Shop <orders@shop.example>\nTo: ann@example.com\nSubject: Receipt 1234\n"
        "Message-ID: <receipt-1234@shop.example>\n\nTotal: 99.00\n"
    )
    return crlf(
        f"""From: Ann Lee <ann@example.com>
To: support@shop.example
Subject: FW: Receipt 1234
Message-ID: {new_id()}
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fw"

--fw
Content-Type: text/plain; charset=us-ascii

Please check the attached receipt.
--fw
Content-Type: message/rfc822

{inner}
--fw--
"""
    )


def gmail_reply(parent_id: str, references: list[str], subject: str, body: str) -> bytes:
    """Gmail's reply: In-Reply-To, References, the attribution and "> " quotes in the text
    part, gmail_quote in the HTML."""
    quoted = "> Thank you for your mail.\n> We will check.\n"
    attribution = "On Tue, Jan 2, 2024 at 11:00 AM Shop Support <support@shop.example>\nwrote:\n"
    text = f"{body}\n\n{attribution}\n{quoted}"
    html = (
        f'<div dir="ltr">{body}</div><br><div class="gmail_quote"><div dir="ltr" '
        f'class="gmail_attr">On Tue, Jan 2, 2024 at 11:00 AM Shop Support &lt;'
        f'support@shop.example&gt; wrote:<br></div><blockquote class="gmail_quote">'
        f"Thank you for your mail.<br>We will check.</blockquote></div>"
    )
    return crlf(
        f"""MIME-Version: 1.0
References: {" ".join(references)}
In-Reply-To: {parent_id}
From: Ann Lee <ann@example.com>
Date: Tue, 2 Jan 2024 12:00:00 +0800
Message-ID: {new_id("mail.gmail.com")}
Subject: {subject}
To: Shop Support <support@shop.example>
Content-Type: multipart/alternative; boundary="0000000000001234"

--0000000000001234
Content-Type: text/plain; charset="UTF-8"

{text}
--0000000000001234
Content-Type: text/html; charset="UTF-8"

{html}
--0000000000001234--
"""
    )


def gmail_reply_zh() -> str:
    """The text part of Chinese Gmail's reply."""
    return (
        "好的，谢谢！\n\n"
        "Shop Support <support@shop.example> 于2024年1月2日周二 11:00写道：\n\n"
        "> 您的退款已处理。\n>\n> 客服\n"
    )


def outlook_reply_text() -> str:
    return (
        "Yes, please send a new one.\n\nAnn\n\n"
        "________________________________\n"
        "From: Shop Support <support@shop.example>\n"
        "Sent: Tuesday, January 2, 2024 11:00 AM\n"
        "To: Ann Lee <ann@example.com>\n"
        "Subject: RE: Damaged item\n\n"
        "Shall we send a replacement?\n"
    )


def outlook_reply_html() -> str:
    return (
        "<html><head><style>p{margin:0}</style></head><body>"
        '<div class="WordSection1"><p class="MsoNormal">Yes, please send a new one.</p>'
        '<p class="MsoNormal">Ann</p></div>'
        '<hr style="display:inline-block;width:98%" tabindex="-1">'
        '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri"><b>From:</b> Shop Support '
        "&lt;support@shop.example&gt;<br><b>Sent:</b> Tuesday, January 2, 2024 11:00 AM<br>"
        "<b>To:</b> Ann Lee<br><b>Subject:</b> RE: Damaged item</font><div>&nbsp;</div></div>"
        "<div>Shall we send a replacement?</div></body></html>"
    )


def qq_reply_text() -> str:
    return (
        "收到，谢谢。\n\n"
        "------------------ 原始邮件 ------------------\n"
        '发件人: "客服"<support@shop.example>;\n'
        "发送时间: 2024年1月2日(星期二) 上午11:00\n"
        '收件人: "王五"<wangwu@qq.com>;\n'
        "主题: 回复：发票\n\n"
        "发票已重新开具。\n"
    )


def outlook_zh_reply_text() -> str:
    return (
        "好的。\n\n"
        "发件人: 客服 <support@shop.example>\n"
        "发送时间: 2024年1月2日 11:00\n"
        "收件人: 赵六 <zhao@example.cn>\n"
        "主题: 答复: 退款\n\n"
        "已退款。\n"
    )


def bottom_posted() -> str:
    return (
        "On Tue, Jan 2, 2024 at 11:00 AM Shop <support@shop.example> wrote:\n"
        "> Which size do you need?\n\nSize M, please.\n"
    )


# Automatic mail.


def auto_submitted(parent_id: str) -> bytes:
    return plain(
        sender="Ann Lee <ann@example.com>",
        subject="Auto: Re: Damaged item",
        body="I am out of the office until Monday.",
        headers=f"Auto-Submitted: auto-replied\nIn-Reply-To: {parent_id}",
    )


def exchange_oof(parent_id: str) -> bytes:
    """Exchange's out-of-office: no Auto-Submitted, but these."""
    return plain(
        subject="Automatic reply: Damaged item",
        body="I am on leave.",
        headers=(
            f"In-Reply-To: {parent_id}\nX-Auto-Response-Suppress: All\n"
            "X-MS-Exchange-Generated-Message-Source: Mailbox Rules Agent"
        ),
    )


def x_autoreply() -> bytes:
    return plain(subject="Re: hello", body="Thanks, we got it.", headers="X-Autoreply: yes")


def precedence_bulk() -> bytes:
    return plain(
        sender="News <news@shop-news.example>",
        subject="Our January deals",
        body="Big sale!",
        headers="Precedence: bulk\nList-Unsubscribe: <mailto:unsub@shop-news.example>",
    )


def mailing_list() -> bytes:
    return plain(
        sender="Dev <dev@lists.example>",
        subject="[dev] release",
        headers="List-Id: <dev.lists.example>\nPrecedence: list",
    )


def dsn_bounce(original_id: str, recipient: str, sender: str = "support@shop.example") -> bytes:
    """Postfix's RFC 3464 delivery status notification, returning the headers only."""
    return crlf(
        f"""Return-Path: <>
From: MAILER-DAEMON@mx.shop.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {sender}
Auto-Submitted: auto-replied
Message-ID: <20240102110500.ABC123@mx.shop.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="ABC123.1704164700/mx.shop.example"

--ABC123.1704164700/mx.shop.example
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.shop.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{recipient}>: host mx.example.com[192.0.2.1] said: 550 5.1.1 <{recipient}>:
    Recipient address rejected: User unknown in virtual mailbox table

--ABC123.1704164700/mx.shop.example
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.shop.example
X-Postfix-Queue-ID: ABC123
Arrival-Date: Tue,  2 Jan 2024 11:05:00 +0800 (CST)

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.com
Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User
    unknown in virtual mailbox table

--ABC123.1704164700/mx.shop.example
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Alice via Support <{sender}>
To: {recipient}
Subject: Re: Damaged item
Message-ID: {original_id}

--ABC123.1704164700/mx.shop.example--
"""
    )


def dsn_delayed(original_id: str) -> bytes:
    raw = dsn_bounce(original_id, "ann@example.com").decode()
    return crlf(
        raw.replace("Action: failed", "Action: delayed").replace("Status: 5.1.1", "Status: 4.4.1")
    )


def qmail_bounce(original_id: str, recipient: str) -> bytes:
    """qmail's plain-text bounce: no report, the original mail pasted below."""
    return crlf(
        f"""Return-Path: <>
From: MAILER-DAEMON@mail.example.net
To: support@shop.example
Subject: failure notice
Message-ID: {new_id("mail.example.net")}

Hi. This is the qmail-send program at mail.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{recipient}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <support@shop.example>
From: Alice via Support <support@shop.example>
To: {recipient}
Subject: Re: Where is my parcel?
Message-ID: {original_id}

It ships today.
"""
    )


# Broken mail.


def no_boundary() -> bytes:
    return crlf(
        "From: ann@example.com\nTo: support@shop.example\nSubject: broken\n"
        f"Message-ID: {new_id()}\nMIME-Version: 1.0\nContent-Type: multipart/mixed\n\n"
        "Some text the client meant as the body.\n"
    )


def bad_base64_and_charset() -> bytes:
    text = "退款".encode("gbk")
    return crlf(
        f"""From: ann@example.com
To: support@shop.example
Subject: =?x-unknown-charset?B?aGVsbG8=?= {word("退款", "gbk")}
Message-ID: {new_id()}
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="q"

--q
Content-Type: text/plain; charset="x-mac-klingon"
Content-Transfer-Encoding: base64

{base64.b64encode(text).decode()}
--q
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: 8bit

caf\udce9 au lait \udcff\udcfe
--q
Content-Type: application/octet-stream; name="data.bin"
Content-Disposition: attachment; filename="data.bin"
Content-Transfer-Encoding: base64

AAEC!!!AwQF*
--q--
"""
    )


def truncated_multipart() -> bytes:
    raw = with_attachments(big=200_000)
    return raw[: len(raw) // 2]


def subject_injection() -> bytes:
    """A subject whose encoded word decodes to a line break and a header."""
    return plain(subject="=?utf-8?q?hello=0D=0ABcc:_victim@example.com?=")
