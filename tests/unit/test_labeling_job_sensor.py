"""SageMakerLabelingJobSensor against a real boto3 SageMaker client wrapped in botocore's Stubber."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import boto3
import pytest
import structlog
from airflow.sdk.exceptions import AirflowException, TaskDeferred
from botocore.stub import Stubber

from ground_truth_pipeline.aws.labeling_job_hook import GroundTruthLabelingHook
from ground_truth_pipeline.aws.labeling_job_sensor import SageMakerLabelingJobSensor
from ground_truth_pipeline.aws.labeling_job_trigger import SageMakerLabelingJobTrigger
from tests.fixtures.labeling_jobs import FAILURE_REASON, JOB_NAME, described_job

pytestmark = pytest.mark.calendar


@pytest.fixture
def stubber():
    client = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
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


def make_sensor(**kwargs: Any) -> SageMakerLabelingJobSensor:
    return SageMakerLabelingJobSensor(task_id="wait_for_labeling_job", job_name=JOB_NAME, **kwargs)


@pytest.mark.parametrize("status", ["Initializing", "InProgress", "Stopping"])
def test_poke_is_false_while_the_job_runs_and_logs_its_counters(stubber, status):
    expect_describe(stubber, described_job(status, total_labeled=4))

    with structlog.testing.capture_logs() as logs:
        assert make_sensor().poke({}) is False

    logged = [entry["event"] for entry in logs]
    expected_counters = (
        "TotalLabeled=4, HumanLabeled=4, MachineLabeled=0, FailedNonRetryableError=0, Unlabeled=6"
    )
    assert f"Labeling job {JOB_NAME} is {status}; label counters: {expected_counters}." in logged


def test_poke_is_true_once_the_job_completed(stubber):
    expect_describe(stubber, described_job("Completed", total_labeled=10))

    assert make_sensor().poke({}) is True


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_poke_fails_with_reason_and_counters_when_the_job_ended_badly(stubber, status):
    expect_describe(stubber, described_job(status, total_labeled=3, failed=7))

    with pytest.raises(AirflowException) as raised:
        make_sensor().poke({})

    message = str(raised.value)
    assert f"is {status}: {FAILURE_REASON}" in message
    assert (
        "TotalLabeled=3, HumanLabeled=3, MachineLabeled=0, FailedNonRetryableError=7, Unlabeled=0" in message
    )


def test_deferrable_sensor_defers_on_a_running_job(stubber):
    expect_describe(stubber, described_job("InProgress", total_labeled=2))
    sensor = make_sensor(
        deferrable=True, poke_interval=90, max_retries=40, timeout=3600, aws_conn_id="gt_aws"
    )

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})

    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == timedelta(hours=1)
    trigger = deferred.value.trigger
    assert isinstance(trigger, SageMakerLabelingJobTrigger)
    assert trigger.serialize()[1] == {
        "job_name": JOB_NAME,
        "waiter_delay": 90,
        "waiter_max_attempts": 40,
        "aws_conn_id": "gt_aws",
    }


def test_deferred_checks_cover_the_sensor_timeout_by_default(stubber):
    expect_describe(stubber, described_job("InProgress", total_labeled=2))
    sensor = make_sensor(deferrable=True, poke_interval=60, timeout=timedelta(days=10).total_seconds())

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})

    assert deferred.value.trigger.attempts == 14400


def test_deferrable_sensor_returns_at_once_on_a_completed_job(stubber):
    expect_describe(stubber, described_job("Completed", total_labeled=10))

    assert make_sensor(deferrable=True).execute({}) is None


def test_execute_complete_accepts_a_success_event():
    assert make_sensor().execute_complete({}, {"status": "success", "job_name": JOB_NAME}) is None


def test_execute_complete_raises_the_error_event_message():
    event = {"status": "error", "job_name": JOB_NAME, "job_status": "Failed", "message": "job failed: reason"}

    with pytest.raises(AirflowException, match="job failed: reason"):
        make_sensor().execute_complete({}, event)
