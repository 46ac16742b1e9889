"""The agent client library: everything an agents' program needs, from one import line.

    from gateway.client import AgentClient, Assigned, Offer, ReplyAck

It needs only `websockets` and `msgspec`: importing it loads the protocol's frames and the
message model, not the gateway's server side (aiohttp, redis, channels, metrics), so that a
bot or a console can install the package with `--no-deps` and those two. The terminal client
behind `zhongtai agent` lives in `gateway.client.terminal` and is not imported here.
"""

from gateway.agents.protocol import (
    PROTOCOL_VERSION,
    Accept,
    AgentInfo,
    Assigned,
    Attachment,
    ClientFrame,
    Close,
    Closed,
    Conversation,
    Decline,
    Error,
    Frame,
    Hello,
    Message,
    MessageFrame,
    Notice,
    Offer,
    OfferRevoked,
    Ping,
    Pong,
    Reply,
    ReplyAck,
    ServerFrame,
    SetStatus,
    StatusFrame,
    Transfer,
    Welcome,
)
from gateway.client.connection import DEFAULT_MAX_SIZE, AgentClient, Disconnected
from gateway.client.errors import (
    AgentClientError,
    AuthenticationFailed,
    ConnectionLost,
    NotConnected,
    ProtocolMismatch,
    Replaced,
)

__all__ = [
    "DEFAULT_MAX_SIZE",
    "PROTOCOL_VERSION",
    "Accept",
    "AgentClient",
    "AgentClientError",
    "AgentInfo",
    "Assigned",
    "Attachment",
    "AuthenticationFailed",
    "ClientFrame",
    "Close",
    "Closed",
    "ConnectionLost",
    "Conversation",
    "Decline",
    "Disconnected",
    "Error",
    "Frame",
    "Hello",
    "Message",
    "MessageFrame",
    "NotConnected",
    "Notice",
    "Offer",
    "OfferRevoked",
    "Ping",
    "Pong",
    "ProtocolMismatch",
    "Replaced",
    "Reply",
    "ReplyAck",
    "ServerFrame",
    "SetStatus",
    "StatusFrame",
    "Transfer",
    "Welcome",
]
