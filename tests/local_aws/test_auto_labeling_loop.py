"""The automated-labeling loop (``AutoLabelingLoop``) over a real labeling run, against an S3 served by
moto, with a detector stand-in at the loop's boundary (train: labeled lines in, a model out; predict:
objects in, boxes with scores out). The stand-in "predicts" from the reference boxes: exact boxes with a
high score on images with at most two birds, and wrong boxes with an undecided score on the others, so
that the validation set tells exactly which images the machine may label. The output tree is read back
with the pipeline's own readers.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ground_truth_pipeline.instructions import instructions_template
from ground_truth_pipeline.labeling_output import (
    read_auto_label_counts,
    read_consolidation_counts,
    read_output_manifest,
)
from ground_truth_pipeline.object_store import S3ObjectStore
from local_aws.config import LocalAwsConfig
from local_aws.groundtruth import active_learning as al
from local_aws.groundtruth.active_learning import Detection
from local_aws.groundtruth.auto_labeling import AutoLabelingLoop, JobStopped, TrainedModel
from local_aws.groundtruth.errors import LabelingJobFailed
from local_aws.groundtruth.job import _LabelingRun
from local_aws.groundtruth.request_checks import labeling_job_spec
from local_aws.reference_index import ReferenceBox, ReferenceImage, ReferenceIndex
from local_aws.s3_objects import split_s3_uri
from tests.local_aws.labeling_requests import auto_labeling_request

REGION = "us-east-1"
BIRD = "/m/015p6"
IMAGES = 60
WORKERS = 3
MAX_CONCURRENT = 12
JOB = "loop-birds"
EASY_SCORE, UNSURE_SCORE = 0.95, 0.55


@pytest.fixture
def config(tmp_path, moto_s3_port) -> LocalAwsConfig:
    return LocalAwsConfig(data_dir=tmp_path / "local-aws", s3_port=moto_s3_port, region=REGION)


def _scene(rng: np.random.Generator, index: int) -> tuple[bytes, ReferenceImage]:
    """A JPEG with 1 to 4 birds (ellipses side by side) and its reference boxes."""
    width, height = int(rng.integers(300, 400)), int(rng.integers(240, 300))
    image = Image.new("RGB", (width, height), (200, 220, 150 + index))
    draw = ImageDraw.Draw(image)
    birds = int(rng.integers(1, 5))
    column = width / birds
    boxes = []
    for slot in range(birds):
        box_w, box_h = rng.uniform(0.5, 0.9) * column, rng.uniform(0.3, 0.6) * height
        x0, y0 = slot * column + rng.uniform(0, column - box_w), rng.uniform(0, height - box_h)
        draw.ellipse((x0, y0, x0 + box_w, y0 + box_h), fill=(150, 60, 20))
        boxes.append(ReferenceBox(BIRD, x0 / width, (x0 + box_w) / width, y0 / height, (y0 + box_h) / height))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue(), ReferenceImage(f"{index:016x}", width, height, tuple(boxes))


@dataclass
class Dataset:
    bucket: str
    references: list[ReferenceImage | None]  # by line; None for an object that is not an image

    def request(self) -> dict[str, Any]:
        return auto_labeling_request(
            JOB, self.bucket, "input.manifest", workers=WORKERS, max_concurrent=MAX_CONCURRENT
        )


def _dataset(config: LocalAwsConfig, corrupt: Sequence[int] = ()) -> Dataset:
    s3 = config.boto3_client("s3")
    bucket = f"al-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    index = ReferenceIndex(config.reference_index_db)
    index.add_class_names({BIRD: ("Bird", "Animal")})
    rng = np.random.default_rng(3)
    seeded = [_scene(rng, i) for i in range(IMAGES)]
    index.add_many(seeded)
    references: list[ReferenceImage | None] = []
    lines = []
    for line, (data, reference) in enumerate(seeded):
        if line in corrupt:
            data, reference = b"not an image", None
        key = f"images/{line:03d}.jpg"
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        references.append(reference)
        lines.append(json.dumps({"source-ref": f"s3://{bucket}/{key}"}))
    s3.put_object(Bucket=bucket, Key="input.manifest", Body="\n".join(lines) + "\n")
    s3.put_object(Bucket=bucket, Key="class_labels.json", Body=json.dumps({"labels": [{"label": "Bird"}]}))
    s3.put_object(Bucket=bucket, Key="instructions.template", Body=instructions_template("Bird", None))
    return Dataset(bucket, references)


def is_easy(reference: ReferenceImage) -> bool:
    return len(reference.boxes) <= 2


@dataclass
class StandInDetector:
    """Records what the loop asks; predicts from the references of the objects' keys."""

    dataset: Dataset
    trained: list[tuple[int, int, list[dict[str, Any]], list[dict[str, Any]]]] = field(default_factory=list)
    predicted: list[tuple[int, str, list[int]]] = field(default_factory=list)

    def train(
        self,
        iteration: int,
        num_classes: int,
        train_lines: Sequence[str],
        validation_lines: Sequence[str],
        should_stop: Callable[[], bool],
    ) -> TrainedModel:
        if should_stop():
            raise JobStopped
        parsed = ([json.loads(line) for line in train_lines], [json.loads(line) for line in validation_lines])
        self.trained.append((iteration, num_classes, *parsed))
        name = f"{JOB}-al-train-{iteration}"
        return TrainedModel(
            name, f"s3://{self.dataset.bucket}/{name}/model.tar.gz", name, f"arn:model/{name}"
        )

    def predict(
        self,
        iteration: int,
        model: TrainedModel,
        purpose: str,
        source_refs: Sequence[str],
        should_stop: Callable[[], bool],
    ) -> list[list[Detection] | None]:
        lines = [int(split_s3_uri(ref)[1].split("/")[1][:3]) for ref in source_refs]
        self.predicted.append((iteration, purpose, lines))
        return [self._detections(self.dataset.references[line]) for line in lines]

    @staticmethod
    def _detections(reference: ReferenceImage | None) -> list[Detection] | None:
        if reference is None:
            return None
        if is_easy(reference):
            return [Detection(0, EASY_SCORE, b.xmin, b.ymin, b.xmax, b.ymax) for b in reference.boxes]
        # Undecided, and nowhere near the birds: tiny boxes in a corner.
        return [Detection(0, UNSURE_SCORE, 0.0, 0.0, 0.01, 0.01) for _ in reference.boxes]


