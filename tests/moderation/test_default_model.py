"""The default model in both directions: clinical language passes, disguised abuse does not."""

from __future__ import annotations

import pickle

import pytest

from moderation.classifier import assess
from moderation.default_model import VetProfanityClassifier
from moderation.labels import Label
from moderation.thresholds import Thresholds

CLINICAL = [
    "spay the bitch before her next heat",
    "the dog has a swollen ass gland",
    "The cock crowed at dawn",
    "Thick yellow discharge from his penis, he keeps licking it.",
    "She's a maiden bitch, first litter due next week, the stud was proven.",
    "We think it's time to put him down, he is dying.",
    "What kills fleas on a kitten? Also found worms in his poop.",
    "His balls haven't dropped yet, he's 8 months old.",
    "Bloody diarrhoea and vomiting since yesterday.",
    "Is it normal that he humps everything after being neutered?",
    "He's a big pussycat really.",
    "His microchip number is 985141000123456.",
]

ABUSIVE = [
    ("f4ck you", Label.INSULT),
    ("f u c k  y o u", Label.INSULT),
    ("fuuuuck you", Label.INSULT),
    ("you stupid bitch", Label.INSULT),
    ("Your receptionist is a rude cow.", Label.INSULT),
    ("I will find you and hurt you", Label.THREAT),
    ("you'll regret this", Label.THREAT),
    ("I know where you live", Label.THREAT),
    ("I'm going to hurt the vet who did this", Label.THREAT),
    ("i w1ll k1ll y0u", Label.THREAT),
    ("I'll keep calling until you quit.", Label.HARASSMENT),
    ("What are you wearing right now?", Label.SEXUAL),
]


def test_raw_model_gets_the_issue_examples_wrong() -> None:
    """The baseline the layers fix, as the issue measured it."""
    from profanity_check import predict_prob

    raw = predict_prob(["spay the bitch before her next heat", "f4ck you"])
    assert raw[0] > 0.9
    assert raw[1] < 0.1


@pytest.mark.parametrize("text", CLINICAL)
def test_clinical_language_is_not_flagged(classifier: VetProfanityClassifier, text: str) -> None:
    [assessment] = assess(classifier, [text], Thresholds())
    assert assessment.flagged == {}, assessment.scores


@pytest.mark.parametrize(("text", "label"), ABUSIVE)
def test_abuse_is_flagged(classifier: VetProfanityClassifier, text: str, label: Label) -> None:
    [assessment] = assess(classifier, [text], Thresholds())
    assert label in assessment.flagged
    assert Label.TOXICITY in assessment.flagged  # the umbrella follows every abuse label


def test_bitch_as_an_insult_stays_an_insult_among_dog_words(
    classifier: VetProfanityClassifier,
) -> None:
    [assessment] = assess(classifier, ["you stupid bitch, you killed my dog"], Thresholds())
    assert Label.INSULT in assessment.flagged


def test_threats_are_the_blocking_labels(classifier: VetProfanityClassifier) -> None:
    threat, insult = assess(classifier, ["I will find you and hurt you", "you moron"], Thresholds())
    assert set(threat.blocking) == {Label.THREAT}
    assert insult.blocking == {}
    assert (
        assess(classifier, ["I will find you"], Thresholds(block_labels=frozenset()))[0].blocking
        == {}
    )


def test_pii_is_labelled(classifier: VetProfanityClassifier) -> None:
    phone, email, card, none = classifier.score_batch(
        [
            "call me on 07700 900123",
            "mail me at sarah@example.com",
            "card 4111 1111 1111 1111",
            "he weighs 12.4 kg",
        ]
    )
    assert phone[Label.PII] == email[Label.PII] == card[Label.PII] == 1.0
    assert none[Label.PII] == 0.0


def test_scores_cover_every_label_in_order(classifier: VetProfanityClassifier) -> None:
    texts = ["hello", "you idiot", "", "I will hurt you"]
    results = classifier.score_batch(texts)
    assert len(results) == len(texts)
    assert all(set(scores) == set(classifier.labels) for scores in results)
    assert all(0.0 <= score <= 1.0 for scores in results for score in scores.values())
    assert results[3][Label.THREAT] > results[0][Label.THREAT]
    assert classifier.score_batch([]) == []


def test_results_are_attributed_to_model_and_version(classifier: VetProfanityClassifier) -> None:
    [assessment] = assess(classifier, ["you idiot"], Thresholds())
    assert assessment.model == "vet-profanity"
    assert "alt-profanity-check" in assessment.version
    assert assessment.reason.startswith(("insult", "toxicity"))
    assert assessment.reason.endswith(f"({assessment.model} {assessment.version})")


def test_pickles_cheaply_and_scores_the_same(classifier: VetProfanityClassifier) -> None:
    payload = pickle.dumps(classifier)
    clone = pickle.loads(payload)
    assert len(payload) < 200  # rebuilt in the worker, not shipped with the sklearn model
    assert clone.score_batch(["you idiot"]) == classifier.score_batch(["you idiot"])
