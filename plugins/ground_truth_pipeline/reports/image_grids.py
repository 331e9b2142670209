"""Figures of labeled images: worker / consolidated (/ reference) samples, the highest and lowest mIoU, the
most confident labels."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ground_truth_pipeline.boxes import LabelingDataset
from ground_truth_pipeline.reports.drawing import (
    CONSOLIDATED_COLOR,
    REFERENCE_COLOR,
    counted,
    draw_boxes,
    literal,
    new_figure,
    show_image,
    show_notice,
    worker_color,
)
from ground_truth_pipeline.reports.image_cache import ImageCache
from ground_truth_pipeline.reports.selection import ImageGroup, labeling_groups

PANEL_INCHES = 2.6
GRID_COLUMNS = 3
MOST_CONFIDENT_IMAGES = 5
_NO_LABELS = {
    "Human": "No human labels in this run.",
    "Auto": "No machine labels in this run: automated labeling was off or labeled no image.",
}


def draw_worker_boxes(
    ax: Axes,
    dataset: LabelingDataset,
    cache: ImageCache,
    image: int,
    title: str = "",
    linewidth: float = 1.2,
    fontsize: float = 9,
) -> None:
    """The image with every worker's boxes, one colour per worker."""
    thumbnail = show_image(ax, cache.get(dataset.images[image].source_ref), title, fontsize)
    if thumbnail is not None:
        boxes = dataset.workers.of_image(image)
        draw_boxes(ax, thumbnail, boxes.xyxy, [worker_color(int(w)) for w in boxes.worker], linewidth)


def draw_consolidated_boxes(
    ax: Axes,
    dataset: LabelingDataset,
    cache: ImageCache,
    image: int,
    title: str = "",
    with_reference: bool = False,
    linewidth: float = 1.5,
    fontsize: float = 9,
) -> None:
    """The image with its consolidated boxes in orange, over the reference boxes in green if asked."""
    thumbnail = show_image(ax, cache.get(dataset.images[image].source_ref), title, fontsize)
    if thumbnail is not None:
        if with_reference:
            draw_boxes(ax, thumbnail, dataset.reference.of_image(image).xyxy, REFERENCE_COLOR, linewidth)
        draw_boxes(ax, thumbnail, dataset.consolidated.of_image(image).xyxy, CONSOLIDATED_COLOR, linewidth)


def draw_reference_boxes(
    ax: Axes, dataset: LabelingDataset, cache: ImageCache, image: int, title: str
) -> None:
    thumbnail = show_image(ax, cache.get(dataset.images[image].source_ref), title)
    if thumbnail is not None:
        draw_boxes(ax, thumbnail, dataset.reference.of_image(image).xyxy, REFERENCE_COLOR)


def human_samples_figure(
    dataset: LabelingDataset, cache: ImageCache, images: np.ndarray, with_reference: bool = True
) -> Figure:
    """One row per human-labeled image: worker boxes, consolidated boxes and, if asked, reference boxes."""
    if not len(images):
        return _notice_figure("No human-labeled images in this job.")
    columns = 3 if with_reference else 2
    figure = new_figure(columns * PANEL_INCHES, len(images) * PANEL_INCHES * 0.85)
    axes = figure.subplots(len(images), columns, squeeze=False)
    worker_counts = dataset.workers.counts(len(dataset.images))
    consolidated_counts = dataset.consolidated.counts(len(dataset.images))
    reference_counts = dataset.reference.counts(len(dataset.images))
    for row, image in zip(axes, images, strict=True):
        workers = len(np.unique(dataset.workers.of_image(image).worker))
        worker_title = f"{counted(workers, 'worker')}, {counted(worker_counts[image], 'box', 'boxes')}"
        draw_worker_boxes(row[0], dataset, cache, image, worker_title)
        draw_consolidated_boxes(
            row[1],
            dataset,
            cache,
            image,
            f"Consolidated: {counted(consolidated_counts[image], 'box', 'boxes')}",
        )
        if with_reference:
            draw_reference_boxes(
                row[2],
                dataset,
                cache,
                image,
                f"Reference: {counted(reference_counts[image], 'box', 'boxes')}",
            )
        row[0].set_ylabel(literal(dataset.images[image].image_id), fontsize=8)
    shown = "worker, consolidated and reference boxes" if with_reference else "worker and consolidated boxes"
    figure.suptitle(f"Human-labeled examples: {shown}", fontsize=12)
    return figure


