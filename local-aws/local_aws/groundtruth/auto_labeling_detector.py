"""The auto-labeling detector of a labeling job, trained and run through the SageMaker API of the stack.

Each iteration creates, with the job's RoleArn, as Ground Truth does in its own account:

- a training job of the built-in object-detection algorithm on the human labels (``training/<N>/``);
- a model of its ``model.tar.gz``, the job's ``FinalActiveLearningModelArn`` once it is the last one;
- batch transform jobs over the validation set (``activelearning/<N>/validation/``) and over the unlabeled
  objects (``inference/<N>/``), ManifestFile input, one object per request.

Hyperparameters (``HYPERPARAMETERS``; ``LocalAwsConfig.auto_labeling_hyperparameters`` overrides them): the
local stack's CPU network ``tiny-vgg`` (AWS trains on a GPU instance, ml.p3.2xlarge) with its measured recipe
(256-pixel images, Adam at 0.003, mini-batches of 8, from scratch: no pretrained weights exist offline), and
the epochs that make about ``TRAINING_SAMPLES`` images seen (``epochs_for``), so that an iteration trains in
minutes on a CPU whatever its training set. Images whose birds the detector misses get low confidence and
go to humans.

Names derive from the labeling job's name: ``<job>-al-train-<N>``, ``-al-model-<N>``, ``-al-valid-<N>``,
``-al-infer-<N>`` (the job's name shortened, with a hash, where a name would pass SageMaker's 63
characters). A job that runs again after a restart stops what its interrupted run left running (before the
output tree is cleared, so that nothing of it lands there) and names its own resources with the next free
run number, ``-r<k>``: SageMaker names cannot be reused, and the earlier models point to files that the
new run rewrites.
"""

from __future__ import annotations

import hashlib
import json
import math
import posixpath
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from local_aws.config import LocalAwsConfig
from local_aws.groundtruth.active_learning import Detection
from local_aws.groundtruth.auto_labeling import JobStopped, TrainedModel
from local_aws.groundtruth.errors import LabelingJobFailed
from local_aws.groundtruth.output_tree import OutputTree
from local_aws.groundtruth.request_checks import LabelingJobSpec
from local_aws.s3_objects import split_s3_uri, write_json, write_lines

MAX_NAME_LENGTH = 63
POLL_INTERVAL_S = 1.0
# The object-detection algorithm's registry account per region (sagemaker-core's image_uri_config,
# object-detection version 1); the stack runs this image of any region.
IMAGE_ACCOUNTS = {
    "ap-northeast-1": "501404015308",
    "ap-northeast-2": "306986355934",
    "ap-south-1": "991648021394",
    "ap-southeast-1": "475088953585",
    "ap-southeast-2": "544295431143",
    "ca-central-1": "469771592824",
    "eu-central-1": "813361260812",
    "eu-west-1": "685385470294",
    "eu-west-2": "644912444149",
    "us-east-1": "811284229777",
    "us-east-2": "825641698319",
    "us-west-2": "433757028032",
}
HYPERPARAMETERS = {
    "base_network": "tiny-vgg",
    "use_pretrained_model": "0",
    "image_shape": "256",
    "mini_batch_size": "8",
    "optimizer": "adam",
    "learning_rate": "0.003",
}
# Epochs: about this many images seen per training (32 epochs of 800 images, the CPU network's measured
# recipe), within these bounds: small sets overfit past about 30 epochs, large ones need fewer.
TRAINING_SAMPLES = 25600
MIN_EPOCHS, MAX_EPOCHS = 30, 60
MAX_TRAINING_RUNTIME_S = 3600
TRAINING_INSTANCE = "ml.p3.2xlarge"  # AWS's instance for object-detection auto-labeling training
TRANSFORM_INSTANCE = "ml.c5.4xlarge"
MAX_CONCURRENT_TRANSFORMS = 4
# How a transform job's FailureReason says that some of its objects, not the job, failed.
OBJECT_FAILURES = "input objects could not be transformed"
_ACTIVE = ("InProgress", "Stopping")
_RUN_SUFFIX = re.compile(r"-r(?P<run>[0-9]+)$")
# What follows the stem in the names ``resource_name`` gives.
_NAME_TAIL = r"(train|model|valid|infer)[0-9]*-[0-9]+(-r[0-9]+)?"


