"""``airflow standalone`` scheduled ``@daily`` over dated partitions of a bucket on the session's stack (as a
team whose images arrive by day configures it), and its DAG's runs and backfills as its REST API shows them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from ground_truth_pipeline.experiment import ExperimentLayout
from scripts.airflow_standalone import AirflowStandalone, start_standalone
from tests.local_aws.ports import free_port

DAG_ID = "ground_truth_object_detection"
SEEDED_IMAGES = 60  # as test_dag_on_local_stack seeds them
POLL_S = 3


@contextmanager
def scheduled_airflow(
    local_stack: Any, home: Path, bucket: str, fill: Callable[[Any], None]
) -> Iterator[AirflowStandalone]:
    """Airflow with the DAG ``@daily`` over ``s3://<bucket>/incoming/dt={{ ds }}/``; ``fill`` gets the stack's
    S3 client to put images there (the stack seeded, the bucket made) while Airflow starts."""
    server = start_standalone(
        local_stack.config,
        home,
        free_port,
        AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__SCHEDULE="@daily",
        AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__IMAGES_PREFIX=f"s3://{bucket}/incoming/dt={{{{ ds }}}}/",
        AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__BUCKET=bucket,
    )
    try:
        seeded = local_stack.cli("seed", "--images", str(SEEDED_IMAGES))
        assert seeded.returncode == 0, seeded.stderr
        s3 = local_stack.config.boto3_client("s3")
        if bucket not in {listed["Name"] for listed in s3.list_buckets()["Buckets"]}:
            s3.create_bucket(Bucket=bucket)
        fill(s3)
        server.wait_until_ready()
        server.wait_for_dag(DAG_ID)
        yield server
    finally:
        server.stop()


def runs_by_day(api: httpx.Client, class_name: str) -> dict[str, dict[str, Any]]:
    """The class's DAG runs by the day (``ds``, the logical date) they cover."""
    runs = api.get(f"/dags/{DAG_ID}/dagRuns", params={"limit": 100}).json()["dag_runs"]
    return {
        run["logical_date"][:10]: run for run in runs if (run["conf"] or {}).get("class_name") == class_name
    }


def wait_for_runs(
    api: httpx.Client, class_name: str, days: tuple[str, ...], timeout_s: float
) -> dict[str, dict[str, Any]]:
    """The class's runs of ``days`` once each has succeeded or failed."""
    deadline = time.monotonic() + timeout_s
    while True:
        runs = runs_by_day(api, class_name)
        if set(days) <= set(runs) and all(runs[day]["state"] in ("success", "failed") for day in days):
            return runs
        if time.monotonic() > deadline:
            pytest.fail(f"{class_name} runs of {days} not finished after {timeout_s} s: {runs}")
        time.sleep(POLL_S)


def wait_for_backfills_to_complete(api: httpx.Client, timeout_s: float) -> None:
    """Until the scheduler has marked every backfill of the DAG complete: one may run at a time."""
    deadline = time.monotonic() + timeout_s
    while True:
        backfills = api.get("/backfills", params={"dag_id": DAG_ID}).json()["backfills"]
        if all(backfill["completed_at"] for backfill in backfills):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"backfills not complete after {timeout_s} s: {backfills}")
        time.sleep(POLL_S)


def selection_of(s3: Any, bucket: str, prefix: str, class_name: str, run_id: str) -> dict[str, Any]:
    """What a run's prepare group chose (``selection.json``)."""
    layout = ExperimentLayout.for_run(bucket, prefix, class_name, run_id)
    return json.loads(s3.get_object(Bucket=bucket, Key=layout.selection_summary_key)["Body"].read())


def labeled_uris(selection: dict[str, Any]) -> list[str]:
    return [selection["source_uris"][image] for image in selection["labeled_image_ids"]]
