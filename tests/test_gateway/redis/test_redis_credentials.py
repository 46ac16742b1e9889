"""A Redis password never shows: not in the start-up error `zhongtai serve` prints, not in
its log lines, not in /readyz when Redis goes away. The URL itself still shows, with the
password masked, so the message still says which server it is about."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import aiohttp
import pytest
from harness import agent, make_config, running
from helpers import free_port, wait_until

from gateway.logs import JsonFormatter, PlainFormatter
from gateway.masking import mask_credentials
from gateway.redis.embedded import RedisServer, find_redis_server

pytestmark = pytest.mark.skipif(find_redis_server() is None, reason="redis-server not found")

PASSWORD = "Hunter2-Secret"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("redis://:Hunter2-Secret@db:6379/0", "redis://:***@db:6379/0"),
        ("redis://app:Hunter2-Secret@db", "redis://app:***@db"),
        ("rediss://app:Hun@ter2:Secret@db:6380", "rediss://app:***@db:6380"),
        ("unix://:Hunter2-Secret@/run/redis.sock?db=1", "unix://:***@/run/redis.sock?db=1"),
        (
            "unix:///run/redis.sock?db=1&password=Hunter2-Secret",
            "unix:///run/redis.sock?db=1&password=***",
        ),
        ("Redis at redis://db:6379 is down", "Redis at redis://db:6379 is down"),
    ],
)
def test_every_form_of_redis_url_is_masked(text, masked):
    assert mask_credentials(text) == masked


@pytest.mark.parametrize("formatter", [JsonFormatter(), PlainFormatter()], ids=["json", "plain"])
def test_both_log_formats_mask_every_line(formatter):
    url = 'redis://app:Hun"ter\\2@db:6379/0'  # quotes and backslashes, which JSON escapes
    try:
        raise ConnectionError(f"cannot reach {url}")
    except ConnectionError:
        record = logging.LogRecord("zhongtai", logging.ERROR, __file__, 1, "at %s", (url,), None)
        record.exc_info = sys.exc_info()
    line = formatter.format(record)
    assert "Hun" not in line and "redis://app:***@db:6379/0" in line


def test_the_start_up_error_and_log_name_the_server_but_not_the_password(tmp_path):
    port = free_port()  # nothing listens there
    config = tmp_path / "zhongtai.toml"
    config.write_text(
        f'[server]\ntenant = "t"\nport = {free_port()}\nadmin_port = {free_port()}\n'
        f'[redis]\nurl = "redis://app:{PASSWORD}@127.0.0.1:{port}/0"\n'
    )
    # The CLI as installed, with the wait for Redis cut from 15 s to 1 s.
    program = textwrap.dedent(
        f"""
        import sys, gateway.app
        gateway.app.REDIS_WAIT_S = 1.0
        from gateway.cli import main
        sys.exit(main(["serve", "--config", {str(config)!r}]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert PASSWORD not in output
    assert f"redis://app:***@127.0.0.1:{port}/0" in output
    assert "could not start" in output


async def test_readyz_and_the_log_keep_the_password_when_redis_goes_away(tenant, caplog):
    server = RedisServer(password=PASSWORD)
    server.start()
    try:
        config = make_config(tenant, agents=[agent("alice")])
        async with running(config, server.url) as gw, aiohttp.ClientSession() as http:
            assert PASSWORD in server.url
            server.stop()

            async def unready() -> str | None:
                async with http.get(gw.admin_base + "/readyz") as reply:
                    return await reply.text() if reply.status == 503 else None

            answer = await wait_until(unready, timeout=30, message="/readyz 503")
            assert "redis" in answer and PASSWORD not in answer
    finally:
        server.stop()
    assert not [r for r in caplog.records if PASSWORD in r.getMessage()]
