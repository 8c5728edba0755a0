"""Measured moderation quality: labelled tele-vet messages and the evaluator behind
`pawhub moderation eval`.

`messages.jsonl` is the development set the rules were written against; `holdout.jsonl` was
written afterwards to measure how the rules generalise. Each line is
`{"category": ..., "labels": [...], "text": ...}`; benign categories have no labels.
"""
