"""The client library as an agents' program gets it: the one import line of docs/protocol.md,
loading nothing of the gateway's server side, in a virtualenv that holds only this package
(installed without its dependencies), websockets and msgspec, against a running gateway."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import agent, customer, make_config, running

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs" / "protocol.md"
SERVER_SIDE = ("redis", "wechatpy", "prometheus_client", "aiohttp", "presence")
# Of the packages that also hold server code, the modules the library may load: the
# protocol and the message model it carries. Nothing of the router.
ALLOWED = {
    "gateway": {"gateway", "gateway.agents", "gateway.agents.protocol", "gateway.client"},
    "router": set(),
    "adapters": {"adapters", "adapters.model"},
}
LIBRARY_ONLY = ("websockets", "msgspec")
UNREACHABLE = re.compile(r"No matching distribution|Could not find a version|NewConnectionError")
RUN_S = 60.0
# Building the virtualenv takes some 15 to 30 s; the tests stay in the default run.
SLOW = pytest.mark.slow  # a deadline for scripts that take a second


def client_section() -> str:
    text = DOCS.read_text("utf-8")
    start = text.index("## The Python client library")
    return text[start : text.index("\n## ", start + 1)]


def import_line() -> str:
    """The one import line the docs show first."""
    lines = re.findall(r"^from gateway\.client import .+$", client_section(), re.MULTILINE)
    assert lines, "docs/protocol.md shows no `from gateway.client import` line"
    return lines[0]


def minimal_example() -> str:
    """The first Python example of the docs' client section, as written there."""
    blocks = re.findall(r"```python\n(.*?)```", client_section(), re.DOTALL)
    examples = [b for b in blocks if "asyncio.run(" in b]
    assert examples, "docs/protocol.md shows no runnable client example"
    return examples[0]


def loaded_after(code: str, python: str = sys.executable, **run: object) -> set[str]:
    """The modules in sys.modules of a fresh interpreter after running `code`."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [python, "-c", script], capture_output=True, text=True, timeout=RUN_S, check=False, **run
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def server_side(modules: set[str]) -> list[str]:
    """The modules loaded that belong to the gateway's server side, not to the library."""

    def server(name: str) -> bool:
        top = name.split(".")[0]
        if name.startswith("gateway.client."):
            return False  # the library's own modules; the terminal is checked apart
        return top in SERVER_SIDE or (top in ALLOWED and name not in ALLOWED[top])

    return sorted(filter(server, modules))


@pytest.mark.parametrize("code", ["import gateway.client", "import_line"])
def test_importing_the_library_loads_no_server_side_module(code: str) -> None:
    modules = loaded_after(import_line() if code == "import_line" else code)
    assert server_side(modules) == []
    assert "gateway.client.connection" in modules
    assert not [m for m in modules if m.startswith("gateway.client.terminal")]


def test_the_library_and_connection_names_are_the_same() -> None:
    import gateway.client
    import gateway.client.connection

    for name in gateway.client.connection.__all__:
        assert getattr(gateway.client, name) is getattr(gateway.client.connection, name)


# The done-when: a virtualenv with only the package, websockets and msgspec.


def copy_distribution(name: str, site_packages: Path) -> None:
    """Install a distribution of the running environment into another by copying its files:
    offline, and at the very version the suite runs with."""
    dist = importlib.metadata.distribution(name)
    for file in dist.files or ():
        source = Path(str(dist.locate_file(file)))
        if ".." in file.parts or not source.is_file():
            continue  # scripts installed outside site-packages, caches
        target = site_packages / file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def clean_env() -> dict[str, str]:
    """The environment without anything that points Python at this checkout or its venv."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYTHONSAFEPATH"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return env | {"PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def pip_install_package(python: Path, source: Path, tmp: Path) -> None:
    """`pip install --no-deps` of the package: offline with the venv's own setuptools when
    it can build a wheel, else with pip's build isolation (setuptools from pip's index)."""
    base = [str(python), "-m", "pip", "install", "-q", "--no-deps", str(source)]
    attempts = [
        [*base, "--no-build-isolation", "--no-index"],
        [*base, "--retries", "1", "--timeout", "30"],
    ]
    errors = []
    for command in attempts:
        done = subprocess.run(
            command, capture_output=True, text=True, cwd=tmp, env=clean_env(), timeout=300
        )
        if done.returncode == 0:
            return
        errors.append(done.stdout + done.stderr)
    if UNREACHABLE.search(errors[-1]):
        pytest.skip(
            "no setuptools to build the package with, offline or from pip's index:\n"
            + errors[-1][-2000:]
        )
    pytest.fail("pip install --no-deps of the package failed:\n" + "\n".join(errors)[-6000:])


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding only this package, websockets and msgspec; its python."""
    tmp = tmp_path_factory.mktemp("client-venv")
    source = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for package in ("gateway", "adapters", "router", "presence"):
        shutil.copytree(ROOT / package, source / package, ignore=ignore)
    venv = tmp / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", str(venv)], check=True, env=clean_env(), timeout=120
    )
    python = venv / "bin" / "python"
    pip_install_package(python, source, tmp)
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            env=clean_env(),
        ).stdout.strip()
    )
    for name in LIBRARY_ONLY:
        copy_distribution(name, site_packages)
    shutil.rmtree(source)  # the venv must not lean on the copy it was built from
    return python


