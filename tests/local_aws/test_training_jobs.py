"""Training jobs of the object-detection algorithm on the running stack, through boto3.

The tiny detector (``detector_jobs.trained_job``) is trained once and shared with the transform tests.
"""

from __future__ import annotations

import io
import itertools
import re
import tarfile

import pytest
from botocore.exceptions import ClientError

from local_aws.s3_objects import read_object
from tests.local_aws.detector_jobs import (
    labeled_data,
    log_messages,
    log_messages_so_far,
    trained_job,
    training_request,
    wait_for,
    wait_for_training,
)

TRAINING_LOGS = "/aws/sagemaker/TrainingJobs"
MAP_LINE = re.compile(r"#quality_metric: host=algo-1, epoch=(\d+), validation mAP <score>=\(([0-9.e-]+)\)")


@pytest.fixture(scope="module")
def config(local_stack):
    return local_stack.config


@pytest.fixture(scope="module")
def sagemaker(config):
    return config.boto3_client("sagemaker")


@pytest.fixture(scope="module")
def trained(config):
    return trained_job(config)


def test_a_tiny_training_job_completes_with_its_model_metric_and_logs(config, sagemaker, trained) -> None:
    name = trained["TrainingJobName"]
    assert (trained["TrainingJobStatus"], trained["SecondaryStatus"]) == ("Completed", "Completed")
    transitions = trained["SecondaryStatusTransitions"]
    assert [t["Status"] for t in transitions] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert all(t["StartTime"] <= t["EndTime"] for t in transitions)
    assert all(a["EndTime"] == b["StartTime"] for a, b in itertools.pairwise(transitions))
    assert trained["CreationTime"] <= trained["TrainingStartTime"] < trained["TrainingEndTime"]
    assert trained["TrainingTimeInSeconds"] == trained["BillableTimeInSeconds"] >= 1
    assert trained["StoppingCondition"] == {"MaxRuntimeInSeconds": 600}
    assert trained["HyperParameters"]["image_shape"] == "64"

    artifact = trained["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"{labeled_data(config).output_path}/{name}/output/model.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(read_object(config.boto3_client("s3"), artifact))) as archive:
        assert "model_algo-1.pt" in archive.getnames()

    stream, messages = log_messages(config, TRAINING_LOGS, f"{name}/")
    assert re.fullmatch(rf"{name}/algo-1-\d{{10}}", stream)
    (final,) = [message for message in messages if "Final configuration: " in message]
    assert "u'num_training_samples': u'30'" in final and "u'base_network': u'mobilenet-v3'" in final
    epochs = [MAP_LINE.search(message) for message in messages]
    values = [(int(match[1]), float(match[2])) for match in epochs if match]
    assert [epoch for epoch, _ in values] == [0, 1]
    (metric,) = trained["FinalMetricDataList"]
    assert metric["MetricName"] == "validation:mAP"
    assert metric["Value"] == pytest.approx(values[-1][1])
    assert 0.0 <= metric["Value"] <= 1.0
    assert trained["TrainingStartTime"] <= metric["Timestamp"] <= trained["TrainingEndTime"]

    summaries = sagemaker.list_training_jobs(NameContains="TINY-BIRDS")["TrainingJobSummaries"]
    assert [(s["TrainingJobName"], s["TrainingJobStatus"]) for s in summaries] == [(name, "Completed")]
    sagemaker.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 2}
    )


def test_a_taken_name_a_missing_job_and_a_stop_after_the_end_are_refused(config, sagemaker, trained) -> None:
    name = trained["TrainingJobName"]
    with pytest.raises(ClientError) as taken:
        sagemaker.create_training_job(**training_request(name.upper(), labeled_data(config)))
    assert taken.value.response["Error"]["Code"] == "ResourceInUse"
    assert trained["TrainingJobArn"] in taken.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as missing:
        sagemaker.describe_training_job(TrainingJobName="no-such-training-job")
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError, match="Completed; only an InProgress job can be stopped"):
        sagemaker.stop_training_job(TrainingJobName=name)


