"""How a consult's call carries media (p2p, sfu or livekit), and who is polite.

- `p2p` for a consult of two participants (its vet and owner): media flows between them.
- `sfu` for more participants, or when the first to join asks for it: everyone sends to the
  hub's embedded SfuRoom (`to: "sfu"`).
- `livekit` when LiveKit is configured and the consult has more than SFU_MAX_PARTICIPANTS
  participants; without LiveKit such a consult still uses the embedded SFU.

SFU_MAX_PARTICIPANTS is 4: the embedded SFU decodes each published track once and encodes it
once per subscriber, so N participants cost N decodes and N(N-1) encodes; bench/media measured
a three-person consult at 640x480 at about a third of a core and five at about one core.

The mode is fixed when the call starts (the first join) and kept while anyone is in it.
"""

from __future__ import annotations

from enum import StrEnum

from domain.consults import ParticipantRole

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


def is_polite(mode: Mode, role: ParticipantRole) -> bool:
    """Perfect negotiation's `polite` flag. The hub's SfuRoom is the impolite side, so everyone
    is polite in sfu mode; in p2p (a vet and an owner) the vet is impolite and everyone else
    polite, so each pair has exactly one polite side whatever the order of joining."""
    return mode is not Mode.p2p or role is not ParticipantRole.vet
