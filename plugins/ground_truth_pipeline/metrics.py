"""Per-image quality of consolidated boxes: mIoU with the reference or the workers' boxes, and confidence.

All functions work on whole datasets at once with numpy, looping over box slots and buckets of images, never
over single images or boxes (see :func:`_matched_iou_and_denominator`).

Boxes are matched **within their own image only**. The reference notebook's group mIoU pooled the boxes of
all images into one notional image, so a box of one image could match a box of another; here a group's
mIoU pools the per-image results instead (see :func:`group_miou`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from ground_truth_pipeline.boxes import BoxTable, pairwise_iou_images_last

DEFAULT_QUANTILES = np.linspace(0.0, 0.9, 10)

# Images of a bucket are matched in chunks of at most this many (consolidated, reference, image) IoU entries,
# 1 MiB per float64 array: memory stays bounded however many images share a bucket. Chunks this size are as
# fast as whole buckets; much smaller ones spend their time in per-call overhead.
_IOU_ENTRIES_PER_CHUNK = 1 << 17


def class_blind_image_miou(consolidated: BoxTable, reference: BoxTable, n_images: int) -> np.ndarray:
    """mIoU of each image ``0 .. n_images - 1`` between its consolidated and its reference boxes, ``(N,)``.

    Semantics of the reference notebook's helper:

    - 1.0 when the image has neither consolidated nor reference boxes, 0.0 when exactly one side is empty;
    - otherwise the consolidated boxes are taken in order of decreasing score (ties: table order); each takes
      the still-unmatched reference box with the highest IoU (ties: the earlier reference box in table order).
      Any IoU above 0 is a match: there is no threshold and classes are ignored;
    - mIoU = sum of matched IoUs / (number of consolidated boxes + number of reference boxes left unmatched).

    Boxes are only ever matched with boxes of the same image. Not Ground Truth's auto-labeling quality (the
    stack's ``per_class_image_miou``), which matches per class, in order of decreasing IoU.
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


def worker_miou_with_consolidated(workers: BoxTable, consolidated: BoxTable, n_images: int) -> np.ndarray:
    """How closely the workers of each image agree with its consolidated label, ``(N,)``: needs no reference.

    Each (image, worker) pair is scored like :func:`class_blind_image_miou`, the worker's boxes in the place
    of the consolidated ones and the consolidated boxes in the place of the reference; an image's value is the
    mean over its workers. Only workers who drew a box in the image count (the worker box table holds boxes,
    not empty answers), so an image without worker boxes (auto-labeled, or nobody drew) has nan.
    """
    _check_images(workers, n_images, "worker")
    _check_images(consolidated, n_images, "consolidated")
    pairs, pair_of_box = np.unique(
        np.stack([workers.image, workers.worker], axis=1), axis=0, return_inverse=True
    )
    pair_image = pairs[:, 0]
    # Every pair gets its own copy of its image's consolidated boxes, numbered by the pair.
    by_image = np.argsort(consolidated.image, kind="stable")
    counts = consolidated.counts(n_images)
    first = np.cumsum(counts) - counts
    copies = counts[pair_image]
    copy_pair = np.repeat(np.arange(len(pairs)), copies)
    within = np.arange(len(copy_pair)) - np.repeat(np.cumsum(copies) - copies, copies)
    rows = by_image[first[pair_image][copy_pair] + within]
    pair_miou = class_blind_image_miou(
        replace(workers, image=pair_of_box.reshape(-1)),
        replace(consolidated.select(rows), image=copy_pair),
        len(pairs),
    )
    sums = np.bincount(pair_image, weights=pair_miou, minlength=n_images)[:n_images]
    workers_per_image = np.bincount(pair_image, minlength=n_images)[:n_images]
    agreement = np.full(n_images, np.nan)
    np.divide(sums, workers_per_image, out=agreement, where=workers_per_image > 0)
    return agreement


