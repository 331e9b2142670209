"""What the local stack serves of a CreateTrainingJob request, checked when the job is created, and the
parts of it a training worker reads.

The stack trains SageMaker's built-in object-detection algorithm (its image of any region) on one
instance, from AugmentedManifestFile channels in S3. Anything else is refused at once with a
ValidationException that names the field, rather than failing later. What the algorithm itself checks
(its hyperparameters, which channels it needs, the manifests' content) fails the job as a ClientError, as
on AWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.algorithm_images import check_object_detection_image

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
DEFAULT_MAX_RUNTIME_S = 86400  # SageMaker's default StoppingCondition: one day
MANIFEST_DATA_TYPE = "AugmentedManifestFile"


@dataclass(frozen=True)
class ManifestChannel:
    name: str
    manifest_uri: str
    attribute_names: tuple[str, ...]


@dataclass(frozen=True)
class TrainingJobSpec:
    image: str
    hyperparameters: dict[str, str]
    channels: dict[str, ManifestChannel]
    output_path: str
    max_runtime_s: int


def model_artifact_uri(output_path: str, job_name: str) -> str:
    """Where SageMaker writes a training job's model: ``<S3OutputPath>/<job>/output/model.tar.gz``."""
    return f"{output_path.rstrip('/')}/{job_name}/output/model.tar.gz"


def stopping_condition(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request's StoppingCondition with SageMaker's default MaxRuntimeInSeconds filled in."""
    return {"MaxRuntimeInSeconds": DEFAULT_MAX_RUNTIME_S, **request.get("StoppingCondition", {})}


def training_job_spec(request: Mapping[str, Any]) -> TrainingJobSpec:
    """The served parts of a validated CreateTrainingJob request; ValueError for anything the stack does
    not serve."""
    algorithm = request.get("AlgorithmSpecification", {})
    image = algorithm.get("TrainingImage")
    if image is None:
        raise ValueError(
            "AlgorithmSpecification.TrainingImage is required: the local stack runs SageMaker's built-in "
            "object-detection algorithm, named by its image; AlgorithmName (an algorithm resource) is not "
            "served"
        )
    check_object_detection_image(image, "AlgorithmSpecification.TrainingImage")
    instances = request.get("ResourceConfig", {}).get("InstanceCount", 1)
    if instances != 1:
        raise ValueError(
            f"ResourceConfig.InstanceCount {instances} is not served: the local stack trains on one instance"
        )
    output_path = request["OutputDataConfig"]["S3OutputPath"]
    if not output_path.startswith("s3://"):
        raise ValueError(f"OutputDataConfig.S3OutputPath {output_path!r} must be an s3:// URI")
    channels: dict[str, ManifestChannel] = {}
    for channel in request.get("InputDataConfig", []):
        parsed = _manifest_channel(channel)
        if parsed.name in channels:
            raise ValueError(
                f"InputDataConfig names channel {parsed.name!r} twice; channel names must be unique"
            )
        channels[parsed.name] = parsed
    return TrainingJobSpec(
        image=image,
        hyperparameters=dict(request.get("HyperParameters", {})),
        channels=channels,
        output_path=output_path,
        max_runtime_s=stopping_condition(request)["MaxRuntimeInSeconds"],
    )


def _manifest_channel(channel: Mapping[str, Any]) -> ManifestChannel:
    name = channel["ChannelName"]
    where = f"InputDataConfig channel {name!r}"
    source = channel["DataSource"].get("S3DataSource")
    if source is None:
        raise ValueError(f"{where}: only an S3DataSource is served; the local stack has no file systems")
    data_type = source["S3DataType"]
    if data_type != MANIFEST_DATA_TYPE:
        raise ValueError(
            f"{where}: S3DataType {data_type!r} is not served: the local stack reads the object-detection "
            f"algorithm's channels as {MANIFEST_DATA_TYPE} (AttributeNames ['source-ref', "
            "'<label attribute>'])"
        )
    uri = source["S3Uri"]
    if not uri.startswith("s3://"):
        raise ValueError(f"{where}: S3Uri {uri!r} must be an s3:// URI of the augmented manifest")
    attribute_names = source.get("AttributeNames")
    if not attribute_names:
        raise ValueError(f"{where}: AttributeNames is required for S3DataType {MANIFEST_DATA_TYPE}")
    compression = channel.get("CompressionType", "None")
    if compression != "None":
        raise ValueError(
            f"{where}: CompressionType {compression!r} is not served; manifests are read as text"
        )
    return ManifestChannel(name, uri, tuple(attribute_names))


def check_training_job_request(request: dict[str, Any], config: LocalAwsConfig) -> None:
    """ValueError for a CreateTrainingJob request the stack cannot serve (the service's create check)."""
    training_job_spec(request)
