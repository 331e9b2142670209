"""What every kind of job shares in the service's SQLite file: its life from waiting to ended, by attempt.

A job table has at least the columns ``name_key`` (the lower-case name), ``name``, ``status``,
``failure_reason``, ``creation_time``, ``last_modified_time``, ``stop_requested_time`` and ``attempt``.
Statuses are SageMaker's: a job waits or runs while Initializing (labeling jobs only) or InProgress, is
asked to stop while Stopping, and ends Completed, Failed or Stopped.

A worker writes only while it holds the job's latest ``attempt``: a worker left over from an earlier
service process (or one the supervisor gave up on) can neither overwrite nor finish a job that has since
been started again. Subclasses name their row class (``record``, built with its ``from_row``) and add
their columns through the hooks ``_on_start``, ``_on_stopping`` and ``_on_end``, which run inside the
transaction that changes the status.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from local_aws.sagemaker_service.errors import ApiError, ResourceInUse, ResourceNotFound
from local_aws.sagemaker_service.store import StateDb

RUNNABLE_STATUSES = ("Initializing", "InProgress")
MAX_FAILURE_REASON = 1024
_ACTIVE_SQL = "('Initializing', 'InProgress', 'Stopping')"
_RUNNABLE_SQL = "('Initializing', 'InProgress')"


def now() -> float:
    """Epoch seconds, to the millisecond, as the service stores times."""
    return round(time.time(), 3)


class ListedJob(Protocol):
    """What a ``List<Kind>Jobs`` operation filters and sorts a job (or another resource) by."""

    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def creation_time(self) -> float: ...
    @property
    def last_modified_time(self) -> float: ...


class JobRecord(ListedJob, Protocol):
    """A job as its table's row class reads it."""

    @property
    def arn(self) -> str: ...

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Self: ...


JobT = TypeVar("JobT", bound=JobRecord)


