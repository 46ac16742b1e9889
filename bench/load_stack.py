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
import json
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
from typing import Any
from urllib.parse import urlsplit

from load_wallboards import lead_config
from load_wire import READY_TIMEOUT_S, now

LOCALHOST = "127.0.0.1"
PR_SET_PDEATHSIG = 1


@dataclasses.dataclass
class Target:
    """One or more gateway processes on one Redis: agents and visitors are spread over them."""

    ws_bases: list[str]
    admin_bases: list[str]
    tokens: list[str]
    gateway_pids: list[int] = dataclasses.field(default_factory=list)
    redis_pid: int | None = None
    redis_url: str | None = None  # known for our own Redis only: its command counts
    command: str = ""


def given_target(args: argparse.Namespace) -> Target:
    return Target(
        ws_bases=[local_base(url, "ws") for url in args.url],
        admin_bases=[local_base(url, "http") for url in args.admin_url],
        tokens=list(args.agent_token),
        gateway_pids=list(args.gateway_pid),
    )


def local_base(url: str, scheme: str) -> str:
    """The base URL with its host checked: the generator only ever talks to this machine."""
    parts = urlsplit(url)
    if parts.hostname not in (LOCALHOST, "localhost") or parts.port is None:
        raise SystemExit(f"{url}: only {LOCALHOST} with an explicit port is allowed")
    return f"{scheme}://{LOCALHOST}:{parts.port}"


@contextlib.contextmanager
def own_stack(args: argparse.Namespace) -> Iterator[Target]:
    """A private redis-server (or, with ``args.sentinel``, a master, a replica and three
    sentinels) and ``args.gateways`` gateway processes sharing it, stopped and removed at the
    end."""
    if args.source:
        sys.path.insert(0, os.path.abspath(args.source))
    work = Path(tempfile.mkdtemp(prefix="zhongtai-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with contextlib.ExitStack() as servers:
            redis, redis_extra = start_redis(args, servers)
            config = work / "bench.toml"
            extra = redis_extra + args.config_extra + lead_config(args.wallboards)
            tokens = write_config(config, args.agents, args.capacity, extra, args.strategy)
            target = Target(ws_bases=[], admin_bases=[], tokens=tokens, redis_pid=redis.pid)
            target.redis_url = redis.url
            # On Sentinel the gateway finds the master itself: no URL on its command line.
            gateway_redis = None if redis_extra else redis.url
            # Each process reads the whole config at start-up: allow for a large one.
            ready_s = READY_TIMEOUT_S + args.agents / 200
            for i in range(max(1, args.gateways)):
                proc, ws, admin, command = start_gateway(args, config, gateway_redis, work, i)
                procs.append(proc)
                wait_ready(admin, proc, work / f"gateway-{i}.log", ready_s)
                target.ws_bases.append(ws)
                target.admin_bases.append(admin)
                target.gateway_pids.append(proc.pid)
                target.command = command
            try:
                yield target
            finally:
                for proc in procs:
                    stop_process(proc)  # before Redis goes: a graceful stop writes to it
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def start_redis(args: argparse.Namespace, servers: contextlib.ExitStack) -> tuple[Any, str]:
    """The Redis under test, stopped with ``servers``, and the ``[redis]`` table the gateway
    needs for it (empty for a plain server, whose URL goes on the command line)."""
    from gateway.redis.embedded import RedisServer

    if not getattr(args, "sentinel", False):
        return servers.enter_context(RedisServer(persistent=False)), ""
    from gateway.redis.embedded.sentinels import sentinel_set

    setup = servers.enter_context(sentinel_set(3))
    table = (
        f"[redis]\nsentinels = {json.dumps(setup.addresses)}\n"
        f"min_replica_acks = {args.min_replica_acks}\n"
    )
    return setup.master, table


def start_gateway(
    args: argparse.Namespace, config: Path, redis_url: str | None, work: Path, i: int
) -> tuple[subprocess.Popen[bytes], str, str, str]:
    """Gateway process ``i``: its own ports, data dir and log; the process, its public and
    admin bases and its command line."""
    from gateway.redis.embedded import pick_free_port

    port, admin_port = pick_free_port(), pick_free_port()
    data = work / f"data-{i}"
    data.mkdir()
    program, env = gateway_command(args.source and os.path.abspath(args.source))
    command = [
        *program,
        "serve",
        "--config",
        str(config),
        *(["--redis-url", redis_url] if redis_url else []),
        "--port",
        str(port),
        "--admin-port",
        str(admin_port),
        "--data-dir",
        str(data),
    ]
    with open(work / f"gateway-{i}.log", "wb") as out:
        # cwd: ``python -m`` puts the working directory first on the path, ahead of
        # PYTHONPATH, and the caller's may be another checkout.
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work, preexec_fn=die_with_us
        )
    base = f"{LOCALHOST}:{port}"
    return proc, f"ws://{base}", f"http://{LOCALHOST}:{admin_port}", " ".join(command)


def write_config(
    path: Path, agents: int, capacity: int, extra: str = "", strategy: str = "least_loaded"
) -> list[str]:
    """A config with one queue and agents that can hold every conversation of the run."""
    tokens = [f"bench-token-{i:03d}" for i in range(agents)]
    # Every agent and visitor comes from this one address, standing in for thousands of
    # clients: the per-process and per-address connection caps make room for all of them.
    room = agents + 10000
    lines = [
        f'[server]\ntenant = "bench"\nmax_connections = {room}\n'
        f"max_connections_per_address = {room}\n",
        '[logging]\nlevel = "warning"\n',
        # The per-socket rate limit protects against one abusive visitor; a pooled visitor
        # writes far more often than a person, so it is off here.
        "[webchat]\nmessages_per_minute = 0\nnew_visitors_per_minute = 0\n",
        f'[[queues]]\nname = "general"\nchannels = ["webchat"]\nstrategy = "{strategy}"\n',
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


def wait_ready(
    admin_base: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = READY_TIMEOUT_S
) -> None:
    deadline = now() + timeout_s
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
    raise SystemExit(f"the gateway was not ready within {timeout_s:g} s:\n{tail(log)}")


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
