"""The files in the server's directory: the config we write, the pidfile and log we read.

The config is written afresh at every start (edits would be lost, so it says so); the pidfile
decides whether the directory is free, because two servers replaying and rewriting one AOF
would corrupt it; the log's tail goes into every start-up error.
"""

from __future__ import annotations

import os
from pathlib import Path

from gateway.redis.embedded.errors import RedisServerError
from gateway.redis.embedded.ports import HOST

CONF_NAME = "redis.conf"
LOG_NAME = "redis.log"
PID_NAME = "redis.pid"
SOCKET_NAME = "redis.sock"


def write_conf(
    run_dir: Path,
    port: int,
    socket_path: Path | None,
    *,
    persistent: bool,
    password: str | None,
) -> Path:
    lines = [
        "# Written by Zhongtai at every start of its embedded Redis: edits here are lost.",
        f"bind {HOST}",
        "protected-mode yes",
        f"port {port}",
        "daemonize no",
        f"pidfile {_conf_quote(str(run_dir / PID_NAME))}",
        # The log goes to stdout, which start() sends to redis.log: errors printed before
        # the log file would be opened (a bad directive) land there too.
        'logfile ""',
        "loglevel notice",
        f"dir {_conf_quote(str(run_dir))}",
        'save ""',  # the AOF is the persistence; RDB snapshots would double the writes
        f"appendonly {'yes' if persistent else 'no'}",
        "appendfsync everysec",
    ]
    if socket_path is not None:
        lines += [f"unixsocket {_conf_quote(str(socket_path))}", "unixsocketperm 700"]
    if password is not None:
        lines.append(f"requirepass {_conf_quote(password)}")
    conf = run_dir / CONF_NAME
    # 0600: the file may hold requirepass.
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return conf


def _conf_quote(value: str) -> str:
    # redis.conf splits lines like a shell; a double-quoted string takes \\ \" and \n escapes.
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def check_pidfile(run_dir: Path) -> None:
    """Refuse a directory a live redis-server uses; remove a pidfile left by a dead one."""
    pidfile = run_dir / PID_NAME
    try:
        text = pidfile.read_text().strip()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise RedisServerError(f"cannot read {pidfile}: {exc.strerror}") from None
    pid = int(text) if text.isdigit() else 0
    if _pid_is_redis(pid):
        # Two servers replaying and rewriting one AOF would corrupt it; the other one is
        # not ours to stop.
        raise RedisServerError(
            f"{run_dir} is in use by a running redis-server (pid {pid}, see {pidfile}); "
            "stop that process or choose another data dir"
        )
    pidfile.unlink(missing_ok=True)  # left by a server that died without cleaning up


def _pid_is_redis(pid: int) -> bool:
    """Whether ``pid`` is a live process that looks like a redis-server."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's: assume the worst and leave it alone
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS) or unreadable: alive is all we know
    # A pid recycled for an unrelated program since the pidfile was written is stale.
    # redis-server retitles itself "redis-server 127.0.0.1:PORT": look at argv[0] only, since
    # other programs' arguments may well mention redis.
    argv0 = cmdline.split(b"\0", 1)[0].split(b" ", 1)[0]
    return os.path.basename(argv0).startswith(b"redis")


def log_tail(path: Path, offset: int, lines: int = 20) -> str:
    """The last lines the server logged since ``offset`` (where this start began writing)."""
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.strip().splitlines()[-lines:]) or "(empty log)"
