"""The resumable SageMaker operators against moto: a retried or cleared try creates nothing twice.

moto creates training and transform jobs as Completed and endpoints as InService, and silently replaces a
resource created twice under one name; so the tests record the SageMaker API calls the operators make, and
set the states moto cannot reach by itself (InProgress, Failed, Creating) on moto's backend objects.
"""

from __future__ import annotations

import datetime
import functools
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import botocore.session
import pytest
from airflow.providers.amazon.aws.exceptions import WaiterMaxAttemptsError
from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.sdk.exceptions import AirflowException, TaskDeferred
from botocore.client import BaseClient
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends

from ground_truth_pipeline.aws.resumable_operators import (
    ResumableEndpointOperator,
    ResumableModelOperator,
    ResumableTrainingOperator,
    ResumableTransformOperator,
)
from ground_truth_pipeline.aws.resumable_sagemaker_hook import ResumableSageMakerHook

REGION = "us-east-1"
BUCKET = "gtod-unit-test"
ROLE_ARN = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/sagemaker-execution"
IMAGE = "811284229777.dkr.ecr.us-east-1.amazonaws.com/object-detection:1"
TRAINING_JOB = "gtod-bird-3f9c1a2b7d-train"
MODEL = "gtod-bird-3f9c1a2b7d-model"
TRANSFORM_JOB = "gtod-bird-3f9c1a2b7d-transform"
ENDPOINT_CONFIG = "gtod-bird-3f9c1a2b7d-epc"
ENDPOINT = "gtod-bird-3f9c1a2b7d-endpoint"
ARTIFACT = f"s3://{BUCKET}/training/output/{TRAINING_JOB}/output/model.tar.gz"
MUTATING_PREFIXES = ("Create", "Delete", "Update", "Stop")


@pytest.fixture(scope="module", autouse=True)
def shared_botocore_loader() -> Iterator[None]:
    """Parse botocore's service models once: every try builds new boto3 sessions, as in Airflow."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", functools.cache(botocore.session.create_loader))
        yield


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[SageMakerModelBackend]:
    """moto's SageMaker backend, with the S3 inputs the hooks check before creating jobs."""
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="training/train.manifest", Body=b'{"source-ref": "s3://x/a.jpg"}\n')
        s3.put_object(Bucket=BUCKET, Key="test-images/a.jpg", Body=b"\xff\xd8")
        yield sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION]


