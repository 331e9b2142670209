"""The labeling-job operations through real boto3 clients, with a fake engine and request check.

The fake engine (``fake_engines.fake_labeling``) runs in the service's worker processes; it waits for a
release file when the job's "mode" tag says "wait", so tests can watch a job while it is InProgress.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.embedded import EmbeddedService
from tests.local_aws.fake_engines import FAKE_LABELING, PUBLIC_CROWD, TIMEOUT_S, labeling_request, release
from tests.local_aws.ports import free_port
from tests.local_aws.service_clients import unvalidated_client

AUTO_LABELING = (
    "arn:aws:sagemaker:us-east-1:027400017018:labeling-job-algorithm-specification/object-detection"
)


def check_request(request: dict[str, Any], config: LocalAwsConfig) -> None:
    if "LabelingJobAlgorithmsConfig" in request:
        raise ValueError("LabelingJobAlgorithmsConfig: automated data labeling is not supported yet")


FAKE_ENGINE = replace(FAKE_LABELING, check=f"{__name__}:check_request")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAwsConfig]:
    config = LocalAwsConfig(data_dir=tmp_path_factory.mktemp("stack"), sagemaker_port=free_port())
    with EmbeddedService(config, engines={"labeling": FAKE_ENGINE}, poll_interval_s=0.05):
        yield config


@pytest.fixture(scope="module")
def sagemaker(config: LocalAwsConfig) -> Any:
    return config.boto3_client("sagemaker")


@pytest.fixture(scope="module")
def unvalidated_sagemaker(config: LocalAwsConfig) -> Any:
    """A client that sends what it is given, so the service's own validation answers."""
    return unvalidated_client(config, "sagemaker")


def wait_for_description(
    sagemaker: Any, name: str, condition: Callable[[dict[str, Any]], bool], wanted: str
) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        description = sagemaker.describe_labeling_job(LabelingJobName=name)
        if condition(description):
            return description
        time.sleep(0.05)
    raise AssertionError(f"{name} is still {description['LabelingJobStatus']}, not {wanted}")


def wait_for_status(sagemaker: Any, name: str, *statuses: str) -> dict[str, Any]:
    return wait_for_description(
        sagemaker, name, lambda job: job["LabelingJobStatus"] in statuses, f"one of {statuses}"
    )


def error_of(call: Callable[[], Any]) -> dict[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]


def test_create_returns_the_arn_with_the_name_in_lower_case(sagemaker):
    response = sagemaker.create_labeling_job(**labeling_request("Birds-Create"))
    assert response["LabelingJobArn"] == "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/birds-create"


def test_describe_echoes_the_request_and_follows_the_job_to_completed(config, sagemaker):
    request = labeling_request("birds-describe", mode="wait")
    created_at = datetime.now(UTC)
    sagemaker.create_labeling_job(**request)
    first = sagemaker.describe_labeling_job(LabelingJobName="birds-describe")
    assert first["LabelingJobStatus"] in ("Initializing", "InProgress")
    for field, value in request.items():
        assert first[field] == value, field
    assert abs(first["CreationTime"] - created_at) < timedelta(seconds=5)
    assert first["JobReferenceCode"]
    assert "LabelingJobOutput" not in first
    assert "FailureReason" not in first

    # The worker's first report: the job runs and its objects are counted.
    running = wait_for_description(
        sagemaker,
        "birds-describe",
        lambda job: job["LabelingJobStatus"] == "InProgress" and job["LabelCounters"]["Unlabeled"] > 0,
        "InProgress with its objects counted",
    )
    assert running["LabelCounters"] == {
        "TotalLabeled": 0,
        "HumanLabeled": 0,
        "MachineLabeled": 0,
        "FailedNonRetryableError": 0,
        "Unlabeled": 4,
    }
    release(config, "birds-describe")
    done = wait_for_status(sagemaker, "birds-describe", "Completed")
    assert done["LabelCounters"]["TotalLabeled"] == 4
    assert done["LabelCounters"]["HumanLabeled"] == 4
    assert done["LabelingJobOutput"] == {
        "OutputDatasetS3Uri": "s3://bucket/out/birds-describe/manifests/output/output.manifest"
    }
    assert done["LastModifiedTime"] >= done["CreationTime"]
    assert done["JobReferenceCode"] == first["JobReferenceCode"]


def test_a_taken_name_is_resource_in_use_regardless_of_case(sagemaker):
    sagemaker.create_labeling_job(**labeling_request("birds-taken"))
    for name in ("birds-taken", "BIRDS-Taken"):
        error = error_of(lambda name=name: sagemaker.create_labeling_job(**labeling_request(name)))
        assert error["Code"] == "ResourceInUse"
        assert "labeling-job/birds-taken" in error["Message"]


def test_a_missing_job_is_resource_not_found(sagemaker):
    for call in (sagemaker.describe_labeling_job, sagemaker.stop_labeling_job):
        error = error_of(lambda call=call: call(LabelingJobName="no-such-job"))
        assert error["Code"] == "ResourceNotFound"
        assert "no-such-job" in error["Message"]


