"""The classifier interface every model implements, and results attributed to the model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from moderation.thresholds import Thresholds, blocking_labels, flagged_labels

Scores = dict[str, float]


class Classifier(Protocol):
    """Scores texts in batches, synchronously and without side effects.

    Implementations are picklable (cheaply: they rebuild themselves in the receiving process), so
    the pipeline can run them in a process pool. A batch costs a fixed overhead plus a small
    per-message cost, so callers should score micro-batches rather than single messages.
    """

    name: str
    version: str
    labels: tuple[str, ...]

    def score_batch(self, texts: Sequence[str]) -> list[Scores]:
        """One `{label: score in [0, 1]}` per text, in order, with every label of `labels`."""
        ...


@dataclass(frozen=True, slots=True)
class Assessment:
    """One message's scores, the labels that crossed their thresholds, and who scored it."""

    model: str
    version: str
    scores: Scores
    flagged: Scores
    blocking: Scores

    @property
    def is_flagged(self) -> bool:
        return bool(self.flagged)

    @property
    def reason(self) -> str:
        """A one-line reason for a flag, e.g. `threat 0.95, toxicity 0.95 (vet-profanity 1.0)`."""
        ranked = sorted(self.flagged.items(), key=lambda item: -item[1])
        labels = ", ".join(f"{label} {score:.2f}" for label, score in ranked)
        return f"{labels} ({self.model} {self.version})"


def assess(
    classifier: Classifier, texts: Sequence[str], thresholds: Thresholds
) -> list[Assessment]:
    """Score a batch and apply the thresholds, attributing each result to the model."""
    return [
        Assessment(
            model=classifier.name,
            version=classifier.version,
            scores=scores,
            flagged=flagged_labels(scores, thresholds),
            blocking=blocking_labels(scores, thresholds),
        )
        for scores in classifier.score_batch(texts)
    ]
