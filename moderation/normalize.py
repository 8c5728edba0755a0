"""Undo the usual disguises of abuse so that a word-level model sees the plain words.

`normalize` folds case, accents and look-alike letters, joins spaced-out letters
("f u c k", "f.u.c.k"), reads leetspeak inside words ("f4ck", "b!tch"), squeezes elongated
words ("fuuuuck") and restores masked or misspelt obscenities ("f*ck", "fck", "phuck").
Digits that stand alone ("5 mg", "12.4 kg") are left as they are.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Container

# Letters that render like Latin ones but that NFKD leaves alone: Cyrillic, Greek, Armenian,
# small capitals, and typographic apostrophes.
_CONFUSABLES = str.maketrans(
    {
        **dict(zip("авекмнорстухіјѕԁһүԝ", "abekmhopctyxijsdhyw", strict=True)),
        **dict(zip("αβεικνορτυχω", "abeikvoptuxw", strict=True)),
        **dict(zip("սօոհց", "uonhg", strict=True)),  # noqa: RUF001 (look-alikes on purpose)
        **dict(zip("ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢı", "abcdefghijklmnoprstuvwyzi", strict=True)),
        "\u2019": "'",
        "\u2018": "'",
        "\u02bc": "'",
    }
)

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b"})
_LEET.update(str.maketrans({"@": "a", "$": "s", "!": "i"}))

# Three or more single characters each followed by a separator: "f u c k", "f.u.c.k", "k-y-s".
# One separator throughout, so "a c-u-n-t" joins "c-u-n-t" and leaves the article alone.
_SPACED_LETTERS = re.compile(
    r"(?<![\w@$'])[a-z0-9@$]([ .*_+-])[a-z0-9@$](?![\w@$'])(?:\1[a-z0-9@$](?![\w@$'])){1,}"
)
_SEPARATORS = re.compile(r"[ .*_+-]")
_WHITESPACE = re.compile(r"\s{2,}")
# A token where a letter touches a leet character: "f4ck", "@ss", "sh!t", "1'm".
_LEET_TOKEN = re.compile(
    r"(?<![\w@$!'*])[\w@$!'*]*?(?:[a-z'][0134578@$!]|[0134578@$!][a-z'])[\w@$!'*]*"
)
_LEET_CHARS = frozenset("0134578@$!")
_ELONGATED = re.compile(r"(?<![a-z])[a-z]*([a-z])\1\1[a-z]*")
_RUN_OF_THREE = re.compile(r"([a-z])\1{2,}")

_FUCK_SUFFIXES = {"you": " you", "u": " you", "off": " off"}


def _fuck(match: re.Match[str]) -> str:
    prefix, suffix = match.group("prefix") or "", match.group("suffix") or ""
    return prefix + "fuck" + _FUCK_SUFFIXES.get(suffix, suffix)


def _canonical(word: str) -> Callable[[re.Match[str]], str]:
    return lambda match: word + (match.group("suffix") or "")


# Each pattern with the substrings one of which any match contains: a text holding none of them
# skips the pattern's pass (most messages hold no obscenity; each pass costs a scan).
_OBSCENITIES: tuple[
    tuple[re.Pattern[str], Callable[[re.Match[str]], str], tuple[str, ...]], ...
] = (
    (
        re.compile(
            r"\b(?P<prefix>mother)?(?:f[uvoa*#]*c*k+|ph+u+c*k+|fcuk|fuq)"
            r"(?P<suffix>ing|in|er|ers|ed|s|face|wit|tard|head|you|u|off)?(?![\w*])"
        ),
        _fuck,
        ("k", "fuq"),
    ),
    (re.compile(r"\b(?:f[-*]|eff)(?:ing|in)\b"), lambda _: "fucking", ("f-", "f*", "eff")),
    (
        re.compile(r"\bsh(?:[iy*]+t|\*+)(?P<suffix>s|ty|head|hole|ting|ter|e)?(?![\w*])"),
        _canonical("shit"),
        ("sh",),
    ),
    (re.compile(r"\bc[u*]+n+t(?P<suffix>s)?(?![\w*])"), _canonical("cunt"), ("cu", "c*")),
    (re.compile(r"\bb[i*]+t*ch(?P<suffix>es|y|ing)?(?![\w*])"), _canonical("bitch"), ("ch",)),
    (
        re.compile(r"\ba[s*]{2,}h[o*]le(?P<suffix>s)?(?![\w*])"),
        _canonical("asshole"),
        ("le",),
    ),
    (re.compile(r"\bd[i*]ck(?P<suffix>head|heads|s)?(?![\w*])"), _canonical("dick"), ("ck",)),
    (re.compile(r"\bstfu\b"), lambda _: "shut the fuck up", ("stfu",)),
    (re.compile(r"\bgtfo\b"), lambda _: "get the fuck out", ("gtfo",)),
    (re.compile(r"\bkys\b"), lambda _: "kill yourself", ("kys",)),
    (re.compile(r"\bu(?P<r>r?)\b"), lambda match: "your" if match.group("r") else "you", ("u",)),
)


def fold(text: str) -> str:
    """Lower case, without accents, with look-alike letters replaced by Latin ones."""
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(char for char in decomposed if not unicodedata.combining(char))
    return text.lower().translate(_CONFUSABLES)


def _unleet(match: re.Match[str]) -> str:
    token = match.group()
    core = token.rstrip("!")  # "stop!" is punctuation, "sh!t" is a letter
    return core.translate(_LEET) + token[len(core) :]


def _squeeze(word: str, known_words: Container[str]) -> str:
    """ "assss" -> "ass", "fuuuuck" -> "fuck": keep a double letter only when that is a word."""
    doubled = _RUN_OF_THREE.sub(r"\1\1", word)
    return doubled if doubled in known_words else _RUN_OF_THREE.sub(r"\1", word)


def normalize(text: str, known_words: Container[str] = frozenset()) -> str:
    """The text as a word model should read it; `known_words` guides squeezing repeats.

    Each pass runs only when the text holds what its pattern needs (the send path screens
    every message, so the passes that cannot match are skipped)."""
    text = fold(text)
    text = _SPACED_LETTERS.sub(lambda match: _SEPARATORS.sub("", match.group()), text)
    if "  " in text or not text.isprintable():  # \s{2,} needs two spaces or other whitespace
        text = _WHITESPACE.sub(" ", text)  # "f u c k  y o u" joins into two words
    if not _LEET_CHARS.isdisjoint(text):
        text = _LEET_TOKEN.sub(_unleet, text)
    if _RUN_OF_THREE.search(text):
        text = _ELONGATED.sub(lambda match: _squeeze(match.group(), known_words), text)
    for pattern, replace, needs in _OBSCENITIES:
        if any(needle in text for needle in needs):
            text = pattern.sub(replace, text)
    return text
