"""Web chat visitors in Redis: tokens, the processes holding their sockets, and the names of
the adapter's other keys, all under the adapter's namespace with the tenant hash tag.

A visitor is known by an unguessable token that the browser keeps; Redis maps the token's
SHA-256 to the visitor id, so a copy of Redis does not hand out live tokens.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

from adapters.contract import AdapterHost

TOKEN_MAX_CHARS = 256
SILENT_VISITOR_TTL_S = 86400


class Visitors:
    def __init__(self, host: AdapterHost, adapter: str, ttl_s: float) -> None:
        # The host, not its Redis client: the client exists only once the gateway started.
        self.host, self.adapter, self.ttl = host, adapter, int(ttl_s)

    # Keys.

    def token_key(self, token: str) -> str:
        digest = hashlib.sha256(token.encode()).hexdigest()
        return self.host.key(self.adapter, "token", digest)

    def nodes_key(self, visitor_id: str) -> str:
        return self.host.key(self.adapter, "visitor", visitor_id, "nodes")

    def profile_key(self, visitor_id: str) -> str:
        return self.host.key(self.adapter, "visitor", visitor_id, "prechat")

    def uploads_key(self, visitor_id: str, minute: str) -> str:
        return self.host.key(self.adapter, "visitor", visitor_id, "uploads", minute)

    def messages_key(self, visitor_id: str, minute: str) -> str:
        return self.host.key(self.adapter, "visitor", visitor_id, "messages", minute)

    def address_key(self, address: str, minute: str) -> str:
        return self.host.key(self.adapter, "address", address, "visitors", minute)

    def file_key(self, file_id: str) -> str:
        return self.host.key(self.adapter, "file", file_id)

    # Tokens.

    async def find(self, token: str | None) -> str | None:
        """The visitor behind a token, whose life each use extends; None when unknown."""
        if not token or len(token) > TOKEN_MAX_CHARS:
            return None
        found = await self.host.redis.getex(self.token_key(token), ex=self.ttl)
        return found.decode() if found is not None else None

    async def create(self) -> tuple[str, str]:
        """A new visitor and their fresh token."""
        visitor_id = uuid.uuid4().hex
        token = secrets.token_urlsafe(32)
        # Short-lived until the visitor writes (see remember): sockets that only say hello,
        # such as scanners and bots, leave little behind.
        silent_ttl = min(self.ttl, SILENT_VISITOR_TTL_S)
        await self.host.redis.set(self.token_key(token), visitor_id, ex=silent_ttl)
        return visitor_id, token

    async def remember(self, token: str) -> None:
        """Someone who writes is worth remembering for the full visitor TTL."""
        await self.host.redis.expire(self.token_key(token), self.ttl)

    async def visitor_of(self, token: str) -> str | None:
        """The visitor behind a token, without making one (the upload endpoint)."""
        if not token or len(token) > TOKEN_MAX_CHARS:
            return None
        found = await self.host.redis.get(self.token_key(token))
        return found.decode() if found is not None else None

    # Where their sockets are.

    async def mark_node(self, visitor_id: str) -> None:
        # A set, not one node per visitor: two tabs may sit on two processes. The TTL clears
        # what a crashed process leaves behind.
        pipe = self.host.redis.pipeline(transaction=False)
        pipe.sadd(self.nodes_key(visitor_id), self.host.node_id)
        pipe.expire(self.nodes_key(visitor_id), self.ttl)
        await pipe.execute()

    async def unmark_node(self, visitor_id: str) -> None:
        await self.host.redis.srem(self.nodes_key(visitor_id), self.host.node_id)

    async def nodes(self, visitor_id: str) -> set[str]:
        members = await self.host.redis.smembers(self.nodes_key(visitor_id))
        return {n.decode() for n in members}
