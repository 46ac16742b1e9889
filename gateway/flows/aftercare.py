"""What follows a close: the customer is asked to rate the conversation (满意度), and some
closed conversations land in the QA queue (质检). Decided here, in Python, right after the
close is stored, from the conversation as the close left it; stored by one Lua call
(router/aftercare.py) that also says whether this process is the first to decide, so that
two processes (the closing one, and the sweep that catches closes whose process died before
deciding) never ask the customer twice.

A rating arrives as a web chat frame (AdapterHost.rate) or, on text channels, as a lone digit
written back within the window (``digit_answer``, called before the message would be
stored): such a digit is the answer, not a message, and opens no conversation. The holding
agent hears of each rating on their socket; a low one puts the conversation in the QA queue.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from adapters.contract import CsatAnswer, CsatMode, IngestResult
from adapters.model import Conversation, Inbound, Message
from gateway.agents.protocol import CsatFrame
from gateway.flows.clock import Clock
from gateway.flows.outbound import ToAgents, ToCustomers
from gateway.observability.metrics import Metrics
from gateway.quality_config import CSAT_SCALE, CsatConfig, QaConfig
from router.aftercare import FollowUp, Rated
from router.config import QueueConfig
from router.engine import Router
from router.ids import new_id
from router.keys import customer_field

log = logging.getLogger(__name__)

# A close is left to the process that made it for this long before the sweep decides for it.
SWEEP_GRACE_MS = 30_000
SWEEP_BATCH = 200
SWEEP_BATCHES = 20  # at most this many batches a sweep, so that one sweep stays short

ANSWERS = {"ok": "ok", "not_asked": "not_asked", "expired": "expired", "already": "already_rated"}


def sampled(seed: str, conversation_id: str, share: float) -> bool:
    """Whether the conversation is in the queue's QA sample: the first 8 bytes of
    SHA-256("seed|conversation id"), as a fraction of 2**64, below the share. The same
    conversation is always in or out, whichever process decides, and a test knows which."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"{seed}|{conversation_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


# A signature below the answer: the "-- " delimiter (RFC 3676) and all after it, or the
# line a phone's mail app adds ("Sent from my iPhone", "发自我的iPhone", "Get Outlook for
# Android"). Most answers from a phone carry one, and the digit above it is still the answer.
_SIGNATURE = re.compile(r"^--\s*$")
_PHONE_LINE = re.compile(
    r"^(sent from (my )?\S.*|get outlook for \S.*|(发|發)自我的.+|从我的.+发送|從我的.+傳送)$",
    re.IGNORECASE,
)


def _without_signature(text: str) -> str:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _SIGNATURE.match(line):
            lines = lines[:i]
            break
    return "\n".join(line for line in lines if not _PHONE_LINE.match(line.strip()))


def digit_of(text: str) -> int | None:
    """The rating a text message gives: one digit 1-5 (full-width ones too, as Chinese
    keyboards type them), nothing else but spaces, a final full stop and a signature."""
    normal = _without_signature(unicodedata.normalize("NFKC", text))
    stripped = normal.strip().rstrip(".。!！").strip()
    if len(stripped) == 1 and stripped in "12345":
        return int(stripped)
    return None


@dataclass(kw_only=True)
class Aftercare:
    router: Router
    to_customers: ToCustomers
    to_agents: ToAgents
    clock: Clock
    csat: CsatConfig
    qa: QaConfig
    queues: Mapping[str, QueueConfig]
    keep_s: float  # how long the records are kept: the closed conversations' retention
    metrics: Metrics

    @property
    def keep_ms(self) -> int:
        return int(self.keep_s * 1000)

    def csat_mode(self, channel: str) -> CsatMode | None:
        adapter = self.to_customers.adapter_for(channel)
        return adapter.csat if adapter is not None else None

    async def after_close(
        self, conversation: Conversation, holder: str | None, closed_ms: int
    ) -> None:
        """Decide and store what follows this close, then ask the customer; best effort,
        since the close itself is done (the sweep decides again for a close left behind)."""
        try:
            await self._follow_up(conversation, holder, closed_ms)
        except Exception:
            log.exception("could not follow up the close of %s", conversation.id)

    async def _follow_up(
        self, conversation: Conversation, holder: str | None, closed_ms: int
    ) -> None:
        route = await self.router.route(conversation.id)
        field = (
            route.customer_field
            if route
            else customer_field(
                conversation.channel, conversation.account, conversation.customer.id
            )
        )
        queue = self.queues.get(conversation.queue)
        mode = self.csat_mode(conversation.channel)
        ask = self.csat.enabled and mode is not None and queue is not None and queue.csat
        reasons: list[str] = []
        if queue is not None and sampled(self.qa.seed, conversation.id, queue.qa_sample):
            reasons.append("sample")
        if self.qa.complaints and conversation.grade:
            reasons.append("complaint")
        decided = FollowUp(
            conversation_id=conversation.id,
            customer=field,
            agent=holder,
            queue=conversation.queue,
            channel=conversation.channel,
            closed_ms=closed_ms,
            ask_until_ms=closed_ms + int(self.csat.window_s * 1000) if ask else 0,
            qa_reasons=tuple(reasons),
            grade=conversation.grade,
        )
        if not await self.router.follow_up(decided, self.keep_ms) or not ask:
            return
        self.metrics.csat_asked.labels(conversation.queue).inc()
        if mode == "frames":
            await self.to_customers.notify(conversation, kind="csat_request", scale=CSAT_SCALE)
        else:
            await self.to_customers.auto_reply(conversation, self.csat.message)

    async def sweep(self) -> int:
        """Follow up the closes whose process died before it did; returns how many. Closes
        are taken in order from a mark kept in Redis, SWEEP_GRACE_MS after they happened."""
        k = self.router.keys
        now = self.clock()
        mark_raw = await self.router.redis.get(k.followup_mark)
        if mark_raw is None:
            await self.router.redis.set(k.followup_mark, now - SWEEP_GRACE_MS)
            return 0
        mark, missed_count = int(mark_raw), 0
        for _ in range(SWEEP_BATCHES):
            closes = await self.router.closed_between(mark, now - SWEEP_GRACE_MS, SWEEP_BATCH)
            if not closes:
                break
            missed_count += await self._follow_up_missed(closes)
            mark = closes[-1][1]
            await self.router.redis.set(k.followup_mark, mark)
            if len(closes) < SWEEP_BATCH:
                break
        if self.keep_ms > 0:
            await self.router.trim_aftercare(now - self.keep_ms)
        return missed_count

    async def _follow_up_missed(self, closes: list[tuple[str, int]]) -> int:
        done = await self.router.followed_up([conv for conv, _ in closes])
        missed = [conv for (conv, _), followed in zip(closes, done, strict=True) if not followed]
        closed_at = dict(closes)
        for conversation in await self.router.conversations(missed):
            if conversation.state != "closed":
                continue
            holder = await self._last_agent(conversation)
            await self.after_close(conversation, holder, closed_at[conversation.id])
        return len(missed)

    async def _last_agent(self, conversation: Conversation) -> str | None:
        """Who held a conversation whose close is known only from the closed set: the
        customer's last agent, as routing remembered them."""
        field = customer_field(conversation.channel, conversation.account, conversation.customer.id)
        raw = await self.router.redis.hget(self.router.keys.last_agent, field)
        agent = raw.decode().partition("|")[0] if raw else ""
        return agent or None

    async def rate(
        self,
        channel: str,
        account: str,
        customer_id: str,
        conversation_id: str,
        score: int,
        comment: str | None,
    ) -> CsatAnswer:
        """A rating frame from a channel with buttons (the adapter checked the score)."""
        field = customer_field(channel, account, customer_id)
        route = await self.router.route(conversation_id)
        if route is not None and route.customer_field.partition("#")[0] == field:
            field = route.customer_field  # the customer's own thread; csat.lua checks the rest
        comment = (comment or "").strip()[: self.csat.max_comment_chars] or None
        rated = await self._store(conversation_id, field, score, comment, reply=False)
        return CsatAnswer(outcome=ANSWERS[rated.code], score=rated.score)  # type: ignore[arg-type]

    async def digit_answer(self, inbound: Inbound) -> IngestResult | None:
        """The rating a message on a text channel gives, stored; None when the message is
        not one (then it is a message like any other)."""
        if self.csat_mode(inbound.channel) != "text":
            return None
        score = digit_of(inbound.text)
        if score is None:  # attachments do not matter: email keeps the quoted mail as one
            return None
        field = customer_field(
            inbound.channel, inbound.account, inbound.customer.id, inbound.thread
        )
        conversation_id = await self.router.asked_last(field)
        if conversation_id is None:
            return None
        rated = await self._store(conversation_id, field, score, None, reply=True)
        if rated.code == "not_asked" or rated.code == "expired":
            return None
        message = Message(
            id=new_id("m", self.clock()),
            direction="in",
            text=inbound.text,
            sent_at=inbound.received_at,
            kind="csat",
            metadata=dict(inbound.metadata),
        )
        if rated.code == "ok":
            await self._thank(conversation_id)
        return IngestResult(
            conversation_id=conversation_id, message=message, duplicate=rated.code == "already"
        )

    async def _store(
        self, conversation_id: str, field: str, score: int, comment: str | None, *, reply: bool
    ) -> Rated:
        rated = await self.router.rate(
            conversation_id,
            field,
            score,
            comment,
            self.clock(),
            reply=reply,
            low_at_most=self.qa.low_csat_at_most,
            keep_ms=self.keep_ms,
        )
        if rated.code == "ok":
            self.metrics.csat_ratings.labels(rated.queue or "", str(score)).inc()
            log.info(
                "conversation %s rated %d%s",
                conversation_id,
                score,
                " (in the QA queue)" if rated.picked_for_qa else "",
                extra={"conversation": conversation_id},
            )
            if rated.agent:
                frame = CsatFrame(
                    conversation_id=conversation_id, score=score, scale=CSAT_SCALE, comment=comment
                )
                try:
                    await self.to_agents.send(rated.agent, frame)
                except Exception:
                    log.warning("could not tell %s of a rating", rated.agent, exc_info=True)
        return rated

    async def _thank(self, conversation_id: str) -> None:
        if not self.csat.thanks_message.strip():
            return
        conversation = await self.router.conversation(conversation_id)
        if conversation is not None:
            await self.to_customers.auto_reply(conversation, self.csat.thanks_message)
