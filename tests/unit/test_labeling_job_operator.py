"""SageMakerCreateLabelingJobOperator against a real boto3 SageMaker client wrapped in botocore's Stubber.

The Stubber checks every request against the expected parameters and raises on any call that was not
queued, so a test that queues no CreateLabelingJob proves the operator did not create a job.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import boto3
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred
from botocore.stub import Stubber

from ground_truth_pipeline.aws.labeling_job_hook import GroundTruthLabelingHook
from ground_truth_pipeline.aws.labeling_job_operator import (
    SageMakerCreateLabelingJobOperator,
    request_differences,
)
from ground_truth_pipeline.aws.labeling_job_trigger import SageMakerLabelingJobTrigger

REGION = "us-east-1"
ACCOUNT = "123456789012"
LAMBDA_PREFIX = f"arn:aws:lambda:{REGION}:432418664414:function"
JOB_NAME = "gtod-bird-3f9c1a2b7d-label"
JOB_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:labeling-job/{JOB_NAME}"
ROOT = "s3://gt-bucket/ground-truth-od/bird/manual-2026-11-26-1a2b3c4d"
OUTPUT_MANIFEST = f"{ROOT}/labeling/{JOB_NAME}/manifests/output/output.manifest"

REQUEST: dict[str, Any] = {
    "LabelingJobName": JOB_NAME,
    "LabelAttributeName": "category",
    "InputConfig": {
        "DataSource": {"S3DataSource": {"ManifestS3Uri": f"{ROOT}/input.manifest"}},
        "DataAttributes": {
            "ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation", "FreeOfAdultContent"]
        },
    },
    "OutputConfig": {"S3OutputPath": f"{ROOT}/labeling/"},
    "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/GroundTruthExecution",
    "LabelCategoryConfigS3Uri": f"{ROOT}/class_labels.json",
    "HumanTaskConfig": {
        "WorkteamArn": f"arn:aws:sagemaker:{REGION}:394669845002:workteam/public-crowd/default",
        "UiConfig": {"UiTemplateS3Uri": f"{ROOT}/instructions.template"},
        "PreHumanTaskLambdaArn": f"{LAMBDA_PREFIX}:PRE-BoundingBox",
        "TaskKeywords": ["image", "object", "detection"],
        "TaskTitle": "Draw a box around each bird",
        "TaskDescription": "Draw a tight box around every bird in the image.",
        "NumberOfHumanWorkersPerDataObject": 5,
        "TaskTimeLimitInSeconds": 300,
        "TaskAvailabilityLifetimeInSeconds": 21600,
        "AnnotationConsolidationConfig": {
            "AnnotationConsolidationLambdaArn": f"{LAMBDA_PREFIX}:ACS-BoundingBox"
        },
        "PublicWorkforceTaskPrice": {"AmountInUsd": {"Dollars": 0, "Cents": 3, "TenthFractionsOfACent": 6}},
    },
    "Tags": [{"Key": "project", "Value": "ground-truth-od"}],
}

COUNTERS_RUNNING = {
    "TotalLabeled": 4,
    "HumanLabeled": 4,
    "MachineLabeled": 0,
    "FailedNonRetryableError": 0,
    "Unlabeled": 6,
}
COUNTERS_DONE = {
    "TotalLabeled": 10,
    "HumanLabeled": 7,
    "MachineLabeled": 3,
    "FailedNonRetryableError": 0,
    "Unlabeled": 0,
}
COUNTERS_FAILED = {
    "TotalLabeled": 2,
    "HumanLabeled": 2,
    "MachineLabeled": 0,
    "FailedNonRetryableError": 8,
    "Unlabeled": 0,
}
FAILURE_REASON = "ClientError: Input manifest line 3 is not valid JSON"


def described_job(
    status: str, counters: dict[str, int] | None = None, request: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A DescribeLabelingJob response with every member of botocore's output shape that applies."""
    echoed = copy.deepcopy(REQUEST if request is None else request)
    # SageMaker echoes the request with defaults filled in where the request left a value out.
    echoed["HumanTaskConfig"].setdefault("MaxConcurrentTaskCount", 1000)
    echoed.setdefault("StoppingConditions", {"MaxPercentageOfInputDatasetLabeled": 100})
    response = {
        "LabelingJobStatus": status,
        "LabelCounters": counters or COUNTERS_RUNNING,
        "CreationTime": datetime(2026, 11, 26, 9, 0, tzinfo=UTC),
        "LastModifiedTime": datetime(2026, 11, 26, 9, 30, tzinfo=UTC),
        "JobReferenceCode": "a1b2c3d4e5",
        "LabelingJobArn": JOB_ARN,
        **echoed,
        "ResponseMetadata": {"HTTPStatusCode": 200},
    }
    if status in {"Failed", "Stopped"}:
        response["FailureReason"] = FAILURE_REASON
    if status == "Completed":
        response["LabelingJobOutput"] = {"OutputDatasetS3Uri": OUTPUT_MANIFEST}
    return response


