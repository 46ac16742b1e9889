"""How the multiplexed connection (gateway/redis/lane.py) packs commands and reads answers the
way redis-py would, kept apart so that the lane, its pipelines and the cluster's redirections
(gateway/redis/cluster.py) share one set of rules."""

from __future__ import annotations

from typing import Any

from redis.exceptions import BusyLoadingError, DataError, ResponseError

try:  # the `fast` extra: hiredis packs a command in C, redis-py's asyncio client in Python
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - hiredis is optional
    _hiredis_pack = None

# redis-py's option names for "answer this when the command fails" and "don't decode".
EMPTY_RESPONSE = "EMPTY_RESPONSE"
NEVER_DECODE = "NEVER_DECODE"

HAS_HIREDIS = _hiredis_pack is not None


def pack_with_hiredis(args: tuple[Any, ...]) -> list[bytes]:
    """redis-py's packing rules (a command name such as "SCRIPT LOAD" is two words; None
    and bools are refused) done by hiredis."""
    name = args[0]
    if isinstance(name, str):
        if " " in name:
            args = (*name.split(), *args[1:])
    elif b" " in name:
        args = (*name.split(), *args[1:])
    try:
        return [_hiredis_pack(args)]  # type: ignore[misc]
    except TypeError as exc:
        raise DataError(f"Invalid input in command {args[0]!r}: {exc}") from None


class Loading(ResponseError, BusyLoadingError):
    """LOADING: Redis is loading its data after a restart and refused the command. An answer
    on a healthy connection, so the lane keeps the connection (dropping it for each answer
    warned once per message) and fails that command alone; callers still see a
    BusyLoadingError, which they answer as retryable."""


def parsed(callbacks: Any, command_name: Any, answer: Any, options: dict[str, Any]) -> Any:
    """redis-py's response callback for the command, applied to its raw answer (after the
    options that only steer how a response is read are taken out)."""
    options.pop(EMPTY_RESPONSE, None)
    options.pop(NEVER_DECODE, None)
    options.pop("keys", None)
    callback = callbacks.get(command_name)
    return answer if callback is None else callback(answer, **options)
