"""Bounding boxes of many images, held column-wise so metrics run vectorised over whole datasets.

Every box is stored as normalised ``[xmin, ymin, xmax, ymax]`` in [0, 1] of its image. IoU does not change
under a per-image scaling of both axes, so normalised boxes compare exactly like pixel boxes; pixels are
only needed for drawing. The three sources of boxes convert on the way in:

- Ground Truth (output manifest, worker responses): pixel ``left, top, width, height``;
- Open Images (reference): normalised ``xmin, xmax, ymin, ymax`` (note the order);
- the object-detection algorithm (predictions): normalised ``xmin, ymin, xmax, ymax``.

IoU is defined here once (:func:`pairwise_iou_images_last`) for every metric of the product. A test holds
these definitions against the box code of the services that label and train, where their definitions agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NO_WORKER = -1


@dataclass(frozen=True)
class BoxTable:
    """A flat table of boxes; row ``i`` belongs to image ``image[i]`` (an index into the dataset)."""

    image: np.ndarray  # int64 (n,)
    xyxy: np.ndarray  # float64 (n, 4), normalised
    score: np.ndarray  # float64 (n,): confidence of a consolidated box or prediction, 1.0 otherwise
    class_id: np.ndarray  # int64 (n,)
    is_group: np.ndarray  # bool (n,): Open Images IsGroupOf; False for other sources
    worker: np.ndarray  # int64 (n,): index into the dataset's worker ids, NO_WORKER if not a worker box

    def __post_init__(self) -> None:
        n = len(self.image)
        shapes = {
            "xyxy": (self.xyxy.shape, (n, 4)),
            "score": (self.score.shape, (n,)),
            "class_id": (self.class_id.shape, (n,)),
            "is_group": (self.is_group.shape, (n,)),
            "worker": (self.worker.shape, (n,)),
        }
        for name, (actual, expected) in shapes.items():
            if actual != expected:
                raise ValueError(f"BoxTable.{name} has shape {actual}, expected {expected}")

    def __len__(self) -> int:
        return len(self.image)

    @classmethod
    def build(
        cls,
        image: Sequence[int] | np.ndarray,
        xyxy: Sequence[Sequence[float]] | np.ndarray,
        score: Sequence[float] | np.ndarray | None = None,
        class_id: Sequence[int] | np.ndarray | None = None,
        is_group: Sequence[bool] | np.ndarray | None = None,
        worker: Sequence[int] | np.ndarray | None = None,
    ) -> BoxTable:
        """Build a table, filling absent columns with their defaults."""
        image_arr = np.asarray(image, dtype=np.int64).reshape(-1)
        n = len(image_arr)
        return cls(
            image=image_arr,
            xyxy=np.asarray(xyxy, dtype=np.float64).reshape(n, 4),
            score=np.ones(n) if score is None else np.asarray(score, dtype=np.float64),
            class_id=np.zeros(n, np.int64) if class_id is None else np.asarray(class_id, dtype=np.int64),
            is_group=np.zeros(n, bool) if is_group is None else np.asarray(is_group, dtype=bool),
            worker=np.full(n, NO_WORKER, np.int64) if worker is None else np.asarray(worker, dtype=np.int64),
        )

    @classmethod
    def empty(cls) -> BoxTable:
        return cls.build(image=[], xyxy=np.zeros((0, 4)))

    @classmethod
    def concat(cls, tables: Sequence[BoxTable]) -> BoxTable:
        if not tables:
            return cls.empty()
        return cls(
            image=np.concatenate([t.image for t in tables]),
            xyxy=np.concatenate([t.xyxy for t in tables]),
            score=np.concatenate([t.score for t in tables]),
            class_id=np.concatenate([t.class_id for t in tables]),
            is_group=np.concatenate([t.is_group for t in tables]),
            worker=np.concatenate([t.worker for t in tables]),
        )

    def select(self, mask: np.ndarray) -> BoxTable:
        """The rows where ``mask`` (boolean or integer index array) selects."""
        return BoxTable(
            image=self.image[mask],
            xyxy=self.xyxy[mask],
            score=self.score[mask],
            class_id=self.class_id[mask],
            is_group=self.is_group[mask],
            worker=self.worker[mask],
        )

    def of_image(self, image_index: int) -> BoxTable:
        return self.select(self.image == image_index)

    def counts(self, n_images: int) -> np.ndarray:
        """Number of boxes of each image ``0 .. n_images - 1``."""
        return np.bincount(self.image, minlength=n_images)[:n_images]


def ltwh_pixels_to_xyxy(
    ltwh: np.ndarray, width: np.ndarray | float, height: np.ndarray | float
) -> np.ndarray:
    """Ground Truth pixel boxes ``(n, 4)`` left, top, width, height to normalised xyxy, clipped to [0, 1]."""
    ltwh = np.asarray(ltwh, dtype=np.float64).reshape(-1, 4)
    w = np.asarray(width, dtype=np.float64)
    h = np.asarray(height, dtype=np.float64)
    xyxy = np.stack(
        [ltwh[:, 0] / w, ltwh[:, 1] / h, (ltwh[:, 0] + ltwh[:, 2]) / w, (ltwh[:, 1] + ltwh[:, 3]) / h], axis=1
    )
    return np.clip(xyxy, 0.0, 1.0)


def open_images_to_xyxy(xmin_xmax_ymin_ymax: np.ndarray) -> np.ndarray:
    """Open Images boxes ``(n, 4)`` in the order xmin, xmax, ymin, ymax to xyxy."""
    boxes = np.asarray(xmin_xmax_ymin_ymax, dtype=np.float64).reshape(-1, 4)
    return boxes[:, [0, 2, 1, 3]]


def xyxy_to_pixels(xyxy: np.ndarray, width: float, height: float) -> np.ndarray:
    """Normalised xyxy ``(n, 4)`` to pixel xyxy of an image of the given size."""
    return np.asarray(xyxy, dtype=np.float64).reshape(-1, 4) * np.array([width, height, width, height])


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a (N, K, 4)`` with every box of ``b (N, M, 4)`` in the same image: ``(N, K, M)``.

    Boxes are xyxy: IoU = area of the intersection / area of the union. A zero-area or inverted box
    (``xmax <= xmin`` or ``ymax <= ymin``) has area 0 and IoU 0 with every box, itself included.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 3 or a.shape[2] != 4:
        raise ValueError(f"pairwise_iou: a has shape {a.shape}, expected (N, K, 4)")
    if b.ndim != 3 or b.shape[2] != 4:
        raise ValueError(f"pairwise_iou: b has shape {b.shape}, expected (N, M, 4)")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"pairwise_iou: a has {a.shape[0]} images and b has {b.shape[0]}, expected the same")
    return pairwise_iou_images_last(a.transpose(2, 1, 0), b.transpose(2, 1, 0)).transpose(2, 0, 1)


def pairwise_iou_images_last(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`pairwise_iou` with images on the last axis: ``a (4, K, N)``, ``b (4, M, N)`` give ``(K, M, N)``.

    The one implementation of IoU on this side; :func:`pairwise_iou` transposes to it. With images last,
    numpy's inner loops run along many images instead of a handful of boxes, which is what the metrics'
    matching over whole datasets needs.
    """
    a_x0, a_y0, a_x1, a_y1 = (coordinate[:, None, :] for coordinate in a)
    b_x0, b_y0, b_x1, b_y1 = (coordinate[None, :, :] for coordinate in b)
    # The overlap of [start, end] intervals is max(end, start) - start, 0 where they are disjoint: this form
    # takes no maximum with the scalar 0, which numpy computes several times slower than one of two arrays.
    start = np.maximum(a_x0, b_x0)
    intersection = np.minimum(a_x1, b_x1)
    np.maximum(intersection, start, out=intersection)
    intersection -= start
    np.maximum(a_y0, b_y0, out=start)
    inter_h = np.minimum(a_y1, b_y1)
    np.maximum(inter_h, start, out=inter_h)
    inter_h -= start
    intersection *= inter_h
    # A zero-area box intersects nothing: counting its area as 1 keeps its IoUs 0 and makes every union
    # positive, so the division needs no mask (a masked divide is about ten times slower).
    a_area = _area(a)
    a_area[a_area == 0.0] = 1.0
    union = np.add(a_area[:, None, :], _area(b)[None, :, :], out=inter_h)
    union -= intersection
    return np.divide(intersection, union, out=intersection)