@pytest.fixture
def sagemaker_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict]]:
    """Every SageMaker API call made in the test, as (operation, parameters)."""
    calls: list[tuple[str, dict]] = []
    make_api_call = BaseClient._make_api_call

    def recording(client: BaseClient, operation_name: str, api_params: dict) -> Any:
        if client.meta.service_model.service_name == "sagemaker":
            calls.append((operation_name, api_params))
        return make_api_call(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return calls


def changes(calls: list[tuple[str, dict]]) -> list[tuple[str, str]]:
    """The calls that create, delete or update something, as (operation, resource name); then forgets them."""
    found = [
        (operation, next(value for key, value in params.items() if key.endswith("Name")))
        for operation, params in calls
        if operation.startswith(MUTATING_PREFIXES)
    ]
    calls.clear()
    return found


def without_request_metadata(result: dict) -> dict:
    """An operator's XCom without the request ids and dates that differ between two describe calls."""
    return {
        part: {k: v for k, v in description.items() if k != "ResponseMetadata"}
        for part, description in result.items()
    }


def finish_while_waiting(monkeypatch: pytest.MonkeyPatch, resource: Any, attribute: str, final: str) -> None:
    """Make the hooks' first poll sleep move ``resource`` to its final state, as SageMaker would."""
    monkeypatch.setattr(time, "sleep", lambda _seconds: setattr(resource, attribute, final))


def sagemaker() -> Any:
    return boto3.client("sagemaker", region_name=REGION)


@pytest.fixture
def context() -> dict:
    return {"ti": mock.MagicMock()}


# Training.


RESOURCES = {"InstanceType": "ml.p3.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50}
STOP = {"MaxRuntimeInSeconds": 3600}


def training_config(name: str = TRAINING_JOB) -> dict:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "Pipe"},
        "RoleArn": ROLE_ARN,
        "HyperParameters": {"num_classes": "1", "epochs": "2"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "ContentType": "application/x-recordio",
                "RecordWrapperType": "RecordIO",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "AugmentedManifestFile",
                        "S3Uri": f"s3://{BUCKET}/training/train.manifest",
                        "AttributeNames": ["source-ref", "bird"],
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/training/output/"},
        "ResourceConfig": {"InstanceType": "ml.p3.2xlarge", "InstanceCount": "1", "VolumeSizeInGB": "50"},
        "StoppingCondition": {"MaxRuntimeInSeconds": "3600"},
    }


def training_operator(name: str = TRAINING_JOB, **kwargs: Any) -> ResumableTrainingOperator:
    """A fresh operator per try, as Airflow builds one for every try of a task."""
    options: dict[str, Any] = {"aws_conn_id": None, "check_interval": 0, "print_log": False, **kwargs}
    return ResumableTrainingOperator(task_id="train", config=training_config(name), **options)


def test_training_retry_returns_the_completed_job_without_creating_one(backend, sagemaker_calls, context):
    first = training_operator().execute(context)
    assert changes(sagemaker_calls) == [("CreateTrainingJob", TRAINING_JOB)]

    retry = training_operator().execute(context)

    assert changes(sagemaker_calls) == []
    assert without_request_metadata(retry) == without_request_metadata(first)
    assert retry["Training"]["TrainingJobStatus"] == "Completed"
    assert [job["TrainingJobName"] for job in sagemaker().list_training_jobs()["TrainingJobSummaries"]] == [
        TRAINING_JOB
    ]


def test_training_retry_after_failed_jobs_runs_under_the_next_free_names(backend, sagemaker_calls, context):
    training_operator().execute(context)
    backend.training_jobs[TRAINING_JOB].training_job_status = "Failed"
    changes(sagemaker_calls)

    second = training_operator().execute(context)
    assert changes(sagemaker_calls) == [("CreateTrainingJob", f"{TRAINING_JOB}-2")]
    assert second["Training"]["TrainingJobName"] == f"{TRAINING_JOB}-2"
    assert second["Training"]["ModelArtifacts"]["S3ModelArtifacts"].endswith(
        f"{TRAINING_JOB}-2/output/model.tar.gz"
    )

    backend.training_jobs[f"{TRAINING_JOB}-2"].training_job_status = "Stopped"
    third = training_operator().execute(context)
    assert changes(sagemaker_calls) == [("CreateTrainingJob", f"{TRAINING_JOB}-3")]

    fourth = training_operator().execute(context)
    assert changes(sagemaker_calls) == []
    assert without_request_metadata(fourth) == without_request_metadata(third)


def test_training_fails_clearly_when_every_name_is_spent(backend, sagemaker_calls, context):
    base = "t" * 61
    for name in ResumableSageMakerHook.candidate_names(base):
        sagemaker().create_training_job(
            **training_config(name) | {"ResourceConfig": RESOURCES, "StoppingCondition": STOP}
        )
        backend.training_jobs[name].training_job_status = "Failed"
    changes(sagemaker_calls)

    with pytest.raises(AirflowException, match=f"Every name from {base} to {base}-9"):
        training_operator(base).execute(context)
    assert changes(sagemaker_calls) == []


def test_training_retry_waits_for_the_job_in_progress(backend, sagemaker_calls, context, monkeypatch):
    training_operator().execute(context)
    job = backend.training_jobs[TRAINING_JOB]
    job.training_job_status = "InProgress"
    finish_while_waiting(monkeypatch, job, "training_job_status", "Completed")
    changes(sagemaker_calls)

    result = training_operator().execute(context)

    assert changes(sagemaker_calls) == []
    assert result["Training"]["TrainingJobStatus"] == "Completed"


def test_training_retry_that_prints_logs_waits_with_the_hooks_log_tailer(backend, sagemaker_calls, context):
    training_operator().execute(context)
    backend.training_jobs[TRAINING_JOB].training_job_status = "InProgress"
    changes(sagemaker_calls)
    retry = training_operator(print_log=True, max_ingestion_time=600)

    with mock.patch.object(SageMakerHook, "check_training_status_with_log") as tail_logs:
        retry.execute(context)

    assert changes(sagemaker_calls) == []
    tail_logs.assert_called_once_with(
        TRAINING_JOB,
        SageMakerHook.non_terminal_states,
        SageMakerHook.training_failed_states,
        wait_for_completion=True,
        check_interval=0,
        max_ingestion_time=600,
    )


def test_training_retry_fails_when_the_job_it_waits_for_stops(backend, sagemaker_calls, context, monkeypatch):
    training_operator().execute(context)
    job = backend.training_jobs[TRAINING_JOB]
    job.training_job_status = "InProgress"
    finish_while_waiting(monkeypatch, job, "training_job_status", "Stopped")

    with pytest.raises(AirflowException, match=f"Training job {TRAINING_JOB} ended Stopped"):
        training_operator().execute(context)


def test_training_retry_without_waiting_returns_the_job_in_progress(backend, sagemaker_calls, context):
    training_operator(wait_for_completion=False).execute(context)
    backend.training_jobs[TRAINING_JOB].training_job_status = "InProgress"
    changes(sagemaker_calls)

    result = training_operator(wait_for_completion=False).execute(context)

    assert changes(sagemaker_calls) == []
    assert result["Training"]["TrainingJobStatus"] == "InProgress"


def test_deferrable_training_retry_defers_on_the_job_in_progress(backend, sagemaker_calls, context):
    training_operator().execute(context)
    backend.training_jobs[TRAINING_JOB].training_job_status = "InProgress"
    changes(sagemaker_calls)
    retry = training_operator(deferrable=True, max_attempts=3)

    with pytest.raises(TaskDeferred) as deferred:
        retry.execute(context)

    assert changes(sagemaker_calls) == []
    trigger_class, trigger_kwargs = deferred.value.trigger.serialize()
    assert trigger_class == f"{SageMakerTrigger.__module__}.SageMakerTrigger"
    assert trigger_kwargs["job_name"] == TRAINING_JOB
    assert trigger_kwargs["job_type"] == "Training"
    assert trigger_kwargs["waiter_max_attempts"] == 3
    assert deferred.value.method_name == "execute_complete"
    backend.training_jobs[TRAINING_JOB].training_job_status = "Completed"
    result = retry.execute_complete(context, event={"status": "success", "job_name": TRAINING_JOB})
    assert result["Training"]["TrainingJobStatus"] == "Completed"


# Models.


def model_config(artifact: str = ARTIFACT, name: str = MODEL) -> dict:
    return {
        "ModelName": name,
        "ExecutionRoleArn": ROLE_ARN,
        "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": artifact},
    }


