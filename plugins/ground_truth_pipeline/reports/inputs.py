"""The inputs of the analysis report, checked once up front so bad input fails before any image is fetched."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ground_truth_pipeline.boxes import LabelingDataset

ITERATION_COLUMNS = (
    "iteration",
    "human_images",
    "human_boxes",
    "auto_images",
    "auto_boxes",
    "human_cost",
    "auto_cost",
)

PER_IMAGE_VALUES = ("miou", "confidence", "worker_agreement")


@dataclass(frozen=True)
class AnalysisInputs:
    """Everything the analysis report draws; per-image arrays are aligned with ``dataset.images``.

    ``miou`` is None for a run without reference boxes: the report then leaves out what compares with them.
    """

    dataset: LabelingDataset
    miou: np.ndarray | None
    confidence: np.ndarray
    worker_agreement: np.ndarray
    iterations: pd.DataFrame
    training_curves: Sequence[tuple[str, Sequence[float]]]
    confidence_curve: Mapping[str, tuple[np.ndarray, np.ndarray]]
    metrics: Mapping[str, Any]
    class_name: str

    def __post_init__(self) -> None:
        n_images = len(self.dataset.images)
        per_image = ("confidence", "worker_agreement") if self.miou is None else PER_IMAGE_VALUES
        for name in per_image:
            values = np.asarray(getattr(self, name), dtype=np.float64)
            if values.shape != (n_images,):
                raise ValueError(
                    f"{name} has shape {values.shape}, expected one value per dataset image: ({n_images},)"
                )
            object.__setattr__(self, name, values)
        missing = [column for column in ITERATION_COLUMNS if column not in self.iterations.columns]
        if missing:
            raise ValueError(
                f"iterations lacks the columns {', '.join(missing)}; expected {', '.join(ITERATION_COLUMNS)}"
            )
        for position, curve in enumerate(self.training_curves):
            if len(curve) != 2 or not isinstance(curve[0], str):
                raise ValueError(
                    f"training_curves[{position}] must be a (label, mAP per epoch) pair, got {curve!r}"
                )
        if self.miou is None and self.confidence_curve:
            raise ValueError("confidence_curve is an mIoU curve, but there is no mIoU: no reference boxes")
        for group, (top_percent, group_miou) in self.confidence_curve.items():
            if len(top_percent) != len(group_miou):
                raise ValueError(
                    f"confidence_curve[{group!r}] has {len(top_percent)} percentages "
                    f"but {len(group_miou)} mIoU values"
                )

    @property
    def has_reference(self) -> bool:
        return self.miou is not None

    @property
    def human_count(self) -> int:
        return int(self.dataset.labeled_by_humans.sum())

    @property
    def auto_count(self) -> int:
        return int(self.dataset.labeled_by_machine.sum())
