from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moderation.pii import PiiKind, find_card_numbers, find_pii, luhn_valid, mask_card_numbers


def _with_check_digit(body: str) -> str:
    return next(body + digit for digit in "0123456789" if luhn_valid(body + digit))


card_numbers = st.builds(
    lambda prefix, rest, length: _with_check_digit((prefix + rest)[: length - 1]),
    st.sampled_from(["4", "51", "55", "34", "37", "6011", "3528"]),
    st.text(alphabet="0123456789", min_size=20, max_size=20),
    st.integers(min_value=13, max_value=19),
)
separators = st.sampled_from(["", " ", "-"])
words = st.text(alphabet="abcdefghij ", max_size=20)


def _written(number: str, separator: str) -> str:
    return separator.join(number[i : i + 4] for i in range(0, len(number), 4))


@given(card_numbers, separators, words, words)
def test_cards_are_masked_but_the_last_four(
    number: str, separator: str, before: str, after: str
) -> None:
    written = _written(number, separator)
    text = f"{before} {written} {after}"
    masked = mask_card_numbers(text)
    assert re.sub(r"\D", "", masked) == number[-4:]
    assert re.sub(r"\d", "*", masked) == re.sub(r"\d", "*", text)  # separators and words kept
    assert find_card_numbers(masked) == []
    assert PiiKind.CARD in find_pii(masked)  # a masked card still reads as one
    assert mask_card_numbers(masked) == masked


@given(card_numbers)
def test_a_wrong_check_digit_is_not_a_card(number: str) -> None:
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert mask_card_numbers(wrong) == wrong
    assert PiiKind.CARD not in find_pii(wrong)


@given(st.text(alphabet=st.characters(exclude_categories=["Nd"]), max_size=60))
def test_text_without_digits_is_unchanged(text: str) -> None:
    assert mask_card_numbers(text) == text


def test_known_test_cards() -> None:
    assert mask_card_numbers("use 4111 1111 1111 1111 exp 09/27") == (
        "use **** **** **** 1111 exp 09/27"
    )
    assert mask_card_numbers("amex 378282246310005.") == "amex ***********0005."
    assert mask_card_numbers("mc 5555-5555-5555-4444") == "mc ****-****-****-4444"


def test_microchip_numbers_are_not_cards() -> None:
    # 15-digit ISO pet microchips (country or maker code first) pass Luhn one time in ten.
    chips = [str(n) for n in range(985141000123450, 985141000123460)]
    assert any(luhn_valid(chip) for chip in chips)
    assert all(mask_card_numbers(chip) == chip and not find_pii(chip) for chip in chips)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Call me on 07700 900123", PiiKind.PHONE),
        ("+44 7700 900456", PiiKind.PHONE),
        ("(555) 201-3344 after 6", PiiKind.PHONE),
        ("WhatsApp +33 6 12 34 56 78", PiiKind.PHONE),
        ("sarah.jones@example.com", PiiKind.EMAIL),
        ("jane dot doe at gmail dot com", PiiKind.EMAIL),
        ("jane.doe at gmail dot com", PiiKind.EMAIL),
    ],
)
def test_contacts_are_found(text: str, kind: PiiKind) -> None:
    assert kind in find_pii(text)


@pytest.mark.parametrize(
    "text",
    [
        "Give 2.5 ml twice a day for 7 days",
        "He weighs 12.4 kg, up from 11.8",
        "born on 12/03/2019",
        "invoice says £145.50, order 100234",
        "policy PX-4471-2290 at 10:30",
        "meet at the clinic at noon",
    ],
)
def test_clinical_numbers_are_not_pii(text: str) -> None:
    assert find_pii(text) == set()
