"""One gateway process owns a data dir while it runs the embedded Redis there.

Two `serve` processes on one data dir would both start a redis-server on the same files; the
second used to print its banner and tokens and only then fail. The owner holds an exclusive
``flock`` on ``zhongtai.lock`` in the data dir, with its pid written in it, taken before
anything else, so the second one fails at once and names the process in its way. The kernel
drops the lock when the owner exits, however it exits, so a stale file never blocks a start.
Processes pointed at a shared Redis (``[redis] url``) take no lock: they own no data dir.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = "zhongtai.lock"


class DataDirBusy(Exception):
    """Another process holds the data dir."""


@contextlib.contextmanager
def hold_data_dir(data_dir: Path) -> Iterator[Path]:
    """Hold the data dir's lock for the block; raises DataDirBusy naming the holder's pid."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            raise DataDirBusy(
                f"the data dir {data_dir} is in use by process {holder} (lock {path}): stop it,"
                " or give this one another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock; the (empty) file stays for the next owner
