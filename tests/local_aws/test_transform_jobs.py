"""Batch transform jobs with the tiny trained detector on the running stack, through boto3."""

from __future__ import annotations

import gzip
import json
import os

import pytest
from botocore.exceptions import ClientError

from local_aws.s3_objects import read_object
from tests.local_aws.detector_jobs import (
    BUCKET,
    TRAINING_IMAGE,
    labeled_data,
    log_messages,
    trained_job,
    wait_for,
)

TRANSFORM_LOGS = "/aws/sagemaker/TransformJobs"
INPUT = f"s3://{BUCKET}/transform-input/batch/"
GOOD = ("a.jpg", "b.jpg", "sub/c.jpg")
MODEL = "tiny-birds-model"


@pytest.fixture(scope="module")
def config(local_stack):
    return local_stack.config


@pytest.fixture(scope="module")
def sagemaker(config):
    return config.boto3_client("sagemaker")


@pytest.fixture(scope="module")
def s3(config):
    return config.boto3_client("s3")


@pytest.fixture(scope="module")
def model(config, sagemaker, s3) -> str:
    """The tiny detector as a model, and the batch input: three images, a corrupt one, one too large."""
    trained = trained_job(config)
    sagemaker.create_model(
        ModelName=MODEL,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/LocalSageMaker",
        PrimaryContainer={
            "Image": TRAINING_IMAGE,
            "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"],
        },
    )
    images = labeled_data(config).image_uris
    for relative, uri in zip(GOOD, images, strict=False):
        s3.put_object(Bucket=BUCKET, Key=f"transform-input/batch/{relative}", Body=read_object(s3, uri))
    s3.put_object(Bucket=BUCKET, Key="transform-input/batch/broken.jpg", Body=b"<html>not found</html>")
    s3.put_object(Bucket=BUCKET, Key="transform-input/batch/huge.jpg", Body=os.urandom(1024 * 1024 + 1))
    s3.put_object(Bucket=BUCKET, Key="transform-input/batch/folder/", Body=b"")  # a console folder marker
    return MODEL


def transform_request(name: str, data_type: str, uri: str, output: str, **extra) -> dict:
    """The reference notebook's CreateTransformJob."""
    return {
        "TransformJobName": name,
        "ModelName": MODEL,
        "MaxConcurrentTransforms": 4,
        "MaxPayloadInMB": 1,
        "BatchStrategy": "SingleRecord",
        "TransformOutput": {"S3OutputPath": output},
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": data_type, "S3Uri": uri}},
            "ContentType": "application/x-image",
            "SplitType": "None",
            "CompressionType": "None",
        },
        "TransformResources": {"InstanceType": "ml.p2.xlarge", "InstanceCount": 1},
        **extra,
    }


def wait_for_transform(sagemaker, name: str) -> dict:
    return wait_for(
        lambda: sagemaker.describe_transform_job(TransformJobName=name),
        lambda description: description["TransformJobStatus"] in ("Completed", "Failed", "Stopped"),
    )


def predictions(s3, output: str, relative: str) -> list:
    document = json.loads(read_object(s3, f"{output}/{relative}.out"))
    assert list(document) == ["prediction"]
    return document["prediction"]


@pytest.fixture(scope="module")
def prefix_job(sagemaker, model) -> dict:
    output = f"s3://{BUCKET}/transform-output/prefix"
    sagemaker.create_transform_job(**transform_request("birds-prefix", "S3Prefix", INPUT, output))
    return wait_for_transform(sagemaker, "birds-prefix")


def test_a_prefix_with_a_corrupt_and_an_oversize_image_fails_naming_them_and_writes_the_rest(
    config, s3, prefix_job
) -> None:
    assert prefix_job["TransformJobStatus"] == "Failed"
    reason = prefix_job["FailureReason"]
    assert reason.startswith("ClientError: 2 of 5 input objects could not be transformed")
    assert f"{INPUT}broken.jpg (ClientError: the algorithm answered 400 (Bad Request): not an image" in reason
    assert f"{INPUT}huge.jpg (ClientError: the object is 1.0 MB, larger than MaxPayloadInMB 1)" in reason
    output = prefix_job["TransformOutput"]["S3OutputPath"]
    keys = {
        item["Key"]
        for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="transform-output/prefix/")["Contents"]
    }
    assert keys == {f"transform-output/prefix/{relative}.out" for relative in GOOD}
    for relative in GOOD:
        for class_id, score, xmin, ymin, xmax, ymax in predictions(s3, output, relative):
            assert class_id == 0.0 and 0.0 < score <= 1.0
            assert 0.0 <= xmin <= xmax <= 1.0 and 0.0 <= ymin <= ymax <= 1.0
    assert prefix_job["CreationTime"] <= prefix_job["TransformStartTime"] <= prefix_job["TransformEndTime"]
    assert prefix_job["ModelName"] == MODEL
    assert (prefix_job["MaxConcurrentTransforms"], prefix_job["MaxPayloadInMB"]) == (4, 1)
    stream, messages = log_messages(config, TRANSFORM_LOGS, "birds-prefix/")
    assert stream in reason
    assert any(f"{INPUT}broken.jpg: ClientError:" in message for message in messages)
    assert any("3 of 5 objects transformed, 2 failed" in message for message in messages)


