"""The errors of the agent client library, apart from the connection code that raises them,
so that programs can catch them without reading how a connection is kept up."""

from __future__ import annotations

__all__ = [
    "AgentClientError",
    "AuthenticationFailed",
    "ConnectionLost",
    "NotConnected",
    "ProtocolMismatch",
    "Replaced",
]


class AgentClientError(Exception):
    """Base of the errors this library raises."""


class AuthenticationFailed(AgentClientError):
    """The gateway refused the token (close code 4401). Reconnecting would not help."""


class Replaced(AgentClientError):
    """A newer connection of the same agent took over (close code 4409)."""


class ProtocolMismatch(AgentClientError):
    """The gateway does not speak this client's protocol version."""


class NotConnected(AgentClientError):
    """A frame was sent while no connection was up; it was not sent."""


class ConnectionLost(AgentClientError):
    """The first connection failed, or a connection dropped with reconnect=False."""

    def __init__(self, message: str, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
