"""Which images each figure shows, chosen before drawing so every needed image can be prefetched at once.

All choices are deterministic for given inputs, so a re-run of the analysis task draws the same report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ground_truth_pipeline.boxes import LabelingDataset


@dataclass(frozen=True)
class ImageGroup:
    """Images labeled one way ("Human" or "Auto"): indices into ``dataset.images``."""

    name: str
    indices: np.ndarray  # int64


def labeling_groups(dataset: LabelingDataset) -> tuple[ImageGroup, ImageGroup]:
    """Human- and machine-labeled images; images whose labeling failed are in neither group."""
    return (
        ImageGroup("Human", np.flatnonzero(dataset.labeled_by_humans)),
        ImageGroup("Auto", np.flatnonzero(dataset.labeled_by_machine)),
    )


def random_sample(indices: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Up to ``count`` of ``indices`` drawn without replacement by a seeded generator, in dataset order."""
    if count < 0:
        raise ValueError(f"The number of sample images must not be negative, got {count}")
    if len(indices) <= count:
        return np.asarray(indices, dtype=np.int64)
    chosen = np.random.default_rng(seed).choice(indices, size=count, replace=False)
    return np.sort(chosen)


def ranked(indices: np.ndarray, values: np.ndarray, descending: bool = True) -> np.ndarray:
    """``indices`` ordered by ``values[indices]``, ties by index, images whose value is NaN last."""
    indices = np.asarray(indices, dtype=np.int64)
    keys = -values[indices] if descending else values[indices]
    return indices[np.lexsort((indices, keys))]


def most_confident(indices: np.ndarray, confidence: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` images of ``indices`` with the highest confidence, most confident first.

    Ties keep dataset order; an image whose confidence is NaN is never among them, so a group with fewer
    scored images gives fewer.
    """
    if count < 0:
        raise ValueError(f"The number of most confident images must not be negative, got {count}")
    ranking = ranked(indices, confidence, descending=True)
    return ranking[np.isfinite(confidence[ranking])][:count]


def spread_over_ranking(ranking: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` images evenly spaced along a ranking, always keeping its first and last.

    Capping a sorted PDF this way still shows the whole range of the metric, best to worst, where taking
    the top ``limit`` would hide exactly the images a reviewer most needs to see.
    """
    if limit < 1:
        raise ValueError(f"The number of images per section must be at least 1, got {limit}")
    if len(ranking) <= limit:
        return ranking
    positions = np.unique(np.round(np.linspace(0, len(ranking) - 1, limit)).astype(np.int64))
    return ranking[positions]
