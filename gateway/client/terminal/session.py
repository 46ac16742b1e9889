"""The terminal's loop: frames from the gateway and lines from the keyboard, side by side,
until the person quits, input ends, or the connection cannot come back.

The exit codes are what `zhongtai agent` returns: 0 after quit or end of input, 2 when the
gateway refused the token, 1 for any other failure.

At a terminal the person types into a line editor (prompt.py) that keeps a half-typed line
intact under arriving messages; from a pipe or a file, lines are read as they come
(keyboard.py) and printed plainly.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import IO, Any, TextIO

from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from websockets.exceptions import InvalidURI

from gateway.client.connection import AgentClient
from gateway.client.errors import AgentClientError, AuthenticationFailed, Replaced
from gateway.client.terminal.commands import Commands
from gateway.client.terminal.desk import Desk
from gateway.client.terminal.keyboard import start_line_reader
from gateway.client.terminal.prompt import LineSource, QueuedLines, prompt_terminal
from gateway.client.terminal.screen import Printer

EXIT_OK, EXIT_FAILED, EXIT_BAD_TOKEN = 0, 1, 2


class TerminalSession:
    """What one person sees and can do: frames in, commands out."""

    def __init__(self, client: AgentClient, out: Printer) -> None:
        self.client = client
        self.out = out
        self.desk = Desk(out)
        self.commands = Commands(client, self.desk)

    def prompt(self) -> str:
        """The line editor's prompt: the conversation a plain line replies in."""
        target = self.desk.target()
        return f"{self.desk.short(target)}> " if target else "> "

    async def run(self, lines: asyncio.Queue[str | None] | LineSource) -> int:
        """Until quit, end of input, or a connection that cannot come back; the exit code."""
        if isinstance(lines, asyncio.Queue):
            lines = QueuedLines(lines)
        self.commands.lines = lines
        pump = asyncio.create_task(self.pump())
        typing = asyncio.create_task(self.read_commands(lines))
        done, _ = await asyncio.wait({pump, typing}, return_when=asyncio.FIRST_COMPLETED)
        for task in (pump, typing):
            if task not in done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return pump.result() if pump in done else typing.result()

    async def pump(self) -> int:
        try:
            async for frame in self.client.frames():
                self.desk.show(frame)
        except AuthenticationFailed as exc:
            self.out.say(f"the gateway refused the token: {exc}")
            return EXIT_BAD_TOKEN
        except Replaced:
            self.out.say("another connection of this agent took over; this one stops")
            return EXIT_FAILED
        except AgentClientError as exc:
            self.out.say(f"disconnected for good: {exc}")
            return EXIT_FAILED
        return EXIT_OK

    async def read_commands(self, lines: LineSource) -> int:
        while (line := await lines.read_line()) is not None:
            if not await self.commands.handle_line(line):
                break
        return EXIT_OK


async def run_terminal(
    url: str,
    token: str,
    *,
    stdin: IO[Any] | None = None,
    stdout: TextIO | None = None,
    prompt_input: Input | None = None,
    prompt_output: Output | None = None,
) -> int:
    """Run the terminal client until quit or end of input: 0; bad token: 2; else 1.

    With `stdin`/`stdout` (or when either of the process's is not a terminal) lines are read
    and printed plainly; otherwise a line editor runs on the terminal, or on `prompt_input`
    and `prompt_output` when given (tests drive it through a pipe input).
    """
    interactive = prompt_input is not None or prompt_output is not None
    if not interactive and stdin is None and stdout is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not interactive:
        out = Printer(stdout if stdout is not None else sys.stdout)
        client = await _connect(url, token, out)
        if isinstance(client, int):
            return client
        try:
            lines = start_line_reader(stdin if stdin is not None else sys.stdin)
            return await TerminalSession(client, out).run(lines)
        finally:
            await client.aclose()
    session: TerminalSession | None = None

    def prompt() -> str:
        return session.prompt() if session is not None else "> "

    async with prompt_terminal(prompt, input=prompt_input, output=prompt_output) as (typed, above):
        out = Printer(above)  # type: ignore[arg-type]  # a TextIO in all that Printer uses
        client = await _connect(url, token, out)
        if isinstance(client, int):
            return client
        try:
            session = TerminalSession(client, out)
            return await session.run(typed)
        finally:
            await client.aclose()


async def _connect(url: str, token: str, out: Printer) -> AgentClient | int:
    """A connected client, or the exit code when there is none."""
    try:
        client = AgentClient(url, token)
    except InvalidURI as exc:
        out.say(f"not a websocket URL: {exc}")
        return EXIT_FAILED
    try:
        await client.connect()
    except AuthenticationFailed as exc:
        out.say(f"the gateway refused the token: {exc}")
        return EXIT_BAD_TOKEN
    except AgentClientError as exc:
        out.say(str(exc))
        return EXIT_FAILED
    return client