@pytest.fixture
def stubber():
    client = boto3.client(
        "sagemaker", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with (
        Stubber(client) as stub,
        mock.patch.object(
            GroundTruthLabelingHook, "conn", new_callable=mock.PropertyMock, return_value=client
        ),
    ):
        yield stub
        stub.assert_no_pending_responses()


def expect_describe(stub: Stubber, response: dict[str, Any]) -> None:
    stub.add_response("describe_labeling_job", response, {"LabelingJobName": JOB_NAME})


def expect_no_job(stub: Stubber) -> None:
    stub.add_client_error(
        "describe_labeling_job",
        service_error_code="ResourceNotFound",
        service_message=f"Could not find labeling job {JOB_NAME}",
        http_status_code=400,
        expected_params={"LabelingJobName": JOB_NAME},
    )


def expect_create(stub: Stubber, request: dict[str, Any]) -> None:
    stub.add_response("create_labeling_job", {"LabelingJobArn": JOB_ARN}, request)


def make_operator(config: dict[str, Any] | None = None, **kwargs: Any) -> SageMakerCreateLabelingJobOperator:
    return SageMakerCreateLabelingJobOperator(
        task_id="start_labeling_job",
        config=copy.deepcopy(REQUEST if config is None else config),
        check_interval=0,
        **kwargs,
    )


COMPLETED_RESULT = {
    "LabelingJobName": JOB_NAME,
    "LabelingJobArn": JOB_ARN,
    "LabelingJobStatus": "Completed",
    "OutputDatasetS3Uri": OUTPUT_MANIFEST,
    "LabelCounters": COUNTERS_DONE,
}


def test_creates_the_job_and_waits_for_it(stubber):
    expect_no_job(stubber)
    expect_create(stubber, REQUEST)
    expect_describe(stubber, described_job("Initializing"))
    expect_describe(stubber, described_job("InProgress"))
    expect_describe(stubber, described_job("Completed", COUNTERS_DONE))
    expect_describe(stubber, described_job("Completed", COUNTERS_DONE))

    assert make_operator().execute({}) == COMPLETED_RESULT


def test_casts_integer_fields_rendered_as_strings_and_returns_without_waiting(stubber):
    templated = copy.deepcopy(REQUEST)
    templated["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"] = "5"
    templated["HumanTaskConfig"]["PublicWorkforceTaskPrice"]["AmountInUsd"]["Cents"] = "3"
    expect_no_job(stubber)
    expect_create(stubber, REQUEST)
    expect_describe(stubber, described_job("Initializing", {**COUNTERS_RUNNING, "TotalLabeled": 0}))

    result = make_operator(templated, wait_for_completion=False).execute({})

    assert result["LabelingJobName"] == JOB_NAME
    assert result["LabelingJobStatus"] == "Initializing"
    assert result["OutputDatasetS3Uri"] is None


def test_attaches_to_a_running_job_with_the_same_request(stubber):
    expect_describe(stubber, described_job("InProgress"))
    expect_describe(stubber, described_job("Completed", COUNTERS_DONE))
    expect_describe(stubber, described_job("Completed", COUNTERS_DONE))

    assert make_operator().execute({}) == COMPLETED_RESULT


def test_attaches_to_a_completed_job_without_waiting_or_deferring(stubber):
    expect_describe(stubber, described_job("Completed", COUNTERS_DONE))

    assert make_operator(deferrable=True).execute({}) == COMPLETED_RESULT


def test_refuses_a_different_request_under_the_same_name(stubber):
    changed = copy.deepcopy(REQUEST)
    changed["HumanTaskConfig"]["TaskTitle"] = "Draw a box around each cat"
    changed["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"] = 3
    expect_describe(stubber, described_job("InProgress"))

    with pytest.raises(AirflowFailException) as raised:
        make_operator(changed).execute({})

    message = str(raised.value)
    assert JOB_NAME in message
    assert "HumanTaskConfig.TaskTitle (config 'Draw a box around each cat'" in message
    assert "HumanTaskConfig.NumberOfHumanWorkersPerDataObject (config 3, job 5)" in message
    assert "MaxConcurrentTaskCount" not in message


def test_a_field_the_request_sets_and_the_job_lacks_is_a_difference(stubber):
    with_auto_labeling = copy.deepcopy(REQUEST)
    with_auto_labeling["LabelingJobAlgorithmsConfig"] = {
        "LabelingJobAlgorithmSpecificationArn": (
            f"arn:aws:sagemaker:{REGION}:027400017018:labeling-job-algorithm-specification/object-detection"
        )
    }
    expect_describe(stubber, described_job("InProgress"))

    with pytest.raises(AirflowFailException, match=r"LabelingJobAlgorithmsConfig \(config \{.*, job None\)"):
        make_operator(with_auto_labeling).execute({})


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_a_failed_or_stopped_job_found_on_attach_fails_with_reason_and_counters(stubber, status):
    expect_describe(stubber, described_job(status, COUNTERS_FAILED))

    with pytest.raises(AirflowFailException) as raised:
        make_operator().execute({})

    message = str(raised.value)
    assert f"is {status}: {FAILURE_REASON}" in message
    assert (
        "TotalLabeled=2, HumanLabeled=2, MachineLabeled=0, FailedNonRetryableError=8, Unlabeled=0" in message
    )


def test_a_job_that_fails_while_waited_on_fails_the_task(stubber):
    expect_no_job(stubber)
    expect_create(stubber, REQUEST)
    expect_describe(stubber, described_job("InProgress"))
    expect_describe(stubber, described_job("Failed", COUNTERS_FAILED))

    with pytest.raises(AirflowFailException, match=f"is Failed: {FAILURE_REASON}.*FailedNonRetryableError=8"):
        make_operator().execute({})


def test_waiting_gives_up_after_max_attempts(stubber):
    expect_describe(stubber, described_job("InProgress"))
    expect_describe(stubber, described_job("InProgress"))
    expect_describe(stubber, described_job("InProgress"))

    with pytest.raises(AirflowException, match="still running after 2 checks") as raised:
        make_operator(max_attempts=2).execute({})
    assert not isinstance(raised.value, AirflowFailException)


def test_defers_on_a_new_job_with_the_labeling_job_trigger(stubber):
    expect_no_job(stubber)
    expect_create(stubber, REQUEST)
    expect_describe(stubber, described_job("Initializing"))
    operator = SageMakerCreateLabelingJobOperator(
        task_id="start_labeling_job",
        config=copy.deepcopy(REQUEST),
        deferrable=True,
        check_interval=45,
        max_attempts=12,
        aws_conn_id="gt_aws",
        region_name=REGION,
    )

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})

    assert deferred.value.method_name == "execute_complete"
    trigger = deferred.value.trigger
    assert isinstance(trigger, SageMakerLabelingJobTrigger)
    assert trigger.serialize()[1] == {
        "job_name": JOB_NAME,
        "waiter_delay": 45,
        "waiter_max_attempts": 12,
        "aws_conn_id": "gt_aws",
        "region_name": REGION,
    }


