"""The decisions of automated data labeling, as AWS documents them for bounding boxes; no I/O here.

- Which objects go where: a random probe batch and a random validation set, both labeled by humans, then
  an initial human training batch (``plan_objects``). The validation set is 20% of the objects when there
  are fewer than 5,000, else 10%.
- How good a machine label is: an image's mean IoU, "the mean IoU of all the predicted and missed boxes on
  the image for every class, averaged across classes" (``per_class_image_miou``).
- Which of the detector's boxes make up the label (those scoring at least a cutoff, ``kept_detections``)
  and how sure the detector is of the whole image (``least_decided_margin``).
- The confidence threshold: the lowest confidence at which an image's expected IoU with its human label,
  read off the validation set, exceeds 0.6 by one standard error of the estimate (``choose_threshold``):
  each auto-labeled image is expected to reach the quality on its own, as AWS states the rule. The box
  cutoff is chosen on the validation set too (``calibrate``): a detector trained briefly from scratch
  scores its boxes low, and a fixed cutoff such as 0.5 would leave its labels empty. Empty labels get a
  threshold of their own: a detector that misses an object often scores it far below the cutoff, so its
  image looks surely empty.
- Which unlabeled objects humans label next: the least sure (``human_priority``), at most
  ``MaxConcurrentTaskCount``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import isotonic_regression

from local_aws.boxes import iou_matrix

PROBE_BATCH_SIZE = 10
LARGE_DATASET_OBJECTS = 5000
VALIDATION_SHARE = 0.2  # of datasets under LARGE_DATASET_OBJECTS objects
LARGE_VALIDATION_SHARE = 0.1
REQUIRED_MEAN_IOU = 0.6
MAX_PROBE_FAILURE_SHARE = 0.1
# The threshold rests on at least this many validation images: fewer say too little about the quality.
MIN_THRESHOLD_SUPPORT = 5
# An image at the threshold must be expected to reach the quality by this many standard errors of the
# expectation: a few dozen validation images estimate it roughly, and a lucky estimate labels badly.
MARGIN_STANDARD_ERRORS = 1.0
# The box score cutoffs tried on the validation set.
BOX_CUTOFFS = tuple(round(0.05 * step, 2) for step in range(1, 20))


@dataclass(frozen=True)
class Detection:
    """A box the detector found: its class, score and corners normalised to [0, 1]."""

    class_id: int
    score: float
    xmin: float
    ymin: float
    xmax: float
    ymax: float


@dataclass(frozen=True)
class ObjectPlan:
    """Object indices (0-based manifest lines) of each human stage before the first auto-labeling round.

    ``rest`` is in a random order: the order in which objects are sent to humans when the detector's
    confidence cannot tell them apart.
    """

    probe: tuple[int, ...]
    initial_training: tuple[int, ...]
    validation: tuple[int, ...]
    rest: tuple[int, ...]


def validation_set_size(total: int) -> int:
    share = VALIDATION_SHARE if total < LARGE_DATASET_OBJECTS else LARGE_VALIDATION_SHARE
    return max(1, round(share * total))


def _random_order(job_name: str, total: int) -> list[int]:
    seed = int.from_bytes(hashlib.sha256(f"{job_name}/active-learning".encode()).digest()[:8], "big")
    return np.random.default_rng(seed).permutation(total).tolist()


def plan_objects(job_name: str, total: int, max_concurrent_tasks: int) -> ObjectPlan:
    """The human stages of a job of ``total`` objects, drawn reproducibly from the job's name.

    As in AWS's example: ``PROBE_BATCH_SIZE`` probe objects, then ``MaxConcurrentTaskCount`` less the probe
    for the first training set, then the validation set. The training batch is at most as large as the
    validation set (a local choice), so that a job whose ``MaxConcurrentTaskCount`` is as large as the
    dataset still leaves objects for the detector.
    """
    order = _random_order(job_name, total)
    probe = min(PROBE_BATCH_SIZE, total)
    validation = min(validation_set_size(total), total - probe)
    training = max(0, min(max_concurrent_tasks - probe, validation - probe, total - probe - validation))
    first_validation = probe + training
    return ObjectPlan(
        probe=tuple(order[:probe]),
        initial_training=tuple(order[probe:first_validation]),
        validation=tuple(order[first_validation : first_validation + validation]),
        rest=tuple(order[first_validation + validation :]),
    )


def probe_failed(failures: int, probe_size: int) -> bool:
    """Whether more than 10% of the probe objects failed, which fails an auto-labeling job."""
    return failures > MAX_PROBE_FAILURE_SHARE * probe_size


def batches(objects: Sequence[int], size: int) -> list[list[int]]:
    """``objects`` in order, in batches of at most ``size``."""
    return [list(objects[start : start + size]) for start in range(0, len(objects), size)]


def kept_detections(detections: Sequence[Detection], cutoff: float) -> list[Detection]:
    """The detections that make up the machine label, best first."""
    return sorted((d for d in detections if d.score >= cutoff), key=lambda d: -d.score)


def least_decided_margin(detections: Sequence[Detection], cutoff: float) -> float:
    """How sure the detector is of the whole image, in [0, 1], labels made with box score ``cutoff``.

    A detection scoring near the cutoff may be a wrong box or a missed object, so the image is only as sure
    as its least decided detection: the minimum over its detections of how far the score is from the
    cutoff, as a share of the room on that side (``(score - cutoff) / (1 - cutoff)`` above it,
    ``(cutoff - score) / cutoff`` below). An image without any detection is sure: it is empty.
    """
    return min(
        (
            (d.score - cutoff) / (1.0 - cutoff) if d.score >= cutoff else (cutoff - d.score) / cutoff
            for d in detections
        ),
        default=1.0,
    )


def per_class_image_miou(
    predicted: Sequence[tuple[int, tuple[float, float, float, float]]],
    truth: Sequence[tuple[int, tuple[float, float, float, float]]],
) -> float:
    """AWS's quality of a bounding-box label: per class, the mean IoU over the predicted boxes (each with
    the IoU of the true box it is matched to, 0 if none) and the missed true boxes (0 each); then the mean
    over the classes either side has. Boxes are ``(class_id, (x0, y0, x1, y1))``; matching is one to one,
    highest IoU first. An image where both sides are empty scores 1.

    Not the reference notebook's image mIoU (the product's ``class_blind_image_miou``), which ignores
    classes and lets the predicted boxes pick their match in order of decreasing score."""
    classes = sorted({c for c, _ in predicted} | {c for c, _ in truth})
    if not classes:
        return 1.0
    scores = []
    for class_id in classes:
        mine = np.array([box for c, box in predicted if c == class_id], dtype=np.float64).reshape(-1, 4)
        theirs = np.array([box for c, box in truth if c == class_id], dtype=np.float64).reshape(-1, 4)
        matched = _matched_ious(iou_matrix(mine, theirs))
        scores.append(float(np.sum(matched)) / (len(mine) + len(theirs) - len(matched)))
    return float(np.mean(scores))


def _matched_ious(iou: np.ndarray) -> list[float]:
    """Greedy one-to-one matching by decreasing IoU; pairs that do not overlap are no match."""
    iou = iou.copy()
    matched = []
    while iou.size and iou.max() > 0:
        row, column = np.unravel_index(int(iou.argmax()), iou.shape)
        matched.append(float(iou[row, column]))
        iou[row, :] = 0
        iou[:, column] = 0
    return matched


@dataclass(frozen=True)
class Threshold:
    """The chosen confidence threshold and what the validation set expects of it."""

    confidence: float | None  # None: no threshold reaches the required quality; nothing is auto-labeled
    expected_mean_iou: float | None  # the mean quality of the validation images at or above it
    validation_images: int  # at or above it
    expected_iou_at_threshold: float | None = None  # of an image of exactly the threshold's confidence
    standard_error_at_threshold: float | None = None  # of that expectation


def choose_threshold(
    confidences: Sequence[float],
    qualities: Sequence[float],
    required: float = REQUIRED_MEAN_IOU,
    margin: float = MARGIN_STANDARD_ERRORS,
) -> Threshold:
    """The lowest confidence ``t`` whose images are expected to reach ``required`` with a margin of
    ``margin`` standard errors, with at least ``MIN_THRESHOLD_SUPPORT`` validation images at or above it.

    An image's expected quality at a confidence is the non-decreasing (isotonic) fit of the validation
    images' qualities on their confidences. Every image at or above ``t`` is then expected to reach the
    quality, not just their mean: a mean over the validation set would let many sure, easy images carry
    poor ones near the threshold, and after the first rounds the unlabeled objects are mostly the hard ones
    near it. The fit at a confidence is the mean of a block of validation images; its standard error is the
    spread of all images about the fit over the square root of the block's size. Images of equal
    confidence are taken or left together, since a threshold cannot split them.
    """
    if len(confidences) != len(qualities):
        raise ValueError(f"{len(confidences)} confidences but {len(qualities)} qualities")
    if not confidences:
        return Threshold(None, None, 0)
    levels, level_of = np.unique(np.asarray(confidences, dtype=np.float64), return_inverse=True)
    counts = np.bincount(level_of, minlength=len(levels))
    values = np.asarray(qualities, dtype=np.float64)
    sums = np.bincount(level_of, weights=values, minlength=len(levels))
    fit = isotonic_regression(sums / counts, weights=counts)
    expected = fit.x
    spread = float(np.sqrt(np.mean((values - expected[level_of]) ** 2)))
    block_size = np.repeat(np.add.reduceat(counts, fit.blocks[:-1]), np.diff(fit.blocks))
    standard_error = spread / np.sqrt(block_size)
    best = Threshold(None, None, 0)
    count, total = 0, 0.0
    for level in reversed(range(len(levels))):
        if expected[level] - margin * standard_error[level] < required:
            break
        count += int(counts[level])
        total += float(sums[level])
        if count >= MIN_THRESHOLD_SUPPORT:
            best = Threshold(
                float(levels[level]),
                total / count,
                count,
                float(expected[level]),
                float(standard_error[level]),
            )
    return best


@dataclass(frozen=True)
class Calibration:
    """The box cutoff and the confidence thresholds that let the machine label the most validation images.

    Labels with boxes and empty labels have a threshold each (``threshold_for``): a detector that misses
    an object often scores it far below the cutoff, which makes the image look surely empty. Empty labels
    are trusted only as far as the validation images the detector calls empty show them right.
    """

    box_cutoff: float
    threshold: Threshold  # of labels with boxes
    empty_threshold: Threshold  # of empty labels
    confidences: tuple[float, ...]  # of the validation images, with this cutoff
    qualities: tuple[float, ...]  # mean IoU of their labels with this cutoff, against the human labels
    empty: tuple[bool, ...]  # whether their label is empty with this cutoff

    def threshold_for(self, detections: Sequence[Detection]) -> Threshold:
        return self.empty_threshold if is_empty_label(detections, self.box_cutoff) else self.threshold

    @property
    def validation_images(self) -> int:
        """The validation images at or above their threshold."""
        return self.threshold.validation_images + self.empty_threshold.validation_images

    @property
    def expected_mean_iou(self) -> float | None:
        """The mean quality of the validation images at or above their threshold."""
        thresholds = (self.threshold, self.empty_threshold)
        total = sum((t.expected_mean_iou or 0.0) * t.validation_images for t in thresholds)
        return total / self.validation_images if self.validation_images else None


BoxList = Sequence[tuple[int, tuple[float, float, float, float]]]


def is_empty_label(detections: Sequence[Detection], cutoff: float) -> bool:
    return not kept_detections(detections, cutoff)


def calibrate(
    validation: Sequence[tuple[Sequence[Detection], BoxList]], cutoffs: Sequence[float] = BOX_CUTOFFS
) -> Calibration:
    """For each box cutoff, the thresholds over the validation images ``(detections, human boxes)``; the
    cutoff whose thresholds admit the most images wins (then the higher expected mean IoU, then the higher
    cutoff)."""
    best: Calibration | None = None
    for cutoff in sorted(cutoffs, reverse=True):
        confidences = tuple(least_decided_margin(found, cutoff) for found, _ in validation)
        qualities = tuple(
            per_class_image_miou(
                [(d.class_id, (d.xmin, d.ymin, d.xmax, d.ymax)) for d in kept_detections(found, cutoff)],
                truth,
            )
            for found, truth in validation
        )
        empty = tuple(is_empty_label(found, cutoff) for found, _ in validation)
        candidate = Calibration(
            cutoff,
            _stratum_threshold(confidences, qualities, [not e for e in empty]),
            _stratum_threshold(confidences, qualities, list(empty)),
            confidences,
            qualities,
            empty,
        )
        if best is None or _rank(candidate) > _rank(best):
            best = candidate
    if best is None:
        raise ValueError("no box cutoffs to try")
    return best


def _stratum_threshold(
    confidences: Sequence[float], qualities: Sequence[float], members: Sequence[bool]
) -> Threshold:
    chosen = [i for i, member in enumerate(members) if member]
    return choose_threshold([confidences[i] for i in chosen], [qualities[i] for i in chosen])


def _rank(calibration: Calibration) -> tuple[int, float]:
    return calibration.validation_images, calibration.expected_mean_iou or 0.0


def auto_labeled(detections: dict[int, Sequence[Detection]], calibration: Calibration) -> list[int]:
    """The objects whose confidence reaches the threshold of their label's kind, in object order."""
    chosen = []
    for object_id, found in detections.items():
        threshold = calibration.threshold_for(found).confidence
        if threshold is not None and least_decided_margin(found, calibration.box_cutoff) >= threshold:
            chosen.append(object_id)
    return sorted(chosen)


def human_priority(detections: Sequence[Detection] | None, calibration: Calibration) -> float:
    """How sure the detector is of an unlabeled object, for the order in which humans take them: its
    image confidence, but -inf without a prediction, or when its label would be empty while the
    validation set trusts no empty label (the detector may be blind to its objects)."""
    if detections is None:
        return -math.inf
    empty_untrusted = calibration.empty_threshold.confidence is None
    if empty_untrusted and is_empty_label(detections, calibration.box_cutoff):
        return -math.inf
    return least_decided_margin(detections, calibration.box_cutoff)


def next_for_humans(
    unlabeled: Sequence[int], priorities: dict[int, float], max_concurrent_tasks: int
) -> list[int]:
    """The least sure unlabeled objects (``human_priority``), at most ``max_concurrent_tasks``; ties keep
    ``unlabeled``'s order (random)."""
    position = {o: i for i, o in enumerate(unlabeled)}
    ranked = sorted(unlabeled, key=lambda o: (priorities.get(o, -math.inf), position[o]))
    return ranked[:max_concurrent_tasks]
