"""Detoxify checkpoints, loaded and run without touching the network.

`detoxify.Detoxify(checkpoint=..., huggingface_config_path=...)` still asks the Hugging Face hub
for the base model's config (`config_class.from_pretrained(model_type)`), so it fails offline.
This module reads the same checkpoint format (`{"config": ..., "state_dict": ...}`) and builds
the model from a local folder holding `config.json` and the tokenizer files, then loads the
checkpoint's weights into it: nothing is fetched, everything is `local_files_only`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import transformers

from moderation.classifier import Scores
from moderation.labels import Label
from moderation.pii import find_pii

# Detoxify's own renaming of the Jigsaw class names (detoxify.detoxify.load_checkpoint).
_DETOXIFY_NAMES = {
    "toxic": "toxicity",
    "identity_hate": "identity_attack",
    "severe_toxic": "severe_toxicity",
}
# Buffers that older transformers saved and newer ones rebuild; a checkpoint may carry them.
_REBUILT_BUFFERS = ("position_ids",)


class DetoxifyClassifier:
    """A Detoxify checkpoint's classes, plus the `pii` label from `moderation.pii`.

    `config_dir` holds the base model's `config.json` and tokenizer files (as written by
    `save_pretrained`); it defaults to the checkpoint's folder.
    """

    name = "detoxify"

    def __init__(
        self, checkpoint: str | Path, config_dir: str | Path | None = None, batch_size: int = 32
    ) -> None:
        self._checkpoint = Path(checkpoint)
        self._config_dir = Path(config_dir) if config_dir else self._checkpoint.parent
        self._batch_size = batch_size
        # A Detoxify checkpoint holds its training config, not only tensors. It is a file the
        # operator configured, trusted like code, as detoxify itself loads it.
        loaded = torch.load(self._checkpoint, map_location="cpu", weights_only=False)
        if not isinstance(loaded, dict) or not {"config", "state_dict"} <= loaded.keys():
            raise ValueError(
                f"{self._checkpoint} is not a Detoxify checkpoint (config, state_dict)"
            )
        arch = loaded["config"]["arch"]["args"]
        classes = loaded["config"]["dataset"]["args"]["classes"]
        self._classes = [_DETOXIFY_NAMES.get(name, name) for name in classes]
        self._model = _build_model(arch["model_name"], arch["num_classes"], self._config_dir)
        _load_weights(self._model, loaded["state_dict"])
        self._model.eval()
        self._tokenizer: Any = getattr(transformers, arch["tokenizer_name"]).from_pretrained(
            self._config_dir, local_files_only=True
        )
        self.labels: tuple[str, ...] = (*self._classes, Label.PII)
        self.version = f"{self._checkpoint.name}@{_sha256(self._checkpoint)[:12]}"

    def __reduce__(self) -> tuple[type[DetoxifyClassifier], tuple[Path, Path, int]]:
        # Rebuilt from its files in the receiving process rather than pickled tensor by tensor.
        return (type(self), (self._checkpoint, self._config_dir, self._batch_size))

    def score_batch(self, texts: Sequence[str]) -> list[Scores]:
        results: list[Scores] = []
        for start in range(0, len(texts), self._batch_size):
            chunk = list(texts[start : start + self._batch_size])
            for text, row in zip(chunk, self._probabilities(chunk), strict=True):
                scores: Scores = dict(zip(self._classes, row, strict=True))
                scores[Label.PII] = 1.0 if find_pii(text) else 0.0
                results.append(scores)
        return results

    @torch.inference_mode()
    def _probabilities(self, texts: list[str]) -> list[list[float]]:
        inputs = self._tokenizer(texts, return_tensors="pt", truncation=True, padding=True)
        logits = self._model(**inputs).logits
        probabilities: list[list[float]] = torch.sigmoid(logits).tolist()
        return probabilities


def _build_model(model_name: str, num_classes: int, config_dir: Path) -> Any:
    model_class = getattr(transformers, model_name)
    config = model_class.config_class.from_pretrained(
        config_dir, num_labels=num_classes, local_files_only=True
    )
    return model_class(config)


def _load_weights(model: Any, state_dict: dict[str, torch.Tensor]) -> None:
    result = model.load_state_dict(state_dict, strict=False)
    unexpected = [key for key in result.unexpected_keys if not key.endswith(_REBUILT_BUFFERS)]
    if result.missing_keys or unexpected:
        raise ValueError(
            f"checkpoint does not fit the configured model: missing {result.missing_keys}, "
            f"unexpected {unexpected}"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
