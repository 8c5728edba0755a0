"""The train and dev splits, composed from the hand-written templates in `templates.txt`.

Each template (`templates`) is filled several times with a generator seeded by the template
itself, so the same templates always compose the same lines; some fills are retyped as
someone else would type them (`variants.vary`). Abusive lines are also disguised
(`variants.disguise`) into `obfuscated` lines of the same split. A whole template goes to dev
or to train, never to both. The test split (`test.jsonl`) is written by hand, apart from these
templates, and is never composed.

    python -m moderation.corpus.compose   # rewrites train.jsonl and dev.jsonl
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

from moderation.corpus import CORPUS_DIR
from moderation.corpus.categories import labels_of
from moderation.corpus.templates import Template, read_templates
from moderation.corpus.variants import disguise, vary
from moderation.labels import Label

FILLS_PER_TEMPLATE = 6
PLAIN_VARIANTS = 3  # a template without slots: as written, and typed by two others


def compose(templates: list[Template]) -> Iterator[tuple[str, dict[str, object]]]:
    """(split, row) for every composed line, in a fixed order, without repeats."""
    seen: set[str] = set()
    for template in templates:
        rng = random.Random(template.template_id)
        labels = labels_of(template.category)
        slotted = template.has_slots
        for fill in range(FILLS_PER_TEMPLATE if slotted else PLAIN_VARIANTS):
            text = template.fill(rng)
            if fill and (not slotted or rng.random() < 0.5):
                text = vary(text, rng)
            rows = [(template.category, text)]
            if labels and Label.PII not in labels and rng.random() < 0.35:
                rows.append(("obfuscated", disguise(text, rng)))
            for category, line in rows:
                if line in seen:
                    continue
                seen.add(line)
                yield (
                    template.split,
                    {
                        "category": category,
                        "labels": sorted(labels_of(template.category)),
                        "template": template.template_id,
                        "text": line,
                    },
                )


def write_splits(directory: Path = CORPUS_DIR) -> dict[str, int]:
    """Rewrite train.jsonl and dev.jsonl from the templates; the count of lines per split."""
    lines: dict[str, list[str]] = {"train": [], "dev": []}
    for split, row in compose(read_templates(directory / "templates.txt")):
        lines[split].append(json.dumps(row, ensure_ascii=False))
    for split, rows in lines.items():
        (directory / f"{split}.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return {split: len(rows) for split, rows in lines.items()}


if __name__ == "__main__":
    print(write_splits())
