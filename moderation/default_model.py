"""The shipped offline model: alt-profanity-check read through normalisation, the veterinary
context layer, abuse rules and a PII detector."""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

from moderation.abuse_rules import abuse_scores
from moderation.classifier import Scores
from moderation.labels import Label
from moderation.normalize import normalize
from moderation.pii import find_pii
from moderation.vet_context import clinical_reading

# Bump when the normalisation, the context layer or the rules change what they score.
RULES_VERSION = "1"

_ADDRESSED = re.compile(r"\b(?:you|your|yours|yourself|ya|ye)\b")


class VetProfanityClassifier:
    """alt-profanity-check's linear model, made to read tele-vet chat.

    `toxicity` is the model's probability on the clinically read text, raised to any abuse
    rule's score; `insult` is the same probability when the message addresses someone, or an
    insult rule; `threat`, `harassment` and `sexual` come from the rules; `pii` is 1.0 when the
    message holds an email, a phone number or a payment card number.
    """

    name = "vet-profanity"
    labels: tuple[str, ...] = tuple(Label)

    def __init__(self) -> None:
        # Imported here: loading the pickled model takes a moment and belongs to the worker.
        from profanity_check import profanity_check

        self._vectorizer: Any = profanity_check.vectorizer
        self._model: Any = profanity_check.model
        self._vocabulary: dict[str, int] = self._vectorizer.vocabulary_
        self.version = f"{RULES_VERSION}+alt-profanity-check-{version('alt-profanity-check')}"

    def __reduce__(self) -> tuple[type[VetProfanityClassifier], tuple[()]]:
        # Sent to a worker process as "build one there", not as the pickled sklearn model.
        return (type(self), ())

    def score_batch(self, texts: Sequence[str]) -> list[Scores]:
        if not texts:
            return []
        normalized = [normalize(text, self._vocabulary) for text in texts]
        readings = [clinical_reading(text) for text in normalized]
        features = self._vectorizer.transform(readings)
        probabilities = self._model.predict_proba(features)[:, 1].tolist()
        return [
            self._scores(text, plain, probability)
            for text, plain, probability in zip(texts, normalized, probabilities, strict=True)
        ]

    def _scores(self, text: str, normalized: str, probability: float) -> Scores:
        rules = abuse_scores(normalized)
        addressed = probability if _ADDRESSED.search(normalized) else 0.0
        insult = max(rules[Label.INSULT], addressed)
        return {
            Label.TOXICITY: max(probability, insult, *rules.values()),
            Label.INSULT: insult,
            Label.THREAT: rules[Label.THREAT],
            Label.HARASSMENT: rules[Label.HARASSMENT],
            Label.SEXUAL: rules[Label.SEXUAL],
            Label.PII: 1.0 if find_pii(text) else 0.0,
        }