def run_in_venv(python: Path, cwd: Path, code: str) -> subprocess.CompletedProcess[str]:
    script = cwd / "agent_program.py"
    script.write_text(code, "utf-8")
    return subprocess.run(
        [str(python), str(script)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean_env(),
        timeout=RUN_S,
    )


@SLOW
def test_the_venv_holds_only_the_package_and_the_two_libraries(
    client_venv: Path, tmp_path: Path
) -> None:
    found = run_in_venv(
        client_venv,
        tmp_path,
        """
import importlib.util, json
import gateway.client
names = ["aiohttp", "redis", "wechatpy", "prometheus_client", "websockets", "msgspec"]
print(json.dumps({"file": gateway.client.__file__,
                  "found": [n for n in names if importlib.util.find_spec(n)]}))
""",
    )
    assert found.returncode == 0, found.stderr
    seen = json.loads(found.stdout)
    assert Path(seen["file"]).is_relative_to(client_venv.parent.parent)
    assert not Path(seen["file"]).is_relative_to(ROOT)
    assert seen["found"] == ["websockets", "msgspec"]
    modules = loaded_after(import_line(), str(client_venv), cwd=tmp_path, env=clean_env())
    assert server_side(modules) == []


@SLOW
async def test_the_docs_import_line_talks_to_a_running_gateway(
    client_venv: Path, tmp_path: Path, tenant: str, redis_url: str
) -> None:
    config = make_config(tenant, agents=[agent("alice")])
    async with running(config, redis_url) as gw:
        url = gw.ws_url("/agent/ws")
        program = f"""
import asyncio
{import_line()}
from gateway.client import StatusFrame, Welcome


async def main() -> None:
    async with AgentClient({url!r}, "tok-alice") as client:
        welcome = await client.wait_for(Welcome)
        assert welcome.agent.id == "alice", welcome
        await client.set_status("away")
        status = await client.wait_for(StatusFrame)
        assert status.status == "away", status
        print("acknowledged", status.status)


asyncio.run(main())
"""
        done = await asyncio.to_thread(run_in_venv, client_venv, tmp_path, program)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "acknowledged away"


@SLOW
async def test_the_docs_minimal_example_accepts_and_replies(
    client_venv: Path, tmp_path: Path, tenant: str, redis_url: str
) -> None:
    config = make_config(tenant, agents=[agent("alice")])
    example = minimal_example()
    assert "ws://127.0.0.1:8080/agent/ws" in example and '"alice-secret"' in example
    async with running(config, redis_url) as gw, customer(gw) as visitor:
        await visitor.send(type="message", text="where is my parcel?")
        await visitor.expect("queue")  # waiting: the example's agent gets it when it comes
        program = example.replace("ws://127.0.0.1:8080/agent/ws", gw.ws_url("/agent/ws"))
        program = program.replace('"alice-secret"', '"tok-alice"')
        done = await asyncio.to_thread(run_in_venv, client_venv, tmp_path, program)
        assert done.returncode == 0, done.stderr
        async with asyncio.timeout(RUN_S):
            while True:
                frame = await visitor.expect("message")
                if frame["message"]["direction"] == "out":
                    break
        assert frame["message"]["text"] == "Hello! How can I help?"
