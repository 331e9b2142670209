"""Labeling jobs in the service's SQLite file: what the API reads and writes and what a worker reports.

The status mechanics (attempts, stops, ends) are every job kind's: ``job_table.JobTable``.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.job_table import RUNNABLE_STATUSES, JobTable, now

COUNTER_NAMES = ("TotalLabeled", "HumanLabeled", "MachineLabeled", "FailedNonRetryableError", "Unlabeled")
_ACTIVE_SQL = "('Initializing', 'InProgress', 'Stopping')"


def labeling_job_arn(config: LocalAwsConfig, name: str) -> str:
    """SageMaker writes the name in lower case in its ARNs."""
    return f"arn:aws:sagemaker:{config.region}:{config.account_id}:labeling-job/{name.lower()}"


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


class LabelingJobStore(JobTable[LabelingJob]):
    table = "labeling_jobs"
    noun = "labeling job"
    record = LabelingJob

    # The API's side.

    def create(self, request: dict[str, Any], config: LocalAwsConfig) -> LabelingJob:
        name = request["LabelingJobName"]
        at = now()
        return self._insert(
            name,
            {
                "arn": labeling_job_arn(config, name),
                "request": json.dumps(request),
                "status": "Initializing",
                "counters": json.dumps(counters_from({})),
                "creation_time": at,
                "last_modified_time": at,
                "job_reference_code": f"{config.account_id}{uuid.uuid4().hex[:12]}",
            },
        )

    def request_stop(self, name: str) -> LabelingJob:
        """Initializing or InProgress → Stopping; the job as it is after."""
        super().request_stop(name)
        return self.get(name)

    # The worker's side.

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
                (json.dumps(reported), now(), status, name.lower(), attempt),
            )

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
