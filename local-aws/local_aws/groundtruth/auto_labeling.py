"""Automated data labeling of a bounding-box job: AWS's documented loop over human batches and a detector.

Iterations, as in AWS's example notebook:

1. a random probe batch goes to humans (the job fails if more than 10% of it fails);
2. the first training batch, ``MaxConcurrentTaskCount`` less the probe, goes to humans;
3. the validation set (20% of the objects under 5,000, else 10%) goes to humans, in batches of
   ``MaxConcurrentTaskCount``;
4. and on, until every object is labeled: a detector is trained on every human label outside the
   validation set; from its predictions on the validation set, the box score cutoff and the confidence
   thresholds (labels with boxes, empty labels) are chosen at which each auto-labeled image's expected mean
   IoU is at least 0.6; the unlabeled objects at or above their threshold get the detector's boxes as their
   labels ("human-annotated": "no"); the least sure of the rest (those without a prediction, or whose
   untrusted label would be empty, first), at most ``MaxConcurrentTaskCount``, go to humans.

The detector (``Detector``) trains and predicts through SageMaker jobs in the service
(``auto_labeling_detector``); the decisions are in ``active_learning``. Which objects humans label first
follows from the job's name, as their labels do; the detector's training is seeded, but a CPU's threads
make it not exactly reproducible, so a job resumed after a restart may label other objects by machine.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from botocore.exceptions import ClientError
from PIL import Image, UnidentifiedImageError

from local_aws.boxes import ltwh_pixels_to_xyxy, pixel_box
from local_aws.groundtruth import active_learning as al
from local_aws.groundtruth.active_learning import Calibration, Detection
from local_aws.groundtruth.consolidation import ConsolidatedBox
from local_aws.groundtruth.errors import LabelingJobFailed
from local_aws.groundtruth.inputs import ManifestLine
from local_aws.groundtruth.output_tree import OutputTree, labeled_content, utc_now
from local_aws.groundtruth.request_checks import LabelingJobSpec
from local_aws.s3_objects import split_s3_uri, write_json, write_lines

READ_THREADS = 8
# The training job's validation channel (the algorithm's per-epoch mAP and best epoch) is at most this many
# objects of the validation set: evaluating all of it every epoch would cost as much as the training.
TRAINING_VALIDATION_OBJECTS = 100

Report = Callable[[str, dict[str, int]], None]
Log = Callable[[str], None]


class JobStopped(Exception):
    """The labeling job was asked to stop while it waited for the detector."""


@dataclass(frozen=True)
class TrainedModel:
    training_job_name: str
    model_data_url: str  # the model.tar.gz
    model_name: str  # the SageMaker model of it
    model_arn: str


class Detector(Protocol):
    """Trains the auto-labeling detector and predicts with it; ``should_stop`` ends the wait early by
    raising ``JobStopped``."""

    def train(
        self,
        iteration: int,
        num_classes: int,
        train_lines: Sequence[str],
        validation_lines: Sequence[str],
        should_stop: Callable[[], bool],
    ) -> TrainedModel: ...

    def predict(
        self,
        iteration: int,
        model: TrainedModel,
        purpose: str,
        source_refs: Sequence[str],
        should_stop: Callable[[], bool],
    ) -> list[list[Detection] | None]:
        """Detections per object (None where the object could not be predicted); ``purpose`` is
        ``validation`` or ``inference`` (where in the output tree the work goes)."""
        ...


class ObjectResult(Protocol):
    object_id: int
    failure_reason: str | None


class LabelingRun(Protocol):
    """What the loop needs of a labeling run (``job._LabelingRun``)."""

    spec: LabelingJobSpec
    job_name: str
    s3: Any
    tree: OutputTree
    lines: list[ManifestLine]
    categories: list[str]
    output: list[str]
    clock: datetime

    def counters(self) -> dict[str, int]: ...
    def label_batch(
        self, iteration: int, batch: Sequence[int], should_stop: Callable[[], bool]
    ) -> tuple[Sequence[ObjectResult], bool]: ...
    def record(self, iteration: int, results: Sequence[ObjectResult]) -> None: ...
    def record_machine_label(self, object_id: int, content: dict[str, Any]) -> None: ...
    def write_manifest(self, key: str) -> None: ...


@dataclass
class _Progress:
    human_labeled: list[int]  # outside the validation set, in the order labeled
    validation: list[int]  # labeled validation objects
    unlabeled: list[int]  # in the order humans take them when confidences tie


class AutoLabelingLoop:
    """One job's automated labeling; ``run()`` returns the engine's result."""

    def __init__(
        self,
        run: LabelingRun,
        detector: Detector,
        report: Report,
        should_stop: Callable[[], bool],
        log: Log,
    ) -> None:
        self.run_ = run
        self.detector = detector
        self.report = report
        self.should_stop = should_stop
        self.log = log
        self.batch_size = run.spec.max_concurrent_tasks
        self.label_attribute = run.spec.label_attribute

    def run(self) -> dict[str, Any]:
        total = len(self.run_.lines)
        plan = al.plan_objects(self.run_.job_name, total, self.batch_size)
        self.log(
            f"Automated data labeling of {total} objects: {len(plan.probe)} probe objects, a first training "
            f"batch of {len(plan.initial_training)} and a validation set of {len(plan.validation)} go to "
            f"humans; then each iteration trains a detector, labels the objects it is confident of and sends "
            f"at most {self.batch_size} others to humans"
        )
        progress = _Progress([], [], list(plan.rest))
        model: TrainedModel | None = None
        stages = ((1, plan.probe, False), (2, plan.initial_training, False), (3, plan.validation, True))
        try:
            for iteration, objects, is_validation in stages:
                labeled, stopped = self._humans(iteration, objects)
                if objects:
                    self._write_intermediate(iteration)
                if stopped:
                    return self._result("Stopped", model)
                (progress.validation if is_validation else progress.human_labeled).extend(labeled)
                if iteration == 1 and al.probe_failed(len(objects) - len(labeled), len(objects)):
                    raise LabelingJobFailed(
                        f"ClientError: {len(objects) - len(labeled)} of the {len(objects)} probe objects "
                        "failed; automated data labeling stops a job when more than 10% of them fail"
                    )
            iteration = len(stages)
            while progress.unlabeled:
                iteration += 1
                model, stopped = self._round(iteration, progress)
                if stopped:
                    return self._result("Stopped", model)
        except JobStopped:
            return self._result("Stopped", model)
        return self._result("Completed", model)

    def _humans(self, iteration: int, objects: Sequence[int]) -> tuple[list[int], bool]:
        """Humans label ``objects`` in batches; the objects labeled (not failed) and whether stopped."""
        labeled: list[int] = []
        stopped = False
        for batch in al.batches(objects, self.batch_size):
            results, stopped = self.run_.label_batch(iteration, batch, self.should_stop)
            if results:
                self.run_.record(iteration, results)
                labeled.extend(r.object_id for r in results if r.failure_reason is None)
                self.report("InProgress", self.run_.counters())
            if stopped:
                break
        return labeled, stopped

    def _write_intermediate(self, iteration: int) -> None:
        """The output manifest as it stands after the iteration (the lines not labeled yet unchanged)."""
        self.run_.write_manifest(self.run_.tree.intermediate_manifest_key(iteration))

    def _round(self, iteration: int, progress: _Progress) -> tuple[TrainedModel, bool]:
        """Train, choose the thresholds, auto-label, send the least sure to humans."""
        if not progress.human_labeled or not progress.validation:
            raise LabelingJobFailed(
                "ClientError: automated data labeling has no human labels to train or validate a detector "
                "on: the objects of the first iterations all failed"
            )
        trained_on = len(progress.human_labeled)
        model = self.detector.train(
            iteration,
            len(self.run_.categories),
            [self.run_.output[o] for o in progress.human_labeled],
            [self.run_.output[o] for o in progress.validation[:TRAINING_VALIDATION_OBJECTS]],
            self.should_stop,
        )
        calibration = self._calibrate(iteration, model, progress.validation)
        cutoff = calibration.box_cutoff
        refs = [self.run_.lines[o].source_ref for o in progress.unlabeled]
        predictions = self.detector.predict(iteration, model, "inference", refs, self.should_stop)
        detections = dict(zip(progress.unlabeled, predictions, strict=True))
        predicted = {o: d for o, d in detections.items() if d is not None}
        chosen = al.auto_labeled(predicted, calibration)
        machine = set(self._label_by_machine(iteration, chosen, detections, cutoff))
        progress.unlabeled = [o for o in progress.unlabeled if o not in machine]
        priorities = {o: al.human_priority(detections[o], calibration) for o in progress.unlabeled}
        for_humans = al.next_for_humans(progress.unlabeled, priorities, self.batch_size)
        labeled, stopped = self._humans(iteration, for_humans)
        self._write_intermediate(iteration)
        progress.human_labeled.extend(labeled)
        sent = set(for_humans)
        progress.unlabeled = [o for o in progress.unlabeled if o not in sent]
        self.log(
            f"Iteration {iteration}: detector {model.training_job_name} trained on {trained_on} human "
            f"labels; {len(machine)} objects labeled by the machine, {len(for_humans)} sent to humans, "
            f"{len(progress.unlabeled)} left"
        )
        return model, stopped

    def _calibrate(self, iteration: int, model: TrainedModel, validation: Sequence[int]) -> Calibration:
        """Box cutoff and confidence threshold from the detector's predictions on the validation set."""
        refs = [self.run_.lines[o].source_ref for o in validation]
        predictions = self.detector.predict(iteration, model, "validation", refs, self.should_stop)
        scored = [
            (object_id, detections)
            for object_id, detections in zip(validation, predictions, strict=True)
            if detections is not None
        ]
        calibration = al.calibrate(
            [
                (detections, _label_boxes(json.loads(self.run_.output[o])[self.label_attribute]))
                for o, detections in scored
            ]
        )
        threshold, empty = calibration.threshold, calibration.empty_threshold
        write_json(
            self.run_.s3,
            self.run_.tree.bucket,
            self.run_.tree.validation_prefix(iteration) + "threshold.json",
            {
                "required-mean-iou": al.REQUIRED_MEAN_IOU,
                "box-score-cutoff": calibration.box_cutoff,
                "confidence-threshold": threshold.confidence,
                "expected-mean-iou": threshold.expected_mean_iou,
                "expected-mean-iou-at-threshold": threshold.expected_iou_at_threshold,
                "standard-error-at-threshold": threshold.standard_error_at_threshold,
                "validation-objects-above-threshold": threshold.validation_images,
                "empty-label-confidence-threshold": empty.confidence,
                "empty-label-expected-mean-iou": empty.expected_mean_iou,
                "validation-objects-above-empty-label-threshold": empty.validation_images,
                "validation": [
                    {"datasetObjectId": str(o), "confidence": c, "mean-iou": q, "empty-label": e}
                    for (o, _), c, q, e in zip(
                        scored, calibration.confidences, calibration.qualities, calibration.empty, strict=True
                    )
                ],
            },
        )
        if calibration.validation_images == 0:
            self.log(
                f"Iteration {iteration}: on the {len(scored)} validation images no box score cutoff and "
                f"confidence threshold give an expected mean IoU of {al.REQUIRED_MEAN_IOU}; nothing is "
                "labeled by the machine"
            )
            return calibration
        if threshold.confidence is None:
            boxes = "no confidence threshold for labels with boxes reaches it"
        else:
            boxes = (
                f"labels with boxes from confidence {threshold.confidence:.4f}, where an image is expected "
                f"to reach {threshold.expected_iou_at_threshold:.3f} ± "
                f"{threshold.standard_error_at_threshold:.3f} (the {threshold.validation_images} "
                f"validation images at or above it: {threshold.expected_mean_iou:.3f})"
            )
        empty_images = sum(calibration.empty)
        if empty.confidence is None:
            empties = f"empty labels are not trusted ({empty_images} validation images would get one)"
        else:
            empties = (
                f"empty labels from confidence {empty.confidence:.4f} (the {empty.validation_images} "
                f"validation images at or above it: {empty.expected_mean_iou:.3f})"
            )
        self.log(
            f"Iteration {iteration}: box score cutoff {calibration.box_cutoff}; an expected mean IoU of "
            f"{al.REQUIRED_MEAN_IOU} with the human labels of {len(scored)} validation images gives {boxes}; "
            f"{empties}"
        )
        return calibration

    def _label_by_machine(
        self,
        iteration: int,
        objects: Sequence[int],
        detections: dict[int, list[Detection] | None],
        cutoff: float,
    ) -> list[int]:
        """Write the machine labels of ``objects``; those whose image cannot be read stay unlabeled."""
        created = max(self.run_.clock, utc_now())
        refs = [self.run_.lines[o].source_ref for o in objects]
        with ThreadPoolExecutor(READ_THREADS) as pool:
            sizes = list(pool.map(lambda ref: _image_size(self.run_.s3, ref), refs))
        labeled, lines = [], []
        for object_id, size in zip(objects, sizes, strict=True):
            found = detections[object_id]
            if size is None or found is None:
                continue
            content = labeled_content(
                self.label_attribute,
                self.run_.job_name,
                self.run_.categories,
                size,
                _machine_boxes(al.kept_detections(found, cutoff), self.run_.categories, size),
                created,
                human_annotated=False,
            )
            self.run_.record_machine_label(object_id, content)
            labeled.append(object_id)
            lines.append(f"{object_id} {json.dumps(content)}")
        if lines:
            write_lines(
                self.run_.s3,
                self.run_.tree.bucket,
                self.run_.tree.auto_annotator_output_key(iteration),
                lines,
            )
            self.report("InProgress", self.run_.counters())
        return labeled

    def _result(self, status: str, model: TrainedModel | None) -> dict[str, Any]:
        self.run_.write_manifest(self.run_.tree.output_manifest_key)
        return {
            "status": status,
            "counters": self.run_.counters(),
            "output_dataset_s3_uri": self.run_.tree.uri(self.run_.tree.output_manifest_key),
            "final_active_learning_model_arn": model.model_arn if model is not None else None,
        }


