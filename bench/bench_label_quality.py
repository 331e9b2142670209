"""Quality of the local stack's consolidated labels against the reference boxes, for 1, 3 and 5 workers.

The images are those the DAG labels after ``python -m local_aws seed``: the seeded synthetic Open Images
(seed 0, 2,500 images), of which the first ``--images`` (default 1,000) with a Bird or a bird species are
chosen by the pipeline's own selection (``select_images`` over the bounding-box CSV, in file order). Each
image is labeled as a local labeling job labels it, without S3: the job's simulated crowd (one fixed job
name, object id = line of the manifest) draws the worker boxes of the Bird reference boxes
(``targets_of``), and the engine's ``consolidate`` merges them. On the same worker boxes, in the same run:

- weighted boxes fusion (``ensemble_boxes.weighted_boxes_fusion``) with its defaults: normalised boxes,
  every worker weight 1 and every box score 1, ``iou_thr=0.55``, ``skip_box_thr=0.0``, ``conf_type="avg"``,
  so a fused box scores (number of boxes fused, at most the workers) / workers, and every box is kept;
- single workers: the boxes of the k-th worker assigned to each image, as a job with one worker would
  label, each box scored 1.0 (a worker states no confidence); the best and the mean over k are reported;
- each person of the crowd on the images they labeled, against the consolidated labels of those images.

Every method is scored by the pipeline's own metrics: COCO AP50 of ``detection_metrics`` (group reference
boxes are crowd regions) and the mean of ``class_blind_image_miou``. Deterministic; prints a table and the
targets (with 5 workers: AP50 >= 0.95, above every single worker, no worse than WBF) and writes
``bench/results/label_quality.json``. Nothing is asserted.

Usage: ``.venv/bin/python bench/bench_label_quality.py [--images N] [--dataset-images N]``
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ensemble_boxes import weighted_boxes_fusion

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from ground_truth_pipeline.boxes import BoxTable  # noqa: E402
from ground_truth_pipeline.detection_metrics import detection_metrics  # noqa: E402
from ground_truth_pipeline.metrics import class_blind_image_miou  # noqa: E402
from ground_truth_pipeline.open_images import (  # noqa: E402
    NotEnoughImagesError,
    class_and_subclasses,
    reference_box_table,
    select_images,
)
from local_aws.boxes import PixelBox  # noqa: E402
from local_aws.groundtruth.consolidation import IOU_THRESHOLD, consolidate  # noqa: E402
from local_aws.groundtruth.crowd import Crowd, targets_of  # noqa: E402
from local_aws.reference_index import ReferenceImage  # noqa: E402
from local_aws.synthetic_open_images import (  # noqa: E402
    DEFAULT_IMAGES,
    MIDS,
    bbox_csv,
    hierarchy,
    iter_images,
    names_with_ancestors,
)

CLASS_NAME = "Bird"
DATASET_SEED = 0
DEFAULT_LABELED_IMAGES = 1000
JOB_NAME = "bench-label-quality"
REGION = "us-east-1"
TASK_TIME_LIMIT_S = 300
WORKER_COUNTS = (1, 3, 5)
WBF_SETTINGS = {"iou_thr": 0.55, "skip_box_thr": 0.0, "conf_type": "avg", "weights": None}
TARGET_WORKERS = 5
TARGET_AP50 = 0.95
RESULTS = ROOT / "bench" / "results" / "label_quality.json"


@dataclass(frozen=True)
class LabeledImage:
    """One selected image: its size and its reference boxes, all classes, as the crowd reads them."""

    image_id: str
    width: int
    height: int
    reference: ReferenceImage


@dataclass(frozen=True)
class Quality:
    ap50: float
    miou: float
    precision: float  # at IoU 0.5, from detection_metrics: all boxes, whatever their score
    recall: float
    ap: float  # COCO AP averaged over IoU 0.5:0.95

    @classmethod
    def mean(cls, qualities: Sequence[Quality]) -> Quality:
        return cls(
            *(float(np.mean([getattr(q, name) for q in qualities])) for name in cls.__dataclass_fields__)
        )


@dataclass(frozen=True)
class Row:
    """The qualities of one worker count; single workers are the k-th assigned worker of each image."""

    workers: int
    consolidated: Quality
    wbf: Quality
    best_single: Quality
    mean_single: Quality
    single_by_slot: tuple[Quality, ...]
    persons: int
    # Persons of the crowd whose AP50 on the images they labeled is below the consolidated AP50 there, and
    # the smallest consolidated-minus-person AP50 difference.
    persons_beaten_ap50: int
    min_ap50_margin_over_persons: float


Answers = list[list[tuple[int, list[PixelBox]]]]  # per image: (population index, boxes) per assigned worker


def selected_images(labeled: int, dataset_images: int) -> tuple[list[LabeledImage], BoxTable]:
    """The first ``labeled`` images of the class in the seeded dataset's CSV, and their reference table."""
    generated = {image.image_id: image for image in iter_images(dataset_images, seed=DATASET_SEED)}
    csv_text = bbox_csv({image_id: image.annotations for image_id, image in generated.items()}).decode()
    class_mids = class_and_subclasses(hierarchy(), MIDS[CLASS_NAME])
    try:
        selection = select_images(io.StringIO(csv_text), class_mids, labeled)
    except NotEnoughImagesError as err:
        raise SystemExit(f"--images {labeled}: {err}; raise --dataset-images") from None
    images = [
        LabeledImage(
            selected.image_id,
            generated[selected.image_id].width,
            generated[selected.image_id].height,
            generated[selected.image_id].reference,
        )
        for selected in selection.labeled
    ]
    reference = reference_box_table(
        {selected.image_id: selected for selected in selection.labeled},
        [selected.image_id for selected in selection.labeled],
    )
    return images, reference


def crowd_answers(images: Sequence[LabeledImage], workers: int) -> Answers:
    """The worker boxes of each image, drawn as a local labeling job of ``JOB_NAME`` draws them."""
    crowd = Crowd(JOB_NAME, REGION)
    class_names = names_with_ancestors()
    answers: Answers = []
    for object_id, image in enumerate(images):
        targets = targets_of(image.reference, [CLASS_NAME], class_names, image.width, image.height)
        size = (image.width, image.height)
        answers.append(
            [
                (
                    worker,
                    crowd.answer(worker, object_id, targets, [CLASS_NAME], size, TASK_TIME_LIMIT_S).boxes,
                )
                for worker in crowd.assign(object_id, workers)
            ]
        )
    return answers


def _normalised(boxes: Sequence[PixelBox], image: LabeledImage) -> np.ndarray:
    scale = np.array([image.width, image.height, image.width, image.height], dtype=np.float64)
    return np.array([box.xyxy for box in boxes], dtype=np.float64).reshape(-1, 4) / scale


def _table(per_image: Sequence[tuple[np.ndarray, np.ndarray]]) -> BoxTable:
    """A table of per-image ``(normalised xyxy (k, 4), scores (k,))``, image ``i`` at position ``i``."""
    counts = [len(xyxy) for xyxy, _ in per_image]
    return BoxTable.build(
        image=np.repeat(np.arange(len(per_image)), counts),
        xyxy=np.concatenate([xyxy for xyxy, _ in per_image]) if per_image else np.zeros((0, 4)),
        score=np.concatenate([score for _, score in per_image]) if per_image else np.zeros(0),
    )


def consolidated_table(images: Sequence[LabeledImage], answers: Answers) -> BoxTable:
    per_image = []
    for image, image_answers in zip(images, answers, strict=True):
        fused = consolidate([boxes for _, boxes in image_answers], image.width, image.height)
        per_image.append(
            (_normalised([c.box for c in fused], image), np.array([c.confidence for c in fused]))
        )
    return _table(per_image)


