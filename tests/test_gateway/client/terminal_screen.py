"""The terminal client's line editor driven as a person would, for tests against a real gateway.

Keys go in through prompt_toolkit's pipe input; what the terminal draws (printed lines, the
prompt, the half-typed line and its redraws) lands on a Screen through a real VT100 output,
so that a test reads what a person would see, in the order it was drawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output.vt100 import Vt100_Output

from gateway.client.terminal import run_terminal

WAIT_S = 10.0  # a deadline for what should take well under a second
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")


class Screen:
    """The terminal's stdout. Written from the event loop and from prompt_toolkit's flush
    thread, so it locks, and wakes waiters through the loop."""

    def __init__(self) -> None:
        self.raw = ""
        self.lock = threading.Lock()
        self.loop = asyncio.get_running_loop()
        self.changed = asyncio.Event()
        self.encoding = "utf-8"

    def write(self, text: str) -> int:
        with self.lock:
            self.raw += text
        self.loop.call_soon_threadsafe(self.changed.set)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True

    @property
    def text(self) -> str:
        """What was drawn, without the escape codes that place it."""
        with self.lock:
            return ESCAPES.sub("", self.raw)

    async def wait_for(self, needle: str, after: str | None = None) -> int:
        """Wait until `needle` is drawn (after the last drawing of `after`, when given);
        where it ends in `text`."""
        try:
            async with asyncio.timeout(WAIT_S):
                while True:
                    self.changed.clear()
                    text = self.text
                    start = 0 if after is None else text.rfind(after)
                    if start >= 0:
                        start += len(after or "")
                        found = text.find(needle, start)
                        if found >= 0:
                            return found + len(needle)
                    await self.changed.wait()
        except TimeoutError:
            pytest.fail(f"{needle!r} not on the screen (after {after!r}):\n{self.text}")


@dataclass
class Terminal:
    screen: Screen
    keys: PipeInput
    run: asyncio.Task[int]

    def type(self, text: str) -> None:
        """Keys as typed; "\\r" is Enter."""
        self.keys.send_text(text)

    def line(self, text: str) -> None:
        """Type a line and press Enter."""
        self.type(text + "\r")

    async def exit_code(self) -> int:
        return await asyncio.wait_for(self.run, WAIT_S)


@contextlib.asynccontextmanager
async def terminal(url: str, token: str) -> AsyncIterator[Terminal]:
    """`zhongtai agent` at a terminal, in a task; cancelled at the end if still running."""
    screen = Screen()
    with create_pipe_input() as keys:
        output = Vt100_Output(
            screen,  # type: ignore[arg-type]  # a TextIO in all that Vt100_Output uses
            lambda: Size(rows=40, columns=160),
            term="xterm",
            enable_cpr=False,  # a pipe answers no cursor position requests
        )
        run = asyncio.create_task(run_terminal(url, token, prompt_input=keys, prompt_output=output))
        try:
            yield Terminal(screen, keys, run)
        finally:
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run