def test_a_request_the_stack_cannot_serve_is_a_validation_exception_and_creates_nothing(sagemaker):
    request = labeling_request("birds-auto") | {
        "LabelingJobAlgorithmsConfig": {"LabelingJobAlgorithmSpecificationArn": AUTO_LABELING}
    }
    error = error_of(lambda: sagemaker.create_labeling_job(**request))
    assert error == {
        "Code": "ValidationException",
        "Message": "LabelingJobAlgorithmsConfig: automated data labeling is not supported yet",
    }
    assert error_of(lambda: sagemaker.describe_labeling_job(LabelingJobName="birds-auto"))["Code"] == (
        "ResourceNotFound"
    )


def test_an_invalid_request_names_the_field(unvalidated_sagemaker):
    request = labeling_request("birds_underscore")
    error = error_of(lambda: unvalidated_sagemaker.create_labeling_job(**request))
    assert error["Code"] == "ValidationException"
    assert "'LabelingJobName'" in error["Message"]
    assert "regular expression pattern" in error["Message"]

    request = labeling_request("birds-no-team")
    del request["HumanTaskConfig"]["WorkteamArn"]
    error = error_of(lambda: unvalidated_sagemaker.create_labeling_job(**request))
    assert error["Code"] == "ValidationException"
    assert "WorkteamArn" in error["Message"]


def test_stop_moves_a_running_job_to_stopping_then_stopped(sagemaker):
    sagemaker.create_labeling_job(**labeling_request("birds-stop", mode="wait"))
    wait_for_status(sagemaker, "birds-stop", "InProgress")
    sagemaker.stop_labeling_job(LabelingJobName="birds-stop")
    assert sagemaker.describe_labeling_job(LabelingJobName="birds-stop")["LabelingJobStatus"] in (
        "Stopping",
        "Stopped",
    )
    try:
        sagemaker.stop_labeling_job(LabelingJobName="birds-stop")  # asking again is fine while Stopping
    except ClientError as error:  # the fake engine may have stopped already: then it is an error
        assert "is Stopped" in str(error)
    stopped = wait_for_status(sagemaker, "birds-stop", "Stopped")
    assert stopped["LabelCounters"]["TotalLabeled"] == 1
    error = error_of(lambda: sagemaker.stop_labeling_job(LabelingJobName="birds-stop"))
    assert error["Code"] == "ValidationException"
    assert "Stopped" in error["Message"]


def test_list_filters_sorts_and_pages(sagemaker):
    names = [f"list-{letter}-birds" for letter in "abcde"]
    before = datetime.now(UTC) - timedelta(seconds=1)
    for name in names:
        sagemaker.create_labeling_job(**labeling_request(name))
        time.sleep(0.01)
    for name in names:
        wait_for_status(sagemaker, name, "Completed")

    listed = sagemaker.list_labeling_jobs(NameContains="LIST-", MaxResults=100)["LabelingJobSummaryList"]
    assert [summary["LabelingJobName"] for summary in listed] == names
    summary = listed[0]
    assert summary["WorkteamArn"] == PUBLIC_CROWD
    assert summary["LabelingJobStatus"] == "Completed"
    assert summary["AnnotationConsolidationLambdaArn"].endswith("function:ACS-BoundingBox")
    assert (
        summary["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"]
        == "s3://bucket/in/input.manifest"
    )
    assert summary["LabelingJobOutput"]["OutputDatasetS3Uri"].endswith(
        "list-a-birds/manifests/output/output.manifest"
    )

    pages = sagemaker.get_paginator("list_labeling_jobs").paginate(
        NameContains="list-", SortBy="Name", SortOrder="Descending", PaginationConfig={"PageSize": 2}
    )
    page_names = [
        [summary["LabelingJobName"] for summary in page["LabelingJobSummaryList"]] for page in pages
    ]
    assert page_names == [names[4:2:-1], names[2:0:-1], names[:1]]

    assert (
        len(sagemaker.list_labeling_jobs(NameContains="list-")["LabelingJobSummaryList"]) == 5
    )  # default 10
    recent = sagemaker.list_labeling_jobs(NameContains="list-", CreationTimeAfter=before)
    assert len(recent["LabelingJobSummaryList"]) == 5
    old = sagemaker.list_labeling_jobs(NameContains="list-", CreationTimeBefore=before)
    assert old["LabelingJobSummaryList"] == []
    none_modified_later = sagemaker.list_labeling_jobs(
        NameContains="list-", LastModifiedTimeAfter=datetime.now(UTC) + timedelta(minutes=1)
    )
    assert none_modified_later["LabelingJobSummaryList"] == []
    failed = sagemaker.list_labeling_jobs(NameContains="list-", StatusEquals="Failed")
    assert failed["LabelingJobSummaryList"] == []
    by_status = sagemaker.list_labeling_jobs(StatusEquals="Completed", MaxResults=100)[
        "LabelingJobSummaryList"
    ]
    assert set(names) <= {summary["LabelingJobName"] for summary in by_status}


def test_list_refuses_a_token_it_did_not_issue(sagemaker):
    error = error_of(lambda: sagemaker.list_labeling_jobs(NextToken="not-a-token"))
    assert error["Code"] == "ValidationException"
    assert "token" in error["Message"]


def test_list_validates_its_enums(unvalidated_sagemaker):
    error = error_of(lambda: unvalidated_sagemaker.list_labeling_jobs(SortBy="Size"))
    assert error["Code"] == "ValidationException"
    assert "'SortBy'" in error["Message"]
    assert "[Name, CreationTime, Status]" in error["Message"]