def _label_boxes(label: dict[str, Any]) -> list[tuple[int, tuple[float, float, float, float]]]:
    """A bounding-box label's boxes, normalised by its image size (IoU does not change) and clipped to it."""
    size = label["image_size"][0]
    annotations = label["annotations"]
    xyxy = ltwh_pixels_to_xyxy(
        [[a["left"], a["top"], a["width"], a["height"]] for a in annotations],
        float(size["width"]),
        float(size["height"]),
    )
    return [
        (int(a["class_id"]), tuple(corners)) for a, corners in zip(annotations, xyxy.tolist(), strict=True)
    ]


def _machine_boxes(
    detections: Sequence[Detection], categories: Sequence[str], size: tuple[int, int, int]
) -> list[ConsolidatedBox]:
    """The detector's boxes in pixels of the image, with its scores (two decimals) as their confidences;
    detections of a class the job does not have are dropped."""
    width, height, _ = size
    boxes = []
    for d in detections:
        if not 0 <= d.class_id < len(categories):
            continue
        corners = [d.xmin * width, d.ymin * height, d.xmax * width, d.ymax * height]
        box = pixel_box(categories[d.class_id], np.array(corners), width, height)
        if box is not None:
            boxes.append(ConsolidatedBox(box, round(d.score, 2), 0))
    return boxes


def _image_size(s3: Any, uri: str) -> tuple[int, int, int] | None:
    """Width, height and depth of the image at ``uri``; None when it cannot be read."""
    bucket, key = split_s3_uri(uri)
    try:
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with Image.open(io.BytesIO(data)) as image:
            return image.width, image.height, len(image.getbands())
    except (ClientError, UnidentifiedImageError, OSError):
        return None
