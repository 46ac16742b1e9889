"""The guards' [server] keys: defaults a contact centre can live with, and a bad value is a
config error naming the key."""

from __future__ import annotations

import pytest

from adapters import registry
from gateway.config import ConfigError, ServerConfig, parse_config


def parse(server: dict[str, object]):
    return parse_config({"server": server}, "<test>", registry.config_types([]), env={})


def test_the_defaults():
    server = ServerConfig()
    assert (server.admin_host, server.trusted_proxies) == ("127.0.0.1", [])
    assert (server.max_connections, server.max_connections_per_address) == (10000, 500)
    assert (server.header_timeout_s, server.body_timeout_s) == (10.0, 60.0)
    assert server.hello_timeout_s == 10.0


@pytest.mark.parametrize(
    ("server", "named"),
    [
        ({"trusted_proxies": ["not-an-ip"]}, r"\[server\] trusted_proxies: 'not-an-ip'"),
        ({"max_connections": -1}, r"\[server\] max_connections: cannot be negative"),
        ({"max_connections_per_address": -5}, r"max_connections_per_address: cannot be"),
        ({"header_timeout_s": -1.0}, r"\[server\] header_timeout_s: cannot be negative"),
        ({"body_timeout_s": -1.0}, r"\[server\] body_timeout_s: cannot be negative"),
        ({"hello_timeout_s": -1.0}, r"\[server\] hello_timeout_s: cannot be negative"),
    ],
)
def test_a_bad_value_names_its_key(server, named):
    with pytest.raises(ConfigError, match=named):
        parse(server)


def test_zero_switches_a_guard_off():
    config = parse({"max_connections": 0, "header_timeout_s": 0, "body_timeout_s": 0})
    assert config.server.max_connections == 0
