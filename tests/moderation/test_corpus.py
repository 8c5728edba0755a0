"""The corpus: large enough, labelled by its categories, train and dev reproducible from the
templates, and a test split written apart from them (no near copies, no shared template)."""

from __future__ import annotations

import difflib
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from moderation.corpus import CORPUS_DIR
from moderation.corpus.categories import (
    ABUSIVE_CATEGORIES,
    BENIGN_CATEGORIES,
    CATEGORY_LABELS,
    OBFUSCATED,
    THREAT_CATEGORIES,
)
from moderation.corpus.compose import write_splits
from moderation.corpus.templates import read_templates
from moderation.normalize import normalize

SPLITS = ("train", "dev", "test")
NEAR_COPY = 0.85  # difflib similarity of two normalised messages
SPECIES = (
    "dog", "cat", "horse", "cow", "goat", "sheep", "ewe", "pig", "hen", "parrot", "snake",
    "tortoise", "rabbit", "hamster", "guinea pig", "ferret", "gecko", "alpaca",
)  # fmt: skip


def _rows(split: str, corpus: Path = CORPUS_DIR) -> list[dict[str, object]]:
    lines = (corpus / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _plain(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", normalize(text)).strip()


def test_the_corpus_has_at_least_3000_messages_in_every_category() -> None:
    rows = [row for split in SPLITS for row in _rows(split)]
    assert len(rows) >= 3000
    assert len({str(row["text"]) for row in rows}) == len(rows)
    test_categories = Counter(str(row["category"]) for row in _rows("test"))
    assert set(test_categories) == set(CATEGORY_LABELS) - {"threat"} | {OBFUSCATED}
    for category in THREAT_CATEGORIES - {"threat"}:
        assert test_categories[category] >= 25
    assert sum(test_categories[name] for name in BENIGN_CATEGORIES) >= 300


@pytest.mark.parametrize("split", SPLITS)
def test_labels_follow_the_category(split: str) -> None:
    for row in _rows(split):
        category, labels = str(row["category"]), frozenset(row["labels"])  # type: ignore[call-overload]
        if category == OBFUSCATED:
            assert labels in {value for value in CATEGORY_LABELS.values() if value}
        else:
            assert labels == CATEGORY_LABELS[category], row
        assert (category in ABUSIVE_CATEGORIES) == bool(labels - {"pii"})


def test_every_species_pawhub_serves_is_in_the_clinical_test_messages() -> None:
    clinical = " ".join(
        str(r["text"]).lower() for r in _rows("test") if r["category"] == "clinical"
    )
    assert [species for species in SPECIES if species not in clinical] == []


def test_train_and_dev_are_composed_from_the_templates(tmp_path: Path) -> None:
    shutil.copy(CORPUS_DIR / "templates.txt", tmp_path / "templates.txt")
    write_splits(tmp_path)
    for split in ("train", "dev"):
        assert (tmp_path / f"{split}.jsonl").read_bytes() == (
            CORPUS_DIR / f"{split}.jsonl"
        ).read_bytes(), "run `python -m moderation.corpus.compose`"


def test_no_template_feeds_both_train_and_dev() -> None:
    train = {row["template"] for row in _rows("train")}
    dev = {row["template"] for row in _rows("dev")}
    assert train and dev and not train & dev
    assert {t.template_id for t in read_templates()} == train | dev


def test_the_test_split_is_written_apart_from_the_templates() -> None:
    """No test line comes from a template, and none is a near copy of a train or dev line
    (normalised, difflib similarity under NEAR_COPY). Character trigrams shortlist the
    candidates: a near copy shares most of them."""
    assert all("template" not in row for row in _rows("test"))
    composed = [_plain(str(row["text"])) for split in ("train", "dev") for row in _rows(split)]
    index: dict[str, set[int]] = {}
    for number, text in enumerate(composed):
        for start in range(len(text) - 2):
            index.setdefault(text[start : start + 3], set()).add(number)
    near_copies = []
    for row in _rows("test"):
        text = _plain(str(row["text"]))
        trigrams = {text[start : start + 3] for start in range(len(text) - 2)}
        shared = Counter(number for gram in trigrams for number in index.get(gram, ()))
        matcher = difflib.SequenceMatcher(None, b=text)
        for number, count in shared.items():
            if count < 0.3 * len(trigrams):
                continue
            matcher.set_seq1(composed[number])
            if matcher.ratio() >= NEAR_COPY:
                near_copies.append((text, composed[number]))
    assert near_copies == []
