"""Identity: accounts and roles (`accounts`), the users repository, access and refresh tokens,
login and registration limits, and the role rules guards apply (`permissions`)."""

from domain.identity.accounts import NewUser, Role, User, hash_password, verify_password

__all__ = ["NewUser", "Role", "User", "hash_password", "verify_password"]
