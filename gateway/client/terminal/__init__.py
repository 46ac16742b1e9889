"""The terminal agent client behind `zhongtai agent --url WS_URL --token TOKEN`.

A person reads offers and customer messages as lines of text and types short commands
(`help` lists them). Conversations are shown by a short tail of their id, four characters
or more, unique among those on screen; any unique part of an id is accepted back.

It is built on the client library (gateway.client) and cut by what each part does: the loop
(session.py), what is on screen and how frames show (desk.py), the typed commands
(commands.py), output lines (screen.py), the line editor at a terminal (prompt.py), plain
input from pipes (keyboard.py) and short ids (names.py).
"""

from gateway.client.terminal.commands import HELP, Commands
from gateway.client.terminal.desk import Desk
from gateway.client.terminal.keyboard import READER_THREAD_NAME, start_line_reader
from gateway.client.terminal.names import MIN_SHORT_ID, matching, short_id
from gateway.client.terminal.prompt import (
    AbovePrompt,
    LineSource,
    PromptLines,
    QueuedLines,
    prompt_terminal,
)
from gateway.client.terminal.screen import (
    INDENT,
    Printer,
    clip_id,
    clock,
    customer_label,
    one_line,
)
from gateway.client.terminal.session import (
    EXIT_BAD_TOKEN,
    EXIT_FAILED,
    EXIT_OK,
    TerminalSession,
    run_terminal,
)

__all__ = [
    "EXIT_BAD_TOKEN",
    "EXIT_FAILED",
    "EXIT_OK",
    "HELP",
    "INDENT",
    "MIN_SHORT_ID",
    "READER_THREAD_NAME",
    "AbovePrompt",
    "Commands",
    "Desk",
    "LineSource",
    "Printer",
    "PromptLines",
    "QueuedLines",
    "TerminalSession",
    "clip_id",
    "clock",
    "customer_label",
    "matching",
    "one_line",
    "prompt_terminal",
    "run_terminal",
    "short_id",
    "start_line_reader",
]
