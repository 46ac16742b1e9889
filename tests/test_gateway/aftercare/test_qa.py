"""The QA queue through the sockets and the admin API: each queue's qa_sample share of closed
conversations (picked by the documented hash of the seed and the conversation id), every
complaint and every low CSAT land in it; a team lead lists and scores only their queues'
conversations with their own token (on the admin API and on their supervisor socket); the
score is the scorecard's weighted mean; bad scores are refused naming the item."""

from __future__ import annotations

import hashlib

import aiohttp
from harness import accept_offer, agent, agent_client, customer, make_config, running
from supervisor_support import lead
from test_csat_webchat import events_of

ADMIN = "Bearer admin-secret"
SEED = "test-seed"


def in_sample(conversation_id: str, share: float) -> bool:
    """docs/reports.md: SHA-256 of "seed|id", its first 8 bytes over 2**64, below the share."""
    digest = hashlib.sha256(f"{SEED}|{conversation_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def config_for(tenant: str):
    return make_config(
        tenant,
        admin={"token": "admin-secret"},
        agents=[agent("alice", skills={"general": 1, "billing": 1})],
        queues=[
            {"name": "general", "qa_sample": 0.5, "skills": {"general": 1}},
            {"name": "billing", "skills": {"billing": 1}},
        ],
        rules=[
            {"name": "complaint", "keywords": ["投诉"], "queue": "billing", "grade": "A"},
            {"name": "billing", "keywords": ["invoice"], "queue": "billing"},
        ],
        grades=[{"name": "A", "priority": 8, "sla_s": 30}],
        supervisors=[
            {"id": "lin", "token": "tok-lin", "queues": ["general"]},
            {"id": "mei", "token": "tok-mei", "queues": ["billing"]},
        ],
        qa={
            "seed": SEED,
            "scorecard": [
                {"name": "greeting", "weight": 1},
                {"name": "accuracy", "weight": 3},
            ],
        },
    )


async def one_conversation(gw, alice, text: str, score: int | None = None) -> str:
    """A visitor writes, alice takes and closes it; the visitor rates it when told to."""
    async with customer(gw) as visitor:
        await visitor.send(type="message", text=text)
        conversation_id = await accept_offer(alice)
        await alice.send(type="close", conversation_id=conversation_id)
        await alice.expect("closed", conversation_id=conversation_id)
        await visitor.expect("csat_request", conversation_id=conversation_id)
        if score is not None:
            await visitor.send(type="csat", conversation_id=conversation_id, score=score)
            await visitor.expect("csat_thanks")
    return conversation_id


async def call(gw, method: str, path: str, token: str, body=None) -> tuple[int, dict]:
    headers = {"Authorization": token}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.request(method, f"{gw.admin_base}/api{path}", json=body) as response,
    ):
        return response.status, await response.json()


async def listed(gw, token: str, query: str = "") -> list[dict]:
    """Every page of GET /api/qa, followed by next_cursor."""
    found: list[dict] = []
    cursor = ""
    while True:
        status, page = await call(gw, "GET", f"/qa?limit=2{query}{cursor}", token)
        assert status == 200, page
        found += page["conversations"]
        if page["next_cursor"] is None:
            return found
        cursor = f"&cursor={page['next_cursor']}"


