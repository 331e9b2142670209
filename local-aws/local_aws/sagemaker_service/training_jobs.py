"""Training jobs in the service's SQLite file: what the API reads and writes and what a worker reports.

A job is InProgress from its creation (SageMaker has no Initializing for training jobs) and its
SecondaryStatus says where it is: Starting (waiting for, then on, a worker), Downloading, Training,
Uploading, then Completed, Failed, Stopped or MaxRuntimeExceeded; Stopping while asked to stop.
``SecondaryStatusTransitions`` keeps one entry per secondary status, as AWS's does: a new status closes
the previous one (its EndTime) and a new message for the same status replaces the message.
TrainingStartTime is when a worker took the job; a job resumed after a restart starts training again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.errors import ApiError, ValidationError
from local_aws.sagemaker_service.job_table import JobTable, now

SCHEMA = """
CREATE TABLE IF NOT EXISTS training_jobs (
    name_key TEXT PRIMARY KEY,          -- lower-case name: SageMaker names are unique regardless of case
    name TEXT NOT NULL,
    arn TEXT NOT NULL,
    request TEXT NOT NULL,              -- the validated CreateTrainingJob request, JSON
    status TEXT NOT NULL,
    secondary_status TEXT NOT NULL,
    transitions TEXT NOT NULL,          -- SecondaryStatusTransitions, JSON, times in epoch seconds
    failure_reason TEXT,
    creation_time REAL NOT NULL,        -- epoch seconds
    last_modified_time REAL NOT NULL,
    training_start_time REAL,
    training_end_time REAL,
    stop_requested_time REAL,
    final_metrics TEXT NOT NULL DEFAULT '[]',  -- FinalMetricDataList, JSON, times in epoch seconds
    attempt INTEGER NOT NULL DEFAULT 0  -- worker runs started: a worker writes only while it holds the latest
)
"""
STATUS_MESSAGES = {
    "Starting": "Starting the training job",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Stopping": "Stopping the training job",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job stopped: it exceeded its MaxRuntimeInSeconds",
}
# The secondary statuses a job may end with, by the status it ends in.
_ENDINGS = {"Completed": ("Completed",), "Failed": ("Failed",), "Stopped": ("Stopped", "MaxRuntimeExceeded")}


def training_job_arn(config: LocalAwsConfig, name: str) -> str:
    """SageMaker writes the name in lower case in its ARNs."""
    return f"arn:aws:sagemaker:{config.region}:{config.account_id}:training-job/{name.lower()}"


@dataclass(frozen=True)
class TrainingJob:
    name: str
    arn: str
    request: dict[str, Any]
    status: str
    secondary_status: str
    transitions: list[dict[str, Any]]
    failure_reason: str | None
    creation_time: float
    last_modified_time: float
    training_start_time: float | None
    training_end_time: float | None
    stop_requested_time: float | None
    final_metrics: list[dict[str, Any]]
    attempt: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> TrainingJob:
        values = dict(row)
        values.pop("name_key")
        for column in ("request", "transitions", "final_metrics"):
            values[column] = json.loads(values[column])
        return cls(**values)


def _transitioned(row: sqlite3.Row, status: str, message: str, at: float) -> list[dict[str, Any]]:
    """The row's transitions with ``status`` current: the previous status ends, or its message changes."""
    updated = json.loads(row["transitions"])
    if updated and updated[-1]["Status"] == status:
        updated[-1]["StatusMessage"] = message
    else:
        if updated:
            updated[-1]["EndTime"] = at
        updated.append({"Status": status, "StartTime": at, "StatusMessage": message})
    return updated


