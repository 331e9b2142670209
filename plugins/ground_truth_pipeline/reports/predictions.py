"""Plots of the trained detector's predictions (batch transform and real-time endpoint) on one image.

The object-detection algorithm answers ``{"prediction": [[class_id, score, xmin, ymin, xmax, ymax], ...]}``
with normalised coordinates and a fixed number of candidates per image, most of them near-zero scores, so
only the boxes whose score is above a threshold are drawn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ground_truth_pipeline.boxes import BoxTable
from ground_truth_pipeline.reports.drawing import (
    PREDICTION_COLOR,
    counted,
    draw_boxes,
    literal,
    new_figure,
    show_image,
)
from ground_truth_pipeline.reports.image_cache import ImageFailure, Thumbnail

DEFAULT_SCORE_THRESHOLD = 0.2
PREDICTION_FIELDS = ("class_id", "score", "xmin", "ymin", "xmax", "ymax")

PredictionRow = Sequence[float]


def predictions_above_threshold(
    predictions: Sequence[PredictionRow] | np.ndarray, threshold: float = DEFAULT_SCORE_THRESHOLD
) -> BoxTable:
    """The predictions scoring strictly above ``threshold``, as boxes of image 0, highest score first."""
    for position, row in enumerate(predictions):
        if len(row) != len(PREDICTION_FIELDS):
            raise ValueError(
                f"Prediction {position} has {len(row)} values, expected {len(PREDICTION_FIELDS)}: "
                f"[{', '.join(PREDICTION_FIELDS)}]"
            )
    rows = np.asarray(predictions, dtype=np.float64).reshape(-1, len(PREDICTION_FIELDS))
    kept = rows[rows[:, 1] > threshold]
    kept = kept[np.argsort(-kept[:, 1], kind="stable")]
    return BoxTable.build(
        image=np.zeros(len(kept), np.int64),
        xyxy=kept[:, 2:6],
        score=kept[:, 1],
        class_id=kept[:, 0].astype(np.int64),
    )


def prediction_label(class_id: int, score: float, class_names: Sequence[str]) -> str:
    name = class_names[class_id] if 0 <= class_id < len(class_names) else f"class {class_id}"
    return f"{name} {score:.2f}"


def prediction_figure(
    image: Thumbnail | ImageFailure,
    boxes: BoxTable,
    threshold: float,
    title: str,
    class_names: Sequence[str] = (),
) -> Figure:
    """The image in its pixel coordinates with each predicted box and its class and score."""
    figure = new_figure(7, 6)
    ax = figure.subplots()
    heading = f"{title}\n{counted(len(boxes), 'box', 'boxes')} with score above {threshold:g}"
    figure.suptitle(literal(heading), fontsize=12)
    thumbnail = show_image(ax, image)
    if thumbnail is None:
        return figure
    labels = [
        prediction_label(int(c), float(s), class_names)
        for c, s in zip(boxes.class_id, boxes.score, strict=True)
    ]
    draw_boxes(ax, thumbnail, boxes.xyxy, PREDICTION_COLOR, linewidth=2, labels=labels, fontsize=8)
    ax.set_xticks(np.linspace(0, thumbnail.width, 5).round())
    ax.set_yticks(np.linspace(0, thumbnail.height, 5).round())
    ax.tick_params(labelsize=8)
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    return figure
