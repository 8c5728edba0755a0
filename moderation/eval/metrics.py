"""Precision, recall and false-positive rate of a classifier on labelled messages, and its
throughput on one core.

Label-level figures treat each (message, label) pair as a decision: a flagged label the
message should not carry is a false positive, an expected label left unflagged a false
negative. Message-level figures answer the moderation question: a benign message flagged with
anything is a false positive; an abusive message is caught when it is flagged with at least
one of its expected labels (so it reaches a moderator).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import cycle, islice

from moderation.classifier import Classifier, Scores
from moderation.eval.dataset import (
    ABUSIVE_CATEGORIES,
    BENIGN_CATEGORIES,
    THREAT_CATEGORIES,
    Example,
)
from moderation.thresholds import Thresholds, flagged_labels

TARGET_BENIGN_FPR = 0.02
TARGET_ABUSE_RECALL = 0.90
TARGET_THREAT_RECALL = 0.95
TARGET_THROUGHPUT = 10_000.0


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass
class Counts:
    """Decisions on one category or one label."""

    messages: int = 0
    flagged: int = 0  # messages flagged with anything
    caught: int = 0  # messages flagged with one of their expected labels
    expected: int = 0  # messages that should be flagged
    true_positives: int = 0  # label-level from here on
    false_positives: int = 0
    false_negatives: int = 0

    @property
    def precision(self) -> float | None:
        return _ratio(self.true_positives, self.true_positives + self.false_positives)

    @property
    def recall(self) -> float | None:
        """Label-level recall: expected labels that were flagged."""
        return _ratio(self.true_positives, self.true_positives + self.false_negatives)

    @property
    def false_positive_rate(self) -> float | None:
        """Benign messages flagged with anything."""
        return _ratio(self.flagged, self.messages) if not self.expected else None

    @property
    def message_recall(self) -> float | None:
        """Abusive messages that reach a moderator with a right label."""
        return _ratio(self.caught, self.expected)


@dataclass(frozen=True)
class Miss:
    """A benign message that was flagged, or an abusive one that was not caught."""

    example: Example
    flagged: dict[str, float]


@dataclass
class ModelReport:
    """Quality figures of one model on one labelled set."""

    model: str
    version: str
    dataset: str
    categories: dict[str, Counts] = field(default_factory=dict)
    labels: dict[str, Counts] = field(default_factory=dict)
    benign: Counts = field(default_factory=Counts)
    abusive: Counts = field(default_factory=Counts)
    threats: Counts = field(default_factory=Counts)
    misses: list[Miss] = field(default_factory=list)
    scored: list[tuple[Example, Scores]] = field(default_factory=list)  # for the curves
    thresholds: Thresholds = field(default_factory=Thresholds)
    throughput: float | None = None  # messages per second on one core

    @property
    def goals_met(self) -> bool:
        """The issue's goals: benign FPR, abusive recall, threat recall (when the set has
        threats) and, when measured, throughput."""
        fpr, recall = self.benign.false_positive_rate, self.abusive.message_recall
        threats = self.threats.message_recall
        return (
            fpr is not None
            and fpr <= TARGET_BENIGN_FPR
            and recall is not None
            and recall >= TARGET_ABUSE_RECALL
            and (threats is None or threats >= TARGET_THREAT_RECALL)
            and (self.throughput is None or self.throughput >= TARGET_THROUGHPUT)
        )


def _count(counts: Counts, example: Example, flagged: set[str]) -> None:
    counts.messages += 1
    counts.flagged += bool(flagged)
    counts.expected += bool(example.labels)
    counts.caught += bool(flagged & example.labels)
    counts.true_positives += len(flagged & example.labels)
    counts.false_positives += len(flagged - example.labels)
    counts.false_negatives += len(example.labels - flagged)


def evaluate(
    classifier: Classifier, examples: Sequence[Example], thresholds: Thresholds, dataset: str
) -> ModelReport:
    """Score every example in one batch and count the decisions."""
    report = ModelReport(classifier.name, classifier.version, dataset, thresholds=thresholds)
    scores = classifier.score_batch([example.text for example in examples])
    for example, message_scores in zip(examples, scores, strict=True):
        report.scored.append((example, message_scores))
        flagged = flagged_labels(message_scores, thresholds)
        labels = set(flagged)
        _count(report.categories.setdefault(example.category, Counts()), example, labels)
        if example.category in BENIGN_CATEGORIES:
            _count(report.benign, example, labels)
        if example.category in ABUSIVE_CATEGORIES:
            _count(report.abusive, example, labels)
        if example.category in THREAT_CATEGORIES:
            _count(report.threats, example, labels)
        for label in labels | example.labels:
            counts = report.labels.setdefault(label, Counts())
            counts.true_positives += label in labels and label in example.labels
            counts.false_positives += label in labels and label not in example.labels
            counts.false_negatives += label in example.labels and label not in labels
            counts.expected += label in example.labels
        missed = not labels & example.labels if example.labels else bool(labels)
        if missed:
            report.misses.append(Miss(example, flagged))
    return report


@contextmanager
def _one_core() -> Iterator[None]:
    """Pin this process to a single CPU while measuring (where the OS allows it)."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def measure_throughput(
    classifier: Classifier, texts: Sequence[str], batch_size: int = 10_000, rounds: int = 3
) -> float:
    """Messages per second on one core, scoring `rounds` batches of `batch_size` messages
    drawn in turn from `texts`, after one warm-up batch."""
    batch = list(islice(cycle(texts), batch_size))
    with _one_core():
        classifier.score_batch(batch)
        started = time.perf_counter()
        for _ in range(rounds):
            classifier.score_batch(batch)
        elapsed = time.perf_counter() - started
    return rounds * batch_size / elapsed