def group_miou(consolidated: BoxTable, reference: BoxTable, image_indices: np.ndarray) -> float:
    """mIoU of a group of images, pooling per-image matches: never matching boxes across images.

    Each image is matched as in :func:`class_blind_image_miou`; the group's mIoU is the sum of all matched
    IoUs over the sum of all the images' denominators, an image with no boxes on either side counting as a
    perfect 1 / 1.
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

    Images are matched in buckets of equal box counts (K consolidated, M reference), each bucket one dense
    ``(K, M, images)`` IoU array. Padding every image to the largest box count instead would spend most of
    the work on padding slots: with 0 to 12 boxes a side, three in four padded pairs are padding.
    """
    _check_images(consolidated, n_images, "consolidated")
    _check_images(reference, n_images, "reference")
    n_consolidated = consolidated.counts(n_images)
    n_reference = reference.counts(n_images)
    consolidated_by_image = _BoxesByImage.of(consolidated, n_consolidated)
    reference_by_image = _BoxesByImage.of(reference, n_reference)
    matched_iou = np.zeros(n_images)
    n_matched = np.zeros(n_images, np.int64)
    for k, m, bucket in _buckets_of_equal_counts(n_consolidated, n_reference):
        chunk = max(_IOU_ENTRIES_PER_CHUNK // (k * m), 1)
        for start in range(0, len(bucket), chunk):
            images = bucket[start : start + chunk]
            iou = pairwise_iou_images_last(
                consolidated_by_image.xyxy_images_last(images, k, by_score=True),
                reference_by_image.xyxy_images_last(images, m),
            )
            matched_iou[images], n_matched[images] = _greedy_match(iou)
    denominator = (n_consolidated + n_reference - n_matched).astype(np.float64)
    both_empty = (n_consolidated == 0) & (n_reference == 0)
    matched_iou[both_empty] = 1.0
    denominator[both_empty] = 1.0
    return matched_iou, denominator


def _buckets_of_equal_counts(
    n_consolidated: np.ndarray, n_reference: np.ndarray
) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(K, M, images)`` for each pair of box counts (K consolidated, M reference) that images have.

    Images without a box on one side or both match nothing and belong to no bucket.
    """
    images = np.flatnonzero((n_consolidated > 0) & (n_reference > 0))
    if not len(images):
        return
    width = int(n_reference.max()) + 1
    bucket_key = n_consolidated[images] * width + n_reference[images]
    # A stable sort of 8- or 16-bit integers is a radix sort, over ten times faster than sorting int64 keys.
    order = np.argsort(bucket_key.astype(np.min_scalar_type(bucket_key.max())), kind="stable")
    images, bucket_key = images[order], bucket_key[order]
    starts = np.flatnonzero(np.diff(bucket_key, prepend=-1))
    stops = np.append(starts[1:], len(images))
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        k, m = divmod(int(bucket_key[start]), width)
        yield k, m, images[start:stop]


@dataclass(frozen=True)
class _BoxesByImage:
    """A table's boxes addressed as "box j of image i", boxes of an image in table order."""

    boxes: BoxTable
    first: np.ndarray  # (n_images,): position of each image's first box in image order
    # The table row at each position in image order; None when the table is already in image order.
    table_row: np.ndarray | None

    @classmethod
    def of(cls, boxes: BoxTable, counts: np.ndarray) -> _BoxesByImage:
        in_image_order = bool(np.all(boxes.image[1:] >= boxes.image[:-1]))
        table_row = None if in_image_order else np.argsort(boxes.image, kind="stable")
        return cls(boxes=boxes, first=np.cumsum(counts) - counts, table_row=table_row)

    def xyxy_images_last(self, images: np.ndarray, count: int, by_score: bool = False) -> np.ndarray:
        """The boxes of ``images``, which all have ``count`` boxes, as ``(4, count, len(images))``.

        Boxes keep their table order, or are sorted by decreasing score (stable) when ``by_score`` is set.
        """
        rows = self.first[images][:, None] + np.arange(count)
        if self.table_row is not None:
            rows = self.table_row[rows]
        if by_score and count > 1:
            by_decreasing_score = np.argsort(-self.boxes.score[rows], axis=1, kind="stable")
            rows = np.take_along_axis(rows, by_decreasing_score, axis=1)
        # np.take gathers whole rows, several times faster than the equivalent fancy index xyxy[rows].
        return np.ascontiguousarray(np.take(self.boxes.xyxy, rows, axis=0).transpose(2, 1, 0))


def _greedy_match(iou: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matches score-ordered consolidated boxes greedily on ``iou (K, M, N)``: (IoU sum, matches) per image.

    Overwrites ``iou``.
    """
    _, n_reference, n_images = iou.shape
    matched_iou = np.zeros(n_images)
    n_matched = np.zeros(n_images, np.int64)
    available = np.ones((n_reference, n_images))
    images = np.arange(n_images)
    for candidates in iou:
        candidates *= available
        best = np.argmax(candidates, axis=0)
        best_iou = candidates.max(axis=0)
        hit = best_iou > 0.0
        matched_iou += best_iou
        n_matched += hit
        # A matched reference box was available (1.0) and is taken now (0.0); the others stay as they are.
        available.reshape(-1)[best * n_images + images] -= hit
    return matched_iou, n_matched


def _pooled_miou(matched_iou: np.ndarray, denominator: np.ndarray) -> float:
    if not len(denominator):
        return float("nan")
    return float(matched_iou.sum() / denominator.sum())


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
