"""The transform engine: one CreateTransformJob of an object-detection model, in a worker process.

It loads the model's ``model.tar.gz`` from S3, lists the input objects (an S3Prefix, or the keys a
ManifestFile names under its prefix) and sends each whole object to the algorithm (``Predictor.predict``)
on ``MaxConcurrentTransforms`` threads, writing the algorithm's JSON to ``<S3OutputPath>/<key relative to
the input prefix>.out``. An object that cannot be transformed (unreadable, over MaxPayloadInMB, not an
image) fails alone: the others' outputs are still written, and the job then fails naming it, as AWS's batch
transform does. The log goes to ``/aws/sagemaker/TransformJobs``, stream ``<job>/<instance id>``. A stop
request is honoured between objects; what was written stays.

Imported only in workers: it imports torch.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import posixpath
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from local_aws.config import LocalAwsConfig
from local_aws.object_detection import (
    InvalidImageError,
    InvalidModelArtifactError,
    Predictor,
    UnsupportedContentTypeError,
    check_content_type,
)
from local_aws.s3_objects import read_object, split_s3_uri
from local_aws.sagemaker_service.log_store import LogStore
from local_aws.sagemaker_service.training_engine import set_torch_threads
from local_aws.sagemaker_service.transform_requests import (
    LOG_GROUP,
    TransformJobSpec,
    no_objects_message,
    transform_job_spec,
)

MEGABYTE = 1024 * 1024
_SKIPPED = "skipped: the job is stopping"
_SHOWN_FAILURES = 5


class TransformJobFailed(Exception):
    """The job cannot go on, or some of its objects failed; ``reason`` is its FailureReason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class InputObject:
    uri: str
    relative: str  # the key relative to the input prefix: the output is <S3OutputPath>/<relative>.out


