"""Worker passwords, kept only as argon2id hashes (argon2-cffi's ``PasswordHasher``, RFC 9106's parameters).

A check against an unknown account still hashes (against a dummy hash made with the same parameters), so
that how long a sign-in takes does not tell which account names exist. A hash made with other parameters
than the hasher's (older defaults, say) still verifies, and ``needs_rehash`` says to store a new one.
"""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256


def check_password(password: str) -> None:
    """ValueError, saying what is wrong but never repeating the password, unless it is an acceptable one."""
    if not isinstance(password, str):
        raise ValueError("password: expected text")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password: too short, it must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"password: too long, it must be at most {MAX_PASSWORD_LENGTH} characters long")


class Passwords:
    """Hashes and checks passwords with one argon2id hasher (argon2-cffi's defaults unless given one)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()

    def hash(self, password: str) -> str:
        """The argon2id hash of an acceptable password (``check_password``)."""
        check_password(password)
        return self.hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether ``password`` is the one hashed; ``stored_hash`` None (no such account) hashes all the same
        and is never a match."""
        try:
            self.hasher.verify(stored_hash or self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        return self.hasher.check_needs_rehash(stored_hash)

    @functools.cached_property
    def _dummy_hash(self) -> str:
        return self.hasher.hash(secrets.token_urlsafe(MIN_PASSWORD_LENGTH))
