"""The private workforce and its workteams, in the service's SQLite file (``workforces``, ``workteams``).

An account has at most one private workforce per region, as on AWS; every workteam belongs to it. Names are
unique regardless of case, and ARNs carry them in lower case, as SageMaker's lower-cased ARNs imply:
``arn:aws:sagemaker:<region>:<account>:workforce/<name>`` and
``arn:aws:sagemaker:<region>:<account>:workteam/private-crowd/<name>``.

A workteam's people are the local worker accounts added to it (``accounts.WorkerAccounts``); its
``MemberDefinitions`` (Cognito user groups or OIDC groups) are kept and echoed as they were given. Deleting a
workteam leaves its members' accounts and memberships, as deleting a team on AWS leaves its Cognito group:
a team created again under the same name has them back.

The stores raise the exceptions below, each worded as SageMaker words the error; the API maps each to its
AWS code.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.store import StateDb

DEFAULT_WORKFORCE = "default"
# SageMaker's WorkteamName pattern (botocore's model; a test keeps the two equal).
WORKTEAM_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
# The labeling-job statuses in which a job holds on to its workteam (it may still hand out tasks).
ACTIVE_JOB_STATUSES = ("Initializing", "InProgress", "Stopping")


class TeamsError(Exception):
    """A request the stores refuse; the message is the API's."""


class NotFound(TeamsError):
    """The workforce or workteam does not exist."""


class NameInUse(TeamsError):
    """A workteam of that name (in any case) exists."""


class InUse(TeamsError):
    """The resource cannot be deleted while something uses it."""


class LimitExceeded(TeamsError):
    """The account already has its one private workforce in this region."""


def _now() -> float:
    return round(time.time(), 3)


def workforce_arn(config: LocalAwsConfig, name: str) -> str:
    return f"arn:aws:sagemaker:{config.region}:{config.account_id}:workforce/{name.lower()}"


def workteam_arn(config: LocalAwsConfig, name: str) -> str:
    return f"arn:aws:sagemaker:{config.region}:{config.account_id}:workteam/private-crowd/{name.lower()}"


@dataclass(frozen=True)
class Workforce:
    name: str
    arn: str
    request: dict[str, Any]  # what CreateWorkforce configured (CognitoConfig, OidcConfig, ...), JSON
    create_date: float
    last_updated_date: float

    # What list operations sort and filter by (``job_api.list_page``).
    @property
    def creation_time(self) -> float:
        return self.create_date

    @property
    def last_modified_time(self) -> float:
        return self.last_updated_date

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Workforce:
        return cls(
            name=row["name"],
            arn=row["arn"],
            request=json.loads(row["request"]),
            create_date=row["create_date"],
            last_updated_date=row["last_updated_date"],
        )


@dataclass(frozen=True)
class Workteam:
    name: str
    arn: str
    workforce_name: str
    description: str
    member_definitions: list[dict[str, Any]]
    notification_configuration: dict[str, Any] | None
    worker_access_configuration: dict[str, Any] | None
    create_date: float
    last_updated_date: float

    @property
    def creation_time(self) -> float:
        return self.create_date

    @property
    def last_modified_time(self) -> float:
        return self.last_updated_date

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Workteam:
        values = dict(row)
        values.pop("name_key")
        for name in ("member_definitions", "notification_configuration", "worker_access_configuration"):
            values[name] = None if values[name] is None else json.loads(values[name])
        return cls(**values)


def _json_or_none(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value)


class WorkforceStore:
    """The account's private workforce (at most one) in this region."""

    def __init__(self, db: StateDb, config: LocalAwsConfig) -> None:
        self.db = db
        self.config = config

    def create(self, name: str, configs: Mapping[str, Any]) -> Workforce:
        """The new workforce; LimitExceeded when the account has one already."""
        with self.db.transaction() as db:
            self._insert(db, name, configs)
        return self.get(name)

    def ensure(self) -> Workforce:
        """The account's workforce, created as ``default`` (with no configs) when it has none."""
        with self.db.transaction() as db:
            row = db.execute("SELECT * FROM workforces").fetchone()
            if row is not None:
                return Workforce.from_row(row)
            self._insert(db, DEFAULT_WORKFORCE, {})
        return self.get(DEFAULT_WORKFORCE)

    def _insert(self, db: sqlite3.Connection, name: str, configs: Mapping[str, Any]) -> None:
        existing = db.execute("SELECT name FROM workforces").fetchone()
        if existing is not None:
            raise LimitExceeded(
                f"The account already has a private workforce in {self.config.region}"
                f' ("{existing["name"]}"); an account has one private workforce per region.'
            )
        now = _now()
        db.execute(
            "INSERT INTO workforces (name_key, name, arn, request, create_date, last_updated_date)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (name.lower(), name, workforce_arn(self.config, name), json.dumps(configs), now, now),
        )

    def find(self, name: str) -> Workforce | None:
        row = (
            self.db.connection()
            .execute("SELECT * FROM workforces WHERE name_key = ?", (name.lower(),))
            .fetchone()
        )
        return None if row is None else Workforce.from_row(row)

    def get(self, name: str) -> Workforce:
        workforce = self.find(name)
        if workforce is None:
            raise NotFound(f'Workforce "{workforce_arn(self.config, name)}" does not exist.')
        return workforce

    def all(self) -> list[Workforce]:
        return [Workforce.from_row(row) for row in self.db.connection().execute("SELECT * FROM workforces")]

    def delete(self, name: str) -> None:
        """Delete the workforce; InUse while it has workteams."""
        with self.db.transaction() as db:
            row = db.execute("SELECT name FROM workforces WHERE name_key = ?", (name.lower(),)).fetchone()
            if row is None:
                raise NotFound(f'Workforce "{workforce_arn(self.config, name)}" does not exist.')
            teams = [
                team["name"]
                for team in db.execute(
                    "SELECT name FROM workteams WHERE lower(workforce_name) = ? ORDER BY name_key",
                    (name.lower(),),
                )
            ]
            if teams:
                raise InUse(
                    f'Workforce "{row["name"]}" has workteams ({", ".join(teams)}); delete them first.'
                )
            db.execute("DELETE FROM workforces WHERE name_key = ?", (name.lower(),))