class _JobLog:
    """The instance's CloudWatch stream, in the ``[sagemaker logs]`` style of AWS's batch transform."""

    def __init__(self, config: LocalAwsConfig, job_name: str) -> None:
        self.store = LogStore(config.state_db)
        instance = hashlib.sha256(f"{job_name}/{time.time()}".encode()).hexdigest()[:17]
        self.stream = f"{job_name}/i-{instance}"

    def __call__(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        self.store.put_events(LOG_GROUP, self.stream, [f"{stamp}:[sagemaker logs]: {message}"])


def run_transform_job(
    request: dict[str, Any],
    *,
    job_name: str,
    model_data_url: str,
    config: LocalAwsConfig,
    should_stop: Callable[[], bool],
) -> dict[str, Any]:
    """Run the job of a CreateTransformJob ``request`` to its end; TransformJobFailed if it fails."""
    try:
        spec = transform_job_spec(request)
        check_content_type(spec.content_type)
    except (ValueError, UnsupportedContentTypeError) as error:
        raise TransformJobFailed(f"ClientError: {error}") from None
    log = _JobLog(config, job_name)
    set_torch_threads()
    s3 = _s3_client(config, spec.max_concurrent)
    log(
        f"MaxConcurrentTransforms={spec.max_concurrent}, MaxPayloadInMB={spec.max_payload_mb}, "
        f"BatchStrategy={request.get('BatchStrategy', 'MultiRecord')}, ContentType={spec.content_type}"
    )
    predictor = _load_model(s3, model_data_url, log)
    objects = list(_input_objects(s3, spec, config.region))
    log(f"{len(objects)} input objects under {spec.input_uri}")

    def transform(item: InputObject) -> str | None:
        """The reason the object failed, None when it is transformed, _SKIPPED once the job is stopping."""
        if should_stop():
            return _SKIPPED
        reason = _transform_object(s3, predictor, spec, item)
        if reason is not None:
            log(f"{item.uri}: {reason}")
        return reason

    with ThreadPoolExecutor(spec.max_concurrent, thread_name_prefix="transform") as pool:
        outcomes = list(pool.map(transform, objects))
    done = [(item, outcome) for item, outcome in zip(objects, outcomes, strict=True) if outcome != _SKIPPED]
    failed = [(item.uri, reason) for item, reason in done if reason is not None]
    log(f"{len(done) - len(failed)} of {len(objects)} objects transformed, {len(failed)} failed")
    if len(done) < len(objects):
        log(f"Stopped on request after {len(done)} of {len(objects)} objects")
        return {"status": "Stopped"}
    if failed:
        shown = "; ".join(f"{uri} ({reason})" for uri, reason in failed[:_SHOWN_FAILURES])
        more = f"; and {len(failed) - _SHOWN_FAILURES} more" if len(failed) > _SHOWN_FAILURES else ""
        raise TransformJobFailed(
            f"ClientError: {len(failed)} of {len(objects)} input objects could not be transformed, see "
            f"{LOG_GROUP} stream {log.stream}: {shown}{more}"
        )
    return {"status": "Completed"}


def _s3_client(config: LocalAwsConfig, threads: int) -> Any:
    """The stack's S3 with a connection for each of the job's threads."""
    return boto3.client(
        "s3",
        endpoint_url=config.s3_endpoint,
        region_name=config.region,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        config=Config(max_pool_connections=max(10, threads)),
    )


def _load_model(s3: Any, model_data_url: str, log: Callable[[str], None]) -> Predictor:
    try:
        predictor = Predictor.from_artifact(read_object(s3, model_data_url))
    except (ClientError, InvalidModelArtifactError) as error:
        reason = f"ClientError: the model data {model_data_url} cannot be loaded: {error}"
        log(reason)
        raise TransformJobFailed(reason) from None
    spec = predictor.spec
    log(f"Loaded model {model_data_url} ({spec.base_network}, image_shape {spec.image_shape})")
    return predictor


def _input_objects(s3: Any, spec: TransformJobSpec, region: str) -> Iterator[InputObject]:
    if spec.data_type == "S3Prefix":
        yield from _prefix_objects(s3, spec.input_uri, region)
    else:
        yield from _manifest_objects(s3, spec.input_uri)


def _prefix_objects(s3: Any, uri: str, region: str) -> Iterator[InputObject]:
    bucket, prefix = split_s3_uri(uri, key_required=False)
    found = False
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith("/"):  # a folder marker, not data
                    continue
                found = True
                relative = key[len(prefix) :].lstrip("/") or posixpath.basename(key)
                yield InputObject(f"s3://{bucket}/{key}", relative)
    except ClientError as error:
        raise TransformJobFailed(f"ClientError: the input {uri} cannot be listed: {error}") from None
    if not found:
        raise TransformJobFailed(f"ClientError: {no_objects_message(uri, region)}")


def _manifest_objects(s3: Any, uri: str) -> Iterator[InputObject]:
    """The objects of a ManifestFile: ``[{"prefix": "s3://bucket/prefix/"}, "relative/key", ...]``."""
    where = f"ClientError: the manifest file {uri}"
    try:
        manifest = json.loads(read_object(s3, uri))
    except ClientError as error:
        raise TransformJobFailed(f"{where} cannot be read: {error}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TransformJobFailed(f"{where} is not JSON: {error}") from None
    if (
        not isinstance(manifest, list)
        or not manifest
        or not isinstance(manifest[0], dict)
        or not isinstance(manifest[0].get("prefix"), str)
        or not all(isinstance(entry, str) and entry for entry in manifest[1:])
    ):
        raise TransformJobFailed(
            f'{where} must be a JSON array of a {{"prefix": "s3://<bucket>/<prefix>"}} object followed by '
            "the keys of the input objects relative to that prefix"
        )
    prefix = manifest[0]["prefix"]
    try:
        split_s3_uri(prefix, key_required=False)
    except ValueError as error:
        raise TransformJobFailed(f"{where}: its prefix {error}") from None
    if len(manifest) == 1:
        raise TransformJobFailed(f"{where} lists no input objects after its prefix {prefix}")
    for relative in manifest[1:]:
        yield InputObject(prefix + relative, relative.lstrip("/"))


def _transform_object(s3: Any, predictor: Predictor, spec: TransformJobSpec, item: InputObject) -> str | None:
    """Transform one object and write its output; the reason it failed, or None."""
    try:
        payload = read_object(s3, item.uri)
    except ClientError as error:
        return f"ClientError: the object cannot be read: {error}"
    if spec.gzip:
        try:
            payload = gzip.decompress(payload)
        except (OSError, EOFError, zlib.error) as error:
            return f"ClientError: CompressionType is Gzip, but the object does not decompress: {error}"
    if len(payload) > spec.max_payload_mb * MEGABYTE:
        return (
            f"ClientError: the object is {len(payload) / MEGABYTE:.1f} MB, larger than MaxPayloadInMB "
            f"{spec.max_payload_mb}"
        )
    try:
        prediction = predictor.predict(payload, spec.content_type)
    except InvalidImageError as error:
        return f"ClientError: the algorithm answered 400 (Bad Request): {error}"
    body = json.dumps(prediction) + ("\n" if spec.line_ending else "")
    bucket, key = split_s3_uri(f"{spec.output_path.rstrip('/')}/{item.relative}.out")
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType=spec.accept)
    except ClientError as error:
        return f"ClientError: the output s3://{bucket}/{key} cannot be written: {error}"
    return None
