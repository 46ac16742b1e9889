"""The pre-chat form, end to end: what the visitor answers reaches the agent, through a real
gateway, real sockets and the suite's Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from harness import agent, agent_client, customer, make_config, running

from adapters.webchat import WebChatConfig
from adapters.webchat.config import PrechatField, UploadsConfig

FORM: list[Any] = [
    "name",
    {"name": "email", "kind": "email"},
    {"name": "phone", "kind": "phone"},
    {"name": "order", "label": "Order number", "required": True},
]


@pytest.fixture
def config(tenant: str):
    return make_config(tenant, agents=[agent("alice")], webchat={"prechat": FORM})


async def test_answers_reach_the_agent_and_a_returning_visitor_is_not_asked(
    config, redis_url
) -> None:
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        async with customer(gw) as visitor:
            welcome = visitor.frames[0]
            assert [f["name"] for f in welcome["prechat"]] == ["name", "email", "phone", "order"]
            assert welcome["prechat"][0] == {"name": "name", "kind": "name", "required": True}
            assert welcome["prechat"][3]["label"] == "Order number"
            answers = {"name": " Li Wei ", "email": "li@example.com", "order": "4471"}
            await visitor.send(type="message", text="parcel?", client_msg_id="m1", prechat=answers)
            await visitor.expect("message", client_msg_id="m1")
            token = welcome["visitor_token"]

        offer = await alice.expect("offer")
        conversation = offer["conversation"]
        assert conversation["customer"]["name"] == "Li Wei"
        expected = {"prechat.email": "li@example.com", "prechat.order": "4471"}
        assert conversation["messages"][0]["metadata"] == expected
        await alice.send(type="accept", offer_id=offer["offer_id"])
        await alice.expect("assigned")

        async with customer(gw, visitor_token=token) as again:
            assert "prechat" not in again.frames[0]
            await again.send(type="message", text="still there?")
            later = await alice.expect("message", conversation_id=conversation["id"])
            assert later["message"]["metadata"] == expected


async def test_a_missing_required_field_is_named_and_nothing_is_stored(config, redis_url) -> None:
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as visitor,
    ):
        await visitor.send(type="message", text="hi", client_msg_id="m1")
        error = await visitor.expect("error", client_msg_id="m1")
        assert (error["code"], error["field"]) == ("prechat_required", "prechat.name")
        await visitor.send(
            type="message", text="hi", client_msg_id="m2", prechat={"name": "Li Wei"}
        )
        error = await visitor.expect("error", client_msg_id="m2")
        assert (error["code"], error["field"]) == ("prechat_required", "prechat.order")
        assert "Order number" in error["detail"]
        answers = {"name": "Li Wei", "order": "1"}
        await visitor.send(type="message", text="third", client_msg_id="m3", prechat=answers)
        await visitor.expect("message", client_msg_id="m3")
        offer = await alice.expect("offer")
        assert [m["text"] for m in offer["conversation"]["messages"]] == ["third"]


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({"email": "not-an-address"}, "prechat.email"),
        ({"email": "a@b"}, "prechat.email"),
        ({"phone": "call me"}, "prechat.phone"),
        ({"phone": "12345"}, "prechat.phone"),
        ({"name": "x" * 201}, "prechat.name"),
        ({"order": "line\nbreak"}, "prechat.order"),
    ],
)
async def test_malformed_answers_are_refused_naming_the_field(
    config, redis_url, answers: dict[str, str], field: str
) -> None:
    good = {"name": "Li Wei", "order": "4471", "email": "li@example.com", "phone": "+86 10 1234"}
    async with running(config, redis_url) as gw, customer(gw) as visitor:
        await visitor.send(type="message", text="hi", prechat={**good, **answers})
        error = await visitor.expect("error")
        assert (error["code"], error["field"]) == ("invalid", field)
        await visitor.send(type="message", text="hi", client_msg_id="ok", prechat=good)
        await visitor.expect("message", client_msg_id="ok")


async def test_without_a_form_nothing_is_asked(tenant, redis_url) -> None:
    async with running(make_config(tenant), redis_url) as gw, customer(gw) as visitor:
        assert "prechat" not in visitor.frames[0]
        await visitor.send(type="message", text="hi", client_msg_id="m1")
        await visitor.expect("message", client_msg_id="m1")


@pytest.mark.parametrize(
    ("prechat", "problem"),
    [
        (["name", "name"], "unique"),
        (["name", {"name": "full_name", "kind": "name"}], "at most one"),
        ([{"name": "email", "kind": "fax"}], "kind"),
        (["Bad Name"], "prechat"),
    ],
)
def test_form_config_is_checked(prechat: list[Any], problem: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=problem):
        msgspec.convert({"prechat": prechat}, WebChatConfig)


def test_bare_names_make_a_required_name_and_optional_others() -> None:
    config = msgspec.convert({"prechat": ["name", "email", "company"]}, WebChatConfig)
    kinds = [(f.name, f.kind, f.required) for f in config.prechat_fields]
    assert kinds == [("name", "name", True), ("email", "email", False), ("company", "text", False)]


def test_every_webchat_key_is_documented() -> None:
    docs = (Path(__file__).resolve().parents[3] / "docs" / "configuration.md").read_text()
    section = docs[docs.index("### `[webchat]`") : docs.index("### `[wechat]`")]
    for struct in (WebChatConfig, PrechatField, UploadsConfig):
        for field in msgspec.structs.fields(struct):
            assert f"| `{field.name}` |" in section, f"{struct.__name__}.{field.name}"
