"""Readers of a Ground Truth labeling job's output tree, ``<S3 output path>/<job name>/``.

Each reader lists its folder with ``ObjectStore.list_keys`` and reads every object once. Iteration numbers
come from whole path segments (``iteration-10`` is iteration 10), and files are processed in numeric
iteration order rather than the lexicographic order of their keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from ground_truth_pipeline.boxes import BoxTable, LabelingDataset, ltwh_pixels_to_xyxy
from ground_truth_pipeline.manifests import (
    METADATA_SUFFIX,
    JsonChecker,
    OutputManifest,
    parse_output_manifest,
)
from ground_truth_pipeline.object_store import ObjectStore

OUTPUT_MANIFEST = "manifests/output/output.manifest"
WORKER_RESPONSES = "annotations/worker-response/"
CONSOLIDATION_RESPONSES = "annotations/consolidated-annotation/consolidation-response/"
ACTIVE_LEARNING = "activelearning/"
AUTO_ANNOTATOR_OUTPUT = "auto_annotator_output.txt"
TRAINING = "training/"
MODEL_ARTIFACT_SUFFIX = "/output/model.tar.gz"
RESPONSE_TIME_FORMAT = "%Y-%m-%d_%H:%M:%S"

_ITERATION_FOLDER = re.compile(r"iteration-([0-9]+)")
_WORKER_RESPONSE_KEY = re.compile(r"(iteration-[0-9]+)/([0-9]+)/[^/]+\.json")
_CONSOLIDATION_RESPONSE_KEY = re.compile(r"(iteration-[0-9]+)/([^/]+)\.json")
_BOX_FIELDS = ("left", "top", "width", "height")


class LabelingOutputError(ValueError):
    """A file of a labeling job's output tree that is not where or what Ground Truth writes."""


def _folder(job_prefix: str) -> str:
    return job_prefix if job_prefix.endswith("/") else job_prefix + "/"


def parse_iteration_folder(segment: str) -> int:
    """The iteration of a folder named ``iteration-<N>``, N read in full."""
    match = _ITERATION_FOLDER.fullmatch(segment)
    if match is None:
        raise LabelingOutputError(f"{segment!r} is not an iteration folder (expected iteration-<N>)")
    return int(match.group(1))


def _is_whole_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _first_integer_segment(segments: Sequence[str]) -> int | None:
    return next((int(s) for s in segments if _is_whole_number(s)), None)


@dataclass(frozen=True)
class WorkerResponses:
    """Every worker answer of a job and the boxes drawn in it.

    ``boxes.image`` is the dataset image index and ``boxes.worker`` an index into ``worker_ids``. The
    ``answer_*`` arrays and ``task_seconds`` have one entry per answer (a worker's submission for an object).
    """

    boxes: BoxTable
    worker_ids: list[str]
    answer_object_id: np.ndarray  # int64: datasetObjectId
    answer_image: np.ndarray  # int64: dataset image index
    answer_worker: np.ndarray  # int64: index into worker_ids
    answer_iteration: np.ndarray  # int64
    task_seconds: np.ndarray  # float64: timeSpentInSeconds


