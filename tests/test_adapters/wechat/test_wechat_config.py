"""The [wechat] table: decoded strictly, errors name the key, and the docs name every key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters.wechat.config import AccountConfig, KfConfig, WeChatConfig
from gateway.config import ConfigError, parse_config

ROOT = Path(__file__).resolve().parents[3]
ACCOUNT = {"name": "main", "app_id": "wx1", "app_secret": "s", "token": "tok123"}
KF = {"corp_id": "ww1", "secret": "s", "token": "tok123", "aes_key": "a" * 43}


def parse(table: dict[str, Any]):
    return parse_config({"wechat": table}, "zhongtai.toml", {"wechat": WeChatConfig}, env={})


def test_a_minimal_table_and_its_defaults():
    config = parse({"accounts": [ACCOUNT], "kf": [KF]}).adapters["wechat"]
    assert isinstance(config, WeChatConfig)
    (account,) = config.accounts
    assert account.aes_key is None and account.api_base == "https://api.weixin.qq.com"
    assert config.kf[0].api_base == "https://qyapi.weixin.qq.com" and config.kf[0].key == "ww1"
    assert (config.window_s, config.replies_per_window, config.window_warning_s) == (
        172800.0,
        5,
        3600.0,
    )


@pytest.mark.parametrize(
    ("table", "where", "key"),
    [
        ({"accounts": [ACCOUNT | {"aes_key": "short"}]}, "wechat.accounts[0]", "aes_key"),
        ({"accounts": [ACCOUNT | {"secret": "x"}]}, "wechat.accounts[0]", "secret"),
        (
            {"accounts": [{k: v for k, v in ACCOUNT.items() if k != "token"}]},
            "wechat.accounts[0]",
            "token",
        ),
        ({"accounts": [ACCOUNT | {"name": "a/b"}]}, "wechat.accounts[0]", "name"),
        ({"accounts": [ACCOUNT | {"api_base": "ftp://x"}]}, "wechat.accounts[0]", "api_base"),
        ({"kf": [{k: v for k, v in KF.items() if k != "aes_key"}]}, "wechat.kf[0]", "aes_key"),
        ({"window_s": 0}, "wechat", "window_s"),
        ({"retry_attempts": 0}, "wechat", "retry_attempts"),
        ({"accounts": [ACCOUNT], "typo": 1}, "wechat", "typo"),
    ],
)
def test_errors_name_the_table_and_key(table, where, key):
    with pytest.raises(ConfigError) as error:
        parse(table)
    assert (error.value.table, error.value.key) == (where, key), str(error.value)


@pytest.mark.parametrize(
    ("table", "mentions"),
    [
        ({"accounts": [ACCOUNT, ACCOUNT]}, "accounts[1].name"),
        ({"accounts": [ACCOUNT | {"name": "kf"}]}, "accounts[0].name"),
        ({"kf": [KF, KF]}, "kf[1].name"),
        ({"accounts": [ACCOUNT | {"mode": "safe"}]}, "accounts[0].mode"),
        ({"accounts": [ACCOUNT | {"mode": "compatible"}]}, "accounts[0].mode"),
        ({"accounts": [ACCOUNT | {"mode": "plaintext", "aes_key": "a" * 43}]}, "accounts[0].mode"),
    ],
)
def test_duplicate_and_reserved_names_are_refused_naming_the_entry(table, mentions):
    with pytest.raises(ConfigError) as error:
        parse(table)
    assert mentions in str(error.value)


def test_the_mode_follows_the_aes_key_unless_given():
    config = parse(
        {
            "accounts": [
                ACCOUNT,
                ACCOUNT | {"name": "aes", "aes_key": "a" * 43},
                ACCOUNT | {"name": "both", "aes_key": "a" * 43, "mode": "compatible"},
            ]
        }
    ).adapters["wechat"]
    assert [a.mode for a in config.accounts] == ["plaintext", "safe", "compatible"]
    assert config.timestamp_tolerance_s == 300.0
    with pytest.raises(ConfigError) as error:
        parse({"accounts": [ACCOUNT | {"mode": "open"}]})
    assert (error.value.table, error.value.key) == ("wechat.accounts[0]", "mode")


def test_the_channel_guide_and_the_reference_name_every_key():
    guide = (ROOT / "docs" / "channels" / "wechat.md").read_text(encoding="utf-8")
    reference = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert "channels/wechat.md" in reference
    for struct in (WeChatConfig, AccountConfig, KfConfig):
        for field in msgspec.structs.fields(struct):
            assert f"`{field.name}`" in guide, f"docs/channels/wechat.md misses {field.name}"
            assert f"`{field.name}`" in reference, f"docs/configuration.md misses {field.name}"
