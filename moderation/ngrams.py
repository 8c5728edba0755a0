"""TF-IDF of word and character n-grams, fast enough for 10,000 messages/s on one core.

Words (1-2-grams) are found by a regex and looked up, a whole batch at once, in a vocabulary
fitted by scikit-learn (`word_ngrams` gives scikit-learn's word n-grams; a test checks both
matrices agree). Character 3-5-grams are never made into strings: the batch's text becomes one
array of code points and every n-gram a 64-bit rolling hash computed by numpy, looked up in the
sorted hashes kept at training. Both are weighted as scikit-learn's `TfidfVectorizer` weights
(sublinear tf, smooth idf, l2 norm).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain, pairwise, repeat

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]
from numpy.typing import NDArray

WORD_PATTERN = r"(?u)\b\w+\b|[!?]"  # words, and the ! and ? that carry tone
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (3, 5)
MIN_DOCUMENTS = 2  # an n-gram seen in one training message only is noise

_WORD = re.compile(WORD_PATTERN)
_MULTIPLIER = np.uint64(0x100000001B3)  # FNV-1a's 64-bit prime
_SEPARATOR = "\0"  # between messages in the batch array; no n-gram spans it

Hashes = NDArray[np.uint64]


def word_ngrams(text: str) -> list[str]:
    """Words and pairs of adjacent words (scikit-learn's `analyzer="word"`, 1-2-grams)."""
    words = _WORD.findall(text.lower())
    return words + [f"{first} {second}" for first, second in pairwise(words)]


def word_columns(texts: Sequence[str], vocabulary: Mapping[str, int]) -> sp.csr_matrix:
    """Counts of each vocabulary word n-gram per text (unknown n-grams are dropped)."""
    grams = [word_ngrams(text) for text in texts]
    lengths = np.fromiter(map(len, grams), dtype=np.int64, count=len(grams))
    flat: Iterable[str] = chain.from_iterable(grams)
    columns = np.fromiter(
        map(vocabulary.get, flat, repeat(-1)), dtype=np.int64, count=int(lengths.sum())
    )
    rows = np.repeat(np.arange(len(texts)), lengths)
    return _counts(rows, columns, len(texts), len(vocabulary))


def char_hashes(texts: Sequence[str]) -> tuple[NDArray[np.int64], Hashes]:
    """(row, hash) of every character 3-5-gram of each text, read with whitespace collapsed
    and one space added at each end (so " cat" and "cat " mark a word's edges)."""
    padded = [f" {' '.join(text.lower().split())} " for text in texts]
    codes = np.frombuffer(_SEPARATOR.join(padded).encode("utf-32-le"), dtype=np.uint32)
    codes = codes.astype(np.uint64)
    separators = np.concatenate([[0], np.cumsum(codes == 0)])  # separators before each index
    rows_of, hashes_of = [], []
    low, high = CHAR_NGRAMS
    with np.errstate(over="ignore"):  # the hash wraps around 2**64 on purpose
        for n in range(low, high + 1):
            windows = len(codes) - n + 1
            if windows <= 0:
                continue
            hashed = np.full(windows, n, dtype=np.uint64)
            for offset in range(n):
                hashed = (hashed ^ codes[offset : offset + windows]) * _MULTIPLIER
            inside = separators[n : n + windows] == separators[:windows]
            rows_of.append(separators[:windows][inside])  # a message's index: separators before it
            hashes_of.append(hashed[inside])
    rows = np.concatenate(rows_of) if rows_of else np.zeros(0, dtype=np.int64)
    hashes = np.concatenate(hashes_of) if hashes_of else np.zeros(0, dtype=np.uint64)
    return rows.astype(np.int64), hashes


def char_columns(texts: Sequence[str], vocabulary: Hashes) -> sp.csr_matrix:
    """Counts of each kept character n-gram (`vocabulary`: sorted hashes) per text."""
    rows, hashes = char_hashes(texts)
    positions = np.searchsorted(vocabulary, hashes)
    positions[positions == len(vocabulary)] = 0
    known = vocabulary[positions] == hashes if len(vocabulary) else np.zeros(0, dtype=bool)
    columns = np.where(known, positions, -1)
    return _counts(rows, columns, len(texts), len(vocabulary))


def fit_char_vocabulary(texts: Sequence[str]) -> tuple[Hashes, NDArray[np.float64]]:
    """The sorted hashes of the character n-grams in at least `MIN_DOCUMENTS` texts, and their
    smooth idf (as scikit-learn computes it)."""
    rows, hashes = char_hashes(texts)
    pairs = np.unique(np.stack([hashes, rows.astype(np.uint64)]), axis=1)
    unique, documents = np.unique(pairs[0], return_counts=True)
    kept = documents >= MIN_DOCUMENTS
    idf = np.log((1 + len(texts)) / (1 + documents[kept])) + 1.0
    return unique[kept], idf


def _counts(
    rows: NDArray[np.int64], columns: NDArray[np.int64], texts: int, features: int
) -> sp.csr_matrix:
    known = columns >= 0
    counts = sp.csr_matrix(
        (np.ones(int(known.sum())), (rows[known], columns[known])), shape=(texts, features)
    )
    counts.sum_duplicates()
    return counts


def tfidf(counts: sp.csr_matrix, idf: NDArray[np.floating]) -> sp.csr_matrix:
    """Counts weighted as scikit-learn weights them: (1 + log tf) * idf, rows of unit length."""
    weighted = counts.astype(np.float64)
    weighted.data = (np.log(weighted.data) + 1.0) * idf[weighted.indices]
    norms = np.sqrt(weighted.multiply(weighted).sum(axis=1).A1)
    norms[norms == 0] = 1.0
    weighted.data /= np.repeat(norms, np.diff(weighted.indptr))
    return weighted
