"""What the generator reads about the machine while it runs: CPU time and counters.

CPU per process and for the whole machine from /proc (psutil is not a dependency), so that a
result says how much of a core each part used and whether something else was running; the
gateway's routing counters from ``/metrics`` and, with our own Redis, its command counts.
A ``Sample`` is all of it at one instant; a result is the difference of two.
"""

from __future__ import annotations

import dataclasses
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from load_stack import Target
from load_wire import now

CLK_TCK = os.sysconf("SC_CLK_TCK")


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
        metrics=scrape_all(target.admin_bases),
        commands=redis_commands(target.redis_url),
    )


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


def scrape_all(admin_bases: list[str]) -> dict[str, float]:
    """The counters summed over every gateway process (each counts only its own calls)."""
    total: dict[str, float] = {}
    for base in admin_bases:
        for name, value in scrape_metrics(base).items():
            total[name] = total.get(name, 0.0) + value
    return total


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