def test_a_stopped_training_job_keeps_the_best_model_so_far(config, sagemaker) -> None:
    name = "stopped-birds"
    sagemaker.create_training_job(**training_request(name, labeled_data(config), epochs="200"))
    wait_for(
        lambda: log_messages_so_far(config, TRAINING_LOGS, f"{name}/"),
        lambda messages: any(MAP_LINE.search(message) for message in messages),
    )
    sagemaker.stop_training_job(TrainingJobName=name)
    assert sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] in (
        "Stopping",
        "Stopped",
    )
    sagemaker.stop_training_job(TrainingJobName=name)  # a second stop while stopping is no error
    described = wait_for_training(sagemaker, name)
    assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == ("Stopped", "Stopped")
    statuses = [t["Status"] for t in described["SecondaryStatusTransitions"]]
    assert statuses[:3] == ["Starting", "Downloading", "Training"]
    assert statuses[-3:] == ["Stopping", "Uploading", "Stopped"]
    assert "FailureReason" not in described
    assert described["TrainingTimeInSeconds"] < 120
    (metric,) = described["FinalMetricDataList"]
    assert metric["MetricName"] == "validation:mAP"
    s3 = config.boto3_client("s3")
    assert read_object(s3, described["ModelArtifacts"]["S3ModelArtifacts"])[:2] == b"\x1f\x8b"  # gzip
    _, messages = log_messages(config, TRAINING_LOGS, f"{name}/")
    assert any(re.search(r"Training stopped on request after \d+ of 200 epochs", m) for m in messages)


def test_max_runtime_stops_the_job_as_max_runtime_exceeded(config, sagemaker) -> None:
    name = "out-of-time-birds"
    sagemaker.create_training_job(
        **training_request(name, labeled_data(config), max_runtime_s=3, epochs="200")
    )
    described = wait_for_training(sagemaker, name)
    assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert described["SecondaryStatusTransitions"][-1]["Status"] == "MaxRuntimeExceeded"
    assert described["StoppingCondition"]["MaxRuntimeInSeconds"] == 3
    assert described["TrainingTimeInSeconds"] < 60


@pytest.mark.parametrize(
    ("hyperparameters", "reason"),
    [
        ({"epochs": "0"}, "ClientError: hyperparameter epochs='0' is invalid: it must be a positive integer"),
        ({"epoch": "3"}, "ClientError: unknown hyperparameter 'epoch'"),
        ({"num_classes": "1", "label_width": "8"}, "ClientError: hyperparameter label_width=8 is too small"),
    ],
)
def test_invalid_hyperparameters_fail_the_job_as_a_client_error(config, sagemaker, hyperparameters, reason):
    name = f"bad-hp-{'-'.join(hyperparameters)}".replace("_", "-")
    sagemaker.create_training_job(**training_request(name, labeled_data(config), **hyperparameters))
    described = wait_for_training(sagemaker, name)
    assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == ("Failed", "Failed")
    assert described["FailureReason"].startswith(reason)
    assert "FinalMetricDataList" not in described
    _, messages = log_messages(config, TRAINING_LOGS, f"{name}/")
    assert any(" ERROR " in message and "Customer Error: " in message for message in messages)


def test_a_job_without_a_validation_channel_fails_naming_the_channels(config, sagemaker) -> None:
    request = training_request("no-validation", labeled_data(config))
    request["InputDataConfig"] = request["InputDataConfig"][:1]
    sagemaker.create_training_job(**request)
    described = wait_for_training(sagemaker, "no-validation")
    assert described["TrainingJobStatus"] == "Failed"
    assert "channels 'train' and 'validation'" in described["FailureReason"]
    assert "the job has 'train'" in described["FailureReason"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: r["AlgorithmSpecification"].update(
                TrainingImage="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
            ),
            "AlgorithmSpecification.TrainingImage '683313688378.dkr.ecr.us-east-1.amazonaws.com/"
            "sagemaker-xgboost:1.7-1' is not an image the local stack runs",
        ),
        (
            lambda r: r["InputDataConfig"][0]["DataSource"]["S3DataSource"].update(S3DataType="S3Prefix"),
            "InputDataConfig channel 'train': S3DataType 'S3Prefix' is not served",
        ),
        (
            lambda r: r["ResourceConfig"].update(InstanceCount=2),
            "ResourceConfig.InstanceCount 2 is not served: the local stack trains on one instance",
        ),
    ],
)
def test_requests_the_stack_cannot_serve_are_refused_at_once(config, sagemaker, change, message) -> None:
    request = training_request("refused", labeled_data(config))
    change(request)
    with pytest.raises(ClientError) as refused:
        sagemaker.create_training_job(**request)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert message in refused.value.response["Error"]["Message"]
    with pytest.raises(ClientError, match="Requested resource not found"):
        sagemaker.describe_training_job(TrainingJobName="refused")