def object_detection_image(region: str) -> str:
    account = IMAGE_ACCOUNTS.get(region, IMAGE_ACCOUNTS["us-east-1"])
    return f"{account}.dkr.ecr.{region}.amazonaws.com/object-detection:1"


def epochs_for(training_images: int) -> int:
    return min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(TRAINING_SAMPLES / max(training_images, 1))))


def name_stem(job_name: str) -> str:
    """The start of every resource name of the job: ``<job>-al-``, the job's name shortened with a hash of
    it where the longest name (``-al-infer<bucket>-<N>-r<k>``, up to 99 buckets, N and k up to 4 digits)
    would not fit."""
    room = MAX_NAME_LENGTH - len("-al-infer99-9999-r9999")
    if len(job_name) <= room:
        return f"{job_name}-al-"
    digest = hashlib.sha256(job_name.encode()).hexdigest()[:8]
    return f"{job_name[: room - len(digest) - 1]}-{digest}-al-"


def resource_name(job_name: str, kind: str, iteration: int, run: int) -> str:
    """The name of one of the job's training jobs (``train``), models, or transform jobs."""
    return f"{name_stem(job_name)}{kind}-{iteration}" + (f"-r{run}" if run > 1 else "")


def is_resource_of(job_name: str, name: str) -> bool:
    """Whether ``name`` is one ``resource_name`` gives for ``job_name`` (names ignore case)."""
    pattern = re.escape(name_stem(job_name)) + _NAME_TAIL
    return re.fullmatch(pattern, name, re.IGNORECASE) is not None


def run_of(name: str) -> int:
    match = _RUN_SUFFIX.search(name)
    return int(match["run"]) if match else 1


