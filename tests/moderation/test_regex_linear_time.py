"""Every regex that reads chat text scans hostile input in linear time (the abuse rules run on
RE2, linear by construction: `tests/moderation/test_abuse_rules_engine.py`).

Python's `re` backtracks, so a pattern with overlapping quantifiers can cost exponential time at
one position (the old phone pattern split each run of digits every possible way: 0.3 s on
4 KB). For each pattern, many input families (runs of digits, `+`, spaces, dots, letters and the
pattern's own words, in blocks) are scanned at 4 KB; the costliest are scanned again at 16 KB.
Linear work grows 4x; the bound is 10x. And no family may cost far more per character than
ordinary prose, which catches a large constant as well as a steep curve.
"""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from moderation import abuse_rules, default_model, ngrams, normalize, pii, vet_context

ROOT = Path(__file__).resolve().parents[2]
SCANNED_MODULES: tuple[ModuleType, ...] = (
    pii,
    abuse_rules,
    normalize,
    vet_context,
    default_model,
    ngrams,
)
SMALL, LARGE = 4 * 1024, 16 * 1024
GROWTH_BOUND = 10  # linear is 4x, quadratic 16x
PROSE_BOUND = 25  # per character, against ordinary prose
SLACK_S = 0.025  # timer and scheduler noise on a busy machine

UNITS = ("1", "+", "+1", " ", ".", "-", "a", "a ", "a.", "a-", "(1)", "@", "*", "'", "!", "$", "u")
BLOCK_SEPARATORS = ("", " ", "x", "\n")
PROSE = "The dog ate 2.5 kg of kibble today, please call the clinic at noon if he is sick. "


def _patterns(value: object) -> Iterator[re.Pattern[str]]:
    if isinstance(value, re.Pattern):
        yield value
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _patterns(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _patterns(item)


def _all_patterns() -> dict[str, re.Pattern[str]]:
    found: dict[str, re.Pattern[str]] = {}
    for module in SCANNED_MODULES:
        for name, value in vars(module).items():
            for index, pattern in enumerate(_patterns(value)):
                if pattern not in found.values():
                    found[f"{module.__name__}.{name}[{index}]"] = pattern
    return found


PATTERNS = _all_patterns()


def _fill(block: str, size: int) -> str:
    return (block * (size // len(block) + 1))[:size]


def _families(pattern: re.Pattern[str]) -> list[str]:
    words = sorted({word + " " for word in re.findall(r"[a-z']{2,}", pattern.pattern)})
    blocks = list(UNITS) + words
    for unit in (*UNITS, *words[:20]):
        blocks += [unit * 33 + separator for separator in BLOCK_SEPARATORS[1:]]
    return blocks


def _scan_time(pattern: re.Pattern[str], text: str, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _match in pattern.finditer(text):
            pass
        best = min(best, time.perf_counter() - started)
    return best


@pytest.fixture(autouse=True)
def _no_collector_pauses() -> Iterator[None]:
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def test_every_module_with_a_regex_is_scanned() -> None:
    scanned = {Path(module.__file__ or "").name for module in SCANNED_MODULES}
    with_regexes = {
        path.name
        for folder in ("moderation", "realtime")
        for path in (ROOT / folder).glob("*.py")
        if "re.compile(" in path.read_text()
    }
    assert with_regexes <= scanned


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pattern_scans_hostile_input_in_linear_time(name: str) -> None:
    pattern = PATTERNS[name]
    small_times = {
        block: _scan_time(pattern, _fill(block, SMALL), 1) for block in _families(pattern)
    }
    costliest = sorted(small_times, key=small_times.__getitem__, reverse=True)[:3]
    prose = _scan_time(pattern, _fill(PROSE, LARGE), 3)
    for block in costliest:
        small = _scan_time(pattern, _fill(block, SMALL), 3)
        large = _scan_time(pattern, _fill(block, LARGE), 3)
        if large >= min(GROWTH_BOUND * small, PROSE_BOUND * prose) + SLACK_S:
            # Another process's burst only adds time: look again, longer, before calling it slow.
            large = min(large, _scan_time(pattern, _fill(block, LARGE), 10))
        assert large < GROWTH_BOUND * small + SLACK_S, (block, small, large)
        assert large < PROSE_BOUND * prose + SLACK_S, (block, prose, large)


def test_the_old_phone_pattern_is_caught() -> None:
    """The measure above fails the pattern the issue found (so it can fail at all)."""
    old = re.compile(
        r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,5}(?:[ .-]?\d{1,5}){1,5}(?![\w])"
    )
    block = max(_families(old), key=lambda block: _scan_time(old, _fill(block, SMALL), 1))
    prose = _scan_time(old, _fill(PROSE, LARGE), 3)
    assert _scan_time(old, _fill(block, LARGE), 1) > PROSE_BOUND * prose + SLACK_S


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("1" * 33 + " ", False),
        ("call 07700 900123", True),
        ("ref 07700900123x", False),
        ("+44 7700 900456 or +1 555 201 3344", True),
    ],
)
def test_phone_numbers_still_read_as_before(text: str, phone: bool) -> None:
    assert (pii.PiiKind.PHONE in pii.find_pii(text)) is phone
