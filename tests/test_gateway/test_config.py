"""The configuration loader: the example file, located errors, the environment, defaults."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import get_args, get_origin

import msgspec
import pytest

from gateway.config import (
    AgentConfig,
    Config,
    ConfigError,
    CoreConfig,
    enabled_adapters,
    load_config,
    parse_config,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "zhongtai.example.toml"
DOCS = ROOT / "docs" / "configuration.md"


class WebChatStandIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The web chat adapter's table as the example documents it; a stand-in keeps these tests
    independent of the adapter package."""

    enabled: bool = True
    account: str = "default"
    max_frame_bytes: int = 16384
    max_text_chars: int = 4000
    heartbeat_s: float = 20.0
    visitor_ttl_s: float = 30 * 86400.0
    allowed_origins: list[str] = []
    trusted_proxies: list[str] | None = None


ADAPTERS: dict[str, type[msgspec.Struct]] = {"webchat": WebChatStandIn}


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    path = tmp_path / "zhongtai.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, ADAPTERS, env={} if env is None else env)


def uncommented_example() -> str:
    """The example with every commented-out ``key = value`` line switched on."""
    return re.sub(r"(?m)^# ([a-z_]+ = )", r"\1", EXAMPLE.read_text(encoding="utf-8"))


# -- the example file -------------------------------------------------------------------------


def test_example_parses() -> None:
    config = load_config(EXAMPLE, ADAPTERS, env={})
    assert config.source == str(EXAMPLE)
    assert [a.id for a in config.agents] == ["alice", "bob"]
    assert [q.name for q in config.queues] == ["general", "billing"]
    assert config.routing.default_queue == "general"
    assert config.redis.url is None, "the example runs the embedded Redis"
    assert config.core.admin.token is None, "the admin token comes from the environment"
    webchat = config.adapters["webchat"]
    assert isinstance(webchat, WebChatStandIn)
    assert webchat.enabled and webchat.account == "default"
    assert [name for name, _ in enabled_adapters(config)] == ["webchat"]
    bob = config.agents[1]
    assert bob.token is None and bob.token_matches("change-me-bob")


def test_example_commented_keys_are_valid_too(tmp_path: Path) -> None:
    config = load(tmp_path, uncommented_example())
    assert config.redis.url == "redis://127.0.0.1:6379/0"
    assert config.server.node_id == "gw-1"
    assert config.core.admin.token == "change-me-admin"
    webchat = config.adapters["webchat"]
    assert isinstance(webchat, WebChatStandIn)
    assert webchat.allowed_origins == ["https://shop.example.com"]


def test_example_shows_every_core_key() -> None:
    raw = tomllib.loads(uncommented_example())
    for table, struct in _core_tables():
        fields = {f.name for f in msgspec.structs.fields(struct)}
        value = raw.get(table)
        assert value is not None, f"the example has no [{table}]"
        shown: set[str] = set()
        items = value if isinstance(value, list) else [value]
        if table == "hours":
            items = list(value.values())
        for item in items:
            shown |= set(item)
        assert fields <= shown, f"[{table}] does not show {sorted(fields - shown)}"


def test_example_parses_with_the_real_webchat_adapter() -> None:
    webchat = pytest.importorskip("adapters.webchat")
    config_type = webchat.WebChatAdapter.Config
    config = load_config(EXAMPLE, {"webchat": config_type}, env={})
    assert config.adapters["webchat"].enabled  # type: ignore[attr-defined]


def test_docs_name_every_core_key() -> None:
    if not DOCS.exists():
        pytest.skip("docs/configuration.md not written yet")
    text = DOCS.read_text(encoding="utf-8")
    for table, struct in _core_tables():
        assert f"[{table}]" in text or f"[[{table}]]" in text, table
        for field in msgspec.structs.fields(struct):
            assert f"`{field.name}`" in text, f"docs miss {table}.{field.name}"


def _core_tables() -> list[tuple[str, type[msgspec.Struct]]]:
    """Each core table with the Struct of one of its entries."""
    tables: list[tuple[str, type[msgspec.Struct]]] = []
    for field in msgspec.structs.fields(CoreConfig):
        hint = field.type
        if get_origin(hint) is list:
            hint = get_args(hint)[0]
        elif get_origin(hint) is dict:
            hint = get_args(hint)[1]
        tables.append((field.name, hint))
    return tables


