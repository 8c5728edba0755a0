"""`normalize` skips a pass when the text lacks what the pass's pattern needs; skipping must
never change the result. Checked against every pass run unguarded, on the whole corpus and on
generated text rich in the characters the patterns look for."""

from __future__ import annotations

import json
from collections.abc import Container

from hypothesis import given, settings
from hypothesis import strategies as st

from moderation import normalize as module
from moderation.corpus import CORPUS_DIR

KNOWN = frozenset({"fuck", "ass", "good", "shit", "stupid"})


def every_pass(text: str, known_words: Container[str]) -> str:
    """`normalize` with no pass skipped."""
    text = module.fold(text)
    text = module._SPACED_LETTERS.sub(lambda match: module._SEPARATORS.sub("", match.group()), text)
    text = module._WHITESPACE.sub(" ", text)
    text = module._LEET_TOKEN.sub(module._unleet, text)
    text = module._ELONGATED.sub(lambda match: module._squeeze(match.group(), known_words), text)
    for pattern, replace, _ in module._OBSCENITIES:
        text = pattern.sub(replace, text)
    return text


def test_the_corpus_normalizes_as_with_every_pass() -> None:
    texts = [
        json.loads(line)["text"]
        for path in sorted(CORPUS_DIR.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert len(texts) > 3000
    for text in texts:
        for known in (frozenset(), KNOWN):
            assert module.normalize(text, known) == every_pass(text, known), text


# Letters, separators, leet characters, whitespace of several kinds, and the obscenities'
# fragments, so generated text often meets each pattern.
PIECES = st.sampled_from(
    [*"abcdefhiklnorstuy", *" .*_+-", *"0134578@$!", "\t", "\n", "\u00a0", "\u3000", "  ",
     "fuck", "f*ck", "fck", "phuck", "fuq", "f-ing", "effin", "sh1t", "sh*t", "c*nt", "cunt",
     "b!tch", "a$$hole", "d1ck", "stfu", "gtfo", "kys", " u ", " ur ", "fuuuuck",
     "\u028f\u1d0f\u1d1c", "\uff26"]
)  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(PIECES, max_size=30).map("".join))
def test_generated_text_normalizes_as_with_every_pass(text: str) -> None:
    for known in (frozenset(), KNOWN):
        assert module.normalize(text, known) == every_pass(text, known)
