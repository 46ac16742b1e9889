"""An integrator's adapter package, installed with pip beside the gateway, carries a message
in and a reply out through a real gateway process: the path docs/adapters.md walks through.

The package (outoftree/zhongtai-echo) is installed into a virtualenv of the test's own, which
sees this environment's packages through a .pth file, so nothing is downloaded: pip runs
with --no-index, --no-deps and --no-build-isolation. This environment does not know the
adapter; only the virtualenv's gateway finds it, by its entry point.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import site
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from harness import GatewayProcess, accept_offer, admin_ready, agent_client
from helpers import wait_until

import gateway
from adapters import registry

PACKAGE = Path(__file__).parent / "outoftree" / "zhongtai-echo"
# Where this process imports the gateway from: the virtualenv imports the same code.
SOURCE_ROOT = Path(gateway.__file__).resolve().parent.parent
STEP_TIMEOUT_S = 60

CONFIG = """
[[agents]]
id = "alice"
token = "tok-alice"
capacity = { echo = 1 }

[[queues]]
name = "general"

[echo]
account = "shop"
"""


def builds_wheels_offline() -> bool:
    """setuptools builds a wheel by itself from 70.1 on; before, it needs `wheel`."""
    if importlib.util.find_spec("pip") is None:
        return False
    if importlib.util.find_spec("wheel") is not None:
        return True
    major, minor = (int(part) for part in importlib.metadata.version("setuptools").split(".")[:2])
    return (major, minor) >= (70, 1)


def run(*command: str | Path) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def echo_python(tmp_path: Path) -> Path:
    """The interpreter of a virtualenv where zhongtai-echo is installed."""
    if not builds_wheels_offline():
        pytest.skip("installing a package offline needs pip and setuptools>=70.1 (or wheel)")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    # This environment's site directories, processed as such (their own .pth files, like an
    # editable install's, included), then the source root.
    ours = [p for p in site.getsitepackages() if Path(p).is_dir() and p in sys.path]
    lines = [f"import site; site.addsitedir({p!r})" for p in ours] + [str(SOURCE_ROOT)]
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
    Path(purelib.strip(), "_zhongtai_test_parent.pth").write_text("\n".join(lines) + "\n")
    # A copy: building writes build/ and *.egg-info beside the sources.
    source = shutil.copytree(PACKAGE, tmp_path / "zhongtai-echo")
    run(
        python,
        "-m",
        "pip",
        "--isolated",
        "install",
        "--quiet",
        "--no-index",
        "--no-deps",
        "--no-build-isolation",
        source,
    )
    return python


async def gateway_up(process: GatewayProcess) -> bool:
    if process.process.poll() is not None:
        assert process.process.stdout is not None
        raise AssertionError(f"the gateway exited:\n{process.process.stdout.read().decode()}")
    return await admin_ready(process.admin_port)


@pytest.mark.timeout(STEP_TIMEOUT_S)
async def test_an_installed_adapter_takes_a_message_in_and_a_reply_out(
    echo_python: Path, tmp_path: Path, tenant: str, redis_url: str
) -> None:
    assert "echo" not in registry.available()  # found only where it was installed
    process = GatewayProcess(tmp_path, tenant, redis_url, "echo-node", CONFIG, str(echo_python))
    base = f"http://127.0.0.1:{process.port}"
    try:
        await wait_until(lambda: gateway_up(process), timeout=30, message="the gateway is ready")
        async with agent_client(process, "alice") as alice, aiohttp.ClientSession() as http:
            message = {"id": "e1", "customer": "ann", "text": "where is my parcel?"}
            async with http.post(f"{base}/echo/in", json=message) as response:
                assert response.status == 200, await response.text()
                accepted = await response.json()
            assert not accepted["duplicate"]

            conversation_id = await accept_offer(alice)
            assert conversation_id == accepted["conversation_id"]
            await alice.send(
                type="reply", conversation_id=conversation_id, text="on its way", client_msg_id="r1"
            )
            await alice.expect("reply_ack", client_msg_id="r1")

            async def replies() -> list[dict[str, object]]:
                async with http.get(f"{base}/echo/out") as out:
                    return await out.json()

            [reply] = await wait_until(replies, timeout=10, message="the reply came out")
        assert reply == {
            "conversation_id": conversation_id,
            "customer": "ann",
            "text": "on its way",
            "agent_name": "Agent",  # an unnamed agent: never the id
        }
        assert await process.stop() == 0
    finally:
        process.kill()
