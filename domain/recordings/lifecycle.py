"""A recording's states and what moves it between them.

`recording` while everyone present in the call has consented; `paused` (nothing written)
while someone present has not, be it a late joiner or a withdrawal, until they do or leave;
`stopped` by the vet, or when the vet leaves; `interrupted` when the hub recording it died;
`failed` when its media could not be kept. The last three are final.
"""

from __future__ import annotations

from enum import StrEnum


class RecordingState(StrEnum):
    recording = "recording"
    paused = "paused"
    stopped = "stopped"
    interrupted = "interrupted"
    failed = "failed"

    @property
    def live(self) -> bool:
        return self in (RecordingState.recording, RecordingState.paused)


def settled(state: RecordingState, *, everyone_consents: bool) -> RecordingState:
    """The state a live recording takes once consent changed or people came or went."""
    if state is RecordingState.recording and not everyone_consents:
        return RecordingState.paused
    if state is RecordingState.paused and everyone_consents:
        return RecordingState.recording
    return state
