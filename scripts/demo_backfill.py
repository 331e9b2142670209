"""Backfills two classes over dated partitions of arriving images on the local stack: ``make demo-backfill``.

Three days' partitions (``s3://ground-truth-od/incoming/dt=<day>/``, the three days before yesterday) get
copies of seeded images, as a team's arriving photographs would. ``airflow standalone`` (its home in
``.airflow-backfill/``, on a free port) runs the DAG scheduled ``@daily`` over those partitions. Then
``airflow backfill create`` labels the three days for Bird, and again for Vehicle (the days' runs run again
for the new class, one at a time, so that each day's model trains on the labels of the days before it). It
prints what each run labeled and what it would have cost on AWS, and stops Airflow.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from scripts.airflow_standalone import AirflowStandalone, start_standalone
from scripts.dated_partitions import fill_partitions, partition_prefix
from scripts.demo import CPU_TRAINING, DAG_ID, ROLE_ARN, ROOT, ensure_bucket, point_at_stack

HOME = ROOT / ".airflow-backfill"
BUCKET = "ground-truth-od"
PREFIX = "demo-backfill"
CLASSES = ("Bird", "Vehicle")
IMAGES_PER_DAY = 4  # 3 to label, 1 held out for the batch transform and the endpoint
RUN_TIMEOUT_S = 1800


def backfill(airflow: AirflowStandalone, class_name: str, days: list[str], *options: str) -> None:
    conf = {
        "class_name": class_name,
        "n_images": IMAGES_PER_DAY - 1,
        "n_test_images": 1,
        "workers_per_image": 3,
        "bucket": BUCKET,
        "prefix": PREFIX,
        "role_arn": ROLE_ARN,
        "training_hyperparameters": CPU_TRAINING,
    }
    airflow.create_backfill(DAG_ID, days[0], days[-1], conf, *options)
    print(f"Backfilling {class_name} over {days[0]} .. {days[-1]} {' '.join(options)}".rstrip())


def wait_for_backfill(api: Any) -> list[dict[str, Any]]:
    """Until the scheduler has completed every backfill of the DAG; the DAG's runs then."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        backfills = api.get("/backfills", params={"dag_id": DAG_ID}).json()["backfills"]
        if backfills and all(backfill["completed_at"] for backfill in backfills):
            return api.get(f"/dags/{DAG_ID}/dagRuns", params={"limit": 100}).json()["dag_runs"]
        if time.monotonic() > deadline:
            raise SystemExit(f"The backfill did not complete within {RUN_TIMEOUT_S} s")
        time.sleep(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    config = point_at_stack()
    ensure_bucket(config, BUCKET)
    s3 = config.boto3_client("s3")
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=offset)).isoformat() for offset in (4, 3, 2)]
    fill_partitions(s3, BUCKET, days, IMAGES_PER_DAY)
    print(f"Filled {len(days)} partitions: s3://{BUCKET}/{partition_prefix('<day>')} for {', '.join(days)}")

    shutil.rmtree(HOME, ignore_errors=True)
    airflow = start_standalone(
        config,
        HOME,
        AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__SCHEDULE="@daily",
        AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__IMAGES_PREFIX=f"s3://{BUCKET}/incoming/dt={{{{ ds }}}}/",
        AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__BUCKET=BUCKET,
        AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__PREFIX=PREFIX,
    )
    started = time.monotonic()
    try:
        airflow.wait_until_ready()
        airflow.wait_for_dag(DAG_ID)
        print(f"Airflow is up on {airflow.base_url} (its log: {airflow.log_file})")
        with airflow.api() as api:
            backfill(airflow, CLASSES[0], days, "--max-active-runs", "3")
            api.patch(f"/dags/{DAG_ID}", json={"is_paused": False})  # a paused DAG's backfill runs wait
            wait_for_backfill(api)
            backfill(airflow, CLASSES[1], days, "--max-active-runs", "1", "--reprocess-behavior", "completed")
            runs = wait_for_backfill(api)
        states = sorted({run["state"] for run in runs})
        elapsed = time.monotonic() - started
        print(f"\nBackfills done in {elapsed:.0f} s; the days' runs ended {', '.join(states)}.")
        for class_name in CLASSES:
            print(f"{class_name}:")
            print(f"  {class_name} in all: ${report(s3, class_name):.2f}")
        if states != ["success"]:
            raise SystemExit(f"A run did not succeed: see {airflow.log_file} and {HOME / 'logs'}")
    finally:
        airflow.stop()


def report(s3: Any, class_name: str) -> float:
    """Print what each labeled run of the class labeled and cost, from S3 (the record of its labeled runs:
    the first class's Airflow runs were run again for the second class); the class's total."""
    from ground_truth_pipeline.experiment import ExperimentLayout
    from ground_truth_pipeline.object_store import S3ObjectStore

    store = S3ObjectStore(s3, BUCKET)
    total = 0.0
    results = []
    runs_prefix = ExperimentLayout.for_run(
        BUCKET, PREFIX, class_name, "any run"
    ).labeled_runs_prefix  # shared
    for record_key in store.list_keys(runs_prefix):
        run_id = json.loads(store.read_bytes(record_key))["run_id"]
        layout = ExperimentLayout.for_run(BUCKET, PREFIX, class_name, run_id)
        selection = json.loads(store.read_bytes(layout.selection_summary_key))
        results.append((selection, json.loads(store.read_bytes(layout.metrics_key))))
    for selection, metrics in sorted(results, key=lambda result: result[0]["images_prefix"]):
        total += metrics["cost_usd"]["total"]
        print(
            f"  {selection['images_prefix']}: labeled {len(selection['labeled_image_ids'])} images "
            f"(held out {len(selection['held_out_image_ids'])}), {metrics['boxes']['consolidated']} boxes, "
            f"${metrics['cost_usd']['total']:.2f} at the reference's prices, job {metrics['labeling_job']}"
        )
    return total


if __name__ == "__main__":
    main()
