"""A graded complaint's deadlines (超时提醒) through the sockets and the admin API, with
deadlines of a second or two: the reminder and the missed deadline reach the agent holding
it and the leads of its queue (only those), not before they are due; the grade's action is
applied (the priority raised; a held conversation moved to another queue, its agent told);
the counters count each once."""

from __future__ import annotations

from datetime import datetime

from harness import agent_client, customer
from supervisor_support import admin_get, centre, centre_tables, lead

from gateway.supervisors import session as supervisor_session

COMPLAINT = "我要投诉 this is a complaint"


def tables(on_deadline: dict, **grade: float) -> dict:
    base = centre_tables()
    queues = [dict(q, auto_accept=True) for q in base["queues"]]
    return {
        "queues": queues,
        "grades": [
            {
                "name": "A",
                "priority": 5,
                "sla_s": 30.0,
                "first_response_s": 2.0,
                "remind_before_s": 1.0,
                **grade,
                "on_deadline": on_deadline,
            }
        ],
        "rules": [{"name": "投诉", "keywords": ["投诉"], "grade": "A"}, *base["rules"]],
        "routing": {"sweep_interval_s": 0.05},
        "supervisors": [
            *base["supervisors"],
            {"id": "bea", "token": "tok-bea", "queues": ["billing"]},
        ],
    }


def at(frame_time: str) -> float:
    return datetime.fromisoformat(frame_time).timestamp()


async def test_reminder_and_missed_deadline_reach_the_agent_and_the_leads(
    tenant, redis_url, monkeypatch
):
    monkeypatch.setattr(supervisor_session, "REFRESH_S", 600.0)
    overrides = tables({"action": "raise_priority", "priority": 9}, resolve_s=4.0)
    async with (
        centre(tenant, redis_url, **overrides) as gw,
        agent_client(gw, "alice") as alice,
        lead(gw, "tok-gail") as (gail, _),
        lead(gw, "tok-bea") as (bea, _),
        customer(gw) as visitor,
    ):
        await visitor.send(type="message", text=COMPLAINT)
        assigned = await alice.expect("assigned", timeout=10)
        conversation = assigned["conversation"]
        conversation_id = conversation["id"]
        kinds = {d["kind"]: d for d in conversation["deadlines"]}
        assert set(kinds) == {"first_response", "resolve"}
        first_due = at(kinds["first_response"]["due_at"])
        assert at(kinds["first_response"]["remind_at"]) == first_due - 1.0

        reminder = await alice.expect("deadline", timeout=10, stage="reminder")
        assert datetime.now().timestamp() >= first_due - 1.0  # not before it is due
        assert (reminder["conversation_id"], reminder["deadline"]) == (
            conversation_id,
            "first_response",
        )
        alert = await gail.expect("deadline", timeout=10, stage="reminder")
        assert (alert["queue"], alert["grade"], alert["agent"]) == ("general", "A", "alice")

        missed = await alice.expect("deadline", timeout=10, stage="missed")
        assert datetime.now().timestamp() >= first_due
        assert (missed["deadline"], missed["action"]) == ("first_response", "raise_priority")
        lead_missed = await gail.expect("deadline", timeout=10, stage="missed")
        assert lead_missed["deadline"] == "first_response"
        # Bea leads billing only: her socket's frames come in order, so by her pong she
        # would have had any alert sent along with gail's.
        await bea.send(type="ping")
        await bea.expect("pong")
        assert not [f for f in bea.frames if f["type"] == "deadline"]

        view = await admin_get(gw, f"/api/conversations/{conversation_id}")
        assert view["conversation"]["priority"] == 9
        states = {d["kind"]: d["state"] for d in view["deadlines"]}
        assert states["first_response"] == "missed"

        # The resolution deadline comes next; a close before it would have cancelled it.
        await alice.expect("deadline", timeout=10, stage="reminder", deadline="resolve")
        await alice.expect("deadline", timeout=10, stage="missed", deadline="resolve")
        view = await admin_get(gw, f"/api/conversations/{conversation_id}")
        assert {d["kind"]: d["state"] for d in view["deadlines"]} == {
            "first_response": "missed",
            "resolve": "missed",
        }
        metrics = gw.services.metrics
        missed_count = metrics.complaint_deadlines_missed.labels(
            "general", "A", "first_response", "raise_priority"
        )
        assert missed_count._value.get() == 1
        reminders = metrics.complaint_reminders.labels("general", "A", "resolve")
        assert reminders._value.get() == 1


