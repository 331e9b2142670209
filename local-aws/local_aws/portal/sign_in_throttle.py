"""Guessing passwords is slowed down per account and per client address, before any password is checked.

An account with ``ACCOUNT_LIMIT`` failed sign-ins within ``WINDOW_S``, or a client address with
``CLIENT_LIMIT``, is refused until enough of those failures are older than the window, even with the right
password: otherwise the refusal itself would tell a guesser when they had found it.
"""

from __future__ import annotations

import math

from local_aws.sagemaker_service.store import StateDb

ACCOUNT_LIMIT = 5
CLIENT_LIMIT = 20
WINDOW_S = 15 * 60


def account_key(name: str) -> str:
    """Names that differ only in case or surrounding spaces count as one account."""
    return name.strip().casefold()


class SignInThrottle:
    """The ``sign_in_failures`` table."""

    def __init__(self, db: StateDb) -> None:
        self.db = db

    def retry_after(self, account: str, client: str, now: float) -> int | None:
        """Seconds until a sign-in as ``account`` from ``client`` may be tried, None if it may be now."""
        since = now - WINDOW_S
        waits = [
            self._wait("account", account_key(account), ACCOUNT_LIMIT, since),
            self._wait("client", client, CLIENT_LIMIT, since),
        ]
        latest = max((at for at in waits if at is not None), default=None)
        return None if latest is None else max(1, math.ceil(latest + WINDOW_S - now))

    def record_failure(self, account: str, client: str, now: float) -> None:
        with self.db.transaction() as db:
            db.execute("DELETE FROM sign_in_failures WHERE at <= ?", (now - WINDOW_S,))
            db.execute(
                "INSERT INTO sign_in_failures (account, client, at) VALUES (?, ?, ?)",
                (account_key(account), client, now),
            )

    def _wait(self, column: str, value: str, limit: int, since: float) -> float | None:
        """When the failure that keeps the count at the limit happened, None while under the limit."""
        rows = (
            self.db.connection()
            .execute(
                f"SELECT at FROM sign_in_failures WHERE {column} = ? AND at > ? ORDER BY at DESC LIMIT ?",
                (value, since, limit),
            )
            .fetchall()
        )
        # Refused while `limit` failures lie in the window: until the newest `limit`-th of them leaves it.
        return rows[-1][0] if len(rows) >= limit else None
