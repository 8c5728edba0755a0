"""Rule violations every domain function may raise: one hierarchy, which each transport maps
once, by base class (REST: a problem+json status in `rest.problems`; the hub: an error ack code
in `realtime.protocol`). A domain error's message is what the caller reads."""

from __future__ import annotations


class DomainError(Exception):
    """A request the rules refuse; the message is safe to show to the caller."""

    @property
    def details(self) -> dict[str, object]:
        """Fields a transport adds to its refusal beside the message (none by default)."""
        return {}


class NotFound(DomainError):
    """No such resource, or the caller may not see it (the two are indistinguishable)."""


class Unauthorized(DomainError):
    """The credential is missing, forged, expired or revoked."""


class Forbidden(DomainError):
    """The caller sees the resource but may not do this to it."""


class Conflict(DomainError):
    """The request clashes with the resource's current state (a taken slot, a locked record)."""


class ConsentRequired(Conflict):
    """Recording needs the consent of everyone present; `missing` are those who have not
    given it (the hub answers `consent_required` with their ids)."""

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing

    @property
    def details(self) -> dict[str, object]:
        return {"missing": self.missing}


class Invalid(DomainError):
    """Well-formed input that breaks a rule (a booking outside the vet's hours)."""


class TooLarge(DomainError):
    """Input over one of the bounds a client can make the server hold (a message body)."""


class RateLimited(DomainError):
    """Too many attempts; retry after `retry_after_s` seconds."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(DomainError):
    """A service the rule needs (file storage, say) is out of reach: try again later."""
