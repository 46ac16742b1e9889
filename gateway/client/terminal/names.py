"""How a person names conversations: by a short tail of their id, or any unique part of it.

Ids are long (router/ids.py) and nobody types them whole; the terminal shows the shortest
tail that is unique among the conversations on screen and takes any unique part back.
"""

from __future__ import annotations

from collections.abc import Iterable

MIN_SHORT_ID = 4


def short_id(full: str, others: Iterable[str], min_len: int = MIN_SHORT_ID) -> str:
    """The shortest tail of `full`, at least `min_len` long, that no other id contains.

    Tails, because ids start with their creation time (router/ids.py): the heads of ids made
    the same hour are alike, the tails random.
    """
    rivals = [o for o in others if o != full]
    n = min(min_len, len(full))
    while n < len(full) and any(full[-n:] in o for o in rivals):
        n += 1
    return full[-n:]


def matching(token: str, ids: Iterable[str]) -> list[str]:
    """Ids that `token` names: itself when it is one, else those containing it (so the short
    tail shown works, and so does any other unique part, a head included)."""
    ids = list(dict.fromkeys(ids))
    if token in ids:
        return [token]
    return [i for i in ids if token and token in i]


def is_end_of(token: str, full: str) -> bool:
    """Whether `token` is a head or tail of `full` long enough to be meant as an id."""
    return len(token) >= MIN_SHORT_ID and (full.startswith(token) or full.endswith(token))
