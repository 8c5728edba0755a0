"""The hand-written templates (`templates.txt`) and their slots.

Each template line is `category<TAB>text`; `{slot}` words are filled from the word lists
(`everyday_words`, `abuse_words`). A whole template goes to dev or to train (one in five to
dev, by a hash of its text), never to both.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from pathlib import Path

from moderation.corpus import CORPUS_DIR
from moderation.corpus.abuse_words import ABUSE_SLOTS
from moderation.corpus.categories import labels_of
from moderation.corpus.everyday_words import EVERYDAY_SLOTS

TEMPLATES = CORPUS_DIR / "templates.txt"
DEV_ONE_IN = 5
SLOTS = {**EVERYDAY_SLOTS, **ABUSE_SLOTS}
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class Template:
    category: str
    text: str

    @property
    def template_id(self) -> str:
        return hashlib.sha256(f"{self.category}\t{self.text}".encode()).hexdigest()[:12]

    @property
    def split(self) -> str:
        return "dev" if int(self.template_id, 16) % DEV_ONE_IN == 0 else "train"

    @property
    def has_slots(self) -> bool:
        return bool(_SLOT.search(self.text))

    def fill(self, rng: random.Random) -> str:
        """The text with every slot filled by a word `rng` picks."""
        text = self.text
        while _SLOT.search(text):  # a slot's value may hold slots of its own ("your {fam}")
            text = _SLOT.sub(lambda match: rng.choice(SLOTS[match.group(1)]), text)
        return text


def read_templates(path: Path = TEMPLATES) -> list[Template]:
    templates: list[Template] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        category, sep, text = line.partition("\t")
        if not sep or not text.strip():
            raise ValueError(f"{path}:{number}: expected category<TAB>text")
        labels_of(category)  # an unknown category fails here
        templates.append(Template(category, text.strip()))
    return templates
