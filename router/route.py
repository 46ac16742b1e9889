"""A conversation's route: where it waits and how it is routed, typed for Python.

The route is stored as JSON in the ``conv:route`` hash, and the Lua scripts read and rewrite
it there with cjson, so its JSON is written for Lua: two-letter keys (docs/design.md's key
table), absent keys rather than nulls (cjson decodes null as a truthy userdata), and flags as
``1``. Python reads it through :class:`Route`, whose attributes say what each key means.

Decoding is lenient where Lua may differ from Python: cjson may write an integral number as
a float (``1.7e+12``), which decodes into an ``int`` field, and keys a script adds that Python
does not know are ignored. Python writes a route only when a conversation opens (ingest);
every later change is a script's, so a route decoded here is never written back and an
unknown key is never lost.
"""

from __future__ import annotations

import msgspec


class RouteDeadlines(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A complaint's deadlines (``dl`` in the route): set by ingest from the grade, then
    marked by the scripts (reply: the first response; timers: a reminder sent, a deadline
    missed), so that what happened is read from one place and never decided twice."""

    action: str = msgspec.field(name="a")  # the grade's on_deadline action
    priority: int | None = msgspec.field(default=None, name="p")  # raise_priority's
    queue: str | None = msgspec.field(default=None, name="q")  # move_to_queue's
    remind_before_ms: int = msgspec.field(default=0, name="b")
    from_ms: int = msgspec.field(default=0, name="s")  # when they started: the opening
    first_due_ms: int | None = msgspec.field(default=None, name="f")
    resolve_due_ms: int | None = msgspec.field(default=None, name="r")
    first_replied_ms: int | None = msgspec.field(default=None, name="fm")
    first_reminded_ms: int | None = msgspec.field(default=None, name="fw")
    first_missed_ms: int | None = msgspec.field(default=None, name="fx")
    resolve_reminded_ms: int | None = msgspec.field(default=None, name="rw")
    resolve_missed_ms: int | None = msgspec.field(default=None, name="rx")


class Route(msgspec.Struct, kw_only=True, omit_defaults=True):
    # Always there: the ingest script stores them and no script removes them.
    queue: str = msgspec.field(name="q")
    channel: str = msgspec.field(name="c")
    priority: int = msgspec.field(name="p")
    enqueued_ms: int = msgspec.field(name="e")
    customer_field: str = msgspec.field(name="k")  # the customer_open field of router.keys
    # Set by classification when the conversation opens, and by replace.
    skills: dict[str, int] | None = msgspec.field(default=None, name="s")
    grade: str | None = msgspec.field(default=None, name="g")
    sla_s: float | None = msgspec.field(default=None, name="sla")  # None: the queue's
    # Waiting time counts from here, not from enqueued_ms (a closed queue's opening).
    waits_from_ms: int | None = msgspec.field(default=None, name="w")
    # What classification decided; replace leaves a conversation placed on the same basis.
    basis: str | None = msgspec.field(default=None, name="pb")
    # The agent offered the conversation first (a returning customer's last agent, or the
    # agent it was transferred to), until when, and whether they must have the skills.
    preferred_agent: str | None = msgspec.field(default=None, name="pa")
    preferred_until_ms: int | None = msgspec.field(default=None, name="pu")
    preferred_must_qualify: int = msgspec.field(default=0, name="pk")
    # Where the customer's last agent is remembered, when not customer_field (a thread's
    # conversation remembers it for the customer, across threads).
    last_agent_field: str | None = msgspec.field(default=None, name="kl")
    # Set by the scripts' timers and transfers.
    overflow_queues: list[str] = msgspec.field(default_factory=list, name="x")
    escalation_steps: int = msgspec.field(default=0, name="es")
    ageing_steps: int = msgspec.field(default=0, name="ag")
    max_wait_came: int = msgspec.field(default=0, name="mw")
    leave_message: int = msgspec.field(default=0, name="lm")
    transfer_note: str | None = msgspec.field(default=None, name="tn")
    transferred_from: str | None = msgspec.field(default=None, name="tf")
    # A graded complaint's deadlines, when its grade has any (router/deadlines.py).
    deadlines: RouteDeadlines | None = msgspec.field(default=None, name="dl")
    # Set by the close: the agent who held it then (history's agent filter).
    closed_holder: str | None = msgspec.field(default=None, name="ha")
    # For the reports (router/reports.py), set once by accept or dispatch (the first
    # assignment) and by reply (the first response), kept across transfers; transfer appends
    # who held it then ('' when it was waiting).
    first_assigned_ms: int | None = msgspec.field(default=None, name="fa")
    first_agent: str | None = msgspec.field(default=None, name="fg")
    first_response_ms: int | None = msgspec.field(default=None, name="fr")
    first_response_by: str | None = msgspec.field(default=None, name="fb")
    transfers_from: list[str] = msgspec.field(default_factory=list, name="tx")


# Not strict: an integral float (as cjson may write a number) decodes into an int field.
_decoder = msgspec.json.Decoder(Route, strict=False)
_encoder = msgspec.json.Encoder()


def decode_route(raw: bytes | str) -> Route:
    return _decoder.decode(raw)


def encode_route(route: Route) -> bytes:
    """The route's JSON as the scripts read it: defaults (None among them) are left out."""
    return _encoder.encode(route)
