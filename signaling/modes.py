"""How a consult's call carries media (p2p, sfu or livekit), and who is polite.

- `p2p` for a consult of two participants (its vet and owner): media flows between them.
- `sfu` for more participants, or when the first to join asks for it: everyone sends to the
  hub's embedded SfuRoom (`to: "sfu"`).
- `livekit` when LiveKit is configured and the consult has more than SFU_MAX_PARTICIPANTS
  participants; without LiveKit such a consult still uses the embedded SFU.

SFU_MAX_PARTICIPANTS is 4: the embedded SFU forwards each published track to every other
participant, N(N-1) streams packetized in the hub's Python (bench/media: ~4 % of a core for a
three-person 640x480 consult, ~0.5 % per subscriber stream); bigger calls belong to LiveKit.

The mode is fixed when the call starts (the first join) and kept while anyone is in it, with
one exception: the hub records only media that passes through its SFU, so when a recording
starts in a p2p call the call moves to sfu (`mode_for_recording`), everyone in it is told
(`mode {consult_id, mode}`) and renegotiates with the SFU; it stays in sfu after the recording
stops (moving back would cost everyone a second renegotiation for no gain).
"""

from __future__ import annotations

from enum import StrEnum

from domain.scheduling.consults import ParticipantRole

SFU_MAX_PARTICIPANTS = 4
P2P_MAX_PARTICIPANTS = 2


class Mode(StrEnum):
    p2p = "p2p"
    sfu = "sfu"
    livekit = "livekit"


def choose_mode(participants: int, *, wants_sfu: bool, livekit_configured: bool) -> Mode:
    """The mode of a call starting now in a consult of `participants` participants."""
    if participants > SFU_MAX_PARTICIPANTS and livekit_configured:
        return Mode.livekit
    if participants > P2P_MAX_PARTICIPANTS or wants_sfu:
        return Mode.sfu
    return Mode.p2p


def mode_for_recording(mode: Mode) -> Mode:
    """The mode a call in `mode` records in (LiveKit records a livekit call itself)."""
    return Mode.sfu if mode is Mode.p2p else mode


def is_polite(mode: Mode, role: ParticipantRole) -> bool:
    """Perfect negotiation's `polite` flag. The hub's SfuRoom is the impolite side, so everyone
    is polite in sfu mode; in p2p (a vet and an owner) the vet is impolite and everyone else
    polite, so each pair has exactly one polite side whatever the order of joining."""
    return mode is not Mode.p2p or role is not ParticipantRole.vet
