"""Per-image agreement between consolidated boxes and reference boxes: mIoU and confidence.

All functions work on whole datasets at once: boxes are padded into dense ``(images, slots, 4)`` arrays and
matched with numpy, looping over box slots and chunks of images, never over single images or boxes.

Boxes are matched **within their own image only**. The reference notebook's group mIoU pooled the boxes of
all images into one notional image, so a box of one image could match a box of another; here a group's
mIoU pools the per-image results instead (see :func:`group_miou`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ground_truth_pipeline.boxes import BoxTable

DEFAULT_QUANTILES = np.linspace(0.0, 0.9, 10)

# Images are matched in chunks of at most this many (image, consolidated, reference) IoU entries: memory
# stays bounded when a few images have many boxes (every image is padded to the largest box count), and a
# chunk's arrays (1 MiB each) stay in the CPU cache, which makes the matching about twice as fast.
_IOU_ENTRIES_PER_CHUNK = 1 << 17


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a (N, K, 4)`` with every box of ``b (N, M, 4)`` in the same image: ``(N, K, M)``.

    Boxes are xyxy. Pairs whose union is empty (two zero-area boxes) have IoU 0.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 3 or a.shape[2] != 4:
        raise ValueError(f"pairwise_iou: a has shape {a.shape}, expected (N, K, 4)")
    if b.ndim != 3 or b.shape[2] != 4:
        raise ValueError(f"pairwise_iou: b has shape {b.shape}, expected (N, M, 4)")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"pairwise_iou: a has {a.shape[0]} images and b has {b.shape[0]}, expected the same")
    a_x0, a_y0, a_x1, a_y1 = (a[:, :, None, i] for i in range(4))
    b_x0, b_y0, b_x1, b_y1 = (b[:, None, :, i] for i in range(4))
    intersection = np.minimum(a_x1, b_x1)
    intersection -= np.maximum(a_x0, b_x0)
    np.maximum(intersection, 0.0, out=intersection)
    inter_h = np.minimum(a_y1, b_y1)
    inter_h -= np.maximum(a_y0, b_y0)
    np.maximum(inter_h, 0.0, out=inter_h)
    intersection *= inter_h
    union = np.add(_area(a)[:, :, None], _area(b)[:, None, :], out=inter_h)
    union -= intersection
    return np.divide(intersection, union, out=intersection, where=union > 0)


def image_miou(consolidated: BoxTable, reference: BoxTable, n_images: int) -> np.ndarray:
    """mIoU of each image ``0 .. n_images - 1`` between its consolidated and its reference boxes, ``(N,)``.

    Semantics of the reference notebook's helper:

    - 1.0 when the image has neither consolidated nor reference boxes, 0.0 when exactly one side is empty;
    - otherwise the consolidated boxes are taken in order of decreasing score (ties: table order); each takes
      the still-unmatched reference box with the highest IoU (ties: the earlier reference box in table order).
      Any IoU above 0 is a match: there is no threshold and classes are ignored;
    - mIoU = sum of matched IoUs / (number of consolidated boxes + number of reference boxes left unmatched).

    Boxes are only ever matched with boxes of the same image.
    """
    matched_iou, denominator = _matched_iou_and_denominator(consolidated, reference, n_images)
    return matched_iou / denominator


def image_confidence(consolidated: BoxTable, n_images: int) -> np.ndarray:
    """Mean score of each image's consolidated boxes, ``(N,)``; 0 for an image without boxes."""
    _check_images(consolidated, n_images, "consolidated")
    counts = consolidated.counts(n_images)
    score_sums = np.bincount(consolidated.image, weights=consolidated.score, minlength=n_images)[:n_images]
    confidence = np.zeros(n_images)
    np.divide(score_sums, counts, out=confidence, where=counts > 0)
    return confidence


def group_miou(consolidated: BoxTable, reference: BoxTable, image_indices: np.ndarray) -> float:
    """mIoU of a group of images, pooling per-image matches: never matching boxes across images.

    Each image is matched as in :func:`image_miou`; the group's mIoU is the sum of all matched IoUs over the
    sum of all the images' denominators, an image with no boxes on either side counting as a perfect 1 / 1.
    An empty group has mIoU nan.
    """
    indices = _group_indices(image_indices)
    matched_iou, denominator = _matched_iou_and_denominator(
        _restrict_to_images(consolidated, indices), _restrict_to_images(reference, indices), len(indices)
    )
    return _pooled_miou(matched_iou, denominator)