# -- errors name the file, the table and the key -----------------------------------------------

AGENT = '[[agents]]\nid = "a"\ntoken = "t"\n'

ERRORS = [
    pytest.param(
        "[server]\nprot = 8080\n",
        "server",
        "prot",
        'unknown key "prot" — did you mean "port"?',
        id="core-key",
    ),
    pytest.param(
        AGENT + '[[agents]]\nid = "b"\ntoken = "t"\nskils = { x = 1 }\n',
        'agents "b"',
        "skils",
        'unknown key "skils" — did you mean "skills"?',
        id="agents-key",
    ),
    pytest.param('[server]\nport = "8080"\n', "server", "port", "Expected `int`", id="type"),
    pytest.param(
        '[[agents]]\nname = "Anon"\ntoken = "t"\n',
        "agents[0]",
        "id",
        'missing required key "id"',
        id="agent-without-id",
    ),
    pytest.param(
        '[[queues]]\nchannels = ["webchat"]\n', "queues[0]", "name", "missing", id="queue-no-name"
    ),
    pytest.param(
        '[[queues]]\nname = "q"\nchannels = ["webchat", 3]\n',
        'queues "q"',
        "channels[1]",
        "Expected `str`",
        id="array-item",
    ),
    pytest.param(
        AGENT + 'skills = { general = "high" }\n',
        'agents "a"',
        "skills",
        "Expected `int`",
        id="dict-value-type",
    ),
    pytest.param(
        '[[queues]]\nname = "q"\nstrategy = "fastest"\n',
        'queues "q"',
        "strategy",
        '"fastest" is not one of "least_loaded", "longest_idle", "round_robin"',
        id="enum",
    ),
    pytest.param(
        '[logging]\nlevel = "loud"\n',
        "logging",
        "level",
        '"loud" is not one of "debug", "info", "warning", "error"',
        id="log-level",
    ),
    pytest.param(
        AGENT + '[[agents]]\nid = "a"\ntoken = "u"\n',
        'agents "a"',
        "id",
        'duplicate agent id "a" (entries 1 and 2)',
        id="duplicate-agent",
    ),
    pytest.param('[[agents]]\nid = "a"\n', 'agents "a"', "token", "token_sha256", id="no-token"),
    pytest.param(
        AGENT + "skills = { general = 6 }\n",
        'agents "a"',
        "skills.general",
        "from 1 to 5",
        id="skill-too-high",
    ),
    pytest.param(
        AGENT + "skills = { general = 0 }\n",
        'agents "a"',
        "skills.general",
        "from 1 to 5",
        id="skill-too-low",
    ),
    pytest.param(
        AGENT + "capacity = { email = -1 }\n",
        'agents "a"',
        "capacity.email",
        "negative",
        id="negative-capacity",
    ),
    pytest.param(
        '[[queues]]\nname = "a"\n[[queues]]\nname = "a"\n',
        'queues "a"',
        "name",
        "duplicate queue",
        id="duplicate-queue",
    ),
    pytest.param('[[queues]]\nname = "a b"\n', 'queues "a b"', "name", "letters", id="queue-name"),
    pytest.param(
        '[[queues]]\nname = "general"\n[routing]\ndefault_queue = "vip"\n',
        "routing",
        "default_queue",
        'no queue named "vip"',
        id="default-queue",
    ),
    pytest.param(
        "[routing]\noffer_timeout_s = 0\n", "routing", "offer_timeout_s", "greater", id="timeout"
    ),
    pytest.param('[server]\ntenant = "a:b"\n', "server", "tenant", "letters", id="tenant"),
    pytest.param(
        '[conversations]\nunnamed_agent = "  "\n',
        "conversations",
        "unnamed_agent",
        "one line",
        id="unnamed-agent",
    ),
    pytest.param(
        '[[agents]]\nid = "a"\ntoken = "t"\nshown_as = "Amy\\nBcc: x@y"\n',
        'agents "a"',
        "shown_as",
        "one line",
        id="shown-as",
    ),
    pytest.param(
        "[webchat]\nenabled = true\nbogus = 1\n",
        "webchat",
        "bogus",
        "unknown key",
        id="adapter-key",
    ),
    pytest.param(
        '[webchat]\nenabled = "yes"\n', "webchat", "enabled", "Expected `bool`", id="adapter-type"
    ),
]


