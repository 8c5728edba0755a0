"""Measured moderation quality: labelled tele-vet messages and the evaluator behind
`pawhub moderation eval`.

The corpus's test split (`moderation/corpus/test.jsonl`) is the release measure. The two older
sets stay as further holdouts: `messages.jsonl` is the development set the rules were written
against; `holdout.jsonl` was written afterwards to measure how the rules generalise. Each line is
`{"category": ..., "labels": [...], "text": ...}`; benign categories have no labels.
"""
