"""Bounding boxes of many images, held column-wise so metrics run vectorised over whole datasets.

Every box is stored as normalised ``[xmin, ymin, xmax, ymax]`` in [0, 1] of its image. IoU does not change
under a per-image scaling of both axes, so normalised boxes compare exactly like pixel boxes; pixels are
only needed for drawing. The three sources of boxes convert on the way in:

- Ground Truth (output manifest, worker responses): pixel ``left, top, width, height``;
- Open Images (reference): normalised ``xmin, xmax, ymin, ymax`` (note the order);
- the object-detection algorithm (predictions): normalised ``xmin, ymin, xmax, ymax``.
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
        """Images the manifest marks human-annotated (failed objects included, as AWS marks them)."""
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
