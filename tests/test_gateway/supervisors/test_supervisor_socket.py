"""The supervisor socket, /supervisor/ws, through real sockets: signing in, the wallboard
(live after an assignment without the lead asking, with the admin API's numbers, scoped to
the lead's queues), and frames it refuses."""

from __future__ import annotations

import itertools

import pytest
from harness import accept_offer, agent_client, connect, customer
from supervisor_support import admin_get, centre, lead, until_frame

from gateway.supervisors import session as supervisor_session


async def test_a_lead_signs_in_with_their_token(tenant, redis_url):
    async with centre(tenant, redis_url) as gw:
        async with lead(gw, "tok-lin") as (lin, welcome):
            assert welcome["protocol"] == 1
            assert welcome["supervisor"] == {
                "id": "lin",
                "name": "Lin",
                "queues": ["general", "billing"],
                "agent": "carol",
            }
            assert "away" in welcome["statuses"] and "available" in welcome["statuses"]
            assert "closed_by_supervisor" in welcome["close_reasons"]
            assert (await lin.expect("wallboard"))["queues"]
        async with lead(gw, "tok-gail") as (_, welcome):
            assert welcome["supervisor"]["queues"] == ["general"]
            assert welcome["supervisor"]["agent"] is None
        # The token in an Authorization header, as the agent socket takes it.
        headers = {"Authorization": "Bearer tok-gail"}
        async with connect(gw.ws_url("/supervisor/ws"), additional_headers=headers) as client:
            await client.send(type="hello", protocol=1)
            assert (await client.expect("welcome"))["supervisor"]["id"] == "gail"


@pytest.mark.parametrize("token", ["wrong", "tok-alice", None])
async def test_a_bad_token_is_refused_with_4401(tenant, redis_url, token):
    async with centre(tenant, redis_url) as gw, connect(gw.ws_url("/supervisor/ws")) as client:
        await client.send(type="hello", token=token, protocol=1)
        error = await client.expect("error")
        assert (error["code"], error["field"]) == ("bad_token", "token")
        assert await client.expect_closed() == 4401


async def test_another_protocol_or_no_hello_is_refused(tenant, redis_url):
    async with centre(tenant, redis_url) as gw:
        async with connect(gw.ws_url("/supervisor/ws")) as client:
            await client.send(type="hello", token="tok-lin", protocol=2)
            assert (await client.expect("error"))["code"] == "unsupported_protocol"
            assert await client.expect_closed() == 4400
        async with connect(gw.ws_url("/supervisor/ws")) as client:
            await client.send(type="search", request_id="r1")
            assert (await client.expect("error"))["code"] == "hello_expected"
            assert await client.expect_closed() == 4401


async def test_the_wallboard_follows_an_assignment_without_being_asked(
    tenant, redis_url, monkeypatch
):
    # No slow refresh during the test: every wallboard after the first is a change's.
    monkeypatch.setattr(supervisor_session, "REFRESH_S", 600.0)
    async with centre(tenant, redis_url) as gw, lead(gw, "tok-lin") as (lin, _):
        first = await lin.expect("wallboard")
        general = next(q for q in first["queues"] if q["name"] == "general")
        assert general["depth"] == 0 and general["sla_met_15m"] is None
        async with agent_client(gw, "alice") as alice, customer(gw) as visitor:
            await visitor.send(type="message", text="hello there")
            conversation_id = await accept_offer(alice)

            def alice_holds_it(frame):
                tile = next(a for a in frame["agents"] if a["id"] == "alice")
                return tile["conversations"] == [conversation_id]

            board = await until_frame(lin, "wallboard", alice_holds_it)
            alice_tile = next(a for a in board["agents"] if a["id"] == "alice")
            assert alice_tile["status"] == "available"
            assert alice_tile["load"]["webchat"] == 1
            general = next(q for q in board["queues"] if q["name"] == "general")
            assert general["depth"] == 0
            assert general["sla_answered_15m"] == 1 and general["sla_met_15m"] == 1.0


