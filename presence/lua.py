"""A package's Lua scripts, declared once and called by name.

Each script has a LuaContract, declared in Python in the package that owns it: its KEYS and
ARGV names, in order, and the variadic groups that end them. The contract is the one place
the order lives: callers name what they pass and the contract lays it out, and each script's
header names the same entries in the same order (tests check both sides against each other).

Keys whose value is fixed for an owner (a tenant's hashes) are filled in from the owner's key
builders when the owner is made, so a call names only what changes: arguments, keys built for
one conversation, and the variadic groups.

Scripts are loaded from ``<package>/lua/NAME.lua`` with ``lua/_common.lua`` prepended when
the package has one (and, for the packages that change agents, presence's ``_index.lua``
before it), and registered once (EVALSHA, loaded again after NOSCRIPT). Redis counts
an error's line in the loaded text, prelude included; errors are re-raised naming the .lua
file and its own line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from importlib.resources import files
from typing import Any

import msgspec
from redis.exceptions import ResponseError

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
# Redis names the loaded text "user_script", with an "@" before it in the "on ..." part.
_SCRIPT_LINE = re.compile(r"@?user_script:(\d+)")
# A header entry: "-- KEYS[3] state: what it is", "-- ARGV[6..] queue_names: ...", or a
# group after another variadic one, "-- ARGV[13+timer_item_count..] queue_names: ...".
_ENTRY = re.compile(r"-- (KEYS|ARGV)\[(\d+)(?:\+([a-z0-9_]+))?(\.\.)?\] ([a-z][a-z0-9_]*): \S")
# An entry counted from the end, after every other one: "-- KEYS[#KEYS] events: ...",
# "-- ARGV[#ARGV-1] events_max_len: ...". Counting from the end keeps these in place when
# fixed entries or variadic groups before them change.
_LAST_ENTRY = re.compile(r"-- (KEYS|ARGV)\[#(KEYS|ARGV)(?:-(\d+))?\] ([a-z][a-z0-9_]*): \S")


class LuaContract(msgspec.Struct, frozen=True):
    """What one script takes: ``keys`` then the lists named in ``more_keys``, then
    ``last_keys``, concatenated, as KEYS; ``args`` then the lists named in ``more_args``,
    then ``last_args``, as ARGV. Every name is distinct across all six, so that a call can
    name keys and arguments alike. The last entries are read by the script counting from the
    end (``KEYS[#KEYS]``), so that they stay put whatever comes before them."""

    name: str
    keys: tuple[str, ...]
    args: tuple[str, ...] = ()
    more_keys: tuple[str, ...] = ()
    more_args: tuple[str, ...] = ()
    last_keys: tuple[str, ...] = ()
    last_args: tuple[str, ...] = ()
    # Running it twice with the same arguments is the same as once (ingest: deduped by the
    # message's external id): the client sends it again when the answer was lost in a
    # failover (gateway/redis/lane.py).
    idempotent: bool = False

    def __post_init__(self) -> None:
        names = self.names()
        wrong = [n for n in names if not _NAME.match(n)]
        if wrong:
            raise ValueError(f"{self.name}: not snake_case names: {wrong}")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{self.name}: names used twice: {repeated}")

    def names(self) -> list[str]:
        return [
            *self.keys, *self.more_keys, *self.last_keys,
            *self.args, *self.more_args, *self.last_args,
        ]  # fmt: skip


class Header(msgspec.Struct, frozen=True):
    """The KEYS and ARGV entries a script's header declares, in the contract's shape."""

    keys: tuple[str, ...]
    args: tuple[str, ...]
    more_keys: tuple[str, ...]
    more_args: tuple[str, ...]
    last_keys: tuple[str, ...] = ()
    last_args: tuple[str, ...] = ()


def lua_path(package: str, name: str) -> str:
    """The script's file as errors and tests name it."""
    return f"{package}/lua/{name}.lua"


def read_header(source: str) -> Header:
    """The entries of a script's first comment block. Fixed entries are numbered 1, 2, ...;
    the first variadic group starts right after them, and any later one is written
    ``[N+count..]`` after it. A line that starts like an entry but is not one is refused."""
    found: dict[str, tuple[list[str], list[str]]] = {"KEYS": ([], []), "ARGV": ([], [])}
    last: dict[str, list[tuple[int, str]]] = {"KEYS": [], "ARGV": []}
    for line in source.splitlines():
        if not line.startswith("--"):
            break
        if not line.startswith(("-- KEYS[", "-- ARGV[")):
            continue
        counted = _LAST_ENTRY.match(line)
        if counted is not None:
            table, length, back, name = counted.groups()
            if table != length:
                raise ValueError(f"{table}[#{length}] counts the wrong table: {line!r}")
            last[table].append((int(back or 0), name))
            continue
        entry = _ENTRY.match(line)
        if entry is None:
            raise ValueError(f"not a header entry (-- KEYS[n] name: what): {line!r}")
        table, number, after, variadic, name = entry.groups()
        fixed, more = found[table]
        if last[table]:
            raise ValueError(f"{table}[{number}] after the entries counted from the end: {line!r}")
        if variadic is None:
            if more or after or int(number) != len(fixed) + 1:
                raise ValueError(f"{table}[{number}] out of order: {line!r}")
            fixed.append(name)
        else:
            if int(number) != len(fixed) + 1 or bool(after) != bool(more):
                raise ValueError(f"variadic {table}[{number}..] out of place: {line!r}")
            more.append(name)
    for table, entries in last.items():
        backs = [back for back, _ in entries]
        if backs != list(range(len(entries) - 1, -1, -1)):
            raise ValueError(f"{table}[#{table}-n] entries out of order: {backs}")
    (keys, more_keys), (args, more_args) = found["KEYS"], found["ARGV"]
    return Header(
        tuple(keys),
        tuple(args),
        tuple(more_keys),
        tuple(more_args),
        tuple(name for _, name in last["KEYS"]),
        tuple(name for _, name in last["ARGV"]),
    )


def header_of(contract: LuaContract) -> Header:
    return Header(
        contract.keys,
        contract.args,
        contract.more_keys,
        contract.more_args,
        contract.last_keys,
        contract.last_args,
    )


# Packages whose scripts change agents' status, load or last assignment: presence's
# _index.lua (the agent index) comes first in their prelude, then the package's _common.lua.
_INDEXED = frozenset({"presence", "router"})


def preludes(package: str) -> list[tuple[str, str]]:
    """The files prepended to a package's scripts, in order: (path, text)."""
    parts = []
    if package in _INDEXED:
        parts.append(("presence/lua/_index.lua", files("presence").joinpath("lua", "_index.lua")))
    parts.append((f"{package}/lua/_common.lua", files(package).joinpath("lua", "_common.lua")))
    return [(path, f.read_text("utf-8") + "\n") for path, f in parts if f.is_file()]


def read_lua(package: str, name: str) -> tuple[str, list[tuple[str, int]]]:
    """The text Redis runs for the script, and the prelude files before the script's own
    text with how many lines each takes."""
    parts = preludes(package)
    script = files(package).joinpath("lua", f"{name}.lua").read_text("utf-8")
    return "".join(t for _, t in parts) + script, [(p, t.count("\n")) for p, t in parts]


def script_names(package: str) -> list[str]:
    """The scripts a package ships: its lua/*.lua files, the prelude left out."""
    folder = files(package).joinpath("lua")
    return sorted(
        entry.name.removesuffix(".lua")
        for entry in folder.iterdir()
        if entry.name.endswith(".lua") and not entry.name.startswith("_")
    )


class LuaScript:
    """redis-py's registered script whose errors name the .lua file and its own line; called
    like the script it wraps."""

    def __init__(
        self, script: Any, package: str, name: str, prelude: list[tuple[str, int]]
    ) -> None:
        self.script, self._package, self._name = script, package, name
        self._prelude = prelude

    async def __call__(self, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        try:
            return await self.script(keys=keys, args=args, client=client)
        except ResponseError as error:
            raise type(error)(self.located(str(error))) from None

    def located(self, message: str) -> str:
        """``message`` with each ``user_script:N`` turned into the file and line it stands for."""

        def place(match: re.Match[str]) -> str:
            line = int(match.group(1))
            for path, lines in self._prelude:
                if line <= lines:
                    return f"{path}:{line}"
                line -= lines
            return f"{lua_path(self._package, self._name)}:{line}"

        return _SCRIPT_LINE.sub(place, message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.script, name)


def _fixed_key(key_builders: Sequence[object], key: str) -> str | None:
    return next((v for b in key_builders if isinstance(v := getattr(b, key, None), str)), None)


class _Layout:
    """One contract laid out for one owner: the KEYS list with its fixed keys filled in, and
    where the names a call gives go."""

    __slots__ = (
        "args", "given", "keys", "last_args", "last_keys", "more_args", "more_keys", "name",
        "slots",
    )  # fmt: skip

    def __init__(
        self,
        contract: LuaContract,
        key_builders: Sequence[object],
        fixed_args: Mapping[str, Any],
    ) -> None:
        self.name = contract.name
        self.keys: list[str] = []
        self.slots: list[tuple[int, str]] = []  # (index in KEYS, name) given per call
        for index, key in enumerate(contract.keys):
            fixed = _fixed_key(key_builders, key)
            self.keys.append(fixed or "")
            if fixed is None:
                self.slots.append((index, key))
        self.args, self.more_keys = contract.args, contract.more_keys
        self.more_args = contract.more_args
        # Last keys and arguments: fixed by the owner, or given per call.
        self.last_keys = [(k, _fixed_key(key_builders, k)) for k in contract.last_keys]
        self.last_args = [(a, fixed_args.get(a)) for a in contract.last_args]
        self.given = frozenset(
            [
                *(key for _, key in self.slots), *self.args, *self.more_keys, *self.more_args,
                *(k for k, v in self.last_keys if v is None),
                *(a for a, v in self.last_args if v is None),
            ]
        )  # fmt: skip

    def lay_out(self, named: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        if named.keys() != self.given:
            raise TypeError(self.misnamed(named))
        keys = self.keys.copy()
        for index, key in self.slots:
            keys[index] = named[key]
        for group in self.more_keys:
            keys.extend(named[group])
        keys.extend(named[k] if v is None else v for k, v in self.last_keys)
        args = [named[arg] for arg in self.args]
        for group in self.more_args:
            args.extend(named[group])
        args.extend(named[a] if v is None else v for a, v in self.last_args)
        return keys, args

    def misnamed(self, named: dict[str, Any]) -> str:
        missing = sorted(self.given - named.keys())
        unknown = sorted(named.keys() - self.given)
        return (
            f"script {self.name}: missing {missing}, unknown {unknown}; it takes "
            f"{sorted(self.given)} (fixed keys come from the key builders)"
        )


class Scripts(dict[str, Any]):
    """An owner's scripts by name (each called ``(keys=, args=, client=)``, so that wrappers
    such as the gateway's timer can replace an entry), and ``run`` to call one by names.
    ``fixed_args``: values of contracts' ``last_args`` the owner fixes (settings every call
    passes alike, such as the event stream's trim)."""

    def __init__(
        self,
        redis: Any,
        package: str,
        contracts: Iterable[LuaContract],
        *key_builders: object,
        fixed_args: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self._layouts: dict[str, _Layout] = {}
        for contract in contracts:
            source, prelude = read_lua(package, contract.name)
            script = redis.register_script(source)
            if contract.idempotent and hasattr(redis, "mark_retry_safe"):
                redis.mark_retry_safe(script.sha)
            self[contract.name] = LuaScript(script, package, contract.name, prelude)
            self._layouts[contract.name] = _Layout(contract, key_builders, fixed_args or {})

    async def run(self, name: str, **named: Any) -> Any:
        """Call script ``name`` with every key the key builders do not fix and every
        argument, by their contract names (variadic groups as lists)."""
        keys, args = self._layouts[name].lay_out(named)
        return await self[name](keys=keys, args=args)