class JobTable(Generic[JobT]):
    """The status mechanics of one job table; subclasses name it and describe their rows."""

    table: ClassVar[str]
    noun: ClassVar[str]  # "labeling job", in messages
    record: type[JobT]
    schema: ClassVar[str | None] = None  # CREATE TABLE, where the store's common schema lacks the table
    # SageMaker's answer to a name in use, followed by the existing job's ARN.
    name_in_use: ClassVar[str] = (
        "Job name must be unique within an AWS account and region, and a job with this name already exists"
    )

    def __init__(self, db: StateDb) -> None:
        self.db = db
        if self.schema is not None:
            with db.transaction() as connection:
                connection.execute(self.schema)

    def get(self, name: str) -> JobT:
        return self.record.from_row(self.row(name))

    def find(self, name: str) -> JobT | None:
        row = self.find_row(name)
        return None if row is None else self.record.from_row(row)

    def all(self) -> list[JobT]:
        return [self.record.from_row(row) for row in self.rows()]

    def check_name_free(self, name: str) -> None:
        """ResourceInUse, naming the existing job, if a job of this kind has the name in any case."""
        existing = self.find(name)
        if existing is not None:
            raise ResourceInUse(f"{self.name_in_use} ({existing.arn})")

    def _insert(self, name: str, columns: Mapping[str, Any]) -> JobT:
        """A new job row with ``columns`` (and its name); ResourceInUse if the name is taken."""
        values = {"name_key": name.lower(), "name": name, **columns}
        placeholders = ", ".join("?" for _ in values)
        try:
            with self.db.transaction() as db:
                db.execute(
                    f"INSERT INTO {self.table} ({', '.join(values)}) VALUES ({placeholders})",
                    tuple(values.values()),
                )
        except sqlite3.IntegrityError:
            self.check_name_free(name)
            raise
        return self.get(name)

    def not_found(self, name: str) -> ApiError:
        """The error for a job that does not exist (SageMaker's code differs between kinds of jobs)."""
        return ResourceNotFound(f"Could not find {self.noun} {name!r}.")

    def find_row(self, name: str) -> sqlite3.Row | None:
        return (
            self.db.connection()
            .execute(f"SELECT * FROM {self.table} WHERE name_key = ?", (name.lower(),))
            .fetchone()
        )

    def row(self, name: str) -> sqlite3.Row:
        row = self.find_row(name)
        if row is None:
            raise self.not_found(name)
        return row

    def rows(self) -> list[sqlite3.Row]:
        return self.db.connection().execute(f"SELECT * FROM {self.table}").fetchall()

    # The API's side.

    def request_stop(self, name: str) -> None:
        """Initializing or InProgress → Stopping (nothing for a job in another status)."""
        self._update(
            name,
            None,
            _RUNNABLE_SQL,
            lambda row, at: {"status": "Stopping", "stop_requested_time": at, **self._on_stopping(row, at)},
        )

    # The supervisor's side.

    def waiting(self, running: set[str]) -> list[str]:
        """Jobs that need a worker and have none, oldest first."""
        rows = self.db.connection().execute(
            f"SELECT name FROM {self.table} WHERE status IN {_RUNNABLE_SQL} ORDER BY creation_time"
        )
        return [row["name"] for row in rows if row["name"] not in running]

    def settle_stopping(self, running: set[str]) -> None:
        """Stopping jobs that have no worker (stopped before one started, or by a restart) → Stopped."""
        rows = self.db.connection().execute(
            f"SELECT name, attempt FROM {self.table} WHERE status = 'Stopping'"
        )
        for row in rows.fetchall():
            if row["name"] not in running:
                self._end(row["name"], row["attempt"], "Stopped", None)

    def stop_requested_time(self, name: str) -> float | None:
        row = self.row(name)
        return row["stop_requested_time"] if row["status"] == "Stopping" else None

    def claim(self, name: str, max_attempts: int) -> int | None:
        """Start a new attempt at a runnable job; None if it may not run (any more)."""
        with self.db.transaction() as db:
            row = db.execute(
                f"SELECT attempt FROM {self.table} WHERE name_key = ? AND status IN {_RUNNABLE_SQL}",
                (name.lower(),),
            ).fetchone()
            if row is None:
                return None
            attempt = row["attempt"] + 1
            db.execute(f"UPDATE {self.table} SET attempt = ? WHERE name_key = ?", (attempt, name.lower()))
        if attempt > max_attempts:
            self.fail(
                name,
                attempt,
                f"Internal error: the job was started {max_attempts} times and interrupted each time"
                " (service restarts or worker crashes); it is not started again.",
            )
            return None
        return attempt

    def abandon(self, name: str, attempt: int, reason: str) -> None:
        """The attempt's worker is gone: a Stopping job is Stopped, any other active one Failed."""
        row = self.row(name)
        if row["attempt"] == attempt and row["status"] == "Stopping":
            self._end(name, attempt, "Stopped", None)
        else:
            self.fail(name, attempt, reason)

    # The worker's side.

    def start(self, name: str, attempt: int) -> None:
        """The attempt's worker runs: Initializing → InProgress."""
        self._update(
            name,
            attempt,
            _RUNNABLE_SQL,
            lambda row, at: {"status": "InProgress", **self._on_start(row, at)},
        )

    def should_stop(self, name: str, attempt: int) -> bool:
        """True once the job is asked to stop, or this attempt is no longer the job's latest."""
        row = self.row(name)
        return row["attempt"] != attempt or row["status"] not in RUNNABLE_STATUSES

    def fail(self, name: str, attempt: int, reason: str) -> None:
        self._end(name, attempt, "Failed", reason[:MAX_FAILURE_REASON])

    def _end(
        self,
        name: str,
        attempt: int,
        status: str,
        reason: str | None,
        output: Mapping[str, Any] | None = None,
    ) -> None:
        """An active job of this attempt ends in ``status``, with ``output`` columns set."""

        def columns(row: sqlite3.Row, at: float) -> dict[str, Any]:
            return {
                "status": status,
                "failure_reason": reason,
                **(output or {}),
                **self._on_end(row, status, at, output or {}),
            }

        self._update(name, attempt, _ACTIVE_SQL, columns)

    def _update(
        self,
        name: str,
        attempt: int | None,
        statuses_sql: str,
        columns: Callable[[sqlite3.Row, float], dict[str, Any]],
    ) -> bool:
        """Set ``columns(row, now)`` on the job if it is in one of the statuses (and of ``attempt``).

        Returns whether the job was changed. ``last_modified_time`` is set to now.
        """
        condition = f"name_key = ? AND status IN {statuses_sql}"
        parameters: tuple[Any, ...] = (name.lower(),)
        if attempt is not None:
            condition += " AND attempt = ?"
            parameters += (attempt,)
        at = now()
        with self.db.transaction() as db:
            row = db.execute(f"SELECT * FROM {self.table} WHERE {condition}", parameters).fetchone()
            if row is None:
                return False
            values = {**columns(row, at), "last_modified_time": at}
            assignments = ", ".join(f"{column} = ?" for column in values)
            db.execute(
                f"UPDATE {self.table} SET {assignments} WHERE name_key = ?",
                (*values.values(), name.lower()),
            )
        return True

    # Hooks: the kind's own columns when its status changes.

    def _on_start(self, row: sqlite3.Row, at: float) -> dict[str, Any]:
        return {}

    def _on_stopping(self, row: sqlite3.Row, at: float) -> dict[str, Any]:
        return {}

    def _on_end(self, row: sqlite3.Row, status: str, at: float, output: Mapping[str, Any]) -> dict[str, Any]:
        """Columns of a job ending in ``status``; ``output`` is what the caller of ``_end`` sets."""
        return {}
