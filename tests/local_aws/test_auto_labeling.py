"""Automated data labeling on a running stack: a small job whose detector is trained by a training job of
the stack, predicts through batch transform jobs and labels part of the images.

The stack is this module's own, started with ``LOCAL_AWS_AUTO_LABELING_MIN_OBJECTS`` lowered to 50 and
small, quick training jobs (``LOCAL_AWS_AUTO_LABELING_HYPERPARAMETERS``: 96-pixel images, 80 epochs). Its
images are easy on purpose (one large, plain bird on a plain background, recorded in the stack's reference
index so that the simulated crowd labels them), so that a detector trained from scratch on 30 of them
within a minute is good enough to label most of the rest.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError
from PIL import Image, ImageDraw

from ground_truth_pipeline.instructions import instructions_template
from ground_truth_pipeline.labeling_output import (
    list_auto_labeling_training_jobs,
    read_auto_label_counts,
    read_output_manifest,
)
from ground_truth_pipeline.object_store import S3ObjectStore
from local_aws.config import LocalAwsConfig
from local_aws.groundtruth.auto_labeling_detector import SageMakerDetector
from local_aws.groundtruth.job_log import LOG_GROUP
from local_aws.groundtruth.request_checks import labeling_algorithm_arn, labeling_job_spec
from local_aws.reference_index import ReferenceBox, ReferenceImage, ReferenceIndex
from tests.local_aws.conftest import START_TIMEOUT_S, LocalStack, stack_config
from tests.local_aws.detector_jobs import log_messages, wait_for
from tests.local_aws.labeling_requests import auto_labeling_request

REGION = "us-east-1"
BIRD = "/m/015p6"
BUCKET = "auto-labeling"
MIN_OBJECTS = 50
HYPERPARAMETERS = (("epochs", "80"), ("image_shape", "96"))
IMAGES = 150
WORKERS = 3
MAX_CONCURRENT = 150  # one auto-labeling iteration labels every object left
JOB = "auto-birds"
SMALL_JOB = "auto-birds-too-few"
JOB_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    config = replace(
        stack_config(tmp_path_factory.mktemp("auto-labeling")),
        auto_labeling_min_objects=MIN_OBJECTS,
        auto_labeling_hyperparameters=HYPERPARAMETERS,
    )
    stack = LocalStack(config)
    # One torch thread per training job: two, on a machine whose two cores are busy, train ten times slower.
    started = stack.cli("up", "--timeout", str(START_TIMEOUT_S), LOCAL_AWS_TORCH_THREADS="1")
    assert started.returncode == 0, f"`up` failed:\n{started.stdout}\n{started.stderr}"
    try:
        yield stack
    finally:
        stack.down(timeout_s=2)


def _scene(rng: np.random.Generator, index: int) -> tuple[bytes, ReferenceImage]:
    """A large bird (a red body, a blue head) on a plain background."""
    width, height = int(rng.integers(180, 240)), int(rng.integers(140, 180))
    image = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(70, 190, 3)))
    draw = ImageDraw.Draw(image)
    box_w, box_h = rng.uniform(0.5, 0.9) * width, rng.uniform(0.4, 0.8) * height
    x0, y0 = rng.uniform(0, width - box_w), rng.uniform(0, height - box_h)
    draw.ellipse((x0, y0, x0 + box_w, y0 + box_h), fill=(200, 40, 30))
    draw.ellipse((x0 + 0.6 * box_w, y0, x0 + box_w, y0 + 0.4 * box_h), fill=(30, 30, 200))
    box = ReferenceBox(BIRD, x0 / width, (x0 + box_w) / width, y0 / height, (y0 + box_h) / height)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue(), ReferenceImage(f"{index:016x}", width, height, (box,))


@dataclass(frozen=True)
class Inputs:
    config: LocalAwsConfig

    def request(self, name: str, manifest: str, **algorithms: Any) -> dict[str, Any]:
        return auto_labeling_request(
            name, BUCKET, manifest, workers=WORKERS, max_concurrent=MAX_CONCURRENT, **algorithms
        )


@pytest.fixture(scope="module")
def inputs(stack: LocalStack) -> Inputs:
    config = stack.config
    s3 = config.boto3_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    rng = np.random.default_rng(11)
    seeded = [_scene(rng, i) for i in range(IMAGES)]
    index = ReferenceIndex(config.reference_index_db)
    index.add_class_names({BIRD: ("Bird", "Animal")})
    index.add_many(seeded)
    lines = []
    for number, (data, _) in enumerate(seeded):
        key = f"images/{number:03d}.jpg"
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        lines.append(json.dumps({"source-ref": f"s3://{BUCKET}/{key}"}) + "\n")
    s3.put_object(Bucket=BUCKET, Key="input.manifest", Body="".join(lines).encode())
    s3.put_object(Bucket=BUCKET, Key="small.manifest", Body="".join(lines[: MIN_OBJECTS - 1]).encode())
    s3.put_object(Bucket=BUCKET, Key="class_labels.json", Body=json.dumps({"labels": [{"label": "Bird"}]}))
    s3.put_object(Bucket=BUCKET, Key="instructions.template", Body=instructions_template("Bird", None))
    return Inputs(config)


def _finished(config: LocalAwsConfig, name: str) -> dict[str, Any]:
    sagemaker = config.boto3_client("sagemaker")
    return wait_for(
        lambda: sagemaker.describe_labeling_job(LabelingJobName=name),
        lambda d: d["LabelingJobStatus"] in ("Completed", "Failed", "Stopped"),
        timeout_s=JOB_TIMEOUT_S,
    )


@pytest.fixture(scope="module")
def auto_job(inputs: Inputs) -> dict[str, Any]:
    """The job, run once for the module's tests: its DescribeLabelingJob once it has ended."""
    inputs.config.boto3_client("sagemaker").create_labeling_job(**inputs.request(JOB, "input.manifest"))
    return _finished(inputs.config, JOB)


