"""Signed-in workers: a random token in the ``portal_session`` cookie, only its SHA-256 in the state file.

A copy of the state file therefore signs no one in. Each session has its own CSRF token, which every form
and the crowd form's JSON post must repeat; a session lasts ``SESSION_TTL_S`` from sign-in, whatever is
done with it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from local_aws.sagemaker_service.store import StateDb

SESSION_COOKIE = "portal_session"
SESSION_TTL_S = 8 * 3600
TOKEN_BYTES = 32


@dataclass(frozen=True)
class Session:
    worker_name: str
    csrf_token: str
    expires: float


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Sessions:
    """The ``portal_sessions`` table."""

    def __init__(self, db: StateDb) -> None:
        self.db = db

    def start(self, worker_name: str, now: float) -> tuple[str, Session]:
        """A new session: the token for the cookie (never stored) and the session it opens."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        session = Session(worker_name, secrets.token_urlsafe(TOKEN_BYTES), now + SESSION_TTL_S)
        with self.db.transaction() as db:
            db.execute("DELETE FROM portal_sessions WHERE expires <= ?", (now,))
            db.execute(
                "INSERT INTO portal_sessions VALUES (?, ?, ?, ?, ?)",
                (token_hash(token), worker_name, session.csrf_token, now, session.expires),
            )
        return token, session

    def find(self, token: str | None, now: float) -> Session | None:
        """The live session of a cookie's token; None for no token, an unknown or an expired one."""
        if not token or len(token) > 256:
            return None
        row = (
            self.db.connection()
            .execute(
                "SELECT worker_name, csrf_token, expires FROM portal_sessions WHERE token_hash = ?",
                (token_hash(token),),
            )
            .fetchone()
        )
        if row is None or row[2] <= now:
            return None
        return Session(row[0], row[1], row[2])

    def end(self, token: str) -> None:
        with self.db.transaction() as db:
            db.execute("DELETE FROM portal_sessions WHERE token_hash = ?", (token_hash(token),))