def model_operator(artifact: str = ARTIFACT) -> ResumableModelOperator:
    return ResumableModelOperator(task_id="model", config=model_config(artifact), aws_conn_id=None)


def test_model_retry_reuses_the_model_with_the_same_containers(backend, sagemaker_calls, context):
    first = model_operator().execute(context)
    assert changes(sagemaker_calls) == [("CreateModel", MODEL)]

    retry = model_operator().execute(context)

    assert changes(sagemaker_calls) == []
    assert without_request_metadata(retry) == without_request_metadata(first)


def test_model_with_another_artifact_is_created_again(backend, sagemaker_calls, context):
    model_operator().execute(context)
    changes(sagemaker_calls)
    new_artifact = f"s3://{BUCKET}/training/output/{TRAINING_JOB}-2/output/model.tar.gz"

    result = model_operator(new_artifact).execute(context)

    assert changes(sagemaker_calls) == [("DeleteModel", MODEL), ("CreateModel", MODEL)]
    assert result["Model"]["PrimaryContainer"]["ModelDataUrl"] == new_artifact


# Transform.


def transform_config(artifact: str = ARTIFACT) -> dict:
    return {
        "Model": model_config(artifact),
        "Transform": {
            "TransformJobName": TRANSFORM_JOB,
            "ModelName": MODEL,
            "TransformInput": {
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/test-images/"}
                },
                "ContentType": "image/jpeg",
            },
            "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/transform/output/"},
            "TransformResources": {"InstanceType": "ml.p3.2xlarge", "InstanceCount": "1"},
        },
    }