def test_job_labels_part_of_the_images_by_machine(auto_job, inputs):
    assert auto_job["LabelingJobStatus"] == "Completed", auto_job.get("FailureReason")
    counters = auto_job["LabelCounters"]
    assert counters["MachineLabeled"] > 0 and counters["HumanLabeled"] > 0
    assert counters["TotalLabeled"] == IMAGES == counters["MachineLabeled"] + counters["HumanLabeled"]
    store = S3ObjectStore(inputs.config.boto3_client("s3"), BUCKET)
    manifest = read_output_manifest(store, f"output/{JOB}/", "category")
    machine = [image for image in manifest.images if not image.human_annotated]
    assert len(machine) == counters["MachineLabeled"]
    auto = read_auto_label_counts(store, f"output/{JOB}/", "category")
    assert sum(count.images for count in auto.values()) == counters["MachineLabeled"]
    cutoff = json.loads(store.read_bytes(f"output/{JOB}/activelearning/4/validation/threshold.json"))[
        "box-score-cutoff"
    ]
    for line in (json.loads(line) for line in manifest.raw_lines):
        if line["category-metadata"]["human-annotated"] == "no":
            scores = [box["confidence"] for box in line["category-metadata"]["objects"]]
            assert len(scores) == len(line["category"]["annotations"])
            # The detector's scores, two decimals, of the boxes at or above the cutoff.
            assert all(round(cutoff, 2) <= score <= 1 for score in scores)