@pytest.mark.parametrize(("text", "table", "key", "problem"), ERRORS)
def test_errors_are_located(tmp_path: Path, text: str, table: str, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    error = info.value
    assert (error.table, error.key) == (table, key)
    assert problem in error.problem
    file = str(tmp_path / "zhongtai.toml")
    assert error.file == file
    assert str(error).startswith(f"{file}: [{table}] {key}: ")


def test_unknown_top_level_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "[webchta]\nenabled = true\n")
    error = info.value
    assert (error.table, error.key) == ("webchta", None)
    assert "unknown table" in str(error) and "webchat" in str(error), "the known tables listed"
    assert str(error).startswith(f"{tmp_path / 'zhongtai.toml'}: [webchta]: ")


def test_a_table_of_the_wrong_shape(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "server = 5\n")
    error = info.value
    assert (error.table, error.key) == (None, "server")
    assert str(error) == f"{tmp_path / 'zhongtai.toml'}: server: Expected `object`, got `int`"


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, '[server]\nport = 8080\nhost = "unterminated\n')
    error = info.value
    assert error.file == str(tmp_path / "zhongtai.toml")
    assert "invalid TOML" in error.problem and "line 3" in error.problem


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[server]\nhost = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path, ADAPTERS, env={})


@pytest.mark.parametrize("name", ["missing.toml", "."])
def test_unreadable_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(ConfigError) as info:
        load_config(path, ADAPTERS, env={})
    assert info.value.file == str(path)
    assert "cannot read" in str(info.value) and str(path) in str(info.value)


# -- the environment ---------------------------------------------------------------------------

ENV_FILE = """
[redis]
url = "redis://file:6379/0"
[admin]
token = "from-file"
[[agents]]
id = "li.na"
token_sha256 = "00"
[[agents]]
id = "bob"
"""


def test_environment_overrides_secrets(tmp_path: Path) -> None:
    env = {
        "ZHONGTAI_REDIS_URL": "redis://env:6379/1",
        "ZHONGTAI_ADMIN_TOKEN": "from-env",
        "ZHONGTAI_AGENT_TOKEN_LI_NA": "lina-secret",
        "ZHONGTAI_AGENT_TOKEN_BOB": "bob-secret",
    }
    config = load(tmp_path, ENV_FILE, env)
    assert config.redis.url == "redis://env:6379/1"
    assert config.core.admin.token == "from-env"
    lina, bob = config.agents
    assert lina.token_sha256 is None, "the environment's token replaces the file's hash"
    assert lina.token_matches("lina-secret") and not lina.token_matches("00")
    assert bob.token_matches("bob-secret"), "an agent may have its token only in the env"


def test_empty_environment_values_are_ignored(tmp_path: Path) -> None:
    text = ENV_FILE.replace('id = "bob"', 'id = "bob"\ntoken = "b"')
    config = load(tmp_path, text, {"ZHONGTAI_REDIS_URL": "", "ZHONGTAI_ADMIN_TOKEN": ""})
    assert config.redis.url == "redis://file:6379/0"
    assert config.core.admin.token == "from-file"


def test_environment_defaults_to_os_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHONGTAI_REDIS_URL", "redis://os-env:6379/0")
    path = tmp_path / "zhongtai.toml"
    path.write_text("", encoding="utf-8")
    assert load_config(path, ADAPTERS).redis.url == "redis://os-env:6379/0"


def test_missing_token_is_still_an_error_without_the_env(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, ENV_FILE, {"ZHONGTAI_AGENT_TOKEN_LI_NA": "x"})
    assert (info.value.table, info.value.key) == ('agents "bob"', "token")


# -- tokens ------------------------------------------------------------------------------------


