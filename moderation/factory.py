"""Choosing the classifier from configuration."""

from __future__ import annotations

from pathlib import Path

from moderation.classifier import Classifier


def load_classifier(
    detoxify_checkpoint: str | Path | None, detoxify_config_dir: str | Path | None = None
) -> Classifier:
    """Detoxify when a checkpoint is configured (`DETOXIFY_CHECKPOINT`), else the shipped
    learned model (`moderation.learned_model`).

    Call it inside the worker process (e.g. as a process pool initializer): loading takes
    a moment, and Detoxify pulls in torch.
    """
    if detoxify_checkpoint:
        from moderation.detoxify_model import DetoxifyClassifier

        return DetoxifyClassifier(detoxify_checkpoint, detoxify_config_dir)
    from moderation.learned_model import LearnedClassifier

    return LearnedClassifier()