def transform_operator(artifact: str = ARTIFACT, **kwargs: Any) -> ResumableTransformOperator:
    options: dict[str, Any] = {"aws_conn_id": None, "check_interval": 0, **kwargs}
    return ResumableTransformOperator(task_id="transform", config=transform_config(artifact), **options)


def test_transform_retry_returns_the_completed_job_without_creating_anything(
    backend, sagemaker_calls, context
):
    first = transform_operator().execute(context)
    assert changes(sagemaker_calls) == [("CreateModel", MODEL), ("CreateTransformJob", TRANSFORM_JOB)]

    retry = transform_operator().execute(context)

    assert changes(sagemaker_calls) == []
    assert without_request_metadata(retry) == without_request_metadata(first)
    assert set(retry) == {"Model", "Transform"}
    assert retry["Transform"]["TransformJobStatus"] == "Completed"
    context["ti"].xcom_push.assert_called_with(key="sagemaker_transform_job_details", value=mock.ANY)


def test_transform_retry_after_a_failed_job_runs_as_the_next_name_and_reuses_the_model(
    backend, sagemaker_calls, context
):
    transform_operator().execute(context)
    backend.transform_jobs[TRANSFORM_JOB].transform_job_status = "Failed"
    changes(sagemaker_calls)

    result = transform_operator().execute(context)

    assert changes(sagemaker_calls) == [("CreateTransformJob", f"{TRANSFORM_JOB}-2")]
    assert result["Transform"]["TransformJobName"] == f"{TRANSFORM_JOB}-2"
    assert result["Model"]["ModelName"] == MODEL


def test_transform_after_a_failed_job_replaces_a_model_with_another_artifact(
    backend, sagemaker_calls, context
):
    transform_operator().execute(context)
    backend.transform_jobs[TRANSFORM_JOB].transform_job_status = "Failed"
    changes(sagemaker_calls)
    new_artifact = f"s3://{BUCKET}/training/output/{TRAINING_JOB}-2/output/model.tar.gz"

    result = transform_operator(new_artifact).execute(context)

    assert changes(sagemaker_calls) == [
        ("DeleteModel", MODEL),
        ("CreateModel", MODEL),
        ("CreateTransformJob", f"{TRANSFORM_JOB}-2"),
    ]
    assert result["Model"]["PrimaryContainer"]["ModelDataUrl"] == new_artifact


def test_transform_retry_waits_for_the_job_in_progress(backend, sagemaker_calls, context, monkeypatch):
    transform_operator().execute(context)
    job = backend.transform_jobs[TRANSFORM_JOB]
    job.transform_job_status = "InProgress"
    finish_while_waiting(monkeypatch, job, "transform_job_status", "Completed")
    changes(sagemaker_calls)

    result = transform_operator().execute(context)

    assert changes(sagemaker_calls) == []
    assert result["Transform"]["TransformJobStatus"] == "Completed"


def test_deferrable_transform_retry_defers_on_the_job_in_progress(backend, sagemaker_calls, context):
    transform_operator().execute(context)
    backend.transform_jobs[TRANSFORM_JOB].transform_job_status = "InProgress"
    changes(sagemaker_calls)

    with pytest.raises(TaskDeferred) as deferred:
        transform_operator(deferrable=True).execute(context)

    assert changes(sagemaker_calls) == []
    assert (deferred.value.trigger.job_name, deferred.value.trigger.job_type) == (TRANSFORM_JOB, "Transform")
    assert deferred.value.method_name == "execute_complete"


# Endpoints.


def endpoint_config(instance_type: str = "ml.m5.xlarge") -> dict:
    return {
        "EndpointConfig": {
            "EndpointConfigName": ENDPOINT_CONFIG,
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": MODEL,
                    "InitialInstanceCount": "1",
                    "InstanceType": instance_type,
                    "InitialVariantWeight": 1,
                }
            ],
        },
        "Endpoint": {"EndpointName": ENDPOINT, "EndpointConfigName": ENDPOINT_CONFIG},
    }


def endpoint_operator(instance_type: str = "ml.m5.xlarge", **kwargs: Any) -> ResumableEndpointOperator:
    options: dict[str, Any] = {"aws_conn_id": None, "check_interval": 0, "max_ingestion_time": 5, **kwargs}
    return ResumableEndpointOperator(task_id="endpoint", config=endpoint_config(instance_type), **options)


