"""Latency histograms: HdrHistogram in microseconds, 3 significant digits, up to one hour.

Workers encode theirs (compressed, base64) and the runner decodes and adds them, so the
percentiles are those of every recorded value, not an average of per-process percentiles.
"""

from __future__ import annotations

from typing import Any

from hdrh.histogram import HdrHistogram

_HIGHEST_US = 3_600_000_000
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def new_histogram() -> Any:
    return HdrHistogram(1, _HIGHEST_US, 3)


def encode(histogram: Any) -> bytes:
    encoded: bytes = histogram.encode()
    return encoded


def merged(encoded: list[bytes]) -> Any:
    total = new_histogram()
    for blob in encoded:
        total.decode_and_add(blob)
    return total


def summary_ms(histogram: Any) -> dict[str, float | int]:
    """Count, mean, percentiles and max, in milliseconds."""
    count: int = histogram.get_total_count()
    if not count:
        return {"count": 0}
    result: dict[str, float | int] = {
        "count": count,
        "mean": round(histogram.get_mean_value() / 1000, 3),
    }
    for percentile in PERCENTILES:
        result[f"p{percentile:g}"] = histogram.get_value_at_percentile(percentile) / 1000
    result["max"] = histogram.get_max_value() / 1000
    return result


def distribution_ms(histogram: Any) -> list[list[float]]:
    """[percentile, latency ms] points for an HDR-style percentile plot."""
    if not histogram.get_total_count():
        return []
    return [
        [item.percentile_level_iterated_to, item.value_iterated_to / 1000]
        for item in histogram.get_percentile_iterator(5)
        if item.percentile_level_iterated_to > 0  # the iterator's p0 is not a recorded value
    ]
