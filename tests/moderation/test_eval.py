"""The evaluation runs end to end on the shipped sets and the goals hold on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from moderation.cli import moderation
from moderation.default_model import VetProfanityClassifier
from moderation.eval.dataset import (
    ABUSIVE_CATEGORIES,
    BENIGN_CATEGORIES,
    SHIPPED_SETS,
    load_examples,
    shipped_set,
)
from moderation.eval.metrics import evaluate, measure_throughput
from moderation.thresholds import Thresholds


@pytest.mark.parametrize("name", SHIPPED_SETS)
def test_shipped_sets_are_well_formed(name: str) -> None:
    examples = load_examples(shipped_set(name))
    categories = {example.category for example in examples}
    assert categories <= BENIGN_CATEGORIES | ABUSIVE_CATEGORIES | {"pii"}
    assert len({example.text for example in examples}) == len(examples)
    for example in examples:
        assert bool(example.labels) == (example.category not in BENIGN_CATEGORIES)


def test_development_set_is_large_enough() -> None:
    assert len(load_examples(shipped_set("messages.jsonl"))) >= 300


@pytest.mark.parametrize("name", SHIPPED_SETS)
def test_goals_hold_on_shipped_sets(classifier: VetProfanityClassifier, name: str) -> None:
    examples = load_examples(shipped_set(name))
    report = evaluate(classifier, examples, Thresholds(), name)

    assert report.model == "vet-profanity"
    assert set(report.categories) == {example.category for example in examples}
    assert sum(counts.messages for counts in report.categories.values()) == len(examples)
    assert report.benign.false_positive_rate is not None
    assert report.benign.false_positive_rate <= 0.02
    assert report.abusive.message_recall is not None
    assert report.abusive.message_recall >= 0.90
    # The threat goal (95%) came with the learned model: the rules miss a conditional threat
    # of the holdout set, as issue 18 found.
    assert report.goals_met == (name == "messages.jsonl")


def test_counts_follow_their_definitions(tmp_path: Path) -> None:
    rows = [
        {"category": "clinical", "labels": [], "text": "spay the bitch before her next heat"},
        {"category": "clinical", "labels": [], "text": "you idiot"},  # a false positive
        {"category": "threat", "labels": ["threat"], "text": "I will find you and hurt you"},
        {"category": "threat", "labels": ["threat"], "text": "lovely weather"},  # a miss
    ]
    path = tmp_path / "tiny.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    report = evaluate(VetProfanityClassifier(), load_examples(path), Thresholds(), path.name)

    clinical, threat = report.categories["clinical"], report.categories["threat"]
    assert clinical.false_positive_rate == 0.5
    assert clinical.message_recall is None
    assert threat.message_recall == 0.5
    assert threat.false_positive_rate is None
    assert report.labels["threat"].recall == 0.5
    assert [miss.example.text for miss in report.misses] == ["you idiot", "lovely weather"]
    assert not report.goals_met


def test_a_malformed_line_names_its_place(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "hi", "category": "everyday", "labels": []}\n{"text": 1}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        load_examples(path)


def test_throughput_is_measured_in_messages_per_second(
    classifier: VetProfanityClassifier,
) -> None:
    assert measure_throughput(classifier, ["hello", "you idiot"], batch_size=200, rounds=1) > 0


def test_eval_command_prints_the_report_and_the_curves(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        moderation,
        ["eval", "--batch-size", "500", "--show-misses", "--baseline", "--plots", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    for heading in ("category", "precision", "recall", "FPR", "goals", "messages/s", "abusive"):
        assert heading in result.output
    for name in ("test.jsonl", "messages.jsonl", "holdout.jsonl", "threat_conditional"):
        assert name in result.output
    assert "vet-linear" in result.output and "vet-profanity" in result.output
    curves = sorted(path.name for path in tmp_path.iterdir())
    assert "vet-linear-test.jsonl-threat.png" in curves
    assert "vet-profanity-holdout.jsonl-insult.png" in curves
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in tmp_path.iterdir())


def test_eval_command_passes_the_check_on_the_older_development_set(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        moderation,
        [
            "eval",
            "--data",
            str(shipped_set("messages.jsonl")),
            "--no-throughput",
            "--check",
            "--plots",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "messages/s" not in result.output


def test_eval_command_fails_the_check_when_a_goal_is_missed(tmp_path: Path) -> None:
    path = tmp_path / "hard.jsonl"
    rows = [
        {"category": "everyday", "labels": [], "text": "you idiot"},
        {"category": "threat", "labels": ["threat"], "text": "lovely weather"},
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    result = CliRunner().invoke(
        moderation,
        ["eval", "--data", str(path), "--no-throughput", "--check", "--plots", str(tmp_path)],
    )
    assert result.exit_code == 1
    assert "missed" in result.output
