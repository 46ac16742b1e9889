"""Erlang C: the M/M/N queue that a contact centre with N interchangeable agents approximates.

Contacts arrive as a Poisson process at ``rate`` per second, each is handled for an
exponentially distributed time of mean ``handle_s`` seconds, N agents each take one contact at
a time, and waiting contacts are served first come, first served. Offered load A = rate *
handle_s (in Erlangs); the queue is stable only when A < N.

    erlang_b(A, N)          probability that all N agents are busy in the loss system
    prob_wait(A, N)         Erlang C: probability that a contact waits at all
    mean_wait_s(...)        mean wait of all contacts (those answered at once count as 0)
    service_level(...)      share of contacts answered within t seconds, P(wait <= t)
    occupancy(...)          share of agents' time spent handling, A / N

Every function takes plain floats; the recursion for Erlang B is the numerically stable one
(no factorials), good for thousands of agents.
"""

from __future__ import annotations

import math

import msgspec


class ErlangC(msgspec.Struct, frozen=True, kw_only=True):
    """The predictions for one (rate, handle time, agents) triple."""

    rate: float
    handle_s: float
    agents: int
    load_erlangs: float
    occupancy: float
    prob_wait: float
    mean_wait_s: float
    service_level: float
    sla_s: float


def offered_load(rate: float, handle_s: float) -> float:
    """A = rate * mean handle time, in Erlangs."""
    if rate < 0 or handle_s <= 0:
        raise ValueError("rate must be >= 0 and handle_s > 0")
    return rate * handle_s


def _check(load: float, agents: int) -> None:
    if agents < 1:
        raise ValueError("need at least one agent")
    if load >= agents:
        raise ValueError(f"unstable: offered load {load:g} Erlangs >= {agents} agents")


def erlang_b(load: float, agents: int) -> float:
    """Blocking probability of N servers with no queue, by B(k) = A B(k-1) / (k + A B(k-1))."""
    if agents < 0 or load < 0:
        raise ValueError("load and agents must be >= 0")
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
    return b


def prob_wait(load: float, agents: int) -> float:
    """Erlang C: P(wait > 0) = N B / (N - A (1 - B))."""
    _check(load, agents)
    b = erlang_b(load, agents)
    return agents * b / (agents - load * (1.0 - b))


def mean_wait_s(rate: float, handle_s: float, agents: int) -> float:
    """E[wait] = C * handle / (N - A), averaged over all contacts."""
    load = offered_load(rate, handle_s)
    return prob_wait(load, agents) * handle_s / (agents - load)


def service_level(rate: float, handle_s: float, agents: int, within_s: float) -> float:
    """P(wait <= t) = 1 - C * exp(-(N - A) t / handle)."""
    load = offered_load(rate, handle_s)
    c = prob_wait(load, agents)
    return 1.0 - c * math.exp(-(agents - load) * within_s / handle_s)


def occupancy(rate: float, handle_s: float, agents: int) -> float:
    """The share of each agent's time spent handling: A / N."""
    load = offered_load(rate, handle_s)
    _check(load, agents)
    return load / agents


def agents_for(rate: float, handle_s: float, sla_s: float, target: float) -> int:
    """The fewest agents that answer ``target`` (a share, e.g. 0.8) within ``sla_s``."""
    load = offered_load(rate, handle_s)
    n = max(1, math.floor(load) + 1)
    while service_level(rate, handle_s, n, sla_s) < target:
        n += 1
    return n


def predict(rate: float, handle_s: float, agents: int, sla_s: float = 20.0) -> ErlangC:
    load = offered_load(rate, handle_s)
    return ErlangC(
        rate=rate,
        handle_s=handle_s,
        agents=agents,
        load_erlangs=load,
        occupancy=occupancy(rate, handle_s, agents),
        prob_wait=prob_wait(load, agents),
        mean_wait_s=mean_wait_s(rate, handle_s, agents),
        service_level=service_level(rate, handle_s, agents, sla_s),
        sla_s=sla_s,
    )


def predict_with_offer_delay(
    rate: float, handle_s: float, agents: int, delay_s: float, sla_s: float = 20.0
) -> ErlangC:
    """Erlang C when each offer takes ``delay_s`` before the agent accepts.

    The router reserves the agent at the offer, so the agent is held for delay + handle, and
    the customer's wait (arrival to accept) is the queueing delay plus ``delay_s``.
    """
    held = handle_s + delay_s
    load = offered_load(rate, held)
    c = prob_wait(load, agents)
    queued = c * held / (agents - load)
    if sla_s < delay_s:
        level = 0.0
    else:
        level = 1.0 - c * math.exp(-(agents - load) * (sla_s - delay_s) / held)
    return ErlangC(
        rate=rate,
        handle_s=handle_s,
        agents=agents,
        load_erlangs=load,
        occupancy=rate * handle_s / agents,
        prob_wait=c,
        mean_wait_s=queued + delay_s,
        service_level=level,
        sla_s=sla_s,
    )