@pytest.fixture
def deployed(backend, sagemaker_calls, context) -> dict:
    """A model, endpoint config and endpoint made by a first try; the recorded calls start empty."""
    sagemaker().create_model(**model_config())
    changes(sagemaker_calls)
    result = endpoint_operator().execute(context)
    assert changes(sagemaker_calls) == [
        ("CreateEndpointConfig", ENDPOINT_CONFIG),
        ("CreateEndpoint", ENDPOINT),
    ]
    return result


def test_endpoint_retry_returns_the_endpoint_in_service(deployed, sagemaker_calls, context):
    retry = endpoint_operator().execute(context)

    assert changes(sagemaker_calls) == []
    assert without_request_metadata(retry) == without_request_metadata(deployed)
    assert retry["Endpoint"]["EndpointStatus"] == "InService"
    assert retry["EndpointConfig"]["EndpointConfigName"] == ENDPOINT_CONFIG


def test_failed_endpoint_is_deleted_and_created_again(deployed, backend, sagemaker_calls, context):
    backend.endpoints[ENDPOINT].endpoint_status = "Failed"

    result = endpoint_operator().execute(context)

    assert changes(sagemaker_calls) == [("DeleteEndpoint", ENDPOINT), ("CreateEndpoint", ENDPOINT)]
    assert result["Endpoint"]["EndpointStatus"] == "InService"


def test_endpoint_deployed_before_its_model_was_replaced_is_created_again(
    deployed, backend, sagemaker_calls, context
):
    backend.endpoints[ENDPOINT].last_modified_time -= datetime.timedelta(hours=1)
    model_operator(f"s3://{BUCKET}/training/output/{TRAINING_JOB}-2/output/model.tar.gz").execute(context)
    changes(sagemaker_calls)

    endpoint_operator().execute(context)

    assert changes(sagemaker_calls) == [("DeleteEndpoint", ENDPOINT), ("CreateEndpoint", ENDPOINT)]


@pytest.mark.parametrize("status", ["InService", "Updating"])
def test_changed_config_of_a_live_endpoint_goes_to_the_next_name_and_updates_it(
    deployed, backend, sagemaker_calls, context, monkeypatch, status
):
    backend.endpoints[ENDPOINT].endpoint_status = status
    finish_while_waiting(monkeypatch, backend.endpoints[ENDPOINT], "endpoint_status", "InService")

    def update_endpoint(_hook: SageMakerHook, config: dict, wait_for_completion: bool) -> dict:
        backend.endpoints[config["EndpointName"]].endpoint_config_name = config["EndpointConfigName"]
        return {"ResponseMetadata": {"HTTPStatusCode": 200}}

    update = mock.Mock(side_effect=update_endpoint, autospec=True)
    monkeypatch.setattr(SageMakerHook, "update_endpoint", lambda hook, *args, **kw: update(hook, *args, **kw))

    result = endpoint_operator("ml.g4dn.xlarge").execute(context)

    assert changes(sagemaker_calls) == [("CreateEndpointConfig", f"{ENDPOINT_CONFIG}-2")]
    update.assert_called_once_with(
        mock.ANY,
        {"EndpointName": ENDPOINT, "EndpointConfigName": f"{ENDPOINT_CONFIG}-2"},
        wait_for_completion=False,
    )
    assert result["EndpointConfig"]["EndpointConfigName"] == f"{ENDPOINT_CONFIG}-2"
    assert result["Endpoint"]["EndpointConfigName"] == f"{ENDPOINT_CONFIG}-2"

    retry = endpoint_operator("ml.g4dn.xlarge").execute(context)
    assert changes(sagemaker_calls) == []
    assert update.call_count == 1
    assert retry["EndpointConfig"]["EndpointConfigName"] == f"{ENDPOINT_CONFIG}-2"


