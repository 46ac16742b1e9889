"""The KPI reports through the public surface: a scripted day of conversations on web chat
(sockets for the visitors and the agents, the admin API for a supervisor's close and the QA
scores), on simulated time so that every duration is the one the script chose, and the
figures of /api/reports/agents and /api/reports/queues compared exactly with those worked
out by hand below (docs/reports.md#kpis gives each definition). Also the CSV, the filters
and the 400s naming the parameter."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import NamedTuple

import aiohttp
from harness import TestClock, agent, agent_client, customer, make_config, running

ADMIN = {"Authorization": "Bearer admin-secret"}
DAY = "2026-03-02T"


def at(hms: str) -> int:
    return int(datetime.fromisoformat(DAY + hms).replace(tzinfo=UTC).timestamp() * 1000)


def config_for(tenant: str):
    return make_config(
        tenant,
        admin={"token": "admin-secret"},
        # Offers wait for the script: the clock jumps ahead between an offer and its accept.
        routing={"offer_timeout_s": 86400},
        agents=[agent("alice", skills={"general": 1}), agent("bob", skills={"billing": 1})],
        queues=[
            {"name": "general", "sla_s": 60, "skills": {"general": 1}},
            {"name": "billing", "sla_s": 120, "skills": {"billing": 1}},
        ],
        rules=[{"name": "complaint", "keywords": ["投诉"], "queue": "billing", "grade": "A"}],
        grades=[{"name": "A", "priority": 8, "sla_s": 30}],
    )


class Day:
    """The script's steps, each at the time it names."""

    def __init__(self, gw, clock: TestClock) -> None:
        self.gw, self.clock = gw, clock
        self.replies = 0

    async def opens(self, visitor, when: str, text: str) -> str:
        self.clock.now_ms = at(when)
        await visitor.send(type="message", text=text)
        return (await visitor.expect("message"))["conversation_id"]

    async def accepts(self, who, when: str) -> str:
        offer = await who.expect("offer", timeout=30)
        self.clock.now_ms = at(when)
        await who.send(type="accept", offer_id=offer["offer_id"])
        conversation_id = offer["conversation"]["id"]
        while (await who.expect("assigned", timeout=30))["conversation"]["id"] != conversation_id:
            pass
        return conversation_id

    async def replies_to(self, who, conversation_id: str, when: str) -> None:
        self.clock.now_ms = at(when)
        self.replies += 1
        msg_id = f"r{self.replies}"
        await who.send(
            type="reply", conversation_id=conversation_id, text="hello", client_msg_id=msg_id
        )
        await who.expect("reply_ack", client_msg_id=msg_id)

    async def closes(self, who, visitor, conversation_id: str, when: str) -> None:
        self.clock.now_ms = at(when)
        await who.send(type="close", conversation_id=conversation_id)
        await who.expect("closed", conversation_id=conversation_id)
        await visitor.expect("csat_request", conversation_id=conversation_id)

    async def rates(self, visitor, conversation_id: str, score: int) -> None:
        await visitor.send(type="csat", conversation_id=conversation_id, score=score)
        await visitor.expect("csat_thanks")

    async def one_agent(self, who, text: str, times: tuple[str, str, str, str], score: int) -> str:
        """A conversation one agent takes, answers and closes (at these times), then rated."""
        opened, accepted, replied, closed = times
        async with customer(self.gw) as visitor:
            await self.opens(visitor, opened, text)
            conversation_id = await self.accepts(who, accepted)
            await self.replies_to(who, conversation_id, replied)
            await self.closes(who, visitor, conversation_id, closed)
            await self.rates(visitor, conversation_id, score)
        return conversation_id


class Answer(NamedTuple):
    status: int
    content_type: str
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)

    def text(self) -> str:
        return self.body.decode("utf-8-sig")


