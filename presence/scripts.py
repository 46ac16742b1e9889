"""Loading a package's Lua scripts: each ``lua/NAME.lua`` file, with ``lua/_common.lua``
prepended when the package has one, registered once (EVALSHA, reloaded after NOSCRIPT)."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from redis.commands.core import AsyncScript


def read_lua(package: str, name: str) -> str:
    folder = files(package).joinpath("lua")
    common = folder.joinpath("_common.lua")
    prelude = common.read_text("utf-8") + "\n" if common.is_file() else ""
    return prelude + folder.joinpath(f"{name}.lua").read_text("utf-8")


def register_scripts(redis: Any, package: str, names: list[str]) -> dict[str, AsyncScript]:
    return {name: redis.register_script(read_lua(package, name)) for name in names}
