"""pawhub's tele-vet moderation corpus: labelled messages (`train`, `dev` and `test.jsonl`),
the categories that label them (`categories`), and how train and dev are composed from
hand-written templates (`compose`)."""

from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parent
