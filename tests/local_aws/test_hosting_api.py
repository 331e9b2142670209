"""Models, endpoint configs, endpoints and InvokeEndpoint against the session's running stack.

Endpoints serve a genuine ``model.tar.gz`` of an untrained detector (from ``write_model_artifact``), stored
in the stack's S3; each endpoint instance is a real model server process.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError

from local_aws.config import LocalAwsConfig
from local_aws.environment import stack_variables
from tests.local_aws.conftest import LocalStack, process_alive
from tests.local_aws.ports import port_is_free
from tests.local_aws.test_model_server import encoded_image, write_untrained_artifact

IMAGE = "811284229777.dkr.ecr.us-east-1.amazonaws.com/object-detection:1"
OTHER_REGION_IMAGE = "433757028032.dkr.ecr.us-west-2.amazonaws.com/object-detection:latest"
ROLE = "arn:aws:iam::123456789012:role/LocalHosting"
BUCKET = "hosting-tests"
GOOD_KEY = "models/good/model.tar.gz"
BROKEN_KEY = "models/broken/model.tar.gz"
WAIT = {"Delay": 1, "MaxAttempts": 180}
SIX_MB = 6 * 1024 * 1024


@dataclass(frozen=True)
class Hosting:
    """A stack's clients, with the untrained model's artifact (and a broken one) in its S3."""

    config: LocalAwsConfig
    sagemaker: Any
    runtime: Any
    logs: Any

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.config.region}:{self.config.account_id}:{kind}/{name.lower()}"


def hosting_on(config: LocalAwsConfig, artifact_dir: Path) -> Hosting:
    """Clients of the stack at ``config``, after putting the model artifacts in its S3."""
    s3 = config.boto3_client("s3")
    if BUCKET not in {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    s3.upload_file(str(write_untrained_artifact(artifact_dir)), BUCKET, GOOD_KEY)
    s3.put_object(Bucket=BUCKET, Key=BROKEN_KEY, Body=b"not a tar.gz at all")
    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=config.sagemaker_endpoint,
        region_name=config.region,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        config=Config(retries={"max_attempts": 1}),  # the first answer is what a test looks at
    )
    return Hosting(config, config.boto3_client("sagemaker"), runtime, config.boto3_client("logs"))


def create_model(hosting: Hosting, name: str, model_data: str = f"s3://{BUCKET}/{GOOD_KEY}") -> None:
    hosting.sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_data},
    )


def create_config(hosting: Hosting, name: str, model_name: str, variant: str = "AllTraffic") -> None:
    hosting.sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": variant,
                "ModelName": model_name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )


def deploy(hosting: Hosting, name: str, model_data: str = f"s3://{BUCKET}/{GOOD_KEY}") -> None:
    """A model, a config and an endpoint named after ``name``; the endpoint is left Creating."""
    create_model(hosting, f"{name}-model", model_data)
    create_config(hosting, f"{name}-config", f"{name}-model")
    hosting.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")


def serving(config: LocalAwsConfig, name: str) -> list[dict[str, Any]]:
    """The model server processes the service records for an endpoint: variant, instance, port, pid."""
    with sqlite3.connect(config.state_db) as db:
        row = db.execute("SELECT serving FROM endpoints WHERE name_key = ?", (name.lower(),)).fetchone()
    return json.loads(row[0] or "[]") if row else []


def ended_within(pid: int, seconds: float) -> bool:
    """Whether process ``pid`` is gone within ``seconds``."""
    deadline = time.monotonic() + seconds
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def error_of(raised: pytest.ExceptionInfo[ClientError]) -> dict[str, Any]:
    return raised.value.response["Error"] | {
        key: value for key, value in raised.value.response.items() if key not in ("Error", "ResponseMetadata")
    }


def invoke(hosting: Hosting, name: str, body: bytes, content_type: str, **extra: Any) -> dict[str, Any]:
    response = hosting.runtime.invoke_endpoint(
        EndpointName=name, Body=body, ContentType=content_type, **extra
    )
    return response | {"Body": response["Body"].read()}


@pytest.fixture(scope="module")
def hosting(local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Hosting:
    return hosting_on(local_stack.config, tmp_path_factory.mktemp("hosting-model"))


@pytest.fixture(scope="module")
def served(hosting: Hosting) -> Iterator[str]:
    """An endpoint in service on the untrained model."""
    name = "hosting-served"
    deploy(hosting, name)
    hosting.sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=WAIT)
    yield name
    hosting.sagemaker.delete_endpoint(EndpointName=name)


# Models.


def test_a_model_is_created_described_listed_and_deleted(hosting: Hosting) -> None:
    sagemaker = hosting.sagemaker
    created = sagemaker.create_model(
        ModelName="Hosting-Model-A",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": OTHER_REGION_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{GOOD_KEY}"},
        Tags=[{"Key": "team", "Value": "vision"}],
    )

    assert created["ModelArn"] == hosting.arn("model", "hosting-model-a")
    described = sagemaker.describe_model(ModelName="hosting-model-a")
    assert described["ModelName"] == "Hosting-Model-A"
    assert described["PrimaryContainer"] == {
        "Image": OTHER_REGION_IMAGE,
        "ModelDataUrl": f"s3://{BUCKET}/{GOOD_KEY}",
    }
    assert described["ExecutionRoleArn"] == ROLE
    assert described["CreationTime"].tzinfo is not None
    listed = sagemaker.list_models(NameContains="hosting-model-a")["Models"]
    assert [model["ModelName"] for model in listed] == ["Hosting-Model-A"]

    with pytest.raises(ClientError) as again:
        sagemaker.create_model(
            ModelName="Hosting-Model-A",
            ExecutionRoleArn=ROLE,
            PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{GOOD_KEY}"},
        )
    assert error_of(again)["Code"] == "ValidationException"
    assert error_of(again)["Message"] == (
        f'Cannot create already existing model "{hosting.arn("model", "hosting-model-a")}".'
    )

    sagemaker.delete_model(ModelName="Hosting-Model-A")
    with pytest.raises(ClientError) as gone:
        sagemaker.describe_model(ModelName="Hosting-Model-A")
    assert error_of(gone)["Code"] == "ValidationException"
    assert error_of(gone)["Message"] == f'Could not find model "{hosting.arn("model", "hosting-model-a")}".'


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        (
            {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-detector:1"},
            "PrimaryContainer.Image '123456789012.dkr.ecr.us-east-1.amazonaws.com/my-detector:1' is not an"
            " image the local stack runs",
        ),
        ({"Image": "object-detection:1"}, "PrimaryContainer.Image 'object-detection:1' is not an image"),
        ({"Image": IMAGE}, "PrimaryContainer.ModelDataUrl None is not the S3 URI of a model.tar.gz"),
        (
            {"Image": IMAGE, "ModelDataUrl": "https://example.com/model.tar.gz"},
            "PrimaryContainer.ModelDataUrl 'https://example.com/model.tar.gz' is not the S3 URI",
        ),
    ],
)
def test_a_model_the_stack_cannot_serve_is_refused(
    hosting: Hosting, container: dict[str, str], expected: str
) -> None:
    with pytest.raises(ClientError) as refused:
        hosting.sagemaker.create_model(
            ModelName="hosting-refused", ExecutionRoleArn=ROLE, PrimaryContainer=container
        )

    assert error_of(refused)["Code"] == "ValidationException"
    assert expected in error_of(refused)["Message"]
    assert not hosting.sagemaker.list_models(NameContains="hosting-refused")["Models"]


# Endpoint configs.


def test_an_endpoint_config_needs_its_models(hosting: Hosting) -> None:
    with pytest.raises(ClientError) as missing:
        create_config(hosting, "hosting-config-orphan", "hosting-no-such-model")

    assert error_of(missing)["Code"] == "ValidationException"
    assert error_of(missing)["Message"] == (
        f'Could not find model "{hosting.arn("model", "hosting-no-such-model")}".'
    )


def test_an_endpoint_config_is_created_described_listed_and_deleted(hosting: Hosting) -> None:
    sagemaker = hosting.sagemaker
    create_model(hosting, "hosting-config-model")
    create_config(hosting, "hosting-config-a", "hosting-config-model")

    described = sagemaker.describe_endpoint_config(EndpointConfigName="hosting-config-a")
    assert described["EndpointConfigArn"] == hosting.arn("endpoint-config", "hosting-config-a")
    assert described["ProductionVariants"][0]["ModelName"] == "hosting-config-model"
    listed = sagemaker.list_endpoint_configs(NameContains="hosting-config-")["EndpointConfigs"]
    assert [config["EndpointConfigName"] for config in listed] == ["hosting-config-a"]
    with pytest.raises(ClientError) as again:
        create_config(hosting, "hosting-config-a", "hosting-config-model")
    config_arn = hosting.arn("endpoint-config", "hosting-config-a")
    assert (
        error_of(again)["Message"] == f'Cannot create already existing endpoint configuration "{config_arn}".'
    )

    sagemaker.delete_endpoint_config(EndpointConfigName="hosting-config-a")
    with pytest.raises(ClientError) as gone:
        sagemaker.describe_endpoint_config(EndpointConfigName="hosting-config-a")
    assert error_of(gone)["Code"] == "ValidationException"
    assert error_of(gone)["Message"] == f'Could not find endpoint configuration "{config_arn}".'


# Endpoints and InvokeEndpoint.


def test_an_endpoint_comes_into_service(hosting: Hosting, served: str) -> None:
    described = hosting.sagemaker.describe_endpoint(EndpointName=served)

    assert described["EndpointStatus"] == "InService"
    assert described["EndpointArn"] == hosting.arn("endpoint", served)
    assert described["EndpointConfigName"] == f"{served}-config"
    (variant,) = described["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert variant["DeployedImages"] == [{"SpecifiedImage": IMAGE}]
    assert variant["CurrentInstanceCount"] == 1
    assert "FailureReason" not in described
    (instance,) = serving(hosting.config, served)
    assert process_alive(instance["pid"])
    listed = hosting.sagemaker.list_endpoints(NameContains=served, StatusEquals="InService")["Endpoints"]
    assert [endpoint["EndpointName"] for endpoint in listed] == [served]


@pytest.mark.parametrize(
    ("content_type", "image_format"),
    [("image/jpeg", "JPEG"), ("image/png", "PNG"), ("application/x-image", "JPEG")],
)
def test_invoke_endpoint_answers_the_algorithms_json(
    hosting: Hosting, served: str, content_type: str, image_format: str
) -> None:
    response = invoke(hosting, served, encoded_image(image_format), content_type)

    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    prediction = json.loads(response["Body"])["prediction"]
    assert prediction and all(len(row) == 6 for row in prediction)


def test_an_undecodable_image_is_a_model_error(hosting: Hosting, served: str) -> None:
    with pytest.raises(ClientError) as failed:
        invoke(hosting, served, b"\xff\xd8 a truncated jpeg", "image/jpeg")

    error = error_of(failed)
    assert error["Code"] == "ModelError"
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 400
    assert "not an image that can be decoded" in error["OriginalMessage"]
    assert error["Message"].startswith("Received client error (400) from primary with message")
    assert error["LogStreamArn"] == (
        f"arn:aws:logs:us-east-1:{hosting.config.account_id}:log-group:/aws/sagemaker/Endpoints/{served}"
    )
    # The endpoint still serves.
    assert (
        invoke(hosting, served, encoded_image("PNG"), "image/png")["InvokedProductionVariant"] == "AllTraffic"
    )


def test_an_unsupported_content_type_is_a_model_error(hosting: Hosting, served: str) -> None:
    with pytest.raises(hosting.runtime.exceptions.ModelError) as failed:
        invoke(hosting, served, b"0.5,0.25", "text/csv")

    assert failed.value.response["OriginalStatusCode"] == 415
    assert "'text/csv' is not supported" in failed.value.response["OriginalMessage"]


def test_a_payload_over_6_mb_is_refused(hosting: Hosting, served: str) -> None:
    with pytest.raises(ClientError) as refused:
        invoke(hosting, served, b"\0" * (SIX_MB + 1), "image/jpeg")

    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error_of(refused)["Message"] == f"HTTP content length exceeded {SIX_MB} bytes."
    # 6 MB itself is allowed: it reaches the model, which finds no image in it.
    with pytest.raises(hosting.runtime.exceptions.ModelError):
        invoke(hosting, served, b"\0" * SIX_MB, "image/jpeg")


def test_invoking_a_missing_endpoint_is_a_validation_error(hosting: Hosting) -> None:
    with pytest.raises(hosting.runtime.exceptions.ValidationError) as missing:
        invoke(hosting, "hosting-nowhere", encoded_image("JPEG"), "image/jpeg")

    assert error_of(missing)["Message"] == (
        f"Endpoint hosting-nowhere of account {hosting.config.account_id} not found."
    )


def test_the_model_servers_log_goes_to_cloudwatch(hosting: Hosting, served: str) -> None:
    group = f"/aws/sagemaker/Endpoints/{served}"
    (stream,) = hosting.logs.describe_log_streams(logGroupName=group)["logStreams"]
    (instance,) = serving(hosting.config, served)

    assert stream["logStreamName"] == f"AllTraffic/{instance['instance_id']}"
    assert instance["instance_id"].startswith("i-")
    messages = [
        event["message"]
        for event in hosting.logs.get_log_events(
            logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
        )["events"]
    ]
    assert any("loaded mobilenet-v3 with 1 classes at image_shape 64" in message for message in messages)


def test_creating_an_existing_endpoint_is_refused(hosting: Hosting, served: str) -> None:
    with pytest.raises(ClientError) as again:
        hosting.sagemaker.create_endpoint(EndpointName=served, EndpointConfigName=f"{served}-config")

    assert error_of(again)["Code"] == "ValidationException"
    assert error_of(again)["Message"] == (
        f'Cannot create already existing endpoint "{hosting.arn("endpoint", served)}".'
    )


def test_describing_a_missing_endpoint_is_a_validation_exception(hosting: Hosting) -> None:
    with pytest.raises(ClientError) as missing:
        hosting.sagemaker.describe_endpoint(EndpointName="hosting-nowhere")

    assert error_of(missing)["Code"] == "ValidationException"
    assert error_of(missing)["Message"] == (
        f'Could not find endpoint "{hosting.arn("endpoint", "hosting-nowhere")}".'
    )


def test_a_failed_update_leaves_the_old_config_in_service(hosting: Hosting, served: str) -> None:
    (before,) = serving(hosting.config, served)
    create_model(hosting, f"{served}-broken-model", f"s3://{BUCKET}/{BROKEN_KEY}")
    create_config(hosting, f"{served}-broken-config", f"{served}-broken-model", variant="Broken")

    hosting.sagemaker.update_endpoint(EndpointName=served, EndpointConfigName=f"{served}-broken-config")
    hosting.sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=served, WaiterConfig=WAIT)

    described = hosting.sagemaker.describe_endpoint(EndpointName=served)
    assert described["EndpointConfigName"] == f"{served}-config"
    assert "The model cannot be loaded" in described["FailureReason"]
    assert serving(hosting.config, served) == [before]
    assert (
        invoke(hosting, served, encoded_image("JPEG"), "image/jpeg")["InvokedProductionVariant"]
        == "AllTraffic"
    )


def test_a_model_server_that_dies_is_started_again(hosting: Hosting, served: str) -> None:
    (before,) = serving(hosting.config, served)

    os.kill(before["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while hosting.sagemaker.describe_endpoint(EndpointName=served)["EndpointStatus"] == "InService":
        assert time.monotonic() < deadline, "the endpoint manager did not notice its model server died"
        time.sleep(0.1)
    hosting.sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=served, WaiterConfig=WAIT)

    (after,) = serving(hosting.config, served)
    assert after["pid"] != before["pid"] and process_alive(after["pid"])
    assert (
        invoke(hosting, served, encoded_image("PNG"), "image/png")["InvokedProductionVariant"] == "AllTraffic"
    )
    assert "FailureReason" not in hosting.sagemaker.describe_endpoint(EndpointName=served)


def test_an_endpoint_whose_model_cannot_load_fails_with_the_reason(hosting: Hosting) -> None:
    deploy(hosting, "hosting-broken", f"s3://{BUCKET}/{BROKEN_KEY}")
    deploy(hosting, "hosting-missing", f"s3://{BUCKET}/models/absent/model.tar.gz")

    for name in ("hosting-broken", "hosting-missing"):
        with pytest.raises(WaiterError, match="Failed"):
            hosting.sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=WAIT)

    broken = hosting.sagemaker.describe_endpoint(EndpointName="hosting-broken")
    assert broken["EndpointStatus"] == "Failed"
    assert broken["FailureReason"].startswith(
        "The primary container for production variant AllTraffic did not pass the ping health check: the"
        " model server exited with code 1: The model cannot be loaded: the model data is not a readable"
    )
    assert "ProductionVariants" not in broken
    missing = hosting.sagemaker.describe_endpoint(EndpointName="hosting-missing")
    assert missing["EndpointStatus"] == "Failed"
    assert missing["FailureReason"].startswith(
        f"Failed to download model data (bucket: {BUCKET}, key: models/absent/model.tar.gz)"
    )
    with pytest.raises(hosting.runtime.exceptions.ValidationError, match="is Failed"):
        invoke(hosting, "hosting-broken", encoded_image("JPEG"), "image/jpeg")
    with pytest.raises(ClientError, match="Cannot update failed endpoint"):
        hosting.sagemaker.update_endpoint(
            EndpointName="hosting-broken", EndpointConfigName="hosting-broken-config"
        )

    for name in ("hosting-broken", "hosting-missing"):
        hosting.sagemaker.delete_endpoint(EndpointName=name)
        hosting.sagemaker.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig=WAIT)


def test_an_update_replaces_the_processes_and_delete_frees_the_port(hosting: Hosting) -> None:
    sagemaker = hosting.sagemaker
    name = "hosting-lifecycle"
    deploy(hosting, name)
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=WAIT)
    (blue,) = serving(hosting.config, name)
    create_config(hosting, f"{name}-green", f"{name}-model", variant="Green")

    sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=f"{name}-green")
    updating = sagemaker.describe_endpoint(EndpointName=name)
    assert updating["EndpointStatus"] == "Updating"
    assert updating["EndpointConfigName"] == f"{name}-config"
    assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == f"{name}-green"
    with pytest.raises(ClientError, match="Cannot update in-progress endpoint"):
        sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    # The old config serves until the new one is ready.
    assert (
        invoke(hosting, name, encoded_image("JPEG"), "image/jpeg")["InvokedProductionVariant"] == "AllTraffic"
    )
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=WAIT)

    updated = sagemaker.describe_endpoint(EndpointName=name)
    assert updated["EndpointConfigName"] == f"{name}-green"
    assert [variant["VariantName"] for variant in updated["ProductionVariants"]] == ["Green"]
    assert "PendingDeploymentSummary" not in updated
    assert invoke(hosting, name, encoded_image("JPEG"), "image/jpeg")["InvokedProductionVariant"] == "Green"
    (green,) = serving(hosting.config, name)
    assert green["pid"] != blue["pid"]
    # Traffic moves to the new servers as the endpoint turns InService; the old ones are stopped just after.
    assert ended_within(blue["pid"], 15)
    assert port_is_free(blue["port"])

    sagemaker.delete_endpoint(EndpointName=name)
    sagemaker.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig=WAIT)
    assert not process_alive(green["pid"])
    assert port_is_free(green["port"])
    with pytest.raises(hosting.runtime.exceptions.ValidationError, match="not found"):
        invoke(hosting, name, encoded_image("JPEG"), "image/jpeg")


# The Amazon provider's stock operators and the pipeline's teardown.


@pytest.fixture
def airflow_connection(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> str:
    for variable, value in stack_variables(local_stack.config).items():
        monkeypatch.setenv(variable, value)
    return "aws_default"


def test_the_providers_operators_deploy_and_the_pipeline_tears_down(
    hosting: Hosting, airflow_connection: str
) -> None:
    from airflow.providers.amazon.aws.operators.sagemaker import (
        SageMakerEndpointConfigOperator,
        SageMakerEndpointOperator,
        SageMakerModelOperator,
    )

    from ground_truth_pipeline.aws.resumable_sagemaker_hook import ResumableSageMakerHook
    from ground_truth_pipeline.aws_clients import AwsClients
    from ground_truth_pipeline.steps.deploy_step import delete_endpoint

    name = "hosting-operators"
    model = {
        "ModelName": f"{name}-model",
        "ExecutionRoleArn": ROLE,
        "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{GOOD_KEY}"},
    }
    config = {
        "EndpointConfigName": f"{name}-config",
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": f"{name}-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    }
    endpoint = {"EndpointName": name, "EndpointConfigName": f"{name}-config"}

    SageMakerModelOperator(task_id="model", config=model, aws_conn_id=airflow_connection).execute({})
    SageMakerEndpointConfigOperator(
        task_id="endpoint_config", config=config, aws_conn_id=airflow_connection
    ).execute({})
    result = SageMakerEndpointOperator(
        task_id="endpoint",
        config={"Endpoint": endpoint},
        aws_conn_id=airflow_connection,
        wait_for_completion=True,
        check_interval=1,
        deferrable=False,
    ).execute({})

    assert result["Endpoint"]["EndpointStatus"] == "InService"
    assert result["EndpointConfig"]["EndpointConfigName"] == f"{name}-config"
    (instance,) = serving(hosting.config, name)
    clients = AwsClients(airflow_connection)
    answer = clients.sagemaker_runtime.invoke_endpoint(
        EndpointName=name, ContentType="application/x-image", Body=encoded_image("JPEG")
    )
    assert "prediction" in json.loads(answer["Body"].read())

    torn_down = delete_endpoint(
        {"EndpointConfig": config, "Endpoint": endpoint},
        ResumableSageMakerHook(aws_conn_id=airflow_connection),
        poll_seconds=0.5,
    )

    assert torn_down == {"endpoint_deleted": True, "endpoint_configs_deleted": [f"{name}-config"]}
    assert not process_alive(instance["pid"])
    assert port_is_free(instance["port"])
    assert not hosting.sagemaker.list_endpoints(NameContains=name)["Endpoints"]
    assert not hosting.sagemaker.list_endpoint_configs(NameContains=name)["EndpointConfigs"]