def test_endpoint_keeps_the_matching_config_it_runs_on(deployed, backend, sagemaker_calls, context):
    variants = endpoint_config()["EndpointConfig"]["ProductionVariants"]
    variants[0]["InitialInstanceCount"] = 1
    sagemaker().create_endpoint_config(EndpointConfigName=f"{ENDPOINT_CONFIG}-2", ProductionVariants=variants)
    backend.endpoints[ENDPOINT].endpoint_config_name = f"{ENDPOINT_CONFIG}-2"
    changes(sagemaker_calls)

    result = endpoint_operator().execute(context)

    assert changes(sagemaker_calls) == []
    assert result["EndpointConfig"]["EndpointConfigName"] == f"{ENDPOINT_CONFIG}-2"


def test_changed_config_no_endpoint_uses_is_created_again_under_its_name(deployed, sagemaker_calls, context):
    sagemaker().delete_endpoint(EndpointName=ENDPOINT)
    changes(sagemaker_calls)

    result = endpoint_operator("ml.g4dn.xlarge").execute(context)

    assert changes(sagemaker_calls) == [
        ("DeleteEndpointConfig", ENDPOINT_CONFIG),
        ("CreateEndpointConfig", ENDPOINT_CONFIG),
        ("CreateEndpoint", ENDPOINT),
    ]
    assert result["EndpointConfig"]["ProductionVariants"][0]["InstanceType"] == "ml.g4dn.xlarge"


def test_endpoint_being_deleted_is_waited_for_and_created_again(
    deployed, backend, sagemaker_calls, context, monkeypatch
):
    backend.endpoints[ENDPOINT].endpoint_status = "Deleting"
    monkeypatch.setattr(time, "sleep", lambda _seconds: backend.endpoints.pop(ENDPOINT, None))

    result = endpoint_operator().execute(context)

    assert changes(sagemaker_calls) == [("CreateEndpoint", ENDPOINT)]
    assert result["Endpoint"]["EndpointStatus"] == "InService"


def test_deferrable_endpoint_retry_defers_on_the_endpoint_being_created(
    deployed, backend, sagemaker_calls, context
):
    backend.endpoints[ENDPOINT].endpoint_status = "Creating"

    with pytest.raises(TaskDeferred) as deferred:
        endpoint_operator(deferrable=True).execute(context)

    assert changes(sagemaker_calls) == []
    assert (deferred.value.trigger.job_name, deferred.value.trigger.job_type) == (ENDPOINT, "endpoint")
    assert deferred.value.method_name == "execute_complete"


def test_deferred_endpoint_wait_checks_as_often_as_max_ingestion_time_allows(deployed, backend, context):
    backend.endpoints[ENDPOINT].endpoint_status = "Creating"
    retry = endpoint_operator(deferrable=True, check_interval=30, max_ingestion_time=3600)

    with pytest.raises(TaskDeferred) as deferred:
        retry.execute(context)

    _, trigger_kwargs = deferred.value.trigger.serialize()
    assert (trigger_kwargs["waiter_delay"], trigger_kwargs["waiter_max_attempts"]) == (30, 120)
    assert deferred.value.timeout == datetime.timedelta(seconds=3600)


def test_endpoint_wait_gives_up_after_max_ingestion_time_not_after_as_many_checks(
    deployed, backend, sagemaker_calls, context, monkeypatch
):
    backend.endpoints[ENDPOINT].endpoint_status = "Creating"
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)

    with pytest.raises(WaiterMaxAttemptsError):
        endpoint_operator(check_interval=10, max_ingestion_time=30).execute(context)

    assert sleeps == [10, 10]
    assert changes(sagemaker_calls) == []


def test_endpoint_config_without_the_endpoint_part_is_rejected(backend, context):
    config = endpoint_config()
    del config["Endpoint"]

    with pytest.raises(ValueError, match="exactly the parts EndpointConfig and Endpoint"):
        ResumableEndpointOperator(task_id="endpoint", config=config, aws_conn_id=None).execute(context)


def test_endpoint_naming_another_config_is_rejected(backend, context):
    config = endpoint_config()
    config["Endpoint"]["EndpointConfigName"] = "someone-elses-config"

    with pytest.raises(ValueError, match="must name the EndpointConfig part"):
        ResumableEndpointOperator(task_id="endpoint", config=config, aws_conn_id=None).execute(context)


def test_endpoint_update_operation_is_rejected() -> None:
    with pytest.raises(ValueError, match="only creates endpoints"):
        ResumableEndpointOperator(task_id="endpoint", config=endpoint_config(), operation="update")
