"""Personal data in chat: emails and phone numbers (a `pii` label), payment cards (masked).

Card numbers are 13-19 digits that pass the Luhn check and start like an issued card (2-6).
The issuer check matters in a vet chat: pet microchip numbers are 15 digits starting with a
country or maker code such as 250, 826 or 985, and one in ten of them passes Luhn.
"""

from __future__ import annotations

import re
from enum import StrEnum


class PiiKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CARD = "card"


# Matches start only where a word starts: a long word then costs linear, not quadratic, time.
_EMAIL = re.compile(
    r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|(?<![\w.+-])[\w.+-]+\s+(?:at|\(at\)|\[at\])\s+[\w-]+\s+(?:dot|\(dot\)|\[dot\])\s+[a-z]{2,6}\b",
    re.IGNORECASE,
)
# Runs of digits joined by single spaces, dots or dashes, optionally +country and (area).
# Possessive runs and no look-ahead keep it linear: a digit run is read once, never split
# every possible way (the old `\d{1,5}(?:[ .-]?\d{1,5}){1,5}(?!\w)` took 0.3 s on 4 KB).
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d++(?:[ .-]\d++)*+")
_PHONE_DIGITS = range(9, 14)  # longer runs are cards, microchips or references
_CARD = re.compile(r"(?<![\d*])\d(?:[ -]?\d){12,18}(?![\d*])")
_MASKED_CARD = re.compile(r"(?:\*[ -]?){9,15}(?:\d[ -]?){3}\d\b")
_KEPT_DIGITS = 4


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of digits."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _is_card_number(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_valid(digits)


def _digits(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


def find_card_numbers(text: str) -> list[str]:
    """The payment card numbers written in `text`, as written."""
    return [
        match.group() for match in _CARD.finditer(text) if _is_card_number(_digits(match.group()))
    ]


def _mask(match: re.Match[str]) -> str:
    written = match.group()
    if not _is_card_number(_digits(written)):
        return written
    hidden = len(_digits(written)) - _KEPT_DIGITS
    masked: list[str] = []
    for char in written:
        if char.isdigit() and hidden > 0:
            masked.append("*")
            hidden -= 1
        else:
            masked.append(char)
    return "".join(masked)


def mask_card_numbers(text: str) -> str:
    """`text` with every card number masked but its last four digits, separators kept."""
    return _CARD.sub(_mask, text)


def find_pii(text: str) -> set[PiiKind]:
    """The kinds of personal data in `text` (masked card numbers still count as cards)."""
    kinds: set[PiiKind] = set()
    maybe_email = "@" in text or " at " in text.lower() or "(at)" in text or "[at]" in text
    if maybe_email and _EMAIL.search(text):
        kinds.add(PiiKind.EMAIL)
    if find_card_numbers(text) or _MASKED_CARD.search(text):
        kinds.add(PiiKind.CARD)
    if any(_is_phone_number(text, match) for match in _PHONE.finditer(text)):
        kinds.add(PiiKind.PHONE)
    return kinds


def _is_phone_number(text: str, match: re.Match[str]) -> bool:
    """A phone-shaped run of digits that ends a word ("0770 090 0123x" is a reference)."""
    end = match.end()
    if end < len(text) and (text[end].isalnum() or text[end] == "_"):
        return False
    return len(_digits(match.group())) in _PHONE_DIGITS