def auto_samples_figure(
    dataset: LabelingDataset, cache: ImageCache, images: np.ndarray, with_reference: bool = True
) -> Figure:
    """One row per auto-labeled image: the auto label and the reference boxes; without reference boxes, a
    grid of auto labels (one column of lone panels would leave the figure mostly empty)."""
    if not len(images):
        return _notice_figure("No auto-labeled images in this job.")
    if not with_reference:
        return _auto_labels_grid(dataset, cache, images)
    figure = new_figure(2 * PANEL_INCHES, len(images) * PANEL_INCHES * 0.85)
    axes = figure.subplots(len(images), 2, squeeze=False)
    consolidated_counts = dataset.consolidated.counts(len(dataset.images))
    reference_counts = dataset.reference.counts(len(dataset.images))
    for row, image in zip(axes, images, strict=True):
        draw_consolidated_boxes(
            row[0],
            dataset,
            cache,
            image,
            f"Auto label: {counted(consolidated_counts[image], 'box', 'boxes')}",
        )
        draw_reference_boxes(
            row[1], dataset, cache, image, f"Reference: {counted(reference_counts[image], 'box', 'boxes')}"
        )
        row[0].set_ylabel(literal(dataset.images[image].image_id), fontsize=8)
    figure.suptitle("Auto-labeled examples: auto label and reference boxes", fontsize=12)
    return figure


def _auto_labels_grid(dataset: LabelingDataset, cache: ImageCache, images: np.ndarray) -> Figure:
    columns = min(len(images), GRID_COLUMNS)
    rows = math.ceil(len(images) / columns)
    figure = new_figure(max(columns, 2) * PANEL_INCHES, rows * PANEL_INCHES * 0.85)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    consolidated_counts = dataset.consolidated.counts(len(dataset.images))
    for ax, image in zip(axes, images, strict=False):
        draw_consolidated_boxes(
            ax, dataset, cache, image, f"Auto label: {counted(consolidated_counts[image], 'box', 'boxes')}"
        )
        ax.set_xlabel(literal(dataset.images[image].image_id), fontsize=8)
    for ax in axes[len(images) :]:
        ax.set_axis_off()
    figure.suptitle("Auto-labeled examples: the auto label in orange", fontsize=12)
    return figure


def miou_extremes_figure(
    dataset: LabelingDataset,
    cache: ImageCache,
    miou: np.ndarray,
    images: np.ndarray,
    group_name: str,
    extreme: str,
) -> Figure:
    """Up to six images of one group with the highest or lowest mIoU, their mIoU in each panel title."""
    heading = f"{group_name}-labeled images with the {extreme} mIoU (labels orange, reference green)"
    if not len(images):
        return _notice_figure(f"No {group_name.lower()}-labeled images in this job.")
    figure = new_figure(3 * PANEL_INCHES * 1.3, 2 * PANEL_INCHES)
    axes = figure.subplots(2, 3).ravel()
    for ax, image in zip(axes, images, strict=False):
        draw_consolidated_boxes(ax, dataset, cache, image, f"mIoU {miou[image]:.3f}", with_reference=True)
    for ax in axes[len(images) :]:
        ax.set_axis_off()
    figure.suptitle(heading, fontsize=12)
    return figure


def most_confident_figure(
    dataset: LabelingDataset,
    cache: ImageCache,
    confidence: np.ndarray,
    chosen: Sequence[ImageGroup],
    with_reference: bool = True,
) -> Figure:
    """One row per group (human, machine): its most confident images, most confident first, each with its
    label in orange over the reference boxes in green if asked, and its confidence in the panel title.

    ``chosen`` holds the images to show per group (see ``selection.most_confident``); a group without any
    gets a row that says so.
    """
    columns = max([MOST_CONFIDENT_IMAGES, *(len(group.indices) for group in chosen)])
    # A group without images gets a short row: its notice needs no room for images.
    heights = [PANEL_INCHES + 0.5 if len(group.indices) else 0.8 for group in chosen]
    figure = new_figure(columns * PANEL_INCHES, sum(heights) + 0.4)
    rows = figure.subfigures(len(chosen), 1, squeeze=False, height_ratios=heights).ravel()
    labeled = {group.name: len(group.indices) for group in labeling_groups(dataset)}
    consolidated_counts = dataset.consolidated.counts(len(dataset.images))
    for row, group in zip(rows, chosen, strict=True):
        if not len(group.indices):
            show_notice(row.subplots(), _NO_LABELS.get(group.name, f"No {group.name} labels in this run."))
            continue
        shown = len(group.indices)
        of = labeled.get(group.name, shown)
        row.suptitle(
            f"{group.name} labels: the {shown} most confident of {of} {group.name.lower()}-labeled images",
            fontsize=11,
        )
        axes = row.subplots(1, columns, squeeze=False).ravel()
        for ax, image in zip(axes, group.indices, strict=False):
            boxes = counted(consolidated_counts[image], "box", "boxes")
            title = f"confidence {confidence[image]:.3f}, {boxes}"
            draw_consolidated_boxes(
                ax, dataset, cache, image, title, with_reference=with_reference, linewidth=2, fontsize=8
            )
            ax.set_xlabel(literal(dataset.images[image].image_id), fontsize=7)
        for ax in axes[shown:]:
            ax.set_axis_off()
    reference = " over the reference boxes (green)" if with_reference else ""
    figure.suptitle(f"The most confident labels (orange){reference}", fontsize=12)
    return figure


def _notice_figure(message: str) -> Figure:
    figure = new_figure(6, 1.5)
    show_notice(figure.subplots(), message)
    return figure
