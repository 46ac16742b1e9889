"""The process's own tables: ``[server]`` (where it listens and its connection limits),
``[admin]`` (the admin port's tokens) and ``[logging]``. Their checks beyond the types are
in gateway/config_check.py (``check_server``)."""

from __future__ import annotations

from typing import Literal

from gateway.settings.strict import Strict


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = 8080
    admin_port: int = 9180
    tenant: str = "default"
    data_dir: str = "./var"
    node_id: str | None = None
    max_frame_bytes: int = 65536
    heartbeat_s: float = 20.0
    shutdown_timeout_s: float = 10.0
    # The admin port's own address: loopback unless asked, so that a public --host does
    # not put /metrics and the admin API on the internet too.
    admin_host: str = "127.0.0.1"
    # Proxies whose X-Forwarded-For names the client, for the per-address connection cap.
    trusted_proxies: list[str] = []
    # Open requests and sockets on the public port (gateway/guard/caps.py); 0: no cap.
    max_connections: int = 10000
    max_connections_per_address: int = 500
    # A connection that has not sent its headers, or its body, in this time is closed
    # (gateway/guard/deadlines.py); 0: no deadline.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    # An agent's or team lead's socket that has not sent hello in this time is closed
    # (gateway/agents/handshake.py), pings answered or not; 0: no deadline.
    hello_timeout_s: float = 10.0


class AdminConfig(Strict):
    token: str | None = None
    # Bearer token for /metrics; None: /metrics is open to whoever reaches the admin port.
    metrics_token: str | None = None


class LoggingConfig(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    json: bool = False