async def test_the_qa_queue_and_a_leads_scores(tenant, redis_url):
    async with running(config_for(tenant), redis_url) as gw, agent_client(gw, "alice") as alice:
        general = [await one_conversation(gw, alice, f"question {i}") for i in range(8)]
        complaint = await one_conversation(gw, alice, "我要投诉")
        low = await one_conversation(gw, alice, "invoice please", score=2)
        await one_conversation(gw, alice, "invoice again", score=3)  # rated, not low: not in QA

        sampled = [c for c in general if in_sample(c, 0.5)]
        assert 0 < len(sampled) < len(general), "a seed whose sample shows something"
        by_lin = await listed(gw, "Bearer tok-lin")
        assert [c["conversation_id"] for c in by_lin] == sampled
        assert {tuple(c["reasons"]) for c in by_lin} == {("sample",)}
        by_mei = {c["conversation_id"]: c for c in await listed(gw, "Bearer tok-mei")}
        assert set(by_mei) == {complaint, low}
        assert by_mei[complaint]["reasons"] == ["complaint"] and by_mei[complaint]["grade"] == "A"
        assert by_mei[low]["reasons"] == ["low_csat"] and by_mei[low]["csat"] == 2
        everything = await listed(gw, ADMIN)
        assert [c["conversation_id"] for c in everything] == [*sampled, complaint, low]
        assert everything[0]["agent"] == "alice" and everything[0]["queue"] == "general"

        # Scoring: only the lead's queues; every item, 0 to 100; the weighted mean.
        status, error = await call(gw, "POST", f"/qa/{low}", "Bearer tok-lin", {"items": {}})
        assert (status, error["error"]) == (404, "unknown_conversation")
        for items, field in [
            ({"greeting": 80}, "items.accuracy"),
            ({"greeting": 80, "accuracy": 90, "speed": 1}, "items.speed"),
            ({"greeting": 101, "accuracy": 90}, "items.greeting"),
            ({"greeting": "good", "accuracy": 90}, "items.greeting"),
        ]:
            status, error = await call(gw, "POST", f"/qa/{low}", "Bearer tok-mei", {"items": items})
            assert (status, error["field"]) == (400, field), error
        body = {"items": {"greeting": 60, "accuracy": 80}, "note": "slow to greet"}
        status, scored = await call(gw, "POST", f"/qa/{low}", "Bearer tok-mei", body)
        assert status == 200, scored
        assert scored["score"] == (60 * 1 + 80 * 3) / 4
        assert (scored["scored_by"], scored["note"]) == ("mei", "slow to greet")
        assert [c["conversation_id"] for c in await listed(gw, "Bearer tok-mei")] == [complaint]
        done = await listed(gw, "Bearer tok-mei", "&status=scored")
        assert [(c["conversation_id"], c["score"]) for c in done] == [(low, 75.0)]
        status, item = await call(gw, "GET", f"/qa/{low}", ADMIN)
        assert (status, item["items"]) == (200, {"greeting": 60, "accuracy": 80})
        (event,) = await events_of(redis_url, tenant, "qa_scored")
        assert event == {
            "conversation_id": low,
            "score": 75.0,
            "items": {"greeting": 60, "accuracy": 80},
            "by": "mei",
            "note": "slow to greet",
        }

        # Tokens: an agent's is not a lead's; the other routes stay admin-only.
        status, _ = await call(gw, "GET", "/qa", "Bearer tok-alice")
        assert status == 401
        status, _ = await call(gw, "GET", "/queues", "Bearer tok-mei")
        assert status == 401
        status, error = await call(gw, "GET", "/qa?queue=general", "Bearer tok-mei")
        assert (status, error["field"]) == (404, "queue")
        status, error = await call(gw, "GET", "/qa?limit=0", ADMIN)
        assert (status, error["field"]) == (400, "limit")
        status, error = await call(gw, "GET", "/qa?stauts=scored", ADMIN)
        assert (status, error["field"]) == (400, "stauts"), "a typo is not the pending list"


async def test_a_lead_lists_and_scores_on_the_supervisor_socket(tenant, redis_url):
    async with running(config_for(tenant), redis_url) as gw, agent_client(gw, "alice") as alice:
        complaint = await one_conversation(gw, alice, "我要投诉")
        general = [await one_conversation(gw, alice, f"question {i}") for i in range(4)]
        async with lead(gw, "tok-mei") as (mei, _):
            await mei.send(type="qa_list", request_id="q1")
            listed_ = await mei.expect("qa_results", request_id="q1")
            assert [c["conversation_id"] for c in listed_["conversations"]] == [complaint]
            assert [i["name"] for i in listed_["scorecard"]] == ["greeting", "accuracy"]

            await mei.send(
                type="qa_score", request_id="s1", conversation_id=complaint,
                items={"greeting": 50},
            )  # fmt: skip
            error = await mei.expect("error", request_id="s1")
            assert error["field"] == "items.accuracy"
            other = general[0]
            await mei.send(
                type="qa_score", request_id="s2", conversation_id=other,
                items={"greeting": 50, "accuracy": 50},
            )  # fmt: skip
            error = await mei.expect("error", request_id="s2")
            assert error["code"] == "unknown_conversation"
            await mei.send(
                type="qa_score", request_id="s3", conversation_id=complaint,
                items={"greeting": 100, "accuracy": 60}, note="apologised well",
            )  # fmt: skip
            done = await mei.expect("done", request_id="s3")
            assert done["action"] == "qa_score"
            await mei.send(type="qa_list", request_id="q2", status="scored")
            [scored] = (await mei.expect("qa_results", request_id="q2"))["conversations"]
            assert (scored["score"], scored["scored_by"]) == (70.0, "mei")
