"""The abuse rules run as one RE2 set; Python's `re`, the engine they were written for, is the
reference. Both read the same pattern sources and must agree on which rule sets match: on every
message of the corpus and the eval sets, and on random text made of the rules' own words,
punctuation and whitespace (which is where the engines' differences would show: anchors, word
boundaries, the lookahead RE2 lacks)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from moderation.abuse_rules import RULE_PATTERNS, abuse_scores, matching_rules
from moderation.labels import Label
from moderation.normalize import normalize

ROOT = Path(__file__).resolve().parents[2]
MESSAGE_FILES = [
    *sorted((ROOT / "moderation" / "corpus").glob("*.jsonl")),
    *sorted((ROOT / "moderation" / "eval").glob("*.jsonl")),
]
REFERENCE = {label: re.compile(source) for label, source in RULE_PATTERNS.items()}
RULE_WORDS = sorted(
    {word for source in RULE_PATTERNS.values() for word in re.findall(r"[a-z']+", source)}
)


def _by_python_re(text: str) -> set[str]:
    return {label for label, pattern in REFERENCE.items() if pattern.search(text)}


def test_both_engines_agree_on_every_message_of_the_corpus() -> None:
    texts = [
        normalize(json.loads(line)["text"])
        for path in MESSAGE_FILES
        for line in path.read_text().splitlines()
    ]
    assert len(texts) > 3_000
    disagreements = [
        (text, matching_rules(text), _by_python_re(text))
        for text in texts
        if matching_rules(text) != _by_python_re(text)
    ]
    assert disagreements == []
    assert sum(bool(matching_rules(text)) for text in texts) > 1_000  # the rules do match


_SEPARATORS = st.sampled_from([" ", " ", " ", "", ", ", ". ", "! ", "\n", "  ", "?"])
_PIECES = st.tuples(st.sampled_from([*RULE_WORDS, "x", "dr", "from", "123"]), _SEPARATORS)


@settings(max_examples=600, deadline=None)
@given(st.lists(_PIECES, max_size=40))
@example([("i'll", " "), ("find", " "), ("you", "\n")])  # Python's $ also matches before a final \n
def test_both_engines_agree_on_random_text_of_the_rules_words(
    pieces: list[tuple[str, str]],
) -> None:
    text = "".join(word + separator for word, separator in pieces)
    assert matching_rules(text) == _by_python_re(text)


def test_a_lookahead_the_engine_lacks_is_spelt_out() -> None:
    assert matching_rules("show me your lips") == {Label.SEXUAL}
    assert matching_rules("your lips!") == {Label.SEXUAL}
    assert matching_rules("you don't know your ass from your elbow") == set()


def test_sexual_content_raises_harassment_and_callers_get_only_what_they_ask() -> None:
    assert abuse_scores("what are you wearing") == {
        Label.INSULT: 0.0,
        Label.THREAT: 0.0,
        Label.HARASSMENT: 0.9,
        Label.SEXUAL: 0.9,
    }
    assert abuse_scores("i will find you and hurt you", (Label.THREAT,)) == {Label.THREAT: 0.9}
