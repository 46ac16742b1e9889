"""The base of every core table's Struct: an unknown key is an error (a misspelt key would
otherwise silently keep its default) and fields are given by name, as TOML gives them."""

from __future__ import annotations

import msgspec


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass
