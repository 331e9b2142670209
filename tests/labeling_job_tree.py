"""Generate a Ground Truth bounding-box job's output tree, in AWS's layout and JSON, with known contents.

Used by tests and benchmarks. Every human-labeled object gets one worker-response file in its iteration
(``workers`` answers, each a jittered copy of the consolidated boxes) and an entry in a consolidation
response of that iteration. Machine-labeled objects appear in an ``auto_annotator_output.txt`` of an
iteration from 2 on, next to a placeholder model artifact of that iteration's auto-labeling training job.
The returned ``GeneratedTree`` holds what the readers should find.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from ground_truth_pipeline.object_store import ObjectStore

BASE_TIME = datetime(2026, 11, 26, 10, 0, 0)
ITERATION_SPACING = timedelta(days=2)
CONSOLIDATION_BATCH = 500
FAILURE_REASON = "ClientError: The image could not be read (generated failure)"
_FILE_TIME = "%Y-%m-%d_%H:%M:%S"
_CONSOLIDATION_RESPONSES = "annotations/consolidated-annotation/consolidation-response"
_LTWH = ("left", "top", "width", "height")


@dataclass
class GeneratedTree:
    job_prefix: str
    job_name: str
    label_attribute: str
    class_names: tuple[str, ...]
    source_refs: list[str]
    image_sizes: np.ndarray  # int64 (n_images, 2): width, height
    box_counts: np.ndarray  # int64 (n_images,): consolidated boxes of each object, 0 for a failed one
    object_iteration: np.ndarray  # int64 (n_images,): the iteration that labeled each object, 0 if failed
    human_object_ids: np.ndarray
    auto_object_ids: np.ndarray
    failed_object_ids: np.ndarray
    worker_ids: list[str] = field(default_factory=list)  # in the order readers meet them: iteration, object
    worker_answers: int = 0
    worker_boxes: int = 0
    human_images: dict[int, int] = field(default_factory=dict)  # per iteration
    human_boxes: dict[int, int] = field(default_factory=dict)
    human_finished_at: dict[int, datetime] = field(default_factory=dict)
    auto_images: dict[int, int] = field(default_factory=dict)
    auto_boxes: dict[int, int] = field(default_factory=dict)
    auto_finished_at: dict[int, datetime] = field(default_factory=dict)
    training_jobs: list[tuple[int, str]] = field(default_factory=list)  # (iteration, training job name)


def _empty_model_artifact() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz"):
        pass
    return buffer.getvalue()


def _spread(object_ids: np.ndarray, first: int, last: int) -> dict[int, np.ndarray]:
    """Object ids in order, cut into nearly equal runs for iterations ``first .. last``."""
    return {first + i: chunk for i, chunk in enumerate(np.array_split(object_ids, last - first + 1))}


class _TreeWriter:
    """The random contents of one job (sizes, boxes, confidences) and the files that carry them."""

    def __init__(
        self,
        store: ObjectStore,
        tree: GeneratedTree,
        rng: np.random.Generator,
        workers: int,
    ) -> None:
        self.store = store
        self.tree = tree
        self.rng = rng
        self.workers = workers
        self.meta_key = f"{tree.label_attribute}-metadata"
        self.created_at: dict[int, datetime] = {}
        counts = tree.box_counts
        self.first_box = np.concatenate([[0], np.cumsum(counts)])
        box_image = np.repeat(np.arange(len(counts)), counts)
        w, h = tree.image_sizes[box_image, 0], tree.image_sizes[box_image, 1]
        rel = rng.uniform(size=(len(box_image), 4))
        self.ltwh = np.stack(
            [
                rel[:, 0] * 0.6 * w,
                rel[:, 1] * 0.6 * h,
                (0.1 + 0.3 * rel[:, 2]) * w,
                (0.1 + 0.3 * rel[:, 3]) * h,
            ],
            axis=1,
        ).round()
        self.class_id = rng.integers(0, len(tree.class_names), len(box_image))
        self.confidence = rng.uniform(0.3, 1.0, len(box_image)).round(2)
        self.worker_pool = [
            f"public.us-east-1.A{i:012X}" for i in rng.integers(0, 16**12, max(2 * workers, 10))
        ]

    def _rows(self, oid: int) -> range:
        return range(self.first_box[oid], self.first_box[oid + 1])

    def label(self, oid: int) -> dict[str, Any]:
        width, height = (int(v) for v in self.tree.image_sizes[oid])
        annotations = [
            {"class_id": int(self.class_id[r]), **dict(zip(_LTWH, map(int, self.ltwh[r]), strict=True))}
            for r in self._rows(oid)
        ]
        return {"image_size": [{"width": width, "height": height, "depth": 3}], "annotations": annotations}

    def metadata(self, oid: int, human: bool) -> dict[str, Any]:
        rows = self._rows(oid)
        return {
            "objects": [{"confidence": float(self.confidence[r])} for r in rows],
            "class-map": {str(self.class_id[r]): self.tree.class_names[self.class_id[r]] for r in rows},
            "type": "groundtruth/object-detection",
            "human-annotated": "yes" if human else "no",
            "creation-date": self.created_at[oid].isoformat(timespec="microseconds"),
            "job-name": f"labeling-job/{self.tree.job_name}",
        }

    def labeled_content(self, oid: int, human: bool) -> dict[str, Any]:
        return {self.tree.label_attribute: self.label(oid), self.meta_key: self.metadata(oid, human)}

    def _worker_answer(
        self, oid: int, worker_id: str, seconds: float, submitted: datetime, jitter: np.ndarray
    ) -> dict[str, Any]:
        width, height = (int(v) for v in self.tree.image_sizes[oid])
        drawn = [
            {
                "label": self.tree.class_names[self.class_id[r]],
                **dict(zip(_LTWH, map(int, np.maximum(self.ltwh[r] + jitter, 0)), strict=True)),
            }
            for r in self._rows(oid)
        ]
        self.tree.worker_boxes += len(drawn)
        return {
            "workerId": worker_id,
            "acceptanceTime": f"{submitted - timedelta(seconds=seconds):%Y-%m-%dT%H:%M:%S.000Z}",
            "submissionTime": f"{submitted:%Y-%m-%dT%H:%M:%S.000Z}",
            "timeSpentInSeconds": seconds,
            "answerContent": {
                "boundingBox": {
                    "boundingBoxes": drawn,
                    "inputImageProperties": {"width": width, "height": height},
                }
            },
        }

    def human_iteration(self, iteration: int, object_ids: np.ndarray) -> None:
        start = BASE_TIME + (iteration - 1) * ITERATION_SPACING
        self._worker_responses(iteration, object_ids, start)
        self._consolidation_responses(iteration, object_ids, start + timedelta(days=1))
        self.tree.human_images[iteration] = len(object_ids)
        self.tree.human_boxes[iteration] = int(self.tree.box_counts[object_ids].sum())

    def _worker_responses(self, iteration: int, object_ids: np.ndarray, start: datetime) -> None:
        tree = self.tree
        folder = f"{tree.job_prefix}annotations/worker-response/iteration-{iteration}"
        picks = self.rng.random((len(object_ids), len(self.worker_pool))).argsort(axis=1)[:, : self.workers]
        jitter = self.rng.normal(0.0, 4.0, (len(object_ids), self.workers, 4)).round()
        seconds = self.rng.uniform(5.0, 120.0, (len(object_ids), self.workers)).round(1)
        seen_workers = dict.fromkeys(tree.worker_ids)
        for row, oid in enumerate(object_ids.tolist()):
            tree.object_iteration[oid] = iteration
            submitted = start + timedelta(seconds=row)
            answers = []
            for slot, pick in enumerate(picks[row]):
                worker_id = self.worker_pool[pick]
                seen_workers.setdefault(worker_id)
                time_spent = float(seconds[row, slot])
                answers.append(self._worker_answer(oid, worker_id, time_spent, submitted, jitter[row, slot]))
            tree.worker_answers += len(answers)
            key = f"{folder}/{oid}/{submitted:{_FILE_TIME}}.json"
            self.store.write_bytes(key, json.dumps({"answers": answers}).encode(), "application/json")
        tree.worker_ids = list(seen_workers)

    def _consolidation_responses(self, iteration: int, object_ids: np.ndarray, start: datetime) -> None:
        tree = self.tree
        folder = f"{tree.job_prefix}{_CONSOLIDATION_RESPONSES}/iteration-{iteration}"
        for index in range(0, len(object_ids), CONSOLIDATION_BATCH):
            consolidated_at = start + timedelta(minutes=index // CONSOLIDATION_BATCH)
            entries = []
            for oid in object_ids[index : index + CONSOLIDATION_BATCH].tolist():
                self.created_at[oid] = consolidated_at
                content = self.labeled_content(oid, human=True)
                entries.append({"datasetObjectId": str(oid), "consolidatedAnnotation": {"content": content}})
            key = f"{folder}/{consolidated_at:{_FILE_TIME}}.json"
            self.store.write_bytes(key, json.dumps(entries).encode(), "application/json")
            tree.human_finished_at[iteration] = consolidated_at

    def auto_iteration(self, iteration: int, object_ids: np.ndarray, artifact: bytes) -> None:
        tree = self.tree
        prefix = tree.job_prefix
        start = BASE_TIME + (iteration - 1) * ITERATION_SPACING + timedelta(hours=30)
        lines = []
        for row, oid in enumerate(object_ids.tolist()):
            tree.object_iteration[oid] = iteration
            self.created_at[oid] = start + timedelta(milliseconds=row, microseconds=417)
            tree.auto_finished_at[iteration] = self.created_at[oid]
            lines.append(f"{oid} {json.dumps(self.labeled_content(oid, human=False))}\n")
        self.store.write_bytes(
            f"{prefix}activelearning/{iteration}/auto-annotation/auto_annotator_output.txt",
            "".join(lines).encode(),
        )
        training_job = f"{tree.job_name[:40]}-auto-{iteration}"
        self.store.write_bytes(
            f"{prefix}training/{iteration}/auto-labeling/{training_job}/output/model.tar.gz", artifact
        )
        tree.training_jobs.append((iteration, training_job))
        tree.auto_images[iteration] = len(object_ids)
        tree.auto_boxes[iteration] = int(tree.box_counts[object_ids].sum())

    def output_manifest(self) -> None:
        tree = self.tree
        is_human = np.zeros(len(tree.source_refs), bool)
        is_human[tree.human_object_ids] = True
        failed = set(tree.failed_object_ids.tolist())
        lines = []
        for oid, source_ref in enumerate(tree.source_refs):
            line: dict[str, Any] = {"source-ref": source_ref}
            if oid in failed:
                line[self.meta_key] = {
                    "failure-reason": FAILURE_REASON,
                    "job-name": f"labeling-job/{tree.job_name}",
                }
            else:
                line |= self.labeled_content(oid, human=bool(is_human[oid]))
            lines.append(json.dumps(line) + "\n")
        self.store.write_bytes(f"{tree.job_prefix}manifests/output/output.manifest", "".join(lines).encode())


def write_labeling_job_tree(
    store: ObjectStore,
    job_prefix: str,
    *,
    n_images: int,
    workers: int,
    label_attribute: str = "category",
    iterations: int = 2,
    auto_fraction: float = 0.0,
    include_failed: bool = False,
    class_names: tuple[str, ...] = ("Bird",),
    seed: int = 0,
    source_prefix: str = "s3://bucket/prefix/images/",
) -> GeneratedTree:
    """Write a job's tree under ``job_prefix`` (``<output path>/<job name>/``) and return what it holds.

    Human objects are spread over iterations 1 .. ``iterations``, machine-labeled ones (``auto_fraction``
    of the labeled objects) over iterations 2 .. ``iterations``. With ``include_failed`` the middle object
    fails: it has a ``failure-reason`` line in the output manifest and nothing else.
    """
    if iterations < 1 or (auto_fraction > 0 and iterations < 2):
        raise ValueError("need at least one iteration, and two when auto-labeling (humans label first)")
    if n_images < 1 + include_failed or workers < 1:
        raise ValueError("need at least one labeled image and one worker")
    prefix = job_prefix if job_prefix.endswith("/") else job_prefix + "/"
    rng = np.random.default_rng(seed)
    sizes = np.stack([rng.integers(320, 1025, n_images), rng.integers(240, 769, n_images)], axis=1)
    box_counts = rng.integers(0, 4, n_images)
    failed = np.array([n_images // 2] if include_failed else [], dtype=np.int64)
    box_counts[failed] = 0
    labelable = np.setdiff1d(np.arange(n_images), failed)
    auto_ids = np.sort(rng.choice(labelable, size=round(auto_fraction * len(labelable)), replace=False))
    tree = GeneratedTree(
        job_prefix=prefix,
        job_name=prefix.rstrip("/").rsplit("/", 1)[-1],
        label_attribute=label_attribute,
        class_names=class_names,
        source_refs=[f"{source_prefix}{oid:016x}.jpg" for oid in range(n_images)],
        image_sizes=sizes,
        box_counts=box_counts,
        object_iteration=np.zeros(n_images, np.int64),
        human_object_ids=np.setdiff1d(labelable, auto_ids),
        auto_object_ids=auto_ids,
        failed_object_ids=failed,
    )
    writer = _TreeWriter(store, tree, rng, workers)
    for iteration, object_ids in _spread(tree.human_object_ids, 1, iterations).items():
        if len(object_ids):
            writer.human_iteration(iteration, object_ids)
    artifact = _empty_model_artifact()
    for iteration, object_ids in _spread(auto_ids, 2, max(iterations, 2)).items():
        if len(object_ids):
            writer.auto_iteration(iteration, object_ids, artifact)
    writer.output_manifest()
    return tree
