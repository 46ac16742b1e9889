"""WeChat's reply windows, tracked per customer (account and openid) in Redis.

WeChat lets an account write to a customer through the customer-service API only after the
customer did something, for a while and a number of messages (docs/channels/wechat.md has
the table): a message opens 48 hours with a quota of replies (5 in WeChat's current rules);
a menu click, a follow or a QR scan opens one minute with 3. A new message opens a new
window with a fresh quota. Unfollowing ends every window.

The state of one customer is a hash: the conversation the window belongs to, and for each
of the two grants the time it opened and the replies used. Timers for "closing soon" and
"closed" notices sit in one sorted set scored by due time; every process sweeps it, and a
timer fires on the process whose ZREM removed it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.contract import DeliveryError

log = logging.getLogger("zhongtai.wechat")

SWEEP_BATCH = 100
EXTRA_TTL_S = 86400  # keep a customer's state this long after their last window closed
WARN_CODE = "wechat_window_closing"
CLOSED_CODE = "wechat_window_closed"


@dataclass(frozen=True)
class Reservation:
    account: str
    customer: str
    field: str  # the counter the replies were taken from ("" when not counted)


@dataclass(frozen=True)
class Due:
    conversation_id: str
    code: str
    detail: str


def _int(state: dict[bytes, bytes], name: str) -> int:
    try:
        return int(state.get(name.encode(), b"0"))
    except ValueError:
        return 0


def _clock_ms() -> int:
    return int(time.time() * 1000)


def _hhmm(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


class Windows:
    def __init__(
        self,
        redis: Any,
        key: Callable[..., str],
        *,
        window_s: float,
        replies: int,
        event_window_s: float,
        event_replies: int,
        warning_s: float,
        clock_ms: Callable[[], int] = _clock_ms,
    ) -> None:
        self.redis = redis
        self._key = key
        self.window_ms = int(window_s * 1000)
        self.replies = replies
        self.event_window_ms = int(event_window_s * 1000)
        self.event_replies = event_replies
        self.warning_ms = int(min(warning_s, window_s) * 1000)
        self.clock_ms = clock_ms
        self.timers = key("window_timers")

    def state_key(self, account: str, customer: str) -> str:
        return self._key("window", account, customer)

    async def record(
        self,
        account: str,
        customer: str,
        conversation_id: str,
        grant: str,
        at_ms: int,
        duplicate: bool = False,
    ) -> None:
        """The customer did something at at_ms (WeChat's CreateTime) in conversation_id.

        Idempotent: a redelivery (duplicate) only fills in a window not recorded yet, so
        WeChat's retries do not reset the quota; an older message arriving late does not
        move the window back. CreateTime has whole seconds: a new message in the same
        second as the last one still opens a new window."""
        key = self.state_key(account, customer)
        member = f"{account}|{customer}"
        ttl = (self.window_ms // 1000) + EXTRA_TTL_S
        field = {"message": "msg_at", "event": "evt_at"}.get(grant)
        newer = True
        if field is not None:
            last = int(await self.redis.hget(key, field) or 0)
            newer = at_ms > last or (at_ms == last and not duplicate)
        async with self.redis.pipeline(transaction=True) as pipe:
            if conversation_id or grant == "revoke":
                pipe.hset(key, "conv", conversation_id)
            if grant == "message" and newer:
                pipe.hset(key, mapping={"msg_at": at_ms, "msg_used": 0, "gone": 0})
                closes = at_ms + self.window_ms
                timers = {f"closed|{member}": closes}
                if self.warning_ms:
                    timers[f"warn|{member}"] = closes - self.warning_ms
                pipe.zadd(self.timers, timers)
            elif grant == "event" and newer:
                pipe.hset(key, mapping={"evt_at": at_ms, "evt_used": 0, "gone": 0})
            elif grant == "revoke":
                pipe.hset(key, mapping={"msg_at": 0, "evt_at": 0, "gone": 1})
                pipe.zrem(self.timers, f"warn|{member}", f"closed|{member}")
            pipe.expire(key, ttl)
            await pipe.execute()

    async def reserve(self, account: str, customer: str, n: int) -> Reservation:
        """Take n replies from the customer's open window, or refuse with WeChat's own code:
        45015 (no open window) or 45047 (the window's replies are used up)."""
        key = self.state_key(account, customer)
        state = await self.redis.hgetall(key)
        now = self.clock_ms()
        msg_at, evt_at = _int(state, "msg_at"), _int(state, "evt_at")
        grants = []
        if msg_at and now < msg_at + self.window_ms:
            grants.append(("msg_used", self.replies))
        if evt_at and now < evt_at + self.event_window_ms:
            grants.append(("evt_used", self.event_replies))
        for field, quota in grants:
            if quota == 0:  # not counted here: WeChat's own 45047 still applies
                return Reservation(account, customer, "")
            used = await self.redis.hincrby(key, field, n)
            if used <= quota:
                return Reservation(account, customer, field)
            await self.redis.hincrby(key, field, -n)
        if grants:
            raise DeliveryError(
                "45047",
                f"the replies this window allows ({self.replies} after a customer's message) "
                "are used up; WeChat takes more once the customer writes again",
            )
        if _int(state, "gone"):
            raise DeliveryError(
                "45015", "the customer unfollowed the account; WeChat delivers nothing to them"
            )
        if msg_at:
            closed = _hhmm(msg_at + self.window_ms)
            detail = (
                f"the 48-hour reply window closed at {closed}; WeChat accepts no "
                "customer-service message until the customer writes again"
            )
        else:
            detail = (
                "no open reply window: WeChat accepts customer-service messages only within "
                "48 hours of the customer's last message"
            )
        raise DeliveryError("45015", detail)

    async def release(self, reservation: Reservation, n: int) -> None:
        """Give back n replies that were not sent after all."""
        if reservation.field and n:
            key = self.state_key(reservation.account, reservation.customer)
            await self.redis.hincrby(key, reservation.field, -n)

    async def sweep(self) -> list[Due]:
        """Timers due now, each claimed by exactly one process, as notices to tell."""
        now = self.clock_ms()
        members = await self.redis.zrangebyscore(self.timers, "-inf", now, start=0, num=SWEEP_BATCH)
        due: list[Due] = []
        for raw in members:
            if not await self.redis.zrem(self.timers, raw):
                continue  # another process claimed it
            member = raw.decode()
            kind, _, rest = member.partition("|")
            account, _, customer = rest.partition("|")
            state = await self.redis.hgetall(self.state_key(account, customer))
            msg_at = _int(state, "msg_at")
            conversation = state.get(b"conv", b"").decode()
            if not msg_at or not conversation:
                continue
            closes = msg_at + self.window_ms
            expected = closes - self.warning_ms if kind == "warn" else closes
            if expected > now:
                # The customer wrote since: the window moved. Put the timer back where it
                # belongs now (a message's own ZADD may have done so already).
                await self.redis.zadd(self.timers, {raw: expected})
                continue
            if kind == "warn":
                if now >= closes:
                    continue  # too late to warn; the "closed" notice says it
                minutes = max(1, round((closes - now) / 60000))
                detail = (
                    f"The WeChat reply window closes in about {minutes} min (at "
                    f"{_hhmm(closes)}). After that WeChat refuses replies until the customer "
                    "writes again."
                )
                due.append(Due(conversation, WARN_CODE, detail))
            else:
                detail = (
                    "The WeChat reply window has closed: replies are refused (45015) until "
                    "the customer writes again."
                )
                due.append(Due(conversation, CLOSED_CODE, detail))
        return due
