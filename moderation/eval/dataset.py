"""Loading labelled messages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

SHIPPED_SETS = ("messages.jsonl", "holdout.jsonl")
BENIGN_CATEGORIES = frozenset({"clinical", "everyday"})
ABUSIVE_CATEGORIES = frozenset({"insult", "threat", "harassment", "obfuscated"})


@dataclass(frozen=True, slots=True)
class Example:
    """A message, its category and the labels a moderator expects on it (none if benign)."""

    text: str
    category: str
    labels: frozenset[str]


def shipped_set(name: str = SHIPPED_SETS[0]) -> Path:
    """The path of a labelled set shipped in this package."""
    return Path(str(files("moderation.eval") / name))


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
