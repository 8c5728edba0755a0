"""The label names the shipped model emits, and which of them are grave enough to block a send."""

from __future__ import annotations

from enum import StrEnum


class Label(StrEnum):
    """Labels of the default model. Detoxify adds its own (`obscene`, `identity_attack`, ...)."""

    TOXICITY = "toxicity"  # the umbrella: at least as high as any abuse label below
    INSULT = "insult"
    THREAT = "threat"
    HARASSMENT = "harassment"
    SEXUAL = "sexual"
    PII = "pii"


# Detoxify names its threat class `threat` too, so the block applies to either model.
GRAVEST_LABELS: frozenset[str] = frozenset({Label.THREAT})
