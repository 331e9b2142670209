"""Transform jobs in the service's SQLite file: what the API reads and writes and what a worker reports.

A job is InProgress from its creation (waiting for a worker, then transforming) until it ends Completed,
Failed or Stopped. The model's data URL is copied from the model when the job is created, so deleting the
model afterwards does not change what the job runs. TransformStartTime is when a worker took the job.
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
CREATE TABLE IF NOT EXISTS transform_jobs (
    name_key TEXT PRIMARY KEY,          -- lower-case name: SageMaker names are unique regardless of case
    name TEXT NOT NULL,
    arn TEXT NOT NULL,
    request TEXT NOT NULL,              -- the validated CreateTransformJob request, JSON
    model_data_url TEXT NOT NULL,       -- the model's ModelDataUrl when the job was created
    status TEXT NOT NULL,
    failure_reason TEXT,
    creation_time REAL NOT NULL,        -- epoch seconds
    last_modified_time REAL NOT NULL,
    transform_start_time REAL,
    transform_end_time REAL,
    stop_requested_time REAL,
    attempt INTEGER NOT NULL DEFAULT 0  -- worker runs started: a worker writes only while it holds the latest
)
"""


def transform_job_arn(config: LocalAwsConfig, name: str) -> str:
    """SageMaker writes the name in lower case in its ARNs."""
    return f"arn:aws:sagemaker:{config.region}:{config.account_id}:transform-job/{name.lower()}"


@dataclass(frozen=True)
class TransformJob:
    name: str
    arn: str
    request: dict[str, Any]
    model_data_url: str
    status: str
    failure_reason: str | None
    creation_time: float
    last_modified_time: float
    transform_start_time: float | None
    transform_end_time: float | None
    stop_requested_time: float | None
    attempt: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> TransformJob:
        values = dict(row)
        values.pop("name_key")
        values["request"] = json.loads(values["request"])
        return cls(**values)


class TransformJobStore(JobTable[TransformJob]):
    table = "transform_jobs"
    noun = "transform job"
    record = TransformJob
    schema = SCHEMA

    def not_found(self, name: str) -> ApiError:
        # AWS answers a missing transform job with a ValidationException; Airflow's operators rely on it.
        return ValidationError(f"Could not find transform job {name!r}.")

    # The API's side.

    def create(self, request: dict[str, Any], model_data_url: str, config: LocalAwsConfig) -> TransformJob:
        name = request["TransformJobName"]
        at = now()
        return self._insert(
            name,
            {
                "arn": transform_job_arn(config, name),
                "request": json.dumps(request),
                "model_data_url": model_data_url,
                "status": "InProgress",
                "creation_time": at,
                "last_modified_time": at,
            },
        )

    # The worker's side.

    def finish(self, name: str, attempt: int, result: Mapping[str, Any]) -> None:
        """Record the engine's result: ``{"status": "Completed" | "Stopped"}``."""
        status = result.get("status")
        if status not in ("Completed", "Stopped"):
            raise ValueError(f"the engine returned status {status!r}; expected 'Completed' or 'Stopped'")
        self._end(name, attempt, status, None)

    # Hooks.

    def _on_start(self, row: sqlite3.Row, at: float) -> dict[str, Any]:
        return {"transform_start_time": at, "transform_end_time": None}

    def _on_end(self, row: sqlite3.Row, status: str, at: float, output: Mapping[str, Any]) -> dict[str, Any]:
        return {"transform_end_time": at if row["transform_start_time"] is not None else None}


def execute_transform_job(
    run: Callable[..., Mapping[str, Any]],
    store: TransformJobStore,
    name: str,
    attempt: int,
    config: LocalAwsConfig,
) -> Mapping[str, Any]:
    """Call the transform engine in a worker, with stop requests over the SQLite file."""
    job = store.get(name)
    return run(
        job.request,
        job_name=job.name,
        model_data_url=job.model_data_url,
        config=config,
        should_stop=lambda: store.should_stop(name, attempt),
    )