def test_training_jobs_are_listed_with_their_logs_and_the_final_model_is_a_model(auto_job, inputs):
    config = inputs.config
    sagemaker = config.boto3_client("sagemaker")
    summaries = sagemaker.list_training_jobs(NameContains=f"{JOB}-al-train")["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in summaries] == [f"{JOB}-al-train-4"]
    assert summaries[0]["TrainingJobStatus"] == "Completed"
    _, messages = log_messages(config, "/aws/sagemaker/TrainingJobs", f"{JOB}-al-train-4")
    assert any("Final configuration" in m and "u'num_training_samples'" in m for m in messages)
    assert any("validation mAP <score>=(" in m for m in messages)
    model_arn = auto_job["LabelingJobOutput"]["FinalActiveLearningModelArn"]
    assert model_arn == f"arn:aws:sagemaker:{REGION}:123456789012:model/{JOB}-al-model-4"
    model = sagemaker.describe_model(ModelName=f"{JOB}-al-model-4")
    training = sagemaker.describe_training_job(TrainingJobName=f"{JOB}-al-train-4")
    assert model["PrimaryContainer"]["ModelDataUrl"] == training["ModelArtifacts"]["S3ModelArtifacts"]
    transforms = sagemaker.list_transform_jobs(NameContains=f"{JOB}-al-")["TransformJobSummaries"]
    assert {t["TransformJobName"] for t in transforms} == {f"{JOB}-al-valid-4", f"{JOB}-al-infer-4"}
    assert all(t["TransformJobStatus"] == "Completed" for t in transforms)


def test_output_tree_has_the_active_learning_training_and_inference_folders(auto_job, inputs):
    store = S3ObjectStore(inputs.config.boto3_client("s3"), BUCKET)
    prefix = f"output/{JOB}/"
    keys = set(store.list_keys(prefix))
    trained = list_auto_labeling_training_jobs(store, prefix)
    assert [(job.iteration, job.job_name) for job in trained] == [(4, f"{JOB}-al-train-4")]
    for key in (
        "training/4/input/train.manifest",
        "training/4/input/validation.manifest",
        f"training/4/output/{JOB}-al-train-4/output/model.tar.gz",
        "activelearning/4/validation/input/transform-input.manifest",
        "activelearning/4/validation/threshold.json",
        "activelearning/4/auto-annotation/auto_annotator_output.txt",
        "inference/4/input/transform-input.manifest",
        "manifests/intermediate/4/output.manifest",
    ):
        assert prefix + key in keys
    assert any(k.startswith(f"{prefix}inference/4/output/") and k.endswith(".jpg.out") for k in keys)
    threshold = json.loads(store.read_bytes(f"{prefix}activelearning/4/validation/threshold.json"))
    assert threshold["expected-mean-iou"] >= 0.6
    _, messages = log_messages(inputs.config, LOG_GROUP, JOB)
    assert any("box score cutoff" in m and "labels with boxes from confidence" in m for m in messages)


def test_a_dataset_under_the_minimum_is_labeled_by_humans_and_the_log_says_why(inputs):
    config = inputs.config
    config.boto3_client("sagemaker").create_labeling_job(**inputs.request(SMALL_JOB, "small.manifest"))
    description = _finished(config, SMALL_JOB)
    assert description["LabelingJobStatus"] == "Completed"
    assert description["LabelCounters"]["HumanLabeled"] == MIN_OBJECTS - 1
    assert description["LabelCounters"]["MachineLabeled"] == 0
    assert description["LabelingJobOutput"].get("FinalActiveLearningModelArn") is None
    _, messages = log_messages(config, LOG_GROUP, SMALL_JOB)
    assert any(f"fewer than the {MIN_OBJECTS}" in m and "1,250" in m for m in messages)


def test_a_rerun_stops_what_an_interrupted_run_left_and_names_its_jobs_anew(inputs, auto_job):
    config = inputs.config
    name = "auto-birds-rerun"
    sagemaker = config.boto3_client("sagemaker")
    training = sagemaker.describe_training_job(TrainingJobName=f"{JOB}-al-train-4")
    left = {
        key: training[key]
        for key in ("AlgorithmSpecification", "RoleArn", "InputDataConfig", "ResourceConfig")
    }
    # A long training job by the name an earlier run of the job would have given it.
    sagemaker.create_training_job(
        TrainingJobName=f"{name}-al-train-4",
        HyperParameters={**training["HyperParameters"], "epochs": "500"},
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/rerun-leftovers/"},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
        **left,
    )
    logged: list[str] = []
    spec = labeling_job_spec(inputs.request(name, "input.manifest"), config)
    detector = SageMakerDetector(spec, name, config, logged.append, lambda: False)
    assert detector.run == 2
    status = sagemaker.describe_training_job(TrainingJobName=f"{name}-al-train-4")["TrainingJobStatus"]
    assert status == "Stopped"
    assert any(f"Stopping training job {name}-al-train-4" in message for message in logged)


@pytest.mark.parametrize(
    ("algorithms", "message"),
    [
        (
            {"InitialActiveLearningModelArn": f"arn:aws:sagemaker:{REGION}:123456789012:model/earlier"},
            "InitialActiveLearningModelArn is not supported",
        ),
        (
            {
                "LabelingJobAlgorithmSpecificationArn": labeling_algorithm_arn(REGION).replace(
                    "object-detection", "image-classification"
                )
            },
            "names the image-classification labeling algorithm",
        ),
    ],
)
def test_an_unservable_algorithm_config_is_a_validation_exception(inputs, algorithms, message):
    sagemaker = inputs.config.boto3_client("sagemaker")
    with pytest.raises(ClientError) as raised:
        sagemaker.create_labeling_job(**inputs.request("auto-birds-refused", "input.manifest", **algorithms))
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert message in raised.value.response["Error"]["Message"]


def test_resource_config_is_ignored_with_a_note(inputs):
    spec = labeling_job_spec(
        inputs.request(
            "auto-birds-resources", "input.manifest", LabelingJobResourceConfig={"VolumeKmsKeyId": "key"}
        ),
        inputs.config,
    )
    logged: list[str] = []
    SageMakerDetector(spec, "auto-birds-resources", inputs.config, logged.append, lambda: False)
    assert any("LabelingJobResourceConfig is ignored" in message for message in logged)
