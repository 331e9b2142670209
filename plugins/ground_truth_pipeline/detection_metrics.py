"""Standard detection metrics of consolidated labels against reference boxes, computed by faster-coco-eval.

The consolidated boxes are the detections (scored by their confidence), the reference boxes the ground truth.
Everything is evaluated as one class: category ids are ignored. Boxes go to the library in pixel xywh of
each image. An Open Images group box (``is_group``) becomes a COCO ``iscrowd`` region: a detection that falls
inside it is ignored, neither rewarded nor penalised, and a group box that nothing detects is no miss.

Undefined ratios are nan: precision without any counted detection, recall and AP without any non-group
reference box (the library's -1 "no ground truth" is returned as nan).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from faster_coco_eval import COCO, COCOeval_faster

from ground_truth_pipeline.boxes import BoxTable

CATEGORY_ID = 1
MAX_DETECTIONS_PER_IMAGE = 100
MATCH_IOU = 0.5


@dataclass(frozen=True)
class DetectionMetrics:
    """Detection quality of a dataset's consolidated boxes against its reference boxes.

    ``precision`` and ``recall`` are at IoU 0.5 over all box sizes with at most 100 detections per image
    (the highest-scoring ones), from the library's own matching: true positives over detections (those that
    were evaluated and not ignored inside a group box), and true positives over non-group reference boxes.
    ``ap50`` is COCO AP at IoU 0.5 and ``ap`` COCO AP averaged over IoU 0.5:0.95.
    ``n_detections`` counts all consolidated boxes, ``n_references`` the non-group reference boxes.
    """

    precision: float
    recall: float
    ap50: float
    ap: float
    n_images: int
    n_detections: int
    n_references: int


def detection_metrics(
    consolidated: BoxTable, reference: BoxTable, image_sizes: np.ndarray
) -> DetectionMetrics:
    """COCO metrics of ``consolidated`` (detections) against ``reference`` (ground truth).

    ``image_sizes`` is ``(N, 2)`` pixel width, height of images ``0 .. N - 1``; box ``image`` indexes it.
    """
    sizes = _checked_image_sizes(image_sizes)
    n_images = len(sizes)
    _check_images(consolidated, n_images, "consolidated")
    _check_images(reference, n_images, "reference")
    ground_truth = COCO(_ground_truth_dataset(reference, sizes), print_function=_silent)
    detections = ground_truth.loadRes(_detection_annotations(consolidated, sizes))

    averaged = _evaluation(ground_truth, detections)
    averaged.evaluate()
    averaged.accumulate()
    averaged.summarize()
    stats = averaged.stats_as_dict

    matching = _evaluation(ground_truth, detections, extra_calc=True)
    matching.params.iouThrs = np.array([MATCH_IOU])
    matching.params.areaRng = [matching.params.areaRng[0]]
    matching.params.areaRngLbl = [matching.params.areaRngLbl[0]]
    matching.params.maxDets = [MAX_DETECTIONS_PER_IMAGE]
    matching.evaluate()
    matching.accumulate()

    is_group = reference.is_group
    matched_reference_rows = np.array(
        [int(pair.split("_", 1)[1]) - 1 for pair in matching.eval["matched"]], dtype=np.int64
    )
    matched_group = is_group[matched_reference_rows]
    true_positives = int(np.count_nonzero(~matched_group))
    evaluated = int(np.minimum(consolidated.counts(n_images), MAX_DETECTIONS_PER_IMAGE).sum())
    counted_detections = evaluated - int(np.count_nonzero(matched_group))
    n_references = int(np.count_nonzero(~is_group))
    return DetectionMetrics(
        precision=_ratio(true_positives, counted_detections),
        recall=_ratio(true_positives, n_references),
        ap50=_defined(stats["AP_50"]),
        ap=_defined(stats["AP_all"]),
        n_images=n_images,
        n_detections=len(consolidated),
        n_references=n_references,
    )


def _evaluation(ground_truth: COCO, detections: COCO, extra_calc: bool = False) -> COCOeval_faster:
    return COCOeval_faster(ground_truth, detections, "bbox", print_function=_silent, extra_calc=extra_calc)


def _ground_truth_dataset(reference: BoxTable, sizes: np.ndarray) -> dict[str, Any]:
    """A COCO ground-truth dict: image ``i`` has id ``i + 1``, reference row ``j`` annotation id ``j + 1``."""
    xywh = _pixel_xywh(reference, sizes)
    return {
        "images": [
            {"id": index + 1, "width": int(width), "height": int(height)}
            for index, (width, height) in enumerate(sizes)
        ],
        "categories": [{"id": CATEGORY_ID, "name": "object"}],
        "annotations": [
            {
                "id": row + 1,
                "image_id": int(image) + 1,
                "category_id": CATEGORY_ID,
                "bbox": box,
                "area": box[2] * box[3],
                "iscrowd": int(group),
            }
            for row, (image, box, group) in enumerate(
                zip(reference.image, xywh.tolist(), reference.is_group, strict=True)
            )
        ],
    }


def _detection_annotations(consolidated: BoxTable, sizes: np.ndarray) -> list[dict[str, Any]]:
    xywh = _pixel_xywh(consolidated, sizes)
    return [
        {"image_id": int(image) + 1, "category_id": CATEGORY_ID, "bbox": box, "score": float(score)}
        for image, box, score in zip(consolidated.image, xywh.tolist(), consolidated.score, strict=True)
    ]


def _pixel_xywh(boxes: BoxTable, sizes: np.ndarray) -> np.ndarray:
    scale = np.tile(sizes[boxes.image], 2)
    pixels = boxes.xyxy * scale
    return np.concatenate([pixels[:, :2], pixels[:, 2:] - pixels[:, :2]], axis=1)


def _checked_image_sizes(image_sizes: np.ndarray) -> np.ndarray:
    sizes = np.asarray(image_sizes, dtype=np.float64)
    if sizes.ndim != 2 or sizes.shape[1] != 2:
        raise ValueError(f"image_sizes has shape {sizes.shape}, expected (N, 2) width, height")
    if len(sizes) and not np.all(np.isfinite(sizes) & (sizes > 0)):
        bad = int(np.flatnonzero(~(np.isfinite(sizes) & (sizes > 0)).all(axis=1))[0])
        raise ValueError(f"image_sizes[{bad}] = {sizes[bad].tolist()}: width and height must be positive")
    return sizes


def _check_images(boxes: BoxTable, n_images: int, name: str) -> None:
    outside = (boxes.image < 0) | (boxes.image >= n_images)
    if outside.any():
        bad = int(boxes.image[outside][0])
        raise ValueError(f"{name} boxes reference image {bad}, but image_sizes has {n_images} images")


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def _defined(library_value: float) -> float:
    return float("nan") if library_value < 0 else float(library_value)


def _silent(*_args: object, **_kwargs: object) -> None:
    """Print function for the library, which reports progress and summaries through one."""
