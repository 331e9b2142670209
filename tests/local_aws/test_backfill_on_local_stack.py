"""Runs over arriving images: backfills for two classes, a rerun and the cost cap, on the local stack.

``airflow standalone`` runs the DAG with ``@daily`` and a default ``images_prefix`` of
``s3://<bucket>/incoming/dt={{ ds }}/``, as a team whose images arrive in date partitions would configure it.
Three days of partitions hold copies of seeded images (the simulated crowd finds objects by the image's
content), a fourth day holds none. ``airflow backfill create`` labels the days for Bird, then for Vehicle:
each run labels exactly its partition, the empty day makes no job, clearing a run pays for nothing new, and
Vehicle's last model trains on the labels of all three days. A run over the cost cap fails before any job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from scripts.airflow_standalone import AirflowStandalone, start_standalone
from scripts.dated_partitions import fill_partitions
from tests.local_aws.ports import free_port
from tests.local_aws.test_dag_on_local_stack import ROLE_ARN, TINY_TRAINING

pytestmark = pytest.mark.integration

DAG_ID = "ground_truth_object_detection"
BUCKET = "arrivals"
PREFIX = "experiments"
INCOMING = f"s3://{BUCKET}/incoming/dt={{{{ ds }}}}/"
DAYS = ("2026-11-02", "2026-11-03", "2026-11-04")
EMPTY_DAY = "2026-11-05"
IMAGES_PER_DAY = 4  # 3 labeled, 1 held out
SEEDED_IMAGES = 60
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
    server = start_standalone(
        local_stack.config,
        tmp_path_factory.mktemp("scheduled-airflow"),
        free_port,
        AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__SCHEDULE="@daily",
        AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__IMAGES_PREFIX=INCOMING,
    )
    try:
        seeded = local_stack.cli("seed", "--images", str(SEEDED_IMAGES))
        assert seeded.returncode == 0, seeded.stderr
        upload_partitions(local_stack.config.boto3_client("s3"))
        server.wait_until_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api(airflow: AirflowStandalone) -> Iterator[httpx.Client]:
    with airflow.api() as client:
        yield client


def upload_partitions(s3: Any) -> None:
    """Three days of arrivals, and an object in the first day that is no image to label (no image suffix)."""
    s3.create_bucket(Bucket=BUCKET)
    fill_partitions(s3, BUCKET, DAYS, IMAGES_PER_DAY)
    s3.put_object(Bucket=BUCKET, Key=f"incoming/dt={DAYS[0]}/manifest.csv", Body=b"not an image")


def backfill(
    airflow: AirflowStandalone, class_name: str, days: tuple[str, ...], max_active_runs: int, *options: str
) -> None:
    created = airflow.cli(
        "backfill",
        "create",
        "--dag-id",
        DAG_ID,
        "--from-date",
        days[0],
        "--to-date",
        days[-1],
        "--max-active-runs",
        str(max_active_runs),
        "--dag-run-conf",
        json.dumps({**CONF, "class_name": class_name}),
        *options,
    )
    assert created.returncode == 0, created.stdout + created.stderr


def runs_of(api: httpx.Client, class_name: str) -> dict[str, dict[str, Any]]:
    """The class's DAG runs by the day (``ds``) they cover."""
    runs = api.get(f"/dags/{DAG_ID}/dagRuns", params={"limit": 100}).json()["dag_runs"]
    return {
        run["logical_date"][:10]: run for run in runs if (run["conf"] or {}).get("class_name") == class_name
    }


