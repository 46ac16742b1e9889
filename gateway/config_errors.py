"""Configuration errors a person can act on: where (file, table, key) and what is wrong, in
the file's own words.

msgspec reports ``Object contains unknown field `stratgy` - at `$.queues[0]```; a reader
wants ``[queues "general"] stratgy: unknown key "stratgy" — did you mean "strategy"?``.
This module turns msgspec's errors into that form: entries of the core arrays are named by
their name or id (their index only when they have none), enum errors list the valid values
and unknown keys suggest the nearest one. The semantic checks (gateway/config.py,
gateway/settings/, gateway/config_check.py) name their entries with :func:`entry` so both
read the same.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from typing import Annotated, Any, Literal, get_args, get_origin

import msgspec

# The key that names an entry of each core array of tables.
ENTRY_KEYS = {
    "agents": "id",
    "queues": "name",
    "rules": "name",
    "grades": "name",
    "supervisors": "id",
    "canned_replies": "id",
    "webhooks": "name",
}
# Arrays of tables inside a core table: table -> (array, the key that names an entry).
NESTED_ENTRY_KEYS = {"qa": ("scorecard", "name")}


class ConfigError(Exception):
    """A configuration problem, located by file, table and key."""

    def __init__(self, file: str, table: str | None, key: str | None, problem: str) -> None:
        self.file, self.table, self.key, self.problem = file, table, key, problem
        where = file
        if table:
            where += f": [{table}]"
        if key:
            where += f" {key}" if table else f": {key}"
        super().__init__(f"{where}: {problem}")


def entry(table: str, index: int, name: object) -> str:
    """How an error names entry ``index`` of an array of tables: ``queues "general"``, or
    ``queues[0]`` while it has no usable name."""
    if isinstance(name, str) and name:
        return f"{table} {quote(name)}"
    return f"{table}[{index}]"


def quote(value: object) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def one_of(value: object, valid: Iterable[object]) -> str:
    listed = ", ".join(quote(v) for v in valid)
    return f"{quote(value)} is not one of {listed}"


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` — did you mean "x"?`` for the nearest option, or an empty string."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f' — did you mean "{close[0]}"?' if close else ""


def unknown(what: str, word: str, options: Iterable[str]) -> str:
    """``unknown key "stratgy" — did you mean "strategy"?``, or the options when none is near."""
    options = sorted(set(options))
    hint = did_you_mean(word, options)
    if not hint and options:
        hint = f"; one of {', '.join(options)}"
    return f"unknown {what} {quote(word)}{hint}"


def duplicate(what: str, value: str, seen: Mapping[str, int], index: int) -> str:
    """``duplicate agent id "alice" (entries 1 and 3)``: ``seen`` maps each value to its entry."""
    return f"duplicate {what} {quote(value)} (entries {seen[value] + 1} and {index + 1})"


def unique_entries(table: str, ids: Iterable[str], what: str, file: str) -> Iterator[str]:
    """How errors name each entry of ``table`` (see :func:`entry`), in order, raising at the
    first entry whose id an earlier one has."""
    seen: dict[str, int] = {}
    for i, id_ in enumerate(ids):
        where = entry(table, i, id_)
        if id_ in seen:
            raise ConfigError(file, where, "id", duplicate(what, id_, seen, i))
        seen[id_] = i
        yield where


def no_queue(name: str, names: Iterable[str]) -> str:
    return f"no queue named {quote(name)}{did_you_mean(name, names)}"


_MSGSPEC = re.compile(
    r"^(?P<problem>.*?)(?: - at (?:`(?P<dictkey>key)` in )?`\$(?P<path>[^`]*)`)?$", re.S
)
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(?P<key>[^`]+)`$")
_MISSING_FIELD = re.compile(r"^Object missing required field `(?P<key>[^`]+)`$")
_ENUM = re.compile(r"^Invalid enum value (?P<value>.+)$")
_TOKEN = re.compile(r"\.(?P<field>[^.\[]+)|\[(?P<index>\d+)\]|(?P<dict>\[\.\.\.\])")

Token = str | int | None  # a field, an array index, a value inside a dict


def convert(data: Any, type_: type, file: str, table: str | None = None) -> Any:
    """msgspec.convert, its errors raised as ConfigError. ``table``: the name of the table
    ``data`` is (an adapter's); None for the whole document."""
    try:
        return msgspec.convert(data, type_)
    except msgspec.ValidationError as exc:
        raise _config_error(exc, data, type_, file, table) from None


def _config_error(
    exc: msgspec.ValidationError, data: Any, type_: type, file: str, table: str | None
) -> ConfigError:
    match = _MSGSPEC.match(str(exc))
    assert match is not None
    problem, path = match.group("problem"), match.group("path") or ""
    tokens: list[Token] = []
    for m in _TOKEN.finditer(path):
        if m.group("field"):
            tokens.append(m.group("field"))
        elif m.group("index"):
            tokens.append(int(m.group("index")))
        else:
            tokens.append(None)
    there = _type_at(type_, tokens)
    extra: str | None = None  # the key msgspec names in its message rather than its path
    if m := _UNKNOWN_FIELD.match(problem):
        extra = m.group("key")
        problem = unknown("key", extra, _field_names(there))
    elif m := _MISSING_FIELD.match(problem):
        extra = m.group("key")
        problem = f"missing required key {quote(extra)}"
    elif m := _ENUM.match(problem):
        if match.group("dictkey"):
            there = _dict_key_type(there)
        valid = _literal_values(there)
        if valid:
            problem = one_of(m.group("value").strip("'\""), valid)
    if table is None:
        tbl, key = _core_place(tokens, extra, data)
    else:
        tbl, key = _nested_place(table, tokens, extra)
    return ConfigError(file, tbl, key, problem)


def _core_place(tokens: list[Token], extra: str | None, data: Any) -> tuple[str | None, str | None]:
    """Table and key in the document: entries by name, the rest of the path as the key."""
    if not tokens:
        return None, extra
    head, rest = str(tokens[0]), tokens[1:]
    name_key, items = ENTRY_KEYS.get(head), data
    if head in NESTED_ENTRY_KEYS and rest and rest[0] == NESTED_ENTRY_KEYS[head][0]:
        # [[qa.scorecard]]: an array of tables inside a table, named as the core ones are.
        items = data.get(head) if isinstance(data, Mapping) else None
        name_key = NESTED_ENTRY_KEYS[head][1]
        head, rest = f"{head}.{rest[0]}", rest[1:]
    if name_key and rest and isinstance(rest[0], int):
        index = rest[0]
        raw = _get(items, head.rpartition(".")[2], index)
        tbl = entry(head, index, raw.get(name_key) if isinstance(raw, Mapping) else None)
        rest = rest[1:]
    elif head == "hours" and rest and rest[0] is None:
        tbl = f"hours.{_failing_schedule(data)}"
        rest = rest[1:]
    elif rest or extra:
        tbl = head
    else:
        return None, head  # the table itself has the wrong shape (``server = 5``)
    return tbl, _key(rest, extra)


def _nested_place(table: str, tokens: list[Token], extra: str | None) -> tuple[str, str | None]:
    """An adapter table's own nesting: ``[email.mailboxes[0].imap] prot``."""
    parts = [table]
    for token in tokens:
        if token is None:
            extra = None  # a value inside a dict: the place stops at the dict
            break
        if isinstance(token, int):
            parts[-1] += f"[{token}]"
        else:
            parts.append(token)
    if extra:
        parts.append(extra)
    key = parts.pop() if len(parts) > 1 else None
    return ".".join(parts), key


def _key(rest: list[Token], extra: str | None) -> str | None:
    parts: list[str] = []
    for token in rest:
        if token is None:
            extra = None
            break
        if isinstance(token, int) and parts:
            parts[-1] += f"[{token}]"
        else:
            parts.append(str(token))
    if extra:
        parts.append(extra)
    return ".".join(parts) or None


def _get(data: Any, table: str, index: int) -> Any:
    items = data.get(table) if isinstance(data, Mapping) else None
    if isinstance(items, list) and index < len(items):
        return items[index]
    return None


def _failing_schedule(data: Any) -> str:
    """msgspec does not say which ``[hours.NAME]`` failed: decode them one at a time."""
    from router.config import HoursConfig

    for name, schedule in (data.get("hours") or {}).items():
        try:
            msgspec.convert(schedule, HoursConfig)
        except msgspec.ValidationError:
            return str(name)
    return "..."


def _unwrap(type_: Any) -> Any:
    while True:
        origin = get_origin(type_)
        if origin is Annotated:
            type_ = get_args(type_)[0]
        elif origin in (typing.Union, types.UnionType):
            others = [a for a in get_args(type_) if a is not type(None)]
            if len(others) != 1:
                return type_
            type_ = others[0]
        else:
            return type_


def _type_at(type_: Any, tokens: list[Token]) -> Any:
    """The type at a msgspec path, or None when it cannot be followed."""
    for token in tokens:
        type_ = _unwrap(type_)
        if isinstance(token, str):
            if not (isinstance(type_, type) and issubclass(type_, msgspec.Struct)):
                return None
            fields = {f.name: f.type for f in msgspec.structs.fields(type_)}
            if token not in fields:
                return None
            type_ = fields[token]
        elif isinstance(token, int):
            args = get_args(type_)
            type_ = args[0] if get_origin(type_) is list and args else None
        else:
            args = get_args(type_)
            type_ = args[1] if get_origin(type_) is dict and len(args) == 2 else None
    return _unwrap(type_)


def _dict_key_type(type_: Any) -> Any:
    args = get_args(type_)
    return _unwrap(args[0]) if get_origin(type_) is dict and args else None


def _field_names(type_: Any) -> list[str]:
    if isinstance(type_, type) and issubclass(type_, msgspec.Struct):
        return [f.encode_name for f in msgspec.structs.fields(type_)]
    return []


def _literal_values(type_: Any) -> tuple[object, ...]:
    return get_args(type_) if get_origin(type_) is Literal else ()
