"""Labeled images, training requests and one trained tiny detector on a running stack, shared by the
training-job and transform-job tests.

Images are synthetic Open Images (birds in front, seeded): their reference boxes become an augmented
manifest in Ground Truth's output format (label attribute ``category``), as a labeling job writes it. The
tiny detector (mobilenet-v3 at 64 px, two epochs, 30 images) is trained once per test session and stack.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local_aws.config import LocalAwsConfig
from local_aws.synthetic_open_images import MIDS, GeneratedImage, classes_under, iter_images

BUCKET = "detector-jobs"
IMAGE_PREFIX = "images/"
ROLE_ARN = "arn:aws:iam::123456789012:role/LocalSageMaker"
TRAINING_IMAGE = "811284229777.dkr.ecr.us-east-1.amazonaws.com/object-detection:1"
ATTRIBUTE_NAMES = ["source-ref", "category"]
TINY_HYPERPARAMETERS = {
    "num_classes": "1",
    "num_training_samples": "30",
    "base_network": "mobilenet-v3",
    "use_pretrained_model": "0",
    "image_shape": "64",
    "epochs": "2",
    "mini_batch_size": "8",
}
TIMEOUT_S = 180
_BIRDS = frozenset(MIDS[name] for name in classes_under("Bird"))


@dataclass(frozen=True)
class LabeledData:
    train_manifest: str
    validation_manifest: str
    image_uris: tuple[str, ...]  # train images first, then validation images
    output_path: str


def manifest_line(uri: str, image: GeneratedImage) -> dict[str, Any]:
    """A Ground Truth output-manifest line with the image's reference bird boxes."""
    boxes = [box for box in image.reference.boxes if box.label in _BIRDS]
    width, height = image.width, image.height
    return {
        "source-ref": uri,
        "category": {
            "image_size": [{"width": width, "height": height, "depth": 3}],
            "annotations": [
                {
                    "class_id": 0,
                    "left": round(box.xmin * width),
                    "top": round(box.ymin * height),
                    "width": max(1, round((box.xmax - box.xmin) * width)),
                    "height": max(1, round((box.ymax - box.ymin) * height)),
                }
                for box in boxes
            ],
        },
        "category-metadata": {
            "objects": [{"confidence": 0.9} for _ in boxes],
            "class-map": {"0": "Bird"},
            "type": "groundtruth/object-detection",
            "human-annotated": "yes",
            "creation-date": "2026-01-01T00:00:00.000000",
            "job-name": "labeling-job/birds",
        },
    }


def ensure_bucket(config: LocalAwsConfig, bucket: str = BUCKET) -> Any:
    s3 = config.boto3_client("s3")
    if bucket not in {item["Name"] for item in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=bucket)
    return s3


_seeded: dict[str, LabeledData] = {}


def labeled_data(config: LocalAwsConfig, train: int = 30, validation: int = 10) -> LabeledData:
    """Images with one to five birds in S3 and their train and validation manifests (once per stack)."""
    key = f"{config.data_dir}/{train}/{validation}"
    if key in _seeded:
        return _seeded[key]
    s3 = ensure_bucket(config)
    lines, uris = [], []
    for image in iter_images(10 * (train + validation), seed=7, class_mix={"Bird": 1.0}):
        if not 1 <= sum(box.label in _BIRDS for box in image.reference.boxes) <= 5:
            continue
        key_name = f"{IMAGE_PREFIX}{image.image_id}.jpg"
        s3.put_object(Bucket=BUCKET, Key=key_name, Body=image.jpeg, ContentType="image/jpeg")
        uri = f"s3://{BUCKET}/{key_name}"
        uris.append(uri)
        lines.append(json.dumps(manifest_line(uri, image)))
        if len(lines) == train + validation:
            break
    assert len(lines) == train + validation, "too few synthetic images with birds"
    for name, chosen in (("train", lines[:train]), ("validation", lines[train:])):
        body = "".join(line + "\n" for line in chosen)
        s3.put_object(Bucket=BUCKET, Key=f"manifests/{name}.manifest", Body=body.encode())
    data = LabeledData(
        train_manifest=f"s3://{BUCKET}/manifests/train.manifest",
        validation_manifest=f"s3://{BUCKET}/manifests/validation.manifest",
        image_uris=tuple(uris),
        output_path=f"s3://{BUCKET}/training-output",
    )
    _seeded[key] = data
    return data


def channel(name: str, manifest_uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "AugmentedManifestFile",
                "S3Uri": manifest_uri,
                "S3DataDistributionType": "FullyReplicated",
                "AttributeNames": ATTRIBUTE_NAMES,
            }
        },
        "ContentType": "application/x-recordio",
        "RecordWrapperType": "RecordIO",
        "CompressionType": "None",
    }


def training_request(name: str, data: LabeledData, max_runtime_s: int = 600, **hyperparameters: str) -> dict:
    """The reference notebook's CreateTrainingJob, with the tiny hyperparameters (and ``hyperparameters``)."""
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": TRAINING_IMAGE, "TrainingInputMode": "Pipe"},
        "RoleArn": ROLE_ARN,
        "OutputDataConfig": {"S3OutputPath": data.output_path},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.p3.2xlarge", "VolumeSizeInGB": 50},
        "HyperParameters": {**TINY_HYPERPARAMETERS, **hyperparameters},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_s},
        "InputDataConfig": [
            channel("train", data.train_manifest),
            channel("validation", data.validation_manifest),
        ],
    }


def wait_for(
    describe: Callable[[], dict[str, Any]],
    done: Callable[[dict[str, Any]], bool],
    timeout_s: float = TIMEOUT_S,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        description = describe()
        if done(description):
            return description
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; the last description: {description}")
        time.sleep(0.25)


def wait_for_training(sagemaker: Any, name: str, *statuses: str) -> dict[str, Any]:
    ended = statuses or ("Completed", "Failed", "Stopped")
    return wait_for(
        lambda: sagemaker.describe_training_job(TrainingJobName=name),
        lambda description: description["TrainingJobStatus"] in ended,
    )


_trained: dict[str, dict[str, Any]] = {}


def trained_job(config: LocalAwsConfig) -> dict[str, Any]:
    """The DescribeTrainingJob of the tiny detector, trained once per stack and test session."""
    key = str(config.data_dir)
    if key not in _trained:
        sagemaker = config.boto3_client("sagemaker")
        sagemaker.create_training_job(**training_request("tiny-birds", labeled_data(config)))
        description = wait_for_training(sagemaker, "tiny-birds")
        assert description["TrainingJobStatus"] == "Completed", description.get("FailureReason")
        _trained[key] = description
    return _trained[key]


def log_messages(config: LocalAwsConfig, group: str, stream_prefix: str) -> tuple[str, list[str]]:
    """The one stream of a job (its name and messages, oldest first) in ``group``."""
    logs = config.boto3_client("logs")
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream_prefix)["logStreams"]
    assert len(streams) == 1, streams
    stream = streams[0]["logStreamName"]
    events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    return stream, [event["message"] for event in events]


def log_messages_so_far(config: LocalAwsConfig, group: str, stream_prefix: str) -> list[str]:
    """The job's messages, or none while its stream is not there yet."""
    logs = config.boto3_client("logs")
    try:
        streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream_prefix)[
            "logStreams"
        ]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return log_messages(config, group, stream_prefix)[1] if streams else []
