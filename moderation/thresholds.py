"""Per-label thresholds and the decision a score crosses them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from moderation.labels import GRAVEST_LABELS, Label

Probability = Annotated[float, Field(ge=0.0, le=1.0)]

DEFAULT_THRESHOLDS: Mapping[str, float] = {
    Label.TOXICITY: 0.8,
    Label.INSULT: 0.7,
    Label.THREAT: 0.5,
    Label.HARASSMENT: 0.5,
    Label.SEXUAL: 0.5,
    Label.PII: 0.5,
}


class Thresholds(BaseModel):
    """A label is flagged when its score is at or above its threshold.

    Labels missing from `per_label` (e.g. Detoxify's `obscene`) use `default`. `block_labels` are
    the gravest labels: a message flagged with one of them may be refused before it is sent;
    an empty set turns the pre-send block off.
    """

    model_config = ConfigDict(frozen=True)

    per_label: dict[str, Probability] = Field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    default: Probability = 0.5
    block_labels: frozenset[str] = GRAVEST_LABELS

    def threshold(self, label: str) -> float:
        return self.per_label.get(label, self.default)


def flagged_labels(scores: Mapping[str, float], thresholds: Thresholds) -> dict[str, float]:
    """The labels whose score crosses their threshold, with their scores."""
    return {label: score for label, score in scores.items() if score >= thresholds.threshold(label)}


def blocking_labels(scores: Mapping[str, float], thresholds: Thresholds) -> dict[str, float]:
    """The flagged labels that justify refusing the message before it is sent."""
    flagged = flagged_labels(scores, thresholds)
    return {label: score for label, score in flagged.items() if label in thresholds.block_labels}
