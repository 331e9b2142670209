"""The Amazon provider's stock SageMakerTrainingOperator and SageMakerTransformOperator against the running
stack, with only the Airflow connection pointing at it (``AIRFLOW_CONN_AWS_DEFAULT``).

The training operator tails the job's CloudWatch log as it waits (``describe_training_job_with_log``),
which re-describes the job at most every 30 s: the test takes that long.
"""

from __future__ import annotations

import pytest

from local_aws.environment import stack_variables
from tests.local_aws.detector_jobs import (
    BUCKET,
    ROLE_ARN,
    TRAINING_IMAGE,
    labeled_data,
    trained_job,
    training_request,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def stack_env(local_stack, monkeypatch):
    for name, value in stack_variables(local_stack.config).items():
        monkeypatch.setenv(name, value)
    return local_stack


def test_the_training_operator_trains_and_tails_the_log(stack_env, capfd) -> None:
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator

    config = stack_env.config
    operator = SageMakerTrainingOperator(
        task_id="train",
        config=training_request("operator-birds", labeled_data(config)),
        aws_conn_id="aws_default",
        wait_for_completion=True,
        print_log=True,
        check_interval=1,
        deferrable=False,
    )
    result = operator.execute({})
    training = result["Training"]
    assert (training["TrainingJobStatus"], training["SecondaryStatus"]) == ("Completed", "Completed")
    assert training["ModelArtifacts"]["S3ModelArtifacts"].endswith("/operator-birds/output/model.tar.gz")
    logged = "".join(capfd.readouterr())
    assert "Final configuration: " in logged and "validation mAP <score>=(" in logged
    assert "Completed - Training job completed" in logged
    assert "Billable seconds: " in logged


def test_the_transform_operator_creates_the_model_and_transforms(stack_env) -> None:
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTransformOperator

    config = stack_env.config
    trained = trained_job(config)
    s3 = config.boto3_client("s3")
    for index, uri in enumerate(labeled_data(config).image_uris[:2]):
        source_bucket, _, key = uri.removeprefix("s3://").partition("/")
        s3.copy_object(
            Bucket=BUCKET, Key=f"operator-input/{index}.jpg", CopySource={"Bucket": source_bucket, "Key": key}
        )
    output = f"s3://{BUCKET}/operator-output"
    operator = SageMakerTransformOperator(
        task_id="transform",
        config={
            "Model": {
                "ModelName": "operator-birds-model",
                "ExecutionRoleArn": ROLE_ARN,
                "PrimaryContainer": {
                    "Image": TRAINING_IMAGE,
                    "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"],
                },
            },
            "Transform": {
                "TransformJobName": "operator-birds-transform",
                "ModelName": "operator-birds-model",
                "MaxConcurrentTransforms": 16,
                "MaxPayloadInMB": 6,
                "BatchStrategy": "SingleRecord",
                "TransformOutput": {"S3OutputPath": output},
                "TransformInput": {
                    "DataSource": {
                        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/operator-input/"}
                    },
                    "ContentType": "application/x-image",
                    "SplitType": "None",
                    "CompressionType": "None",
                },
                "TransformResources": {"InstanceType": "ml.p2.xlarge", "InstanceCount": 1},
            },
        },
        aws_conn_id="aws_default",
        wait_for_completion=True,
        check_interval=1,
        deferrable=False,
    )
    result = operator.execute({})
    assert result["Transform"]["TransformJobStatus"] == "Completed"
    assert result["Model"]["ModelName"] == "operator-birds-model"
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="operator-output/")["Contents"]}
    assert keys == {"operator-output/0.jpg.out", "operator-output/1.jpg.out"}