def _answer_element(check: JsonChecker, content: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The crowd-bounding-box submission in ``answerContent``, whatever the element's ``name`` was."""
    names = [k for k, v in content.items() if isinstance(v, dict) and "boundingBoxes" in v]
    if len(names) != 1:
        raise check.error(f"{path!r} must hold exactly one object with 'boundingBoxes', found {len(names)}")
    return content[names[0]], f"{path}.{names[0]}"


def read_worker_responses(
    store: ObjectStore,
    job_prefix: str,
    image_index: Mapping[int, int],
    class_ids: Mapping[str, int],
    fallback_sizes: Mapping[int, tuple[int, int]] | None = None,
) -> WorkerResponses:
    """Read ``annotations/worker-response/iteration-<N>/<datasetObjectId>/<time>.json``.

    ``image_index`` maps each datasetObjectId to its dataset image index and ``class_ids`` each label name
    to its class id. Boxes are normalised by the ``inputImageProperties`` of their answer, or, where an
    answer lacks them, by ``fallback_sizes[datasetObjectId]`` (width, height), e.g. from the output manifest.
    """
    folder = _folder(job_prefix) + WORKER_RESPONSES
    located = []
    for key in store.list_keys(folder):
        if not key.endswith(".json"):
            continue
        match = _WORKER_RESPONSE_KEY.fullmatch(key[len(folder) :])
        if match is None:
            raise LabelingOutputError(
                f"{key}: expected {WORKER_RESPONSES}iteration-<N>/<datasetObjectId>/<time>.json"
            )
        located.append((parse_iteration_folder(match.group(1)), int(match.group(2)), key))
    located.sort()

    worker_index: dict[str, int] = {}
    answer_object: list[int] = []
    answer_image: list[int] = []
    answer_worker: list[int] = []
    answer_iteration: list[int] = []
    task_seconds: list[float] = []
    box_image: list[int] = []
    box_worker: list[int] = []
    box_class: list[int] = []
    box_ltwh: list[list[float]] = []
    box_size: list[tuple[float, float]] = []
    for iteration, object_id, key in located:
        check = JsonChecker(key, LabelingOutputError)
        if object_id not in image_index:
            raise check.error(f"datasetObjectId {object_id} is not an object of the dataset")
        image = image_index[object_id]
        document = check.mapping(check.decode(store.read_bytes(key)), "file")
        for i, raw_answer in enumerate(check.items(*check.get(document, "answers"))):
            answer_path = f"answers[{i}]"
            answer = check.mapping(raw_answer, answer_path)
            worker_id = check.text(*check.get(answer, "workerId", answer_path))
            worker = worker_index.setdefault(worker_id, len(worker_index))
            seconds = check.number(*check.get(answer, "timeSpentInSeconds", answer_path))
            content = check.mapping(*check.get(answer, "answerContent", answer_path))
            element, element_path = _answer_element(check, content, f"{answer_path}.answerContent")
            classes, ltwh = _answer_boxes(check, element, element_path, class_ids)
            if classes:
                size = _answer_image_size(check, element, element_path, (fallback_sizes or {}).get(object_id))
                box_class.extend(classes)
                box_ltwh.extend(ltwh)
                box_image.extend([image] * len(classes))
                box_worker.extend([worker] * len(classes))
                box_size.extend([size] * len(classes))
            answer_object.append(object_id)
            answer_image.append(image)
            answer_worker.append(worker)
            answer_iteration.append(iteration)
            task_seconds.append(seconds)

    sizes = np.asarray(box_size, dtype=np.float64).reshape(-1, 2)
    boxes = BoxTable.build(
        image=box_image,
        xyxy=ltwh_pixels_to_xyxy(np.asarray(box_ltwh).reshape(-1, 4), sizes[:, 0], sizes[:, 1]),
        class_id=box_class,
        worker=box_worker,
    )
    return WorkerResponses(
        boxes=boxes,
        worker_ids=list(worker_index),
        answer_object_id=np.asarray(answer_object, dtype=np.int64),
        answer_image=np.asarray(answer_image, dtype=np.int64),
        answer_worker=np.asarray(answer_worker, dtype=np.int64),
        answer_iteration=np.asarray(answer_iteration, dtype=np.int64),
        task_seconds=np.asarray(task_seconds, dtype=np.float64),
    )


def _answer_boxes(
    check: JsonChecker, element: dict[str, Any], element_path: str, class_ids: Mapping[str, int]
) -> tuple[list[int], list[list[float]]]:
    """Class ids and pixel ``left, top, width, height`` of the boxes of one answer (none: null or [])."""
    drawn_path = f"{element_path}.boundingBoxes"
    drawn = check.items(element["boundingBoxes"] or [], drawn_path)
    classes, ltwh = [], []
    for j, raw_box in enumerate(drawn):
        box_path = f"{drawn_path}[{j}]"
        box = check.mapping(raw_box, box_path)
        label, label_path = check.get(box, "label", box_path)
        if label not in class_ids:
            known = ", ".join(repr(name) for name in class_ids)
            raise check.error(f"{label_path!r} is {label!r}, not one of the known labels ({known})")
        classes.append(class_ids[label])
        ltwh.append([check.number(*check.get(box, k, box_path)) for k in _BOX_FIELDS])
    return classes, ltwh


def _answer_image_size(
    check: JsonChecker, element: dict[str, Any], element_path: str, fallback: tuple[int, int] | None
) -> tuple[float, float]:
    properties_path = f"{element_path}.inputImageProperties"
    if "inputImageProperties" not in element:
        if fallback is None or min(fallback) <= 0:
            raise check.error(f"{properties_path!r} is missing and the image size is not known otherwise")
        return float(fallback[0]), float(fallback[1])
    properties = check.mapping(element["inputImageProperties"], properties_path)
    width = check.number(*check.get(properties, "width", properties_path))
    height = check.number(*check.get(properties, "height", properties_path))
    if width <= 0 or height <= 0:
        raise check.error(f"{properties_path!r} must have a positive width and height")
    return width, height


@dataclass(frozen=True)
class IterationLabels:
    """The objects that got their labels in one iteration, and when the last of them did."""

    iteration: int
    images: int
    boxes: int
    finished_at: datetime | None


def _annotation_count(check: JsonChecker, content: dict[str, Any], label_attribute: str, parent: str) -> int:
    label, label_path = check.get(content, label_attribute, parent)
    return len(check.items(*check.get(check.mapping(label, label_path), "annotations", label_path)))


def read_consolidation_counts(
    store: ObjectStore, job_prefix: str, label_attribute: str
) -> dict[int, IterationLabels]:
    """Human-labeled images and boxes per iteration from the consolidation responses.

    An object consolidated again in a later iteration counts once, in its first. ``finished_at`` is the
    time of the iteration's latest consolidation response (its file name).
    """
    folder = _folder(job_prefix) + CONSOLIDATION_RESPONSES
    located = []
    for key in store.list_keys(folder):
        match = _CONSOLIDATION_RESPONSE_KEY.fullmatch(key[len(folder) :])
        if match is None:
            raise LabelingOutputError(f"{key}: expected {CONSOLIDATION_RESPONSES}iteration-<N>/<time>.json")
        try:
            finished = datetime.strptime(match.group(2), RESPONSE_TIME_FORMAT)
        except ValueError:
            raise LabelingOutputError(
                f"{key}: file name {match.group(2)!r} is not a time in the format {RESPONSE_TIME_FORMAT}"
            ) from None
        located.append((parse_iteration_folder(match.group(1)), finished, key))
    located.sort()

    seen: set[int] = set()
    counts: dict[int, IterationLabels] = {}
    for iteration, finished, key in located:
        check = JsonChecker(key, LabelingOutputError)
        images = boxes = 0
        for i, raw in enumerate(check.items(check.decode(store.read_bytes(key)), "file")):
            entry = check.mapping(raw, f"[{i}]")
            object_id_value, object_id_path = check.get(entry, "datasetObjectId", f"[{i}]")
            if not _is_whole_number(str(object_id_value)):
                raise check.error(f"{object_id_path!r} must be a whole number, got {object_id_value!r}")
            consolidated = check.mapping(*check.get(entry, "consolidatedAnnotation", f"[{i}]"))
            content_path = f"[{i}].consolidatedAnnotation"
            content = check.mapping(*check.get(consolidated, "content", content_path))
            n_boxes = _annotation_count(check, content, label_attribute, f"{content_path}.content")
            object_id = int(object_id_value)
            if object_id not in seen:
                seen.add(object_id)
                images += 1
                boxes += n_boxes
        before = counts.get(iteration, IterationLabels(iteration, 0, 0, None))
        counts[iteration] = IterationLabels(iteration, before.images + images, before.boxes + boxes, finished)
    return counts


def read_auto_label_counts(
    store: ObjectStore, job_prefix: str, label_attribute: str
) -> dict[int, IterationLabels]:
    """Machine-labeled images and boxes per iteration from ``activelearning/<...>/auto_annotator_output.txt``.

    The folders between ``activelearning/`` and the file are not documented; the iteration is the first
    path segment after ``activelearning/`` that is a whole number. ``finished_at`` is the latest
    ``creation-date`` of the iteration's auto labels.
    """
    folder = _folder(job_prefix) + ACTIVE_LEARNING
    meta_key = label_attribute + METADATA_SUFFIX
    images: dict[int, int] = {}
    boxes: dict[int, int] = {}
    finished: dict[int, datetime] = {}
    for key in store.list_keys(folder):
        segments = key[len(folder) :].split("/")
        if segments[-1] != AUTO_ANNOTATOR_OUTPUT:
            continue
        iteration = _first_integer_segment(segments[:-1])
        if iteration is None:
            raise LabelingOutputError(f"{key}: no iteration number among the folders after {ACTIVE_LEARNING}")
        images.setdefault(iteration, 0)
        boxes.setdefault(iteration, 0)
        with store.open_text(key) as lines:
            for line_number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                check = JsonChecker(f"{key} line {line_number}", LabelingOutputError)
                _token, _, payload = line.strip().partition(" ")
                if not payload:
                    raise check.error("expected a token, a space and the JSON of the auto label")
                label = check.mapping(check.decode(payload), "auto label")
                n_boxes = _annotation_count(check, label, label_attribute, "")
                metadata = check.mapping(*check.get(label, meta_key))
                created_text, created_path = check.get(metadata, "creation-date", meta_key)
                try:
                    created = datetime.fromisoformat(check.text(created_text, created_path))
                except ValueError:
                    raise check.error(f"{created_path!r} is not an ISO time: {created_text!r}") from None
                images[iteration] += 1
                boxes[iteration] += n_boxes
                finished[iteration] = max(finished.get(iteration, created), created)
    return {
        iteration: IterationLabels(iteration, images[iteration], boxes[iteration], finished.get(iteration))
        for iteration in sorted(images)
    }


@dataclass(frozen=True)
class AutoLabelingTrainingJob:
    """A model trained by automated labeling, found by its artifact under ``training/``."""

    iteration: int
    job_name: str
    model_key: str


def list_auto_labeling_training_jobs(store: ObjectStore, job_prefix: str) -> list[AutoLabelingTrainingJob]:
    """Training jobs of auto-labeling from keys ``training/.../<iteration>/.../<job>/output/model.tar.gz``.

    The job name is the folder above ``output``; the iteration is the first whole-number folder after
    ``training/`` and before the job's folder.
    """
    folder = _folder(job_prefix) + TRAINING
    jobs = []
    for key in store.list_keys(folder):
        if not key.endswith(MODEL_ARTIFACT_SUFFIX):
            continue
        segments = key[len(folder) :].split("/")
        if len(segments) < 4:
            raise LabelingOutputError(
                f"{key}: expected {TRAINING}.../<iteration>/.../<job>{MODEL_ARTIFACT_SUFFIX}"
            )
        iteration = _first_integer_segment(segments[:-3])
        if iteration is None:
            raise LabelingOutputError(f"{key}: no iteration number among the folders before the training job")
        jobs.append(AutoLabelingTrainingJob(iteration=iteration, job_name=segments[-3], model_key=key))
    return sorted(jobs, key=lambda job: (job.iteration, job.job_name))


@dataclass(frozen=True)
class LabelPrices:
    """Prices per labeled object in dollars; the defaults are the reference notebook's."""

    human_base: float = 0.08
    per_worker: float = 0.036
    workers: int = 5
    auto: float = 0.08

    @classmethod
    def of_run(cls, params: Mapping[str, Any]) -> LabelPrices:
        """A run's prices, from its params. A private workteam (``workteam_arn``) is the account's own
        people, not paid per task: AWS then charges only the per-label fee."""
        private_team = bool(str(params.get("workteam_arn") or "").strip())
        return cls(
            per_worker=0.0 if private_team else float(params["task_price_usd"]),
            workers=int(params["workers_per_image"]),
        )

    @property
    def human(self) -> float:
        return self.human_base + self.workers * self.per_worker


SUMMARY_COLUMNS = (
    "iteration",
    "human_images",
    "human_boxes",
    "auto_images",
    "auto_boxes",
    "human_cost",
    "auto_cost",
    "finished_at",
)


def iteration_summary(
    human: Mapping[int, IterationLabels],
    auto: Mapping[int, IterationLabels],
    prices: LabelPrices | None = None,
) -> pd.DataFrame:
    """One row per iteration: labeled images and boxes by humans and machine, their cost, and when the
    iteration's last label was made."""
    prices = prices or LabelPrices()
    rows = []
    none = IterationLabels(0, 0, 0, None)
    for iteration in sorted(set(human) | set(auto)):
        by_human = human.get(iteration, none)
        by_machine = auto.get(iteration, none)
        times = [t for t in (by_human.finished_at, by_machine.finished_at) if t is not None]
        rows.append(
            (
                iteration,
                by_human.images,
                by_human.boxes,
                by_machine.images,
                by_machine.boxes,
                by_human.images * prices.human,
                by_machine.images * prices.auto,
                max(times) if times else None,
            )
        )
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    summary["finished_at"] = pd.to_datetime(summary["finished_at"])
    counts = ["iteration", "human_images", "human_boxes", "auto_images", "auto_boxes"]
    return summary.astype(dict.fromkeys(counts, "int64") | {"human_cost": "float64", "auto_cost": "float64"})


def read_output_manifest(store: ObjectStore, job_prefix: str, label_attribute: str) -> OutputManifest:
    key = _folder(job_prefix) + OUTPUT_MANIFEST
    with store.open_text(key) as lines:
        return parse_output_manifest(lines, label_attribute, source_name=key)


def load_labeling_dataset(
    store: ObjectStore,
    job_prefix: str,
    label_attribute: str,
    reference: BoxTable | None,
    *,
    class_names: Sequence[str] | None = None,
    manifest: OutputManifest | None = None,
) -> LabelingDataset:
    """The job's images, consolidated and worker boxes, with ``reference`` boxes aligned to manifest order.

    ``class_names`` (the label category file's order) maps worker labels to class ids; without it the
    output manifest's class map is used. Pass ``manifest`` when it has been read already.
    """
    manifest = manifest or read_output_manifest(store, job_prefix, label_attribute)
    n_images = len(manifest.images)
    if reference is not None and len(reference) and int(reference.image.max()) >= n_images:
        raise LabelingOutputError(
            f"reference boxes refer to image {int(reference.image.max())}, but the output manifest of "
            f"{job_prefix} has {n_images} images"
        )
    if class_names is None:
        class_ids = {name: class_id for class_id, name in manifest.class_map.items()}
    else:
        class_ids = {name: class_id for class_id, name in enumerate(class_names)}
    workers = read_worker_responses(
        store,
        job_prefix,
        image_index={img.object_id: i for i, img in enumerate(manifest.images)},
        class_ids=class_ids,
        fallback_sizes={img.object_id: (img.width, img.height) for img in manifest.images},
    )
    return LabelingDataset(
        images=manifest.images,
        consolidated=manifest.consolidated,
        workers=workers.boxes,
        reference=reference if reference is not None else BoxTable.empty(),
        worker_ids=workers.worker_ids,
    )
