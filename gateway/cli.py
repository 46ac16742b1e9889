"""The `zhongtai` command: serve, check-config, agent, --version."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway import __version__
from gateway.config import (
    Config,
    ConfigError,
    CoreConfig,
    ServerConfig,
    apply_environment,
    enabled_adapters,
    load_config,
    with_defaults,
)
from gateway.config_check import check_redis_url, config_warnings, port_problem
from gateway.config_hosts import check_listen_hosts
from gateway.masking import mask_credentials

log = logging.getLogger("zhongtai")


def _parser() -> argparse.ArgumentParser:
    server = ServerConfig()
    parser = argparse.ArgumentParser(prog="zhongtai", description="Omnichannel routing gateway")
    parser.add_argument("--version", action="version", version=f"zhongtai {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="run the gateway",
        description="Run the gateway. Each option overrides its key in the file.",
    )
    serve.add_argument(
        "--config",
        metavar="FILE",
        help="TOML configuration file (default: none: built-in defaults, no agents or channels)",
    )
    serve.add_argument(
        "--host",
        help=f"address the public site listens on (default: [server] host, {server.host})",
    )
    serve.add_argument(
        "--admin-host",
        help="address the admin site listens on; keep it off the internet"
        f" (default: [server] admin_host, {server.admin_host})",
    )
    serve.add_argument(
        "--port",
        type=_port,
        help="public port: web chat, agent and supervisor sockets, the console"
        f" (default: [server] port, {server.port})",
    )
    serve.add_argument(
        "--admin-port",
        type=_port,
        help="admin port: /api, /metrics, /healthz, /readyz"
        f" (default: [server] admin_port, {server.admin_port})",
    )
    serve.add_argument(
        "--redis-url",
        metavar="URL",
        help="a shared Redis to use (default: [redis] url or $ZHONGTAI_REDIS_URL; with neither,"
        " an embedded redis-server in the data dir)",
    )
    serve.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where the embedded Redis and the demo's tokens are kept"
        f" (default: [server] data_dir, {server.data_dir})",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="no file: two agents, a team lead, an admin token and web chat (default: off)",
    )

    check = commands.add_parser(
        "check-config",
        help="validate a configuration file",
        description="Validate a configuration file as serve would: errors exit 2, warnings"
        " are printed and exit 0 (2 with --strict).",
    )
    check.add_argument("file", help="the TOML file to check (required)")
    check.add_argument(
        "--strict",
        action="store_true",
        help="exit 2 on warnings too (default: off: warnings are printed, exit 0)",
    )

    agent = commands.add_parser("agent", help="terminal agent client")
    agent.add_argument(
        "--url", required=True, help="the agent socket, ws://host:port/agent/ws (required)"
    )
    agent.add_argument(
        "--token",
        help=f"the agent's token (default: ${TOKEN_ENV}, which keeps it out of `ps` listings)",
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
    if args.admin_host:
        server.admin_host = args.admin_host
    if args.port is not None:
        server.port = args.port
    if args.admin_port is not None:
        server.admin_port = args.admin_port
    if args.data_dir:
        server.data_dir = args.data_dir
    if args.redis_url:
        config.redis.url = args.redis_url
    apply_environment(config.core, os.environ)  # secrets from the environment win
    _check_redis_url(config, args)
    options = {("server", "host"): "--host", ("server", "admin_host"): "--admin-host"}
    check_listen_hosts(config, {where: o for where, o in options.items() if _given(args, o)})
    return config


def _given(args: argparse.Namespace, option: str) -> bool:
    return bool(getattr(args, option.lstrip("-").replace("-", "_")))


def _port(text: str) -> int:
    """--port and --admin-port, checked as [server] port is: argparse then names the option."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: use 1 to 65535") from None
    if problem := port_problem(port):
        raise argparse.ArgumentTypeError(problem)
    return port


def _check_redis_url(config: Config, args: argparse.Namespace) -> None:
    """The URL serve will use, checked as check-config checks the file's, named by where it
    came from."""
    if os.environ.get("ZHONGTAI_REDIS_URL"):
        check_redis_url(config.redis.url, "environment", None, "ZHONGTAI_REDIS_URL")
    elif args.redis_url:
        check_redis_url(config.redis.url, "command line", None, "--redis-url")
    else:
        check_redis_url(config.redis.url, config.source, "redis", "url")


def _program() -> str:
    """How to run this program again, as the user started it: `.venv/bin/zhongtai` works
    in the tour without an activated virtualenv, where plain `zhongtai` would not."""
    started_as = sys.argv[0] if sys.argv else ""
    return started_as if os.path.basename(started_as) == "zhongtai" else "zhongtai"


def _print_demo(config: Config, program: str) -> None:
    server = config.server
    base = f"http://{server.host}:{server.port}"
    admin = f"http://{server.admin_host}:{server.admin_port}"
    print("Zhongtai demo", flush=True)
    if "webchat" in dict(enabled_adapters(config)):
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
    if config.core.admin.token:
        print(f"  admin API: {admin}/api with token {config.core.admin.token}, for example")
        print(f'    curl -H "Authorization: Bearer {config.core.admin.token}" {admin}/api/queues')
    print(f"  metrics: {admin}/metrics", flush=True)


def _check(args: argparse.Namespace) -> int:
    try:
        config = load(args.file)
        check_listen_hosts(config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    warnings = config_warnings(config)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    counted = f", {len(warnings)} warnings" if warnings else ""
    print(
        f"{args.file}: valid ({len(config.agents)} agents, {len(config.queues)} queues, "
        f"channels: {', '.join(config.adapters) or 'none'}{counted})"
    )
    if warnings and args.strict:
        print(f"{args.file}: --strict: warnings count as errors", file=sys.stderr)
        return 2
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        config = _serve_config(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    from gateway.datadir import DataDirBusy, hold_data_dir
    from gateway.logs import setup_logging

    setup_logging(config.core.logging.level, config.core.logging.json)
    data_dir = Path(config.server.data_dir)
    # The embedded Redis's owner holds the data dir, before it prints or starts anything.
    held = hold_data_dir(data_dir) if config.redis.url is None else contextlib.nullcontext()
    try:
        with held:
            return _serve_held(args, config, data_dir)
    except DataDirBusy as exc:
        log.error("zhongtai could not start: %s", exc)
        return 1


def _serve_held(args: argparse.Namespace, config: Config, data_dir: Path) -> int:
    from gateway.serve import serve

    if args.demo:
        from gateway.demo import keep_demo_secrets

        kept = keep_demo_secrets(config, data_dir)
        apply_environment(config.core, os.environ)  # the environment still wins
        log.info("demo tokens kept in %s", kept)
    for warning in config_warnings(config):
        log.warning("%s", warning)
    if args.demo:
        _print_demo(config, _program())
    try:
        return serve(config)
    except Exception as exc:
        log.error("zhongtai could not start: %s", mask_credentials(str(exc)))
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        return _check(args)
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
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