def wbf_table(images: Sequence[LabeledImage], answers: Answers) -> BoxTable:
    per_image = []
    for image, image_answers in zip(images, answers, strict=True):
        boxes = [_normalised(worker_boxes, image) for _, worker_boxes in image_answers]
        fused, scores, _ = weighted_boxes_fusion(
            [b.tolist() for b in boxes],
            [[1.0] * len(b) for b in boxes],
            [[0] * len(b) for b in boxes],
            **WBF_SETTINGS,
        )
        per_image.append((np.asarray(fused, dtype=np.float64), np.asarray(scores, dtype=np.float64)))
    return _table(per_image)


def slot_table(images: Sequence[LabeledImage], answers: Answers, slot: int) -> BoxTable:
    """The boxes of the ``slot``-th worker assigned to each image, scored 1.0."""
    per_image = []
    for image, image_answers in zip(images, answers, strict=True):
        xyxy = _normalised(image_answers[slot][1], image)
        per_image.append((xyxy, np.ones(len(xyxy))))
    return _table(per_image)


def person_table(
    images: Sequence[LabeledImage], answers: Answers, person: int
) -> tuple[BoxTable, np.ndarray]:
    """The boxes of population worker ``person``, scored 1.0, and the indices of the images they labeled."""
    labeled = np.array([i for i, a in enumerate(answers) if any(w == person for w, _ in a)], dtype=np.int64)
    per_image = []
    for i in labeled:
        boxes = next(boxes for worker, boxes in answers[i] if worker == person)
        xyxy = _normalised(boxes, images[i])
        per_image.append((xyxy, np.ones(len(xyxy))))
    return _table(per_image), labeled


def restricted(table: BoxTable, indices: np.ndarray, n_images: int) -> BoxTable:
    """The boxes of images ``indices``, re-indexed so that ``indices[j]`` becomes image ``j``."""
    new_index = np.full(n_images, -1, dtype=np.int64)
    new_index[indices] = np.arange(len(indices))
    rows = table.select(new_index[table.image] >= 0)
    return BoxTable(
        image=new_index[rows.image],
        xyxy=rows.xyxy,
        score=rows.score,
        class_id=rows.class_id,
        is_group=rows.is_group,
        worker=rows.worker,
    )


class Scorer:
    """AP50 and mean per-image mIoU of detections against the reference, on all images or a subset."""

    def __init__(self, reference: BoxTable, sizes: np.ndarray) -> None:
        self.reference = reference
        self.sizes = sizes

    def quality(self, detections: BoxTable, indices: np.ndarray | None = None) -> Quality:
        reference, sizes = self.reference, self.sizes
        if indices is not None:
            reference = restricted(reference, indices, len(sizes))
            sizes = sizes[indices]
        detection = detection_metrics(detections, reference, sizes)
        miou = float(class_blind_image_miou(detections, reference, len(sizes)).mean())
        return Quality(detection.ap50, miou, detection.precision, detection.recall, detection.ap)


def evaluate_row(images: Sequence[LabeledImage], scorer: Scorer, workers: int) -> Row:
    answers = crowd_answers(images, workers)
    consolidated = consolidated_table(images, answers)
    singles = tuple(scorer.quality(slot_table(images, answers, slot)) for slot in range(workers))
    best = max(singles, key=lambda q: q.ap50)
    gaps = []
    for person in sorted({worker for image_answers in answers for worker, _ in image_answers}):
        boxes, labeled = person_table(images, answers, person)
        person_ap50 = scorer.quality(boxes, labeled).ap50
        consolidated_ap50 = scorer.quality(restricted(consolidated, labeled, len(images)), labeled).ap50
        gaps.append(consolidated_ap50 - person_ap50)
    defined = [gap for gap in gaps if np.isfinite(gap)]
    return Row(
        workers=workers,
        consolidated=scorer.quality(consolidated),
        wbf=scorer.quality(wbf_table(images, answers)),
        best_single=best,
        mean_single=Quality.mean(singles),
        single_by_slot=singles,
        persons=len(defined),
        persons_beaten_ap50=sum(gap > 0 for gap in defined),
        min_ap50_margin_over_persons=min(defined, default=float("nan")),
    )


