"""Labeling jobs in the service's SQLite file: what the API reads and writes and what a worker reports.

A worker writes only while it holds the job's latest ``attempt``: a worker left over from an earlier
service process (or one the supervisor gave up on) can neither overwrite nor finish a job that has since
been started again.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.errors import ResourceInUse, ResourceNotFound
from local_aws.sagemaker_service.store import StateDb

ACTIVE_STATUSES = ("Initializing", "InProgress", "Stopping")
RUNNABLE_STATUSES = ("Initializing", "InProgress")
COUNTER_NAMES = ("TotalLabeled", "HumanLabeled", "MachineLabeled", "FailedNonRetryableError", "Unlabeled")
MAX_FAILURE_REASON = 1024
_ACTIVE_SQL = "('Initializing', 'InProgress', 'Stopping')"


def labeling_job_arn(config: LocalAwsConfig, name: str) -> str:
    """SageMaker writes the name in lower case in its ARNs."""
    return f"arn:aws:sagemaker:{config.region}:{config.account_id}:labeling-job/{name.lower()}"


def _now() -> float:
    return round(time.time(), 3)


@dataclass(frozen=True)
class LabelingJob:
    name: str
    arn: str
    request: dict[str, Any]
    status: str
    counters: dict[str, int]
    failure_reason: str | None
    creation_time: float
    last_modified_time: float
    output_dataset_s3_uri: str | None
    final_active_learning_model_arn: str | None
    job_reference_code: str
    attempt: int
    stop_requested_time: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> LabelingJob:
        values = dict(row)
        values.pop("name_key")
        values["request"] = json.loads(values["request"])
        values["counters"] = json.loads(values["counters"])
        return cls(**values)


def _progress(counters: Mapping[str, int]) -> int:
    return counters["TotalLabeled"] + counters["FailedNonRetryableError"]


def counters_from(values: Mapping[str, Any]) -> dict[str, int]:
    """LabelCounters with every counter present; ValueError for unknown names or negative counts."""
    unknown = set(values) - set(COUNTER_NAMES)
    if unknown:
        raise ValueError(f"unknown label counters {sorted(unknown)}; expected some of {list(COUNTER_NAMES)}")
    counters = {name: int(values.get(name, 0)) for name in COUNTER_NAMES}
    negative = [name for name, count in counters.items() if count < 0]
    if negative:
        raise ValueError(f"label counters {negative} are negative")
    return counters


class LabelingJobStore:
    def __init__(self, db: StateDb) -> None:
        self.db = db

    # The API's side.

    def create(self, request: dict[str, Any], config: LocalAwsConfig) -> LabelingJob:
        name = request["LabelingJobName"]
        arn = labeling_job_arn(config, name)
        now = _now()
        try:
            with self.db.transaction() as db:
                db.execute(
                    "INSERT INTO labeling_jobs (name_key, name, arn, request, status, counters,"
                    " creation_time, last_modified_time, job_reference_code)"
                    " VALUES (?, ?, ?, ?, 'Initializing', ?, ?, ?, ?)",
                    (
                        name.lower(),
                        name,
                        arn,
                        json.dumps(request),
                        json.dumps(counters_from({})),
                        now,
                        now,
                        f"{config.account_id}{uuid.uuid4().hex[:12]}",
                    ),
                )
        except sqlite3.IntegrityError as error:
            raise ResourceInUse(
                "Job name must be unique within an AWS account and region, and a job with this name already"
                f" exists ({self.get(name).arn})"
            ) from error
        return self.get(name)

    def get(self, name: str) -> LabelingJob:
        row = (
            self.db.connection()
            .execute("SELECT * FROM labeling_jobs WHERE name_key = ?", (name.lower(),))
            .fetchone()
        )
        if row is None:
            raise ResourceNotFound(f"Could not find labeling job {name!r}.")
        return LabelingJob.from_row(row)

    def all(self) -> list[LabelingJob]:
        rows = self.db.connection().execute("SELECT * FROM labeling_jobs").fetchall()
        return [LabelingJob.from_row(row) for row in rows]

    def request_stop(self, name: str) -> LabelingJob:
        """Initializing or InProgress → Stopping; the job as it is after."""
        now = _now()
        with self.db.transaction() as db:
            db.execute(
                "UPDATE labeling_jobs SET status = 'Stopping', stop_requested_time = ?,"
                " last_modified_time = ? WHERE name_key = ? AND status IN ('Initializing', 'InProgress')",
                (now, now, name.lower()),
            )
        return self.get(name)

    # The supervisor's side.

    def waiting(self, running: set[str]) -> list[str]:
        """Jobs that need a worker and have none, oldest first."""
        rows = self.db.connection().execute(
            "SELECT name FROM labeling_jobs WHERE status IN ('Initializing', 'InProgress')"
            " ORDER BY creation_time"
        )
        return [row["name"] for row in rows if row["name"] not in running]

    def settle_stopping(self, running: set[str]) -> None:
        """Stopping jobs that have no worker (stopped before one started, or by a restart) → Stopped."""
        rows = self.db.connection().execute(
            "SELECT name, attempt FROM labeling_jobs WHERE status = 'Stopping'"
        )
        for row in rows.fetchall():
            if row["name"] not in running:
                self._end(row["name"], row["attempt"], "Stopped", None)

    def stop_requested_time(self, name: str) -> float | None:
        job = self.get(name)
        return job.stop_requested_time if job.status == "Stopping" else None

    def claim(self, name: str, max_attempts: int) -> int | None:
        """Start a new attempt at a runnable job; None if it may not run (any more)."""
        with self.db.transaction() as db:
            row = db.execute(
                "SELECT attempt FROM labeling_jobs"
                " WHERE name_key = ? AND status IN ('Initializing', 'InProgress')",
                (name.lower(),),
            ).fetchone()
            if row is None:
                return None
            attempt = row["attempt"] + 1
            db.execute("UPDATE labeling_jobs SET attempt = ? WHERE name_key = ?", (attempt, name.lower()))
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
        job = self.get(name)
        if job.attempt == attempt and job.status == "Stopping":
            self._end(name, attempt, "Stopped", None)
        else:
            self.fail(name, attempt, reason)

    # The worker's side.

    def start(self, name: str, attempt: int) -> None:
        with self.db.transaction() as db:
            db.execute(
                "UPDATE labeling_jobs SET status = 'InProgress', last_modified_time = ?"
                " WHERE name_key = ? AND attempt = ? AND status = 'Initializing'",
                (_now(), name.lower(), attempt),
            )

    def report(self, name: str, attempt: int, status: str, counters: Mapping[str, Any]) -> None:
        """Progress from the engine: its status (Initializing or InProgress) and counters.

        AWS's counters never go back. An attempt that resumes a job interrupted by a restart starts over,
        so its counters are shown only once its progress (objects labeled or failed) overtakes what the
        interrupted attempt had reported.
        """
        if status not in RUNNABLE_STATUSES:
            raise ValueError(f"a running job reports Initializing or InProgress, not {status!r}")
        reported = counters_from(counters)
        with self.db.transaction() as db:
            row = db.execute(
                "SELECT counters FROM labeling_jobs"
                f" WHERE name_key = ? AND attempt = ? AND status IN {_ACTIVE_SQL}",
                (name.lower(), attempt),
            ).fetchone()
            if row is None:
                return
            shown = json.loads(row[0])
            if _progress(reported) < _progress(shown):
                reported = shown
            db.execute(
                "UPDATE labeling_jobs SET counters = ?, last_modified_time = ?,"
                " status = CASE WHEN status = 'Stopping' THEN status ELSE ? END"
                f" WHERE name_key = ? AND attempt = ? AND status IN {_ACTIVE_SQL}",
                (json.dumps(reported), _now(), status, name.lower(), attempt),
            )

    def should_stop(self, name: str, attempt: int) -> bool:
        """True once the job is asked to stop, or this attempt is no longer the job's latest."""
        job = self.get(name)
        return job.attempt != attempt or job.status not in RUNNABLE_STATUSES

    def finish(self, name: str, attempt: int, result: Mapping[str, Any]) -> None:
        """Record the engine's result.

        ``{"status": "Completed" | "Stopped", "counters": {...}, "output_dataset_s3_uri": "s3://..."}``.
        """
        status = result.get("status")
        if status not in ("Completed", "Stopped"):
            raise ValueError(f"the engine returned status {status!r}; expected 'Completed' or 'Stopped'")
        output = {
            "counters": json.dumps(counters_from(result.get("counters", {}))),
            "output_dataset_s3_uri": result.get("output_dataset_s3_uri"),
            "final_active_learning_model_arn": result.get("final_active_learning_model_arn"),
        }
        self._end(name, attempt, status, None, output)

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
        assignments = ", ".join(f"{column} = ?" for column in output or {})
        with self.db.transaction() as db:
            db.execute(
                "UPDATE labeling_jobs SET status = ?, failure_reason = ?, last_modified_time = ?"
                f"{', ' + assignments if assignments else ''}"
                f" WHERE name_key = ? AND attempt = ? AND status IN {_ACTIVE_SQL}",
                (status, reason, _now(), *(output or {}).values(), name.lower(), attempt),
            )


def execute_labeling_job(
    run: Callable[..., Mapping[str, Any]],
    store: LabelingJobStore,
    name: str,
    attempt: int,
    config: LocalAwsConfig,
) -> Mapping[str, Any]:
    """Call the labeling engine in a worker, with progress and stop requests over the SQLite file."""
    job = store.get(name)
    return run(
        job.request,
        job_name=job.name,
        job_arn=job.arn,
        config=config,
        report=lambda status, counters: store.report(name, attempt, status, counters),
        should_stop=lambda: store.should_stop(name, attempt),
    )
