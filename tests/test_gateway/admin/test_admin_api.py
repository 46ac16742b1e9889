"""The admin API on the admin port: the bearer token, what supervisors read about queues,
agents and conversations, and what their actions do to agents' and customers' sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from harness import (
    RunningGateway,
    accept_offer,
    agent,
    agent_client,
    customer,
    make_config,
    running,
)
from helpers import wait_until

TOKEN = "secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Reply:
    def __init__(self, status: int, body: Any, headers: Any) -> None:
        self.status, self.body, self.headers = status, body, headers


class Admin:
    """The admin API of one gateway, called the way a dashboard would."""

    def __init__(self, http: aiohttp.ClientSession, gw: RunningGateway) -> None:
        self.http, self.gw = http, gw

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        url = self.gw.admin_base + path
        headers = AUTH if headers is None else headers
        async with self.http.request(method, url, json=body, data=data, headers=headers) as r:
            payload = (
                await r.json(content_type=None) if r.content_type == "application/json" else None
            )
            return Reply(r.status, payload, r.headers)

    async def get(self, path: str) -> Any:
        reply = await self.call("GET", path)
        assert reply.status == 200, reply.body
        return reply.body

    async def queue(self, name: str = "general", query: str = "") -> dict[str, Any]:
        queues = (await self.get("/api/queues" + query))["queues"]
        return next(q for q in queues if q["name"] == name)

    async def agent(self, agent_id: str) -> dict[str, Any]:
        agents = (await self.get("/api/agents"))["agents"]
        return next(a for a in agents if a["id"] == agent_id)

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        return await self.get(f"/api/conversations/{conversation_id}")


@asynccontextmanager
async def gateway_with_api(
    tenant: str, redis_url: str, admin: dict[str, Any] | None = None, **tables: Any
) -> AsyncIterator[tuple[RunningGateway, Admin]]:
    tables.setdefault("agents", [agent("alice"), agent("bob")])
    config = make_config(tenant, admin={"token": TOKEN} if admin is None else admin, **tables)
    async with running(config, redis_url) as gw, aiohttp.ClientSession() as http:
        yield gw, Admin(http, gw)


async def waiting_conversation(api: Admin) -> str:
    """The id of the one conversation waiting in the general queue, once it waits."""

    async def first() -> str | None:
        waiting = (await api.queue())["waiting"]
        return waiting[0]["conversation_id"] if waiting else None

    return await wait_until(first, message="a conversation waits in general")


# The token.


async def test_without_a_configured_token_the_api_is_forbidden(tenant, redis_url):
    async with gateway_with_api(tenant, redis_url, admin={}) as (_, api):
        for method, path in [
            ("GET", "/api/queues"),
            ("GET", "/api/agents"),
            ("GET", "/api/conversations/x"),
            ("PUT", "/api/agents/alice/status"),
        ]:
            reply = await api.call(method, path, body={"status": "away"})
            assert reply.status == 403, (method, path)
            assert reply.body["error"] == "admin_token_not_configured"
            assert "admin token is not configured" in reply.body["detail"]
        for path in ("/metrics", "/healthz", "/readyz"):
            assert (await api.call("GET", path, headers={})).status == 200


async def test_a_missing_or_wrong_token_is_unauthorized(tenant, redis_url):
    async with gateway_with_api(tenant, redis_url) as (_, api):
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": "Bearer"},
        ):
            reply = await api.call("GET", "/api/queues", headers=headers)
            assert reply.status == 401, headers
            assert reply.headers["WWW-Authenticate"].startswith("Bearer")
            assert reply.body["error"] == "unauthorized"
        assert (await api.call("GET", "/api/queues")).status == 200
        assert (
            await api.call("GET", "/api/queues", headers={"Authorization": "bearer secret"})
        ).status == 200
        # Unknown paths under /api answer in JSON too, after the token.
        assert (await api.call("GET", "/api/nothing", headers={})).status == 401
        reply = await api.call("GET", "/api/nothing")
        assert reply.status == 404
        assert reply.body["error"] == "not_found"
        reply = await api.call("DELETE", "/api/queues")
        assert reply.status == 405
        assert reply.body["error"] == "method_not_allowed"
        # The open endpoints stay open.
        assert (await api.call("GET", "/healthz", headers={})).status == 200


# Reading state.


async def test_reads_follow_a_conversation_from_queue_to_agent(tenant, redis_url):
    async with gateway_with_api(tenant, redis_url) as (gw, api), customer(gw) as visitor:
        await visitor.send(type="message", text="my parcel is late")
        await visitor.expect("queue")
        conversation_id = await waiting_conversation(api)

        queue = await api.queue()
        assert queue["depth"] == 1
        assert queue["oldest_wait_s"] >= 0
        assert queue["open_now"] is True
        assert queue["strategy"] == "least_loaded"
        assert queue["agents"]["offline"] == 2
        assert queue["agents"]["available"] == 0
        assert queue["waiting"][0]["wait_s"] >= 0
        assert queue["accept_rate_per_min"] is None
        assert (await api.queue(query="?limit=0"))["waiting"] == []

        alice = await api.agent("alice")
        assert alice["status"] == "offline"
        assert alice["connected"] is None
        assert alice["load"] == {"webchat": 0}
        assert alice["capacity"] == {"webchat": 3}
        assert alice["conversations"] == [] and alice["offers"] == []

        view = await api.conversation(conversation_id)
        assert view["conversation"]["state"] == "queued"
        assert view["conversation"]["messages"][0]["text"] == "my parcel is late"
        assert view["offer"] is None
        assert view["route"]["queue"] == "general"
        assert view["route"]["enqueued_at"] is not None
        assert view["route"]["waiting_s"] >= 0
        assert view["route"]["escalation_step"] == 0

        async with agent_client(gw, "alice") as alice_socket:
            offer = await alice_socket.expect("offer")
            view = await api.conversation(conversation_id)
            assert view["conversation"]["state"] == "offered"
            assert view["offer"]["offer_id"] == offer["offer_id"]
            assert view["offer"]["agent"] == "alice"
            assert 0 < view["offer"]["expires_in_s"] <= 30
            alice = await api.agent("alice")
            assert alice["status"] == "available"
            assert alice["connected"] == gw.services.node_id
            assert alice["load"] == {"webchat": 1}
            assert [o["offer_id"] for o in alice["offers"]] == [offer["offer_id"]]

            await alice_socket.send(type="accept", offer_id=offer["offer_id"])
            await alice_socket.expect("assigned")
            view = await api.conversation(conversation_id)
            assert view["conversation"]["state"] == "assigned"
            assert view["conversation"]["agent"] == "alice"
            assert view["offer"] is None
            assert view["route"]["waiting_s"] is None
            alice = await api.agent("alice")
            assert alice["conversations"] == [conversation_id]
            assert alice["offers"] == []
            queue = await api.queue()
            assert queue["depth"] == 0 and queue["oldest_wait_s"] is None
            assert queue["waiting"] == []
            assert queue["agents"]["available"] == 1
            assert queue["agents"]["offline"] == 1


async def test_queue_agents_count_only_eligible_agents(tenant, redis_url):
    queues = [
        {"name": "general"},
        {"name": "billing", "skills": {"billing": 3}, "sla_s": 30, "priority": 2},
    ]
    agents = [agent("alice", skills={"billing": 4}), agent("bob", skills={"billing": 2})]
    async with gateway_with_api(tenant, redis_url, agents=agents, queues=queues) as (gw, api):
        async with agent_client(gw, "bob"):
            await wait_until(
                lambda: _is(api.agent("bob"), "status", "available"), message="bob online"
            )
            billing = await api.queue("billing")
            assert billing["agents"]["offline"] == 1  # alice; bob lacks the level
            assert billing["agents"]["available"] == 0
            assert billing["skills"] == {"billing": 3}
            assert billing["sla_s"] == 30 and billing["priority"] == 2
            general = await api.queue("general")
            assert general["agents"]["available"] == 1 and general["agents"]["offline"] == 1


async def test_a_single_agent_and_unknown_ids(tenant, redis_url):
    async with gateway_with_api(tenant, redis_url) as (_, api):
        assert (await api.get("/api/agents/bob"))["id"] == "bob"
        for path, code in [
            ("/api/agents/nobody", "unknown_agent"),
            ("/api/conversations/c-nothing", "unknown_conversation"),
        ]:
            reply = await api.call("GET", path)
            assert reply.status == 404, path
            assert reply.body["error"] == code
            assert reply.body["detail"]
        reply = await api.call("GET", "/api/queues?limit=many")
        assert reply.status == 400
        assert reply.body["field"] == "limit"


async def test_every_read_refuses_a_parameter_it_does_not_take(tenant, redis_url):
    """A typo in a query is a 400 naming it on every GET, not an answer to another question."""
    async with gateway_with_api(tenant, redis_url) as (gw, api), customer(gw) as visitor:
        await visitor.send(type="message", text="anyone there?")
        conversation_id = await waiting_conversation(api)
        for path in [
            "/api/queues?limt=5",
            "/api/agents?foo=1",
            "/api/agents/bob?foo=1",
            f"/api/conversations/{conversation_id}?foo=1",
            f"/api/conversations/{conversation_id}/transcript?foo=1",
            f"/api/qa/{conversation_id}?foo=1",
            "/api/webhooks?foo=1",
        ]:
            reply = await api.call("GET", path)
            assert reply.status == 400, (path, reply.body)
            assert reply.body["error"] == "bad_request", path
            name = path.rsplit("?", 1)[1].split("=")[0]
            assert reply.body["field"] == name, path
            assert name in reply.body["detail"], path
        # The parameters a route does take still pass.
        assert (await api.call("GET", "/api/queues?limit=5")).status == 200
        transcript = f"/api/conversations/{conversation_id}/transcript?format=text"
        assert (await api.call("GET", transcript)).status == 200


# Actions.


async def test_transfer_to_an_agent(tenant, redis_url):
    async with gateway_with_api(tenant, redis_url) as (gw, api), customer(gw) as visitor:
        async with agent_client(gw, "alice") as alice:
            await visitor.send(type="message", text="I need a refund")
            conversation_id = await accept_offer(alice)
            async with agent_client(gw, "bob") as bob:
                await wait_until(
                    lambda: _is(api.agent("bob"), "status", "available"), message="bob online"
                )
                reply = await api.call(
                    "POST",
                    f"/api/conversations/{conversation_id}/transfer",
                    {"to_agent": "bob", "note": "refund over the limit"},
                )
                assert reply.status == 200, reply.body
                assert reply.body["ok"] is True

                closed = await alice.expect("closed", conversation_id=conversation_id)
                assert closed["reason"] == "transferred"
                offer = await bob.expect("offer")
                assert offer["conversation"]["id"] == conversation_id
                assert offer["conversation"]["transfer_note"] == "refund over the limit"
                assert offer["conversation"]["transferred_from"] == "alice"

                view = await api.conversation(conversation_id)
                assert view["offer"]["agent"] == "bob"
                assert view["route"]["preferred_agent"] == "bob"
                assert view["conversation"]["transfer_note"] == "refund over the limit"


async def test_transfer_refusals(tenant, redis_url):
    async with gateway_with_api(tenant, redis_url) as (gw, api), customer(gw) as visitor:
        async with agent_client(gw, "alice") as alice:
            await visitor.send(type="message", text="hello")
            conversation_id = await accept_offer(alice)
            path = f"/api/conversations/{conversation_id}/transfer"
            cases = [
                ({"to_agent": "nobody"}, 404, "unknown_agent", "to_agent"),
                ({"to_queue": "nowhere"}, 404, "unknown_queue", "to_queue"),
                ({"to_agent": "bob"}, 409, "agent_unavailable", "to_agent"),  # bob is offline
                ({}, 400, "bad_request", "to_agent"),
                ({"to_agent": 5}, 400, "bad_request", "to_agent"),
                ({"to_agent": ""}, 400, "bad_request", "to_agent"),
                ({"to_queue": "general", "colour": "red"}, 400, "bad_request", "colour"),
            ]
            for body, status, code, field in cases:
                reply = await api.call("POST", path, body)
                assert (reply.status, reply.body["error"], reply.body.get("field")) == (
                    status,
                    code,
                    field,
                ), body
            reply = await api.call("POST", path, data=b"{not json")
            assert reply.status == 400
            assert reply.body["error"] == "bad_request" and reply.body["detail"]
            reply = await api.call("POST", path, data=b"[]")
            assert reply.status == 400
            reply = await api.call("POST", path, data=b'{"note": "' + b"x" * 20_000 + b'"}')
            assert reply.status == 413
            reply = await api.call(
                "POST", "/api/conversations/c-nothing/transfer", {"to_queue": "general"}
            )
            assert reply.status == 404 and reply.body["error"] == "unknown_conversation"
            # Nothing moved.
            view = await api.conversation(conversation_id)
            assert view["conversation"]["agent"] == "alice"


async def test_transfer_to_a_queue_from_the_queue(tenant, redis_url):
    queues = [{"name": "general"}, {"name": "vip", "priority": 5}]
    async with gateway_with_api(tenant, redis_url, queues=queues) as (gw, api):
        async with customer(gw) as visitor:
            await visitor.send(type="message", text="anyone there?")
            conversation_id = await waiting_conversation(api)
            reply = await api.call(
                "POST", f"/api/conversations/{conversation_id}/transfer", {"to_queue": "vip"}
            )
            assert reply.status == 200, reply.body
            vip = await api.queue("vip")
            assert [w["conversation_id"] for w in vip["waiting"]] == [conversation_id]
            assert (await api.queue("general"))["depth"] == 0
            async with agent_client(gw, "alice") as alice:
                offer = await alice.expect("offer")
                assert offer["conversation"]["queue"] == "vip"


async def test_close_by_a_supervisor(tenant, redis_url):
    async with gateway_with_api(tenant, redis_url) as (gw, api), customer(gw) as visitor:
        async with agent_client(gw, "alice") as alice:
            await visitor.send(type="message", text="spam spam spam")
            conversation_id = await accept_offer(alice)
            path = f"/api/conversations/{conversation_id}/close"
            reply = await api.call("POST", path, {"reason": "abusive"})
            assert reply.status == 200, reply.body
            closed = await alice.expect("closed", conversation_id=conversation_id)
            assert closed["reason"] == "closed_by_supervisor"
            await visitor.expect("closed")

            view = await api.conversation(conversation_id)
            assert view["conversation"]["state"] == "closed"
            assert (await api.agent("alice"))["conversations"] == []
            reply = await api.call("POST", path)
            assert reply.status == 409 and reply.body["error"] == "closed"
            reply = await api.call("POST", path, {"reason": 3})
            assert reply.status == 400 and reply.body["field"] == "reason"
        reply = await api.call("POST", "/api/conversations/c-nothing/close")
        assert reply.status == 404 and reply.body["error"] == "unknown_conversation"


async def test_close_a_waiting_conversation(tenant, redis_url):
    async with gateway_with_api(tenant, redis_url) as (gw, api), customer(gw) as visitor:
        await visitor.send(type="message", text="hello?")
        conversation_id = await waiting_conversation(api)
        reply = await api.call("POST", f"/api/conversations/{conversation_id}/close")
        assert reply.status == 200, reply.body
        await visitor.expect("closed")
        assert (await api.queue())["depth"] == 0


async def test_status_set_by_a_supervisor(tenant, redis_url):
    async with gateway_with_api(tenant, redis_url) as (gw, api):
        async with agent_client(gw, "alice") as alice, customer(gw) as visitor:
            reply = await api.call("PUT", "/api/agents/alice/status", {"status": "away"})
            assert reply.status == 200, reply.body
            frame = await alice.expect("status")
            assert (frame["status"], frame["reason"]) == ("away", "set_by_supervisor")
            listed = await api.agent("alice")
            assert (listed["status"], listed["status_reason"]) == ("away", "set_by_supervisor")
            assert (await api.queue())["agents"]["away"] == 1

            # Away: the conversation waits, and routing offers it to nobody.
            await visitor.send(type="message", text="is anyone in?")
            await waiting_conversation(api)
            assert await gw.services.switchboard.dispatch() == []

            reply = await api.call("PUT", "/api/agents/alice/status", {"status": "available"})
            assert reply.status == 200, reply.body
            await alice.expect("status", status="available")
            await alice.expect("offer")
            kinds = [f["type"] for f in alice.frames]
            assert kinds.index("offer") > kinds.index("status", kinds.index("status") + 1)

            reply = await api.call("PUT", "/api/agents/alice/status", {"status": "lunch"})
            assert reply.status == 200  # a configured not-ready reason
            await alice.expect("status", status="lunch")


async def test_status_refusals(tenant, redis_url):
    async with gateway_with_api(tenant, redis_url) as (_, api):
        reply = await api.call("PUT", "/api/agents/alice/status", {"status": "dancing"})
        assert reply.status == 400
        assert (reply.body["error"], reply.body["field"]) == ("bad_status", "status")
        reply = await api.call("PUT", "/api/agents/alice/status", {})
        assert reply.status == 400
        assert (reply.body["error"], reply.body["field"]) == ("bad_request", "status")
        reply = await api.call("PUT", "/api/agents/alice/status", {"status": ["away"]})
        assert reply.status == 400 and reply.body["field"] == "status"
        reply = await api.call("PUT", "/api/agents/nobody/status", {"status": "away"})
        assert reply.status == 404 and reply.body["error"] == "unknown_agent"


async def test_unexpected_errors_stay_inside(tenant, redis_url, monkeypatch, caplog):
    async with gateway_with_api(tenant, redis_url) as (gw, api):

        async def broken() -> None:
            raise RuntimeError("secret internals")

        monkeypatch.setattr(gw.services.router, "queue_stats", broken)
        reply = await api.call("GET", "/api/queues")
        assert reply.status == 500
        assert reply.body == {"error": "internal"}
        assert "admin API" in caplog.text and "secret internals" in caplog.text


async def _is(value: Any, key: str, expected: Any) -> bool:
    return (await value)[key] == expected