async def admin(gw, method: str, path: str, body=None, headers=None) -> Answer:
    async with (
        aiohttp.ClientSession(headers={**ADMIN, **(headers or {})}) as http,
        http.request(method, f"{gw.admin_base}/api{path}", json=body) as response,
    ):
        return Answer(response.status, response.content_type, await response.read())


async def admin_json(gw, method: str, path: str, body=None) -> dict:
    answer = await admin(gw, method, path, body)
    assert answer.status == 200, answer
    return answer.json()


async def scripted_day(gw, clock: TestClock) -> None:
    """The day: times in the comments are what the figures are worked out from."""
    day = Day(gw, clock)
    async with agent_client(gw, "alice") as alice, agent_client(gw, "bob") as bob:
        # C1, general, alice: waits 20 s, first response after 50 s, closed at 5 min; CSAT 5.
        await day.one_agent(alice, "where is", ("09:00:00", "09:00:20", "09:00:50", "09:05:00"), 5)
        # C2, general, alice: waits 90 s (over the 60 s SLA), first response after 120 s,
        # closed at 20 min; CSAT 2, so it lands in QA.
        c2 = await day.one_agent(
            alice, "again", ("09:10:00", "09:11:30", "09:12:00", "09:30:00"), 2
        )
        # C3, general then billing: alice takes it after 10 s, answers after 40 s, transfers
        # it to billing at 10:02; bob takes it, answers, closes it at 10:20. Not rated.
        async with customer(gw) as v3:
            await day.opens(v3, "10:00:00", "a question about my bill")
            c3 = await day.accepts(alice, "10:00:10")
            await day.replies_to(alice, c3, "10:00:40")
            clock.now_ms = at("10:02:00")
            await alice.send(type="transfer", conversation_id=c3, to_queue="billing")
            assert await day.accepts(bob, "10:02:30") == c3
            await day.replies_to(bob, c3, "10:03:00")
            await day.closes(bob, v3, c3, "10:20:00")
        # C4, a grade A complaint (SLA 30 s) to billing: bob takes it after 40 s, answers after
        # 60 s, closes it at 31 min; CSAT 4. A complaint lands in QA.
        c4 = await day.one_agent(
            bob, "我要投诉", ("11:00:00", "11:00:40", "11:01:00", "11:31:00"), 4
        )
        # C5, general, while alice is away: nobody takes it; a supervisor closes it at 12:10.
        await alice.send(type="set_status", status="away")
        await alice.expect("status", status="away")
        async with customer(gw) as v5:
            c5 = await day.opens(v5, "12:00:00", "anyone there?")
            await v5.expect("queue")
            clock.now_ms = at("12:10:00")
            await admin_json(gw, "POST", f"/conversations/{c5}/close", {})
            await v5.expect("csat_request", conversation_id=c5)
        await alice.send(type="set_status", status="available")
        await alice.expect("status", status="available")
        # C6 closes at 13:10, after the period the reports ask for (until 13:00, excluded).
        await day.one_agent(alice, "late", ("12:40:00", "12:40:10", "12:40:20", "13:10:00"), 1)
        # QA: C2 with the default scorecard (greeting 1, accuracy 2, resolution 2, tone 1):
        # (100 + 80*2 + 60*2 + 90) / 6 = 78.33; C4 all 100.
        items = {"greeting": 100, "accuracy": 80, "resolution": 60, "tone": 90}
        assert (await admin_json(gw, "POST", f"/qa/{c2}", {"items": items}))["score"] == 78.33
        full = dict.fromkeys(items, 100)
        assert (await admin_json(gw, "POST", f"/qa/{c4}", {"items": full}))["score"] == 100


