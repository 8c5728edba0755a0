"""Rule violations every domain function may raise; the transports map each to one answer
(REST: a problem+json status; the hub: an error code)."""

from __future__ import annotations


class DomainError(Exception):
    """A request the rules refuse; the message is safe to show to the caller."""


class NotFound(DomainError):
    """No such resource, or the caller may not see it (the two are indistinguishable)."""


class Forbidden(DomainError):
    """The caller sees the resource but may not do this to it."""


class Conflict(DomainError):
    """The request clashes with the resource's current state (a taken slot, a locked record)."""


class Invalid(DomainError):
    """Well-formed input that breaks a rule (a booking outside the vet's hours)."""


class RateLimited(DomainError):
    """Too many attempts; retry after `retry_after_s` seconds."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
