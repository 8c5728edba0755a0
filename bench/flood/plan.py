"""What a flood run does: the legitimate room, the attacks in turn and their budgets."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# The attacks, in the order a run makes them (see bench/flood/attacks.py).
ATTACKS = ("history", "typing", "continuation", "binary")
NO_FLOOD = "no flood"  # the phase the attacks are compared with
SEND_LIMIT_PER_10_S = 20  # the hub's default CHAT_RATE_LIMIT, kept on in this bench
# Issue 19's goals for a flooded phase: legitimate ack p99 within 20 % of the unflooded
# phase's, /healthz never slower than 100 ms.
ACK_P99_RATIO_GOAL = 1.2
HEALTHZ_MAX_GOAL_MS = 100.0


class PlanError(ValueError):
    """Options that cannot make a meaningful run; the message says why."""


@dataclass(frozen=True)
class Budgets:
    """The most each attack may send (an attack also stops when its phase ends)."""

    history_events: int = 20_000  # `history` events, none waiting for its ack
    typing_events: int = 100_000
    continuation_frames: int = 30_000  # empty continuation frames (6 bytes each, masked)
    binary_frames: int = 300  # 300 MB at the default frame size
    binary_frame_bytes: int = 1_000_000  # the hub's largest message

    def __post_init__(self) -> None:
        if min(asdict(self).values()) < 1:
            raise PlanError("every budget must be at least 1")


@dataclass(frozen=True)
class FloodPlan:
    members: int = 20  # legitimate members, each a distinct user
    rate: float = 20.0  # legitimate messages/s over all members, open loop
    warmup_s: float = 2.0  # before the unflooded phase, not measured
    baseline_s: float = 20.0  # the unflooded phase
    attack_s: float = 20.0  # each attack's phase
    attacks: tuple[str, ...] = ATTACKS
    settle_s: float = 2.0  # quiet between the hub's recovery and the next phase
    recover_s: float = 60.0  # the longest wait for the hub to answer everyone again
    healthz_every_s: float = 0.02
    budgets: Budgets = Budgets()

    def __post_init__(self) -> None:
        if self.members < 1 or self.rate <= 0:
            raise PlanError("need at least one member and a positive rate")
        # Keep every member well under the send limit: a refusal would measure the limit.
        if self.rate / self.members > SEND_LIMIT_PER_10_S / 10 / 2:
            raise PlanError(
                f"{self.rate / self.members:g} msg/s per member would run into the hub's send "
                f"limit ({SEND_LIMIT_PER_10_S} per 10 s): at most 1 msg/s per member"
            )
        if unknown := set(self.attacks) - set(ATTACKS):
            raise PlanError(f"unknown attacks {', '.join(sorted(unknown))}")
        if min(self.baseline_s, self.attack_s, self.healthz_every_s) <= 0:
            raise PlanError("phases and the probe interval must be positive")
        if min(self.warmup_s, self.settle_s, self.recover_s) < 0:
            raise PlanError("warm-up, settle and recovery times cannot be negative")

    @property
    def planned_s(self) -> float:
        """The run's length when the hub recovers at once."""
        return self.warmup_s + self.baseline_s + len(self.attacks) * (self.attack_s + self.settle_s)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "attacks": list(self.attacks)}  # as JSON gives it back
