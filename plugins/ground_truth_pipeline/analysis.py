"""The analysis of a finished labeling job, without drawing: counts, costs, label quality, metrics JSON.

Label quality is measured against the Open Images reference boxes of the same images. Images whose
labeling failed keep their place (they have no consolidated boxes, so they score as unlabeled).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
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
    group_miou,
    image_confidence,
    image_miou,
    miou_by_confidence_threshold,
)
from ground_truth_pipeline.object_store import ObjectStore
from ground_truth_pipeline.open_images import SelectedImage, reference_box_table

GROUPS = ("Human", "Auto")


@dataclass(frozen=True)
class LabelingAnalysis:
    dataset: LabelingDataset
    miou: np.ndarray
    confidence: np.ndarray
    iterations: pd.DataFrame
    confidence_curve: dict[str, tuple[np.ndarray, np.ndarray]]
    detection: DetectionMetrics
    metrics: dict[str, Any]

    def image_table(self) -> pd.DataFrame:
        """One row per image of the output manifest: who labeled it, box counts, mIoU and confidence."""
        n = len(self.dataset.images)
        return pd.DataFrame(
            {
                "object_id": [img.object_id for img in self.dataset.images],
                "image_id": [img.image_id for img in self.dataset.images],
                "human_annotated": self.dataset.human_mask,
                "failed": self.dataset.failed_mask,
                "consolidated_boxes": self.dataset.consolidated.counts(n),
                "reference_boxes": self.dataset.reference.counts(n),
                "miou": self.miou,
                "confidence": self.confidence,
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
    reference: Mapping[str, SelectedImage],
    class_names: Sequence[str],
    prices: LabelPrices,
) -> LabelingAnalysis:
    """Read the job's output tree once and compute everything the report shows."""
    manifest = read_output_manifest(store, job_prefix, label_attribute)
    reference_boxes = reference_box_table(dict(reference), [img.image_id for img in manifest.images])
    dataset = load_labeling_dataset(
        store, job_prefix, label_attribute, reference_boxes, class_names=class_names, manifest=manifest
    )
    n_images = len(dataset.images)
    miou = image_miou(dataset.consolidated, dataset.reference, n_images)
    confidence = image_confidence(dataset.consolidated, n_images)
    iterations = iteration_summary(
        read_consolidation_counts(store, job_prefix, label_attribute),
        read_auto_label_counts(store, job_prefix, label_attribute),
        prices,
    )
    masks = group_masks(dataset)
    confidence_curve = {
        group: miou_by_confidence_threshold(
            dataset.consolidated, dataset.reference, n_images, np.flatnonzero(mask)
        )
        for group, mask in masks.items()
        if mask.any()
    }
    sizes = np.array([[max(img.width, 1), max(img.height, 1)] for img in dataset.images]).reshape(-1, 2)
    detection = detection_metrics(dataset.consolidated, dataset.reference, sizes)
    metrics = _metrics_document(
        manifest.job_name, dataset, miou, confidence, iterations, masks, detection, prices
    )
    return LabelingAnalysis(dataset, miou, confidence, iterations, confidence_curve, detection, metrics)


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def _metrics_document(
    job_name: str,
    dataset: LabelingDataset,
    miou: np.ndarray,
    confidence: np.ndarray,
    iterations: pd.DataFrame,
    masks: dict[str, np.ndarray],
    detection: DetectionMetrics,
    prices: LabelPrices,
) -> dict[str, Any]:
    n_images = len(dataset.images)
    all_images = np.arange(n_images)
    human_cost = float(iterations["human_cost"].sum())
    auto_cost = float(iterations["auto_cost"].sum())
    labeled = int(masks["Human"].sum() + masks["Auto"].sum())
    return {
        "labeling_job": job_name,
        "images": n_images,
        "failed_images": int(dataset.failed_mask.sum()),
        "human_labeled_images": int(masks["Human"].sum()),
        "auto_labeled_images": int(masks["Auto"].sum()),
        "workers": len(dataset.worker_ids),
        "boxes": {
            "consolidated": len(dataset.consolidated),
            "worker": len(dataset.workers),
            "reference": len(dataset.reference),
        },
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
        "mean_image_confidence": {group.lower(): _mean(confidence[mask]) for group, mask in masks.items()},
        "detection_vs_reference": asdict(detection),
    }
