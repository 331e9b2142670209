"""ResumableSageMakerHook against a real boto3 SageMaker client wrapped in botocore's Stubber.

The Stubber checks every request against the expected parameters and raises on any call that was not
queued, so a test that queues no Delete call proves the hook deleted nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import boto3
import pytest
from airflow.providers.amazon.aws.exceptions import WaiterMaxAttemptsError, WaiterTerminalFailure
from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.sdk.exceptions import AirflowException
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from ground_truth_pipeline.aws.resumable_sagemaker_hook import ResumableSageMakerHook, attempts_within

REGION = "us-east-1"
ACCOUNT = "123456789012"
ENDPOINT = "gtod-bird-3f9c1a2b7d-endpoint"
CONFIG = "gtod-bird-3f9c1a2b7d-epc"
TRAINING_JOB = "gtod-bird-3f9c1a2b7d-train"
MODEL = "gtod-bird-3f9c1a2b7d-model"
WHEN = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def stub() -> Iterator[Stubber]:
    client = boto3.client(
        "sagemaker", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with (
        Stubber(client) as stubber,
        mock.patch.object(
            ResumableSageMakerHook, "conn", new_callable=mock.PropertyMock, return_value=client
        ),
    ):
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def hook(stub: Stubber) -> ResumableSageMakerHook:
    return ResumableSageMakerHook(aws_conn_id=None)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The seconds the hook sleeps between checks; it sleeps none of them."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


def expect_missing(stub: Stubber, operation: str, params: dict[str, str], code: str = "ValidationException"):
    stub.add_client_error(
        operation,
        service_error_code=code,
        service_message=f"Could not find {next(iter(params.values()))}",
        http_status_code=400,
        expected_params=params,
    )


def endpoint(status: str) -> dict[str, Any]:
    return {
        "EndpointName": ENDPOINT,
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}",
        "EndpointConfigName": CONFIG,
        "EndpointStatus": status,
        "CreationTime": WHEN,
        "LastModifiedTime": WHEN,
    }


def expect_endpoint(stub: Stubber, status: str | None) -> None:
    if status is None:
        expect_missing(stub, "describe_endpoint", {"EndpointName": ENDPOINT})
    else:
        stub.add_response("describe_endpoint", endpoint(status), {"EndpointName": ENDPOINT})


def expect_config(stub: Stubber, name: str, exists: bool) -> None:
    if not exists:
        expect_missing(stub, "describe_endpoint_config", {"EndpointConfigName": name})
        return
    stub.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": name,
            "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/{name}",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": MODEL}],
            "CreationTime": WHEN,
        },
        {"EndpointConfigName": name},
    )


def training_job(name: str, status: str) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}",
        "TrainingJobStatus": status,
        "SecondaryStatus": status,
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://b/{name}/output/model.tar.gz"},
        "AlgorithmSpecification": {"TrainingInputMode": "Pipe"},
        "ResourceConfig": {"VolumeSizeInGB": 50},
        "StoppingCondition": {},
        "CreationTime": WHEN,
    }


# Names.


def test_candidate_names_count_up_within_the_suffix_room() -> None:
    names = list(ResumableSageMakerHook.candidate_names("job"))

    assert names[:3] == ["job", "job-2", "job-3"]
    assert names[-1] == "job-99"
    assert len(names) == 99


def test_candidate_names_stop_at_the_longest_valid_name() -> None:
    base = "a" * 61

    names = list(ResumableSageMakerHook.candidate_names(base))

    assert names == [base] + [f"{base}-{n}" for n in range(2, 10)]


@pytest.mark.parametrize(
    ("seconds", "interval", "attempts"), [(3600, 30, 120), (3601, 30, 121), (10, 60, 1), (5, 0, 5)]
)
def test_attempts_within_counts_the_checks_that_fit_in_the_time(seconds, interval, attempts) -> None:
    assert attempts_within(seconds, interval) == attempts


# Describe, or None.


@pytest.mark.parametrize("code", ["ValidationException", "ResourceNotFound"])
def test_a_missing_resource_is_none(hook, stub, code) -> None:
    expect_missing(stub, "describe_model", {"ModelName": MODEL}, code)

    assert hook.find_model(MODEL) is None


def test_an_existing_resource_is_described(hook, stub) -> None:
    expect_endpoint(stub, "InService")

    assert hook.find_endpoint(ENDPOINT)["EndpointStatus"] == "InService"


def test_other_errors_are_raised(hook, stub) -> None:
    expect_missing(stub, "describe_training_job", {"TrainingJobName": TRAINING_JOB}, "AccessDeniedException")

    with pytest.raises(ClientError, match="AccessDenied"):
        hook.find_training_job(TRAINING_JOB)


# The name path.


def test_a_job_to_resume_is_the_first_that_has_not_spent_its_name(hook, stub) -> None:
    stub.add_response(
        "describe_training_job", training_job(TRAINING_JOB, "Failed"), {"TrainingJobName": TRAINING_JOB}
    )
    stub.add_response(
        "describe_training_job",
        training_job(f"{TRAINING_JOB}-2", "InProgress"),
        {"TrainingJobName": f"{TRAINING_JOB}-2"},
    )

    name, description = hook.find_training_job_to_resume(TRAINING_JOB)

    assert name == f"{TRAINING_JOB}-2"
    assert description["TrainingJobStatus"] == "InProgress"


def test_a_job_to_create_takes_the_first_free_name(hook, stub) -> None:
    stub.add_response(
        "describe_training_job", training_job(TRAINING_JOB, "Stopped"), {"TrainingJobName": TRAINING_JOB}
    )
    expect_missing(stub, "describe_training_job", {"TrainingJobName": f"{TRAINING_JOB}-2"})

    assert hook.find_training_job_to_resume(TRAINING_JOB) == (f"{TRAINING_JOB}-2", None)


def test_every_name_spent_is_an_error(hook, stub) -> None:
    base = "t" * 61
    for name in ResumableSageMakerHook.candidate_names(base):
        stub.add_response("describe_training_job", training_job(name, "Failed"), {"TrainingJobName": name})

    with pytest.raises(AirflowException, match=f"Every name from {base} to {base}-9"):
        hook.find_training_job_to_resume(base)


def test_endpoint_configs_on_the_path_end_at_the_first_free_name(hook, stub) -> None:
    expect_config(stub, CONFIG, exists=True)
    expect_config(stub, f"{CONFIG}-2", exists=True)
    expect_config(stub, f"{CONFIG}-3", exists=False)

    existing, free_name = hook.find_endpoint_configs(CONFIG)

    assert list(existing) == [CONFIG, f"{CONFIG}-2"]
    assert free_name == f"{CONFIG}-3"


# Deleting.


def test_deleting_configs_goes_last_name_first(hook, stub) -> None:
    expect_config(stub, CONFIG, exists=True)
    expect_config(stub, f"{CONFIG}-2", exists=True)
    expect_config(stub, f"{CONFIG}-3", exists=False)
    stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": f"{CONFIG}-2"})
    stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": CONFIG})

    assert hook.delete_endpoint_configs(CONFIG) == [f"{CONFIG}-2", CONFIG]


def test_deleting_configs_where_none_exists_deletes_nothing(hook, stub) -> None:
    expect_config(stub, CONFIG, exists=False)

    assert hook.delete_endpoint_configs(CONFIG) == []


def test_deleting_a_missing_endpoint_is_a_no_op(hook, stub, sleeps) -> None:
    expect_endpoint(stub, None)

    assert hook.delete_endpoint_and_wait(ENDPOINT, check_interval=10, max_ingestion_time=60) is False
    assert sleeps == []


def test_deleting_an_endpoint_waits_until_it_is_gone(hook, stub, sleeps) -> None:
    expect_endpoint(stub, "Failed")
    stub.add_response("delete_endpoint", {}, {"EndpointName": ENDPOINT})
    # Right after DeleteEndpoint was accepted the endpoint may still read Failed.
    expect_endpoint(stub, "Failed")
    expect_endpoint(stub, "Deleting")
    expect_endpoint(stub, None)

    assert hook.delete_endpoint_and_wait(ENDPOINT, check_interval=10, max_ingestion_time=60) is True
    assert sleeps == [10, 10]


def test_an_endpoint_already_deleting_is_waited_for_without_deleting_it_again(hook, stub, sleeps) -> None:
    expect_endpoint(stub, "Deleting")
    expect_endpoint(stub, "Deleting")
    expect_endpoint(stub, None)

    assert hook.delete_endpoint_and_wait(ENDPOINT, check_interval=10, max_ingestion_time=60) is True
    assert sleeps == [10]


def test_a_settling_endpoint_is_let_settle_before_it_is_deleted(hook, stub, sleeps) -> None:
    expect_endpoint(stub, "Creating")
    expect_endpoint(stub, "InService")
    stub.add_response("delete_endpoint", {}, {"EndpointName": ENDPOINT})
    expect_endpoint(stub, None)

    assert hook.delete_endpoint_and_wait(ENDPOINT, check_interval=10, max_ingestion_time=60) is True
    assert sleeps == [10]


def test_an_endpoint_that_never_goes_is_given_up_on(hook, stub, sleeps) -> None:
    expect_endpoint(stub, "Deleting")
    expect_endpoint(stub, "Deleting")

    with pytest.raises(TimeoutError, match=f"Endpoint {ENDPOINT} still exists after 0 s"):
        hook.delete_endpoint_and_wait(ENDPOINT, check_interval=10, max_ingestion_time=0)


# Waiting.


def test_waiting_for_an_endpoint_in_service(hook, stub, sleeps) -> None:
    expect_endpoint(stub, "Creating")
    expect_endpoint(stub, "InService")

    hook.wait_for_endpoint_in_service(ENDPOINT, check_interval=30, max_ingestion_time=3600)

    assert sleeps == [30]


def test_waiting_for_an_endpoint_checks_as_often_as_the_time_allows(hook, stub, sleeps) -> None:
    for _ in range(4):
        expect_endpoint(stub, "Creating")

    with pytest.raises(WaiterMaxAttemptsError):
        hook.wait_for_endpoint_in_service(ENDPOINT, check_interval=30, max_ingestion_time=120)

    assert sleeps == [30, 30, 30]


def test_waiting_for_an_endpoint_that_fails_raises(hook, stub, sleeps) -> None:
    expect_endpoint(stub, "Failed")

    with pytest.raises(WaiterTerminalFailure, match=f"Endpoint {ENDPOINT} did not come into service"):
        hook.wait_for_endpoint_in_service(ENDPOINT, check_interval=30, max_ingestion_time=3600)


# States.


def test_endpoint_states_extend_the_providers() -> None:
    hook = ResumableSageMakerHook

    assert hook.endpoint_settling_states | hook.endpoint_deleting_states == set(
        SageMakerHook.endpoint_non_terminal_states
    )
    assert hook.endpoint_failed_states < hook.endpoint_ended_states
    assert not hook.endpoint_ended_states & SageMakerHook.endpoint_non_terminal_states
    assert hook.spent_job_states == SageMakerHook.training_failed_states
