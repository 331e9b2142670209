"""What the local stack serves of a CreateTransformJob request, checked when the job is created, and the
parts of it a transform worker reads.

The stack runs batch transform for models of SageMaker's built-in object-detection algorithm: every input
object is one image and one request (SplitType None; SingleRecord and MultiRecord are alike for whole
images), read from an S3Prefix or a ManifestFile, optionally gzip-compressed. Limits are AWS's:
MaxPayloadInMB at most 100 (6 unless given) and MaxConcurrentTransforms x MaxPayloadInMB at most 100; 0
(HTTP chunked encoding) is not supported by the built-in algorithms, as AWS documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local_aws.config import LocalAwsConfig

LOG_GROUP = "/aws/sagemaker/TransformJobs"
DEFAULT_CONTENT_TYPE = "application/x-image"
DEFAULT_MAX_PAYLOAD_MB = 6
MAX_PAYLOAD_MB = 100
DEFAULT_CONCURRENCY = 1  # SageMaker's default without the algorithm's execution-parameters
DATA_TYPES = ("S3Prefix", "ManifestFile")
ACCEPTED_OUTPUT_TYPES = ("application/json", "application/jsonlines")
# DataProcessing values that leave the data as it is.
_NO_PROCESSING = {"InputFilter": "$", "OutputFilter": "$", "JoinSource": "None"}


@dataclass(frozen=True)
class TransformJobSpec:
    data_type: str  # S3Prefix or ManifestFile
    input_uri: str
    content_type: str
    gzip: bool
    output_path: str
    accept: str
    line_ending: bool  # AssembleWith Line: a newline after each object's record
    max_payload_mb: int
    max_concurrent: int


def transform_job_spec(request: Mapping[str, Any]) -> TransformJobSpec:
    """The served parts of a validated CreateTransformJob request; ValueError for anything the stack does
    not serve."""
    transform_input = request["TransformInput"]
    source = transform_input["DataSource"]["S3DataSource"]
    data_type = source["S3DataType"]
    if data_type not in DATA_TYPES:
        raise ValueError(
            f"TransformInput.DataSource.S3DataSource.S3DataType {data_type!r} is not served: the local stack "
            f"reads {' or '.join(DATA_TYPES)} inputs, each object one image"
        )
    input_uri = source["S3Uri"]
    if not input_uri.startswith("s3://"):
        raise ValueError(f"TransformInput.DataSource.S3DataSource.S3Uri {input_uri!r} must be an s3:// URI")
    split_type = transform_input.get("SplitType", "None")
    if split_type != "None":
        raise ValueError(
            f"TransformInput.SplitType {split_type!r} is not served: the object-detection algorithm takes "
            "each image whole, so the local stack sends every object as one record (SplitType None)"
        )
    output = request["TransformOutput"]
    output_path = output["S3OutputPath"]
    if not output_path.startswith("s3://"):
        raise ValueError(f"TransformOutput.S3OutputPath {output_path!r} must be an s3:// URI")
    accept = output.get("Accept", ACCEPTED_OUTPUT_TYPES[0])
    if accept not in ACCEPTED_OUTPUT_TYPES:
        raise ValueError(
            f"TransformOutput.Accept {accept!r} is not served: the object-detection algorithm answers "
            f"{' or '.join(ACCEPTED_OUTPUT_TYPES)}"
        )
    for name, value in request.get("DataProcessing", {}).items():
        if value != _NO_PROCESSING[name]:
            raise ValueError(
                f"DataProcessing.{name} {value!r} is not served: the local stack neither filters nor joins"
            )
    payload = request.get("MaxPayloadInMB", DEFAULT_MAX_PAYLOAD_MB)
    if payload == 0:
        raise ValueError(
            "MaxPayloadInMB 0 asks for HTTP chunked encoding, which SageMaker's built-in algorithms do not "
            "support"
        )
    if payload > MAX_PAYLOAD_MB:
        raise ValueError(f"MaxPayloadInMB {payload} cannot be greater than {MAX_PAYLOAD_MB} MB")
    concurrent = request.get("MaxConcurrentTransforms") or DEFAULT_CONCURRENCY
    if "MaxConcurrentTransforms" in request and concurrent * payload > MAX_PAYLOAD_MB:
        raise ValueError(
            f"MaxConcurrentTransforms x MaxPayloadInMB ({concurrent} x {payload}) cannot exceed "
            f"{MAX_PAYLOAD_MB} MB"
        )
    return TransformJobSpec(
        data_type=data_type,
        input_uri=input_uri,
        content_type=transform_input.get("ContentType", DEFAULT_CONTENT_TYPE),
        gzip=transform_input.get("CompressionType", "None") == "Gzip",
        output_path=output_path,
        accept=accept,
        line_ending=output.get("AssembleWith", "None") == "Line",
        max_payload_mb=payload,
        max_concurrent=concurrent,
    )


def no_objects_message(uri: str, region: str) -> str:
    """AWS's words for an S3Prefix with nothing under it."""
    return (
        f'No S3 objects found under S3 URL "{uri}" given in input data source. Please ensure that the bucket'
        f" exists in the selected region ({region}) and that objects exist under that S3 prefix."
    )


def check_transform_job_request(request: dict[str, Any], config: LocalAwsConfig) -> None:
    """ValueError for a CreateTransformJob request the stack cannot serve, or whose S3Prefix holds no
    objects (AWS checks that when the job is created)."""
    spec = transform_job_spec(request)
    if spec.data_type == "S3Prefix" and not _has_objects(config, spec.input_uri):
        raise ValueError(no_objects_message(spec.input_uri, config.region))


def _has_objects(config: LocalAwsConfig, uri: str) -> bool:
    bucket, prefix = uri.removeprefix("s3://").partition("/")[::2]
    try:
        pages = (
            config.boto3_client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return any(not item["Key"].endswith("/") for page in pages for item in page.get("Contents", []))
    except (BotoCoreError, ClientError) as error:
        raise ValueError(f"The input {uri} cannot be listed: {error}") from None