class SageMakerDetector:
    """The ``auto_labeling.Detector`` of a labeling job, through the service's SageMaker API."""

    def __init__(
        self,
        spec: LabelingJobSpec,
        job_name: str,
        config: LocalAwsConfig,
        log: Callable[[str], None],
        should_stop: Callable[[], bool],
    ) -> None:
        if spec.auto_labeling is None:
            raise ValueError("the labeling job does not ask for automated data labeling")
        self.spec = spec
        self.job_name = job_name
        self.role_arn = spec.auto_labeling.role_arn
        self.image = object_detection_image(config.region)
        self.overrides = dict(config.auto_labeling_hyperparameters)
        self.tree = OutputTree(spec.output_path, job_name)
        self.log = log
        self.s3 = config.boto3_client("s3")
        self.sagemaker = _sagemaker_client(config)
        if spec.auto_labeling.resource_config_given:
            log(
                "LabelingJobAlgorithmsConfig.LabelingJobResourceConfig is ignored: the local stack's "
                "training and transform jobs run on this machine, without volumes to encrypt or VPCs"
            )
        self.run = self._retire_earlier_runs(should_stop)

    def train(
        self,
        iteration: int,
        num_classes: int,
        train_lines: Sequence[str],
        validation_lines: Sequence[str],
        should_stop: Callable[[], bool],
    ) -> TrainedModel:
        prefix = self.tree.training_prefix(iteration)
        channels = []
        for channel, lines in (("train", train_lines), ("validation", validation_lines)):
            key = f"{prefix}input/{channel}.manifest"
            write_lines(self.s3, self.tree.bucket, key, list(lines))
            channels.append(self._channel(channel, self.tree.uri(key)))
        name = resource_name(self.job_name, "train", iteration, self.run)
        self.sagemaker.create_training_job(
            TrainingJobName=name,
            RoleArn=self.role_arn,
            AlgorithmSpecification={"TrainingImage": self.image, "TrainingInputMode": "Pipe"},
            HyperParameters={
                **HYPERPARAMETERS,
                "epochs": str(epochs_for(len(train_lines))),
                **self.overrides,
                "num_classes": str(num_classes),
                "num_training_samples": str(len(train_lines)),
            },
            InputDataConfig=channels,
            OutputDataConfig={"S3OutputPath": self.tree.uri(f"{prefix}output/")},
            ResourceConfig={"InstanceType": TRAINING_INSTANCE, "InstanceCount": 1, "VolumeSizeInGB": 50},
            StoppingCondition={"MaxRuntimeInSeconds": MAX_TRAINING_RUNTIME_S},
        )
        self.log(f"Iteration {iteration}: training job {name} trains a detector on {len(train_lines)} images")
        status = self._wait_or_stop(
            lambda: self._training_status(name),
            lambda: self.sagemaker.stop_training_job(TrainingJobName=name),
            should_stop,
        )
        described = self.sagemaker.describe_training_job(TrainingJobName=name)
        if status != "Completed":
            raise LabelingJobFailed(
                f"Automated data labeling failed: its training job {name} is {status}: "
                f"{described.get('FailureReason', 'no reason given')}"
            )
        model_data = described["ModelArtifacts"]["S3ModelArtifacts"]
        model_name = resource_name(self.job_name, "model", iteration, self.run)
        model_arn = self.sagemaker.create_model(
            ModelName=model_name,
            PrimaryContainer={"Image": self.image, "ModelDataUrl": model_data},
            ExecutionRoleArn=self.role_arn,
        )["ModelArn"]
        return TrainedModel(name, model_data, model_name, model_arn)

    def predict(
        self,
        iteration: int,
        model: TrainedModel,
        purpose: str,
        source_refs: Sequence[str],
        should_stop: Callable[[], bool],
    ) -> list[list[Detection] | None]:
        """A batch transform job per bucket of the objects; an object without output gets None."""
        if purpose == "validation":
            prefix, kind = self.tree.validation_prefix(iteration), "valid"
        else:
            prefix, kind = self.tree.inference_prefix(iteration), "infer"
        by_bucket: dict[str, list[int]] = {}
        for index, ref in enumerate(source_refs):
            by_bucket.setdefault(split_s3_uri(ref)[0], []).append(index)
        found: list[list[Detection] | None] = [None] * len(source_refs)
        for number, indices in enumerate(by_bucket.values(), start=1):
            group = f"{prefix}{number}/" if len(by_bucket) > 1 else prefix
            name = resource_name(self.job_name, kind, iteration, self.run)
            if len(by_bucket) > 1:
                name = resource_name(self.job_name, f"{kind}{number}", iteration, self.run)
            outputs = self._transform(name, model, group, [source_refs[i] for i in indices], should_stop)
            for index, output in zip(indices, outputs, strict=True):
                found[index] = output
        return found

    def _transform(
        self,
        name: str,
        model: TrainedModel,
        prefix: str,
        source_refs: Sequence[str],
        should_stop: Callable[[], bool],
    ) -> list[list[Detection] | None]:
        """One transform job over ``source_refs`` (one bucket's); its input and output under ``prefix``."""
        bucket = split_s3_uri(source_refs[0])[0]
        keys = [split_s3_uri(ref)[1] for ref in source_refs]
        common = posixpath.commonprefix(keys).rpartition("/")[0]
        common = f"{common}/" if common else ""
        relatives = [key[len(common) :] for key in keys]
        manifest_key = f"{prefix}input/transform-input.manifest"
        write_json(
            self.s3, self.tree.bucket, manifest_key, [{"prefix": f"s3://{bucket}/{common}"}, *relatives]
        )
        output_prefix = f"{prefix}output/"
        self.sagemaker.create_transform_job(
            TransformJobName=name,
            ModelName=model.model_name,
            MaxConcurrentTransforms=MAX_CONCURRENT_TRANSFORMS,
            MaxPayloadInMB=6,
            BatchStrategy="SingleRecord",
            TransformInput={
                "DataSource": {
                    "S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": self.tree.uri(manifest_key)}
                },
                "ContentType": "application/x-image",
                "SplitType": "None",
            },
            TransformOutput={"S3OutputPath": self.tree.uri(output_prefix), "Accept": "application/json"},
            TransformResources={"InstanceType": TRANSFORM_INSTANCE, "InstanceCount": 1},
        )
        status = self._wait_or_stop(
            lambda: self._transform_status(name),
            lambda: self.sagemaker.stop_transform_job(TransformJobName=name),
            should_stop,
        )
        outputs = [self._output(f"{output_prefix}{relative}.out") for relative in relatives]
        if status != "Completed":
            reason = self.sagemaker.describe_transform_job(TransformJobName=name).get("FailureReason") or ""
            # Objects that could not be transformed (unreadable, not images) fail the job but not the
            # others: they stay unlabeled and go to humans, where they fail with their own reason.
            if status != "Failed" or OBJECT_FAILURES not in reason:
                raise LabelingJobFailed(
                    f"Automated data labeling failed: its transform job {name} is {status}: {reason}"
                )
            missing = sum(output is None for output in outputs)
            self.log(
                f"Transform job {name}: {missing} of {len(outputs)} objects have no prediction: {reason}"
            )
        return outputs

    def _output(self, key: str) -> list[Detection] | None:
        """The detections of one transform output, None if there is none."""
        try:
            body = self.s3.get_object(Bucket=self.tree.bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return [
            Detection(int(class_id), float(score), *map(float, corners))
            for class_id, score, *corners in json.loads(body)["prediction"]
        ]

    def _channel(self, channel: str, uri: str) -> dict[str, Any]:
        return {
            "ChannelName": channel,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "AugmentedManifestFile",
                    "S3Uri": uri,
                    "S3DataDistributionType": "FullyReplicated",
                    "AttributeNames": ["source-ref", self.spec.label_attribute],
                }
            },
            "ContentType": "application/x-recordio",
            "RecordWrapperType": "RecordIO",
            "InputMode": "Pipe",
        }

    def _names(self) -> Iterator[tuple[str, str]]:
        """(kind, name) of every training job, transform job and model of this labeling job so far."""
        for operation, key, name_key, kind in (
            ("list_training_jobs", "TrainingJobSummaries", "TrainingJobName", "training"),
            ("list_transform_jobs", "TransformJobSummaries", "TransformJobName", "transform"),
            ("list_models", "Models", "ModelName", "model"),
        ):
            paginator = self.sagemaker.get_paginator(operation)
            for page in paginator.paginate(NameContains=name_stem(self.job_name)):
                for item in page[key]:
                    if is_resource_of(self.job_name, item[name_key]):
                        yield kind, item[name_key]

    def _retire_earlier_runs(self, should_stop: Callable[[], bool]) -> int:
        """Stop the jobs an interrupted run of this labeling job left running; return this run's number."""
        names = list(self._names())
        for kind, name in names:
            if kind == "training" and self._training_status(name) in _ACTIVE:
                self.log(f"Stopping training job {name}, left running by an interrupted run of this job")
                self._wait_or_stop(
                    lambda n=name: self._training_status(n),
                    lambda n=name: self.sagemaker.stop_training_job(TrainingJobName=n),
                    should_stop,
                    stop_first=True,
                )
            if kind == "transform" and self._transform_status(name) in _ACTIVE:
                self.log(f"Stopping transform job {name}, left running by an interrupted run of this job")
                self._wait_or_stop(
                    lambda n=name: self._transform_status(n),
                    lambda n=name: self.sagemaker.stop_transform_job(TransformJobName=n),
                    should_stop,
                    stop_first=True,
                )
        return max((run_of(name) for _, name in names), default=0) + 1

    def _training_status(self, name: str) -> str:
        return self.sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]

    def _transform_status(self, name: str) -> str:
        return self.sagemaker.describe_transform_job(TransformJobName=name)["TransformJobStatus"]

    def _wait_or_stop(
        self,
        status: Callable[[], str],
        stop: Callable[[], Any],
        should_stop: Callable[[], bool],
        *,
        stop_first: bool = False,
    ) -> str:
        """Wait for a job to end and return its status; stop it first with ``stop_first``. If the labeling
        job is asked to stop meanwhile, stop the job and raise JobStopped."""
        if stop_first:
            _stop(stop)
        while True:
            current = status()
            if current not in _ACTIVE:
                return current
            if should_stop():
                _stop(stop)
                raise JobStopped
            time.sleep(POLL_INTERVAL_S)


def _sagemaker_client(config: LocalAwsConfig) -> Any:
    """A client of the stack's SageMaker API that retries the throttling and connection errors it may meet
    while jobs start."""
    import boto3

    return boto3.client(
        "sagemaker",
        endpoint_url=config.sagemaker_endpoint,
        region_name=config.region,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        config=Config(retries={"max_attempts": 5, "mode": "standard"}),
    )


def _stop(stop: Callable[[], Any]) -> None:
    """Ask a job to stop; one that has ended meanwhile answers a ValidationException, which is fine."""
    try:
        stop()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ValidationException":
            raise
