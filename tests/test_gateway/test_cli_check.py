"""`zhongtai check-config` as a user runs it: what looks valid and is not is an error or a
warning that names the file, the entry by its name and the key; `--strict` fails on warnings;
every subcommand's options state their defaults in --help."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "zhongtai.example.toml"

ALICE = '[[agents]]\nid = "alice"\ntoken = "tok-alice-1234"\nskills = { general = 3 }\n'
GENERAL = '[[queues]]\nname = "general"\nskills = { general = 1 }\n'
WEBCHAT = "[webchat]\nenabled = true\n"


def zhongtai(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**base, **(env or {})},
        check=False,
    )


def check(tmp_path: Path, text: str, *flags: str) -> tuple[str, subprocess.CompletedProcess[str]]:
    path = tmp_path / "zhongtai.toml"
    path.write_text(text, encoding="utf-8")
    return str(path), zhongtai("check-config", str(path), *flags)


# -- unknown channel names are errors (item 3) -------------------------------------------------

CHANNEL_TYPOS = [
    pytest.param(
        '[[agents]]\nid = "alice"\ntoken = "t-1"\ncapacity = { webchta = 2 }\n',
        '[agents "alice"] capacity.webchta',
        id="agent-capacity",
    ),
    pytest.param(
        ALICE + 'capacity = { webchat = 2 }\n[[queues]]\nname = "chat"\nchannels = ["webchta"]\n',
        '[queues "chat"] channels[0]',
        id="queue-channels",
    ),
    pytest.param(
        ALICE + GENERAL + '[[rules]]\nname = "vip"\nchannels = ["webchta"]\npriority = 5\n',
        '[rules "vip"] channels[0]',
        id="rule-channels",
    ),
]


@pytest.mark.parametrize(("text", "where"), CHANNEL_TYPOS)
def test_an_unknown_channel_is_an_error_with_a_suggestion(tmp_path, text, where):
    file, result = check(tmp_path, text)
    assert result.returncode == 2, result.stdout
    assert f'{file}: {where}: unknown channel "webchta" — did you mean "webchat"?' in (
        result.stderr
    )


def test_the_reviews_channel_is_review(tmp_path):
    """The reviews adapter's table is [reviews] but its messages are on channel "review"."""
    _, result = check(tmp_path, '[[agents]]\nid = "a"\ntoken = "t-1"\ncapacity = { reviews = 1 }\n')
    assert result.returncode == 2
    assert 'unknown channel "reviews" — did you mean "review"?' in result.stderr


# -- warnings: valid, but will not work (items 3 and 5) -----------------------------------------


def test_a_queue_nobody_can_serve_is_a_warning_and_strict_fails(tmp_path):
    text = (
        ALICE
        + "capacity = { webchat = 2 }\n"
        + GENERAL
        + '[[queues]]\nname = "misc"\nskills = { genral = 1 }\n'
        + WEBCHAT
    )
    file, result = check(tmp_path, text)
    assert result.returncode == 0, result.stderr
    assert "1 warnings" in result.stdout
    (warning,) = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warning.startswith(f'warning: {file}: [queues "misc"]: no configured agent can ever')
    assert "genral >= 1" in warning

    _, strict = check(tmp_path, text, "--strict")
    assert strict.returncode == 2
    assert warning in strict.stderr


def test_an_escalation_that_relaxes_skills_makes_a_queue_servable(tmp_path):
    text = (
        ALICE
        + "capacity = { webchat = 2 }\n"
        + '[[queues]]\nname = "general"\nskills = { genral = 1 }\n'
        + "[[queues.escalation]]\nafter_s = 60\nrelax_skills = true\n"
        + WEBCHAT
    )
    _, result = check(tmp_path, text, "--strict")
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr


def with_webchat(capacity: str, queue: str, channels: str) -> str:
    """Alice with that capacity, one queue taking those channels, and [webchat] on."""
    queues = f'[[queues]]\nname = "{queue}"\nchannels = [{channels}]\n'
    return ALICE + f"capacity = {{ {capacity} }}\n" + queues + WEBCHAT


