"""Detoxify's checkpoint format loaded and run from local files, with the network cut off."""

from __future__ import annotations

import pickle
import socket
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers

from moderation.detoxify_model import DetoxifyClassifier
from moderation.factory import load_classifier
from moderation.labels import Label

JIGSAW_CLASSES = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
WORDS = ["you", "are", "an", "idiot", "the", "dog", "has", "worms", "i", "will", "hurt", "call"]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _tiny_model() -> transformers.BertForSequenceClassification:
    torch.manual_seed(7)
    config = transformers.BertConfig(
        vocab_size=5 + len(WORDS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    config.num_labels = len(JIGSAW_CLASSES)
    return transformers.BertForSequenceClassification(config)


@pytest.fixture
def checkpoint(tmp_path: Path) -> tuple[Path, Path, Any, Any]:
    """A random-weight tiny BERT saved the way Detoxify saves its checkpoints."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tokenizer = transformers.BertTokenizer(vocab={word: i for i, word in enumerate(vocab)})
    model = _tiny_model()
    config_dir = tmp_path / "bert-tiny"
    tokenizer.save_pretrained(config_dir)
    model.config.save_pretrained(config_dir)
    path = tmp_path / "toxic_tiny.ckpt"
    torch.save(
        {
            "config": {
                "arch": {
                    "args": {
                        "model_type": "bert-base-uncased",  # a hub name: must never be fetched
                        "model_name": "BertForSequenceClassification",
                        "tokenizer_name": "BertTokenizer",
                        "num_classes": len(JIGSAW_CLASSES),
                    }
                },
                "dataset": {"args": {"classes": JIGSAW_CLASSES}},
            },
            "state_dict": model.state_dict(),
        },
        path,
    )
    return path, config_dir, model, tokenizer


def _reference(model: Any, tokenizer: Any, texts: list[str]) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        inputs = tokenizer(texts, return_tensors="pt", padding=True, truncation=True)
        return torch.sigmoid(model(**inputs).logits)


def test_loads_offline_and_scores_like_the_saved_model(
    checkpoint: tuple[Path, Path, Any, Any],
) -> None:
    path, config_dir, model, tokenizer = checkpoint
    classifier = load_classifier(path, config_dir)
    texts = ["you are an idiot", "the dog has worms", "call me on 07700 900123"]

    results = classifier.score_batch(texts)

    assert isinstance(classifier, DetoxifyClassifier)
    assert classifier.labels == (
        "toxicity",
        "severe_toxicity",
        "obscene",
        "threat",
        "insult",
        "identity_attack",
        Label.PII,
    )
    expected = _reference(model, tokenizer, texts)
    for row, scores in zip(expected.tolist(), results, strict=True):
        assert [scores[label] for label in classifier.labels[:-1]] == pytest.approx(row, abs=1e-5)
    assert [scores[Label.PII] for scores in results] == [0.0, 0.0, 1.0]


def test_scores_do_not_depend_on_batching(checkpoint: tuple[Path, Path, Any, Any]) -> None:
    path, config_dir, _, _ = checkpoint
    small = DetoxifyClassifier(path, config_dir, batch_size=2)
    texts = ["you are an idiot", "i will hurt you", "the dog", "worms", "hello"]
    alone = [small.score_batch([text])[0] for text in texts]
    batched = small.score_batch(texts)
    for one, many in zip(alone, batched, strict=True):
        assert one == pytest.approx(many, abs=1e-5)


def test_config_dir_defaults_to_the_checkpoint_folder(
    checkpoint: tuple[Path, Path, Any, Any],
) -> None:
    path, config_dir, _, _ = checkpoint
    beside = config_dir / path.name
    path.rename(beside)
    classifier = DetoxifyClassifier(beside)
    assert classifier.version.startswith("toxic_tiny.ckpt@")
    assert len(classifier.score_batch(["hello"])) == 1


def test_pickles_by_path_and_rebuilds(checkpoint: tuple[Path, Path, Any, Any]) -> None:
    path, config_dir, _, _ = checkpoint
    classifier = DetoxifyClassifier(path, config_dir)
    payload = pickle.dumps(classifier)
    clone = pickle.loads(payload)
    assert len(payload) < 1_000
    assert clone.version == classifier.version
    assert clone.score_batch(["you idiot"]) == classifier.score_batch(["you idiot"])


def test_rejects_a_checkpoint_that_is_not_detoxify(tmp_path: Path) -> None:
    path = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="not a Detoxify checkpoint"):
        DetoxifyClassifier(path, tmp_path)


def test_rejects_weights_that_do_not_fit_the_config(
    checkpoint: tuple[Path, Path, Any, Any],
) -> None:
    path, config_dir, _, _ = checkpoint
    loaded = torch.load(path, weights_only=False)
    del loaded["state_dict"]["classifier.weight"]
    torch.save(loaded, path)
    with pytest.raises(ValueError, match="missing"):
        DetoxifyClassifier(path, config_dir)


def test_without_a_checkpoint_the_default_model_is_used() -> None:
    assert load_classifier(None).name == "vet-linear"
