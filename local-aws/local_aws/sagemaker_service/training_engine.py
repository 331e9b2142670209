"""The training engine: one CreateTrainingJob of the object-detection algorithm, in a worker process.

It reads the ``train`` and ``validation`` AugmentedManifestFile channels and their images from the stack's
S3, runs the algorithm (``local_aws.object_detection.run_training``), uploads ``model.tar.gz`` to
``<S3OutputPath>/<job>/output/`` and writes the algorithm's log to CloudWatch Logs, group
``/aws/sagemaker/TrainingJobs``, stream ``<job>/algo-1-<epoch seconds>``. A stop request or the end of
``MaxRuntimeInSeconds`` (counted from when the worker took the job) stops training between batches; the
model of the best epoch so far is saved, as AWS's built-in algorithms do. Bad input fails the job with the
algorithm's ``ClientError: ...`` reason, also written to the log.

Imported only in workers: it imports torch. ``LOCAL_AWS_TORCH_THREADS`` caps torch's CPU threads.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from botocore.exceptions import ClientError

from local_aws.config import LocalAwsConfig
from local_aws.object_detection import ClientInputError, EpochReport, run_training
from local_aws.object_detection.dataset import parse_manifest
from local_aws.object_detection.job import AlgorithmLog
from local_aws.s3_objects import read_object, split_s3_uri
from local_aws.sagemaker_service.log_store import LogStore
from local_aws.sagemaker_service.training_requests import (
    LOG_GROUP,
    ManifestChannel,
    TrainingJobSpec,
    model_artifact_uri,
    training_job_spec,
)

CHANNELS = ("train", "validation")
THREADS_VARIABLE = "LOCAL_AWS_TORCH_THREADS"

Progress = Callable[[str], None]


class TrainingJobFailed(Exception):
    """The job cannot go on; ``reason`` is its FailureReason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _JobLog:
    """The job's CloudWatch stream; each line is stored as it is written, so the log can be tailed."""

    def __init__(self, config: LocalAwsConfig, job_name: str) -> None:
        self.store = LogStore(config.state_db)
        self.stream = f"{job_name}/algo-1-{int(time.time())}"

    def __call__(self, line: str) -> None:
        self.store.put_events(LOG_GROUP, self.stream, [line])


def set_torch_threads() -> None:
    value = os.environ.get(THREADS_VARIABLE, "")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{THREADS_VARIABLE} must be a positive whole number, got {value!r}")
        torch.set_num_threads(int(value))


def run_training_job(
    request: dict[str, Any],
    *,
    job_name: str,
    config: LocalAwsConfig,
    progress: Progress,
    should_stop: Callable[[], bool],
) -> dict[str, Any]:
    """Run the job of a CreateTrainingJob ``request`` to its end; TrainingJobFailed if it fails.

    ``progress(secondary_status)`` is called as the job moves on; ``should_stop`` is asked between
    batches. Returns the result ``TrainingJobStore.finish`` records.
    """
    try:
        spec = training_job_spec(request)
    except ValueError as error:
        raise TrainingJobFailed(f"ClientError: {error}") from None
    started = time.monotonic()
    log = _JobLog(config, job_name)
    out_of_time = False

    def stop() -> bool:
        nonlocal out_of_time
        out_of_time = out_of_time or time.monotonic() - started > spec.max_runtime_s
        return out_of_time or should_stop()

    set_torch_threads()
    s3 = config.boto3_client("s3")
    last_epoch_time = time.time()

    def on_epoch(report: EpochReport) -> None:
        nonlocal last_epoch_time
        last_epoch_time = time.time()

    try:
        progress("Downloading")
        attribute_names, train_lines, validation_lines = _read_channels(s3, spec)
        progress("Training")
        with tempfile.TemporaryDirectory(prefix=f"training-{job_name}-") as output_dir:
            result = run_training(
                spec.hyperparameters,
                train_lines,
                validation_lines,
                attribute_names,
                lambda uri: read_object(s3, uri),
                log,
                stop,
                Path(output_dir),
                on_epoch=on_epoch,
            )
            if result.model_tar_path is not None:
                progress("Uploading")
                _upload(s3, result.model_tar_path, model_artifact_uri(spec.output_path, job_name))
    except ClientInputError as error:
        AlgorithmLog(log)(f"Customer Error: {error}", level="ERROR")
        raise TrainingJobFailed(error.failure_reason) from None
    stopped = result.stopped
    return {
        "status": "Stopped" if stopped else "Completed",
        "secondary_status": ("MaxRuntimeExceeded" if out_of_time else "Stopped") if stopped else "Completed",
        "final_metrics": [
            {"MetricName": name, "Value": value, "Timestamp": last_epoch_time}
            for name, value in result.final_metrics.items()
        ],
    }


def _read_channels(
    s3: Any, spec: TrainingJobSpec
) -> tuple[tuple[str, ...], list[dict[str, Any]], list[dict[str, Any]]]:
    """The AttributeNames the channels share and the lines of their manifests; ClientInputError when the
    channels are not the algorithm's."""
    missing = [name for name in CHANNELS if name not in spec.channels]
    extra = [name for name in spec.channels if name not in CHANNELS]
    if missing or extra:
        given = ", ".join(map(repr, spec.channels)) or "none"
        raise ClientInputError(
            "the object-detection algorithm reads the channels 'train' and 'validation' from augmented "
            f"manifests; the job has {given}"
        )
    train, validation = spec.channels["train"], spec.channels["validation"]
    if train.attribute_names != validation.attribute_names:
        raise ClientInputError(
            f"the train channel's AttributeNames {list(train.attribute_names)} differ from the validation "
            f"channel's {list(validation.attribute_names)}; both must name the image and its label alike"
        )
    return train.attribute_names, _manifest_lines(s3, train), _manifest_lines(s3, validation)


def _manifest_lines(s3: Any, channel: ManifestChannel) -> list[dict[str, Any]]:
    try:
        data = read_object(s3, channel.manifest_uri)
    except ClientError as error:
        raise ClientInputError(
            f"the {channel.name} channel's augmented manifest {channel.manifest_uri} cannot be read: {error}"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ClientInputError(
            f"the {channel.name} channel's augmented manifest {channel.manifest_uri} is not UTF-8 text: "
            f"{error}"
        ) from None
    return parse_manifest(text, channel.name)


def _upload(s3: Any, path: Path, uri: str) -> None:
    bucket, key = split_s3_uri(uri)
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType="application/x-gzip")
    except ClientError as error:
        raise ClientInputError(f"the model artifact cannot be written to {uri}: {error}") from None
