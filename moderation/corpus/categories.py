"""The corpus categories, the labels each one carries, and the groups the goals are set on.

See GUIDELINES.md in this folder for how a message is given its category.
"""

from __future__ import annotations

from moderation.labels import Label

_ABUSE = (Label.TOXICITY,)
CATEGORY_LABELS: dict[str, frozenset[str]] = {
    # benign: never flagged
    "clinical": frozenset(),
    "idiom": frozenset(),
    "complaint": frozenset(),
    "everyday": frozenset(),
    "grief": frozenset(),
    # abusive
    "insult": frozenset({*_ABUSE, Label.INSULT}),
    "identity_attack": frozenset({*_ABUSE, Label.INSULT, Label.HARASSMENT}),
    "harassment": frozenset({*_ABUSE, Label.HARASSMENT}),
    "sexual_harassment": frozenset({*_ABUSE, Label.HARASSMENT, Label.SEXUAL}),
    "doxxing": frozenset({*_ABUSE, Label.HARASSMENT, Label.THREAT}),
    "self_harm": frozenset({*_ABUSE, Label.THREAT}),
    "threat": frozenset({*_ABUSE, Label.THREAT}),
    "threat_conditional": frozenset({*_ABUSE, Label.THREAT}),
    "threat_future": frozenset({*_ABUSE, Label.THREAT}),
    "threat_imperative": frozenset({*_ABUSE, Label.THREAT}),
    "threat_wished": frozenset({*_ABUSE, Label.THREAT}),
    # personal data, found by the PII detector rather than learned
    "pii": frozenset({Label.PII}),
}
# Obfuscated lines carry the labels of the line they disguise.
OBFUSCATED = "obfuscated"

BENIGN_CATEGORIES = frozenset(name for name, labels in CATEGORY_LABELS.items() if not labels)
THREAT_CATEGORIES = frozenset(name for name in CATEGORY_LABELS if name.startswith("threat"))
ABUSIVE_CATEGORIES = frozenset(
    {OBFUSCATED}
    | {name for name, labels in CATEGORY_LABELS.items() if labels and Label.PII not in labels}
)


def labels_of(category: str) -> frozenset[str]:
    """The labels a composed line of `category` carries (an obfuscated template: its own)."""
    if category not in CATEGORY_LABELS:
        raise ValueError(f"unknown category {category!r}: one of {sorted(CATEGORY_LABELS)}")
    return CATEGORY_LABELS[category]
