"""Plots of the trained detector's predictions (batch transform and real-time endpoint) on one image.

The object-detection algorithm answers ``{"prediction": [[class_id, score, xmin, ymin, xmax, ymax], ...]}``
with normalised coordinates and a fixed number of candidates per image, most of them near-zero scores, so
only the boxes whose score is above a threshold are drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ground_truth_pipeline.boxes import BoxTable
from ground_truth_pipeline.reports.drawing import (
    PREDICTION_COLOR,
    counted,
    draw_boxes,
    literal,
    new_figure,
    show_image,
    show_notice,
)
from ground_truth_pipeline.reports.image_cache import ImageFailure, Thumbnail

DEFAULT_SCORE_THRESHOLD = 0.2
PREDICTION_FIELDS = ("class_id", "score", "xmin", "ymin", "xmax", "ymax")

GRID_COLUMNS = 3
PANEL_INCHES = 4.0

PredictionRow = Sequence[float]


@dataclass(frozen=True)
class PredictionPanel:
    """One image of a grid of predictions: its title, the image, and the boxes to draw on it."""

    title: str
    image: Thumbnail | ImageFailure
    boxes: BoxTable


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
    """``Bird 0.87``: the class's name from the label categories (their order is the class id), and the
    score; ``class 3`` only for an id that the categories do not have."""
    return f"{class_name(class_id, class_names)} {score:.2f}"


def class_name(class_id: int, class_names: Sequence[str]) -> str:
    return class_names[class_id] if 0 <= class_id < len(class_names) else f"class {class_id}"


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
    thumbnail = draw_predictions(ax, image, boxes, class_names)
    if thumbnail is None:
        return figure
    ax.set_xticks(np.linspace(0, thumbnail.width, 5).round())
    ax.set_yticks(np.linspace(0, thumbnail.height, 5).round())
    ax.tick_params(labelsize=8)
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    return figure


def predictions_grid_figure(
    panels: Sequence[PredictionPanel], heading: str, class_names: Sequence[str] = ()
) -> Figure:
    """Several images with their predicted boxes, labelled with class name and score, three to a row."""
    if not panels:
        figure = new_figure(6, 1.5)
        show_notice(figure.subplots(), "No images to show.")
        return figure
    columns = min(len(panels), GRID_COLUMNS)
    rows = math.ceil(len(panels) / columns)
    figure = new_figure(max(columns, 2) * PANEL_INCHES, rows * PANEL_INCHES + 0.4)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, panel in zip(axes, panels, strict=False):
        draw_predictions(ax, panel.image, panel.boxes, class_names, panel.title)
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    figure.suptitle(literal(heading), fontsize=12)
    return figure


def draw_predictions(
    ax: Axes,
    image: Thumbnail | ImageFailure,
    boxes: BoxTable,
    class_names: Sequence[str],
    title: str = "",
) -> Thumbnail | None:
    """The image with each predicted box labelled with its class name and score; None for a placeholder."""
    thumbnail = show_image(ax, image, title)
    if thumbnail is not None:
        # Lowest score first, so that where labels overlap the most confident one is drawn on top.
        order = np.argsort(boxes.score, kind="stable")
        labels = [
            prediction_label(int(c), float(s), class_names)
            for c, s in zip(boxes.class_id[order], boxes.score[order], strict=True)
        ]
        draw_boxes(ax, thumbnail, boxes.xyxy[order], PREDICTION_COLOR, linewidth=2, labels=labels, fontsize=8)
    return thumbnail