@dataclass
class Outcome:
    result: dict[str, Any]
    reports: list[dict[str, int]]
    log: list[str]
    detector: StandInDetector


def _run(config: LocalAwsConfig, dataset: Dataset, stop_after_checks: int | None = None) -> Outcome:
    spec = labeling_job_spec(dataset.request(), config)
    reports: list[dict[str, int]] = []

    def report(_: str, counters: dict[str, int]) -> None:
        reports.append(dict(counters))

    run = _LabelingRun(spec, JOB, config, report)
    detector = StandInDetector(dataset)
    log: list[str] = []
    checks = 0

    def should_stop() -> bool:
        nonlocal checks
        checks += 1
        return stop_after_checks is not None and checks > stop_after_checks

    loop = AutoLabelingLoop(run, detector, report, should_stop, log.append)
    return Outcome(loop.run(), reports, log, detector)


def _output_lines(config: LocalAwsConfig, dataset: Dataset) -> list[dict[str, Any]]:
    s3 = config.boto3_client("s3")
    body = s3.get_object(Bucket=dataset.bucket, Key=f"output/{JOB}/manifests/output/output.manifest")["Body"]
    return [json.loads(line) for line in body.read().decode().splitlines()]


def test_the_loop_labels_the_easy_images_by_machine_and_the_others_by_humans(config):
    dataset = _dataset(config)
    outcome = _run(config, dataset)
    plan = al.plan_objects(JOB, IMAGES, MAX_CONCURRENT)
    counters = outcome.result["counters"]
    assert outcome.result["status"] == "Completed"
    assert counters["Unlabeled"] == 0 and counters["FailedNonRetryableError"] == 0
    assert counters["TotalLabeled"] == IMAGES == counters["HumanLabeled"] + counters["MachineLabeled"]
    lines = _output_lines(config, dataset)
    machine = {i for i, line in enumerate(lines) if line["category-metadata"]["human-annotated"] == "no"}
    assert len(machine) == counters["MachineLabeled"] > 0
    # Only easy images, none of the human stages, and every easy image the first detector saw.
    assert all(is_easy(dataset.references[i]) for i in machine)
    assert not machine & set(plan.probe + plan.initial_training + plan.validation)
    first_inference = next(
        lines for it, purpose, lines in outcome.detector.predicted if purpose == "inference"
    )
    assert machine == {i for i in first_inference if is_easy(dataset.references[i])}
    for i in machine:
        metadata = lines[i]["category-metadata"]
        assert [o["confidence"] for o in metadata["objects"]] == [EASY_SCORE] * len(
            dataset.references[i].boxes
        )
        assert metadata["type"] == "groundtruth/object-detection"
        assert metadata["job-name"] == f"labeling-job/{JOB}"
        size = lines[i]["category"]["image_size"][0]
        assert (size["width"], size["height"]) == (dataset.references[i].width, dataset.references[i].height)
    last_iteration = outcome.detector.trained[-1][0]
    assert outcome.result["final_active_learning_model_arn"] == f"arn:model/{JOB}-al-train-{last_iteration}"

    # The detector trained on the human labels outside the validation set, validated on the validation set.
    iteration, num_classes, train, validation = outcome.detector.trained[0]
    assert (iteration, num_classes) == (4, 1)
    labeled_sources = {line["source-ref"] for line in train}
    assert labeled_sources == {lines[i]["source-ref"] for i in plan.probe + plan.initial_training}
    assert {line["source-ref"] for line in validation} == {lines[i]["source-ref"] for i in plan.validation}
    assert all(line["category-metadata"]["human-annotated"] == "yes" for line in train + validation)
    # Counters only ever grow.
    totals = [r["TotalLabeled"] for r in outcome.reports]
    assert totals == sorted(totals) and totals[-1] == IMAGES


