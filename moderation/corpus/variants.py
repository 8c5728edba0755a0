"""A composed line as other people type it: `vary` (case, greeting, sign-off, text speak, a
typo) for any line, `disguise` (asterisks, dots, spacing, leetspeak, look-alike letters) for
abusive ones, as people type them to slip past a filter. Both draw only on the `rng` given, so
the same seed always gives the same line."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

# Disguises of one word of an abusive line.
_HOMOGLYPHS = str.maketrans({"a": "а", "e": "е", "o": "о", "c": "с", "p": "р", "i": "і"})  # noqa: RUF001
_LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"})


def _asterisk(word: str, rng: random.Random) -> str:
    vowels = [index for index, char in enumerate(word) if char in "aeiou"]
    if not vowels:
        return word[0] + "*" * (len(word) - 1)
    index = rng.choice(vowels)
    return word[:index] + "*" + word[index + 1 :]


DISGUISES: dict[str, Callable[[str, random.Random], str]] = {
    "asterisk": _asterisk,
    "dots": lambda word, _rng: ".".join(word),
    "spacing": lambda word, _rng: " ".join(word),
    "leet": lambda word, _rng: word.translate(_LEET),
    "homoglyph": lambda word, _rng: word.translate(_HOMOGLYPHS),
    "elongate": lambda word, _rng: word[:-1] + word[-1] * 4,
}
# Words worth disguising, most telling first; else the longest word is disguised.
_TELLING = re.compile(
    r"\b(?:fuck\w*|shit\w*|cunt|bitch|twat|bastard|kill|murder|stab|hurt|burn|shoot|die|dead"
    r"|idiot|moron|quack|fraud|useless|stupid|pathetic|incompetent|tits|sexy|naked|address"
    r"|whore|slut|scum|retard\w*)\b",
    re.IGNORECASE,
)


def disguise(text: str, rng: random.Random) -> str:
    """`text` with one or two of its telling words disguised."""
    words = _TELLING.findall(text) or [max(re.findall(r"[A-Za-z]+", text), key=len)]
    for word in rng.sample(words, min(len(words), rng.choice((1, 2)))):
        name = rng.choice(sorted(DISGUISES))
        text = text.replace(word, DISGUISES[name](word, rng), 1)
    return text


_PREFIXES = ("", "", "Hi, ", "Hello. ", "Ok so ", "Right, ", "Honestly ", "Sorry but ", "Look, ")
_SUFFIXES = ("", "", " Thanks.", " x", "!!", " ...", " ??", " Cheers.")
_TEXTSPEAK = (
    (re.compile(r"\byou\b"), "u"),
    (re.compile(r"\byour\b"), "ur"),
    (re.compile(r"\bi'll\b", re.IGNORECASE), "ill"),
    (re.compile(r"\bdon't\b"), "dont"),
    (re.compile(r"\bbecause\b"), "cos"),
)


def vary(text: str, rng: random.Random) -> str:
    """`text` as typed by someone else: case, greeting, sign-off, text speak or a typo."""
    if rng.random() < 0.4:
        text = text.lower()
    if rng.random() < 0.3:
        for pattern, short in _TEXTSPEAK:
            text = pattern.sub(short, text)
    if rng.random() < 0.4:
        words = text.split(" ")
        long_words = [index for index, word in enumerate(words) if len(word) > 4 and word.isalpha()]
        if long_words:
            index = rng.choice(long_words)
            word = words[index]
            at = rng.randrange(1, len(word) - 2)
            words[index] = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
            text = " ".join(words)
    prefix = rng.choice(_PREFIXES)
    if prefix:
        text = prefix + text[0].lower() + text[1:]
    return text.rstrip(".") + rng.choice(_SUFFIXES) if rng.random() < 0.5 else text
