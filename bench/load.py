"""Load generator: new web chat conversations at Poisson arrivals, answered by bot agents.

By default it starts its own private redis-server and one ``zhongtai serve`` process, so that a
run measures nothing but this code on this machine; with ``--url`` it targets a gateway that is
already running on 127.0.0.1. Customers are a pool of pre-connected visitor sockets (a real
widget connects once and then writes; connecting hundreds of sockets a second would measure TCP
and HTTP upgrade handshakes, not routing). Agents accept every offer at once, reply once and
close, which frees the visitor for its next conversation.

Per conversation it measures the time from the customer's send to the agent's ``offer`` (matched
by a unique marker in the message text) and to the customer's own echo (the message is stored).

    .venv/bin/python bench/load.py --rate 500 --duration 20
    .venv/bin/python bench/load.py --rate 500 --duration 20 --agent-procs 1 --json out.json

See bench/README.md and BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import dataclasses
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import websockets
from websockets.asyncio.client import ClientConnection

LOCALHOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0
CONNECT_CONCURRENCY = 64
CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1
# CLOCK_MONOTONIC is system-wide on Linux, so agent processes' timestamps compare with ours.
now = time.monotonic


# --- Frames: only the fields the generator reads (msgspec skips the rest unparsed). ----------


class _Text(msgspec.Struct):
    text: str = ""


class _Conversation(msgspec.Struct):
    id: str
    messages: list[_Text] = []


class AgentFrame(msgspec.Struct):
    type: str
    offer_id: str | None = None
    conversation: _Conversation | None = None
    conversation_id: str | None = None
    client_msg_id: str | None = None
    code: str | None = None
    detail: str | None = None
    reason: str | None = None


class CustomerFrame(msgspec.Struct):
    type: str
    client_msg_id: str | None = None
    visitor_token: str | None = None
    code: str | None = None
    detail: str | None = None


agent_decoder = msgspec.json.Decoder(AgentFrame)
customer_decoder = msgspec.json.Decoder(CustomerFrame)
encode = msgspec.json.Encoder().encode

MARKER_PREFIX = "load-"
MARKER_RE = re.compile(r"load-[0-9a-z]+-\d+")


# --- Command line. --------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=100.0, help="new conversations per second")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before")
    p.add_argument("--drain", type=float, default=10.0, help="most seconds to wait at the end")
    p.add_argument(
        "--visitors",
        type=int,
        default=0,
        help="pre-connected visitor sockets (default: one second of arrivals, >= 50)",
    )
    p.add_argument("--agents", type=int, default=20, help="agents in the generated config")
    p.add_argument("--capacity", type=int, default=1000, help="each agent's web chat capacity")
    p.add_argument(
        "--agent-procs",
        type=int,
        default=0,
        help="run the agents in this many separate processes (0: in this one)",
    )
    p.add_argument(
        "--config-extra",
        default="",
        metavar="TOML",
        help='appended to the generated config, e.g. "[redis]\\npool_size = 256"',
    )
    p.add_argument(
        "--deflate",
        action="store_true",
        help="negotiate permessage-deflate, as browsers do (default: off)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the arrival process")
    p.add_argument(
        "--source",
        metavar="DIR",
        help="run the gateway from this source tree (e.g. a `git archive` snapshot) "
        "instead of the installed one",
    )
    p.add_argument("--url", help="a running gateway's public base, e.g. http://127.0.0.1:8080")
    p.add_argument("--admin-url", help="its admin base, e.g. http://127.0.0.1:9180")
    p.add_argument(
        "--agent-token",
        action="append",
        default=[],
        help="an agent token of the running gateway (repeat)",
    )
    p.add_argument("--gateway-pid", type=int, help="the running gateway's pid, for its CPU time")
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="py-spy record the gateway during the measured window (.svg, .json, .txt)",
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for the machine to be idle",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary dir (config, logs)")
    p.add_argument("--json", metavar="FILE", help="write the results to this file")
    p.add_argument(
        "--trace",
        metavar="FILE",
        help="write one CSV line per conversation: sent s, to echo ms, to offer ms",
    )
    args = p.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0:
        p.error("--rate and --duration must be positive")
    if args.url and not args.agent_token:
        p.error("--url needs the gateway's agents: --agent-token TOKEN (repeat)")
    if not args.visitors:
        args.visitors = max(50, int(args.rate))
    return args


def local_base(url: str, scheme: str) -> str:
    """The base URL with its host checked: the generator only ever talks to this machine."""
    parts = urlsplit(url)
    if parts.hostname not in (LOCALHOST, "localhost") or parts.port is None:
        raise SystemExit(f"{url}: only {LOCALHOST} with an explicit port is allowed")
    return f"{scheme}://{LOCALHOST}:{parts.port}"


# --- Processes and their CPU time. ----------------------------------------------------------


def cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of a process, from /proc (psutil is not a dependency)."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in field 2 may hold spaces and parentheses: split after the last ")".
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine, all cores, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def wait_idle(most_s: float, busy_below: float = 0.15, quiet_s: float = 3.0) -> float:
    """Wait until the machine has been nearly idle for quiet_s (other jobs skew a benchmark
    badly on a small machine); returns the busy fraction of the last quiet_s."""
    deadline = now() + most_s
    while True:
        b0, t0 = machine_jiffies()
        time.sleep(quiet_s)
        b1, t1 = machine_jiffies()
        busy = (b1 - b0) / max(1, t1 - t0)
        if busy < busy_below or now() >= deadline:
            return busy


@dataclasses.dataclass
class Target:
    ws_base: str
    admin_base: str | None
    tokens: list[str]
    gateway_pid: int | None = None
    redis_pid: int | None = None
    redis_url: str | None = None  # known for our own Redis only: its command counts
    command: str = ""


def write_config(path: Path, agents: int, capacity: int, extra: str = "") -> list[str]:
    """A config with one queue and agents that can hold every conversation of the run."""
    tokens = [f"bench-token-{i:03d}" for i in range(agents)]
    lines = [
        '[server]\ntenant = "bench"\n',
        '[logging]\nlevel = "warning"\n',
        # The per-socket rate limit protects against one abusive visitor; a pooled visitor
        # writes far more often than a person, so it is off here.
        "[webchat]\nmessages_per_minute = 0\n",
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
        tokens = write_config(config, args.agents, args.capacity, args.config_extra)
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


def given_target(args: argparse.Namespace) -> Target:
    return Target(
        ws_base=local_base(args.url, "ws"),
        admin_base=local_base(args.admin_url, "http") if args.admin_url else None,
        tokens=list(args.agent_token),
        gateway_pid=args.gateway_pid,
    )


def scrape_metrics(admin_base: str | None) -> dict[str, float]:
    """The few gateway counters that explain batching: routing calls and offers made."""
    if admin_base is None:
        return {}
    wanted = (
        "zhongtai_dispatch_seconds_count",
        "zhongtai_dispatch_seconds_sum",
        "zhongtai_offers_made_total",
    )
    try:
        with urllib.request.urlopen(f"{admin_base}/metrics", timeout=5.0) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    found: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            found[name] = float(value)
    return found


def redis_commands(url: str | None) -> dict[str, int]:
    """Calls per command since the server started (INFO commandstats); a pipeline of n
    commands counts n here but is one round trip."""
    if url is None:
        return {}
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5.0)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


# --- Agents. --------------------------------------------------------------------------------


@dataclasses.dataclass
class AgentStats:
    offers: dict[str, float] = dataclasses.field(default_factory=dict)  # marker -> arrival
    closed: int = 0
    errors: int = 0
    samples: list[str] = dataclasses.field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.samples) < 10:
            self.samples.append(what)


def connect(url: str, deflate: bool) -> Any:
    # No client pings: the gateway's heartbeat already probes every socket.
    return websockets.connect(
        url,
        open_timeout=10.0,
        ping_interval=None,
        max_size=2**20,
        compression="deflate" if deflate else None,
    )


def marker_in(conversation: _Conversation | None) -> str | None:
    if conversation is None:
        return None
    for message in reversed(conversation.messages):
        found = MARKER_RE.search(message.text)
        if found:
            return found.group(0)
    return None


async def on_agent_frame(
    ws: ClientConnection, frame: AgentFrame, at: float, stats: AgentStats
) -> None:
    """Accept at once, reply once, close: the shortest life a conversation can have."""
    kind = frame.type
    if kind == "offer":
        marker = marker_in(frame.conversation)
        if marker is None:
            stats.error("offer without a load marker")
        else:
            stats.offers[marker] = at
        await ws.send(encode({"type": "accept", "offer_id": frame.offer_id}), text=True)
    elif kind == "assigned" and frame.conversation is not None:
        conv = frame.conversation.id
        await ws.send(
            encode(
                {"type": "reply", "conversation_id": conv, "text": "on it", "client_msg_id": conv}
            ),
            text=True,
        )
    elif kind == "reply_ack":
        await ws.send(encode({"type": "close", "conversation_id": frame.client_msg_id}), text=True)
    elif kind == "closed":
        stats.closed += 1
    elif kind in ("error", "offer_revoked"):
        stats.error(f"agent {kind}: {frame.code or frame.reason} {frame.detail or ''}".strip())


async def run_agent(
    url: str, token: str, deflate: bool, stats: AgentStats, welcomed: asyncio.Event
) -> None:
    async with connect(url, deflate) as ws:
        await ws.send(encode({"type": "hello", "token": token, "protocol": 1}), text=True)
        first = agent_decoder.decode(await ws.recv(decode=False))
        if first.type != "welcome":
            raise RuntimeError(f"agent hello refused: {first.code} {first.detail}")
        welcomed.set()
        while True:
            raw = await ws.recv(decode=False)
            at = now()
            await on_agent_frame(ws, agent_decoder.decode(raw), at, stats)


@contextlib.asynccontextmanager
async def agents_running(
    url: str, tokens: Sequence[str], deflate: bool, stats: AgentStats
) -> AsyncIterator[None]:
    """Every agent connected and welcomed for the life of the block."""
    welcomed = [asyncio.Event() for _ in tokens]
    tasks = [
        asyncio.create_task(run_agent(url, token, deflate, stats, event))
        for token, event in zip(tokens, welcomed, strict=True)
    ]
    everyone = asyncio.gather(*(e.wait() for e in welcomed))
    try:
        # Done when every agent is welcomed, or as soon as one agent's task ends (failed).
        await asyncio.wait(
            [everyone, *tasks], timeout=READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        for task in tasks:
            if task.done():
                task.result()  # an agent that failed to connect ends the run with its error
        if not everyone.done():
            raise RuntimeError("not every agent was welcomed in time")
        for task in tasks:
            task.add_done_callback(lambda t: _agent_ended(t, stats))
        yield
    finally:
        everyone.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(everyone, *tasks, return_exceptions=True)


def _agent_ended(task: asyncio.Task[None], stats: AgentStats) -> None:
    if not task.cancelled():
        stats.error(f"agent socket ended: {task.exception()!r}")


def agent_worker(url: str, tokens: list[str], deflate: bool, conn: Connection) -> None:
    """A separate agent process: connect, say "ready", run until "stop", send the stats."""

    async def main() -> None:
        stats = AgentStats()
        loop = asyncio.get_running_loop()
        async with agents_running(url, tokens, deflate, stats):
            conn.send("ready")
            await loop.run_in_executor(None, conn.recv)
        conn.send(dataclasses.asdict(stats))

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the run ends
    run(main())


@contextlib.asynccontextmanager
async def agent_processes(
    url: str, tokens: Sequence[str], procs: int, deflate: bool, stats: AgentStats
) -> AsyncIterator[list[int]]:
    """The agents spread over processes; their stats merge into ``stats`` at the end."""
    ctx = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    workers = []
    for i in range(procs):
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=agent_worker, args=(url, list(tokens[i::procs]), deflate, theirs), daemon=True
        )
        proc.start()
        theirs.close()  # so that a child that dies is an EOFError here, not a hang
        workers.append((proc, ours))
    try:
        for proc, conn in workers:
            ready = await asyncio.wait_for(loop.run_in_executor(None, conn.recv), READY_TIMEOUT_S)
            if ready != "ready":
                raise RuntimeError(f"agent process {proc.pid} failed to start")
        yield [proc.pid for proc, _ in workers if proc.pid is not None]
        for _, conn in workers:
            conn.send("stop")
        for _, conn in workers:
            part = await asyncio.wait_for(loop.run_in_executor(None, conn.recv), 30.0)
            stats.offers.update(part["offers"])
            stats.closed += part["closed"]
            stats.errors += part["errors"]
            stats.samples.extend(part["samples"][: 10 - len(stats.samples)])
    finally:
        for proc, _ in workers:
            proc.join(5.0)
            if proc.is_alive():
                proc.terminate()


# --- Customers. -----------------------------------------------------------------------------


@dataclasses.dataclass
class Conversation:
    scheduled: float
    sent: float
    echo: float | None = None
    closed: float | None = None


@dataclasses.dataclass(eq=False)
class Visitor:
    ws: ClientConnection
    marker: str | None = None  # the conversation in flight, None when free


class Customers:
    """The visitor pool and every conversation it started."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.visitors: list[Visitor] = []
        self.free: collections.deque[Visitor] = collections.deque()
        self.busy = 0
        self.idle = asyncio.Event()  # set while no conversation is in flight
        self.idle.set()
        self.conversations: dict[str, Conversation] = {}
        self.starved = 0  # arrivals skipped because every visitor was in a conversation
        self.errors = 0
        self.samples: list[str] = []
        self._seq = 0
        self._readers: list[asyncio.Task[None]] = []

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.samples) < 10:
            self.samples.append(what)

    async def connect(self, url: str, count: int, deflate: bool) -> None:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)  # a burst of handshakes, not a stampede

        async def one() -> None:
            async with gate:
                ws = await connect(url, deflate)
                await ws.send(b'{"type":"hello"}', text=True)
                welcome = customer_decoder.decode(await ws.recv(decode=False))
                if welcome.type != "welcome":
                    raise RuntimeError(f"visitor hello refused: {welcome.code} {welcome.detail}")
            visitor = Visitor(ws)
            self.visitors.append(visitor)
            self.free.append(visitor)
            self._readers.append(asyncio.create_task(self._read(visitor)))

        await asyncio.gather(*(one() for _ in range(count)))

    async def start(self, scheduled: float) -> None:
        """One arrival: a free visitor writes a message that opens a new conversation."""
        if not self.free:
            self.starved += 1
            return
        visitor = self.free.popleft()
        self.busy += 1
        self.idle.clear()
        self._seq += 1
        marker = f"{MARKER_PREFIX}{self.run_id}-{self._seq}"
        visitor.marker = marker
        data = encode({"type": "message", "text": f"order late? {marker}", "client_msg_id": marker})
        self.conversations[marker] = Conversation(scheduled=scheduled, sent=now())
        await visitor.ws.send(data, text=True)

    async def _read(self, visitor: Visitor) -> None:
        try:
            while True:
                raw = await visitor.ws.recv(decode=False)
                self._on_frame(visitor, customer_decoder.decode(raw), now())
        except websockets.ConnectionClosed as exc:
            self.error(f"visitor socket closed: {exc}")

    def _on_frame(self, visitor: Visitor, frame: CustomerFrame, at: float) -> None:
        marker = visitor.marker
        conversation = self.conversations.get(marker) if marker else None
        if frame.type == "message" and frame.client_msg_id is not None:
            echoed = self.conversations.get(frame.client_msg_id)
            if echoed is not None and echoed.echo is None:
                echoed.echo = at
        elif frame.type == "closed":
            if conversation is None:
                self.error("closed without a conversation in flight")
                return
            conversation.closed = at
            visitor.marker = None
            self.busy -= 1
            if not self.busy:
                self.idle.set()
            self.free.append(visitor)  # reused only now: its next message opens a new one
        elif frame.type == "error":
            self.error(f"visitor error: {frame.code} {frame.detail}")

    async def aclose(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        await asyncio.gather(*(v.ws.close() for v in self.visitors), return_exceptions=True)


async def arrivals(
    customers: Customers, rate: float, start: float, end: float, rng: random.Random
) -> None:
    """Poisson arrivals: exponential gaps; when the loop falls behind it catches up at once,
    so that the offered rate stays the asked rate (the lateness is reported)."""
    due = start
    while True:
        due += rng.expovariate(rate)
        if due >= end:
            return
        delay = due - now()
        if delay > 0:
            await asyncio.sleep(delay)
        await customers.start(due)


async def drain(customers: Customers, seconds: float) -> None:
    """Wait for the conversations in flight to close, for at most ``seconds``."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(customers.idle.wait(), seconds)


# --- Measuring. -----------------------------------------------------------------------------


@dataclasses.dataclass
class Sample:
    """Process CPU times and gateway counters at one instant."""

    at: float
    machine: tuple[int, int]  # busy and total jiffies, all cores
    cpu: dict[str, float | None]
    metrics: dict[str, float]
    commands: dict[str, int]


def sample(pids: dict[str, list[int]], target: Target) -> Sample:
    cpu: dict[str, float | None] = {}
    for name, group in pids.items():
        times = [cpu_seconds(pid) for pid in group]
        cpu[name] = None if not group or None in times else sum(t for t in times if t)
    return Sample(
        at=now(),
        machine=machine_jiffies(),
        cpu=cpu,
        metrics=scrape_metrics(target.admin_base),
        commands=redis_commands(target.redis_url),
    )


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * q // 100))  # ceil without floats drifting
    return ordered[min(len(ordered), int(rank)) - 1]


def ms(values: Sequence[float]) -> dict[str, float | None]:
    ordered = sorted(round(v * 1000, 3) for v in values)
    return {
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "max": ordered[-1] if ordered else None,
    }


def summarize(
    args: argparse.Namespace,
    target: Target,
    customers: Customers,
    agents: AgentStats,
    first: Sample,
    last: Sample,
) -> dict[str, Any]:
    window = last.at - first.at
    measured = {m: c for m, c in customers.conversations.items() if first.at <= c.sent < last.at}
    offered_at = agents.offers
    to_offer = [offered_at[m] - c.sent for m, c in measured.items() if m in offered_at]
    to_echo = [c.echo - c.sent for c in measured.values() if c.echo is not None]
    lateness = [c.sent - c.scheduled for c in measured.values()]
    unrouted = sum(1 for m in measured if m not in offered_at)
    unclosed = sum(1 for c in customers.conversations.values() if c.closed is None)
    routed = sum(1 for t in offered_at.values() if first.at <= t < last.at)
    cpu = {
        name: (
            None
            if last.cpu[name] is None or first.cpu[name] is None
            else round(100 * (last.cpu[name] - first.cpu[name]) / window, 1)
        )  # type: ignore[operator]
        for name in last.cpu
    }
    # Everything else that ran meanwhile, in % of one core: on a shared machine, a reason to
    # distrust the figures. (Our own processes' shares add up from the same clock ticks.)
    busy = last.machine[0] - first.machine[0]
    cores = (last.machine[1] - first.machine[1]) / CLK_TCK / window
    machine_percent = 100 * busy / CLK_TCK / window
    ours = sum(v for v in cpu.values() if v is not None)
    calls = _delta(first, last, "zhongtai_dispatch_seconds_count")
    offers_made = _delta(first, last, "zhongtai_offers_made_total")
    call_s = _delta(first, last, "zhongtai_dispatch_seconds_sum")
    per_conversation = {
        name: round((calls - first.commands.get(name, 0)) / max(1, routed), 2)
        for name, calls in sorted(last.commands.items(), key=lambda kv: -kv[1])
        if calls - first.commands.get(name, 0) > 0 and name != "info"
    }
    return {
        "rate": args.rate,
        "duration_s": round(window, 3),
        "visitors": args.visitors,
        "agents": len(target.tokens),
        "agent_procs": args.agent_procs,
        "deflate": args.deflate,
        "sent": len(measured),
        "sent_per_s": round(len(measured) / window, 1),
        "routed_per_s": round(routed / window, 1),
        "message_to_offer_ms": ms(to_offer),
        "message_to_echo_ms": ms(to_echo),
        "send_lateness_ms": ms(lateness),
        "errors": customers.errors + agents.errors + unrouted + unclosed,
        "unrouted": unrouted,
        "unclosed": unclosed,
        "starved": customers.starved,
        "error_samples": customers.samples + agents.samples,
        "cpu_percent": cpu,
        "machine_cpu_percent": round(machine_percent, 1),
        "other_cpu_percent": round(max(0.0, machine_percent - ours), 1),
        "cores": round(cores),
        "dispatch_calls_per_s": None if calls is None else round(calls / window, 1),
        "offers_per_dispatch": (
            None if not calls or offers_made is None else round(offers_made / calls, 2)
        ),
        "dispatch_call_ms": (
            None if not calls or call_s is None else round(1000 * call_s / calls, 3)
        ),
        "redis_commands_per_conversation": per_conversation,
        "gateway_command": target.command,
        "gateway_source": args.source or "installed",
    }


def write_trace(path: str, customers: Customers, offers: dict[str, float], zero: float) -> None:
    """Per-conversation timings, to see whether slow ones cluster in time (pauses)."""
    lines = ["sent_s,echo_ms,offer_ms"]
    for marker, c in customers.conversations.items():
        echo = "" if c.echo is None else f"{1000 * (c.echo - c.sent):.3f}"
        offer = "" if marker not in offers else f"{1000 * (offers[marker] - c.sent):.3f}"
        lines.append(f"{c.sent - zero:.4f},{echo},{offer}")
    Path(path).write_text("\n".join(lines) + "\n")


def _delta(first: Sample, last: Sample, name: str) -> float | None:
    if name not in first.metrics or name not in last.metrics:
        return None
    return last.metrics[name] - first.metrics[name]


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


TABLE_HEADER = (
    "| rate/s | routed/s | offer p50 ms | p90 | p99 | max | echo p50 ms | echo p99 | errors "
    "| starved | gateway CPU % | redis CPU % | generator CPU % |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def report(result: dict[str, Any]) -> str:
    o, e, cpu = result["message_to_offer_ms"], result["message_to_echo_ms"], result["cpu_percent"]
    generator = [v for k, v in cpu.items() if k in ("generator", "agents") and v is not None]
    line = (
        f"rate {result['rate']:g}/s for {result['duration_s']:.1f} s: routed "
        f"{result['routed_per_s']:.1f}/s, message->offer p50 {fmt(o['p50'])} p90 {fmt(o['p90'])} "
        f"p99 {fmt(o['p99'])} max {fmt(o['max'])} ms, echo p50 {fmt(e['p50'])} p99 "
        f"{fmt(e['p99'])} ms, errors {result['errors']}, starved {result['starved']}, CPU % "
        f"gateway {fmt(cpu.get('gateway'), 0)} redis {fmt(cpu.get('redis'), 0)} generator "
        f"{fmt(sum(generator) if generator else None, 0)}"
    )
    row = (
        f"| {result['rate']:g} | {result['routed_per_s']:.1f} | {fmt(o['p50'])} | {fmt(o['p90'])} "
        f"| {fmt(o['p99'])} | {fmt(o['max'])} | {fmt(e['p50'])} | {fmt(e['p99'])} "
        f"| {result['errors']} | {result['starved']} | {fmt(cpu.get('gateway'), 0)} "
        f"| {fmt(cpu.get('redis'), 0)} | {fmt(sum(generator) if generator else None, 0)} |"
    )
    return f"{line}\n{TABLE_HEADER}\n{row}"


# --- The run. -------------------------------------------------------------------------------


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


async def until(moment: float) -> None:
    delay = moment - now()
    if delay > 0:
        await asyncio.sleep(delay)


async def measure(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    run_id = f"{random.getrandbits(32):x}"
    customers, agents = Customers(run_id), AgentStats()
    agent_url = f"{target.ws_base}/agent/ws"
    pids: dict[str, list[int]] = {
        "gateway": [target.gateway_pid] if target.gateway_pid else [],
        "redis": [target.redis_pid] if target.redis_pid else [],
        "generator": [os.getpid()],
    }
    async with contextlib.AsyncExitStack() as stack:
        if args.agent_procs > 0:
            pids["agents"] = await stack.enter_async_context(
                agent_processes(agent_url, target.tokens, args.agent_procs, args.deflate, agents)
            )
        else:
            await stack.enter_async_context(
                agents_running(agent_url, target.tokens, args.deflate, agents)
            )
        stack.push_async_callback(customers.aclose)
        await customers.connect(f"{target.ws_base}/webchat/ws", args.visitors, args.deflate)
        start = now()
        window = (start + args.warmup, start + args.warmup + args.duration)
        load = asyncio.create_task(
            arrivals(customers, args.rate, start, window[1], random.Random(args.seed))
        )
        await until(window[0])
        first = await asyncio.to_thread(sample, pids, target)
        profiler = (
            start_profiler(args.profile, target.gateway_pid, args.duration)
            if args.profile
            else None
        )
        await until(window[1])
        last = await asyncio.to_thread(sample, pids, target)
        await load
        await drain(customers, args.drain)
        if profiler is not None:
            await asyncio.to_thread(profiler.wait)
    if args.trace:
        write_trace(args.trace, customers, agents.offers, start)
    return summarize(args, target, customers, agents, first, last)


def run(main: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (a timeout, a CI cancel) unwinds like Ctrl-C, so the gateway and Redis are
    # stopped and the temporary dir is removed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.wait_idle:
        busy = wait_idle(args.wait_idle)
        if busy >= 0.15:
            print(f"warning: the machine is still {100 * busy:.0f}% busy", file=sys.stderr)
    with contextlib.ExitStack() as stack:
        target = given_target(args) if args.url else stack.enter_context(own_stack(args))
        result = run(measure(args, target))
    print(report(result))
    if result["other_cpu_percent"] > 10:
        print(
            f"warning: other processes used {result['other_cpu_percent']:.0f}% of a core "
            "during the measurement; the figures are not trustworthy",
            file=sys.stderr,
        )
    for sample_text in result["error_samples"]:
        print(f"  error: {sample_text}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