def test_a_channel_no_queue_takes_is_a_warning(tmp_path):
    file, result = check(tmp_path, with_webchat("webchat = 2, email = 2", "mail", '"email"'))
    assert result.returncode == 0, result.stderr
    assert f'warning: {file}: [webchat]: no queue takes channel "webchat"' in result.stderr
    assert zhongtai("check-config", file, "--strict").returncode == 2


def test_a_queue_channel_no_adapter_serves_is_a_warning(tmp_path):
    """The queue never gets those conversations: the adapter's table is missing or off."""
    capacity, channels = "webchat = 2, wechat = 2, review = 2", '"webchat", "wechat", "review"'
    file, result = check(tmp_path, with_webchat(capacity, "general", channels))
    assert result.returncode == 0, result.stderr
    where = f'warning: {file}: [queues "general"] channels: queue "general" takes channel'
    assert f'{where} "wechat" but no [wechat] adapter is configured' in result.stderr
    assert f'{where} "review" but no [reviews] adapter is configured' in result.stderr
    assert '"webchat" but' not in result.stderr, "an enabled adapter serves it"
    assert zhongtai("check-config", file, "--strict").returncode == 2
    _, served = check(tmp_path, ALICE + "capacity = { webchat = 2 }\n" + GENERAL + WEBCHAT)
    assert "adapter is configured" not in served.stderr


def test_a_channel_no_agent_has_capacity_on_is_a_warning(tmp_path):
    file, result = check(tmp_path, ALICE + "capacity = { email = 2 }\n" + GENERAL + WEBCHAT)
    assert result.returncode == 0, result.stderr
    assert f'warning: {file}: [webchat]: no agent has capacity on channel "webchat"' in (
        result.stderr
    )


def test_the_example_passes_with_warnings_about_its_placeholder_secrets():
    result = zhongtai("check-config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert f'warning: {EXAMPLE}: [agents "alice"] token: "change-me-alice" is a placeholder' in (
        "\n".join(warnings)
    )
    # bob's token_sha256 is the hash of "change-me-bob": a placeholder too.
    assert any(f'{EXAMPLE}: [agents "bob"] token_sha256: the SHA-256 of a placeholder' in w
               for w in warnings)  # fmt: skip
    assert all("placeholder" in w for w in warnings), warnings
    assert zhongtai("check-config", "--strict", str(EXAMPLE)).returncode == 2


def test_a_real_secret_from_the_environment_silences_the_warning(tmp_path):
    text = ALICE.replace("tok-alice-1234", "change-me") + "capacity = { webchat = 1 }\n" + WEBCHAT
    file, result = check(tmp_path, text)
    assert f'{file}: [agents "alice"] token: "change-me" is a placeholder' in result.stderr
    assert "ZHONGTAI_AGENT_TOKEN_ALICE" in result.stderr, "says where a real one can come from"
    fixed = zhongtai("check-config", "--strict", file, env={"ZHONGTAI_AGENT_TOKEN_ALICE": "s3"})
    assert fixed.returncode == 0, fixed.stderr


def test_a_placeholder_webhook_secret_is_a_warning_until_the_environment_has_one(tmp_path):
    """The example's commented `secret = "change-me-webhook"`, uncommented as it stands."""
    hook = '[[webhooks]]\nname = "crm"\nurl = "https://crm.example.com/hook"\n'
    text = (
        ALICE + "capacity = { webchat = 1 }\n" + WEBCHAT + hook + 'secret = "change-me-webhook"\n'
    )
    file, result = check(tmp_path, text, "--strict")
    assert result.returncode == 2
    assert (
        f'warning: {file}: [webhooks "crm"] secret: "change-me-webhook" is a placeholder secret:'
        " set a real one (or ZHONGTAI_WEBHOOK_SECRET_CRM)"
    ) in result.stderr
    fixed = zhongtai("check-config", "--strict", file, env={"ZHONGTAI_WEBHOOK_SECRET_CRM": "s3"})
    assert fixed.returncode == 0, fixed.stderr