class TrainingJobStore(JobTable[TrainingJob]):
    table = "training_jobs"
    noun = "training job"
    record = TrainingJob
    schema = SCHEMA
    name_in_use = (
        "Training job names must be unique within an AWS account and region, and a training job with this"
        " name already exists"
    )

    def not_found(self, name: str) -> ApiError:
        # AWS answers a missing training job with a ValidationException, not the model's ResourceNotFound;
        # Airflow's operators rely on it to tell a free name.
        return ValidationError("Requested resource not found.")

    # The API's side.

    def create(self, request: dict[str, Any], config: LocalAwsConfig) -> TrainingJob:
        name = request["TrainingJobName"]
        at = now()
        starting = {"Status": "Starting", "StartTime": at, "StatusMessage": STATUS_MESSAGES["Starting"]}
        return self._insert(
            name,
            {
                "arn": training_job_arn(config, name),
                "request": json.dumps(request),
                "status": "InProgress",
                "secondary_status": "Starting",
                "transitions": json.dumps([starting]),
                "creation_time": at,
                "last_modified_time": at,
            },
        )

    # The worker's side.

    def progress(self, name: str, attempt: int, secondary_status: str) -> None:
        """The engine's progress: the secondary status it has reached."""
        if secondary_status not in ("Downloading", "Training", "Uploading"):
            raise ValueError(
                f"a running training job reports Downloading, Training or Uploading, not {secondary_status!r}"
            )
        text = STATUS_MESSAGES[secondary_status]
        self._update(
            name,
            attempt,
            "('InProgress', 'Stopping')",
            lambda row, at: {
                "secondary_status": secondary_status,
                "transitions": json.dumps(_transitioned(row, secondary_status, text, at)),
            },
        )

    def finish(self, name: str, attempt: int, result: Mapping[str, Any]) -> None:
        """Record the engine's result: ``{"status": "Completed" | "Stopped", "secondary_status": ...,
        "final_metrics": [{"MetricName", "Value", "Timestamp"}, ...]}``."""
        status = result.get("status")
        secondary = result.get("secondary_status", status)
        if status not in ("Completed", "Stopped") or secondary not in _ENDINGS[status]:
            raise ValueError(
                f"the engine returned status {status!r} with secondary status {secondary!r}; expected"
                " Completed, or Stopped with Stopped or MaxRuntimeExceeded"
            )
        metrics = [
            {
                "MetricName": str(metric["MetricName"]),
                "Value": float(metric["Value"]),
                "Timestamp": metric["Timestamp"],
            }
            for metric in result.get("final_metrics", [])
        ]
        self._end(name, attempt, status, None, {"final_metrics": json.dumps(metrics)}, secondary)

    def _end(
        self,
        name: str,
        attempt: int,
        status: str,
        reason: str | None,
        output: Mapping[str, Any] | None = None,
        secondary_status: str | None = None,
    ) -> None:
        secondary = secondary_status or _ENDINGS[status][0]
        super()._end(name, attempt, status, reason, {**(output or {}), "secondary_status": secondary})

    # Hooks.

    def _on_start(self, row: sqlite3.Row, at: float) -> dict[str, Any]:
        return {
            "training_start_time": at,
            "training_end_time": None,
            "transitions": json.dumps(
                _transitioned(row, "Starting", "Preparing the instances for training", at)
            ),
        }

    def _on_stopping(self, row: sqlite3.Row, at: float) -> dict[str, Any]:
        return {
            "secondary_status": "Stopping",
            "transitions": json.dumps(_transitioned(row, "Stopping", STATUS_MESSAGES["Stopping"], at)),
        }

    def _on_end(self, row: sqlite3.Row, status: str, at: float, output: Mapping[str, Any]) -> dict[str, Any]:
        secondary = output["secondary_status"]
        transitions = _transitioned(row, secondary, STATUS_MESSAGES[secondary], at)
        transitions[-1]["EndTime"] = at
        return {
            "transitions": json.dumps(transitions),
            "training_end_time": at if row["training_start_time"] is not None else None,
        }


def execute_training_job(
    run: Callable[..., Mapping[str, Any]],
    store: TrainingJobStore,
    name: str,
    attempt: int,
    config: LocalAwsConfig,
) -> Mapping[str, Any]:
    """Call the training engine in a worker, with progress and stop requests over the SQLite file."""
    job = store.get(name)
    return run(
        job.request,
        job_name=job.name,
        config=config,
        progress=lambda status: store.progress(name, attempt, status),
        should_stop=lambda: store.should_stop(name, attempt),
    )