def test_execute_complete_returns_the_summary_of_the_completed_job(stubber):
    expect_describe(stubber, described_job("Completed", COUNTERS_DONE))

    event = {"status": "success", "job_name": JOB_NAME}
    assert make_operator().execute_complete({}, event) == COMPLETED_RESULT


def test_execute_complete_fails_for_good_on_a_failed_job(stubber):
    event = {
        "status": "error",
        "job_name": JOB_NAME,
        "job_status": "Failed",
        "message": "the trigger's reason",
    }

    with pytest.raises(AirflowFailException, match="the trigger's reason"):
        make_operator().execute_complete({}, event)


def test_execute_complete_fails_retryably_when_waiting_failed(stubber):
    event = {"status": "error", "job_name": JOB_NAME, "job_status": None, "message": "max attempts reached"}

    with pytest.raises(AirflowException, match="max attempts reached") as raised:
        make_operator().execute_complete({}, event)
    assert not isinstance(raised.value, AirflowFailException)


@pytest.mark.parametrize("status", ["Initializing", "InProgress"])
def test_on_kill_stops_a_running_job(stubber, status):
    expect_describe(stubber, described_job(status))
    stubber.add_response("stop_labeling_job", {}, {"LabelingJobName": JOB_NAME})

    make_operator().on_kill()


@pytest.mark.parametrize("status", ["Completed", "Stopping", "Failed"])
def test_on_kill_leaves_a_job_that_is_not_running_alone(stubber, status):
    expect_describe(stubber, described_job(status))

    make_operator().on_kill()


def test_on_kill_before_the_job_exists_does_nothing(stubber):
    expect_no_job(stubber)

    make_operator().on_kill()


def test_a_config_without_a_job_name_is_refused_before_any_call(stubber):
    config = {key: value for key, value in REQUEST.items() if key != "LabelingJobName"}

    with pytest.raises(AirflowFailException, match="start_labeling_job has no LabelingJobName"):
        make_operator(config).execute({})


@pytest.mark.parametrize(
    ("request_value", "job_value", "expected"),
    [
        (None, [], []),
        ({"A": 1}, {"A": 1, "Default": 2}, []),
        ({"A": [1, 2]}, {"A": [1]}, ["F.A (config [1, 2], job [1])"]),
        ({"A": [{"B": 1}]}, {"A": [{"B": 2}]}, ["F.A[0].B (config 1, job 2)"]),
    ],
)
def test_request_differences(request_value, job_value, expected):
    assert request_differences({"F": request_value}, {"F": job_value}, ["F"]) == expected
