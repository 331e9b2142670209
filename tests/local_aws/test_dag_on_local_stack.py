"""The DAG's prepare, label and analyse groups run with ``dag.test()`` against the running local stack.

Only the Airflow connection differs from a run on AWS: ``AIRFLOW_CONN_AWS_DEFAULT`` from
``python -m local_aws env``. The labeling job is really labeled by the stack's simulated crowd and waited
for by the deferrable sensor.
"""

from __future__ import annotations

import json

import boto3
import pytest

from local_aws.environment import stack_variables
from local_aws.synthetic_open_images import dataset_uris
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

BUCKET = "dag-experiments"
ROLE_ARN = "arn:aws:iam::123456789012:role/LocalGroundTruth"


@pytest.fixture
def stack_env(local_stack, monkeypatch):
    for name, value in stack_variables(local_stack.config).items():
        monkeypatch.setenv(name, value)
    seeded = local_stack.cli("seed", "--images", "60")
    assert seeded.returncode == 0, seeded.stderr
    s3 = local_stack.config.boto3_client("s3")
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    return local_stack


def test_prepare_label_and_analyse_groups_run_on_the_stack(stack_env, airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags["ground_truth_object_detection"]
    subset = dag.partial_subset(task_ids=["analyse.analyse_labels"], include_upstream=True)
    conf = {
        "class_name": "Bird",
        "n_images": 12,
        "n_test_images": 2,
        "workers_per_image": 3,
        "bucket": BUCKET,
        "prefix": "dag-test",
        "role_arn": ROLE_ARN,
        **dataset_uris().as_dag_params(),
    }

    dag_run = subset.test(run_conf=conf)

    assert dag_run.state == "success"
    s3 = stack_env.config.boto3_client("s3")
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="dag-test/bird/")
        for item in page.get("Contents", [])
    ]
    metrics_keys = [key for key in keys if key.endswith("/analysis/metrics.json")]
    assert len(metrics_keys) == 1
    metrics = json.loads(s3.get_object(Bucket=BUCKET, Key=metrics_keys[0])["Body"].read())
    assert metrics["images"] == 12
    assert metrics["failed_images"] == 0
    assert metrics["human_labeled_images"] == 12
    assert metrics["detection_vs_reference"]["ap50"] > 0.8
    assert any(key.endswith("/analysis/report.html") for key in keys)
    sagemaker = boto3.client("sagemaker")
    [job] = [
        j
        for j in sagemaker.list_labeling_jobs(NameContains="gtod-bird")["LabelingJobSummaryList"]
        if j["LabelingJobName"] == metrics["labeling_job"]
    ]
    assert job["LabelingJobStatus"] == "Completed"
    assert job["LabelCounters"]["HumanLabeled"] == 12