def wait_for_runs(api: httpx.Client, class_name: str, days: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        runs = runs_of(api, class_name)
        if set(days) <= set(runs) and all(runs[day]["state"] in ("success", "failed") for day in days):
            return runs
        if time.monotonic() > deadline:
            pytest.fail(f"{class_name} runs not finished after {RUN_TIMEOUT_S} s: {runs}")
        time.sleep(5)


def wait_for_backfills_to_complete(api: httpx.Client) -> None:
    """Until the scheduler has marked every backfill of the DAG complete: one may run at a time."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        backfills = api.get("/backfills", params={"dag_id": DAG_ID}).json()["backfills"]
        if all(backfill["completed_at"] for backfill in backfills):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"backfills not complete after {RUN_TIMEOUT_S} s: {backfills}")
        time.sleep(2)


def task_states(api: httpx.Client, run_id: str) -> dict[str, str]:
    path = f"/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances"
    return {
        ti["task_id"]: ti["state"] for ti in api.get(path, params={"limit": 100}).json()["task_instances"]
    }


def selection_of(s3: Any, class_name: str, run_id: str) -> dict[str, Any]:
    from ground_truth_pipeline.experiment import ExperimentLayout

    layout = ExperimentLayout.for_run(BUCKET, PREFIX, class_name, run_id)
    return json.loads(s3.get_object(Bucket=BUCKET, Key=layout.selection_summary_key)["Body"].read())


def labeling_jobs(sagemaker: Any) -> list[str]:
    return sorted(
        job["LabelingJobName"]
        for job in sagemaker.list_labeling_jobs(MaxResults=100)["LabelingJobSummaryList"]
    )


def test_backfills_label_each_partition_once_per_class(airflow, api, local_stack):
    s3 = local_stack.config.boto3_client("s3")
    sagemaker = local_stack.config.boto3_client("sagemaker")
    api.patch(f"/dags/{DAG_ID}", json={"is_paused": False})

    backfill(airflow, "Bird", (*DAYS, EMPTY_DAY), max_active_runs=4)
    birds = wait_for_runs(api, "Bird", (*DAYS, EMPTY_DAY))
    assert {day: run["state"] for day, run in birds.items()} == dict.fromkeys((*DAYS, EMPTY_DAY), "success")
    for day in DAYS:
        selection = selection_of(s3, "Bird", birds[day]["dag_run_id"])
        labeled = [selection["source_uris"][i] for i in selection["labeled_image_ids"]]
        assert len(labeled) == IMAGES_PER_DAY - 1
        assert all(uri.startswith(partition_uri(day)) for uri in labeled), (day, labeled)
    empty = task_states(api, birds[EMPTY_DAY]["dag_run_id"])
    assert set(empty.values()) == {"skipped"}, empty
    jobs_after_birds = labeling_jobs(sagemaker)
    assert len(jobs_after_birds) == len(DAYS)

    wait_for_backfills_to_complete(api)
    # Airflow keeps one run per day: the days' runs run again, now for Vehicle; Bird's results stay in S3.
    backfill(airflow, "Vehicle", DAYS, 1, "--reprocess-behavior", "completed")
    vehicles = wait_for_runs(api, "Vehicle", DAYS)
    assert {day: run["state"] for day, run in vehicles.items()} == dict.fromkeys(DAYS, "success")
    last = vehicles[DAYS[-1]]["dag_run_id"]
    split_task = f"/dags/{DAG_ID}/dagRuns/{quote(last, safe='')}/taskInstances/train.split_output_manifest"
    split = api.get(f"{split_task}/xcomEntries/return_value").json()["value"]
    assert split["labeled_runs"] == len(DAYS)
    assert split["num_training_samples"] + split["num_validation_samples"] == len(DAYS) * (IMAGES_PER_DAY - 1)
    jobs = labeling_jobs(sagemaker)
    assert len(jobs) == 2 * len(DAYS)

    for day in DAYS:
        assert selection_of(s3, "Bird", birds[day]["dag_run_id"])["class_name"] == "Bird"
        selection = selection_of(s3, "Vehicle", vehicles[day]["dag_run_id"])
        labeled = [selection["source_uris"][i] for i in selection["labeled_image_ids"]]
        assert len(labeled) == IMAGES_PER_DAY - 1
        assert all(uri.startswith(partition_uri(day)) for uri in labeled), (day, labeled)

    rerun_id = vehicles[DAYS[1]]["dag_run_id"]
    api.post(
        f"/dags/{DAG_ID}/clearTaskInstances",
        json={"dag_run_id": rerun_id, "dry_run": False, "only_failed": False},
    )
    time.sleep(5)
    rerun = wait_for_runs(api, "Vehicle", (DAYS[1],))[DAYS[1]]
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
