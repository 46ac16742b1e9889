"""A seeded generator of hostile input: frames of the right shape with wrong values, JSON
of any shape (deep, huge numbers, lone surrogates, control characters), broken JSON and
raw bytes; XML and query strings for WeChat. Seeded, so that a failure is replayed with the
same ``ZHONGTAI_FUZZ_SEED``; ``ZHONGTAI_FUZZ_COUNT`` inputs per entry point (200 in CI)."""

from __future__ import annotations

import json
import os
import random
from typing import Any

# The fuzzed gateway's secrets, shared by its conftest and the tests.
ADMIN_TOKEN = "fuzz-admin"
REVIEW_SECRET = "fuzz-review-secret"

COUNT = int(os.environ.get("ZHONGTAI_FUZZ_COUNT", "200"))
SEED = int(os.environ.get("ZHONGTAI_FUZZ_SEED", "20261207"))

STRINGS = [
    "",
    " ",
    "a",
    "null",
    "\x00",
    "\u202e\u0644\u0639\u0631\u0628\u064a\u0629",
    "😀" * 50,
    "你好，请问",
    "<xml><a>]]></a></xml>",
    "' OR 1=1 --",
    "{tenant}",
    "../../etc/passwd",
    "%s%n%x",
    "\r\n\r\nHTTP/1.1 200 OK",
    "é" * 300,
    "x" * 5000,
]
NUMBERS = [0, -1, 1, 2**31, 2**63, -(2**64), 10**30, 1.5, -0.0, 1e308]


class Fuzz:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def string(self) -> str:
        if self.chance(0.6):
            return self.rng.choice(STRINGS)
        length = self.rng.choice([1, 3, 10, 40, 200])
        return "".join(
            chr(self.rng.choice([self.rng.randrange(32, 127), self.rng.randrange(0x80, 0x2FFF)]))
            for _ in range(length)
        )

    def header(self) -> str:
        """A fuzz string a client can send as a header value (no control characters; the
        client refuses those before they reach the gateway)."""
        return "".join(c for c in self.string() if " " <= c <= "~" or c >= "\x80")[:200]

    def scalar(self) -> Any:
        kind = self.rng.randrange(5)
        if kind == 0:
            return self.rng.choice([None, True, False])
        if kind == 1:
            return self.rng.choice(NUMBERS)
        return self.string()

    def value(self, depth: int = 0) -> Any:
        if depth > 3 or self.chance(0.6):
            return self.scalar()
        if self.chance(0.5):
            return [self.value(depth + 1) for _ in range(self.rng.randrange(4))]
        return {self.string()[:20]: self.value(depth + 1) for _ in range(self.rng.randrange(4))}

    def frame(
        self, shapes: dict[str, list[str]], plausible: dict[str, list[Any]]
    ) -> dict[str, Any]:
        """A frame of a known type (or not), its fields plausible or not, sometimes extra."""
        frame: dict[str, Any] = {}
        kind = self.rng.choice([*shapes, *shapes, None])
        if kind is not None:
            frame["type"] = kind
        elif self.chance(0.5):
            frame["type"] = self.value()
        fields = shapes.get(kind or "", [])
        if fields and self.chance(0.35):  # a good frame with one field wrong, or none
            for name in fields:
                if name in plausible:
                    frame[name] = self.rng.choice(plausible[name])
            if self.chance(0.7):
                frame[self.rng.choice(fields)] = self.value()
            return frame
        for name in fields:
            if self.chance(0.15):
                continue  # a required field left out
            if name in plausible and self.chance(0.5):
                frame[name] = self.rng.choice(plausible[name])
            else:
                frame[name] = self.value()
        if self.chance(0.2):
            frame[self.string()[:20]] = self.value()
        return frame

    def mangle(self, text: str) -> str | bytes:
        """The JSON text as is, or broken: cut, spliced, nested deep, or bytes."""
        kind = self.rng.randrange(10)
        if kind <= 4:
            return text
        if kind == 5 and text:
            return text[: self.rng.randrange(len(text))]
        if kind == 6:
            at = self.rng.randrange(len(text) + 1)
            return text[:at] + self.rng.choice(["\\", '"', "}", "\\ud800", "\x00", ","]) + text[at:]
        if kind == 7:
            depth = self.rng.choice([65, 500, 3000])
            return (
                "[" * depth + "]" * depth
                if self.chance(0.5)
                else '{"a":' * depth + "1" + "}" * depth
            )
        if kind == 8:
            return self.rng.randbytes(self.rng.randrange(1, 300))
        return self.rng.choice(["", "null", "[]", "1e999999", '"\\ud800"', "NaN", "{" * 10])

    def json_text(self, obj: Any) -> str | bytes:
        return self.mangle(json.dumps(obj, ensure_ascii=self.chance(0.5)))
