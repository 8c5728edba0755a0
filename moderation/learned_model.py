"""The default model: a linear classifier per label over word and character n-grams, learned
from pawhub's tele-vet corpus (`moderation/corpus/`) by `pawhub moderation train`.

A message is normalised (`moderation.normalize`: disguises undone), then read as TF-IDF word
1-2-grams and hashed character 3-5-grams (`moderation.ngrams`), stacked with the abuse rules' four
scores and alt-profanity-check's probability on its clinical reading. One logistic regression
per label scores it (a blend of one on these features and one on n-grams scaled by their
log-count ratios, NBSVM-style: see `moderation.training`; both fold into one weight vector).
Each label's threshold, calibrated on the dev split, is mapped onto the configured threshold of
that label (`moderation.thresholds.DEFAULT_THRESHOLDS`), so configuration keeps its meaning.
`pii` comes from the PII detector, not from the corpus.

The artefact (`moderation/model/`) is a zip of `.npy` arrays read without pickle, beside a JSON
file recording its sha256, version, corpus hash and calibration; loading verifies the sha256.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]
from numpy.typing import NDArray

from moderation.abuse_rules import ALL_RULE_LABELS, abuse_scores
from moderation.classifier import Scores
from moderation.labels import Label
from moderation.ngrams import char_columns, tfidf, word_columns
from moderation.normalize import normalize
from moderation.pii import find_pii
from moderation.thresholds import DEFAULT_THRESHOLDS
from moderation.vet_context import clinical_reading

MODEL_NAME = "vet-linear"
MODEL_DIR = Path(__file__).resolve().parent / "model"
ARRAYS_FILE = "vet-linear.npz"
META_FILE = "vet-linear.json"
# Bump when the features change: an artefact trained on other features is refused.
FEATURES_VERSION = "2"
LEARNED_LABELS: tuple[str, ...] = (
    Label.TOXICITY,
    Label.INSULT,
    Label.THREAT,
    Label.HARASSMENT,
    Label.SEXUAL,
)
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # a zip entry's time, fixed so equal models hash equal


class ModelIntegrityError(RuntimeError):
    """The shipped artefact is not the one its metadata describes (or was built differently)."""


@dataclass(frozen=True)
class Vocabularies:
    """The n-grams the model knows, their columns and idf weights."""

    word: dict[str, int]
    word_idf: NDArray[np.float64]
    char: NDArray[np.uint64]  # sorted hashes of character n-grams (`moderation.ngrams`)
    char_idf: NDArray[np.float64]

    @classmethod
    def of(
        cls,
        word: list[str],
        word_idf: NDArray[np.floating],
        char: NDArray[np.uint64],
        char_idf: NDArray[np.floating],
    ) -> Vocabularies:
        return cls(
            word={term: index for index, term in enumerate(word)},
            word_idf=np.asarray(word_idf, dtype=np.float64),
            char=np.asarray(char, dtype=np.uint64),
            char_idf=np.asarray(char_idf, dtype=np.float64),
        )


class ProfanityScorer:
    """alt-profanity-check's probability on the clinical reading of normalised text."""

    def __init__(self) -> None:
        # Imported here: loading its pickled model takes a moment and belongs to the worker.
        from profanity_check import profanity_check

        self._vectorizer: Any = profanity_check.vectorizer
        self._model: Any = profanity_check.model
        self.version = package_version("alt-profanity-check")

    def __call__(self, normalized: Sequence[str]) -> NDArray[np.float64]:
        readings = [clinical_reading(text) for text in normalized]
        probabilities: NDArray[np.float64] = self._model.predict_proba(
            self._vectorizer.transform(readings)
        )[:, 1]
        return probabilities


def stacked_features(
    normalized: Sequence[str], vocabularies: Vocabularies, profanity: ProfanityScorer
) -> sp.csr_matrix:
    """Word n-grams, character n-grams, the four rule scores and the profanity probability."""
    rules = np.array(
        [[scores[label] for label in ALL_RULE_LABELS] for scores in map(abuse_scores, normalized)],
        dtype=np.float32,
    ).reshape(len(normalized), len(ALL_RULE_LABELS))
    dense = np.hstack([rules, profanity(normalized)[:, None].astype(np.float32)])
    matrix: sp.csr_matrix = sp.hstack(
        [
            tfidf(word_columns(normalized, vocabularies.word), vocabularies.word_idf),
            tfidf(char_columns(normalized, vocabularies.char), vocabularies.char_idf),
            sp.csr_matrix(dense),
        ],
        format="csr",
    )
    return matrix


def to_configured_scale(
    probabilities: NDArray[np.float64], calibrated: float, configured: float
) -> NDArray[np.float64]:
    """Map probabilities monotonically so that `calibrated` lands on `configured`: a score
    crosses the configured threshold exactly when the probability crosses the calibrated one."""
    below = probabilities * (configured / calibrated)
    above = configured + (probabilities - calibrated) * ((1 - configured) / (1 - calibrated))
    return np.clip(np.where(probabilities < calibrated, below, above), 0.0, 1.0)


