from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moderation.normalize import fold, normalize

KNOWN = frozenset({"fuck", "ass", "stupid", "good", "shit"})


@pytest.mark.parametrize(
    ("disguised", "plain"),
    [
        ("f4ck you", "fuck you"),
        ("f u c k  y o u", "fuck you"),
        ("f.u.c.k you", "fuck you"),
        ("F*U*C*K OFF", "fuck off"),
        ("fuuuuck you", "fuck you"),
        ("stuuuupid", "stupid"),
        ("assss", "ass"),
        ("goooood", "good"),
        ("sh1t", "shit"),
        ("a$$hole", "asshole"),
        ("b!tch please", "bitch please"),
        ("go f*ck yourself", "go fuck yourself"),
        ("fck off", "fuck off"),
        ("phuck u", "fuck you"),
        ("you're a f-ing joke", "you're a fucking joke"),
        ("you m0th3rf*ck3r", "you motherfucker"),
        ("you are a c-u-n-t", "you are a cunt"),
        ("k y s", "kill yourself"),
        ("1'm g0nna hurt y0u", "i'm gonna hurt you"),
        ("ʏᴏᴜ ᴀʀᴇ ᴀɴ ɪᴅɪᴏᴛ", "you are an idiot"),  # noqa: RUF001
        ("fսck you", "fuck you"),  # noqa: RUF001
        ("Ｆｕｃｋ", "fuck"),  # noqa: RUF001
        ("іԁіот", "idiot"),
    ],
)
def test_disguises_are_undone(disguised: str, plain: str) -> None:
    assert normalize(disguised, KNOWN) == plain


@pytest.mark.parametrize(
    "clinical",
    [
        "give 2.5 ml twice a day, 5 mg at night. stop!",
        "he weighs 12.4 kg now",
        "our shih tzu and my shitzu",
        "a fake folk fork",
        "plan a, b or c",
    ],
)
def test_ordinary_text_is_left_alone(clinical: str) -> None:
    assert normalize(clinical, KNOWN) == clinical


def test_fold_strips_accents_and_case() -> None:
    assert fold("Café RÉSUMÉ\u2019s") == "cafe resume's"


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_normalize_is_total_and_lower_case(text: str) -> None:
    normalized = normalize(text, KNOWN)
    assert normalized == normalized.lower() or not normalized.isascii()
