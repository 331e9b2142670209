"""Consolidation of the workers' boxes of one image: the built-in ACS-BoundingBox behaviour.

AWS documents only that boxes of different workers are matched by IoU and the most similar ones averaged;
its confidence formula is not public. This module does it as follows, for the answers of n workers:

1. Matching. Boxes of different workers are grouped into clusters holding at most one box per worker. All
   pairs of boxes of two different workers with IoU >= ``IOU_THRESHOLD`` are taken in decreasing IoU; a pair
   joins its two clusters when they share no worker and the clusters' mean boxes still overlap with IoU >=
   the threshold, so that a chain of slightly overlapping boxes does not merge. Labels do not stop a match:
   a worker who picked the wrong label still boxed the object, and the majority decides the label.
2. Support. A cluster drawn by fewer than ``min_support(n)`` workers is dropped: with one or two workers
   every box is kept (no majority can be told apart), otherwise at least two workers and a third of them
   must have drawn it. One worker's stray box never survives when three or more workers saw the image.
3. Group boxes. A box drawn by a minority of the workers that encloses two or more kept boxes, each drawn by
   more workers than itself, and is about their hull (IoU >= the threshold), is a box around a group while
   the others boxed the objects one by one: it is dropped. (A large object with smaller ones in front of it
   is not their hull, and a box most workers drew stays.)
4. Fusion. Each edge (left, top, right, bottom) is the mean of the cluster's edges; with four or more boxes
   the lowest and the highest value of each edge are left out first (a trimmed mean), so one worker's
   sloppy edge, such as a box stretched over a hidden part, does not drag the result.
5. Confidence = (support / n) x (mean IoU of the cluster's boxes with the fused box), rounded to two
   decimals: in [0, 1], rising with the number of workers who drew the box and with how closely they
   agreed. A single worker has no one to agree with: every box gets 0.00, as AWS reports it.

Boxes are returned by decreasing confidence (then top to bottom, left to right).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from local_aws.boxes import PixelBox, iou_matrix, pixel_box

IOU_THRESHOLD = 0.5
# A box counts as enclosed by a group box when this fraction of its area lies inside it.
ENCLOSED_FRACTION = 0.8


@dataclass(frozen=True)
class ConsolidatedBox:
    box: PixelBox
    confidence: float
    support: int  # workers who drew it


def min_support(workers: int) -> int:
    """Workers who must have drawn a box for it to be kept."""
    if workers <= 2:
        return 1
    return max(2, math.ceil(workers / 3))


def consolidate(
    answers: Sequence[Sequence[PixelBox]], image_width: int, image_height: int
) -> list[ConsolidatedBox]:
    """The consolidated boxes of one image from each worker's boxes (``answers[w]``, possibly empty)."""
    n = len(answers)
    if n == 0:
        raise ValueError("consolidation needs the answer of at least one worker")
    if n == 1:
        return [ConsolidatedBox(box, 0.0, 1) for box in answers[0]]
    boxes = [box for answer in answers for box in answer]
    if not boxes:
        return []
    xyxy = np.array([box.xyxy for box in boxes], dtype=np.float64)
    worker = np.array([w for w, answer in enumerate(answers) for _ in answer])
    clusters = [c for c in _match(xyxy, worker) if len(c) >= min_support(n)]
    if not clusters:
        return []
    fused = np.array([_fuse(xyxy[c]) for c in clusters])
    support = np.array([len(c) for c in clusters])
    kept = [k for k in range(len(clusters)) if not _is_minority_group_box(k, fused, support, n)]
    result = []
    for k in kept:
        members = clusters[k]
        agreement = float(iou_matrix(xyxy[members], fused[k : k + 1]).mean())
        label = Counter(boxes[m].label for m in members).most_common(1)[0][0]
        box = pixel_box(label, fused[k], image_width, image_height)
        if box is not None:
            result.append(ConsolidatedBox(box, round(float(support[k]) / n * agreement, 2), int(support[k])))
    return sorted(result, key=lambda c: (-c.confidence, c.box.top, c.box.left))


def _match(xyxy: np.ndarray, worker: np.ndarray) -> list[list[int]]:
    """Clusters of box indices, at most one box per worker each, in the order of their first box."""
    iou = iou_matrix(xyxy, xyxy)
    first, second = np.triu_indices(len(xyxy), k=1)
    candidate = (worker[first] != worker[second]) & (iou[first, second] >= IOU_THRESHOLD)
    first, second = first[candidate], second[candidate]
    order = np.lexsort((second, first, -iou[first, second]))
    cluster_of = list(range(len(xyxy)))
    members: dict[int, list[int]] = {k: [k] for k in range(len(xyxy))}
    for a, b in zip(first[order].tolist(), second[order].tolist(), strict=True):
        ca, cb = cluster_of[a], cluster_of[b]
        if ca == cb or set(worker[members[ca]]) & set(worker[members[cb]]):
            continue
        means = np.stack([xyxy[members[ca]].mean(axis=0), xyxy[members[cb]].mean(axis=0)])
        if iou_matrix(means[:1], means[1:])[0, 0] < IOU_THRESHOLD:
            continue
        keep, gone = min(ca, cb), max(ca, cb)
        for m in members[gone]:
            cluster_of[m] = keep
        members[keep].extend(members.pop(gone))
    return [sorted(m) for _, m in sorted(members.items())]


def _fuse(edges: np.ndarray) -> np.ndarray:
    """Edge-wise mean of a cluster's boxes, trimmed of each edge's extremes when there are four or more."""
    if len(edges) >= 4:
        edges = np.sort(edges, axis=0)[1:-1]
    return edges.mean(axis=0)


def _is_minority_group_box(k: int, fused: np.ndarray, support: np.ndarray, workers: int) -> bool:
    if 2 * support[k] >= workers:
        return False
    box = fused[k]
    others = np.flatnonzero((np.arange(len(fused)) != k) & (support > support[k]))
    inner = fused[others]
    width = np.clip(np.minimum(inner[:, 2], box[2]) - np.maximum(inner[:, 0], box[0]), 0, None)
    height = np.clip(np.minimum(inner[:, 3], box[3]) - np.maximum(inner[:, 1], box[1]), 0, None)
    area = (inner[:, 2] - inner[:, 0]) * (inner[:, 3] - inner[:, 1])
    enclosed = inner[width * height >= ENCLOSED_FRACTION * area]
    if len(enclosed) < 2:
        return False
    hull = np.array([[*enclosed[:, :2].min(axis=0), *enclosed[:, 2:].max(axis=0)]])
    return bool(iou_matrix(hull, box[None, :])[0, 0] >= IOU_THRESHOLD)