def row(
    name, closed, handled, fr, ht, transfers, away, complaints, sla, csat, qa
) -> dict:  # fmt: skip
    """A report row as the JSON carries it; spreads as (count, median, p90)."""
    return {
        "name": name,
        "closed": closed,
        "handled": handled,
        "first_response": dict(zip(("count", "median_s", "p90_s"), fr, strict=True)),
        "handling": dict(zip(("count", "median_s", "p90_s"), ht, strict=True)),
        "transfers": transfers,
        "transferred_away": away,
        "complaints": complaints,
        "complaints_total": sum(complaints.values()),
        "sla": dict(zip(("answered", "met", "met_share"), sla, strict=True)),
        "csat": dict(zip(("asked", "rated", "average", "response_rate"), csat, strict=True)),
        "qa": dict(zip(("scored", "average"), qa, strict=True)),
    }


# By hand. alice held C1 and C2 at the close: first responses 50 and 120 s (median of two:
# their mean, 85; p90 by nearest rank: rank ceil(0.9*2) = 2, 120), handling from the first
# assignment to the close 280 (5 min less 20 s) and 1110 s (20 min less 90 s), SLA met by
# C1 only, CSAT 5 and 2, QA 78.33; she transferred C3 away. bob held C3 and C4: first
# responses 40 (alice's, C3's first) and 60 s, handling 1190 (from alice's assignment at
# 10:00:10) and 1820 s, one transfer (C3), one grade A complaint, SLA: C3 within 10 s, C4
# 40 s over its grade's 30; asked twice, rated once (4); QA 100.
ALICE = row("alice", 2, 2, (2, 85.0, 120.0), (2, 695.0, 1110.0), 0, 1, {}, (2, 1, 0.5),
            (2, 2, 3.5, 1.0), (1, 78.33))  # fmt: skip
BOB = row("bob", 2, 2, (2, 50.0, 60.0), (2, 1505.0, 1820.0), 1, 0, {"A": 1}, (2, 1, 0.5),
          (2, 1, 4.0, 0.5), (1, 100.0))  # fmt: skip
# general: C1, C2 and C5 closed there (C5 unanswered, asked, not rated: 2 of 3 rated);
# billing: C3 and C4, as bob's.
GENERAL = row("general", 3, 2, (2, 85.0, 120.0), (2, 695.0, 1110.0), 0, None, {},
                 (2, 1, 0.5), (3, 2, 3.5, 0.6667), (1, 78.33))  # fmt: skip
BILLING = {**BOB, "name": "billing", "transferred_away": None}
PERIOD = f"since={DAY}09:00:00Z&until={DAY}13:00:00Z"


async def test_a_scripted_days_kpis_are_the_ones_worked_out_by_hand(tenant, redis_url):
    clock = TestClock(at("08:00:00"))
    async with running(config_for(tenant), redis_url, clock=clock) as gw:
        await scripted_day(gw, clock)
        clock.now_ms = at("18:00:00")

        agents = await admin_json(gw, "GET", f"/reports/agents?{PERIOD}")
        assert agents["kind"] == "agents"
        assert agents["period"] == {"since": f"{DAY}09:00:00Z", "until": f"{DAY}13:00:00Z"}
        assert agents["rows"] == [ALICE, BOB]
        queues = await admin_json(gw, "GET", f"/reports/queues?{PERIOD}")
        assert queues["rows"] == [BILLING, GENERAL]

        # Filters: one agent's row; one queue's conversations only.
        only_bob = await admin_json(gw, "GET", f"/reports/agents?{PERIOD}&agent=bob")
        assert only_bob["rows"] == [BOB]
        in_billing = await admin_json(gw, "GET", f"/reports/agents?{PERIOD}&queue=billing")
        assert [r["name"] for r in in_billing["rows"]] == ["alice", "bob"]
        assert in_billing["rows"][0]["closed"] == 0 and in_billing["rows"][0]["handled"] == 0
        assert in_billing["rows"][0]["transferred_away"] == 1
        assert in_billing["rows"][1] == BOB
        by_alice = await admin_json(gw, "GET", f"/reports/queues?{PERIOD}&agent=alice")
        assert [(r["name"], r["closed"]) for r in by_alice["rows"]] == [
            ("billing", 0),
            ("general", 2),
        ]

        # The default period: the day up to now (18:00) holds C6 too, alice's third.
        whole = await admin_json(gw, "GET", "/reports/agents")
        assert whole["rows"][0]["handled"] == 3 and whole["rows"][0]["csat"]["rated"] == 3

        # CSV, by format=csv and by Accept: the JSON's figures, flat.
        response = await admin(gw, "GET", f"/reports/queues?{PERIOD}&format=csv")
        assert response.status == 200 and response.content_type == "text/csv"
        table = list(csv.DictReader(io.StringIO(response.text())))
        assert [r["name"] for r in table] == ["billing", "general"]
        general = table[1]
        assert general["closed"] == "3" and general["handled"] == "2"
        assert general["first_response_median_s"] == "85.0"
        assert general["handling_p90_s"] == "1110.0"
        assert general["sla_met_share"] == "0.5" and general["csat_response_rate"] == "0.6667"
        assert general["transferred_away"] == "" and table[0]["complaints"] == "A:1"
        accepted = await admin(
            gw, "GET", f"/reports/agents?{PERIOD}", headers={"Accept": "text/csv"}
        )
        assert accepted.content_type == "text/csv"
        assert (
            accepted.text()
            .splitlines()[1]
            .startswith("alice,2,2,2,85.0,120.0,2,695.0,1110.0,0,1,0,,2,1,0.5")
        )