def _area(boxes: np.ndarray) -> np.ndarray:
    """Areas of ``boxes (4, ...)`` whose first axis holds x0, y0, x1, y1; 0 for an inverted box."""
    x0, y0, x1, y1 = boxes
    return np.clip(x1 - x0, 0.0, None) * np.clip(y1 - y0, 0.0, None)


@dataclass(frozen=True)
class LabeledImage:
    """One line of a labeling job's output manifest."""

    object_id: int  # datasetObjectId: the 0-based line of the input (and output) manifest
    source_ref: str
    image_id: str  # the file's stem, the Open Images ImageID for images this pipeline selected
    width: int
    height: int
    human_annotated: bool
    failure_reason: str | None = None


@dataclass(frozen=True)
class LabelingDataset:
    """Everything the analysis needs about one labeling job; box ``image`` indexes ``images``."""

    images: list[LabeledImage]
    consolidated: BoxTable
    workers: BoxTable
    reference: BoxTable
    worker_ids: list[str]

    @property
    def human_mask(self) -> np.ndarray:
        """Images the manifest marks human-annotated; a failed object has no label, so it is never one."""
        return np.array([img.human_annotated for img in self.images], dtype=bool)

    @property
    def failed_mask(self) -> np.ndarray:
        return np.array([img.failure_reason is not None for img in self.images], dtype=bool)

    @property
    def labeled_by_humans(self) -> np.ndarray:
        return self.human_mask & ~self.failed_mask

    @property
    def labeled_by_machine(self) -> np.ndarray:
        return ~self.human_mask & ~self.failed_mask