def miou_by_confidence_threshold(
    consolidated: BoxTable,
    reference: BoxTable,
    n_images: int,
    image_indices: np.ndarray,
    quantiles: np.ndarray = DEFAULT_QUANTILES,
) -> tuple[np.ndarray, np.ndarray]:
    """Group mIoU of the most confident images of a group, for rising confidence thresholds.

    For each quantile ``q`` of the group's image confidences (linear interpolation), the group mIoU of the
    images whose confidence is strictly greater than that quantile, so ``q = 0`` already drops the images at
    the lowest confidence (the notebook's "top x% of images by confidence" plot). Returns
    ``(top_percent, group_miou_values)`` with ``top_percent = 100 - 100 q``; a threshold that leaves no image,
    or an empty group, gives nan.
    """
    quantiles = np.asarray(quantiles, dtype=np.float64).reshape(-1)
    if np.any((quantiles < 0) | (quantiles > 1)):
        raise ValueError(f"miou_by_confidence_threshold: quantiles must lie in [0, 1], got {quantiles}")
    indices = _group_indices(image_indices)
    if len(indices) and indices[-1] >= n_images:
        raise ValueError(f"image_indices holds image {indices[-1]}, outside 0..{n_images - 1}")
    top_percent = 100.0 - quantiles * 100.0
    values = np.full(len(quantiles), np.nan)
    if not len(indices):
        return top_percent, values
    _check_images(reference, n_images, "reference")
    confidence = image_confidence(consolidated, n_images)[indices]
    matched_iou, denominator = _matched_iou_and_denominator(
        _restrict_to_images(consolidated, indices), _restrict_to_images(reference, indices), len(indices)
    )
    for i, threshold in enumerate(np.quantile(confidence, quantiles)):
        selected = confidence > threshold
        values[i] = _pooled_miou(matched_iou[selected], denominator[selected])
    return top_percent, values


def _matched_iou_and_denominator(
    consolidated: BoxTable, reference: BoxTable, n_images: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per image: sum of matched IoUs and the mIoU denominator, ``(N,)`` each; 1 and 1 when both are empty.

    The one implementation of the greedy matching that every mIoU in this module is built on.
    """
    _check_images(consolidated, n_images, "consolidated")
    _check_images(reference, n_images, "reference")
    consolidated_xyxy, _, _ = consolidated.padded(n_images, by_score=True)
    reference_xyxy, _, _ = reference.padded(n_images)
    n_matched = np.zeros(n_images, np.int64)
    matched_iou = np.zeros(n_images)
    cells = max(consolidated_xyxy.shape[1] * reference_xyxy.shape[1], 1)
    chunk = max(_IOU_ENTRIES_PER_CHUNK // cells, 1)
    for start in range(0, n_images, chunk):
        rows = slice(start, start + chunk)
        matched_iou[rows], n_matched[rows] = _greedy_match(consolidated_xyxy[rows], reference_xyxy[rows])
    n_consolidated = consolidated.counts(n_images)
    n_reference = reference.counts(n_images)
    denominator = (n_consolidated + n_reference - n_matched).astype(np.float64)
    both_empty = (n_consolidated == 0) & (n_reference == 0)
    matched_iou[both_empty] = 1.0
    denominator[both_empty] = 1.0
    return matched_iou, denominator


def _greedy_match(consolidated: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matches score-ordered consolidated slots greedily to reference slots: (IoU sum, matches) per image."""
    n_images = len(consolidated)
    matched_iou = np.zeros(n_images)
    n_matched = np.zeros(n_images, np.int64)
    if reference.shape[1] == 0:
        return matched_iou, n_matched
    # Padding slots hold zero boxes, whose IoU with anything is 0: they can never match.
    iou = pairwise_iou(consolidated, reference)
    rows = np.arange(n_images)
    available = np.ones(reference.shape[:2])
    for slot in range(iou.shape[1]):
        candidates = iou[:, slot, :] * available
        best = np.argmax(candidates, axis=1)
        best_iou = candidates[rows, best]
        hit = best_iou > 0.0
        matched_iou += best_iou
        n_matched += hit
        available[rows[hit], best[hit]] = 0.0
    return matched_iou, n_matched


def _pooled_miou(matched_iou: np.ndarray, denominator: np.ndarray) -> float:
    if not len(denominator):
        return float("nan")
    return float(matched_iou.sum() / denominator.sum())


def _area(xyxy: np.ndarray) -> np.ndarray:
    width = np.clip(xyxy[..., 2] - xyxy[..., 0], 0.0, None)
    height = np.clip(xyxy[..., 3] - xyxy[..., 1], 0.0, None)
    return width * height


def _group_indices(image_indices: np.ndarray) -> np.ndarray:
    """The group's image indices, sorted; rejects non-integer, negative and repeated indices."""
    indices = np.asarray(image_indices).reshape(-1)
    if len(indices) and not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"image_indices must be integers, got dtype {indices.dtype}")
    indices = np.sort(indices.astype(np.int64))
    if len(indices) and indices[0] < 0:
        raise ValueError(f"image_indices holds a negative index {indices[0]}")
    repeated = indices[1:][indices[1:] == indices[:-1]]
    if len(repeated):
        raise ValueError(f"image_indices holds image {repeated[0]} more than once")
    return indices


def _restrict_to_images(boxes: BoxTable, sorted_indices: np.ndarray) -> BoxTable:
    """The boxes of the given images, renumbered ``0 .. len(sorted_indices) - 1`` in that order."""
    in_group = np.isin(boxes.image, sorted_indices)
    selected = boxes.select(in_group)
    return replace(selected, image=np.searchsorted(sorted_indices, selected.image))


def _check_images(boxes: BoxTable, n_images: int, name: str) -> None:
    if n_images < 0:
        raise ValueError(f"n_images must not be negative, got {n_images}")
    if len(boxes) and (boxes.image.min() < 0 or boxes.image.max() >= n_images):
        bad = boxes.image[(boxes.image < 0) | (boxes.image >= n_images)][0]
        raise ValueError(f"{name} boxes reference image {bad}, outside 0..{n_images - 1}")
