"""Web chat limits that hold across sockets and processes (issue: floods): a visitor's
messages per minute are counted per visitor, so reconnecting with the same token does not
start afresh; new visitors are counted per client address, which a trusted proxy's
X-Forwarded-For names. The limits' minute is held still, so no count straddles a boundary."""

from __future__ import annotations

import pytest
from harness import connect, make_config, running
from obs_support import scraped

from adapters.webchat import limits


@pytest.fixture(autouse=True)
def still_minute(monkeypatch):
    monkeypatch.setattr(limits, "wall_clock", lambda: 1_800_000_000.0)


async def hello(gw, token: str | None = None, forwarded: str | None = None):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    client = connect(gw.ws_url("/webchat/ws"), additional_headers=headers)
    socket = await client.__aenter__()
    await socket.send(type="hello", visitor_token=token)
    return client, socket, await socket.expect(("welcome", "error"))


async def forwarded_header_is_ignored(gw) -> None:
    """With one new visitor a minute, two hellos naming two forwarded clients: the second
    is refused, as the peer (not the header) is the client."""
    a, _, first = await hello(gw, forwarded="192.0.2.1")
    b, _, second = await hello(gw, forwarded="192.0.2.2")
    assert first["type"] == "welcome" and second["code"] == "rate_limited"
    for client in (a, b):
        await client.__aexit__(None, None, None)


async def test_reconnecting_does_not_reset_a_visitors_message_limit(tenant, redis_url):
    config = make_config(tenant, webchat={"messages_per_minute": 4})
    async with running(config, redis_url) as gw:
        first, socket, welcome = await hello(gw)
        token = welcome["visitor_token"]
        for n in range(3):
            await socket.send(type="message", text=f"m{n}", client_msg_id=f"m{n}")
            await socket.expect("message", client_msg_id=f"m{n}")
        await first.__aexit__(None, None, None)
        # A new socket, the same visitor: one message left this minute, then refused.
        second, again, welcome = await hello(gw, token)
        assert welcome["type"] == "welcome"
        await again.send(type="message", text="m3", client_msg_id="m3")
        await again.expect("message", client_msg_id="m3")
        await again.send(type="message", text="m4", client_msg_id="m4")
        refused = await again.expect("error", client_msg_id="m4")
        assert refused["code"] == "rate_limited"
        await second.__aexit__(None, None, None)
        limit = "webchat.messages_per_minute"
        assert await scraped(gw.admin_base, "zhongtai_limited_total", limit=limit) == 1


async def test_new_visitors_are_limited_per_address_and_returning_ones_are_not(tenant, redis_url):
    config = make_config(tenant, webchat={"messages_per_minute": 0, "new_visitors_per_minute": 2})
    async with running(config, redis_url) as gw:
        opened = []
        for _ in range(2):
            client, _socket, welcome = await hello(gw)
            assert welcome["type"] == "welcome"
            opened.append((client, welcome["visitor_token"]))
        client, socket, refused = await hello(gw)
        assert (refused["type"], refused["code"]) == ("error", "rate_limited")
        assert await socket.expect_closed() == 1008
        await client.__aexit__(None, None, None)
        limit = "webchat.new_visitors_per_minute"
        assert await scraped(gw.admin_base, "zhongtai_limited_total", limit=limit) == 1
        # A visitor who comes back is not new: their token still works.
        back, _socket, welcome = await hello(gw, opened[0][1])
        assert welcome["type"] == "welcome"
        await back.__aexit__(None, None, None)
        for client, _token in opened:
            await client.__aexit__(None, None, None)


async def test_a_trusted_proxys_forwarded_address_is_the_client(tenant, redis_url):
    tables = {"messages_per_minute": 0, "new_visitors_per_minute": 1}
    trusted = make_config(tenant, webchat=tables | {"trusted_proxies": ["127.0.0.0/8"]})
    async with running(trusted, redis_url) as gw:
        # Two customers behind one proxy each get their visitor; the same one twice does not.
        a, _, welcome_a = await hello(gw, forwarded="203.0.113.7")
        b, _, welcome_b = await hello(gw, forwarded="198.51.100.9, 203.0.113.8")
        c, _, refused = await hello(gw, forwarded="203.0.113.7")
        assert welcome_a["type"] == welcome_b["type"] == "welcome"
        assert refused["code"] == "rate_limited"
        for client in (a, b, c):
            await client.__aexit__(None, None, None)
    untrusted = make_config(tenant, webchat=tables)
    async with running(untrusted, redis_url) as gw:
        # Without trusted proxies the header is anyone's to forge: the peer is the client.
        await forwarded_header_is_ignored(gw)


async def test_the_servers_trusted_proxies_serve_the_web_chat_unless_it_has_its_own(
    tenant, redis_url
):
    tables = {"messages_per_minute": 0, "new_visitors_per_minute": 1}
    server = {"trusted_proxies": ["127.0.0.0/8"]}
    inherited = make_config(tenant, server=server, webchat=tables)
    async with running(inherited, redis_url) as gw:
        # Listed once, under [server]: two customers behind the proxy are two visitors.
        a, _, first = await hello(gw, forwarded="203.0.113.7")
        b, _, second = await hello(gw, forwarded="203.0.113.8")
        assert first["type"] == second["type"] == "welcome"
        for client in (a, b):
            await client.__aexit__(None, None, None)
    own = make_config(tenant, server=server, webchat=tables | {"trusted_proxies": []})
    async with running(own, redis_url) as gw:
        # An explicit empty list trusts no proxy for the web chat: the peer is the client.
        await forwarded_header_is_ignored(gw)


def test_a_bad_trusted_proxy_is_a_config_error_naming_it(tenant):
    with pytest.raises(Exception, match=r"trusted_proxies.*not-an-ip"):
        make_config(tenant, webchat={"trusted_proxies": ["not-an-ip"]})
