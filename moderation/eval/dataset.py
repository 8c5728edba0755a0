"""Loading labelled messages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from moderation.corpus.categories import ABUSIVE_CATEGORIES, BENIGN_CATEGORIES, THREAT_CATEGORIES

__all__ = [
    "ABUSIVE_CATEGORIES",
    "BENIGN_CATEGORIES",
    "SHIPPED_SETS",
    "THREAT_CATEGORIES",
    "Example",
    "corpus_split",
    "load_examples",
    "shipped_set",
]

SHIPPED_SETS = ("messages.jsonl", "holdout.jsonl")


@dataclass(frozen=True, slots=True)
class Example:
    """A message, its category and the labels a moderator expects on it (none if benign)."""

    text: str
    category: str
    labels: frozenset[str]


def shipped_set(name: str = SHIPPED_SETS[0]) -> Path:
    """The path of a labelled set shipped in this package."""
    return Path(str(files("moderation.eval") / name))


def corpus_split(split: str = "test") -> Path:
    """The path of a split of the shipped corpus (`moderation/corpus/`)."""
    return Path(str(files("moderation.corpus") / f"{split}.jsonl"))


def load_examples(path: Path) -> list[Example]:
    """The examples of a JSONL file, one `{"text", "category", "labels"}` object per line."""
    examples: list[Example] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                examples.append(Example(row["text"], row["category"], frozenset(row["labels"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a labelled message ({exc})") from exc
    return examples
