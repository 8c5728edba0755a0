"""Call quality levels for the `quality` event: 0 (unusable) to 5 (excellent).

Each measure gets a level from its own thresholds below, and the call's level is the worst of
the three, because any one of them alone can ruin a video call. A measure at or under a
threshold earns that threshold's level; past the last threshold it earns 0.

| level | round-trip time | packet loss (fraction) | jitter |
| --- | --- | --- | --- |
| 5 | <= 150 ms | <= 0.01 | <= 30 ms |
| 4 | <= 250 ms | <= 0.03 | <= 50 ms |
| 3 | <= 400 ms | <= 0.05 | <= 75 ms |
| 2 | <= 600 ms | <= 0.10 | <= 100 ms |
| 1 | <= 1000 ms | <= 0.20 | <= 200 ms |
| 0 | more | more | more |

The round-trip and jitter bands follow ITU-T G.114 (150 ms one way is the comfort limit of
conversation); the loss bands follow what VP8 and Opus conceal well (a percent or two).
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_LEVEL = 5

RTT_MS_BANDS = (150.0, 250.0, 400.0, 600.0, 1000.0)
LOSS_BANDS = (0.01, 0.03, 0.05, 0.10, 0.20)
JITTER_MS_BANDS = (30.0, 50.0, 75.0, 100.0, 200.0)


def _level(value: float, bands: Sequence[float]) -> int:
    for steps_down, limit in enumerate(bands):
        if value <= limit:
            return MAX_LEVEL - steps_down
    return 0


def quality_level(rtt_ms: float, packet_loss: float, jitter_ms: float) -> int:
    """The level (0-5) of a call measuring `rtt_ms`, `packet_loss` (lost / sent, 0-1) and
    `jitter_ms`; the worst of the three measures' levels."""
    if rtt_ms < 0 or jitter_ms < 0 or not 0 <= packet_loss <= 1:
        raise ValueError("rtt and jitter must be >= 0 and packet loss within 0-1")
    return min(
        _level(rtt_ms, RTT_MS_BANDS),
        _level(packet_loss, LOSS_BANDS),
        _level(jitter_ms, JITTER_MS_BANDS),
    )