async def test_wallboard_numbers_equal_the_admin_api(tenant, redis_url, monkeypatch):
    monkeypatch.setattr(supervisor_session, "REFRESH_S", 600.0)
    async with (
        centre(tenant, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        agent_client(gw, "bob") as bob,
        customer(gw) as one,
        customer(gw) as two,
        customer(gw) as three,
    ):
        await bob.send(type="set_status", status="lunch")
        await bob.expect("status", status="lunch")
        await one.send(type="message", text="first")
        await accept_offer(alice)
        await two.send(type="message", text="second")
        await alice.expect("offer")  # held, unanswered: alice is offered one, holds one
        await three.send(type="message", text="my invoice")  # billing: bob is at lunch
        await three.expect("message")  # its echo: stored and queued
        async with lead(gw, "tok-lin") as (lin, _):
            board = await lin.expect("wallboard")
            queues = {q["name"]: q for q in (await admin_get(gw, "/api/queues"))["queues"]}
            agents = {a["id"]: a for a in (await admin_get(gw, "/api/agents"))["agents"]}
        assert [q["name"] for q in board["queues"]] == ["general", "billing"]
        for tile in board["queues"]:
            api = queues[tile["name"]]
            assert tile["depth"] == api["depth"]
            if api["oldest_wait_s"] is None:
                assert tile["oldest_wait_s"] is None
            else:
                assert abs(tile["oldest_wait_s"] - api["oldest_wait_s"]) < 2.0
            assert tile["available"] + tile["busy"] == api["agents"]["available"]
            not_ready = sum(
                n for s, n in api["agents"].items() if s not in ("available", "offline")
            )
            assert tile["away"] == not_ready
        assert queues["billing"]["depth"] == 1 and board["queues"][1]["away"] == 1
        assert [a["id"] for a in board["agents"]] == ["alice", "bob", "carol"]
        for tile in board["agents"]:
            api = agents[tile["id"]]
            assert tile["status"] == api["status"]
            assert tile["reason"] == api["status_reason"]
            assert tile["load"] == api["load"]
            assert tile["capacity"] == api["capacity"]
            assert tile["conversations"] == api["conversations"]
        assert board["agents"][0]["load"]["webchat"] == 2  # one held, one offered


async def test_a_lead_of_one_queue_sees_only_its_queue_and_agents(tenant, redis_url):
    async with centre(tenant, redis_url) as gw, lead(gw, "tok-gail") as (gail, _):
        board = await gail.expect("wallboard")
        assert [q["name"] for q in board["queues"]] == ["general"]
        assert [a["id"] for a in board["agents"]] == ["alice", "carol"]


async def test_bad_frames_get_an_error_naming_the_field(tenant, redis_url):
    async with centre(tenant, redis_url) as gw, lead(gw, "tok-lin") as (lin, _):
        await lin.send(type="watch")
        error = await lin.expect("error")
        assert (error["code"], error["field"]) == ("bad_frame", "conversation_id")
        await lin.send(type="transfer", request_id="r1", conversation_id=5)
        error = await lin.expect("error")
        assert (error["code"], error["field"], error["request_id"]) == (
            "bad_frame",
            "conversation_id",
            "r1",
        )
        await lin.send(type="search", request_id="r2", txt="typo")
        error = await lin.expect("error")
        assert (error["field"], error["request_id"]) == ("txt", "r2")
        await lin.send(type="launch")
        error = await lin.expect("error")
        assert (error["code"], error["field"]) == ("bad_frame", "type")
        await lin.ws.send(b"not json")
        assert (await lin.expect("error"))["code"] == "bad_frame"
        # The socket stays open after every refusal.
        await lin.send(type="ping")
        await lin.expect("pong")


async def test_a_burst_of_changes_coalesces_into_few_wallboards(tenant, redis_url, monkeypatch):
    monkeypatch.setattr(supervisor_session, "REFRESH_S", 600.0)
    interval_ms = 1000  # wide enough for the burst of seven changes on a busy machine too
    async with (
        centre(tenant, redis_url, supervisor={"wallboard_min_interval_ms": interval_ms}) as gw,
        agent_client(gw, "alice"),
        lead(gw, "tok-lin") as (lin, _),
    ):
        await until_frame(lin, "wallboard", lambda f: f["agents"][0]["status"] == "available")
        statuses = ["away", "lunch", "training", "away", "lunch", "available", "away"]
        for n, status in enumerate(statuses):
            await lin.send(
                type="set_agent_status", request_id=f"s{n}", agent_id="alice", status=status
            )
        for n in range(len(statuses)):
            await lin.expect("done", request_id=f"s{n}")
        # Read until the last status shows; the burst's frames follow the one before it.
        while (await lin.expect("wallboard"))["agents"][0]["status"] != "away":
            pass
        boards = [f for f in lin.frames if f.get("type") == "wallboard"]
        # Never two frames within the interval, so fewer frames than changes.
        assert len(boards) - 1 < len(statuses)
        gaps = [b["at_ms"] - a["at_ms"] for a, b in itertools.pairwise(boards)]
        assert all(gap >= interval_ms - 50 for gap in gaps), gaps
