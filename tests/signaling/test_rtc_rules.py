"""Unit tests of /rtc's rules: quality levels, SDP checks, modes and politeness."""

from __future__ import annotations

import pytest

from domain.scheduling.consults import ParticipantRole
from signaling.modes import SFU_MAX_PARTICIPANTS, Mode, choose_mode, is_polite
from signaling.quality import quality_level
from signaling.sdp import MAX_SDP_BYTES, InvalidSdp, SdpTooLarge, check_sdp
from tests.signaling.rtc_client import MINIMAL_SDP


@pytest.mark.parametrize(
    ("rtt_ms", "packet_loss", "jitter_ms", "level"),
    [
        (0, 0, 0, 5),
        (150, 0.01, 30, 5),  # every limit is inclusive
        (151, 0, 0, 4),
        (0, 0.011, 0, 4),
        (0, 0, 31, 4),
        (400, 0.05, 75, 3),
        (600, 0.1, 100, 2),
        (1000, 0.2, 200, 1),
        (1001, 0, 0, 0),
        (0, 0.21, 0, 0),
        (0, 0, 201, 0),
        (0, 1, 0, 0),
        (100, 0.04, 10, 3),  # the worst measure decides
        (700, 0.0, 10, 1),
        (50, 0.0, 90, 2),
    ],
)
def test_quality_level_is_the_worst_measures_level(
    rtt_ms: float, packet_loss: float, jitter_ms: float, level: int
) -> None:
    assert quality_level(rtt_ms, packet_loss, jitter_ms) == level


@pytest.mark.parametrize(
    ("rtt_ms", "packet_loss", "jitter_ms"), [(-1, 0, 0), (0, 1.5, 0), (0, 0, -2)]
)
def test_quality_refuses_impossible_measures(
    rtt_ms: float, packet_loss: float, jitter_ms: float
) -> None:
    with pytest.raises(ValueError):
        quality_level(rtt_ms, packet_loss, jitter_ms)


def test_quality_never_rises_as_a_measure_worsens() -> None:
    for measure in range(3):
        levels = []
        for step in range(0, 1200, 7):
            values = [0.0, 0.0, 0.0]
            values[measure] = step / 1000 if measure == 1 else float(step)
            values[1] = min(values[1], 1.0)
            levels.append(quality_level(*values))
        assert levels == sorted(levels, reverse=True)
        assert levels[0] == 5 and levels[-1] == 0


def test_sdp_checks() -> None:
    check_sdp(MINIMAL_SDP)
    padding = "a=pad\r\n"
    fits = MINIMAL_SDP + padding * ((MAX_SDP_BYTES - len(MINIMAL_SDP)) // len(padding))
    check_sdp(fits)
    with pytest.raises(SdpTooLarge):
        check_sdp(fits + padding)
    for bad in ("", "hello", "v=1\r\nm=video 9 RTP/AVP 0\r\n", "v=0\r\ns=-\r\n", "v=0\r\nm=zz\r\n"):
        with pytest.raises(InvalidSdp):
            check_sdp(bad)


def test_modes_follow_the_size_of_the_consult() -> None:
    assert choose_mode(2, wants_sfu=False, livekit_configured=True) is Mode.p2p
    assert choose_mode(2, wants_sfu=True, livekit_configured=True) is Mode.sfu
    assert choose_mode(3, wants_sfu=False, livekit_configured=False) is Mode.sfu
    largest_sfu = SFU_MAX_PARTICIPANTS
    assert choose_mode(largest_sfu, wants_sfu=False, livekit_configured=True) is Mode.sfu
    assert choose_mode(largest_sfu + 1, wants_sfu=False, livekit_configured=True) is Mode.livekit
    assert choose_mode(largest_sfu + 1, wants_sfu=False, livekit_configured=False) is Mode.sfu


def test_exactly_one_side_of_a_p2p_pair_is_polite_and_everyone_is_with_the_sfu() -> None:
    vet, owner = ParticipantRole.vet, ParticipantRole.owner
    assert [is_polite(Mode.p2p, role) for role in (vet, owner)] == [False, True]
    assert all(is_polite(Mode.sfu, role) for role in ParticipantRole)
