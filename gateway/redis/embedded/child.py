"""The child process's life beyond ``stop()``: it dies with its parent and is reaped at exit.

A gateway killed with SIGKILL (or a crashed test run) must not leave an orphan redis-server
holding the data dir, and a ``RedisServer`` nobody stopped must not outlive the interpreter.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import IO

_PR_SET_PDEATHSIG = 1


def parent_death_hook() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when its parent dies.

    Linux ties this to the *thread* that forked, so call start() from a thread that outlives
    the server (the main thread in serve and in pytest).
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


def reap(
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
