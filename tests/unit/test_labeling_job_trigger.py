"""SageMakerLabelingJobTrigger: serialization, and its run loop on an aiobotocore client under AioStubber."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from typing import Any
from unittest import mock

import pytest
from aiobotocore.session import get_session
from aiobotocore.stub import AioStubber
from airflow.triggers.base import TriggerEvent

from ground_truth_pipeline.aws.labeling_job_hook import GroundTruthLabelingHook
from ground_truth_pipeline.aws.labeling_job_trigger import SageMakerLabelingJobTrigger
from tests.fixtures.labeling_jobs import FAILURE_REASON, JOB_NAME, described_job

pytestmark = pytest.mark.calendar


def run_trigger(trigger: SageMakerLabelingJobTrigger, responses: list[dict[str, Any]]) -> list[TriggerEvent]:
    """Run the trigger to its first event, the hook's async client answering with ``responses``."""

    async def collect() -> list[TriggerEvent]:
        client = get_session().create_client(
            "sagemaker", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        async with client as sagemaker:
            with AioStubber(sagemaker) as stub:
                for response in responses:
                    stub.add_response("describe_labeling_job", response, {"LabelingJobName": JOB_NAME})
                # The trigger enters the client it gets; this test owns the client's lifetime.
                open_client = contextlib.nullcontext(sagemaker)
                with mock.patch.object(
                    GroundTruthLabelingHook, "get_async_conn", mock.AsyncMock(return_value=open_client)
                ):
                    events = [event async for event in trigger.run()]
                stub.assert_no_pending_responses()
        return events

    return asyncio.run(collect())


def make_trigger(**kwargs: Any) -> SageMakerLabelingJobTrigger:
    return SageMakerLabelingJobTrigger(job_name=JOB_NAME, waiter_delay=0, **kwargs)


def test_serialize_round_trips_through_the_importable_classpath():
    trigger = SageMakerLabelingJobTrigger(
        job_name=JOB_NAME,
        waiter_delay=30,
        waiter_max_attempts=100,
        aws_conn_id="gt_aws",
        region_name="eu-west-1",
        verify=False,
        botocore_config={"retries": {"mode": "standard"}},
    )

    classpath, kwargs = trigger.serialize()

    assert classpath == "ground_truth_pipeline.aws.labeling_job_trigger.SageMakerLabelingJobTrigger"
    module_name, class_name = classpath.rsplit(".", 1)
    rebuilt = getattr(importlib.import_module(module_name), class_name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["job_name"] == JOB_NAME
    assert kwargs["region_name"] == "eu-west-1"


def test_run_yields_success_once_the_job_completes():
    events = run_trigger(
        make_trigger(),
        [described_job("Initializing", 0), described_job("InProgress", 4), described_job("Completed", 10)],
    )

    assert events == [TriggerEvent({"status": "success", "job_name": JOB_NAME})]


def test_run_yields_an_error_with_reason_and_counters_when_the_job_fails():
    events = run_trigger(
        make_trigger(), [described_job("InProgress", 4), described_job("Failed", 4, failed=6)]
    )

    assert len(events) == 1
    payload = events[0].payload
    assert payload["status"] == "error"
    assert payload["job_name"] == JOB_NAME
    assert payload["job_status"] == "Failed"
    assert f"is Failed: {FAILURE_REASON}" in payload["message"]
    assert "FailedNonRetryableError=6" in payload["message"]


def test_run_reports_a_stopped_job_as_an_error():
    events = run_trigger(make_trigger(), [described_job("Stopping", 5), described_job("Stopped", 5)])

    assert events[0].payload["status"] == "error"
    assert events[0].payload["job_status"] == "Stopped"


def test_run_gives_up_after_the_bounded_number_of_checks():
    checks = [described_job("InProgress", 1), described_job("InProgress", 2), described_job("InProgress", 3)]
    events = run_trigger(make_trigger(waiter_max_attempts=3), checks)

    assert len(events) == 1
    assert events[0].payload["status"] == "error"
    assert events[0].payload["job_status"] is None
    assert "max attempts" in events[0].payload["message"]
