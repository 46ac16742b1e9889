"""Finding adapter classes: entry points in the group ``zhongtai.adapters``.

An adapter package declares, in its pyproject.toml::

    [project.entry-points."zhongtai.adapters"]
    sms = "zhongtai_sms:SmsAdapter"

The entry point's name is the channel name and the config table (``[sms]``); it must equal
the class's ``name``. Only adapters that are configured get imported, so a broken or heavy
package that nobody configured never costs anything.

Tests and embedders can pass ``extra``, a mapping of name to class, which is looked at before
the entry points; nothing here keeps state between calls.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
from collections.abc import Iterable, Mapping

import msgspec

from adapters.contract import Adapter

GROUP = "zhongtai.adapters"

log = logging.getLogger("zhongtai.adapters")

Extra = Mapping[str, type[Adapter]]


class AdapterLoadError(Exception):
    """An adapter's entry point could not be turned into a usable Adapter class."""


def available(group: str = GROUP) -> dict[str, importlib.metadata.EntryPoint]:
    """The installed adapters by name, without importing any of them."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=group):
        first = found.setdefault(ep.name, ep)
        if first.value != ep.value:
            # Two packages claim one channel name; the first one installed wins.
            log.warning("adapter %r: using %s, ignoring %s", ep.name, first.value, ep.value)
    return found


def names(extra: Extra | None = None, group: str = GROUP) -> list[str]:
    """Every adapter name that load() would accept, sorted."""
    return sorted({*available(group), *(extra or {})})


def load(name: str, *, extra: Extra | None = None, group: str = GROUP) -> type[Adapter]:
    """Import the one adapter called name and check what it is."""
    if extra and name in extra:
        return _check(name, extra[name], f"extra[{name!r}]")
    ep = available(group).get(name)
    if ep is None:
        known = ", ".join(names(extra, group)) or "none"
        raise AdapterLoadError(f"no adapter named {name!r}; installed: {known}")
    where = f"entry point {ep.name} = {ep.value!r} (group {group})"
    try:
        obj = ep.load()
    except Exception as exc:
        raise AdapterLoadError(f"{where} failed to import: {exc!r}") from exc
    return _check(name, obj, where)


def config_types(
    table_names: Iterable[str], *, extra: Extra | None = None, group: str = GROUP
) -> dict[str, type[msgspec.Struct]]:
    """Config Structs for the given names, loading only those adapters.

    Names that match no adapter are left out rather than refused, so that the config parser
    can report an unknown table with its file and location.
    """
    installed = available(group)
    found: dict[str, type[msgspec.Struct]] = {}
    for name in table_names:
        if name in found or not ((extra and name in extra) or name in installed):
            continue
        found[name] = load(name, extra=extra, group=group).Config
    return found


def _check(name: str, obj: object, where: str) -> type[Adapter]:
    if not (isinstance(obj, type) and issubclass(obj, Adapter)):
        raise AdapterLoadError(f"{where} is {obj!r}, not a subclass of adapters.contract.Adapter")
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(obj.__abstractmethods__))
        raise AdapterLoadError(f"{where} is abstract; it does not implement {missing}")
    declared = getattr(obj, "name", None)
    if declared != name:
        raise AdapterLoadError(f"{where}: class name attribute is {declared!r}, expected {name!r}")
    config = getattr(obj, "Config", None)
    if not (isinstance(config, type) and issubclass(config, msgspec.Struct)):
        raise AdapterLoadError(f"{where}: Config is {config!r}, not a msgspec.Struct subclass")
    return obj
