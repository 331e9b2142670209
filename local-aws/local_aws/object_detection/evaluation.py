"""The algorithm's ``validation:mAP``: mean average precision at one IoU threshold, as in MXNet's SSD.

For each class, detections of all images are taken in order of decreasing score; a detection is a true
positive when the ground-truth box of its class it overlaps most (IoU >= ``overlap_threshold``) is not yet
taken, else a false positive (PASCAL VOC's rule). AP is the area under the precision-recall curve with
precision made monotone (VOC 2010+, all points, MXNet's ``MApMetric``). The mAP averages AP over the
classes that have ground-truth boxes; with none at all it is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from local_aws.boxes import iou_matrix


@dataclass(frozen=True)
class ImageBoxes:
    """An image's ground-truth boxes."""

    boxes: np.ndarray  # (n, 4) xmin, ymin, xmax, ymax, in any unit shared with the detections
    class_ids: np.ndarray  # (n,) int


@dataclass(frozen=True)
class Detections:
    """An image's detections."""

    boxes: np.ndarray  # (n, 4)
    class_ids: np.ndarray  # (n,) int
    scores: np.ndarray  # (n,)


def average_precision(true_positive: np.ndarray, scores: np.ndarray, ground_truth_count: int) -> float:
    """All-point interpolated AP of one class's detections (flags and scores) against its box count."""
    if ground_truth_count == 0:
        raise ValueError("AP is undefined for a class without ground-truth boxes")
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(true_positive[order])
    recall = hits / ground_truth_count
    precision = hits / np.arange(1, len(order) + 1)
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    changes = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[changes + 1] - recall[changes]) * precision[changes + 1]))


def mean_average_precision(
    predictions: Sequence[Detections], ground_truths: Sequence[ImageBoxes], overlap_threshold: float
) -> float:
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} predictions for {len(ground_truths)} images")
    classes = sorted({int(c) for truth in ground_truths for c in truth.class_ids})
    if not classes:
        return 0.0
    aps = []
    for class_id in classes:
        flags: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        count = 0
        for prediction, truth in zip(predictions, ground_truths, strict=True):
            truth_boxes = truth.boxes[truth.class_ids == class_id]
            count += len(truth_boxes)
            mine = prediction.class_ids == class_id
            boxes, box_scores = prediction.boxes[mine], prediction.scores[mine]
            flags.append(_true_positives(boxes, box_scores, truth_boxes, overlap_threshold))
            scores.append(box_scores)
        aps.append(average_precision(np.concatenate(flags), np.concatenate(scores), count))
    return float(np.mean(aps))


def _true_positives(
    boxes: np.ndarray, scores: np.ndarray, truth: np.ndarray, overlap_threshold: float
) -> np.ndarray:
    """Per detection of one class in one image: whether it is a true positive (VOC matching)."""
    flags = np.zeros(len(boxes), np.float64)
    if not len(boxes) or not len(truth):
        return flags
    iou = iou_matrix(boxes, truth)
    taken = np.zeros(len(truth), bool)
    for index in np.argsort(-scores, kind="stable"):
        best = int(np.argmax(iou[index]))
        if iou[index, best] >= overlap_threshold and not taken[best]:
            taken[best] = True
            flags[index] = 1.0
    return flags
