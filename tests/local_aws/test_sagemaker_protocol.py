"""The local SageMaker service's JSON 1.1 protocol: targets, validation, errors, output shapes; its CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_aws.config import LocalAwsConfig
from local_aws.environment import PACKAGE_PARENT
from local_aws.sagemaker_service.embedded import EmbeddedService
from local_aws.sagemaker_service.protocol import (
    OutputShapeError,
    Service,
    service_model,
    shape_output,
    validate_input,
)
from tests.local_aws.ports import free_port
from tests.local_aws.service_clients import unvalidated_client

START_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAwsConfig]:
    config = LocalAwsConfig(data_dir=tmp_path_factory.mktemp("stack"), sagemaker_port=free_port())
    with EmbeddedService(config):
        yield config


@pytest.fixture(scope="module")
def unvalidated_sagemaker(config: LocalAwsConfig) -> Any:
    """A client that sends what it is given, so the service's own validation answers."""
    return unvalidated_client(config, "sagemaker")


def post(config: LocalAwsConfig, body: bytes, headers: dict[str, str]) -> tuple[int, Message, dict[str, Any]]:
    """Status, headers (looked up regardless of case) and JSON body of a raw request."""
    request = urllib.request.Request(
        config.sagemaker_endpoint + "/", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def error_of(call: Callable[[], Any]) -> dict[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]


def valid_request(**changes: Any) -> dict[str, Any]:
    request = {
        "LabelingJobName": "birds",
        "LabelAttributeName": "category",
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": "s3://bucket/in/input.manifest"}}},
        "OutputConfig": {"S3OutputPath": "s3://bucket/out"},
        "RoleArn": "arn:aws:iam::123456789012:role/GroundTruth",
        "HumanTaskConfig": {
            "WorkteamArn": "arn:aws:sagemaker:us-east-1:394669845002:workteam/public-crowd/default",
            "UiConfig": {"UiTemplateS3Uri": "s3://bucket/in/template.liquid"},
            "TaskTitle": "Boxes",
            "TaskDescription": "Draw a box around each bird",
            "NumberOfHumanWorkersPerDataObject": 3,
            "TaskTimeLimitInSeconds": 300,
        },
    }
    return request | changes


SAGEMAKER = Service("sagemaker", service_model("sagemaker"), "ValidationException")
CREATE_LABELING_JOB = SAGEMAKER.model.operation_model("CreateLabelingJob")


def validation_message(request: dict[str, Any]) -> str:
    with pytest.raises(Exception) as raised:
        validate_input(SAGEMAKER, CREATE_LABELING_JOB, request)
    assert raised.value.code == "ValidationException"
    return raised.value.message


def test_health(config):
    with urllib.request.urlopen(config.sagemaker_endpoint + "/_local/health", timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"status": "ok"}


def test_an_unknown_target_is_an_unknown_operation(config):
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker.FlyToTheMoon"}
    status, response_headers, body = post(config, b"{}", headers)
    assert status == 400
    assert body["__type"] == "UnknownOperationException"
    assert "SageMaker.FlyToTheMoon" in body["message"]
    assert response_headers["x-amzn-ErrorType"] == "UnknownOperationException"
    status, _, body = post(config, b"{}", {"Content-Type": "application/x-amz-json-1.1"})
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    assert "X-Amz-Target" in body["message"]


def test_an_aws_operation_the_stack_does_not_serve_says_so(config):
    sagemaker = config.boto3_client("sagemaker")
    error = error_of(lambda: sagemaker.list_notebook_instances())
    assert error["Code"] == "UnknownOperationException"
    assert "SageMaker.ListNotebookInstances" in error["Message"]


def test_a_body_that_is_not_json_is_a_serialization_error(config):
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker.ListLabelingJobs"}
    status, _, body = post(config, b"{not json", headers)
    assert (status, body["__type"]) == (400, "SerializationException")
    status, _, body = post(config, b"[]", headers)
    assert (status, body["__type"]) == (400, "SerializationException")


def test_responses_carry_a_request_id_and_the_json_content_type(config):
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker.ListLabelingJobs"}
    status, response_headers, body = post(config, b"", headers)
    assert (status, body) == (200, {"LabelingJobSummaryList": []})
    assert response_headers["content-type"] == "application/x-amz-json-1.1"
    assert response_headers["x-amzn-RequestId"]
    response = config.boto3_client("sagemaker").list_labeling_jobs()
    assert response["ResponseMetadata"]["RequestId"]


def test_a_missing_required_member_is_named_with_its_path(unvalidated_sagemaker):
    request = valid_request()
    del request["HumanTaskConfig"]["TaskTitle"]
    del request["RoleArn"]
    error = error_of(lambda: unvalidated_sagemaker.create_labeling_job(**request))
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith("2 validation errors detected:")
    assert '"RoleArn"' in error["Message"]
    assert 'HumanTaskConfig: "TaskTitle"' in error["Message"]


@pytest.mark.parametrize(
    ("changes", "field", "constraint"),
    [
        ({"LabelingJobName": "birds_and_bees"}, "'LabelingJobName'", "regular expression pattern"),
        ({"LabelingJobName": "-birds"}, "'LabelingJobName'", "regular expression pattern"),
        ({"LabelingJobName": "b" * 64}, "'LabelingJobName'", "length less than or equal to 63"),
        ({"RoleArn": "arn:aws:iam::123456789012:user/someone"}, "'RoleArn'", "regular expression pattern"),
        ({"OutputConfig": {"S3OutputPath": "ftp://bucket/out"}}, "'OutputConfig.S3OutputPath'", "pattern"),
        ({"Tags": [{"Key": "team", "Value": "bad|value"}]}, "'Tags[0].Value'", "pattern"),
        (
            {"InputConfig": {"DataSource": {}, "DataAttributes": {"ContentClassifiers": ["Anything"]}}},
            "'InputConfig.DataAttributes.ContentClassifiers[0]'",
            "enum value set",
        ),
    ],
)
def test_constraints_botocore_leaves_to_the_server_are_enforced(changes, field, constraint):
    message = validation_message(valid_request(**changes))
    assert " validation error" in message
    assert f"at {field} failed to satisfy constraint" in message
    assert constraint in message


def test_numbers_and_types_are_checked(unvalidated_sagemaker):
    request = valid_request()
    request["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"] = 10
    error = error_of(lambda: unvalidated_sagemaker.create_labeling_job(**request))
    assert "'HumanTaskConfig.NumberOfHumanWorkersPerDataObject'" in error["Message"]
    assert "less than or equal to 9" in error["Message"]
    request["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"] = 0
    assert (
        "valid min value: 1"
        in error_of(lambda: unvalidated_sagemaker.create_labeling_job(**request))["Message"]
    )
    request["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"] = "three"
    error = error_of(lambda: unvalidated_sagemaker.create_labeling_job(**request))
    assert "HumanTaskConfig.NumberOfHumanWorkersPerDataObject" in error["Message"]
    assert "Invalid type" in error["Message"]
    message = validation_message(valid_request(Colour="red"))
    assert "Unknown parameter in input" in message
    assert "Colour" in message


def test_timestamps_in_requests_may_be_epoch_seconds_or_iso_strings():
    list_jobs = SAGEMAKER.model.operation_model("ListLabelingJobs")
    validate_input(SAGEMAKER, list_jobs, {"CreationTimeAfter": 1_700_000_000.5})
    validate_input(SAGEMAKER, list_jobs, {"CreationTimeAfter": "2026-01-01T00:00:00Z"})
    with pytest.raises(Exception, match="CreationTimeAfter"):
        validate_input(SAGEMAKER, list_jobs, {"CreationTimeAfter": "yesterday-ish"})


def test_unicode_tag_patterns_are_understood():
    validate_input(
        SAGEMAKER, CREATE_LABELING_JOB, valid_request(Tags=[{"Key": "équipe", "Value": "Vögel 1"}])
    )


def test_outputs_follow_the_output_shape():
    describe = SAGEMAKER.model.operation_model("DescribeLabelingJob").output_shape
    with pytest.raises(OutputShapeError, match="LabelingJobStatus"):
        shape_output(describe, {"LabelingJobName": "birds"})
    list_output = SAGEMAKER.model.operation_model("ListLabelingJobs").output_shape
    with pytest.raises(OutputShapeError, match="Colour"):
        shape_output(list_output, {"Colour": "red"})
    created = datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)
    summary = {
        "LabelingJobName": "birds",
        "LabelingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/birds",
        "CreationTime": created,
        "LastModifiedTime": created.timestamp() + 1,
        "LabelingJobStatus": "InProgress",
        "LabelCounters": {"TotalLabeled": 0},
        "WorkteamArn": "arn:aws:sagemaker:us-east-1:394669845002:workteam/public-crowd/default",
        "FailureReason": None,
    }
    wire = shape_output(list_output, {"LabelingJobSummaryList": [summary], "NextToken": None})
    expected = {key: value for key, value in summary.items() if value is not None}
    expected |= {"CreationTime": created.timestamp(), "LastModifiedTime": created.timestamp() + 1}
    assert wire == {"LabelingJobSummaryList": [expected]}


def test_the_command_line_starts_the_service_and_stops_on_sigterm(tmp_path: Path):
    port = free_port()
    environment = os.environ | {"PYTHONPATH": str(PACKAGE_PARENT)}
    with (tmp_path / "service.log").open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local_aws.sagemaker_service",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "data"),
                "--log-level",
                "info",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_local/health", timeout=1) as response:
                    assert json.loads(response.read()) == {"status": "ok"}
                    break
            except OSError:
                assert process.poll() is None, (tmp_path / "service.log").read_text()
                assert time.monotonic() < deadline, "the service did not answer"
                time.sleep(0.1)
        assert (tmp_path / "data" / "sagemaker" / "state.sqlite").exists()
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then ends with the signal it got.
        assert process.wait(timeout=20) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in (tmp_path / "service.log").read_text()


def test_the_command_line_rejects_a_bad_port():
    result = subprocess.run(
        [sys.executable, "-m", "local_aws.sagemaker_service", "--port", "70000"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"PYTHONPATH": str(PACKAGE_PARENT)},
    )
    assert result.returncode == 2
    assert "--port" in result.stderr