def test_the_output_tree_reads_with_the_pipeline_readers(config):
    dataset = _dataset(config)
    outcome = _run(config, dataset)
    store = S3ObjectStore(config.boto3_client("s3"), dataset.bucket)
    prefix = f"output/{JOB}/"
    manifest = read_output_manifest(store, prefix, "category")
    machine_mask = np.array([not image.human_annotated for image in manifest.images])
    assert machine_mask.sum() == outcome.result["counters"]["MachineLabeled"]
    auto = read_auto_label_counts(store, prefix, "category")
    human = read_consolidation_counts(store, prefix, "category")
    assert sum(c.images for c in auto.values()) == outcome.result["counters"]["MachineLabeled"]
    assert sum(c.images for c in human.values()) == outcome.result["counters"]["HumanLabeled"]
    assert min(auto) == 4 and sorted(human)[:3] == [1, 2, 3]
    threshold = json.loads(store.read_bytes(f"{prefix}activelearning/4/validation/threshold.json"))
    # The highest box cutoff that keeps the easy images' boxes: the others' labels would be empty, and
    # empty labels are wrong on every validation image.
    assert threshold["box-score-cutoff"] == EASY_SCORE
    assert threshold["confidence-threshold"] == 0.0
    assert threshold["expected-mean-iou"] >= al.REQUIRED_MEAN_IOU
    assert threshold["empty-label-confidence-threshold"] is None
    validation = threshold["validation"]
    assert len(validation) == len(al.plan_objects(JOB, IMAGES, MAX_CONCURRENT).validation)
    assert {v["mean-iou"] for v in validation if v["empty-label"]} == {0.0}
    assert any(
        f"box score cutoff {EASY_SCORE}; " in m and "labels with boxes from confidence 0.0000" in m
        for m in outcome.log
    )


def test_humans_label_the_least_confident_at_most_max_concurrent_tasks_per_iteration(config):
    dataset = _dataset(config)
    outcome = _run(config, dataset)
    store = S3ObjectStore(config.boto3_client("s3"), dataset.bucket)
    human = read_consolidation_counts(store, f"output/{JOB}/", "category")
    assert all(counts.images <= MAX_CONCURRENT for it, counts in human.items() if it != 3)
    rounds = [it for it, purpose, _ in outcome.detector.predicted if purpose == "inference"]
    assert rounds == list(range(4, 4 + len(rounds))) and len(outcome.detector.trained) == len(rounds)
    intermediate = {key.split("/")[-2] for key in store.list_keys(f"output/{JOB}/manifests/intermediate/")}
    assert intermediate == {str(iteration) for iteration in range(1, 4 + len(rounds))}


def test_more_than_a_tenth_of_the_probe_failing_fails_the_job(config):
    probe = al.plan_objects(JOB, IMAGES, MAX_CONCURRENT).probe
    dataset = _dataset(config, corrupt=probe[:2])
    with pytest.raises(LabelingJobFailed, match=r"ClientError: 2 of the 10 probe objects failed"):
        _run(config, dataset)


def test_a_stop_keeps_what_was_labeled(config):
    dataset = _dataset(config)
    outcome = _run(config, dataset, stop_after_checks=15)
    counters = outcome.result["counters"]
    assert outcome.result["status"] == "Stopped"
    assert 0 < counters["TotalLabeled"] < IMAGES and counters["Unlabeled"] > 0
    assert len(_output_lines(config, dataset)) == IMAGES
