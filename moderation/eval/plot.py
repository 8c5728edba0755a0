"""Precision/recall curves per label, as PNG files (`pawhub moderation eval --plots DIR`)."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from sklearn.metrics import precision_recall_curve  # type: ignore[import-untyped]

from moderation.eval.metrics import ModelReport


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def plot_precision_recall(report: ModelReport, directory: Path) -> list[Path]:
    """One PNG per label the set expects: its precision/recall curve over every message,
    with the configured threshold marked. The paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    labels = sorted({label for example, _ in report.scored for label in example.labels})
    for label in labels:
        expected = [label in example.labels for example, _ in report.scored]
        scores = [scores.get(label, 0.0) for _, scores in report.scored]
        precision, recall, _ = precision_recall_curve(expected, scores)
        threshold = report.thresholds.threshold(label)
        flagged = [score >= threshold for score in scores]
        hits = sum(f and e for f, e in zip(flagged, expected, strict=True))
        at_precision = hits / max(1, sum(flagged))
        at_recall = hits / max(1, sum(expected))
        figure, axes = plt.subplots(figsize=(5, 4), dpi=100)
        axes.plot(recall, precision, drawstyle="steps-post")
        axes.plot([at_recall], [at_precision], "o", label=f"threshold {threshold:.2f}")
        axes.set(
            xlabel="recall",
            ylabel="precision",
            xlim=(0, 1.01),
            ylim=(0, 1.01),
            title=f"{label}: {report.model} {report.version}\n{report.dataset}",
        )
        axes.title.set_fontsize(9)
        axes.legend(loc="lower left")
        axes.grid(alpha=0.3)
        path = directory / f"{_slug(report.model)}-{_slug(report.dataset)}-{label}.png"
        figure.tight_layout()
        figure.savefig(path)
        plt.close(figure)
        written.append(path)
    return written
