"""The learned default model as shipped: it meets the goals on the corpus's test split, it is
the model the shipped corpus trains (deterministically; up to float rounding across CPUs), its
artefact is verified on loading, and its flags say which model and corpus made them."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]

from moderation.classifier import assess
from moderation.cli import moderation
from moderation.corpus import CORPUS_DIR
from moderation.eval.dataset import corpus_split, load_examples
from moderation.eval.metrics import evaluate
from moderation.factory import load_classifier
from moderation.learned_model import (
    ARRAYS_FILE,
    META_FILE,
    MODEL_DIR,
    Artefact,
    LearnedClassifier,
    ModelIntegrityError,
)
from moderation.ngrams import (
    WORD_NGRAMS,
    WORD_PATTERN,
    char_columns,
    char_hashes,
    fit_char_vocabulary,
    tfidf,
    word_columns,
)
from moderation.normalize import normalize
from moderation.thresholds import Thresholds
from moderation.training import corpus_hash


@pytest.fixture(scope="module")
def learned() -> LearnedClassifier:
    return LearnedClassifier()


# What the shipped model reaches on the test split (issue 18's goals are <= 2 %, >= 90 % and
# >= 95 %; recipe 2 scored 1.9 %, 92.4 % and 95.5 %): a change to the corpus or features must not
# fall below.
SHIPPED_BENIGN_FPR, SHIPPED_ABUSE_RECALL, SHIPPED_THREAT_RECALL = 0.02, 0.92, 0.95

# Plain chat and the load tester's filler (bench/chat/worker.py), which an earlier retrain
# flagged although no split showed it: held apart from the corpus, checked before any release.
PLAIN_TEXTS = [
    "hello",
    "hi",
    "Hi there!",
    "hello world",
    "ok",
    "yes",
    "no",
    "thanks",
    "Thank you doctor",
    "bye",
    "brb",
    "ping",
    "test",
    "testing",
    "test message",
    "message 42",
    "asdf",
    "1234",
    "good morning",
    "see you soon",
    "one moment please",
    "are you there?",
    "can you hear me?",
    "lorem ipsum dolor sit amet",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt"
    " ut labore et dolore magna aliqua.",
    "lorem ipsum " * 20,
]


def test_the_shipped_model_holds_its_figures_on_the_test_split(learned: LearnedClassifier) -> None:
    report = evaluate(learned, load_examples(corpus_split("test")), Thresholds(), "test.jsonl")
    fpr = report.benign.false_positive_rate
    recall = report.abusive.message_recall
    threats = report.threats.message_recall
    assert report.benign.messages >= 300 and report.threats.expected >= 100
    assert fpr is not None and fpr <= SHIPPED_BENIGN_FPR, report.benign
    assert recall is not None and recall >= SHIPPED_ABUSE_RECALL, report.abusive
    assert threats is not None and threats >= SHIPPED_THREAT_RECALL, report.threats


def test_plain_chat_and_filler_are_never_flagged(learned: LearnedClassifier) -> None:
    assessed = assess(learned, PLAIN_TEXTS, Thresholds())
    flagged = {
        text: each.flagged for text, each in zip(PLAIN_TEXTS, assessed, strict=True) if each.flagged
    }
    assert flagged == {}


def test_the_default_classifier_is_the_learned_model() -> None:
    classifier = load_classifier(None)
    assert classifier.name == "vet-linear"
    assert classifier.version.endswith(f"+corpus-{corpus_hash()[:12]}")


def test_training_is_deterministic_and_gives_the_shipped_artefact(tmp_path: Path) -> None:
    runner = CliRunner()
    digests = []
    for name in ("first", "second"):
        result = runner.invoke(moderation, ["train", "--output", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        assert "calibrated thresholds" in result.output
        digests.append(Artefact.load(tmp_path / name).meta["sha256"])
        assert (tmp_path / name / ARRAYS_FILE).read_bytes() == (
            tmp_path / "first" / ARRAYS_FILE
        ).read_bytes()
    assert digests[0] == digests[1]
    # The shipped artefact is what the shipped corpus trains: the same n-grams, and weights and
    # calibrated thresholds equal to 1e-5 of the largest weight (10). Not bit for bit: BLAS
    # takes other paths on other CPUs (an AMD EPYC moved weights by up to 4e-5, and two
    # thresholds by 3e-6, from what an Intel machine computed).
    shipped = Artefact.load(MODEL_DIR).meta
    assert shipped["corpus_sha256"] == corpus_hash(), "run `pawhub moderation train`"
    calibrated = [
        json.loads((folder / META_FILE).read_text())["calibrated"]
        for folder in (MODEL_DIR, tmp_path / "first")
    ]
    assert calibrated[1] == pytest.approx(calibrated[0], abs=1e-4)
    with (
        np.load(MODEL_DIR / ARRAYS_FILE, allow_pickle=False) as ours,
        np.load(tmp_path / "first" / ARRAYS_FILE, allow_pickle=False) as theirs,
    ):
        assert ours.files == theirs.files
        for name in ours.files:
            if ours[name].dtype.kind == "f":
                assert np.allclose(ours[name], theirs[name], rtol=0, atol=1e-4), name
            else:
                assert np.array_equal(ours[name], theirs[name]), name


def test_the_artefact_is_small_and_pickle_free() -> None:
    assert (MODEL_DIR / ARRAYS_FILE).stat().st_size < 3_000_000
    with np.load(MODEL_DIR / ARRAYS_FILE, allow_pickle=False) as arrays:
        assert {"weights", "intercepts", "word_vocabulary", "char_vocabulary"} <= set(arrays)


def test_a_tampered_artefact_is_refused(tmp_path: Path) -> None:
    shutil.copytree(MODEL_DIR, tmp_path / "model")
    arrays = tmp_path / "model" / ARRAYS_FILE
    payload = bytearray(arrays.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    arrays.write_bytes(bytes(payload))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        LearnedClassifier(tmp_path / "model")


def test_an_artefact_of_other_features_is_refused(tmp_path: Path) -> None:
    shutil.copytree(MODEL_DIR, tmp_path / "model")
    meta_file = tmp_path / "model" / META_FILE
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "features_version": "0"}))
    with pytest.raises(ModelIntegrityError, match="pawhub moderation train"):
        LearnedClassifier(tmp_path / "model")


def test_flags_name_the_model_its_version_and_corpus(learned: LearnedClassifier) -> None:
    [threat, clinical] = assess(
        learned,
        ["I'm going to kill you after your shift", "Spay the bitch before her next heat"],
        Thresholds(),
    )
    assert "threat" in threat.flagged and "threat" in threat.blocking
    assert threat.reason.endswith(f"(vet-linear {learned.version})")
    assert learned.version == learned.meta["version"]
    assert clinical.flagged == {}


def test_scores_cover_every_label_and_the_umbrella_is_highest(learned: LearnedClassifier) -> None:
    texts = ["hello", "you useless moron", "", "call me on 07700 900123", "I hope you burn"]
    results = learned.score_batch(texts)
    assert len(results) == len(texts) and learned.score_batch([]) == []
    for scores in results:
        assert set(scores) == set(learned.labels)
        assert all(0.0 <= score <= 1.0 for score in scores.values())
        assert scores["toxicity"] == max(v for k, v in scores.items() if k != "pii")
    assert results[3]["pii"] == 1.0 and results[0]["pii"] == 0.0


def test_pickles_cheaply_and_scores_the_same(learned: LearnedClassifier) -> None:
    payload = pickle.dumps(learned)
    assert len(payload) < 500  # loaded in the worker, not shipped with the arrays
    assert pickle.loads(payload).score_batch(["you idiot"]) == learned.score_batch(["you idiot"])


def test_word_tfidf_equals_scikit_learn() -> None:
    texts = [normalize(example.text) for example in load_examples(corpus_split("dev"))]
    texts += ["", "a", "ab  cd\tef", "!!! ???", "x" * 40]
    reference = TfidfVectorizer(
        sublinear_tf=True, min_df=2, token_pattern=WORD_PATTERN, ngram_range=WORD_NGRAMS
    ).fit(texts)
    expected = reference.transform(texts)
    actual = tfidf(word_columns(texts, reference.vocabulary_), reference.idf_)
    assert actual.shape == expected.shape
    assert abs(actual - expected).max() < 1e-9


def test_character_ngrams_are_hashed_within_each_message() -> None:
    rows, hashes = char_hashes(["ab cd", "AB   cd", "", "x"])
    # " ab cd " has 5 + 4 + 3 n-grams of 3, 4 and 5 characters; "" has none; " x " one.
    assert np.bincount(rows).tolist() == [12, 12, 0, 1]
    assert sorted(hashes[rows == 0].tolist()) == sorted(hashes[rows == 1].tolist())
    vocabulary, idf = fit_char_vocabulary(["ab cd", "ab cd!", "zz"])
    # Shared by both texts: " ab", "ab ", "b c", " cd", " ab ", "ab c", "b cd", " ab c", "ab cd"
    assert len(vocabulary) == 9 and (np.diff(vocabulary.astype(np.float64)) > 0).all()
    counts = char_columns(["ab cd", "zz", "ab"], vocabulary).toarray()
    assert counts.sum(axis=1).tolist() == [9, 0, 3]  # " ab", "ab ", " ab "
    assert idf.shape == (9,)


def test_corpus_hash_covers_every_split(tmp_path: Path) -> None:
    copy = tmp_path / "corpus"
    shutil.copytree(CORPUS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = corpus_hash(copy)
    with (copy / "test.jsonl").open("a") as test:
        test.write('{"category": "everyday", "labels": [], "text": "one more"}\n')
    assert corpus_hash(copy) != before == corpus_hash()
