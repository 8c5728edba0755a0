"""What a run does: the workload, from a scenario file and command-line overrides."""

from __future__ import annotations

import json
import signal
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
# How a storm's hub goes: killed as a crash would, or drained as a rolling update does.
STORM_SIGNALS = {"kill": signal.SIGKILL, "drain": signal.SIGTERM}
SUFFIXES = (".toml", ".json")


class WorkloadError(ValueError):
    """A scenario or option combination that cannot run; the message says why."""


@dataclass(frozen=True)
class Workload:
    """Client `c` sits in room `c % rooms`, and clients `0 .. senders-1` send, so senders
    spread over the rooms; each sender sends `rate` messages/s on a fixed timetable."""

    description: str = "custom"
    clients: int = 20
    rooms: int = 2
    senders: int = 2
    rate: float = 5.0  # messages/s per sender
    duration: float = 10.0
    warmup: float = 2.0
    processes: int = 1  # load-generator worker processes
    hub_processes: int = 1  # server processes (pawhub hubs or Node reference processes)
    users: int = 500  # distinct users; more clients than users means several devices each
    body_bytes: int = 64
    connect_concurrency: int = 100  # connects in flight per worker process
    drain: float = 10.0  # how long, after the last send, late deliveries may still arrive
    # A reconnect storm: clients 0 .. storm_clients-1 sit on hub 0, which is SIGKILLed (or
    # drained: SIGTERM) storm_at seconds into the measured window; they reconnect to the
    # others with since_seq.
    storm_clients: int = 0
    storm_at: float = 5.0
    storm_by: str = "kill"

    def __post_init__(self) -> None:
        if self.clients < 1 or self.rooms < 1 or self.rooms > self.clients:
            raise WorkloadError("need at least one client per room")
        if not 0 <= self.senders <= self.clients:
            raise WorkloadError("senders must be between 0 and the number of clients")
        if self.rate < 0 or self.duration <= 0 or self.warmup < 0:
            raise WorkloadError("rate, duration and warmup must be positive")
        if self.processes < 1 or self.hub_processes < 1 or self.users < 1:
            raise WorkloadError("processes, hub processes and users must be at least 1")
        if self.body_bytes < 1:
            raise WorkloadError("a message body needs at least 1 byte")
        if self.storm_clients:
            if self.hub_processes < 2:
                raise WorkloadError("a storm needs at least 2 hub processes: one to kill")
            if self.senders > self.clients - self.storm_clients:
                raise WorkloadError("a storm's senders sit on the surviving hubs: too few left")
            if not 0 <= self.storm_at < self.duration:
                raise WorkloadError("storm_at must fall within the measured duration")
            if self.storm_by not in STORM_SIGNALS:
                raise WorkloadError(f"storm_by is one of {', '.join(STORM_SIGNALS)}")

    @property
    def storm(self) -> bool:
        return self.storm_clients > 0

    def hub_of(self, client: int) -> int:
        """Clients spread over the hubs; in a storm the first `storm_clients` sit on hub 0
        (the one killed) and the rest spread over the others."""
        if not self.storm:
            return client % self.hub_processes
        if client < self.storm_clients:
            return 0
        return 1 + (client - self.storm_clients) % (self.hub_processes - 1)

    def sender_of(self, client: int) -> int | None:
        """The client's sender number, None for a listener; in a storm the senders are the
        first clients of the surviving hubs, so live traffic goes on through it."""
        number = client - self.storm_clients
        return number if 0 <= number < self.senders else None

    @property
    def user_count(self) -> int:
        return min(self.users, self.clients)

    def user_of(self, client: int) -> int:
        """Consecutive clients share a user, so a small room's members are distinct users."""
        return client * self.user_count // self.clients

    def room_of(self, client: int) -> int:
        return client % self.rooms

    def room_sizes(self) -> list[int]:
        return [
            self.clients // self.rooms + (room < self.clients % self.rooms)
            for room in range(self.rooms)
        ]

    @property
    def offered_sends_per_s(self) -> float:
        return self.senders * self.rate

    @property
    def offered_deliveries_per_s(self) -> float:
        sizes = self.room_sizes()
        return sum(self.rate * sizes[self.room_of(sender)] for sender in range(self.senders))

    def side_by_side(self, copies: int) -> Workload:
        """`copies` of this workload, one per hub process: that many times the clients, rooms,
        senders and users. Client c sits in room c % rooms and on hub c % copies, and `copies`
        divides the rooms, so all of a room's clients sit on one hub (room r on hub
        r % copies) and each hub carries one copy."""
        return replace(
            self,
            clients=self.clients * copies,
            rooms=self.rooms * copies,
            senders=self.senders * copies,
            users=self.users * copies,
            hub_processes=copies,
        )

    def with_overrides(self, **overrides: Any) -> Workload:
        """This workload with the given options; the description names what they changed,
        so a report and its plot never describe the scenario as it was before."""
        given = {name: value for name, value in overrides.items() if value is not None}
        changed = [
            f"{name} {value}"
            for name, value in given.items()
            if name != "description" and value != getattr(self, name)
        ]
        if changed and "description" not in given:
            given["description"] = f"{self.description}; with {', '.join(changed)}"
        return replace(self, **given)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_scenario(name_or_path: str) -> Workload:
    """`name` is `bench/scenarios/<name>.toml` (or `.json`); a path to a file works too."""
    candidates = [Path(name_or_path)] + [SCENARIOS / f"{name_or_path}{ext}" for ext in SUFFIXES]
    path = next((path for path in candidates if path.is_file()), None)
    if path is None:
        known = ", ".join(sorted({p.stem for p in SCENARIOS.iterdir() if p.suffix in SUFFIXES}))
        raise WorkloadError(f"no scenario {name_or_path!r} (known: {known})")
    text = path.read_text()
    data: dict[str, Any] = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    known_fields = {field.name for field in fields(Workload)}
    if unknown := set(data) - known_fields:
        raise WorkloadError(f"{path.name}: unknown settings {', '.join(sorted(unknown))}")
    return Workload(**data)


def per_sender_rate(senders: int, total_rate: float) -> float:
    return total_rate / senders if senders else 0.0
