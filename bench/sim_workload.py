"""The customers a scenario brings, and the ideal queue the router is measured against.

One seeded stream of arrivals and handle times, drawn the same way for every strategy. The
reference is an ideal first-come-first-served M/M/N queue fed that same stream: a
work-conserving FCFS router must give every conversation exactly its wait.
"""

from __future__ import annotations

import heapq
import random
from array import array
from collections.abc import Iterator, Sequence

import msgspec
from sim_scenarios import Scenario


class Arrival(msgspec.Struct, frozen=True):
    index: int
    at_ms: int
    handle_ms: int
    queue: int


def workload(scenario: Scenario) -> Iterator[Arrival]:
    """Poisson arrivals with exponential handle times, each drawn at arrival, and a queue
    drawn by share. Arrival times are strictly increasing milliseconds (a tie is pushed one
    millisecond on), so that queue order never depends on conversation ids."""
    rng = random.Random(scenario.seed)
    cumulative = list(_cumulative([q.share for q in scenario.queues]))
    t = 0.0
    last_ms = -1
    for index in range(scenario.arrivals):
        t += rng.expovariate(scenario.rate)
        handle = rng.expovariate(1.0 / scenario.handle_s)
        pick = rng.random()
        at_ms = max(last_ms + 1, round(t * 1000))
        last_ms = at_ms
        queue = next(i for i, c in enumerate(cumulative) if pick < c or i == len(cumulative) - 1)
        yield Arrival(index, at_ms, max(1, round(handle * 1000)), queue)


def _cumulative(shares: Sequence[float]) -> Iterator[float]:
    total = sum(shares)
    running = 0.0
    for share in shares:
        running += share / total
        yield running


def ideal_fcfs_waits(scenario: Scenario) -> array[int]:
    """Waits (ms) of an ideal FCFS queue with ``scenario.capacity`` interchangeable servers on
    the same workload: each conversation takes the server that frees first, is offered at
    max(arrival, free), accepted ``accept_delay`` later and holds the server until it ends."""
    delay_ms = round(scenario.accept_delay_s * 1000)
    free = [0] * scenario.capacity
    waits = array("q")
    for a in workload(scenario):
        offered = max(a.at_ms, heapq.heappop(free))
        heapq.heappush(free, offered + delay_ms + a.handle_ms)
        waits.append(offered + delay_ms - a.at_ms)
    return waits
