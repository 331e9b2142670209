"""Runs over arriving images: backfills for two classes, a rerun and the cost cap, on the local stack.

``airflow standalone`` runs the DAG with ``@daily`` and a default ``images_prefix`` of
``s3://<bucket>/incoming/dt={{ ds }}/``, as a team whose images arrive in date partitions would configure it.
Three days of partitions hold copies of seeded images (the simulated crowd finds objects by the image's
content), a fourth day holds none. ``airflow backfill create`` labels the days for Bird, then for Vehicle:
each run labels exactly its partition, the empty day makes no job, clearing a run pays for nothing new, and
Vehicle's last model trains on the labels of all three days. A run over the cost cap fails before any job.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from scripts.airflow_standalone import AirflowStandalone
from scripts.dated_partitions import fill_partitions
from tests.local_aws import scheduled_airflow as scheduled
from tests.local_aws.scheduled_airflow import (
    DAG_ID,
    labeled_uris,
    scheduled_airflow,
    wait_for_backfills_to_complete,
    wait_for_runs,
)
from tests.local_aws.test_dag_on_local_stack import ROLE_ARN, TINY_TRAINING

pytestmark = pytest.mark.integration

BUCKET = "arrivals"
PREFIX = "experiments"
INCOMING = f"s3://{BUCKET}/incoming/dt={{{{ ds }}}}/"
DAYS = ("2026-11-02", "2026-11-03", "2026-11-04")
EMPTY_DAY = "2026-11-05"
IMAGES_PER_DAY = 4  # 3 labeled, 1 held out
RUN_TIMEOUT_S = 600
CONF = {
    "n_images": IMAGES_PER_DAY - 1,
    "n_test_images": 1,
    "workers_per_image": 3,
    "bucket": BUCKET,
    "prefix": PREFIX,
    "role_arn": ROLE_ARN,
    "training_hyperparameters": TINY_TRAINING,
}


def partition_uri(day: str) -> str:
    return f"s3://{BUCKET}/incoming/dt={day}/"


@pytest.fixture(scope="module")
def airflow(local_stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStandalone]:
    with scheduled_airflow(local_stack, tmp_path_factory.mktemp("scheduled-airflow"), BUCKET, fill) as server:
        yield server


@pytest.fixture(scope="module")
def api(airflow: AirflowStandalone) -> Iterator[httpx.Client]:
    with airflow.api() as client:
        yield client


def fill(s3: Any) -> None:
    """Three days of arrivals, and an object in the first day that is no image to label (no image suffix)."""
    fill_partitions(s3, BUCKET, DAYS, IMAGES_PER_DAY)
    s3.put_object(Bucket=BUCKET, Key=f"incoming/dt={DAYS[0]}/manifest.csv", Body=b"not an image")


def backfill(airflow: AirflowStandalone, class_name: str, days: tuple[str, ...], *options: str) -> None:
    airflow.create_backfill(DAG_ID, days[0], days[-1], {**CONF, "class_name": class_name}, *options)


def task_states(api: httpx.Client, run_id: str) -> dict[str, str]:
    path = f"/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances"
    return {
        ti["task_id"]: ti["state"] for ti in api.get(path, params={"limit": 100}).json()["task_instances"]
    }


def selection_of(s3: Any, class_name: str, run_id: str) -> dict[str, Any]:
    return scheduled.selection_of(s3, BUCKET, PREFIX, class_name, run_id)


def labeling_jobs(sagemaker: Any) -> list[str]:
    return sorted(
        job["LabelingJobName"]
        for job in sagemaker.list_labeling_jobs(MaxResults=100)["LabelingJobSummaryList"]
    )


def test_backfills_label_each_partition_once_per_class(airflow, api, local_stack):
    s3 = local_stack.config.boto3_client("s3")
    sagemaker = local_stack.config.boto3_client("sagemaker")
    earlier_jobs = set(labeling_jobs(sagemaker))  # other tests' jobs on the session's stack

    backfill(airflow, "Bird", (*DAYS, EMPTY_DAY), "--max-active-runs", "4")
    api.patch(f"/dags/{DAG_ID}", json={"is_paused": False})  # a paused DAG's backfill runs wait
    birds = wait_for_runs(api, "Bird", (*DAYS, EMPTY_DAY), RUN_TIMEOUT_S)
    assert {day: run["state"] for day, run in birds.items()} == dict.fromkeys((*DAYS, EMPTY_DAY), "success")
    for day in DAYS:
        selection = selection_of(s3, "Bird", birds[day]["dag_run_id"])
        labeled = labeled_uris(selection)
        assert len(labeled) == IMAGES_PER_DAY - 1
        assert all(uri.startswith(partition_uri(day)) for uri in labeled), (day, labeled)
    empty = task_states(api, birds[EMPTY_DAY]["dag_run_id"])
    assert set(empty.values()) == {"skipped"}, empty
    bird_jobs = set(labeling_jobs(sagemaker)) - earlier_jobs
    assert len(bird_jobs) == len(DAYS)  # the empty day made none

    wait_for_backfills_to_complete(api, RUN_TIMEOUT_S)
    # Airflow keeps one run per day: the days' runs run again, now for Vehicle; Bird's results stay in S3.
    backfill(airflow, "Vehicle", DAYS, "--max-active-runs", "1", "--reprocess-behavior", "completed")
    vehicles = wait_for_runs(api, "Vehicle", DAYS, RUN_TIMEOUT_S)
    assert {day: run["state"] for day, run in vehicles.items()} == dict.fromkeys(DAYS, "success")
    last = vehicles[DAYS[-1]]["dag_run_id"]
    split_task = f"/dags/{DAG_ID}/dagRuns/{quote(last, safe='')}/taskInstances/train.split_output_manifest"
    split = api.get(f"{split_task}/xcomEntries/return_value").json()["value"]
    assert split["labeled_runs"] == len(DAYS)
    assert split["num_training_samples"] + split["num_validation_samples"] == len(DAYS) * (IMAGES_PER_DAY - 1)
    jobs = labeling_jobs(sagemaker)
    assert len(set(jobs) - earlier_jobs) == 2 * len(DAYS)

    for day in DAYS:
        assert selection_of(s3, "Bird", birds[day]["dag_run_id"])["class_name"] == "Bird"
        selection = selection_of(s3, "Vehicle", vehicles[day]["dag_run_id"])
        labeled = labeled_uris(selection)
        assert len(labeled) == IMAGES_PER_DAY - 1
        assert all(uri.startswith(partition_uri(day)) for uri in labeled), (day, labeled)

    rerun_id = vehicles[DAYS[1]]["dag_run_id"]
    api.post(
        f"/dags/{DAG_ID}/clearTaskInstances",
        json={"dag_run_id": rerun_id, "dry_run": False, "only_failed": False},
    )
    time.sleep(5)
    rerun = wait_for_runs(api, "Vehicle", (DAYS[1],), RUN_TIMEOUT_S)[DAYS[1]]
    assert rerun["state"] == "success"
    assert labeling_jobs(sagemaker) == jobs


def test_a_run_over_the_cost_cap_fails_before_any_labeling_job(airflow, api, local_stack):
    sagemaker = local_stack.config.boto3_client("sagemaker")
    before = labeling_jobs(sagemaker)
    conf = {
        **CONF,
        "class_name": "Car",
        "images_prefix": partition_uri(DAYS[0]),
        "max_labeling_cost_usd": 0.01,
    }
    run = api.post(f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": conf}).json()
    finished = {}
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while finished.get("state") not in ("success", "failed"):
        assert time.monotonic() < deadline, finished
        time.sleep(5)
        finished = api.get(f"/dags/{DAG_ID}/dagRuns/{quote(run['dag_run_id'], safe='')}").json()
    assert finished["state"] == "failed"
    states = task_states(api, run["dag_run_id"])
    assert states["label.build_labeling_job_request"] == "failed"
    log = airflow.task_log_tail(DAG_ID, run["dag_run_id"], "label.build_labeling_job_request", 50_000)
    assert "over the cap of $0.01" in log and "max_labeling_cost_usd" in log
    assert labeling_jobs(sagemaker) == before
    records = local_stack.config.boto3_client("s3").list_objects_v2(
        Bucket=BUCKET, Prefix=f"{PREFIX}/car/labeled-images/"
    )
    assert records.get("KeyCount", 0) == 0