def targets(rows: Sequence[Row]) -> dict[str, bool]:
    row = next(r for r in rows if r.workers == TARGET_WORKERS)
    return {
        f"{TARGET_WORKERS} workers: consolidated AP50 >= {TARGET_AP50}": row.consolidated.ap50 >= TARGET_AP50,
        f"{TARGET_WORKERS} workers: consolidated AP50 > best single worker (k-th assigned worker)": (
            row.consolidated.ap50 > row.best_single.ap50
        ),
        f"{TARGET_WORKERS} workers: consolidated AP50 > every person of the crowd, on their images": (
            row.persons > 0 and row.persons_beaten_ap50 == row.persons
        ),
        f"{TARGET_WORKERS} workers: consolidated AP50 >= WBF AP50": row.consolidated.ap50 >= row.wbf.ap50,
    }


def print_table(rows: Sequence[Row], n_images: int, seconds: float) -> None:
    methods = {
        "consolidated": "consolidated",
        "wbf": "WBF",
        "best_single": "best single",
        "mean_single": "mean single",
    }
    print(f"Label quality of {n_images} {CLASS_NAME} images ({seconds:.0f} s)")
    for title, fields, width in (
        ("AP50 / mean image mIoU", ("ap50", "miou"), 15),
        ("precision / recall at IoU 0.5 / COCO AP 0.5:0.95", ("precision", "recall", "ap"), 24),
    ):
        header = " | ".join([f"{'workers':>7}", *(f"{name:^{width}}" for name in methods.values())])
        if fields[0] == "ap50":
            header += " | persons beaten (AP50)"
        print(f"\n{title}\n{header}\n{'-' * len(header)}")
        for row in rows:
            cells = [
                " / ".join(f"{getattr(getattr(row, method), field):.4f}" for field in fields)
                for method in methods
            ]
            if fields[0] == "ap50":
                cells.append(f"{row.persons_beaten_ap50} of {row.persons}")
            print(" | ".join([f"{row.workers:>7}", *cells]))
    print()


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--images", type=_positive("--images"), default=DEFAULT_LABELED_IMAGES, help="images to label"
    )
    parser.add_argument(
        "--dataset-images",
        type=_positive("--dataset-images"),
        default=DEFAULT_IMAGES,
        help="size of the seeded dataset the images are selected from",
    )
    return parser.parse_args(argv)


def _positive(name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be at least 1, got {value}")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    started = time.perf_counter()
    images, reference = selected_images(args.images, args.dataset_images)
    sizes = np.array([[image.width, image.height] for image in images], dtype=np.float64)
    scorer = Scorer(reference, sizes)
    rows = [evaluate_row(images, scorer, workers) for workers in WORKER_COUNTS]
    seconds = time.perf_counter() - started
    print_table(rows, len(images), seconds)
    met = targets(rows)
    for name, ok in met.items():
        print(f"{'MET    ' if ok else 'NOT MET'} {name}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "settings": {
            "class": CLASS_NAME,
            "dataset_seed": DATASET_SEED,
            "dataset_images": args.dataset_images,
            "labeled_images": len(images),
            "reference_boxes": len(reference),
            "reference_group_boxes": int(reference.is_group.sum()),
            "job_name": JOB_NAME,
            "consolidation_iou_threshold": IOU_THRESHOLD,
            "wbf": {**WBF_SETTINGS, "weights": "1 per worker", "box_scores": 1.0, "labels": "one class"},
            "single_worker_box_score": 1.0,
            "metrics": "COCO AP50 (detection_metrics) and mean per-image mIoU (class_blind_image_miou)",
        },
        "rows": [asdict(row) for row in rows],
        "targets": met,
        "seconds": round(seconds, 1),
        "python": platform.python_version(),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
