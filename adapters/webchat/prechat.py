"""The pre-chat form: checking a visitor's answers and remembering them.

The answers are kept per visitor (a Redis hash living as long as the visitor token), so a
returning visitor is not asked again and every later conversation still carries their name.
The page checks the same shapes, but only this check counts: the socket is open to anyone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import msgspec

from adapters.contract import AdapterHost
from adapters.webchat.config import PrechatField
from adapters.webchat.frames import ErrorFrame, PrechatSpec

METADATA_PREFIX = "prechat."
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")
_PHONE = re.compile(r"^\+?[0-9 ().\-]{6,24}$")
_PHONE_DIGITS = (6, 15)
_EMAIL_MAX_CHARS = 254


def specs(fields: list[PrechatField]) -> list[PrechatSpec]:
    return [msgspec.convert(msgspec.to_builtins(f), PrechatSpec) for f in fields]


def _problem(field: PrechatField, value: str) -> str | None:
    if len(value) > field.max_chars:
        return f"at most {field.max_chars} characters"
    if any(unicodedata.category(c) == "Cc" for c in value):
        return "control characters are not allowed"
    if field.kind == "email" and (len(value) > _EMAIL_MAX_CHARS or not _EMAIL.match(value)):
        return "not an email address (name@example.com)"
    if field.kind == "phone":
        digits = sum(c.isdigit() for c in value)
        if not _PHONE.match(value) or not _PHONE_DIGITS[0] <= digits <= _PHONE_DIGITS[1]:
            return "not a phone number (digits, spaces, + ( ) - .)"
    return None


def check(
    fields: list[PrechatField], given: dict[str, str]
) -> tuple[dict[str, str], ErrorFrame | None]:
    """The answers to keep (trimmed; unknown names dropped, so an older page still talks to a
    newer form), or the error naming the first field that is missing or malformed."""
    values: dict[str, str] = {}
    for field in fields:
        value = given.get(field.name, "").strip()
        where = METADATA_PREFIX + field.name
        if not value:
            if field.required:
                detail = f"{field.label or field.name} is required"
                return {}, ErrorFrame(code="prechat_required", detail=detail, field=where)
            continue
        problem = _problem(field, value)
        if problem is not None:
            return {}, ErrorFrame(code="invalid", detail=problem, field=where)
        values[field.name] = value
    return values, None


def missing(fields: list[PrechatField], profile: dict[str, str] | None) -> ErrorFrame | None:
    """The error for a message from a visitor who has not answered a required field."""
    _, error = check(fields, profile or {})
    return error


class Profile(msgspec.Struct, frozen=True):
    """What the visitor answered: the customer name, and the rest for the metadata."""

    values: dict[str, str]
    name_field: str | None

    @property
    def customer_name(self) -> str | None:
        return self.values.get(self.name_field) if self.name_field else None

    def metadata(self) -> dict[str, str]:
        return {
            METADATA_PREFIX + key: value
            for key, value in self.values.items()
            if key != self.name_field
        }


class ProfileStore:
    """Answers by visitor id, as a hash that lives as long as the visitor."""

    def __init__(
        self,
        host: AdapterHost,
        key: Callable[[str], str],
        fields: list[PrechatField],
        ttl_s: float,
    ) -> None:
        self.host = host  # its Redis client exists only once the gateway started
        self.key = key  # visitor id -> Redis key
        self.fields = fields
        self.name_field = next((f.name for f in fields if f.kind == "name"), None)
        self.ttl = int(ttl_s)

    def profile(self, values: dict[str, str]) -> Profile:
        return Profile(values, self.name_field)

    async def load(self, visitor_id: str) -> Profile | None:
        """The visitor's answers, extending their life as a token use does."""
        pipe = self.host.redis.pipeline(transaction=False)
        pipe.hgetall(self.key(visitor_id))
        pipe.expire(self.key(visitor_id), self.ttl)
        raw, _ = await pipe.execute()
        if not raw:
            return None
        return self.profile({k.decode(): v.decode() for k, v in raw.items() if k})

    async def save(self, visitor_id: str, values: dict[str, str]) -> Profile:
        key = self.key(visitor_id)
        async with self.host.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            # An empty form (no required field, nothing given) is remembered too, so the
            # visitor is not asked again.
            pipe.hset(key, mapping=values or {"": ""})
            pipe.expire(key, self.ttl)
            await pipe.execute()
        return self.profile(values)
