"""Limits a labeling job must pass before it is created: a cap on its worst-case cost, and the dataset size
automated labeling needs.

Both fail with a ``ValueError``, which the DAG's retry policy fails at once: a retry would find the same
images and params. Light enough for the DAG file to import ``DEFAULT_MAX_LABELING_COST_USD`` at parse time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ground_truth_pipeline.labeling_output import LabelPrices

# Covers the reference's full demo at its worst: 1,000 images x ($0.08 + 5 workers x $0.036) = $260.
DEFAULT_MAX_LABELING_COST_USD = 300.0
# AWS's documented minimum dataset for automated data labeling ("Automate data labeling", SageMaker guide).
AWS_AUTO_LABELING_MIN_IMAGES = 1250


def worst_case_labeling_cost(images: int, prices: LabelPrices) -> float:
    """Dollars if humans label every image, each at ``prices.human`` (per-label fee + workers x task price).

    Automated labeling only ever replaces a human label by a cheaper machine one, so this bounds the label
    charges of any job on these images (not the training and inference jobs automated labeling runs). AWS
    prices are whole tenths of a cent; rounding to them keeps float sums from exceeding a cap they equal.
    """
    return round(images * prices.human, 3)


def check_labeling_cost(images: int, prices: LabelPrices, max_cost_usd: float) -> float:
    """The worst-case cost, or a ``ValueError`` saying how it was computed when it is over the cap."""
    worst_case = worst_case_labeling_cost(images, prices)
    if worst_case > max_cost_usd:
        raise ValueError(
            f"The labeling job could cost up to ${worst_case:,.2f}, over the cap of ${max_cost_usd:,.2f}: "
            f"{images:,} images x (${prices.human_base:.3f} per-label fee + {prices.workers} workers x "
            f"${prices.per_worker:.3f} per task) if humans label every image. Raise the param "
            "max_labeling_cost_usd, or label fewer images (n_images) with fewer workers (workers_per_image)"
        )
    return worst_case


def check_auto_labeling_dataset(images: int, min_images: int) -> None:
    """A ``ValueError`` when automated labeling is asked for on fewer than ``min_images`` images.

    ``min_images`` is AWS's minimum on AWS; a stand-in for AWS may accept fewer.
    """
    if images < min_images:
        raise ValueError(
            f"Automated labeling (param auto_labeling) needs at least {min_images:,} images and this run has "
            f"{images:,} (AWS requires {AWS_AUTO_LABELING_MIN_IMAGES:,} for automated data labeling). Select "
            "more images (n_images) or turn auto_labeling off"
        )
