"""What is checked on the send path itself, before a message is stored.

Only cheap rules run here (tens of microseconds): payment card numbers are masked so they are
never stored, and the gravest labels (threats by default) refuse the message. The learned model
scores every stored message later, off the ack path: it is fast in batches, but one message
alone costs milliseconds (alt-profanity-check's calibrated model has a fixed cost per call),
far over the send path's budget of about 100 microseconds.
"""

from __future__ import annotations

from moderation.abuse_rules import abuse_scores
from moderation.normalize import normalize
from moderation.pii import mask_card_numbers
from moderation.thresholds import Thresholds, blocking_labels
from realtime.chat import ScreenedBody


class PreSendScreen:
    def __init__(self, thresholds: Thresholds) -> None:
        self._thresholds = thresholds

    def __call__(self, body: str) -> ScreenedBody:
        masked = mask_card_numbers(body)
        if self._thresholds.block_labels:
            scores = abuse_scores(normalize(masked), self._thresholds.block_labels)
            grave = blocking_labels(scores, self._thresholds)
            if grave:
                return ScreenedBody(masked, f"not sent: it reads as {', '.join(sorted(grave))}")
        return ScreenedBody(masked)
