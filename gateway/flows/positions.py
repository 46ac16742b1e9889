"""Telling waiting customers their place in the queue and an estimated wait, whenever it
changes. One process does it per interval (a Redis lock), so customers are told once."""

from __future__ import annotations

from gateway.flows.switchboard import Switchboard
from router.reads import text


def estimated_wait_s(position: int, accepts_ms: list[int]) -> float | None:
    """From the queue's recent accepts (newest first): position divided by the accept rate."""
    if len(accepts_ms) < 2 or accepts_ms[0] <= accepts_ms[-1]:
        return None
    rate_per_s = (len(accepts_ms) - 1) / ((accepts_ms[0] - accepts_ms[-1]) / 1000)
    return round(position / rate_per_s, 1)


async def tell_positions(board: Switchboard, interval_s: float) -> int:
    """Returns how many customers were told a new position."""
    router = board.router
    keys = router.keys
    if not await router.redis.set(
        keys.positions_lock, board.clock(), nx=True, px=int(interval_s * 900)
    ):
        return 0
    told: dict[str, tuple[int, float | None]] = {}
    waiting: set[str] = set()
    previous = {text(c): int(p) for c, p in (await router.redis.hgetall(keys.positions)).items()}
    for queue in router.queues:
        members = await router.waiting(queue)
        accepts = await router.recent_accepts(queue)
        for index, conversation_id in enumerate(members, start=1):
            waiting.add(conversation_id)
            if previous.get(conversation_id) != index:
                told[conversation_id] = (index, estimated_wait_s(index, accepts))
    gone = [c for c in previous if c not in waiting]
    async with router.redis.pipeline(transaction=False) as pipe:
        if told:
            pipe.hset(keys.positions, mapping={c: p for c, (p, _) in told.items()})
        if gone:
            pipe.hdel(keys.positions, *gone)
        await pipe.execute()
    for conversation in await router.conversations(list(told)):
        position, eta = told[conversation.id]
        await board.notify(conversation, kind="queued", position=position, eta_s=eta)
    return len(told)
