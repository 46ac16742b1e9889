"""[[supervisors]] and [supervisor]: team leads' entries are checked like the agents' (every
error names the file, the table and the key) and match tokens with the agents' code."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config

QUEUES = '[[queues]]\nname = "general"\n\n[[queues]]\nname = "billing"\n\n'
AGENT = '[[agents]]\nid = "carol"\ntoken = "tok-carol"\n\n'


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None):
    path = tmp_path / "zhongtai.toml"
    path.write_text(QUEUES + AGENT + text, encoding="utf-8")
    return load_config(path, {}, env=env or {})


def test_a_lead_with_queues_and_an_agent_account(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"max-secret").hexdigest().upper()
    config = load(
        tmp_path,
        '[[supervisors]]\nid = "lin"\nname = "Lin"\ntoken = "tok-lin"\n'
        'queues = ["billing"]\nagent = "carol"\n\n'
        f'[[supervisors]]\nid = "max"\ntoken_sha256 = "{digest}"\n\n'
        "[supervisor]\nwallboard_min_interval_ms = 250\n",
    )
    lin, max_ = config.core.supervisors
    assert (lin.display_name, lin.queues, lin.agent) == ("Lin", ["billing"], "carol")
    assert lin.token_matches("tok-lin") and not lin.token_matches("tok-carol")
    assert max_.display_name == "max" and max_.queues == [] and max_.agent is None
    assert max_.token_matches("max-secret") and not max_.token_matches("max")
    assert config.core.supervisor.wallboard_min_interval_ms == 250


def test_defaults_without_leads(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert config.core.supervisors == []
    assert config.core.supervisor.wallboard_min_interval_ms == 500


def test_the_environment_supplies_a_leads_token(tmp_path: Path) -> None:
    env = {"ZHONGTAI_SUPERVISOR_TOKEN_LI_N": "from-env"}
    config = load(tmp_path, '[[supervisors]]\nid = "li.n"\n', env)
    assert config.core.supervisors[0].token_matches("from-env")


LEAD = '[[supervisors]]\nid = "lin"\ntoken = "tok-lin"\n'


@pytest.mark.parametrize(
    ("text", "table", "key", "problem"),
    [
        (LEAD + 'queues = ["general", "sales"]\n', 'supervisors "lin"', "queues[1]", "no queue"),
        (LEAD + 'agent = "zed"\n', 'supervisors "lin"', "agent", 'no agent "zed"'),
        (LEAD + LEAD, 'supervisors "lin"', "id", "duplicate supervisor id"),
        ('[[supervisors]]\nid = "lin"\n', 'supervisors "lin"', "token", "exactly one"),
        (
            LEAD + 'token_sha256 = "00"\n',
            'supervisors "lin"',
            "token",
            "exactly one of token or token_sha256",
        ),
        (
            '[[supervisors]]\nid = "lin"\ntoken = "tok-carol"\n',
            'supervisors "lin"',
            "token",
            "agent",
        ),
        (LEAD + "quues = []\n", 'supervisors "lin"', "quues", 'did you mean "queues"?'),
        ('[[supervisors]]\ntoken = "t"\n', "supervisors[0]", "id", "missing required"),
        (
            "[supervisor]\nwallboard_min_interval_ms = -1\n",
            "supervisor",
            "wallboard_min_interval_ms",
            "negative",
        ),
        (
            "[supervisor]\nwallboard_ms = 1\n",
            "supervisor",
            "wallboard_ms",
            'did you mean "wallboard_min_interval_ms"?',
        ),
    ],
)
def test_errors_name_the_file_table_and_key(tmp_path, text, table, key, problem) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    error = info.value
    assert (error.file, error.table, error.key) == (str(tmp_path / "zhongtai.toml"), table, key)
    assert problem in error.problem


def test_the_demo_has_a_lead_of_its_queues_whose_token_is_printed(capsys) -> None:
    from gateway import cli
    from gateway.demo import demo_config

    config = demo_config()
    (lin,) = config.core.supervisors
    assert lin.id == "lin" and lin.queues == [q.name for q in config.queues]
    cli._print_demo(config, "zhongtai")
    printed = capsys.readouterr().out
    assert (
        "team lead lin: the console, or the supervisor socket ws://127.0.0.1:8080/supervisor/ws,"
        f" with token {lin.token}" in (printed)
    )