# -- errors name entries, list enum values, suggest keys (item 4) ------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GENERAL + 'strategy = "least_busy"\n',
            '[queues "general"] strategy: "least_busy" is not one of "least_loaded",'
            ' "longest_idle", "round_robin"',
        ),
        (
            GENERAL + 'stratgy = "round_robin"\n',
            '[queues "general"] stratgy: unknown key "stratgy" — did you mean "strategy"?',
        ),
        (
            ALICE + "capacity = { webchat = 2 }\nmax_totl = 3\n",
            '[agents "alice"] max_totl: unknown key "max_totl" — did you mean "max_total"?',
        ),
        (
            '[[supervisors]]\nid = "lin"\ntoken = "t-lin"\nqueues = ["genral"]\n' + GENERAL,
            '[supervisors "lin"] queues[0]: no queue named "genral" — did you mean "general"?',
        ),
        (
            '[hours.office]\nweekly = { mo = ["09:00-18:00"] }\n',
            '[hours.office] weekly: "mo" is not one of "mon", "tue", "wed", "thu", "fri",'
            ' "sat", "sun"',
        ),
        ("[webchta]\nenabled = true\n", '[webchta]: unknown table — did you mean "webchat"?'),
        # Timings that decode but cannot work: a sweep of 0 runs back to back against Redis,
        # a heartbeat slower than node_ttl_s has the other processes take this one for dead.
        ("[routing]\nsweep_interval_s = 0\n", "[routing] sweep_interval_s: Expected `float` > 0.0"),
        (
            "[routing]\ndecline_cooldown_s = -5\n",
            "[routing] decline_cooldown_s: Expected `float` >= 0",
        ),
        ("[presence]\ngrace_s = -1\n", "[presence] grace_s: Expected `float` >= 0.0"),
        (
            "[presence]\nheartbeat_interval_s = 20\n",
            "[presence] heartbeat_interval_s: must be below [presence] node_ttl_s (15.0)",
        ),
        (
            '[[qa.scorecard]]\nname = "greet"\nwieght = 2\n',
            '[qa.scorecard "greet"] wieght: unknown key "wieght" — did you mean "weight"?',
        ),
        (
            '[[webhooks]]\nname = "crm"\nurl = "https://crm.example.com/hook"\nevnts = ["*"]\n',
            '[webhooks "crm"] evnts: unknown key "evnts" — did you mean "events"?',
        ),
    ],
)
def test_errors_name_entries_and_suggest(tmp_path, text, message):
    file, result = check(tmp_path, text)
    assert result.returncode == 2
    assert f"config error: {file}: {message}" in result.stderr


REDIS_CLUSTER = "redis+cluster://127.0.0.1:7000/0"


def test_check_config_refuses_the_redis_url_serve_refuses(tmp_path):
    file, result = check(tmp_path, f'[redis]\nurl = "{REDIS_CLUSTER}"\n')
    assert result.returncode == 2
    message = '[redis] url: scheme "redis+cluster" is not one of "redis", "rediss", "unix"'
    assert f"{file}: {message}" in result.stderr
    served = zhongtai("serve", "--config", file)
    assert served.returncode == 2 and f"{file}: {message}" in served.stderr
    assert "Traceback" not in served.stderr


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        (REDIS_CLUSTER, "(for Redis Cluster, set [redis] cluster_nodes)"),
        (
            "redis+sentinel://10.0.0.5:26379/mymaster",
            "(for Redis Sentinel, set [redis] sentinels and sentinel_master)",
        ),
    ],
)
def test_a_cluster_or_sentinel_url_points_to_the_keys_for_it(tmp_path, url, hint):
    """Such URLs are what other clients take; the gateway has tables for them instead."""
    file, result = check(tmp_path, f'[redis]\nurl = "{url}"\n')
    assert result.returncode == 2
    assert f"{file}: [redis] url: scheme " in result.stderr and hint in result.stderr


def test_serve_checks_a_redis_url_from_the_command_line_and_the_environment():
    flag = zhongtai("serve", "--demo", "--redis-url", REDIS_CLUSTER)
    assert flag.returncode == 2
    assert 'command line: --redis-url: scheme "redis+cluster"' in flag.stderr
    assert "--token" not in flag.stdout, "nothing printed before the check"
    env = zhongtai("serve", "--demo", env={"ZHONGTAI_REDIS_URL": REDIS_CLUSTER})
    assert env.returncode == 2
    assert 'environment: ZHONGTAI_REDIS_URL: scheme "redis+cluster"' in env.stderr


