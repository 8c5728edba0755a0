"""A shared default classifier: building it loads alt-profanity-check's model once."""

from __future__ import annotations

import pytest

from moderation.default_model import VetProfanityClassifier


@pytest.fixture(scope="session")
def classifier() -> VetProfanityClassifier:
    return VetProfanityClassifier()
