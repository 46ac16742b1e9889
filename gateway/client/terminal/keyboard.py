"""The terminal's input: lines as they are typed, without ever blocking the event loop.

A thread does the blocking reads, so that ttys, pipes and plain files all work and the
event loop never waits on the keyboard.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import io
import os
import threading
from collections.abc import Callable
from typing import IO, Any

READER_THREAD_NAME = "zhongtai-agent-stdin"


def start_line_reader(stream: IO[Any]) -> asyncio.Queue[str | None]:
    """Lines from `stream` as they are typed; None at end of input.

    The thread reads the file descriptor itself, not the buffered file object, whose lock
    would otherwise still be held at interpreter exit.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def deliver(line: str | None) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, line)

    thread = threading.Thread(
        target=_read_lines, args=(stream, deliver), name=READER_THREAD_NAME, daemon=True
    )
    thread.start()
    return queue


def _read_lines(stream: IO[Any], deliver: Callable[[str | None], None]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening any more
        try:
            fd: int | None = stream.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            fd = None
        if fd is None:
            while line := stream.readline():
                deliver(_text(line).rstrip("\r\n"))
        else:
            _read_fd(fd, getattr(stream, "encoding", None) or "utf-8", deliver)
        deliver(None)


def _read_fd(fd: int, encoding: str, deliver: Callable[[str | None], None]) -> None:
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    pending = ""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        pending += decoder.decode(chunk, final=not chunk)
        *lines, pending = pending.split("\n")
        for line in lines:
            deliver(line.rstrip("\r"))
        if not chunk:
            if pending:
                deliver(pending.rstrip("\r"))
            return


def _text(line: str | bytes) -> str:
    return line.decode("utf-8", "replace") if isinstance(line, bytes) else line