@pytest.mark.parametrize("key", ["port", "admin_port"])
def test_a_port_past_65535_is_refused_not_wrapped_around(tmp_path, key):
    """Sockets take 70000 and listen on 4464 while the start-up line says 70000."""
    file, result = check(tmp_path, f"[server]\n{key} = 70000\n")
    assert result.returncode == 2
    assert f"config error: {file}: [server] {key}: 70000 is not a port: use 1 to 65535" in (
        result.stderr
    )
    _, zero = check(tmp_path, f"[server]\n{key} = 0\n")
    assert zero.returncode == 2 and f"[server] {key}: 0 is not a port" in zero.stderr


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[server]\nhost = "nosuch.invalid"\n', "[server] host"),
        ('[server]\nadmin_host = "nosuch.invalid"\n', "[server] admin_host"),
        (
            '[email.smtp_in]\nhost = "nosuch.invalid"\n[[email.mailboxes]]\nname = "support"\n'
            'address = "support@example.com"\n',
            "[email.smtp_in] host",
        ),
    ],
)
def test_a_listener_host_that_does_not_resolve_is_an_error(tmp_path, text, where):
    """serve cannot bind to it; check-config says so instead of passing the file.
    (.invalid never resolves, RFC 2606.)"""
    file, result = check(tmp_path, text)
    assert result.returncode == 2, result.stderr
    assert f"config error: {file}: {where}: cannot resolve 'nosuch.invalid'" in result.stderr
    served = zhongtai("serve", "--config", file)
    assert served.returncode == 2 and f"{file}: {where}: cannot resolve" in served.stderr
    assert "Traceback" not in served.stderr


def test_serve_names_a_host_option_that_does_not_resolve(tmp_path):
    _, resolved = check(tmp_path, '[server]\nhost = "localhost"\nadmin_host = "127.0.0.1"\n')
    assert "cannot resolve" not in resolved.stderr and resolved.returncode == 0
    result = zhongtai("serve", "--demo", "--admin-host", "nosuch.invalid")
    assert result.returncode == 2
    assert "command line: --admin-host: cannot resolve 'nosuch.invalid'" in result.stderr
    assert "Zhongtai demo" not in result.stdout


@pytest.mark.parametrize("option", ["--port", "--admin-port"])
def test_serve_refuses_a_port_option_that_is_not_a_port(option):
    result = zhongtai("serve", "--demo", option, "70000")
    assert result.returncode == 2
    assert f"argument {option}: 70000 is not a port: use 1 to 65535" in result.stderr
    assert "Zhongtai demo" not in result.stdout and "Traceback" not in result.stderr


# -- --help states every default (item 11) -----------------------------------------------------


def _options(help_text: str) -> dict[str, str]:
    """Option -> its help text, from argparse's "options:" section."""
    section = help_text.split("options:", 1)[1]
    options: dict[str, str] = {}
    current = None
    for line in section.splitlines():
        if match := re.match(r"^  (-[-\w]+(?:, --[-\w]+)?)(?: [A-Z_]+)?(?:\s{2,}(.*))?$", line):
            current = match.group(1).split(", ")[-1]
            options[current] = match.group(2) or ""
        elif current and line.startswith(" " * 8):
            options[current] += " " + line.strip()
    return options


@pytest.mark.parametrize("command", ["serve", "check-config", "agent"])
def test_every_option_has_a_help_that_states_its_default(command):
    result = zhongtai(command, "--help")
    assert result.returncode == 0
    options = _options(result.stdout)
    options.pop("--help")
    assert options, result.stdout
    for option, text in options.items():
        assert re.search(r"\((default: |required)", text), f"{command} {option}: {text!r}"


def test_serve_help_gives_the_real_defaults():
    options = _options(zhongtai("serve", "--help").stdout)
    assert "127.0.0.1" in options["--host"]
    assert "8080" in options["--port"] and "9180" in options["--admin-port"]
    assert "./var" in options["--data-dir"]
