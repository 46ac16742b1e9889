"""Credentials out of everything the gateway prints: one function, :func:`mask_credentials`,
for every error message, log line (gateway/logs.py applies it to each formatted line) and
/readyz answer that may hold a URL.

A Redis URL carries its password (``redis://:PASSWORD@host``, ``redis://user:pw@host``,
``rediss://...``, ``unix://:pw@/path``, or ``?password=`` in the query); start-up errors and
readiness problems name the URL to say which server, and must not hand the password to
whoever reads the logs or scrapes the admin port.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://userinfo@ — the userinfo runs to the last "@" before the path, so a password
# with a raw "@" in it (which redis-py accepts) is masked whole.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s?#]*)@")
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&](?:password|pass|pwd|secret|token|access_token)=)[^&\s#]*", re.I
)


def _userinfo(match: re.Match[str]) -> str:
    user, colon, _ = match["userinfo"].partition(":")
    # "user:password" keeps the user; a userinfo without a colon may be a bare password
    # (older clients took redis://PASSWORD@host), so it is masked whole.
    kept = f"{user}:{MASK}" if colon else MASK
    return f"{match['scheme']}{kept}@"


def mask_credentials(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``; the scheme, user,
    host, port and path stay, so the message still says which server it is about."""
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(_userinfo, text)
    return _QUERY_SECRET.sub(lambda m: m["key"] + MASK, text)
