"""The system under test: our own redis-server and gateway process, or one already running.

By default a run starts both itself, with a generated config, so that it measures nothing but
this code on this machine, and stops them at the end; a gateway killed with the generator must
not be left behind. With ``--url`` it targets a running gateway, on 127.0.0.1 only: the
generator never sends load to another machine. Also here: py-spy on the gateway's pid.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from load_wallboards import lead_config
from load_wire import READY_TIMEOUT_S, now

LOCALHOST = "127.0.0.1"
PR_SET_PDEATHSIG = 1


@dataclasses.dataclass
class Target:
    ws_base: str
    admin_base: str | None
    tokens: list[str]
    gateway_pid: int | None = None
    redis_pid: int | None = None
    redis_url: str | None = None  # known for our own Redis only: its command counts
    command: str = ""


def given_target(args: argparse.Namespace) -> Target:
    return Target(
        ws_base=local_base(args.url, "ws"),
        admin_base=local_base(args.admin_url, "http") if args.admin_url else None,
        tokens=list(args.agent_token),
        gateway_pid=args.gateway_pid,
    )


def local_base(url: str, scheme: str) -> str:
    """The base URL with its host checked: the generator only ever talks to this machine."""
    parts = urlsplit(url)
    if parts.hostname not in (LOCALHOST, "localhost") or parts.port is None:
        raise SystemExit(f"{url}: only {LOCALHOST} with an explicit port is allowed")
    return f"{scheme}://{LOCALHOST}:{parts.port}"


@contextlib.contextmanager
def own_stack(args: argparse.Namespace) -> Iterator[Target]:
    """A private redis-server and one gateway process, stopped and removed at the end."""
    if args.source:
        sys.path.insert(0, os.path.abspath(args.source))
    from gateway.redis.embedded import RedisServer, pick_free_port

    work = Path(tempfile.mkdtemp(prefix="zhongtai-bench-"))
    redis = RedisServer(persistent=False).start()
    proc: subprocess.Popen[bytes] | None = None
    try:
        config = work / "bench.toml"
        extra = args.config_extra + lead_config(args.wallboards)
        tokens = write_config(config, args.agents, args.capacity, extra)
        port, admin_port = pick_free_port(), pick_free_port()
        program, env = gateway_command(args.source and os.path.abspath(args.source))
        command = [
            *program,
            "serve",
            "--config",
            str(config),
            "--redis-url",
            redis.url,
            "--port",
            str(port),
            "--admin-port",
            str(admin_port),
            "--data-dir",
            str(work),
        ]
        log = work / "gateway.log"
        with open(log, "wb") as out:
            # cwd: ``python -m`` puts the working directory first on the path, ahead of
            # PYTHONPATH, and the caller's may be another checkout.
            proc = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=work,
                preexec_fn=die_with_us,
            )
        admin_base = f"http://{LOCALHOST}:{admin_port}"
        wait_ready(admin_base, proc, log)
        yield Target(
            ws_base=f"ws://{LOCALHOST}:{port}",
            admin_base=admin_base,
            tokens=tokens,
            gateway_pid=proc.pid,
            redis_pid=redis.pid,
            redis_url=redis.url,
            command=" ".join(command),
        )
    finally:
        if proc is not None:
            stop_process(proc)
        redis.stop()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def write_config(path: Path, agents: int, capacity: int, extra: str = "") -> list[str]:
    """A config with one queue and agents that can hold every conversation of the run."""
    tokens = [f"bench-token-{i:03d}" for i in range(agents)]
    lines = [
        '[server]\ntenant = "bench"\n',
        '[logging]\nlevel = "warning"\n',
        # The per-socket rate limit protects against one abusive visitor; a pooled visitor
        # writes far more often than a person, so it is off here.
        "[webchat]\nmessages_per_minute = 0\nnew_visitors_per_minute = 0\n",
        '[[queues]]\nname = "general"\nchannels = ["webchat"]\n',
    ]
    for i, token in enumerate(tokens):
        lines.append(
            f'[[agents]]\nid = "agent{i:03d}"\ntoken = "{token}"\n'
            f"capacity = {{ webchat = {capacity} }}\n"
        )
    # Escaped newlines, so that a one-line shell argument can hold several lines.
    lines.append(extra.replace("\\n", "\n"))
    path.write_text("\n".join(lines))
    return tokens


def gateway_command(source: str | None) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run ``zhongtai`` from the installed package, or from
    a source tree put first on the path (ahead of an editable install's finder)."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
        return [sys.executable, "-m", "gateway"], env
    script = Path(sys.executable).parent / "zhongtai"
    return ([str(script)] if script.exists() else [sys.executable, "-m", "gateway"]), env


def die_with_us() -> None:
    """preexec_fn: Linux sends the gateway SIGTERM when this process dies, so that a
    generator killed hard does not leave a gateway behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))


def wait_ready(admin_base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = now() + READY_TIMEOUT_S
    while now() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the gateway exited with {proc.returncode}:\n{tail(log)}")
        try:
            with urllib.request.urlopen(f"{admin_base}/readyz", timeout=1.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"the gateway was not ready within {READY_TIMEOUT_S:g} s:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the gateway's graceful stop
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_profiler(path: str, pid: int | None, seconds: float) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if pid is None or not Path(spy).exists():
        print("--profile: needs py-spy (pip install py-spy) and the gateway's pid", file=sys.stderr)
        return None
    kinds = {".json": "speedscope", ".txt": "raw"}  # raw: collapsed stacks, one per line
    kind = kinds.get(Path(path).suffix, "flamegraph")
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, int(seconds))),
            "--rate",
            "200",
            "--format",
            kind,
            "--output",
            path,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
