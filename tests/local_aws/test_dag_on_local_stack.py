"""The whole DAG runs offline on the local stack with ``airflow dags test`` and a small configuration.

Only the environment differs from a run on AWS: what ``python -m local_aws env`` prints (the Airflow
connection ``aws_default`` pointing at the stack, and a 5 s status check interval). The stack really labels
(simulated crowd), trains the object-detection algorithm (its CPU network, small images), runs the batch
transform, serves the endpoint, answers the invocation, and the teardown deletes the endpoint. A run for a
second class (a bird species) then keeps its results under its own prefix and leaves the first run's alone.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from local_aws.synthetic_open_images import dataset_uris
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

DAG_ID = "ground_truth_object_detection"
BUCKET = "dag-experiments"
PREFIX = "dag-test"
ROLE_ARN = "arn:aws:iam::123456789012:role/LocalGroundTruth"
RUN_TIMEOUT_S = 600
TINY_TRAINING = {
    "base_network": "mobilenet-v3",
    "use_pretrained_model": 0,
    "epochs": 2,
    "mini_batch_size": 4,
    "learning_rate": 0.004,
    "optimizer": "adam",
    "image_shape": 64,
}


@pytest.fixture(scope="module")
def seeded_stack(local_stack):
    seeded = local_stack.cli("seed", "--images", "60")
    assert seeded.returncode == 0, seeded.stderr
    s3 = local_stack.config.boto3_client("s3")
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    return local_stack


def keys_under(s3, prefix: str) -> list[str]:
    return [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        for item in page.get("Contents", [])
    ]


def dags_test(stack, conf: dict) -> str:
    """Run ``airflow dags test`` for ``conf`` against ``stack``; the command's output."""
    run = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", DAG_ID, "--conf", json.dumps(conf)],
        cwd=ROOT,
        env=stack.client_environment(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    return output


def run_conf(class_name: str, **overrides) -> dict:
    return {
        "class_name": class_name,
        "n_images": 12,
        "n_test_images": 2,
        "workers_per_image": 3,
        "bucket": BUCKET,
        "prefix": PREFIX,
        "role_arn": ROLE_ARN,
        "training_hyperparameters": TINY_TRAINING,
        **dataset_uris().as_dag_params(),
        **overrides,
    }


def finished_state(output: str) -> str:
    [finished] = [line for line in output.splitlines() if "DagRun Finished" in line]
    return finished.split("state=", 1)[1].split(",", 1)[0]


@pytest.fixture(scope="module")
def bird_run(seeded_stack, airflow_db) -> str:
    """The whole DAG's output for Bird."""
    return dags_test(seeded_stack, run_conf("Bird"))


def test_the_whole_dag_runs_on_the_stack_with_airflow_dags_test(seeded_stack, bird_run):
    assert finished_state(bird_run) == "success", bird_run[-6000:]
    s3 = seeded_stack.config.boto3_client("s3")
    keys = keys_under(s3, f"{PREFIX}/bird/")
    [metrics_key] = [key for key in keys if key.endswith("/analysis/metrics.json")]
    run_root = metrics_key.rsplit("/analysis/", 1)[0]
    metrics = json.loads(s3.get_object(Bucket=BUCKET, Key=metrics_key)["Body"].read())
    assert (metrics["images"], metrics["failed_images"]) == (12, 0)
    assert metrics["detection_vs_reference"]["ap50"] > 0.8

    sagemaker = seeded_stack.config.boto3_client("sagemaker")
    # The session's stack holds other tests' Bird jobs too: this run's names share its digest.
    run_resources = metrics["labeling_job"].rsplit("-", 1)[0]  # gtod-bird-<digest of the run>
    [training] = sagemaker.list_training_jobs(NameContains=run_resources)["TrainingJobSummaries"]
    described = sagemaker.describe_training_job(TrainingJobName=training["TrainingJobName"])
    assert described["TrainingJobStatus"] == "Completed"
    assert described["HyperParameters"]["base_network"] == "mobilenet-v3"
    assert [m["MetricName"] for m in described["FinalMetricDataList"]] == ["validation:mAP"]
    artifact = described["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact.startswith(f"s3://{BUCKET}/{run_root}/") and artifact.endswith("/output/model.tar.gz")

    [transform] = sagemaker.list_transform_jobs(NameContains=run_resources)["TransformJobSummaries"]
    assert transform["TransformJobStatus"] == "Completed"
    outputs = [key for key in keys if key.endswith(".out")]
    assert len(outputs) == 2
    for key in outputs:
        assert "prediction" in json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    [response_key] = [key for key in keys if key.endswith("realtime-response.json")]
    response = json.loads(s3.get_object(Bucket=BUCKET, Key=response_key)["Body"].read())
    assert all(len(row) == 6 for row in response["prediction"])
    # The last task completed the analysis's report with the model and its predictions.
    for name in ("most-confident-labels.png", "model-validation-map.png", "batch-predictions.png"):
        assert f"{run_root}/analysis/{name}" in keys, name
    report = s3.get_object(Bucket=BUCKET, Key=f"{run_root}/analysis/report.html")["Body"].read().decode()
    assert "<h2>Trained model</h2>" in report and "<h2>Real-time endpoint</h2>" in report
    assert "Still to come" not in report

    assert sagemaker.list_endpoints(NameContains="gtod-bird")["Endpoints"] == []
    assert sagemaker.list_endpoint_configs(NameContains="gtod-bird")["EndpointConfigs"] == []
    assert [m["ModelName"] for m in sagemaker.list_models(NameContains="gtod-bird")["Models"]]


def test_a_run_for_a_second_class_keeps_to_its_own_prefix(seeded_stack, bird_run):
    s3 = seeded_stack.config.boto3_client("s3")
    before = {
        item["Key"]: item["ETag"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/")
        for item in page.get("Contents", [])
    }

    output = dags_test(seeded_stack, run_conf("Duck", n_images=6))

    assert finished_state(output) == "success", output[-6000:]
    after = {
        item["Key"]: item["ETag"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/")
        for item in page.get("Contents", [])
    }
    assert {key: after.get(key) for key in before} == before
    new_keys = set(after) - set(before)
    assert new_keys and all(key.startswith(f"{PREFIX}/duck/") for key in new_keys)
    assert any(key.endswith("/predictions/realtime-response.json") for key in new_keys)
    sagemaker = seeded_stack.config.boto3_client("sagemaker")
    jobs = sagemaker.list_labeling_jobs(NameContains="gtod-duck")["LabelingJobSummaryList"]
    assert [job["LabelingJobStatus"] for job in jobs] == ["Completed"]
    assert jobs[0]["LabelCounters"]["TotalLabeled"] == 6