class WorkteamStore:
    """The workteams of the account's private workforce."""

    def __init__(self, db: StateDb, config: LocalAwsConfig) -> None:
        self.db = db
        self.config = config

    def arn(self, name: str) -> str:
        return workteam_arn(self.config, name)

    def create(
        self,
        name: str,
        workforce_name: str,
        description: str,
        member_definitions: list[dict[str, Any]],
        notification_configuration: dict[str, Any] | None = None,
        worker_access_configuration: dict[str, Any] | None = None,
    ) -> Workteam:
        """The new workteam of the (existing) workforce; NameInUse when the name is taken."""
        now = _now()
        try:
            with self.db.transaction() as db:
                db.execute(
                    """INSERT INTO workteams (name_key, name, arn, workforce_name, description,
                    member_definitions, notification_configuration, worker_access_configuration,
                    create_date, last_updated_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        name.lower(),
                        name,
                        self.arn(name),
                        workforce_name,
                        description,
                        json.dumps(member_definitions),
                        _json_or_none(notification_configuration),
                        _json_or_none(worker_access_configuration),
                        now,
                        now,
                    ),
                )
        except sqlite3.IntegrityError as error:
            raise NameInUse(f'Workteam "{self.arn(name)}" already exists.') from error
        return self.get(name)

    def find(self, name: str) -> Workteam | None:
        row = (
            self.db.connection()
            .execute("SELECT * FROM workteams WHERE name_key = ?", (name.lower(),))
            .fetchone()
        )
        return None if row is None else Workteam.from_row(row)

    def get(self, name: str) -> Workteam:
        workteam = self.find(name)
        if workteam is None:
            raise NotFound(f'Workteam "{self.arn(name)}" does not exist.')
        return workteam

    def all(self) -> list[Workteam]:
        return [Workteam.from_row(row) for row in self.db.connection().execute("SELECT * FROM workteams")]

    def update(self, name: str, changes: Mapping[str, Any]) -> Workteam:
        """Replace what ``changes`` names (``description``, ``member_definitions``,
        ``notification_configuration``, ``worker_access_configuration``); the others stay."""
        columns = {
            "description": changes.get("description"),
            "member_definitions": _json_or_none(changes.get("member_definitions")),
            "notification_configuration": _json_or_none(changes.get("notification_configuration")),
            "worker_access_configuration": _json_or_none(changes.get("worker_access_configuration")),
        }
        assignments = [f"{column} = ?" for column, value in columns.items() if value is not None]
        values = [value for value in columns.values() if value is not None]
        with self.db.transaction() as db:
            updated = db.execute(
                f"UPDATE workteams SET {', '.join([*assignments, 'last_updated_date = ?'])}"
                " WHERE name_key = ?",
                (*values, _now(), name.lower()),
            ).rowcount
        if not updated:
            raise NotFound(f'Workteam "{self.arn(name)}" does not exist.')
        return self.get(name)

    def delete(self, name: str) -> None:
        """Delete the workteam; InUse while a labeling job that may still hand out tasks names it."""
        with self.db.transaction() as db:
            row = db.execute("SELECT arn FROM workteams WHERE name_key = ?", (name.lower(),)).fetchone()
            if row is None:
                raise NotFound(f'Workteam "{self.arn(name)}" does not exist.')
            placeholders = ", ".join("?" for _ in ACTIVE_JOB_STATUSES)
            jobs = [
                job["name"]
                for job in db.execute(
                    f"""SELECT name FROM labeling_jobs WHERE status IN ({placeholders})
                    AND lower(json_extract(request, '$.HumanTaskConfig.WorkteamArn')) = ?
                    ORDER BY name_key""",
                    (*ACTIVE_JOB_STATUSES, row["arn"]),
                )
            ]
            if jobs:
                raise InUse(
                    f'Workteam "{row["arn"]}" is used by labeling jobs that have not ended'
                    f" ({', '.join(jobs)}); stop them or wait until they end."
                )
            db.execute("DELETE FROM workteams WHERE name_key = ?", (name.lower(),))


def workteam_by_arn(db: StateDb, arn: str) -> Workteam | None:
    """The workteam an ARN names (a labeling job's ``HumanTaskConfig.WorkteamArn``), or None: another
    account's or region's, a public or vendor workforce's, or a team that does not exist."""
    row = db.connection().execute("SELECT * FROM workteams WHERE arn = ?", (arn.lower(),)).fetchone()
    return None if row is None else Workteam.from_row(row)
