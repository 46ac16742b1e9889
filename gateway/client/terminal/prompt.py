"""The terminal's input when a person types at a real terminal: a prompt_toolkit line editor.

Lines printed while the person types (a customer's message, an offer) must appear above the
line being typed and leave it intact; that needs the line erased, the output written and
the line drawn again, which prompt_toolkit does (run_in_terminal, what its patch_stdout is
built on), where hand-written raw terminal handling cannot keep a half-typed line whole.
The terminal's own lines go through run_in_terminal from the event loop (AbovePrompt);
patch_stdout catches anything else written to stdout or stderr (a library's warning).
Pipes and files keep the plain reader (keyboard.py): a script's commands have no line to
keep and want no escape codes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from prompt_toolkit import PromptSession
from prompt_toolkit.application import create_app_session, get_app_session, run_in_terminal
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from prompt_toolkit.patch_stdout import patch_stdout


class LineSource(Protocol):
    """Where typed lines come from: the session reads them one at a time."""

    async def read_line(self) -> str | None:
        """The next typed line; None at end of input."""
        ...

    def prefill(self, text: str) -> bool:
        """Put `text` in the next line, for the person to edit; False when this input has no
        line to edit (a pipe), so the caller does something else with it."""
        ...


class QueuedLines:
    """Lines from a queue (the plain reader's, keyboard.py): pipes, files, tests."""

    def __init__(self, queue: asyncio.Queue[str | None]) -> None:
        self.queue = queue

    async def read_line(self) -> str | None:
        return await self.queue.get()

    def prefill(self, text: str) -> bool:
        return False


class PromptLines:
    """Lines edited at a prompt that shows the current conversation (`abcd> `)."""

    def __init__(self, prompt: Callable[[], str], session: PromptSession[str]) -> None:
        self.prompt = prompt
        self.session = session
        self._default = ""

    async def read_line(self) -> str | None:
        default, self._default = self._default, ""
        try:
            return await self.session.prompt_async(self.prompt, default=default)
        except EOFError:  # Ctrl-D on an empty line, or the input closed
            return None
        except KeyboardInterrupt:  # Ctrl-C: as `quit` (the plain reader's Ctrl-C does so)
            return None

    def prefill(self, text: str) -> bool:
        self._default = text
        return True


class AbovePrompt:
    """A text stream (for screen.Printer) that draws above the line being edited.

    Written from the event loop; the lines of one loop turn (a welcome's listing) are drawn
    together, so that the line is erased and redrawn once for them, in the order written.
    """

    def __init__(self, output: Output) -> None:
        self.output = output
        self._pending: list[str] = []
        self._drawing: set[Awaitable[None]] = set()
        self._scheduled = False

    def write(self, text: str) -> int:
        self._pending.append(text)
        return len(text)

    def flush(self) -> None:
        if self._pending and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._draw)

    def _draw(self) -> None:
        self._scheduled = False
        text, self._pending = "".join(self._pending), []

        def write() -> None:
            self.output.write_raw(text)
            self.output.flush()

        drawing = asyncio.ensure_future(run_in_terminal(write))
        self._drawing.add(drawing)  # a pending task needs a reference to be kept
        drawing.add_done_callback(self._drawing.discard)

    async def drain(self) -> None:
        """Until everything written so far is on the terminal."""
        while self._scheduled or self._drawing:
            await asyncio.sleep(0)  # one loop turn: the scheduled draw starts
            if self._drawing:
                await asyncio.gather(*self._drawing, return_exceptions=True)


@contextlib.asynccontextmanager
async def prompt_terminal(
    prompt: Callable[[], str], *, input: Input | None = None, output: Output | None = None
) -> AsyncIterator[tuple[PromptLines, AbovePrompt]]:
    """A line editor on the terminal (or on `input`/`output`, in tests) and a stream that
    prints above it, for as long as the block runs.

    On the terminal itself the default prompt_toolkit session is kept: patch_stdout's
    writer thread looks for the running prompt there.
    """
    session_of_its_own = input is not None or output is not None
    apps = create_app_session(input=input, output=output) if session_of_its_own else None
    with apps or contextlib.nullcontext(), patch_stdout(raw=True):
        above = AbovePrompt(get_app_session().output)
        session: PromptSession[str] = PromptSession(history=InMemoryHistory())
        try:
            yield PromptLines(prompt, session), above
        finally:
            await above.drain()
