"""The analysis of a finished labeling job, without drawing: counts, costs, label quality, metrics JSON.

Label quality is measured against the Open Images reference boxes of the same images. Images whose
labeling failed keep their place (they have no consolidated boxes, so they score as unlabeled). A run on a
team's own images has no reference boxes: its analysis keeps what needs none (counts, cost, confidence, the
workers' agreement with the consolidated labels) and leaves the comparison unmeasured, null in the metrics.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from ground_truth_pipeline.boxes import LabelingDataset
from ground_truth_pipeline.detection_metrics import DetectionMetrics, detection_metrics
from ground_truth_pipeline.labeling_output import (
    LabelPrices,
    iteration_summary,
    load_labeling_dataset,
    read_auto_label_counts,
    read_consolidation_counts,
    read_output_manifest,
)
from ground_truth_pipeline.metrics import (
    class_blind_image_miou,
    group_miou,
    image_confidence,
    miou_by_confidence_threshold,
    worker_miou_with_consolidated,
)
from ground_truth_pipeline.object_store import ObjectStore
from ground_truth_pipeline.open_images import SelectedImage, reference_box_table


@dataclass(frozen=True)
class LabelingAnalysis:
    """The measured run; ``miou``, ``confidence_curve`` and ``detection`` need reference boxes.

    A run on a team's own images has none: then ``miou`` and ``detection`` are None and the curve is empty,
    so nothing downstream can show a figure that was never measured.
    """

    dataset: LabelingDataset
    miou: np.ndarray | None
    confidence: np.ndarray
    worker_agreement: np.ndarray
    iterations: pd.DataFrame
    confidence_curve: dict[str, tuple[np.ndarray, np.ndarray]]
    detection: DetectionMetrics | None
    metrics: dict[str, Any]

    @property
    def has_reference(self) -> bool:
        return self.miou is not None

    def image_table(self) -> pd.DataFrame:
        """One row per image of the output manifest: who labeled it, box counts, mIoU, confidence and
        worker agreement; the reference columns are empty for a run without reference boxes."""
        n = len(self.dataset.images)
        no_value = np.full(n, np.nan)
        return pd.DataFrame(
            {
                "object_id": [img.object_id for img in self.dataset.images],
                "image_id": [img.image_id for img in self.dataset.images],
                "human_annotated": self.dataset.human_mask,
                "failed": self.dataset.failed_mask,
                "consolidated_boxes": self.dataset.consolidated.counts(n),
                "reference_boxes": self.dataset.reference.counts(n) if self.has_reference else no_value,
                "miou": self.miou if self.miou is not None else no_value,
                "confidence": self.confidence,
                "worker_agreement": self.worker_agreement,
            }
        )

    def image_table_csv(self) -> bytes:
        buffer = io.StringIO()
        self.image_table().to_csv(buffer, index=False, float_format="%.6f")
        return buffer.getvalue().encode()


def group_masks(dataset: LabelingDataset) -> dict[str, np.ndarray]:
    """Images labeled by humans and by the machine; failed images belong to neither."""
    return {"Human": dataset.labeled_by_humans, "Auto": dataset.labeled_by_machine}


def analyse_labeling_job(
    store: ObjectStore,
    job_prefix: str,
    label_attribute: str,
    reference: Mapping[str, SelectedImage] | None,
    class_names: Sequence[str],
    prices: LabelPrices,
) -> LabelingAnalysis:
    """Read the job's output tree once and compute everything the report shows.

    ``reference`` is None for a run without reference boxes (a team's own images): everything that compares
    with them is then left unmeasured rather than scored against nothing.
    """
    manifest = read_output_manifest(store, job_prefix, label_attribute)
    image_ids = [img.image_id for img in manifest.images]
    reference_boxes = None if reference is None else reference_box_table(dict(reference), image_ids)
    dataset = load_labeling_dataset(
        store, job_prefix, label_attribute, reference_boxes, class_names=class_names, manifest=manifest
    )
    n_images = len(dataset.images)
    confidence = image_confidence(dataset.consolidated, n_images)
    agreement = worker_miou_with_consolidated(dataset.workers, dataset.consolidated, n_images)
    iterations = iteration_summary(
        read_consolidation_counts(store, job_prefix, label_attribute),
        read_auto_label_counts(store, job_prefix, label_attribute),
        prices,
    )
    masks = group_masks(dataset)
    if reference is None:
        miou, confidence_curve, detection = None, {}, None
    else:
        miou, confidence_curve, detection = _compare_with_reference(dataset, masks)
    metrics = {
        **_counts_and_cost(manifest.job_name, dataset, iterations, masks, prices),
        "mean_image_confidence": {group.lower(): _mean(confidence[mask]) for group, mask in masks.items()},
        "worker_agreement": _worker_agreement(agreement, masks["Human"]),
        **_reference_metrics(dataset, masks, miou, detection),
    }
    return LabelingAnalysis(
        dataset, miou, confidence, agreement, iterations, confidence_curve, detection, metrics
    )


def _compare_with_reference(
    dataset: LabelingDataset, masks: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]], DetectionMetrics]:
    """Per-image mIoU, the mIoU of the most confident images per group, and the COCO detection metrics."""
    n_images = len(dataset.images)
    miou = class_blind_image_miou(dataset.consolidated, dataset.reference, n_images)
    confidence_curve = {
        group: miou_by_confidence_threshold(
            dataset.consolidated, dataset.reference, n_images, np.flatnonzero(mask)
        )
        for group, mask in masks.items()
        if mask.any()
    }
    sizes = np.array([[max(img.width, 1), max(img.height, 1)] for img in dataset.images]).reshape(-1, 2)
    return miou, confidence_curve, detection_metrics(dataset.consolidated, dataset.reference, sizes)


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def _counts_and_cost(
    job_name: str,
    dataset: LabelingDataset,
    iterations: pd.DataFrame,
    masks: dict[str, np.ndarray],
    prices: LabelPrices,
) -> dict[str, Any]:
    """The metrics that need no reference boxes: images, workers, cost per iteration and in total."""
    human_cost = float(iterations["human_cost"].sum())
    auto_cost = float(iterations["auto_cost"].sum())
    labeled = int(masks["Human"].sum() + masks["Auto"].sum())
    return {
        "labeling_job": job_name,
        "images": len(dataset.images),
        "failed_images": int(dataset.failed_mask.sum()),
        "human_labeled_images": int(masks["Human"].sum()),
        "auto_labeled_images": int(masks["Auto"].sum()),
        "workers": len(dataset.worker_ids),
        "cost_usd": {
            "human": human_cost,
            "auto": auto_cost,
            "total": human_cost + auto_cost,
            "all_by_humans": labeled * prices.human,
            "price_per_human_label": prices.human,
            "price_per_auto_label": prices.auto,
        },
        "iterations": [
            {**row, "finished_at": None if pd.isna(row["finished_at"]) else row["finished_at"].isoformat()}
            for row in iterations.to_dict(orient="records")
        ],
    }


def _worker_agreement(agreement: np.ndarray, human: np.ndarray) -> dict[str, Any]:
    """The mean over the human-labeled images where a worker drew a box; the others have no agreement."""
    measured = human & np.isfinite(agreement)
    return {"mean_worker_miou_with_consolidated": _mean(agreement[measured]), "images": int(measured.sum())}


def _reference_metrics(
    dataset: LabelingDataset,
    masks: dict[str, np.ndarray],
    miou: np.ndarray | None,
    detection: DetectionMetrics | None,
) -> dict[str, Any]:
    """Box counts and the comparison with the reference boxes: null where there are none, never 0."""
    boxes = {"consolidated": len(dataset.consolidated), "worker": len(dataset.workers)}
    if miou is None or detection is None:
        groups = ("all", *(group.lower() for group in masks))
        return {
            "reference_boxes": False,
            "boxes": boxes | {"reference": None},
            "mean_image_miou": dict.fromkeys(groups),
            "group_miou": dict.fromkeys(groups),
            "detection_vs_reference": dict.fromkeys(field.name for field in fields(DetectionMetrics)),
        }
    all_images = np.arange(len(dataset.images))
    return {
        "reference_boxes": True,
        "boxes": boxes | {"reference": len(dataset.reference)},
        "mean_image_miou": {
            "all": _mean(miou),
            **{group.lower(): _mean(miou[mask]) for group, mask in masks.items()},
        },
        "group_miou": {
            "all": group_miou(dataset.consolidated, dataset.reference, all_images),
            **{
                group.lower(): group_miou(dataset.consolidated, dataset.reference, np.flatnonzero(mask))
                for group, mask in masks.items()
            },
        },
        "detection_vs_reference": asdict(detection),
    }
