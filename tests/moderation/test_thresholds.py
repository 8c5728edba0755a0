from __future__ import annotations

import pytest
from pydantic import ValidationError

from moderation.labels import GRAVEST_LABELS, Label
from moderation.thresholds import DEFAULT_THRESHOLDS, Thresholds, blocking_labels, flagged_labels


def test_defaults_cover_every_default_label() -> None:
    assert set(DEFAULT_THRESHOLDS) == set(Label)
    assert Thresholds().block_labels == GRAVEST_LABELS == {Label.THREAT}


def test_a_score_at_its_threshold_is_flagged() -> None:
    thresholds = Thresholds(per_label={"insult": 0.7}, default=0.6)
    scores = {"insult": 0.7, "threat": 0.59, "obscene": 0.6}
    assert flagged_labels(scores, thresholds) == {"insult": 0.7, "obscene": 0.6}


def test_only_gravest_flagged_labels_block() -> None:
    scores = {"threat": 0.9, "insult": 0.9}
    assert blocking_labels(scores, Thresholds()) == {"threat": 0.9}
    assert blocking_labels({"threat": 0.2}, Thresholds()) == {}
    assert blocking_labels(scores, Thresholds(block_labels=frozenset())) == {}


def test_thresholds_load_from_json_and_reject_non_probabilities() -> None:
    thresholds = Thresholds.model_validate_json('{"per_label": {"toxicity": 0.9}}')
    assert thresholds.threshold("toxicity") == 0.9
    assert thresholds.threshold("pii") == 0.5  # unlisted labels fall back to the default
    with pytest.raises(ValidationError):
        Thresholds(per_label={"toxicity": 1.5})