@dataclass(frozen=True)
class Artefact:
    """What `pawhub moderation train` writes: vocabularies, weights and calibration."""

    word_vocabulary: list[str]
    word_idf: NDArray[np.float32]
    char_vocabulary: NDArray[np.uint64]
    char_idf: NDArray[np.float32]
    weights: NDArray[np.float32]  # (features, labels)
    intercepts: NDArray[np.float32]  # (labels,)
    calibrated: dict[str, float]  # the probability threshold of each label, from dev
    meta: dict[str, Any]  # version, corpus hash, training parameters, dev figures

    def arrays_bytes(self) -> bytes:
        """The arrays as a zip of `.npy` files, byte for byte the same for the same model."""
        arrays = {
            "word_vocabulary": np.array(self.word_vocabulary, dtype=np.str_),
            "word_idf": self.word_idf,
            "char_vocabulary": self.char_vocabulary,
            "char_idf": self.char_idf,
            "weights": self.weights,
            "intercepts": self.intercepts,
        }
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, array in arrays.items():
                entry = io.BytesIO()
                np.save(entry, array, allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, entry.getvalue())
        return buffer.getvalue()

    def save(self, directory: Path) -> str:
        """Write the arrays and the metadata (with the arrays' sha256); the sha256."""
        directory.mkdir(parents=True, exist_ok=True)
        payload = self.arrays_bytes()
        digest = hashlib.sha256(payload).hexdigest()
        (directory / ARRAYS_FILE).write_bytes(payload)
        meta = {**self.meta, "calibrated": self.calibrated, "sha256": digest}
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return digest

    @classmethod
    def load(cls, directory: Path = MODEL_DIR) -> Artefact:
        """Read an artefact, refusing one whose bytes do not match the recorded sha256."""
        meta = json.loads((directory / META_FILE).read_text())
        payload = (directory / ARRAYS_FILE).read_bytes()
        if hashlib.sha256(payload).hexdigest() != meta["sha256"]:
            raise ModelIntegrityError(f"{directory / ARRAYS_FILE} does not match its sha256")
        if meta["features_version"] != FEATURES_VERSION:
            raise ModelIntegrityError(
                f"the model was trained on features v{meta['features_version']}, this code "
                f"computes v{FEATURES_VERSION}: run `pawhub moderation train`"
            )
        with np.load(io.BytesIO(payload), allow_pickle=False) as arrays:
            return cls(
                word_vocabulary=arrays["word_vocabulary"].tolist(),
                word_idf=arrays["word_idf"],
                char_vocabulary=arrays["char_vocabulary"],
                char_idf=arrays["char_idf"],
                weights=arrays["weights"],
                intercepts=arrays["intercepts"],
                calibrated=dict(meta.pop("calibrated")),
                meta=meta,
            )


class LearnedClassifier:
    """The shipped learned model, or one trained elsewhere (`directory`)."""

    name = MODEL_NAME
    labels: tuple[str, ...] = tuple(Label)

    def __init__(
        self,
        directory: Path = MODEL_DIR,
        configured: Mapping[str, float] = DEFAULT_THRESHOLDS,
    ) -> None:
        self._directory = directory
        artefact = Artefact.load(directory)
        self._vocabularies = Vocabularies.of(
            artefact.word_vocabulary, artefact.word_idf, artefact.char_vocabulary, artefact.char_idf
        )
        self._weights = artefact.weights.astype(np.float64)
        self._intercepts = artefact.intercepts.astype(np.float64)
        self._calibrated = [artefact.calibrated[label] for label in LEARNED_LABELS]
        self._configured = [configured[label] for label in LEARNED_LABELS]
        self._profanity = ProfanityScorer()
        self.meta = artefact.meta
        self.version = str(artefact.meta["version"])

    def __reduce__(self) -> tuple[type[LearnedClassifier], tuple[Path]]:
        # Sent to a worker process as "load it there", not as the arrays.
        return (type(self), (self._directory,))

    def probabilities(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """The raw (uncalibrated) probability of each learned label, one row per text."""
        normalized = [normalize(text) for text in texts]
        features = stacked_features(normalized, self._vocabularies, self._profanity)
        logits = features @ self._weights + self._intercepts
        return np.asarray(1.0 / (1.0 + np.exp(-logits)))

    def score_batch(self, texts: Sequence[str]) -> list[Scores]:
        if not texts:
            return []
        probabilities = self.probabilities(texts)
        columns = [
            to_configured_scale(probabilities[:, index], calibrated, configured)
            for index, (calibrated, configured) in enumerate(
                zip(self._calibrated, self._configured, strict=True)
            )
        ]
        scaled = np.column_stack(columns)
        # toxicity is the umbrella: at least as high as any abuse label (see `Label`)
        scaled[:, 0] = scaled.max(axis=1)
        return [
            {
                **dict(zip(LEARNED_LABELS, row, strict=True)),
                Label.PII: 1.0 if find_pii(text) else 0.0,
            }
            for text, row in zip(texts, scaled.tolist(), strict=True)
        ]