def test_a_manifest_file_input_transforms_the_objects_it_names(sagemaker, s3, prefix_job) -> None:
    manifest = [{"prefix": INPUT}, "a.jpg", "sub/c.jpg"]
    s3.put_object(Bucket=BUCKET, Key="transform-input/two.manifest", Body=json.dumps(manifest).encode())
    output = f"s3://{BUCKET}/transform-output/manifest"
    request = transform_request(
        "birds-manifest",
        "ManifestFile",
        f"s3://{BUCKET}/transform-input/two.manifest",
        output,
        BatchStrategy="MultiRecord",
    )
    sagemaker.create_transform_job(**request)
    described = wait_for_transform(sagemaker, "birds-manifest")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert "FailureReason" not in described
    prefix_output = prefix_job["TransformOutput"]["S3OutputPath"]
    for relative in ("a.jpg", "sub/c.jpg"):
        assert predictions(s3, output, relative) == predictions(s3, prefix_output, relative)
    listed = sagemaker.list_transform_jobs(NameContains="birds-")["TransformJobSummaries"]
    assert [job["TransformJobName"] for job in listed][:2] == [
        "birds-manifest",
        "birds-prefix",
    ]  # newest first


def test_gzip_inputs_are_decompressed_and_line_assembly_ends_records_with_a_newline(sagemaker, s3, model):
    image = read_object(s3, f"{INPUT}a.jpg")
    s3.put_object(Bucket=BUCKET, Key="transform-input/gzipped/a.jpg.gz", Body=gzip.compress(image))
    output = f"s3://{BUCKET}/transform-output/gzipped"
    request = transform_request("birds-gzip", "S3Prefix", f"s3://{BUCKET}/transform-input/gzipped/", output)
    request["TransformInput"]["CompressionType"] = "Gzip"
    request["TransformOutput"]["AssembleWith"] = "Line"
    sagemaker.create_transform_job(**request)
    described = wait_for_transform(sagemaker, "birds-gzip")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    body = read_object(s3, f"{output}/a.jpg.gz.out")
    assert body.endswith(b"}\n") and body.count(b"\n") == 1
    assert json.loads(body) == json.loads(read_object(s3, f"s3://{BUCKET}/transform-output/prefix/a.jpg.out"))


def test_a_content_type_the_algorithm_does_not_read_fails_the_job(sagemaker, model) -> None:
    request = transform_request("birds-csv", "S3Prefix", INPUT, f"s3://{BUCKET}/csv")
    request["TransformInput"]["ContentType"] = "text/csv"
    sagemaker.create_transform_job(**request)
    described = wait_for_transform(sagemaker, "birds-csv")
    assert described["TransformJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("ClientError: content type 'text/csv' is not supported")


def test_a_stopped_transform_job_ends_stopped(sagemaker, s3, model) -> None:
    manifest = [{"prefix": INPUT}] + ["a.jpg"] * 200
    s3.put_object(Bucket=BUCKET, Key="transform-input/many.manifest", Body=json.dumps(manifest).encode())
    request = transform_request(
        "birds-stopped",
        "ManifestFile",
        f"s3://{BUCKET}/transform-input/many.manifest",
        f"s3://{BUCKET}/stopped",
    )
    request["MaxConcurrentTransforms"] = 1
    sagemaker.create_transform_job(**request)
    sagemaker.stop_transform_job(TransformJobName="birds-stopped")
    described = wait_for_transform(sagemaker, "birds-stopped")
    assert described["TransformJobStatus"] == "Stopped"
    assert "FailureReason" not in described
    with pytest.raises(ClientError, match="Stopped; only an InProgress job can be stopped"):
        sagemaker.stop_transform_job(TransformJobName="birds-stopped")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(ModelName="no-such-model"), 'Could not find model "arn:aws:sagemaker:'),
        (
            lambda r: r["TransformInput"].update(SplitType="Line"),
            "TransformInput.SplitType 'Line' is not served",
        ),
        (
            lambda r: r["TransformInput"]["DataSource"]["S3DataSource"].update(
                S3Uri=f"s3://{BUCKET}/nothing-here/"
            ),
            f'No S3 objects found under S3 URL "s3://{BUCKET}/nothing-here/" given in input data source',
        ),
        (lambda r: r.update(MaxPayloadInMB=101), "MaxPayloadInMB 101 cannot be greater than 100 MB"),
        (
            lambda r: r.update(MaxConcurrentTransforms=16, MaxPayloadInMB=7),
            "MaxConcurrentTransforms x MaxPayloadInMB (16 x 7) cannot exceed 100 MB",
        ),
    ],
)
def test_requests_the_stack_cannot_serve_are_refused_at_once(sagemaker, model, change, message) -> None:
    request = transform_request("refused", "S3Prefix", INPUT, f"s3://{BUCKET}/refused")
    change(request)
    with pytest.raises(ClientError) as refused:
        sagemaker.create_transform_job(**request)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert message in refused.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as missing:
        sagemaker.describe_transform_job(TransformJobName="refused")
    assert missing.value.response["Error"]["Code"] == "ValidationException"


def test_a_taken_transform_job_name_is_resource_in_use(sagemaker, prefix_job) -> None:
    request = transform_request("BIRDS-PREFIX", "S3Prefix", INPUT, f"s3://{BUCKET}/again")
    with pytest.raises(ClientError) as taken:
        sagemaker.create_transform_job(**request)
    assert taken.value.response["Error"]["Code"] == "ResourceInUse"
    assert prefix_job["TransformJobArn"] in taken.value.response["Error"]["Message"]