async def test_a_held_complaint_moves_to_the_grades_queue_at_its_deadline(
    tenant, redis_url, monkeypatch
):
    monkeypatch.setattr(supervisor_session, "REFRESH_S", 600.0)
    overrides = tables({"action": "move_to_queue", "queue": "billing"}, remind_before_s=0.0)
    async with (
        centre(tenant, redis_url, **overrides) as gw,
        agent_client(gw, "alice") as alice,
        agent_client(gw, "bob") as bob,
        lead(gw, "tok-lin") as (lin, _),
        customer(gw) as visitor,
    ):
        await visitor.send(type="message", text=COMPLAINT)
        conversation_id = (await alice.expect("assigned", timeout=10))["conversation"]["id"]
        missed = await alice.expect("deadline", timeout=10, stage="missed")
        assert missed["action"] == "move_to_queue"
        closed = await alice.expect("closed", timeout=10, conversation_id=conversation_id)
        assert closed["reason"] == "transferred"
        # Bob takes billing, the grade's queue: it comes to him (auto_accept), with the note.
        moved = await bob.expect("assigned", timeout=10)
        assert moved["conversation"]["id"] == conversation_id
        assert moved["conversation"]["queue"] == "billing"
        assert "deadline missed" in moved["conversation"]["transfer_note"]
        alert = await lin.expect("deadline", timeout=10, stage="missed")
        assert (alert["queue"], alert["agent"]) == ("general", "alice")
        assert not [f for f in alice.frames if f["type"] == "deadline" and f["stage"] == "reminder"]


async def test_the_first_reply_meets_the_first_deadline_and_the_close_the_other(
    tenant, redis_url, redis
):
    # Deadlines far enough off that nothing fires: the test reads what the reply and the
    # close took away, in Redis and in the admin API.
    overrides = tables({"action": "notify_leads"}, first_response_s=30.0, resolve_s=60.0)
    async with (
        centre(tenant, redis_url, **overrides) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as visitor,
    ):
        await visitor.send(type="message", text=COMPLAINT)
        conversation_id = (await alice.expect("assigned", timeout=10))["conversation"]["id"]
        timers = f"zt:{{{tenant}}}:timers:conv"

        async def kinds() -> set[str]:
            members = await redis.zrange(timers, 0, -1)
            return {
                m.decode().split("|")[0] for m in members if m.decode().endswith(conversation_id)
            }

        assert {"first_remind", "first_due", "resolve_remind", "resolve_due"} <= await kinds()
        await alice.send(
            type="reply", conversation_id=conversation_id, text="您好", client_msg_id="r1"
        )
        await alice.expect("reply_ack", client_msg_id="r1")
        assert not {"first_remind", "first_due"} & await kinds()
        assert {"resolve_remind", "resolve_due"} <= await kinds()
        view = await admin_get(gw, f"/api/conversations/{conversation_id}")
        assert {d["kind"]: d["state"] for d in view["deadlines"]} == {
            "first_response": "met",
            "resolve": "pending",
        }
        await alice.send(type="close", conversation_id=conversation_id)
        await alice.expect("closed", conversation_id=conversation_id)
        assert not {"resolve_remind", "resolve_due"} & await kinds()
        view = await admin_get(gw, f"/api/conversations/{conversation_id}")
        assert {d["kind"]: d["state"] for d in view["deadlines"]} == {
            "first_response": "met",
            "resolve": "met",
        }