def test_token_sha256_matching() -> None:
    digest = hashlib.sha256(b"s3cret").hexdigest()
    agent = AgentConfig(id="a", token_sha256=digest)
    assert agent.token_matches("s3cret")
    assert not agent.token_matches("s3cret ")
    assert not agent.token_matches("")
    assert AgentConfig(id="a", token_sha256=digest.upper()).token_matches("s3cret")


def test_plain_token_matching() -> None:
    agent = AgentConfig(id="a", token="s3cret")
    assert agent.token_matches("s3cret")
    assert not agent.token_matches("S3CRET")
    assert not AgentConfig(id="a").token_matches(""), "no token configured: nothing matches"


def test_non_ascii_token() -> None:
    token = "口令-密码"
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert AgentConfig(id="a", token=token).token_matches(token)
    assert AgentConfig(id="a", token_sha256=digest).token_matches(token)


# -- defaults ----------------------------------------------------------------------------------


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert [q.name for q in config.queues] == ["general"]
    assert config.queues[0].channels == [], "the default queue takes every channel"
    assert config.routing.default_queue == "general"
    server = config.server
    assert (server.host, server.port, server.admin_port) == ("127.0.0.1", 8080, 9180)
    assert (server.tenant, server.data_dir) == ("default", "./var")
    assert config.redis.url is None
    assert config.agents == [] and config.adapters == {}
    assert config.presence.initial_status == "available"
    assert config.core.logging.level == "info"


def test_default_queue_names_the_only_queue(tmp_path: Path) -> None:
    config = load(tmp_path, '[routing]\ndefault_queue = "support"\n')
    assert [q.name for q in config.queues] == ["support"]


def test_default_queue_is_the_first_queue(tmp_path: Path) -> None:
    config = load(tmp_path, '[[queues]]\nname = "vip"\n[[queues]]\nname = "general"\n')
    assert config.routing.default_queue == "vip"


def test_disabled_adapter_is_not_enabled(tmp_path: Path) -> None:
    config = load(tmp_path, "[webchat]\nenabled = false\n")
    assert "webchat" in config.adapters
    assert list(enabled_adapters(config)) == []


def test_parse_config_takes_a_parsed_document() -> None:
    config = parse_config({"server": {"port": 1234}}, "<memory>", ADAPTERS, env={})
    assert config.server.port == 1234 and config.source == "<memory>"


@pytest.mark.parametrize(
    ("queues", "key", "problem"),
    [
        ([{"name": "a", "overflow": "a"}], "overflow", "itself"),
        ([{"name": "a", "after_hours_queue": "b"}, {"name": "b"}], "after_hours_queue", "hours"),
        (
            [{"name": "a", "escalation": [{"after_s": 60}, {"after_s": 30}]}],
            "escalation",
            "order",
        ),
        ([{"name": "a", "position_message": "wait"}], "position_message", "{position}"),
    ],
)
def test_routing_cross_checks(queues, key, problem):
    with pytest.raises(ConfigError) as raised:
        parse_config({"queues": queues}, "z.toml", {}, env={})
    assert raised.value.table == 'queues "a"' and raised.value.key == key
    assert problem in raised.value.problem


# -- channel names and the Redis URL -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "table", "key"),
    [
        ({"agents": [{"id": "a", "token": "t", "capacity": {"sms": 1}}]}, 'agents "a"',
         "capacity.sms"),
        ({"queues": [{"name": "q", "channels": ["webchat", "sms"]}]}, 'queues "q"', "channels[1]"),
        ({"rules": [{"name": "r", "channels": ["sms"]}]}, 'rules "r"', "channels[0]"),
    ],
)  # fmt: skip
def test_channel_names_must_be_known(data, table, key) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(data, "z.toml", {}, env={}, channels={"webchat", "email"})
    assert (raised.value.table, raised.value.key) == (table, key)
    assert raised.value.problem.startswith('unknown channel "sms"; one of email, webchat')


def test_a_redis_url_from_the_environment_is_checked_and_named_so() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config({}, "z.toml", {}, env={"ZHONGTAI_REDIS_URL": "http://redis:6379"})
    assert (raised.value.table, raised.value.key) == ("redis", "url (from ZHONGTAI_REDIS_URL)")
    assert 'scheme "http"' in raised.value.problem
