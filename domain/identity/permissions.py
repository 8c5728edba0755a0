"""Who may do what, by role. Rules about one resource (whose pet it is, who is booked with it)
live beside that resource's queries; these are the role rules the guards apply."""

from __future__ import annotations

from uuid import UUID

from domain.identity import Role
from domain.identity.tokens import Principal


def may_create_users(role: Role) -> bool:
    return role is Role.admin


def may_own_pets(role: Role) -> bool:
    return role is Role.owner


def may_book(role: Role) -> bool:
    return role is Role.owner


def may_write_records(role: Role) -> bool:
    return role is Role.vet


def may_set_availability(principal: Principal, vet_id: UUID) -> bool:
    """A vet publishes their own hours; an admin may publish anyone's."""
    if principal.role is Role.admin:
        return True
    return principal.role is Role.vet and principal.user_id == vet_id
