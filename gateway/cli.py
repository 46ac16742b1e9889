"""The `zhongtai` command: serve, check-config, agent, --version."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from gateway import __version__
from gateway.config import (
    Config,
    ConfigError,
    CoreConfig,
    apply_environment,
    load_config,
    with_defaults,
)
from gateway.masking import mask_credentials

log = logging.getLogger("zhongtai")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zhongtai", description="Omnichannel routing gateway")
    parser.add_argument("--version", action="version", version=f"zhongtai {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", help="TOML configuration file")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--admin-port", type=int)
    serve.add_argument("--redis-url", help="use this Redis instead of an embedded one")
    serve.add_argument("--data-dir", help="where the embedded Redis keeps its data")
    serve.add_argument("--demo", action="store_true", help="two agents and web chat, no file")

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")

    agent = commands.add_parser("agent", help="terminal agent client")
    agent.add_argument("--url", required=True, help="ws://host:port/agent/ws")
    agent.add_argument(
        "--token",
        help=f"the agent's token; default: ${TOKEN_ENV}, which keeps it out of `ps` listings",
    )
    return parser


TOKEN_ENV = "ZHONGTAI_AGENT_TOKEN"


def _adapter_configs(path: str) -> dict[str, type]:
    """Config Structs of the adapters named as tables in the file (only those are imported)."""
    import tomllib

    from adapters import registry

    try:
        with open(path, "rb") as f:
            tables = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return {}  # load_config reports the problem with the file's name
    names = [name for name in tables if name in registry.available()]
    return registry.config_types(names)


def load(path: str) -> Config:
    return load_config(path, _adapter_configs(path))


def _serve_config(args: argparse.Namespace) -> Config:
    import os

    from gateway.demo import demo_config

    if args.config:
        config = load(args.config)
    elif args.demo:
        config = demo_config()
    else:
        log.warning("no --config and no --demo: built-in defaults, so no agents and no channels")
        config = Config(core=with_defaults(CoreConfig()), adapters={})
    server = config.server
    if args.host:
        server.host = args.host
    if args.port is not None:
        server.port = args.port
    if args.admin_port is not None:
        server.admin_port = args.admin_port
    if args.data_dir:
        server.data_dir = args.data_dir
    if args.redis_url:
        config.redis.url = args.redis_url
    apply_environment(config.core, os.environ)  # secrets from the environment win
    return config


def _program() -> str:
    """How to run this program again, as the user started it: `.venv/bin/zhongtai` works
    in the tour without an activated virtualenv, where plain `zhongtai` would not."""
    started_as = sys.argv[0] if sys.argv else ""
    return started_as if os.path.basename(started_as) == "zhongtai" else "zhongtai"


def _print_demo(config: Config, program: str) -> None:
    server = config.server
    base = f"http://{server.host}:{server.port}"
    print("Zhongtai demo", flush=True)
    print(f"  web chat page: {base}/webchat/")
    print(f"  console: {base}/console/ (sign in with an agent's or a team lead's token)")
    for agent in config.agents:
        print(
            f"  agent {agent.id}: {program} agent --url ws://{server.host}:{server.port}/agent/ws"
            f" --token {agent.token}"
        )
    for lead in config.core.supervisors:
        socket = f"ws://{server.host}:{server.port}/supervisor/ws"
        print(
            f"  team lead {lead.id}: the console, or the supervisor socket {socket},"
            f" with token {lead.token}"
        )
    print(f"  metrics: http://{server.host}:{server.admin_port}/metrics", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        try:
            config = load(args.file)
        except ConfigError as exc:
            print(f"config error: {exc}", file=sys.stderr)
            return 2
        print(
            f"{args.file}: valid ({len(config.agents)} agents, {len(config.queues)} queues, "
            f"channels: {', '.join(config.adapters) or 'none'})"
        )
        return 0
    if args.command == "agent":
        from gateway.client.terminal import run_terminal

        # The flag wins; the environment keeps the token out of the process list.
        token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
        if not token:
            print(f"zhongtai agent: give --token TOKEN or set {TOKEN_ENV}", file=sys.stderr)
            return 2
        try:
            return asyncio.run(run_terminal(args.url, token))
        except KeyboardInterrupt:
            return 0
    try:
        config = _serve_config(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    from gateway.logs import setup_logging
    from gateway.serve import serve

    setup_logging(config.core.logging.level, config.core.logging.json)
    if args.demo:
        _print_demo(config, _program())
    try:
        return serve(config)
    except Exception as exc:
        log.error("zhongtai could not start: %s", mask_credentials(str(exc)))
        return 1


if __name__ == "__main__":
    sys.exit(main())
