"""Local worker accounts: who may sign in to the worker portal, and the workteams they label for.

On AWS a private workteam's people are Cognito (or OIDC) users; here they are accounts in the service's
SQLite file (``worker_accounts``, ``team_members``), managed with ``python -m local_aws workers``. Each
account has what a worker's answers carry on AWS: a ``workerId`` (``private.<region>.<26 hex digits>``) and
a Cognito ``sub`` (a UUID). Passwords are stored only as argon2id hashes (``passwords``).

Account names are unique regardless of case and are found the same way; an account keeps the name as it
was created. A membership names a team by its lower-case name, so a worker may be added to a team before
the team is created (and keeps it when the team is deleted and created again).
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import time
import uuid
from dataclasses import dataclass

from local_aws.sagemaker_service.store import StateDb
from local_aws.workforce.passwords import Passwords
from local_aws.workforce.teams import WORKTEAM_NAME

NAME_CHARACTERS = re.compile(r"[A-Za-z0-9._@+-]+")
MAX_NAME_LENGTH = 64
_WORKER_ID_BYTES = 13  # 26 hex digits


@dataclass(frozen=True)
class WorkerAccount:
    name: str
    worker_id: str  # the workerId of the worker's answers
    sub: str  # their Cognito sub, workerMetadata.identityData.sub
    teams: tuple[str, ...]  # the workteams' names (a team not created yet: its lower-case name), sorted
    created: float  # epoch seconds


def check_name(name: str) -> None:
    """ValueError naming the worker name and what is wrong with it, unless it is an acceptable one."""
    if not isinstance(name, str) or not name:
        raise ValueError("worker name: must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"worker name {name[:MAX_NAME_LENGTH]!r}...: longer than {MAX_NAME_LENGTH} characters"
        )
    if NAME_CHARACTERS.fullmatch(name) is None:
        raise ValueError(
            f"worker name {name!r}: only letters, digits and the characters . _ @ + - are allowed"
        )


def check_team_name(team: str) -> None:
    """ValueError unless ``team`` can name a workteam (SageMaker's WorkteamName pattern)."""
    if not isinstance(team, str) or WORKTEAM_NAME.fullmatch(team) is None:
        raise ValueError(
            f"team {team!r}: not a workteam name (1 to 63 letters, digits and hyphens, starting and ending"
            " with a letter or digit)"
        )


class WorkerAccounts:
    """The accounts of one region's private workforce; ``passwords`` hashes and checks their passwords."""

    def __init__(self, db: StateDb, region: str, *, passwords: Passwords | None = None) -> None:
        self.db = db
        self.region = region
        self.passwords = passwords or Passwords()

    def add(self, name: str, password: str, team: str) -> WorkerAccount:
        """A new account in ``team``; ValueError when the name, password or team is not acceptable, or the
        name is taken (in any case)."""
        check_name(name)
        check_team_name(team)
        password_hash = self.passwords.hash(password)
        with self.db.transaction() as db:
            existing = self._row(db, name)
            if existing is not None:
                raise ValueError(f"worker name {name!r}: the account {existing['name']!r} exists already")
            db.execute(
                "INSERT INTO worker_accounts (name, worker_id, sub, password_hash, created)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    name,
                    f"private.{self.region}.{secrets.token_hex(_WORKER_ID_BYTES)}",
                    str(uuid.uuid4()),
                    password_hash,
                    round(time.time(), 3),
                ),
            )
            db.execute("INSERT INTO team_members (team_key, worker_name) VALUES (?, ?)", (team.lower(), name))
        return self._get_existing(name)

    def add_to_team(self, name: str, team: str) -> WorkerAccount:
        """The account, now also in ``team`` (adding it twice changes nothing)."""
        check_team_name(team)
        with self.db.transaction() as db:
            account_name = self._existing_name(db, name)
            db.execute(
                "INSERT OR IGNORE INTO team_members (team_key, worker_name) VALUES (?, ?)",
                (team.lower(), account_name),
            )
        return self._get_existing(account_name)

    def remove_from_team(self, name: str, team: str) -> WorkerAccount:
        """The account, no longer in ``team``; ValueError when it was not in it."""
        with self.db.transaction() as db:
            account_name = self._existing_name(db, name)
            removed = db.execute(
                "DELETE FROM team_members WHERE team_key = ? AND worker_name = ?",
                (team.lower(), account_name),
            ).rowcount
            if not removed:
                raise ValueError(f"worker {account_name!r} is not in team {team!r}")
        return self._get_existing(account_name)

    def remove(self, name: str) -> None:
        """Delete the account, its team memberships and its portal sessions; ValueError when it does not
        exist."""
        with self.db.transaction() as db:
            db.execute("DELETE FROM worker_accounts WHERE name = ?", (self._existing_name(db, name),))

    def set_password(self, name: str, password: str) -> None:
        password_hash = self.passwords.hash(password)
        with self.db.transaction() as db:
            db.execute(
                "UPDATE worker_accounts SET password_hash = ? WHERE name = ?",
                (password_hash, self._existing_name(db, name)),
            )

    def list(self, team: str | None = None) -> list[WorkerAccount]:
        """Every account, or the members of ``team``, by name."""
        connection = self.db.connection()
        if team is None:
            rows = connection.execute("SELECT * FROM worker_accounts ORDER BY lower(name)")
        else:
            rows = connection.execute(
                """SELECT worker_accounts.* FROM worker_accounts
                JOIN team_members ON team_members.worker_name = worker_accounts.name
                WHERE team_members.team_key = ? ORDER BY lower(worker_accounts.name)""",
                (team.lower(),),
            )
        return [self._account(row) for row in rows.fetchall()]

    def get(self, name: str) -> WorkerAccount | None:
        row = self._row(self.db.connection(), name)
        return None if row is None else self._account(row)

    def verify(self, name: str, password: str) -> WorkerAccount | None:
        """The account, when ``password`` is its password; None for a wrong password or an unknown name,
        which takes as long to answer. A hash made with other argon2 parameters is replaced."""
        row = self._row(self.db.connection(), name)
        stored_hash = None if row is None else row["password_hash"]
        if not self.passwords.verify(stored_hash, password) or row is None:
            return None
        if self.passwords.needs_rehash(stored_hash):
            with self.db.transaction() as db:
                db.execute(
                    "UPDATE worker_accounts SET password_hash = ? WHERE name = ? AND password_hash = ?",
                    (self.passwords.hash(password), row["name"], stored_hash),
                )
        return self._account(row)

    @staticmethod
    def _row(connection: sqlite3.Connection, name: str) -> sqlite3.Row | None:
        return connection.execute(
            "SELECT * FROM worker_accounts WHERE lower(name) = lower(?)", (name,)
        ).fetchone()

    def _existing_name(self, connection: sqlite3.Connection, name: str) -> str:
        row = self._row(connection, name)
        if row is None:
            raise ValueError(f"worker {name!r}: no such account")
        return row["name"]

    def _get_existing(self, name: str) -> WorkerAccount:
        account = self.get(name)
        assert account is not None, name
        return account

    def _account(self, row: sqlite3.Row) -> WorkerAccount:
        teams = self.db.connection().execute(
            """SELECT coalesce(workteams.name, team_members.team_key) AS team FROM team_members
            LEFT JOIN workteams ON workteams.name_key = team_members.team_key
            WHERE team_members.worker_name = ? ORDER BY team_members.team_key""",
            (row["name"],),
        )
        return WorkerAccount(
            name=row["name"],
            worker_id=row["worker_id"],
            sub=row["sub"],
            teams=tuple(team["team"] for team in teams),
            created=row["created"],
        )