async def test_the_aggregate_counters_of_the_day(tenant, redis_url):
    """The Prometheus side: by queue (and score), never by agent; primed at 0."""
    clock = TestClock(at("08:00:00"))
    async with running(config_for(tenant), redis_url, clock=clock) as gw:
        await scripted_day(gw, clock)
        async with aiohttp.ClientSession() as http, http.get(f"{gw.admin_base}/metrics") as r:
            exposed = await r.text()
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in exposed.splitlines()
        if line.startswith(("zhongtai_csat", "zhongtai_qa"))
    }
    assert samples['zhongtai_csat_asked_total{queue="general"}'] == 4  # C1, C2, C5, C6
    assert samples['zhongtai_csat_asked_total{queue="billing"}'] == 2  # C3, C4
    ratings = {k: v for k, v in samples.items() if k.startswith("zhongtai_csat_ratings_total")}
    assert {k: v for k, v in ratings.items() if v} == {
        'zhongtai_csat_ratings_total{queue="general",score="5"}': 1,
        'zhongtai_csat_ratings_total{queue="general",score="2"}': 1,
        'zhongtai_csat_ratings_total{queue="general",score="1"}': 1,
        'zhongtai_csat_ratings_total{queue="billing",score="4"}': 1,
    }
    assert len(ratings) == 10  # every queue and score, primed
    assert samples['zhongtai_qa_scored_total{queue="general"}'] == 1
    assert samples['zhongtai_qa_scored_total{queue="billing"}'] == 1
    assert "alice" not in "".join(samples)


async def test_bad_parameters_are_400s_naming_them(tenant, redis_url):
    async with running(config_for(tenant), redis_url) as gw:
        for query, field in [
            ("since=yesterday", "since"),
            ("until=2026-13-01", "until"),
            (f"since={DAY}10:00:00Z&until={DAY}09:00:00Z", "until"),
            ("since=2026-01-01T00:00:00Z&until=2026-12-01T00:00:00Z", "since"),
            ("queue=nowhere", "queue"),
            ("agent=carol", "agent"),
            ("format=xml", "format"),
            ("limit=3", "limit"),
        ]:
            for kind in ("agents", "queues"):
                response = await admin(gw, "GET", f"/reports/{kind}?{query}")
                assert response.status == 400, (kind, query)
                error = response.json()
                assert error["field"] == field, (kind, query, error)
                assert field in error["detail"]
        response = await admin(gw, "GET", "/reports/agents", headers={"Authorization": "x"})
        assert response.status == 401
